//! [`SeqpacketStream`]: a connected `SOCK_SEQPACKET` socket on the tokio
//! runtime, whole packets in and out, and its halves.

use super::*;

/// A connected `SOCK_SEQPACKET` socket on the tokio runtime.
///
/// Its halves are registered with the runtime as `readiness.rs` says
/// (readable events for the reader, writable ones only while a write
/// waits), and every receive and send is this file's own (`recv` that
/// finds a packet's length, `send` of at most one packet).
#[derive(Debug)]
pub struct SeqpacketStream {
    read: SeqpacketReader,
    write: SeqpacketWriter,
}

/// The reading half of a [`SeqpacketStream`].
#[derive(Debug)]
pub struct SeqpacketReader {
    half: Reader,
    packet: Packet,
}

/// The writing half of a [`SeqpacketStream`]; shutting it down, or
/// dropping it, ends the connection for the peer.
#[derive(Debug)]
pub struct SeqpacketWriter {
    half: Writer,
    max_packet: usize,
}

impl SeqpacketStream {
    /// `socket`, connected or accepted, on the runtime.
    pub(super) fn new(socket: std::os::unix::net::UnixStream) -> io::Result<Self> {
        socket.set_nonblocking(true)?;
        let max_packet = max_packet(&socket)?;
        let (half_r, half_w) = crate::readiness::split(socket.into())?;
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

    /// Waits until the peer has sent a packet or closed, taking nothing
    /// (as [`UnixStream::input`](crate::unix::UnixStream::input)).
    ///
    /// # Errors
    ///
    /// The socket's.
    pub async fn input(&self) -> io::Result<()> {
        if !self.read.packet.is_empty() {
            return Ok(());
        }
        self.read.half.input().await
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

    fn fd(&self) -> BorrowedFd<'_> {
        self.read.half.fd()
    }
}

impl AsyncRead for SeqpacketReader {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.packet.is_empty() {
            let packet = &mut this.packet;
            // A packet per receive, and no telling whether it was the
            // last one waiting: the readiness stays, and the next read
            // tries (one `EAGAIN` a message, which a stream's short read
            // spares it).
            ready!(this.half.poll_read_with(cx, |fd| {
                packet
                    .fill(|buf| recv_packet(fd, buf, MsgFlags::MSG_DONTWAIT))
                    .map(|()| ((), false))
            }))?;
            if packet.is_empty() {
                // The end of the connection (a zero-length packet is sent
                // by nobody msg talks to).
                return Poll::Ready(Ok(()));
            }
        }
        this.packet.take_into(out);
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
        self.get_mut().half.poll_send(cx, buf)
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
        self.get_mut().half.poll_send_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(self.half.shutdown())
    }
}

crate::readiness::by_halves!(SeqpacketStream);

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
            cred: peer_cred(&self.fd()),
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
        match recv(self.fd().as_raw_fd(), &mut byte, flags) {
            Ok(_) => true,
            Err(errno) => errno != nix::errno::Errno::EAGAIN,
        }
    }
}
