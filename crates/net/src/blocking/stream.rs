//! The blocking engine's stream family: every kind of std byte stream it
//! connects, binds and accepts, in one place, as the crate's `stream.rs`
//! is for the tokio engine.
//!
//! The link, the listener and the per-connection loop hold an
//! [`AnyStream`] or an [`AnyListener`] and frame it with [`Framed`](super::io::Framed)
//! whatever it is; a new kind of stream is a variant here and an arm in
//! [`connect`] and [`bind`].

use std::io;
use std::mem::MaybeUninit;
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::Duration;

use msg_tcp::PeerAddr;
use msg_tcp::seqpacket::SeqpacketStd;
use msg_tcp::unix::{SocketFile, UnixPath, UnixPeer};

use crate::stream::unix_path;
use crate::transport::StreamKind;
use crate::{Error, Transport};

/// A byte stream the blocking engine can frame: std's `Read` and `Write`,
/// plus the two socket calls a waiting reader needs, so that a Unix stream
/// can be framed as a TCP stream is.
pub(crate) trait Stream: io::Read + io::Write {
    /// One receive into `spare` with `flags` (`MSG_DONTWAIT` while
    /// spinning): the bytes received.
    ///
    /// # Errors
    ///
    /// The socket's; a timeout or an empty socket as `WouldBlock`.
    fn recv(&mut self, spare: &mut [MaybeUninit<u8>], flags: i32) -> io::Result<usize>;

    /// How long a sleeping receive waits at most.
    ///
    /// # Errors
    ///
    /// The socket's, rarely.
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()>;

    /// The room one read needs to take whatever arrives whole: 0 for a
    /// byte stream, which any room suits; a seqpacket socket's largest
    /// packet, which a smaller read takes through a buffer of its own and
    /// a copy.
    fn whole_read(&self) -> usize {
        0
    }
}

impl Stream for TcpStream {
    fn recv(&mut self, spare: &mut [MaybeUninit<u8>], flags: i32) -> io::Result<usize> {
        socket2::SockRef::from(&*self).recv_with_flags(spare, flags)
    }

    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        Self::set_read_timeout(self, timeout)
    }
}

impl Stream for UnixStream {
    fn recv(&mut self, spare: &mut [MaybeUninit<u8>], flags: i32) -> io::Result<usize> {
        socket2::SockRef::from(&*self).recv_with_flags(spare, flags)
    }

    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        Self::set_read_timeout(self, timeout)
    }
}

/// A Unix stream socket whose sleeping receive waits in `poll` for input,
/// not in `recv`.
///
/// Linux wakes a reader asleep in a Unix stream's `recv` whenever its peer
/// frees what this socket sent (`unix_write_space`: the sender's wait
/// queue is the one its reader sleeps on, and `recv`'s wait takes every
/// wake-up, whatever it is for), with nothing to read yet. In a ping-pong
/// on one core, that wake-up comes while the peer is answering, and often
/// preempts it: two more context switches, the woken reader finding
/// nothing and going back to sleep, in a quarter to a third of the round
/// trips (bench/floor.c's too), each such mode about a microsecond above
/// the last. `poll` for `POLLIN` is woken only for input, so that never
/// happens: a round trip costs two context switches (2.00 measured,
/// against 2.6 to 2.9 sleeping in `recv`). Asked first without waiting, a receive whose data is there
/// costs one call, as before; one that must wait, three (`recv`, `poll`,
/// `recv`), each much cheaper than the context switches they save
/// (BENCHMARKS.md, "The Unix stream's gap to the floor").
#[derive(Debug)]
pub(crate) struct UnixConn {
    stream: UnixStream,
    /// The read timeout last set, for `poll`: milliseconds, rounded up,
    /// or -1 for none (the socket's `SO_RCVTIMEO` is set as well, for the
    /// calls that sleep in the socket: a peek, a plain read).
    poll_timeout: AtomicI32,
}

impl UnixConn {
    fn new(stream: UnixStream) -> Self {
        Self {
            stream,
            poll_timeout: AtomicI32::new(-1),
        }
    }

    /// Sleeps until the socket has input (or an error, or its end), at
    /// most the read timeout: a timeout as `WouldBlock`, as a sleeping
    /// `recv` reports it.
    fn wait_readable(&self) -> io::Result<()> {
        let mut fd = libc::pollfd {
            fd: self.stream.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let timeout = self.poll_timeout.load(Ordering::Relaxed);
        // SAFETY: one valid pollfd, for the length of the call.
        match unsafe { libc::poll(&raw mut fd, 1, timeout) } {
            0 => Err(io::ErrorKind::WouldBlock.into()),
            n if n > 0 => Ok(()),
            _ => Err(io::Error::last_os_error()),
        }
    }

    /// [`Stream::recv`]'s: without `MSG_DONTWAIT`, a receive that sleeps
    /// in `poll` (see [`UnixConn`]).
    fn recv(&mut self, spare: &mut [MaybeUninit<u8>], flags: i32) -> io::Result<usize> {
        let socket = socket2::SockRef::from(&self.stream);
        if flags & libc::MSG_DONTWAIT != 0 {
            return socket.recv_with_flags(spare, flags);
        }
        match socket.recv_with_flags(spare, flags | libc::MSG_DONTWAIT) {
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => {}
            got => return got,
        }
        self.wait_readable()?;
        // Input, an error or the end: this does not block. (Nothing after
        // all, which no other reader of this socket makes happen, reads
        // as a timeout, and the caller asks again.)
        socket.recv_with_flags(spare, flags | libc::MSG_DONTWAIT)
    }

    /// [`Stream::set_read_timeout`]'s: the socket's, and `poll`'s.
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.stream.set_read_timeout(timeout)?;
        let millis = timeout.map_or(-1, |timeout| {
            // Rounded up: a wait of less than a millisecond is not a spin.
            let millis = timeout.as_nanos().div_ceil(1_000_000);
            i32::try_from(millis).unwrap_or(i32::MAX)
        });
        self.poll_timeout.store(millis, Ordering::Relaxed);
        Ok(())
    }
}

/// A connected std byte stream of any kind.
#[derive(Debug)]
pub(crate) enum AnyStream {
    /// A TCP connection.
    Tcp(TcpStream),
    /// A Unix stream socket.
    Unix(UnixConn),
    /// A Unix sequenced-packet socket.
    Seqpacket(SeqpacketStd),
}

/// A listening std socket of any stream kind.
#[derive(Debug)]
pub(crate) enum AnyListener {
    /// A TCP listener.
    Tcp(TcpListener),
    /// A Unix stream listener, its address and its socket file (see the
    /// tokio engine's).
    Unix {
        // First, so that it goes first: the file is removed while the
        // socket still listens, and nobody can take it for stale and
        // replace it in between.
        _file: Option<SocketFile>,
        listener: UnixListener,
        path: UnixPath,
    },
    /// A Unix sequenced-packet listener, the same way.
    Seqpacket {
        // First, as for a Unix stream listener.
        _file: Option<SocketFile>,
        listener: socket2::Socket,
        path: UnixPath,
    },
}

/// Connects a stream of `kind` to `addr` within `timeout`.
pub(crate) fn connect(
    kind: StreamKind,
    addr: &PeerAddr,
    timeout: Duration,
) -> Result<AnyStream, Error> {
    let failed = |source| -> Error {
        msg_tcp::Error::Connect {
            addr: addr.clone(),
            source,
        }
        .into()
    };
    match kind {
        StreamKind::Tcp => {
            let ip = Transport::Tcp.inet(addr)?;
            TcpStream::connect_timeout(&ip, timeout)
                .map(AnyStream::Tcp)
                .map_err(failed)
        }
        // A local connect is queued or refused at once: no timeout to keep.
        StreamKind::Unix => msg_tcp::unix::connect_std(unix_path(addr)?)
            .map(|stream| AnyStream::Unix(UnixConn::new(stream)))
            .map_err(failed),
        StreamKind::Seqpacket => SeqpacketStd::connect(unix_path(addr)?)
            .map(AnyStream::Seqpacket)
            .map_err(failed),
        // quinn runs on tokio only.
        StreamKind::Quic => Err(Error::NotInBlockingEngine("QUIC")),
    }
}

/// Binds a listener of `kind` on `addr` (msg-tcp's backlog and address
/// reuse for TCP, its socket file for a Unix socket, the same as the tokio
/// listener's).
pub(crate) fn bind(
    kind: StreamKind,
    addr: &PeerAddr,
    options: &msg_tcp::Options,
) -> Result<AnyListener, Error> {
    let failed = |source| -> Error {
        msg_tcp::Error::Bind {
            addr: addr.clone(),
            source,
        }
        .into()
    };
    match kind {
        StreamKind::Tcp => {
            let ip = Transport::Tcp.inet(addr)?;
            msg_tcp::tcp::listen(ip)
                .map(AnyListener::Tcp)
                .map_err(failed)
        }
        StreamKind::Unix => {
            let path = unix_path(addr)?;
            let (listener, file) = msg_tcp::unix::bind(path, options.socket_mode)?;
            Ok(AnyListener::Unix {
                listener,
                path: path.clone(),
                _file: file,
            })
        }
        StreamKind::Seqpacket => {
            let path = unix_path(addr)?;
            let (listener, file) =
                msg_tcp::unix::bind_socket(path, options.socket_mode, socket2::Type::SEQPACKET)?;
            Ok(AnyListener::Seqpacket {
                listener,
                path: path.clone(),
                _file: file,
            })
        }
        StreamKind::Quic => Err(Error::NotInBlockingEngine("QUIC")),
    }
}

impl AnyStream {
    /// Waits, at most the socket's read timeout, until the peer has sent
    /// something or closed, taking nothing (`MSG_PEEK`; a timeout is
    /// `WouldBlock`).
    ///
    /// # Errors
    ///
    /// The socket's, and its timeout.
    pub(crate) fn peek_input(&self) -> io::Result<()> {
        let mut byte = [MaybeUninit::uninit()];
        let socket = match self {
            Self::Tcp(stream) => socket2::SockRef::from(stream),
            Self::Unix(conn) => socket2::SockRef::from(&conn.stream),
            Self::Seqpacket(stream) => socket2::SockRef::from(stream.socket()),
        };
        socket.peek(&mut byte).map(drop)
    }

    /// Sets the options of `options` this kind has (over TCP,
    /// `TCP_NODELAY`).
    pub(crate) fn apply(&self, options: &msg_tcp::Options) -> io::Result<()> {
        match self {
            Self::Tcp(stream) => stream.set_nodelay(options.nodelay),
            Self::Unix(_) | Self::Seqpacket(_) => Ok(()),
        }
    }

    /// How long a write may block at most.
    pub(crate) fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        match self {
            Self::Tcp(stream) => stream.set_write_timeout(timeout),
            Self::Unix(conn) => conn.stream.set_write_timeout(timeout),
            Self::Seqpacket(stream) => stream.socket().set_write_timeout(timeout),
        }
    }

    /// Keepalive probes after `after` of silence, where the kind has them.
    pub(crate) fn keepalive(&self, after: Option<Duration>) {
        match self {
            Self::Tcp(stream) => msg_tcp::tcp::keepalive(stream, after),
            Self::Unix(_) | Self::Seqpacket(_) => {}
        }
    }
}

impl AnyListener {
    /// The next connection and its peer, waiting at most the timeout set
    /// by [`AnyListener::set_accept_timeout`].
    ///
    /// # Errors
    ///
    /// The operating system's; a timeout as `WouldBlock` or `TimedOut`.
    pub(crate) fn accept(&self) -> io::Result<(AnyStream, PeerAddr)> {
        match self {
            Self::Tcp(listener) => listener
                .accept()
                .map(|(stream, peer)| (AnyStream::Tcp(stream), peer.into())),
            Self::Unix { listener, .. } => listener.accept().map(|(stream, _)| {
                let peer = unix_peer(&stream);
                (AnyStream::Unix(UnixConn::new(stream)), peer)
            }),
            Self::Seqpacket { listener, .. } => SeqpacketStd::accept(listener)
                .map(|(stream, peer)| (AnyStream::Seqpacket(stream), peer)),
        }
    }

    /// Whether a connection waits to be accepted now (see
    /// [`open_files::waiting`](crate::open_files::waiting)).
    pub(crate) fn waiting(&self) -> bool {
        use crate::open_files::waiting;
        match self {
            Self::Tcp(listener) => waiting(listener),
            Self::Unix { listener, .. } => waiting(listener),
            Self::Seqpacket { listener, .. } => waiting(listener),
        }
    }

    /// Bounds each [`AnyListener::accept`]: Linux bounds a blocking accept
    /// by the socket's receive timeout.
    pub(crate) fn set_accept_timeout(&self, timeout: Duration) -> io::Result<()> {
        match self {
            Self::Tcp(listener) => socket2::SockRef::from(listener).set_read_timeout(Some(timeout)),
            Self::Unix { listener, .. } => {
                socket2::SockRef::from(listener).set_read_timeout(Some(timeout))
            }
            Self::Seqpacket { listener, .. } => listener.set_read_timeout(Some(timeout)),
        }
    }

    /// The local address.
    pub(crate) fn local_addr(&self) -> io::Result<PeerAddr> {
        match self {
            Self::Tcp(listener) => listener.local_addr().map(PeerAddr::Inet),
            Self::Unix { path, .. } | Self::Seqpacket { path, .. } => {
                Ok(PeerAddr::Unix(UnixPeer {
                    path: Some(path.clone()),
                    cred: None,
                }))
            }
        }
    }
}

impl io::Read for AnyStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Self::Tcp(stream) => stream.read(buf),
            Self::Unix(conn) => conn.stream.read(buf),
            Self::Seqpacket(stream) => stream.read(buf),
        }
    }
}

impl io::Write for AnyStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Self::Tcp(stream) => stream.write(buf),
            Self::Unix(conn) => conn.stream.write(buf),
            Self::Seqpacket(stream) => stream.write(buf),
        }
    }

    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        match self {
            Self::Tcp(stream) => stream.write_vectored(bufs),
            Self::Unix(conn) => conn.stream.write_vectored(bufs),
            // One packet per call, every slice in it (sendmsg).
            Self::Seqpacket(stream) => stream.write_vectored(bufs),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Self::Tcp(stream) => stream.flush(),
            Self::Unix(conn) => conn.stream.flush(),
            Self::Seqpacket(stream) => stream.flush(),
        }
    }
}

impl Stream for AnyStream {
    fn recv(&mut self, spare: &mut [MaybeUninit<u8>], flags: i32) -> io::Result<usize> {
        match self {
            Self::Tcp(stream) => stream.recv(spare, flags),
            Self::Unix(conn) => conn.recv(spare, flags),
            Self::Seqpacket(stream) => {
                stream.recv_uninit(spare, nix::sys::socket::MsgFlags::from_bits_truncate(flags))
            }
        }
    }

    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        match self {
            Self::Tcp(stream) => Stream::set_read_timeout(stream, timeout),
            Self::Unix(conn) => conn.set_read_timeout(timeout),
            Self::Seqpacket(stream) => stream.socket().set_read_timeout(timeout),
        }
    }

    fn whole_read(&self) -> usize {
        match self {
            Self::Tcp(_) | Self::Unix(_) => 0,
            Self::Seqpacket(_) => msg_tcp::seqpacket::MAX_PACKET,
        }
    }
}

/// Who connected to a Unix listener, as the kernel says (`SO_PEERCRED`).
fn unix_peer(stream: &UnixStream) -> PeerAddr {
    PeerAddr::Unix(UnixPeer {
        path: None,
        cred: msg_tcp::unix::peer_cred(stream),
    })
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::time::Instant;

    use super::*;

    /// A Unix stream's sleeping receive waits in `poll`: for input (which
    /// wakes it), for the end of the stream (0, at once), or at most its
    /// read timeout (reported as a sleeping `recv` reports one); a
    /// spinning one does not wait at all.
    #[test]
    fn a_unix_stream_sleeps_in_poll_until_input_its_end_or_its_timeout() {
        let (ours, mut theirs) = UnixStream::pair().unwrap();
        let mut conn = UnixConn::new(ours);
        let mut buf = [MaybeUninit::uninit(); 16];

        conn.set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let started = Instant::now();
        let err = conn.recv(&mut buf, 0).unwrap_err();
        assert!(super::super::io::timed_out(&err), "{err}");
        assert!(started.elapsed() >= Duration::from_millis(50));
        // The socket has it too (in the kernel's ticks), for the calls
        // that sleep in it.
        let socket = conn.stream.read_timeout().unwrap();
        assert!(
            socket.is_some_and(|t| t >= Duration::from_millis(50)),
            "{socket:?}"
        );

        let started = Instant::now();
        let err = conn.recv(&mut buf, libc::MSG_DONTWAIT).unwrap_err();
        assert!(super::super::io::timed_out(&err), "{err}");
        assert!(started.elapsed() < Duration::from_millis(50));

        conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let writer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            theirs.write_all(b"ping").unwrap();
            theirs
        });
        assert_eq!(conn.recv(&mut buf, 0).unwrap(), 4);
        drop(writer.join().unwrap());
        assert_eq!(conn.recv(&mut buf, 0).unwrap(), 0);
    }

    /// A timeout under a millisecond still waits (`poll` counts in
    /// milliseconds: rounded up, not down to a spin), and none waits for
    /// as long as it takes.
    #[test]
    fn a_unix_streams_poll_timeout_is_rounded_up_to_a_millisecond() {
        let (ours, _theirs) = UnixStream::pair().unwrap();
        let conn = UnixConn::new(ours);
        conn.set_read_timeout(Some(Duration::from_micros(10)))
            .unwrap();
        assert_eq!(conn.poll_timeout.load(Ordering::Relaxed), 1);
        conn.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        assert_eq!(conn.poll_timeout.load(Ordering::Relaxed), 100);
        conn.set_read_timeout(None).unwrap();
        assert_eq!(conn.poll_timeout.load(Ordering::Relaxed), -1);
    }
}
