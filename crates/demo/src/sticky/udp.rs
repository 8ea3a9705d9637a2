//! Part 3: UDP with msg-udp, two datagrams received as two, and one too
//! large refused before the send.

use super::*;

// ---- part 3: UDP (msg-udp) ------------------------------------------------

pub(super) async fn udp() -> Result<Part> {
    let mut receiver = msg_udp::Socket::bind(localhost()).await?;
    let to = receiver.local_addr()?;
    let mut sender = msg_udp::Socket::bind(localhost()).await?;
    Ok(Part {
        number: 3,
        transport: "udp",
        title: "UDP: one datagram per receive",
        lesson: "UDP sends datagrams: each send is one packet, and each receive returns \
                 exactly one, whole: never glued to the next, never in pieces, so no \
                 length is needed. The price: a datagram holds at most 65,507 bytes over \
                 IPv4 (65,535 less a 20-byte IP header and an 8-byte UDP header), and it \
                 may be lost. msg refuses a larger one before sending.",
        steps: vec![
            two_datagrams(&mut sender, &mut receiver, to).await?,
            one_oversize_datagram(&mut sender, to).await?,
        ],
    })
}

pub(super) async fn two_datagrams(
    sender: &mut msg_udp::Socket,
    receiver: &mut msg_udp::Socket,
    to: SocketAddr,
) -> Result<Step> {
    for bytes in SMALL {
        sender.send_raw_to(bytes, to).await.what("cannot send")?;
    }
    let mut got = Vec::new();
    let ours = sender.local_addr()?;
    // Any local process may send to the port first: another's datagram
    // is skipped, a few at most, each receive bounded.
    let mut strangers = 0;
    while got.len() < SMALL.len() {
        let (datagram, from) = bounded(receiver.recv_raw_from())
            .await
            .what("cannot receive")?;
        if from != ours {
            strangers += 1;
            if strangers > 16 {
                return Err(Error::Broken(format!(
                    "datagrams from {from}, not the demo's own sender"
                )));
            }
            continue;
        }
        got.push(Got {
            bytes: datagram.to_vec(),
            queued: None,
        });
    }
    Ok(Step {
        name: TWO_SMALL,
        did: format!(
            "send {} and {} as two datagrams",
            shown(SMALL[0]),
            shown(SMALL[1])
        ),
        how: format!(
            "Both were sent before the receiver's first receive, and each receive asked \
             for up to {} bytes. Whether or not the second had arrived by then, a \
             receive returns one datagram.",
            msg_udp::RECV_BUF_LEN
        ),
        unit: Unit::Datagram,
        got,
        refused: None,
    })
}

pub(super) async fn one_oversize_datagram(
    sender: &mut msg_udp::Socket,
    to: SocketAddr,
) -> Result<Step> {
    let oversize = vec![0; UDP_OVERSIZE];
    let error = match sender.send_raw_to(&oversize, to).await {
        Err(err @ msg_udp::Error::TooLarge { .. }) => err.to_string(),
        Err(err) => return Err(err).what("cannot send"),
        Ok(()) => {
            return Err(Error::Broken(format!(
                "a {UDP_OVERSIZE}-byte datagram was sent, not refused"
            )));
        }
    };
    Ok(Step {
        name: ONE_LARGE,
        did: format!("send {UDP_OVERSIZE} bytes as one datagram"),
        how: "msg checks the size before the send call.".to_owned(),
        unit: Unit::Datagram,
        got: Vec::new(),
        refused: Some(Refused {
            len: UDP_OVERSIZE,
            error,
            kernel: kernel_refusal(&oversize, to),
        }),
    })
}

/// What the kernel says when asked to send `payload` as one datagram
/// anyway, past msg's check.
pub(super) fn kernel_refusal(payload: &[u8], to: SocketAddr) -> String {
    let sent = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).and_then(|s| s.send_to(payload, to));
    match sent {
        Ok(n) => format!("it accepted {n} bytes"),
        Err(err) => err.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A datagram another local process sent to the receiver's port first
    /// is not shown as the lesson's.
    #[tokio::test]
    async fn a_strangers_datagram_is_not_the_lessons() {
        let mut receiver = msg_udp::Socket::bind(localhost()).await.unwrap();
        let to = receiver.local_addr().unwrap();
        let stranger = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        stranger.send_to(b"\x1b[2Jnot the demo's", to).unwrap();
        let mut sender = msg_udp::Socket::bind(localhost()).await.unwrap();
        let step = two_datagrams(&mut sender, &mut receiver, to).await.unwrap();
        let got: Vec<&[u8]> = step.got.iter().map(|got| got.bytes.as_slice()).collect();
        assert_eq!(got, SMALL);
    }
}
