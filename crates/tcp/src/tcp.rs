//! TCP, the stream kind msg has always run on: how a TCP socket is
//! listened on, connected and tuned, in one place for both engines (the
//! tokio [`Listener`] and `msg_net::blocking`), and the [`Stream`] and
//! [`Accept`] a framed [`Connection`] and its [`Listener`] need of it.
//!
//! Everything here is about the socket, nothing about frames: the framing
//! is the same over any byte stream. Another stream kind (a Unix socket,
//! TLS) gets a file like this one beside it.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use std::task::{Context, Poll};

use socket2::{Domain, SockRef, Socket, TcpKeepalive, Type};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tracing::debug;

use crate::{Accept, Connection, Error, Listener, Options, PeerAddr, Stream};

impl Stream for TcpStream {
    // tokio's owned halves: no lock between them, unlike the generic
    // `tokio::io::split`.
    type Reader = OwnedReadHalf;
    type Writer = OwnedWriteHalf;

    fn apply(&self, options: &Options) -> io::Result<()> {
        self.set_nodelay(options.nodelay)
    }

    fn peer_addr(&self) -> io::Result<PeerAddr> {
        Self::peer_addr(self).map(PeerAddr::Inet)
    }

    fn into_split(self) -> (OwnedReadHalf, OwnedWriteHalf) {
        Self::into_split(self)
    }

    fn input_waiting(&self) -> bool {
        crate::stream::input_waiting(SockRef::from(self))
    }
}

impl Accept for TcpListener {
    type Stream = TcpStream;

    fn poll_accept(&self, cx: &mut Context<'_>) -> Poll<io::Result<(TcpStream, PeerAddr)>> {
        Self::poll_accept(self, cx).map_ok(|(stream, peer)| (stream, PeerAddr::Inet(peer)))
    }
}

impl Listener {
    /// Listens on `addr` over TCP (port 0 picks a free port), with
    /// [`listen`]'s backlog and `SO_REUSEADDR`.
    ///
    /// # Errors
    ///
    /// [`Error::Bind`], for example when the address is in use.
    pub async fn bind(addr: SocketAddr, options: Options) -> Result<Self, Error> {
        let bound = || {
            let listener = listen(addr)?;
            listener.set_nonblocking(true)?;
            TcpListener::from_std(listener)
        };
        let inner = bound().map_err(|source| Error::Bind {
            addr: addr.into(),
            source,
        })?;
        Ok(Self::new(inner, options))
    }

    /// The local address.
    ///
    /// # Errors
    ///
    /// The operating system's, rarely.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }
}

impl Connection {
    /// Connects to `addr` over TCP.
    ///
    /// # Errors
    ///
    /// [`Error::Connect`], for example when nobody listens there.
    pub async fn connect(addr: SocketAddr, options: Options) -> Result<Self, Error> {
        let stream = TcpStream::connect(addr)
            .await
            .map_err(|source| Error::Connect {
                addr: addr.into(),
                source,
            })?;
        Self::new(stream, options)
    }
}

/// How many established connections may wait to be accepted. std and mio
/// ask for 128: a burst of clients connecting at once (`msg bench
/// --clients 1000`) overflowed that, and every connection the kernel
/// dropped from the full queue waited a second for its SYN to be sent
/// again. Linux caps the figure at `net.core.somaxconn` (4096 by default
/// since 5.4).
pub const LISTEN_BACKLOG: i32 = 1024;

/// How often keepalive probes follow the first one, once a peer is silent.
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(10);

/// Binds and listens as `std::net::TcpListener::bind` does
/// (`SO_REUSEADDR` on Unix, so that a restarted listener gets its port
/// back at once), with a backlog of [`LISTEN_BACKLOG`]. The socket is in
/// blocking mode, as std's is; the tokio [`Listener`]
/// makes it non-blocking.
///
/// # Errors
///
/// The operating system's, for example when the address is in use.
pub fn listen(addr: SocketAddr) -> io::Result<std::net::TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    #[cfg(unix)]
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(LISTEN_BACKLOG)?;
    Ok(socket.into())
}

/// Turns TCP keepalive on, so that a peer that vanished is noticed: the
/// first probe after `after` of silence, then one every 10 seconds.
/// `None` leaves it off. A failure is logged, not returned: a connection
/// without keepalive is still worth serving.
pub fn keepalive<'s>(socket: impl Into<SockRef<'s>>, after: Option<Duration>) {
    let Some(after) = after else { return };
    let probes = TcpKeepalive::new()
        .with_time(after)
        .with_interval(KEEPALIVE_INTERVAL);
    if let Err(err) = socket.into().set_tcp_keepalive(&probes) {
        debug!("cannot turn TCP keepalive on: {err}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// With a listener's default (`msg_net::Limits::default().keepalive`,
    /// 60 s), as both engines' serve loops call it on each accepted stream.
    #[tokio::test]
    async fn accepted_connections_get_keepalive() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (_client, accepted) = tokio::join!(TcpStream::connect(addr), listener.accept());
        let (stream, _) = accepted.unwrap();
        let sock = SockRef::from(&stream);
        assert!(!sock.keepalive().unwrap());
        keepalive(&stream, Some(Duration::from_secs(60)));
        assert!(sock.keepalive().unwrap());
        #[cfg(target_os = "linux")]
        assert_eq!(sock.tcp_keepalive_time().unwrap(), Duration::from_secs(60));
    }
}
