//! Part 1: UDP into a receiver that does not read. Every send succeeds and
//! most datagrams are dropped on arrival, silently.

use std::io;
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::time::Instant;

use socket2::{Domain, Protocol, Socket, Type};

use super::{COUNT, DEADLINE, LEN, Lost, QUIET, RCVBUF, number_of, numbered};
use crate::error::{Context as _, Error, Result};

pub(super) fn lose() -> Result<Lost> {
    let receiver = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))
        .what("cannot open a UDP socket")?;
    receiver
        .set_recv_buffer_size(RCVBUF)
        .what("cannot set SO_RCVBUF")?;
    let rcvbuf = receiver.recv_buffer_size()?;
    receiver
        .bind(&localhost().into())
        .what("cannot bind 127.0.0.1")?;
    let receiver = UdpSocket::from(receiver);
    let to = receiver.local_addr()?;

    let sender = UdpSocket::bind(localhost()).what("cannot bind 127.0.0.1")?;
    // A send waits only while the sender's own buffer is full, which on
    // loopback is never for long; bounded anyway.
    sender.set_write_timeout(Some(DEADLINE))?;
    let start = Instant::now();
    for seq in 1..=COUNT {
        let n = sender
            .send_to(&numbered(seq), to)
            .with_what(|| format!("send {seq} of {COUNT} failed"))?;
        if n != LEN {
            return Err(Error::Broken(format!("send {seq} took {n} of {LEN} bytes")));
        }
    }

    // Only now does the receiver read: what its buffer held, and then
    // anything still on its way, until none has come for QUIET.
    receiver.set_read_timeout(Some(QUIET))?;
    let mut buf = vec![0; LEN + 1];
    let mut got = Got::default();
    for _ in 0..COUNT {
        match receiver.recv(&mut buf) {
            Ok(n) => got.add(&buf[..n]),
            Err(err)
                if matches!(
                    err.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                break;
            }
            Err(err) => return Err(err).what("cannot receive"),
        }
        if start.elapsed() > DEADLINE {
            return Err(Error::Broken(format!(
                "still receiving after {} s",
                DEADLINE.as_secs()
            )));
        }
    }
    Ok(Lost {
        len: LEN,
        rcvbuf_asked: RCVBUF,
        rcvbuf,
        sent: COUNT,
        received: got.count,
        lost: COUNT - got.count,
        whole: got.whole,
        received_runs: got.runs,
        kernel_drops: msg_udp::sync::kernel_drops(&socket2::SockRef::from(&receiver)),
        last: got.last,
    })
}

/// What a receiver got: how many, whether whole, which.
#[derive(Debug)]
struct Got {
    count: usize,
    whole: bool,
    runs: Vec<[usize; 2]>,
    last: Vec<u8>,
}

impl Default for Got {
    fn default() -> Self {
        Self {
            count: 0,
            whole: true,
            runs: Vec::new(),
            last: Vec::new(),
        }
    }
}

impl Got {
    fn add(&mut self, bytes: &[u8]) {
        self.count += 1;
        bytes.clone_into(&mut self.last);
        let Some(seq) = number_of(bytes) else {
            self.whole = false;
            return;
        };
        match self.runs.last_mut() {
            Some(run) if run[1] + 1 == seq => run[1] = seq,
            _ => self.runs.push([seq, seq]),
        }
    }
}

fn localhost() -> SocketAddr {
    (Ipv4Addr::LOCALHOST, 0).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_and_wholeness() {
        let mut got = Got::default();
        for seq in [1, 2, 3, 7, 8] {
            got.add(&numbered(seq));
        }
        assert_eq!(got.runs, [[1, 3], [7, 8]]);
        assert!(got.whole);
        got.add(&numbered(9)[..LEN - 1]);
        assert!(!got.whole);
        assert_eq!(got.count, 6);
    }
}
