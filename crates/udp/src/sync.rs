//! Runtime-free datagram I/O on a borrowed std socket: one datagram
//! received into a reused buffer, waiting in the kernel or spinning, and
//! batches received and sent many per system call.
//!
//! msg-net's blocking engine moves its datagrams with these, and frames
//! them with [`Framing`](crate::Framing), as the tokio
//! [`Socket`](crate::Socket) does: the same bytes whichever engine moves
//! them, and one copy of the code that receives them.
//!
//! A receive either sleeps in the kernel (a blocking socket with
//! `SO_RCVTIMEO`, so that it wakes at least that often) or, busy-polling,
//! asks again and again with `MSG_DONTWAIT`. The socket itself stays
//! blocking either way: switching costs an `fcntl`, and a flag per call
//! costs nothing.

use std::io;
use std::mem::MaybeUninit;
use std::net::{SocketAddr, UdpSocket};
use std::time::Instant;

use bytes::BytesMut;
use socket2::SockRef;

/// `MSG_DONTWAIT`: this one call does not block, whatever the socket's
/// mode. Elsewhere than Unix, 0: a "spin" then sleeps in the kernel for at
/// most the socket's receive timeout, which is still bounded (and the
/// sockets of this crate's tokio `Socket` are non-blocking anyway).
#[cfg(unix)]
pub(crate) const DONTWAIT: i32 = libc::MSG_DONTWAIT;
#[cfg(not(unix))]
pub(crate) const DONTWAIT: i32 = 0;

/// How a receive waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// In the kernel, until data or the socket's receive timeout.
    Sleep,
    /// Asking again without blocking until data or the deadline.
    Spin(Instant),
}

/// What a receive got.
#[derive(Debug)]
pub enum Got<T> {
    /// Something arrived.
    Data(T),
    /// The wait ran out first (the receive timeout, or the spin's
    /// deadline).
    Nothing,
}

/// Whether `err` is a receive or send timeout (`SO_RCVTIMEO` reports
/// `EAGAIN`) or a spin's empty socket.
pub fn timed_out(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

pub use crate::buf::recv_into;

/// Retries `call` (given the flags for this wait) while it fails with
/// `EINTR`, and, spinning, while the socket is empty and the deadline has
/// not passed.
///
/// # Errors
///
/// `call`'s, other than those.
pub fn waiting<T>(wait: Wait, mut call: impl FnMut(i32) -> io::Result<T>) -> io::Result<Got<T>> {
    let flags = match wait {
        Wait::Sleep => 0,
        Wait::Spin(_) => DONTWAIT,
    };
    loop {
        match call(flags) {
            Ok(got) => return Ok(Got::Data(got)),
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) if timed_out(&err) => match wait {
                Wait::Spin(deadline) if Instant::now() < deadline => std::hint::spin_loop(),
                _ => return Ok(Got::Nothing),
            },
            Err(err) => return Err(err),
        }
    }
}

/// Receives one datagram into `buf`, which then holds it alone, and says
/// who sent it. The caller answers it where it lies (a listener's ping,
/// rewritten into its pong; a client's pong, read undecoded), and the next
/// datagram lands in the same place, in lines still in the cache; or it
/// splits the datagram off to keep it as `Bytes`.
///
/// The buffer keeps room for the largest datagram. A datagram split off
/// takes its bytes with it, so the room behind it shrinks by a datagram
/// per receive. The buffer holds two datagrams' worth, and is reclaimed
/// only once less than one is left: once the datagrams cut from it are
/// dropped, that moves nothing and allocates nothing, and a stream of
/// small datagrams pays for it once per 64 KiB instead of once per
/// datagram (about 40 instructions each, of some 600 the blocking
/// listener spends on one).
pub fn recv_datagram(
    socket: &UdpSocket,
    buf: &mut BytesMut,
    wait: Wait,
) -> io::Result<Got<SocketAddr>> {
    // What the last receive left, answered where it lay.
    buf.clear();
    if buf.capacity() < crate::RECV_BUF_LEN {
        buf.reserve(2 * crate::RECV_BUF_LEN);
    }
    let sock = SockRef::from(socket);
    let got = waiting(wait, |flags| {
        recv_into(buf, |spare| sock.recv_from_with_flags(spare, flags))
    })?;
    let Got::Data((_, from)) = got else {
        return Ok(Got::Nothing);
    };
    let from = from
        .as_socket()
        .ok_or_else(|| io::Error::other("a datagram from a non-IP address"))?;
    Ok(Got::Data(from))
}

/// Receives at least one datagram and as many as are waiting, up to
/// [`RecvBatch::len`](crate::RecvBatch::len), in one call (`recvmmsg` on
/// Linux, taking GRO-coalesced runs when [`set_gro`] is on); cuts them into
/// datagrams, decodes each with `framing` and appends the valid messages
/// and their senders to `out`. The blocking engine's counterpart of
/// [`Socket::recv_batch`](crate::Socket::recv_batch): the same slots, the
/// same cutting, the same counts.
///
/// # Errors
///
/// The receive's, other than the wait running out ([`Got::Nothing`]).
pub fn recv_batch(
    socket: &UdpSocket,
    framing: &mut crate::Framing,
    batch: &mut crate::RecvBatch,
    out: &mut Vec<(msg_proto::Message, SocketAddr)>,
    wait: Wait,
) -> io::Result<Got<()>> {
    batch.prepare();
    // A blocking recvmmsg waits for all its slots unless told to return
    // after the first datagram.
    #[cfg(target_os = "linux")]
    let first = libc::MSG_WAITFORONE;
    #[cfg(not(target_os = "linux"))]
    let first = 0;
    match waiting(wait, |flags| batch.recv_std(socket, flags | first))? {
        Got::Data(()) => {
            batch.take(framing, out);
            Ok(Got::Data(()))
        }
        Got::Nothing => Ok(Got::Nothing),
    }
}

/// Sends each of `msgs` as one datagram to `peer`, framed by `framing`, on
/// a blocking std socket connected to it, with as few system calls as the
/// platform allows (`sendmmsg`, and GSO runs when `batch` asks for them),
/// each call blocking while the send buffer is full: the blocking engine's
/// counterpart of [`Socket::send_batch`](crate::Socket::send_batch), with
/// the same encoding, runs and
/// counts.
///
/// # Errors
///
/// As [`Socket::send_batch`](crate::Socket::send_batch)'s:
/// [`Error::TooLarge`](crate::Error::TooLarge) (nothing of its group of up
/// to [`MAX_BATCH`](crate::MAX_BATCH) sent) or
/// [`Error::Send`](crate::Error::Send) (a send timeout included).
pub fn send_batch(
    socket: &UdpSocket,
    framing: &mut crate::Framing,
    peer: SocketAddr,
    msgs: &[msg_proto::Message],
    batch: &mut crate::SendBatch,
) -> Result<(), crate::Error> {
    for chunk in msgs.chunks(crate::MAX_BATCH) {
        batch.encode(chunk, framing, &peer)?;
        crate::batch::send_encoded_std(socket, batch, &peer)
            .map_err(|source| crate::Error::Send { addr: peer, source })?;
    }
    Ok(())
}

/// Asks the kernel to hand `socket` runs of datagrams coalesced
/// (`UDP_GRO`), which [`recv_batch`] cuts apart again: as
/// [`Socket::set_gro`](crate::Socket::set_gro), for a std socket.
///
/// # Errors
///
/// The kernel's refusal, or `Unsupported` elsewhere than Linux.
pub fn set_gro(socket: &UdpSocket, on: bool) -> io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        crate::batch::set_gro_on(&SockRef::from(socket), on)
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (socket, on);
        Err(io::ErrorKind::Unsupported.into())
    }
}

/// Receives and throws away, without waiting, at most `max` datagrams
/// that wait in `socket`'s receive buffer; returns how many. For a
/// listener that stops: what arrived but was never read is then counted
/// (a tokio [`Socket`](crate::Socket) through
/// [`Socket::try_clone_std`](crate::Socket::try_clone_std)).
pub fn discard_waiting(socket: &SockRef<'_>, max: u64) -> u64 {
    // One byte is enough to take a datagram off the queue: the kernel
    // drops the rest of it.
    let mut byte = [MaybeUninit::uninit(); 1];
    let mut discarded = 0;
    let mut interrupted = 0;
    while discarded < max {
        match socket.recv_with_flags(&mut byte, DONTWAIT) {
            Ok(_) => discarded += 1,
            Err(err) if err.kind() == io::ErrorKind::Interrupted && interrupted < 100 => {
                interrupted += 1;
            }
            // Empty (WouldBlock), or an error a queued ICMP left: either
            // way nothing more to take now.
            Err(_) => break,
        }
    }
    discarded
}

/// How many datagrams the kernel has dropped for `socket` because its
/// receive buffer was full, since it was made: `SO_MEMINFO`'s
/// `SK_MEMINFO_DROPS` (Linux 4.6 and later), the count `/proc/net/udp`
/// shows in its `drops` column and `SO_RXQ_OVFL` attaches to each receive.
/// `None` where the kernel does not tell.
///
/// Asked of the socket itself, not looked up in `/proc/net/udp`: a table
/// found by port cannot tell apart the sockets that share one
/// (`SO_REUSEPORT`, a group's members on one host), and the kernel writes
/// that table a read at a time, resuming each by counting lines, so that a
/// socket closed meanwhile elsewhere can make it skip a line.
pub fn kernel_drops(socket: &SockRef<'_>) -> Option<u64> {
    #[cfg(target_os = "linux")]
    {
        meminfo_drops(socket)
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = socket;
        None
    }
}

#[cfg(target_os = "linux")]
fn meminfo_drops(socket: &SockRef<'_>) -> Option<u64> {
    use std::os::fd::AsRawFd;

    /// `SO_MEMINFO` (asm-generic/socket.h; sparc numbers it apart). The
    /// libc crate has the `SK_MEMINFO_*` indices but not the option.
    #[cfg(not(any(target_arch = "sparc", target_arch = "sparc64")))]
    const SO_MEMINFO: libc::c_int = 55;
    #[cfg(any(target_arch = "sparc", target_arch = "sparc64"))]
    const SO_MEMINFO: libc::c_int = 0x39;
    const DROPS: usize = libc::SK_MEMINFO_DROPS as usize;

    // The kernel copies at most `len` bytes of its array and says how many
    // it copied: an older kernel, with fewer entries, copies fewer.
    let mut info = [0u32; DROPS + 1];
    let mut len = libc::socklen_t::try_from(size_of_val(&info)).ok()?;
    // SAFETY: `info` is valid for `len` bytes of writes, and `len` for its
    // own; the descriptor is borrowed from a live socket for the call.
    let rc = unsafe {
        libc::getsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            SO_MEMINFO,
            info.as_mut_ptr().cast(),
            &mut len,
        )
    };
    let copied = usize::try_from(len).ok()?;
    (rc == 0 && copied >= size_of_val(&info)).then(|| u64::from(info[DROPS]))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A datagram answered where it lies leaves its place to the next; one
    /// split off keeps its bytes while the next arrives.
    #[test]
    fn a_datagram_is_received_in_place_and_kept_once_split_off() {
        let receiver = UdpSocket::bind("127.0.0.1:0").unwrap();
        receiver
            .set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .unwrap();
        let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
        for datagram in [&b"one"[..], b"two", b"three"] {
            sender
                .send_to(datagram, receiver.local_addr().unwrap())
                .unwrap();
        }
        let mut buf = BytesMut::new();
        let recv = |buf: &mut BytesMut| match recv_datagram(&receiver, buf, Wait::Sleep).unwrap() {
            Got::Data(from) => assert_eq!(from, sender.local_addr().unwrap()),
            Got::Nothing => panic!("a datagram within 5 s"),
        };
        recv(&mut buf);
        assert_eq!(&buf[..], b"one");
        let place = buf.as_ptr();
        recv(&mut buf);
        assert_eq!((&buf[..], buf.as_ptr()), (&b"two"[..], place));
        let kept = buf.split().freeze();
        recv(&mut buf);
        assert_eq!((&buf[..], &kept[..]), (&b"three"[..], &b"two"[..]));
    }

    /// Two sockets share a port (`SO_REUSEPORT`, as a group's members on
    /// one host do); a burst from one sender goes to one of them, whose
    /// small buffer overflows. Each socket's count is its own: the one
    /// that got the burst counts every datagram it could not queue, the
    /// other none (a lookup by port in `/proc/net/udp` would give both the
    /// first one's line).
    #[cfg(target_os = "linux")]
    #[test]
    fn each_socket_on_a_shared_port_counts_its_own_drops() {
        use socket2::{Domain, Socket, Type};

        const SENT: u64 = 500;
        let shared = |addr: SocketAddr| {
            let socket = Socket::new(Domain::IPV4, Type::DGRAM, None).unwrap();
            socket.set_reuse_port(true).unwrap();
            socket.set_recv_buffer_size(4096).unwrap();
            socket.bind(&addr.into()).unwrap();
            UdpSocket::from(socket)
        };
        let first = shared("127.0.0.1:0".parse().unwrap());
        let second = shared(first.local_addr().unwrap());
        let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
        for _ in 0..SENT {
            sender
                .send_to(&[0; 1000], first.local_addr().unwrap())
                .unwrap();
        }
        let counted: Vec<(u64, u64)> = [&first, &second]
            .iter()
            .map(|socket| {
                let sock = SockRef::from(*socket);
                let drops = kernel_drops(&sock).expect("SO_MEMINFO answers on Linux");
                (drops, discard_waiting(&sock, SENT))
            })
            .collect();
        let (drops, queued): (Vec<u64>, Vec<u64>) = counted.iter().copied().unzip();
        assert_eq!(
            drops.iter().sum::<u64>() + queued.iter().sum::<u64>(),
            SENT,
            "{counted:?}"
        );
        assert!(
            drops.iter().any(|&d| d > 0),
            "a 4 KiB buffer took 500 KB: {counted:?}"
        );
        // The burst went to one socket: the other dropped and queued nothing.
        assert!(counted.contains(&(0, 0)), "{counted:?}");
    }
}
