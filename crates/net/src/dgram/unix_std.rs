//! [`UnixStd`]: the Unix datagram socket of the blocking engine, with
//! [`UnixDgram`]'s limits and framing on std's blocking calls.

use super::unix_peer::{
    Senders, UNIX_RECV_LEN, answer_dropped, max_datagram, recv_whole, send_answer, too_large,
};
use super::*;

/// A Unix datagram socket for the blocking engine: std's blocking calls,
/// the same framing and limits as [`UnixDgram`].
#[derive(Debug)]
pub(crate) struct UnixStd {
    // First, as in [`UnixDgram`].
    _file: Option<SocketFile>,
    pub(crate) socket: Socket,
    max_payload: usize,
    /// A listener's, once its serve loop asks: as [`UnixDgram`]'s. Set
    /// through a shared reference, as the blocking engine serves one.
    senders: std::sync::OnceLock<Senders>,
}

impl UnixStd {
    /// Binds `path` for a listener, as [`UnixDgram::bind`].
    pub(crate) fn bind(path: &UnixPath, mode: u32) -> Result<Self, Error> {
        let (socket, file) = msg_tcp::unix::bind_socket(path, mode, Type::DGRAM)?;
        Ok(Self {
            max_payload: max_datagram(&socket)?,
            _file: file,
            socket,
            senders: std::sync::OnceLock::new(),
        })
    }

    /// A client's socket, connected to `path` and autobound, as
    /// [`UnixDgram::connect`].
    pub(crate) fn connect(path: &UnixPath) -> io::Result<Self> {
        let socket = Socket::new(Domain::UNIX, Type::DGRAM, None)?;
        socket.bind(&SockAddr::unix("")?)?;
        socket.connect(&path.sock_addr()?)?;
        Ok(Self {
            max_payload: max_datagram(&socket)?,
            _file: None,
            socket,
            senders: std::sync::OnceLock::new(),
        })
    }

    /// As [`UnixDgram::ask_senders`]; only the first call's `allow_uids`
    /// hold.
    ///
    /// # Errors
    ///
    /// The operating system's, setting `SO_PASSCRED`.
    pub(crate) fn ask_senders(&self, allow_uids: &[u32]) -> io::Result<()> {
        let senders = Senders::ask(&SockRef::from(&self.socket), allow_uids)?;
        // A second ask finds the first in place, which asked the same.
        let _ = self.senders.set(senders);
        Ok(())
    }

    /// Where it is bound, as a peer's address.
    pub(crate) fn local_addr(&self) -> io::Result<PeerAddr> {
        Ok(UnixAddr::of(self.socket.local_addr()?).into())
    }

    /// Where it is connected (a client's: its listener).
    pub(crate) fn peer_addr(&self) -> io::Result<UnixAddr> {
        Ok(UnixAddr::of(self.socket.peer_addr()?))
    }

    /// Encodes `msg` into `buf` within this socket's limit and sends it,
    /// to `to` or, without, where it is connected.
    pub(crate) fn send(
        &self,
        framing: &mut Framing<UnixAddr>,
        buf: &mut BytesMut,
        msg: &Message,
        to: Option<&UnixAddr>,
    ) -> Result<(), Error> {
        buf.clear();
        self.encode(framing, buf, msg)?;
        self.send_bytes(buf, to)
    }

    /// Appends `msg`, as the one datagram that carries it, to `buf`,
    /// within this socket's limit.
    pub(crate) fn encode(
        &self,
        framing: &mut Framing<UnixAddr>,
        buf: &mut BytesMut,
        msg: &Message,
    ) -> Result<(), Error> {
        let max = self.max_payload;
        framing.encode_within(msg, buf, |len, overhead| {
            if len.saturating_add(overhead.total()) > max {
                return Err(msg_udp::Error::UnixTooLarge { len, max, overhead });
            }
            Ok(())
        })?;
        Ok(())
    }

    /// `bytes`, a whole datagram already framed, sent to `to` or, without,
    /// where it is connected.
    pub(crate) fn send_bytes(&self, bytes: &[u8], to: Option<&UnixAddr>) -> Result<(), Error> {
        // An answer never waits for room in its peer's queue (see
        // `unix::send_bytes`): this thread serves every other peer too.
        let sent = match to {
            Some(to) => send_answer(&SockRef::from(&self.socket), bytes, to, libc::MSG_DONTWAIT)
                .map_err(answer_dropped),
            // A client's send waits for room as long as the socket's send
            // timeout; run out, it is a stalled listener, not EAGAIN.
            None => self.socket.send(bytes).map_err(|err| {
                match (err.kind(), self.socket.write_timeout().ok().flatten()) {
                    (io::ErrorKind::WouldBlock, Some(waited)) => io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!(
                            "its queue stayed full for {} (the listener is not reading)",
                            humantime::format_duration(waited)
                        ),
                    ),
                    _ => err,
                }
            }),
        };
        sent.map(drop).map_err(|source| Error::UnixSend {
            addr: to.map_or_else(|| "the listener".to_owned(), UnixAddr::to_string),
            source,
        })
    }

    /// One datagram into `buf` with `flags` (`MSG_DONTWAIT` while
    /// spinning), which then holds it alone (as msg-udp's
    /// `sync::recv_datagram` leaves one), and its sender; a datagram larger
    /// than [`UNIX_RECV_LEN`] is dropped, as [`UnixDgram`] drops it.
    pub(crate) fn recv(&self, buf: &mut BytesMut, flags: i32) -> io::Result<UnixAddr> {
        let senders = self.senders.get();
        loop {
            let from = whole_datagram(buf, |spare| {
                let (_, got) = recv_whole(&SockRef::from(&self.socket), spare, flags, senders)?;
                Ok(got)
            })?;
            // One refused is dropped unread, and the next waited for.
            if senders.is_none_or(|senders| senders.admit(&from)) {
                return Ok(from);
            }
        }
    }

    /// As [`UnixStd::recv`], on a connected socket (a client's), whose
    /// datagrams all come from `peer`, where it is connected: without the
    /// kernel writing out each one's sender (`recv`, not `recvfrom`), as
    /// bench/floor.c's client receives.
    pub(crate) fn recv_connected(
        &self,
        buf: &mut BytesMut,
        flags: i32,
        peer: &UnixAddr,
    ) -> io::Result<()> {
        let socket = SockRef::from(&self.socket);
        whole_datagram(buf, |spare| {
            // MSG_TRUNC: the datagram's real length, even when it did not
            // fit.
            Ok((
                socket.recv_with_flags(spare, flags | libc::MSG_TRUNC)?,
                peer,
            ))
        })
        .map(drop)
    }
}

/// Receives with `recv` (which returns the datagram's real length,
/// `MSG_TRUNC`, and its sender) into `buf`, cleared first, until a
/// datagram fits [`UNIX_RECV_LEN`], which `buf` then holds alone; a larger
/// one, cut short in `buf`, is dropped and said so.
fn whole_datagram<P: fmt::Display>(
    buf: &mut BytesMut,
    mut recv: impl FnMut(&mut [std::mem::MaybeUninit<u8>]) -> io::Result<(usize, P)>,
) -> io::Result<P> {
    loop {
        // What the last receive left, answered where it lay; the room is
        // there already unless a datagram was split off.
        buf.clear();
        buf.reserve(UNIX_RECV_LEN);
        let (_, (len, from)) = msg_udp::recv_into(buf, |spare| {
            let room = spare.len();
            let (len, from) = recv(spare)?;
            Ok((len.min(room), (len, from)))
        })?;
        if len <= UNIX_RECV_LEN {
            return Ok(from);
        }
        too_large(len, &from);
    }
}

impl std::os::fd::AsFd for UnixStd {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.socket.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_datagram_over_the_largest_is_dropped_and_the_next_one_kept() {
        let mut buf = BytesMut::new();
        let mut calls = 0;
        let from = whole_datagram(&mut buf, |spare| {
            calls += 1;
            // The first fills all the room there is and is longer still,
            // as MSG_TRUNC says; the second fits.
            let (written, len) = if calls == 1 {
                (spare.len(), UNIX_RECV_LEN + 1)
            } else {
                (5, 5)
            };
            for byte in &mut spare[..written] {
                byte.write(b'x');
            }
            Ok((len, calls))
        })
        .unwrap();
        assert_eq!((&buf[..], from), (&b"xxxxx"[..], 2));
    }
}
