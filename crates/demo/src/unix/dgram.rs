//! Part 2: Unix datagrams into a receiver that does not read. The kernel
//! refuses the non-blocking sender (EAGAIN) and makes a blocking one wait;
//! nothing is lost.

use std::fs;
use std::io;
use std::os::unix::net::UnixDatagram;
use std::time::Instant;

use socket2::SockRef;

use super::{Blocked, COUNT, Full, LEN, PushedBack, SEND_TIMEOUT, number_of, numbered};
use crate::error::{Context as _, Error, Result};

pub(super) fn push_back() -> Result<PushedBack> {
    // The receiver has a name the sender connects to. (A connected pair
    // would not show the queue's limit: Linux does not apply it between
    // two sockets connected to each other.)
    let (receiver, sender, dir) = named_pair()?;
    let sndbuf = SockRef::from(&sender).send_buffer_size()?;

    // Non-blocking, so the demo never waits: the kernel answers at once.
    sender.set_nonblocking(true)?;
    let (mut accepted, mut refused) = (0, None);
    for seq in 1..=COUNT {
        match sender.send(&numbered(seq)) {
            Ok(n) if n == LEN => accepted += 1,
            Ok(n) => return Err(Error::Broken(format!("send {seq} took {n} of {LEN} bytes"))),
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                refused = Some(err);
                break;
            }
            Err(err) => return Err(err).with_what(|| format!("send {seq} failed")),
        }
    }
    let refused = refused.with_what(|| {
        format!("all {COUNT} datagrams were accepted: the receiver's queue never filled")
    })?;
    let max_dgram_qlen = max_dgram_qlen();
    // Linux stops a sender once the queue is longer than the limit: the
    // limit and one more were accepted. Fewer: the send buffer filled
    // first.
    let full = match max_dgram_qlen {
        Some(qlen) if accepted > qlen => Full::Queue,
        _ => Full::SendBuffer,
    };

    let blocked = block(&sender, accepted + 1)?;

    // Only now does the receiver read: everything that was accepted, and
    // nothing else.
    receiver.set_nonblocking(true)?;
    let mut buf = vec![0; LEN + 1];
    let (mut received, mut in_order, mut whole, mut last) = (0, true, true, Vec::new());
    for _ in 0..=accepted {
        let n = match receiver.recv(&mut buf) {
            Ok(n) => n,
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => break,
            Err(err) => return Err(err).what("cannot receive"),
        };
        received += 1;
        match number_of(&buf[..n]) {
            Some(seq) => in_order &= seq == received,
            None => whole = false,
        }
        buf[..n].clone_into(&mut last);
    }
    if let Some(dir) = dir {
        dir.close().what("cannot remove the temporary directory")?;
    }
    Ok(PushedBack {
        len: LEN,
        sndbuf,
        max_dgram_qlen,
        accepted,
        accepted_bytes: accepted * LEN,
        refused: refused.to_string(),
        full,
        blocked,
        received,
        lost: accepted.saturating_sub(received),
        in_order,
        whole,
        last,
    })
}

/// A receiver bound to a name, and a sender connected to it.
///
/// On Linux the name is an abstract one: no file, so nothing is left
/// behind however the demo ends (a socket file in a temporary directory
/// stayed there after Ctrl-C or SIGTERM; audit, round five). Elsewhere a
/// file in a directory only this user may enter, removed at the end
/// (`Some`), or on the way out of an error.
fn named_pair() -> Result<(UnixDatagram, UnixDatagram, Option<tempfile::TempDir>)> {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        #[cfg(target_os = "android")]
        use std::os::android::net::SocketAddrExt;
        #[cfg(target_os = "linux")]
        use std::os::linux::net::SocketAddrExt;
        use std::os::unix::net::SocketAddr;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |since| since.subsec_nanos());
        let name = format!("msg-demo-unix.{}.{nanos}", std::process::id());
        let addr = SocketAddr::from_abstract_name(name.as_bytes())?;
        let receiver =
            UnixDatagram::bind_addr(&addr).with_what(|| format!("cannot bind @{name}"))?;
        let sender = UnixDatagram::unbound().what("cannot open a Unix datagram socket")?;
        sender
            .connect_addr(&addr)
            .with_what(|| format!("cannot connect to @{name}"))?;
        Ok((receiver, sender, None))
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    {
        let dir = tempfile::Builder::new()
            .prefix("msg-demo-unix.")
            .tempdir()
            .what("cannot make a temporary directory")?;
        let path = dir.path().join("receiver");
        let receiver =
            UnixDatagram::bind(&path).with_what(|| format!("cannot bind {}", path.display()))?;
        let sender = UnixDatagram::unbound().what("cannot open a Unix datagram socket")?;
        sender
            .connect(&path)
            .with_what(|| format!("cannot connect to {}", path.display()))?;
        Ok((receiver, sender, Some(dir)))
    }
}

/// One more send, `seq`, on a blocking socket to the full receiver: it
/// waits for room, for at most [`SEND_TIMEOUT`] (SO_SNDTIMEO), then gives
/// up with EAGAIN.
fn block(sender: &UnixDatagram, seq: usize) -> Result<Blocked> {
    sender.set_nonblocking(false)?;
    sender.set_write_timeout(Some(SEND_TIMEOUT))?;
    let start = Instant::now();
    let sent = sender.send(&numbered(seq));
    let waited = start.elapsed();
    let error = match sent {
        Err(err) if err.kind() == io::ErrorKind::WouldBlock => err.to_string(),
        Err(err) => return Err(err).what("the blocking send failed"),
        Ok(_) => {
            return Err(Error::Broken(
                "a blocking send to the full receiver was accepted".to_owned(),
            ));
        }
    };
    Ok(Blocked {
        timeout_ms: u64::try_from(SEND_TIMEOUT.as_millis()).unwrap_or(u64::MAX),
        // To the microsecond, which is all a timeout of the scheduler's says.
        waited_ms: waited.as_micros() as f64 / 1e3,
        error,
    })
}

/// `net.unix.max_dgram_qlen`: how long a Unix datagram receiver's queue
/// may grow before its senders are stopped. Read when the socket is made.
fn max_dgram_qlen() -> Option<usize> {
    fs::read_to_string("/proc/sys/net/unix/max_dgram_qlen")
        .ok()?
        .trim()
        .parse()
        .ok()
}
