//! Part 3: the largest datagram, found by sending. UDP's is fixed by the
//! IP header; a Unix datagram's is the sender's send buffer less 32 bytes.

use std::io;
use std::net::{Ipv4Addr, UdpSocket};
use std::os::unix::net::UnixDatagram;

use socket2::{Domain, Protocol, SockRef, Socket, Type};

use super::{DEADLINE, SNDBUFS, Sizes, UdpSize, UnixSize};
use crate::error::{Context as _, Error, Result};

/// The longest a search may go on: more halvings than any `usize` needs.
const PROBES: u32 = 64;

pub(super) fn sizes() -> Result<Sizes> {
    let mut unix = vec![largest_unix(None)?];
    for asked in SNDBUFS {
        unix.push(largest_unix(Some(asked))?);
    }
    Ok(Sizes {
        udp: largest_udp()?,
        unix,
    })
}

/// The largest datagram on a Unix datagram pair whose sender's SO_SNDBUF
/// is `asked` (or the default): a binary search between one byte, which
/// fits, and twice the send buffer, which must not.
fn largest_unix(asked: Option<usize>) -> Result<UnixSize> {
    let (sender, receiver) = UnixDatagram::pair().what("cannot open a Unix datagram pair")?;
    if let Some(asked) = asked {
        SockRef::from(&sender)
            .set_send_buffer_size(asked)
            .what("cannot set SO_SNDBUF")?;
    }
    let sndbuf = SockRef::from(&sender).send_buffer_size()?;
    // Non-blocking both: with the queue emptied after every send, the
    // kernel never has a reason to wait, and if it had one the demo
    // would say so rather than hang.
    sender.set_nonblocking(true)?;
    receiver.set_nonblocking(true)?;

    let upper = 2 * sndbuf;
    let payload: Vec<u8> = (b'a'..=b'z').cycle().take(upper).collect();
    let mut buf = vec![0; upper];
    let mut probes = 0;
    let mut fits = |len: usize| -> Result<Option<io::Error>> {
        probes += 1;
        match sender.send(&payload[..len]) {
            Ok(n) if n == len => {}
            Ok(n) => return Err(Error::Broken(format!("a send took {n} of {len} bytes"))),
            Err(err) if too_large(&err) => return Ok(Some(err)),
            Err(err) => return Err(err).with_what(|| format!("cannot send {len} bytes")),
        }
        let n = receiver
            .recv(&mut buf)
            .with_what(|| format!("cannot receive {len} bytes"))?;
        if buf[..n] != payload[..len] {
            return Err(Error::Broken(format!(
                "a {len}-byte datagram came back as {n} other bytes"
            )));
        }
        Ok(None)
    };

    if let Some(err) = fits(1)? {
        return Err(err).what("a 1-byte datagram was refused");
    }
    let (mut lo, mut hi) = (1, upper);
    let mut refused = fits(hi)?.with_what(|| {
        format!("a {upper}-byte datagram, twice SO_SNDBUF, was accepted: no limit to show")
    })?;
    for _ in 0..PROBES {
        if hi - lo <= 1 {
            break;
        }
        let mid = lo + (hi - lo) / 2;
        match fits(mid)? {
            None => lo = mid,
            Some(err) => (hi, refused) = (mid, err),
        }
    }
    Ok(UnixSize {
        sndbuf_asked: asked,
        sndbuf,
        largest: lo,
        refused: refused.to_string(),
        probes,
    })
}

/// UDP's largest, sent and received whole over 127.0.0.1 from a sender
/// whose send buffer is twice as large, and one byte more refused.
fn largest_udp() -> Result<UdpSize> {
    const LARGEST: usize = msg_udp::MAX_PAYLOAD_V4;
    let receiver = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).what("cannot bind 127.0.0.1")?;
    receiver.set_read_timeout(Some(DEADLINE))?;
    let to = receiver.local_addr()?;
    let sender = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))
        .what("cannot open a UDP socket")?;
    sender
        .set_send_buffer_size(SNDBUFS[1])
        .what("cannot set SO_SNDBUF")?;
    let sndbuf = sender.send_buffer_size()?;
    let sender = UdpSocket::from(sender);

    let payload = vec![b'x'; LARGEST + 1];
    sender
        .send_to(&payload[..LARGEST], to)
        .with_what(|| format!("cannot send {LARGEST} bytes"))?;
    let mut buf = vec![0; LARGEST + 2];
    let n = receiver
        .recv(&mut buf)
        .with_what(|| format!("cannot receive {LARGEST} bytes"))?;
    if n != LARGEST {
        return Err(Error::Broken(format!(
            "a {LARGEST}-byte datagram came back as {n} bytes"
        )));
    }
    let refused = match sender.send_to(&payload, to) {
        Err(err) if too_large(&err) => err.to_string(),
        Err(err) => return Err(err).with_what(|| format!("cannot send {} bytes", LARGEST + 1)),
        Ok(_) => {
            return Err(Error::Broken(format!(
                "a {}-byte UDP datagram was accepted",
                LARGEST + 1
            )));
        }
    };
    Ok(UdpSize {
        sndbuf,
        largest: LARGEST,
        refused,
    })
}

/// Whether `err` is EMSGSIZE: a datagram larger than the socket takes.
fn too_large(err: &io::Error) -> bool {
    rustix::io::Errno::from_io_error(err) == Some(rustix::io::Errno::MSGSIZE)
}
