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
//! stream's (`unix.rs`).

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use nix::sys::socket::{MsgFlags, recv, send};
use socket2::{Domain, SockRef, Socket, Type};
use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf};
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{UnixListener, UnixStream};

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
    if len > buf.len() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "a {len}-byte packet arrived; msg receives packets of at most {} bytes",
                buf.len()
            ),
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

/// A connected `SOCK_SEQPACKET` socket on the tokio runtime.
///
/// It is held as a tokio `UnixStream`, for the runtime's readiness alone:
/// every receive and send is this file's own (`recv` that finds a
/// packet's length, `send` of at most one packet), never the stream's.
#[derive(Debug)]
pub struct SeqpacketStream {
    read: SeqpacketReader,
    write: SeqpacketWriter,
}

/// The reading half of a [`SeqpacketStream`].
#[derive(Debug)]
pub struct SeqpacketReader {
    half: OwnedReadHalf,
    packet: Packet,
}

/// The writing half of a [`SeqpacketStream`]; shutting it down, or
/// dropping it, ends the connection for the peer.
#[derive(Debug)]
pub struct SeqpacketWriter {
    half: OwnedWriteHalf,
    max_packet: usize,
}

impl SeqpacketStream {
    /// `socket`, connected or accepted, on the runtime.
    fn new(socket: std::os::unix::net::UnixStream) -> io::Result<Self> {
        socket.set_nonblocking(true)?;
        let max_packet = max_packet(&socket)?;
        let (half_r, half_w) = UnixStream::from_std(socket)?.into_split();
        Ok(Self {
            read: SeqpacketReader {
                half: half_r,
                packet: Packet::new(),
            },
            write: SeqpacketWriter {
                half: half_w,
                max_packet,
            },
        })
    }

    /// Connects to `path`: queued or refused at once, as a local connect
    /// is.
    ///
    /// # Errors
    ///
    /// The operating system's.
    pub fn connect(path: &UnixPath) -> io::Result<Self> {
        let socket = Socket::new(Domain::UNIX, Type::SEQPACKET, None)?;
        socket.set_nonblocking(true)?;
        socket.connect(&path.sock_addr()?)?;
        Self::new(OwnedFd::from(socket).into())
    }

    /// The largest packet one write sends whole.
    pub fn max_packet(&self) -> usize {
        self.write.max_packet
    }

    fn stream(&self) -> &UnixStream {
        self.read.half.as_ref()
    }
}

impl AsyncRead for SeqpacketReader {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        while this.packet.is_empty() {
            let stream: &UnixStream = this.half.as_ref();
            ready!(stream.poll_read_ready(cx))?;
            let packet = &mut this.packet;
            let got = stream.try_io(Interest::READABLE, || {
                packet.fill(|buf| recv_packet(stream.as_fd(), buf, MsgFlags::MSG_DONTWAIT))
            });
            match got {
                Ok(()) => {
                    if packet.is_empty() {
                        // The end of the connection (a zero-length packet
                        // is sent by nobody msg talks to).
                        return Poll::Ready(Ok(()));
                    }
                }
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {}
                Err(err) => return Poll::Ready(Err(err)),
            }
        }
        let n = this.packet.take(out.initialize_unfilled());
        out.advance(n);
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for SeqpacketWriter {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        // One packet per write, at most as large as one may be: a longer
        // write is sent in several, each whole.
        let buf = &buf[..buf.len().min(self.max_packet)];
        let stream: &UnixStream = self.half.as_ref();
        loop {
            ready!(stream.poll_write_ready(cx))?;
            let sent = stream.try_io(Interest::WRITABLE, || {
                let flags = MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_NOSIGNAL;
                Ok(send(stream.as_fd().as_raw_fd(), buf, flags)?)
            });
            match sent {
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {}
                result => return Poll::Ready(result),
            }
        }
    }

    /// The slices as one packet, as [`SeqpacketStd`]'s `write_vectored`.
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let Some(bufs) = one_packet(bufs, self.max_packet) else {
            let first = bufs.iter().find(|b| !b.is_empty()).map_or(&[][..], |b| b);
            return self.poll_write(cx, first);
        };
        let stream: &UnixStream = self.half.as_ref();
        loop {
            ready!(stream.poll_write_ready(cx))?;
            let sent = stream.try_io(Interest::WRITABLE, || {
                SockRef::from(stream).send_vectored(bufs)
            });
            match sent {
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {}
                result => return Poll::Ready(result),
            }
        }
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().half).poll_shutdown(cx)
    }
}

/// `bufs`, when together they fit one packet of at most `max` bytes (and
/// are not too many for one `sendmsg`).
fn one_packet<'a, 'b>(bufs: &'a [io::IoSlice<'b>], max: usize) -> Option<&'a [io::IoSlice<'b>]> {
    let total: usize = bufs.iter().map(|b| b.len()).sum();
    (total <= max && bufs.len() <= 64).then_some(bufs)
}

impl AsyncRead for SeqpacketStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().read).poll_read(cx, out)
    }
}

impl AsyncWrite for SeqpacketStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().write).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().write).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().write).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().write).poll_shutdown(cx)
    }
}

impl Stream for SeqpacketStream {
    type Reader = SeqpacketReader;
    type Writer = SeqpacketWriter;

    /// No options: nothing waits to be coalesced, and a dead peer is seen
    /// at once.
    fn apply(&self, _options: &Options) -> io::Result<()> {
        Ok(())
    }

    fn peer_addr(&self) -> io::Result<PeerAddr> {
        Ok(PeerAddr::Unix(UnixPeer {
            path: None,
            cred: peer_cred(self.stream()),
        }))
    }

    fn into_split(self) -> (SeqpacketReader, SeqpacketWriter) {
        (self.read, self.write)
    }

    fn input_waiting(&self) -> bool {
        if !self.read.packet.is_empty() {
            return true;
        }
        let mut byte = [0u8];
        let flags = MsgFlags::MSG_PEEK | MsgFlags::MSG_DONTWAIT;
        match recv(self.stream().as_fd().as_raw_fd(), &mut byte, flags) {
            Ok(_) => true,
            Err(errno) => errno != nix::errno::Errno::EAGAIN,
        }
    }
}

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

impl Accept for SeqpacketListener {
    type Stream = SeqpacketStream;

    fn poll_accept(&self, cx: &mut Context<'_>) -> Poll<io::Result<(SeqpacketStream, PeerAddr)>> {
        let (accepted, _) = ready!(self.listener.poll_accept(cx))?;
        let stream = SeqpacketStream::new(accepted.into_std()?)?;
        let peer = stream.peer_addr()?;
        Poll::Ready(Ok((stream, peer)))
    }
}

/// A connected `SOCK_SEQPACKET` socket for the blocking engine: std's
/// `Read` and `Write` over whole packets, as [`SeqpacketStream`] is for
/// tokio.
#[derive(Debug)]
pub struct SeqpacketStd {
    socket: Socket,
    packet: Packet,
    max_packet: usize,
}

impl SeqpacketStd {
    /// `socket`, connected (or accepted) and blocking.
    ///
    /// # Errors
    ///
    /// The operating system's.
    pub fn new(socket: Socket) -> io::Result<Self> {
        Ok(Self {
            max_packet: max_packet(&socket)?,
            socket,
            packet: Packet::new(),
        })
    }

    /// Accepts the next connection on `listener`, a listening
    /// `SOCK_SEQPACKET` socket (blocking), with who made it.
    ///
    /// # Errors
    ///
    /// The operating system's; a timeout as `WouldBlock`.
    pub fn accept(listener: &Socket) -> io::Result<(Self, PeerAddr)> {
        let (socket, _) = listener.accept()?;
        let peer = PeerAddr::Unix(UnixPeer {
            path: None,
            cred: peer_cred(&socket),
        });
        Ok((Self::new(socket)?, peer))
    }

    /// Connects to `path`, blocking.
    ///
    /// # Errors
    ///
    /// The operating system's.
    pub fn connect(path: &UnixPath) -> io::Result<Self> {
        let socket = Socket::new(Domain::UNIX, Type::SEQPACKET, None)?;
        socket.connect(&path.sock_addr()?)?;
        Self::new(socket)
    }

    /// The socket, for its options (timeouts).
    pub fn socket(&self) -> &Socket {
        &self.socket
    }

    /// As [`SeqpacketStd::read_with_flags`], into memory not yet
    /// initialised (the blocking engine's read buffer's spare room).
    ///
    /// # Errors
    ///
    /// The socket's; an empty socket as `WouldBlock`.
    pub fn recv_uninit(
        &mut self,
        spare: &mut [std::mem::MaybeUninit<u8>],
        flags: MsgFlags,
    ) -> io::Result<usize> {
        if self.packet.is_empty() {
            let fd = self.socket.as_fd();
            self.packet.fill(|buf| recv_packet(fd, buf, flags))?;
        }
        let n = spare.len().min(self.packet.end - self.packet.start);
        let from = &self.packet.buf[self.packet.start..self.packet.start + n];
        for (to, byte) in spare.iter_mut().zip(from) {
            to.write(*byte);
        }
        self.packet.start += n;
        Ok(n)
    }

    /// Reads with `flags` (`MSG_DONTWAIT` while spinning): the rest of the
    /// current packet, or the next one.
    ///
    /// # Errors
    ///
    /// The socket's; an empty socket as `WouldBlock`.
    pub fn read_with_flags(&mut self, out: &mut [u8], flags: MsgFlags) -> io::Result<usize> {
        if self.packet.is_empty() {
            let fd = self.socket.as_fd();
            self.packet.fill(|buf| recv_packet(fd, buf, flags))?;
        }
        Ok(self.packet.take(out))
    }
}

impl AsFd for SeqpacketStd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.socket.as_fd()
    }
}

impl io::Read for SeqpacketStd {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        self.read_with_flags(out, MsgFlags::empty())
    }
}

impl io::Write for SeqpacketStd {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let buf = &buf[..buf.len().min(self.max_packet)];
        Ok(send(self.socket.as_raw_fd(), buf, MsgFlags::MSG_NOSIGNAL)?)
    }

    /// The slices as one packet (`sendmsg`), as a framed message's length,
    /// header and body should go: written one slice at a time, as std's
    /// default does, a message would cost a packet, and a system call on
    /// each side, per slice.
    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        match one_packet(bufs, self.max_packet) {
            Some(bufs) => SockRef::from(&self.socket).send_vectored(bufs),
            None => self.write(bufs.iter().find(|b| !b.is_empty()).map_or(&[][..], |b| b)),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
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
