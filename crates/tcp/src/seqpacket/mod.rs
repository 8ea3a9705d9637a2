//! Unix sequenced-packet sockets (`AF_UNIX`, `SOCK_SEQPACKET`): a
//! connection, like a stream, that keeps each send's boundary, like a
//! datagram: what many people wish TCP were. Every send is one packet,
//! received whole by one receive, in order, never lost, never glued to the
//! next.
//!
//! msg runs its stream features over it unchanged ([`SeqpacketStream`] is
//! a [`Stream`]): a framed message is still a 4-byte length and the
//! message, which here is redundant but keeps one code path for every
//! connection. What the boundaries buy shows in raw mode: each packet is
//! one read, so a listener shows each of a peer's sends as its own message,
//! which over a byte stream it cannot.
//!
//! Reads go through a buffer of [`MAX_PACKET`] bytes, as large as the
//! largest packet Linux's default socket buffers let a peer send, so that a
//! packet is never cut short by a small read: a read hands out the rest of
//! one packet at most, never the start of the next. A larger packet is an
//! error that names the limit, never silently truncated. A write larger
//! than one packet may be is sent as several (a framed message's reader
//! puts them back together; [`max_packet`] says how large a raw one may
//! be).
//!
//! The addresses, the socket file and the peer's credentials are a Unix
//! stream's (`unix/`).

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use nix::sys::socket::{MsgFlags, recv, send};
use socket2::{Domain, SockRef, Socket, Type};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::UnixListener;

use crate::readiness::{Reader, Writer};

use crate::unix::{UnixPath, UnixPeer, peer_cred};
use crate::{Accept, Options, PeerAddr, Stream};

/// The largest packet msg receives: Linux's default socket buffer
/// (`net.core.wmem_default`, 212,992 bytes) less its 32 bytes of
/// bookkeeping bounds what a peer sends unless it raised its own, and this
/// is a little more than that.
pub const MAX_PACKET: usize = 256 * 1024;

/// The largest packet `socket` can send: its send buffer less the
/// kernel's 32 bytes of bookkeeping, and never more than a receiver takes
/// ([`MAX_PACKET`]).
///
/// # Errors
///
/// The operating system's.
pub fn max_packet(socket: &impl AsFd) -> io::Result<usize> {
    let sndbuf = SockRef::from(socket).send_buffer_size()?;
    Ok(sndbuf.saturating_sub(32).min(MAX_PACKET))
}

/// One packet received into `buf`, whole; a packet larger than `buf` is an
/// error, not a short read.
fn recv_packet(fd: BorrowedFd<'_>, buf: &mut [u8], flags: MsgFlags) -> io::Result<usize> {
    // MSG_TRUNC: the packet's real length, even when it did not fit.
    let len = recv(fd.as_raw_fd(), buf, flags | MsgFlags::MSG_TRUNC)?;
    check_whole(len, buf.len())
}

/// `len`, a packet's real length (`MSG_TRUNC`), when it fitted `room`;
/// else the error that names the limit.
fn check_whole(len: usize, room: usize) -> io::Result<usize> {
    if len > room {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("a {len}-byte packet arrived; msg receives packets of at most {room} bytes"),
        ));
    }
    Ok(len)
}

/// What is left of the last packet received, handed out in order.
#[derive(Debug)]
struct Packet {
    buf: Box<[u8]>,
    start: usize,
    end: usize,
}

impl Packet {
    fn new() -> Self {
        Self {
            buf: vec![0; MAX_PACKET].into_boxed_slice(),
            start: 0,
            end: 0,
        }
    }

    /// Copies what it can of the packet into `out`: how much.
    fn take(&mut self, out: &mut [u8]) -> usize {
        let n = out.len().min(self.end - self.start);
        out[..n].copy_from_slice(&self.buf[self.start..self.start + n]);
        self.start += n;
        n
    }

    /// As [`Packet::take`], into what `out` has not filled yet, which it
    /// need not initialise first: zeroing all of a reader's room (8 KiB
    /// and more) before copying a 64-byte packet into it was four in ten
    /// of a tokio ping-pong's instructions.
    fn take_into(&mut self, out: &mut ReadBuf<'_>) {
        let n = out.remaining().min(self.end - self.start);
        out.put_slice(&self.buf[self.start..self.start + n]);
        self.start += n;
    }

    fn is_empty(&self) -> bool {
        self.start == self.end
    }

    /// Receives the next packet with `recv`, when this one is used up.
    fn fill(&mut self, recv: impl FnOnce(&mut [u8]) -> io::Result<usize>) -> io::Result<()> {
        self.end = recv(&mut self.buf)?;
        self.start = 0;
        Ok(())
    }
}

/// `bufs`, when together they fit one packet of at most `max` bytes (and
/// are not too many for one `sendmsg`).
pub(super) fn one_packet<'a, 'b>(
    bufs: &'a [io::IoSlice<'b>],
    max: usize,
) -> Option<&'a [io::IoSlice<'b>]> {
    let total: usize = bufs.iter().map(|b| b.len()).sum();
    (total <= max && bufs.len() <= 64).then_some(bufs)
}

mod blocking;
mod stream;

pub use blocking::SeqpacketStd;
pub use stream::{SeqpacketReader, SeqpacketStream, SeqpacketWriter};

/// A listening `SOCK_SEQPACKET` socket on the tokio runtime (held as a
/// tokio `UnixListener`: accepting is the same call for every type).
#[derive(Debug)]
pub struct SeqpacketListener {
    listener: UnixListener,
}

impl SeqpacketListener {
    /// Listens with `socket`, bound and listening (see
    /// [`unix::bind_socket`](crate::unix::bind_socket)).
    ///
    /// # Errors
    ///
    /// The operating system's.
    pub fn new(socket: Socket) -> io::Result<Self> {
        socket.set_nonblocking(true)?;
        let listener = std::os::unix::net::UnixListener::from(OwnedFd::from(socket));
        Ok(Self {
            listener: UnixListener::from_std(listener)?,
        })
    }
}

impl AsFd for SeqpacketListener {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.listener.as_fd()
    }
}

impl Accept for SeqpacketListener {
    type Stream = SeqpacketStream;

    fn poll_accept(&self, cx: &mut Context<'_>) -> Poll<io::Result<(SeqpacketStream, PeerAddr)>> {
        let (accepted, _) = ready!(self.listener.poll_accept(cx))?;
        let stream = SeqpacketStream::new(accepted.into_std()?)?;
        let peer = stream.peer_addr()?;
        Poll::Ready(Ok((stream, peer)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn pair() -> (Socket, Socket) {
        Socket::pair(Domain::UNIX, Type::SEQPACKET, None).unwrap()
    }

    #[tokio::test]
    async fn each_write_is_one_packet_and_one_read() {
        let (a, b) = pair();
        let mut a = SeqpacketStream::new(OwnedFd::from(a).into()).unwrap();
        let mut b = SeqpacketStream::new(OwnedFd::from(b).into()).unwrap();
        a.write_all(b"hello").await.unwrap();
        a.write_all(b"egg").await.unwrap();
        let mut buf = [0u8; 64];
        assert_eq!(b.read(&mut buf).await.unwrap(), 5, "glued to the next");
        assert_eq!(&buf[..5], b"hello");
        assert_eq!(b.read(&mut buf).await.unwrap(), 3);
        // A small read takes the rest of one packet, never the next's.
        a.write_all(b"abcdef").await.unwrap();
        a.write_all(b"xyz").await.unwrap();
        assert_eq!(b.read(&mut buf[..4]).await.unwrap(), 4);
        assert_eq!(b.read(&mut buf).await.unwrap(), 2);
        assert_eq!(&buf[..2], b"ef");
        assert_eq!(b.read(&mut buf).await.unwrap(), 3);
        drop(a);
        assert_eq!(
            b.read(&mut buf).await.unwrap(),
            0,
            "the end of the connection"
        );
    }

    #[tokio::test]
    async fn a_write_larger_than_a_packet_arrives_in_order() {
        let (a, b) = pair();
        let mut a = SeqpacketStream::new(OwnedFd::from(a).into()).unwrap();
        let mut b = SeqpacketStream::new(OwnedFd::from(b).into()).unwrap();
        let big: Vec<u8> = (0..1_000_000u32).map(|n| (n % 253) as u8).collect();
        let sent = big.clone();
        let writer = tokio::spawn(async move {
            a.write_all(&sent).await.unwrap();
            a.shutdown().await.unwrap();
        });
        let mut got = Vec::new();
        b.read_to_end(&mut got).await.unwrap();
        writer.await.unwrap();
        assert_eq!(got, big);
    }

    #[test]
    fn a_packet_too_large_to_receive_is_an_error_not_a_short_read() {
        let (a, b) = pair();
        a.set_send_buffer_size(4 * MAX_PACKET).unwrap();
        let big = vec![7u8; MAX_PACKET + 1];
        assert_eq!(
            send(a.as_raw_fd(), &big, MsgFlags::empty()).unwrap(),
            big.len()
        );
        let mut b = SeqpacketStd::new(b).unwrap();
        let mut buf = vec![0u8; 16];
        let err = io::Read::read(&mut b, &mut buf).unwrap_err();
        assert!(err.to_string().contains("at most 262144"), "{err}");

        // Received straight into a room larger still: the same limit.
        assert_eq!(
            send(a.as_raw_fd(), &big, MsgFlags::empty()).unwrap(),
            big.len()
        );
        let mut room = vec![std::mem::MaybeUninit::new(0); 2 * MAX_PACKET];
        let err = b.recv_uninit(&mut room, MsgFlags::empty()).unwrap_err();
        assert!(err.to_string().contains("at most 262144"), "{err}");
    }

    /// A room for the largest packet takes each packet straight, and a
    /// smaller one takes it through the socket's own buffer, a piece at a
    /// time: the same bytes, the same boundaries, either way.
    #[test]
    fn a_packet_is_received_whole_into_room_enough_and_in_pieces_into_less() {
        let (a, b) = pair();
        let mut b = SeqpacketStd::new(b).unwrap();
        let packets: [&[u8]; 3] = [b"first packet", b"second", b"third one"];
        for packet in packets {
            assert_eq!(
                send(a.as_raw_fd(), packet, MsgFlags::empty()).unwrap(),
                packet.len()
            );
        }
        let mut room = vec![std::mem::MaybeUninit::new(0); MAX_PACKET];
        let read = |b: &mut SeqpacketStd, room: &mut [std::mem::MaybeUninit<u8>]| {
            let n = b.recv_uninit(room, MsgFlags::empty()).unwrap();
            room[..n]
                .iter()
                // SAFETY: the receive wrote these `n` bytes.
                .map(|byte| unsafe { byte.assume_init() })
                .collect::<Vec<u8>>()
        };
        assert_eq!(read(&mut b, &mut room), packets[0]);
        // Less room: the rest of a packet waits in the socket's buffer,
        // and the next read takes it, not the next packet.
        assert_eq!(read(&mut b, &mut room[..4]), b"seco");
        assert_eq!(read(&mut b, &mut room), b"nd");
        assert_eq!(read(&mut b, &mut room), packets[2]);
    }

    #[test]
    fn a_vectored_write_is_one_packet() {
        let (a, b) = pair();
        let mut a = SeqpacketStd::new(a).unwrap();
        let mut b = SeqpacketStd::new(b).unwrap();
        let slices = [io::IoSlice::new(b"head"), io::IoSlice::new(b"body")];
        assert_eq!(io::Write::write_vectored(&mut a, &slices).unwrap(), 8);
        let mut buf = [0u8; 16];
        assert_eq!(io::Read::read(&mut b, &mut buf).unwrap(), 8, "one packet");
        assert_eq!(&buf[..8], b"headbody");
    }

    #[test]
    fn the_blocking_twin_keeps_boundaries_too() {
        let (a, b) = pair();
        let mut a = SeqpacketStd::new(a).unwrap();
        let mut b = SeqpacketStd::new(b).unwrap();
        io::Write::write_all(&mut a, b"one").unwrap();
        io::Write::write_all(&mut a, b"two").unwrap();
        let mut buf = [0u8; 16];
        assert_eq!(io::Read::read(&mut b, &mut buf).unwrap(), 3);
        assert_eq!(io::Read::read(&mut b, &mut buf).unwrap(), 3);
        assert_eq!(&buf[..3], b"two");
    }
}
