//! The stream family: every kind of byte stream msg connects over, accepts
//! and serves, in one place.
//!
//! Everything msg does over a stream (framing, the handshake, files,
//! commands, raw reads, the serve loop's limits) is written once against
//! msg-tcp's [`Stream`] and [`Accept`]; [`Link`](crate::Link),
//! [`Listener`](crate::Listener) and [`serve`](fn@crate::serve) hold an
//! [`AnyStream`] or an [`AnyListener`] and never ask which kind it is. The
//! kinds are an enum rather than a generic parameter so that a link's type
//! does not change with its transport (the CLI picks the transport at run
//! time) and rather than a `Box<dyn …>` so that nothing is allocated and
//! every call is a predictable branch on the hot path.
//!
//! A new kind of stream (a Unix socket, TLS) is a variant in each enum
//! here and an arm in [`connect`] and [`bind`], beside its own file in
//! msg-tcp (`tcp.rs` for TCP) that implements [`Stream`] and [`Accept`].

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use msg_tcp::seqpacket::{SeqpacketListener, SeqpacketReader, SeqpacketStream, SeqpacketWriter};
use msg_tcp::unix::{SocketFile, UnixPath, UnixPeer, UnixReader, UnixStream, UnixWriter};
use msg_tcp::{Accept, Options, PeerAddr, Stream};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream, UnixListener};

use crate::link::ConnectOptions;
use crate::quic::{QuicListener, QuicReader, QuicStream, QuicWriter};
use crate::transport::StreamKind;
use crate::{Error, TcpInfo, Transport};

mod dispatch;

/// A TLS session over any kind of stream here, client or server side.
pub(crate) type Tls = tokio_rustls::TlsStream<AnyStream>;

/// A connected byte stream of any kind msg runs over.
#[derive(Debug)]
pub(crate) enum AnyStream {
    /// A TCP connection.
    Tcp(TcpStream),
    /// A Unix stream socket.
    Unix(UnixStream),
    /// A Unix sequenced-packet socket.
    Seqpacket(SeqpacketStream),
    /// A TLS session over one of the others (boxed: rustls's state is
    /// about 1 KiB, and a plain stream should not carry its size).
    Tls(Box<Tls>),
    /// A QUIC connection's stream (`quic.rs`), TLS being QUIC's own.
    Quic(Box<QuicStream>),
}

/// The reading half of a split [`AnyStream`].
#[derive(Debug)]
pub(crate) enum AnyReader {
    /// A TCP connection's.
    Tcp(OwnedReadHalf),
    /// A Unix stream socket's.
    Unix(UnixReader),
    /// A Unix sequenced-packet socket's.
    Seqpacket(SeqpacketReader),
    /// A TLS session's.
    Tls(tokio::io::ReadHalf<Tls>),
    /// A QUIC stream's.
    Quic(QuicReader),
}

/// The writing half of a split [`AnyStream`].
#[derive(Debug)]
pub(crate) enum AnyWriter {
    /// A TCP connection's.
    Tcp(OwnedWriteHalf),
    /// A Unix stream socket's.
    Unix(UnixWriter),
    /// A Unix sequenced-packet socket's.
    Seqpacket(SeqpacketWriter),
    /// A TLS session's.
    Tls(tokio::io::WriteHalf<Tls>),
    /// A QUIC stream's.
    Quic(QuicWriter),
}

/// A listening socket for any kind of [`AnyStream`].
#[derive(Debug)]
pub(crate) enum AnyListener {
    /// A TCP listener.
    Tcp(TcpListener),
    /// A Unix stream listener, the address it was bound to (which the
    /// kernel does not give back for an abstract name), and its socket
    /// file, removed when the listener goes.
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
        listener: SeqpacketListener,
        path: UnixPath,
    },
    /// A QUIC endpoint, which makes each connection's handshake itself
    /// before the connection is accepted.
    Quic(QuicListener),
}

/// Connects a stream of `kind` to `addr` within the options' timeout
/// (`None`: as long as the operating system tries), then, with the
/// options' TLS, makes the TLS handshake over it (within its own timeout).
pub(crate) async fn connect(
    kind: StreamKind,
    addr: &PeerAddr,
    options: &ConnectOptions,
) -> Result<AnyStream, Error> {
    if kind == StreamKind::Quic {
        // TLS is QUIC's own handshake, not a layer over its stream.
        let tls = options
            .tls
            .as_ref()
            .ok_or(crate::tls::TlsError::Needed(Transport::Quic))?;
        let ip = Transport::Quic.inet(addr)?;
        return Ok(AnyStream::Quic(Box::new(
            crate::quic::connect(ip, tls).await?,
        )));
    }
    let stream = connect_plain(kind, addr, options.timeout).await?;
    match &options.tls {
        Some(tls) => Ok(AnyStream::Tls(Box::new(tls.connect(stream, addr).await?))),
        None => Ok(stream),
    }
}

/// Connects a stream of `kind` to `addr` within `timeout`.
async fn connect_plain(
    kind: StreamKind,
    addr: &PeerAddr,
    timeout: Option<Duration>,
) -> Result<AnyStream, Error> {
    let failed = |source| -> Error {
        msg_tcp::Error::Connect {
            addr: addr.clone(),
            source,
        }
        .into()
    };
    let connect = async {
        match kind {
            StreamKind::Tcp => {
                let ip = Transport::Tcp.inet(addr)?;
                TcpStream::connect(ip)
                    .await
                    .map(AnyStream::Tcp)
                    .map_err(failed)
            }
            StreamKind::Unix => msg_tcp::unix::connect(unix_path(addr)?)
                .await
                .map(AnyStream::Unix)
                .map_err(failed),
            StreamKind::Seqpacket => SeqpacketStream::connect(unix_path(addr)?)
                .map(AnyStream::Seqpacket)
                .map_err(failed),
            StreamKind::Quic => unreachable!("QUIC connects in `connect`"),
        }
    };
    match timeout {
        Some(timeout) => {
            tokio::time::timeout(timeout, connect)
                .await
                .map_err(|_| Error::ConnectTimeout {
                    addr: addr.clone(),
                    timeout,
                })?
        }
        None => connect.await,
    }
}

/// Binds a listener of `kind` on `addr`, each connection it accepts to be
/// framed with `options`.
pub(crate) async fn bind(
    kind: StreamKind,
    addr: &PeerAddr,
    options: Options,
) -> Result<msg_tcp::Listener<AnyListener>, Error> {
    let listener = match kind {
        StreamKind::Tcp => {
            let ip = Transport::Tcp.inet(addr)?;
            AnyListener::Tcp(msg_tcp::Listener::bind(ip, options).await?.into_inner())
        }
        StreamKind::Unix => {
            let path = unix_path(addr)?;
            let (listener, file) = msg_tcp::unix::bind(path, options.socket_mode)?;
            listener.set_nonblocking(true)?;
            AnyListener::Unix {
                listener: UnixListener::from_std(listener)?,
                path: path.clone(),
                _file: file,
            }
        }
        StreamKind::Seqpacket => {
            let path = unix_path(addr)?;
            let (socket, file) =
                msg_tcp::unix::bind_socket(path, options.socket_mode, socket2::Type::SEQPACKET)?;
            AnyListener::Seqpacket {
                listener: SeqpacketListener::new(socket)?,
                path: path.clone(),
                _file: file,
            }
        }
        StreamKind::Quic => AnyListener::Quic(QuicListener::bind(Transport::Quic.inet(addr)?)?),
    };
    Ok(msg_tcp::Listener::new(listener, options))
}

impl AnyStream {
    /// Waits until the client has sent something (or closed), taking
    /// nothing: a listener gives a connection its turn among the
    /// handshakes (`--max-handshakes`) only then, so that sockets opened
    /// and left idle hold a connection each and no turn. The client speaks
    /// first in both handshakes (TLS's ClientHello, auth.md's `Nc`). A
    /// TLS session or a QUIC stream has made its handshake already.
    pub(crate) async fn input(&self) -> io::Result<()> {
        match self {
            Self::Tcp(stream) => stream.peek(&mut [0]).await.map(drop),
            Self::Unix(stream) => stream.input().await,
            Self::Seqpacket(stream) => stream.input().await,
            Self::Tls(_) | Self::Quic(_) => Ok(()),
        }
    }

    /// The server's side of a TLS handshake over this stream.
    /// A QUIC stream made its handshake before it was accepted: it is
    /// returned as it is.
    pub(crate) async fn accept_tls(self, tls: &crate::tls::TlsServer) -> Result<Self, Error> {
        match self {
            Self::Quic(_) => Ok(self),
            plain => Ok(Self::Tls(Box::new(tls.accept(plain).await?))),
        }
    }

    /// Turns keepalive probes on after `after` of silence where the kind
    /// has them (TCP); a stream that cannot die unseen has nothing to do.
    pub(crate) fn keepalive(&self, after: Option<Duration>) {
        match self {
            Self::Tcp(stream) => msg_tcp::tcp::keepalive(stream, after),
            Self::Tls(stream) => stream.get_ref().0.keepalive(after),
            Self::Unix(_) | Self::Seqpacket(_) | Self::Quic(_) => {}
        }
    }

    /// Whether it is inside TLS (TLS over any stream, and QUIC).
    pub(crate) fn is_encrypted(&self) -> bool {
        matches!(self, Self::Tls(_) | Self::Quic(_))
    }

    /// Closes it with a reset where the kind has one (TCP, `SO_LINGER`
    /// 0): a refused peer that reads no refusal (raw, length-framed) learns
    /// of it at its next call, where a plain close let a raw sender's
    /// bytes vanish behind an end of stream it took for success (audit,
    /// round thirteen: a second sender at a busy `--raw --once` listener
    /// exited 0). A Unix stream's peer learns at its next write anyway
    /// (`EPIPE`).
    pub(crate) fn reset(self) {
        if let Self::Tcp(stream) = &self {
            let _ = socket2::SockRef::from(stream).set_linger(Some(Duration::ZERO));
        }
    }

    /// The error the kernel holds for a TCP connection (`SO_ERROR`),
    /// taken: a reset that came after the peer's close, which reads report
    /// only as the end of the stream. A Unix socket's writes fail at once
    /// when the peer is gone (`EPIPE`), and QUIC says it in its close:
    /// `None` for those.
    pub(crate) fn pending_error(&self) -> Option<io::Error> {
        match self {
            Self::Tcp(stream) => stream.take_error().ok().flatten(),
            Self::Tls(stream) => stream.get_ref().0.pending_error(),
            Self::Unix(_) | Self::Seqpacket(_) | Self::Quic(_) => None,
        }
    }

    /// The kernel's view of a TCP connection; `None` for other kinds.
    pub(crate) fn tcp_info(&self) -> Result<Option<TcpInfo>, Error> {
        match self {
            Self::Tcp(stream) => tcp_info_of(stream),
            Self::Tls(stream) => stream.get_ref().0.tcp_info(),
            Self::Unix(_) | Self::Seqpacket(_) | Self::Quic(_) => Ok(None),
        }
    }
}

impl AnyWriter {
    /// As [`AnyStream::tcp_info`], from the writing half.
    pub(crate) fn tcp_info(&self) -> Result<Option<TcpInfo>, Error> {
        match self {
            Self::Tcp(write) => tcp_info_of(write.as_ref()),
            // tokio's lock-shared half does not lend its stream.
            Self::Unix(_) | Self::Seqpacket(_) | Self::Tls(_) | Self::Quic(_) => Ok(None),
        }
    }
}

impl AnyListener {
    /// Whether a connection waits to be accepted now (see
    /// [`open_files::waiting`](crate::open_files::waiting)); never for
    /// QUIC, whose connections take no descriptor.
    pub(crate) fn waiting(&self) -> bool {
        use crate::open_files::waiting;
        match self {
            Self::Tcp(listener) => waiting(listener),
            Self::Unix { listener, .. } => waiting(listener),
            Self::Seqpacket { listener, .. } => waiting(listener),
            Self::Quic(_) => false,
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
            Self::Quic(listener) => listener.local_addr().map(PeerAddr::Inet),
        }
    }

    /// Makes ready to accept: a listener that makes each connection's
    /// handshake itself (QUIC) takes TLS's settings and the limits on
    /// handshakes and idle peers now; the others have nothing to do.
    pub(crate) fn start(
        &self,
        tls: Option<&crate::tls::TlsServer>,
        limits: &crate::Limits,
    ) -> Result<(), Error> {
        match (self, tls) {
            (Self::Quic(listener), Some(tls)) => {
                let admission = crate::quic::Admission {
                    max_handshakes: limits.max_handshakes,
                    max_waiting: limits.max_conns,
                    idle: limits.idle_timeout,
                };
                Ok(listener.start(tls, admission)?)
            }
            (Self::Quic(_), None) => Err(crate::tls::TlsError::Needed(Transport::Quic).into()),
            _ => Ok(()),
        }
    }
}

/// The path of a Unix socket's address, refused for any other kind.
pub(crate) fn unix_path(addr: &PeerAddr) -> Result<&UnixPath, Error> {
    addr.unix()
        .and_then(|peer| peer.path.as_ref())
        .ok_or_else(|| Error::AddressKind {
            transport: Transport::Unix,
            needs: "a path",
            addr: addr.clone(),
        })
}

/// `TCP_INFO` of a TCP socket, tokio's or std's; `None` where the system
/// has none msg reads.
pub(crate) fn tcp_info_of(stream: &impl std::os::fd::AsRawFd) -> Result<Option<TcpInfo>, Error> {
    Ok(TcpInfo::of(stream)?)
}
