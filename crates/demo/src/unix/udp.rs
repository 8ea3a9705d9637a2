//! Part 1: UDP into a receiver that does not read. Every send succeeds and
//! most datagrams are dropped on arrival, silently.

use std::fs;
use std::io;
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::os::fd::AsRawFd as _;
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
        kernel_drops: drops(&receiver),
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

/// How many datagrams the kernel dropped for `socket` because its buffer
/// was full: the drops column of its line in `/proc/net/udp`, found by the
/// socket's inode. `None` where the file or the line is not there.
fn drops(socket: &UdpSocket) -> Option<u64> {
    let link = fs::read_link(format!("/proc/self/fd/{}", socket.as_raw_fd())).ok()?;
    let inode = link
        .to_str()?
        .strip_prefix("socket:[")?
        .strip_suffix(']')?
        .to_owned();
    let table = fs::read_to_string("/proc/net/udp").ok()?;
    drops_in(&table, &inode)
}

/// The drops column of the line of `inode` in a `/proc/net/udp` table:
/// `sl local rem st tx:rx tr:when retrnsmt uid timeout inode ref pointer
/// drops`.
fn drops_in(table: &str, inode: &str) -> Option<u64> {
    table.lines().skip(1).find_map(|line| {
        let columns: Vec<&str> = line.split_whitespace().collect();
        if columns.get(9) != Some(&inode) {
            return None;
        }
        columns.get(12)?.parse().ok()
    })
}

fn localhost() -> SocketAddr {
    (Ipv4Addr::LOCALHOST, 0).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_drops_column_is_found_by_inode() {
        let table = "   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops\n\
            \x20 1: 0100007F:A1B2 00000000:0000 07 00000000:00000000 00:00000000 00000000  1000        0 4242 2 0000000000000000 0\n\
            \x20 2: 0100007F:C3D4 00000000:0000 07 00000000:00010400 00:00000000 00000000  1000        0 4343 2 0000000000000000 1962\n";
        assert_eq!(drops_in(table, "4343"), Some(1962));
        assert_eq!(drops_in(table, "4242"), Some(0));
        assert_eq!(drops_in(table, "1000"), None);
        assert_eq!(drops_in(table, "99"), None);
    }

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
