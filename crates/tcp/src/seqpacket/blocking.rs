//! [`SeqpacketStd`]: a connected `SOCK_SEQPACKET` socket for the
//! blocking engine, std's `Read` and `Write` over whole packets.

use super::*;

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
    ///
    /// Into `spare` itself when nothing of a packet is left over and it has
    /// room for the largest packet msg receives ([`MAX_PACKET`]): then no
    /// packet can be cut short there, and none is copied through this
    /// socket's own buffer first (on a ping-pong's every read, both sides).
    pub fn recv_uninit(
        &mut self,
        spare: &mut [std::mem::MaybeUninit<u8>],
        flags: MsgFlags,
    ) -> io::Result<usize> {
        if self.packet.is_empty() && spare.len() >= MAX_PACKET {
            let room = &mut spare[..MAX_PACKET];
            // MSG_TRUNC: the packet's real length, even when it did not
            // fit, as `recv_packet` reads it.
            let len = SockRef::from(&self.socket)
                .recv_with_flags(room, (flags | MsgFlags::MSG_TRUNC).bits())?;
            return check_whole(len, MAX_PACKET);
        }
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
