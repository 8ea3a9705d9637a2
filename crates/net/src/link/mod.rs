//! [`Link`]: a framed connection to a listener over any transport.
//!
//! Written once per family. In the datagram family a "connection" is a
//! socket connected to the peer (the kernel filters everyone else's
//! datagrams and reports an ICMP "port unreachable" as an error); in the
//! stream family it is a framed stream of any kind (`stream.rs`). Either
//! way a link sends and receives whole [`Message`]s.

use std::time::Duration;

use msg_proto::auth::Role;
use msg_proto::{Kind, Message};

use crate::auth::{self, Auth, printable};
use crate::dgram::{Datagrams, UnixDgram};
use crate::quic_dgram::QuicDgram;
use crate::stream::unix_path;
use crate::stream::{AnyStream, AnyWriter};
use crate::transport::{DatagramKind, Family};
use crate::{Error, PeerAddr, TcpInfo, Transport};

mod split;

pub use split::{Rx, Tx};
/// A framed stream of any kind.
pub(crate) type StreamConnection = msg_tcp::Connection<AnyStream>;

/// How to connect.
#[derive(Debug, Clone, Default)]
pub struct ConnectOptions {
    /// TCP framing and socket options (ignored for UDP).
    pub tcp: msg_tcp::Options,
    /// How long a TCP connect may take; `None` waits as long as the
    /// operating system does (UDP connects at once).
    pub timeout: Option<Duration>,
    /// Authenticate with this secret: a TCP handshake before anything is
    /// sent, then every frame tagged; over UDP every datagram tagged.
    pub auth: Option<Auth>,
    /// UDP to a multicast group or a broadcast address: the TTL, the
    /// interface, loopback and `SO_BROADCAST` (ignored otherwise).
    pub group: msg_udp::group::GroupOptions,
    /// TLS over a stream, right after it connects (before a secret's
    /// handshake, which then runs inside it).
    pub tls: Option<crate::tls::TlsClient>,
}

/// A UDP socket for `addr`: connected to one peer, or, for a group or a
/// broadcast address, unconnected so that every receiver's answer gets in.
pub(crate) async fn udp_socket(
    addr: std::net::SocketAddr,
    options: &ConnectOptions,
) -> Result<msg_udp::Socket, msg_udp::Error> {
    if options.group.one_to_many(&addr) {
        msg_udp::Socket::one_to_many(addr, &options.group)
    } else {
        msg_udp::Socket::connect(addr).await
    }
}

/// A framed conversation with one peer.
#[derive(Debug)]
pub struct Link {
    inner: Inner,
    transport: Transport,
    /// Where it was connected to (a group, for a one-to-many sender).
    peer: PeerAddr,
}

#[derive(Debug)]
enum Inner {
    Datagram(msg_udp::Socket),
    UnixDatagram(UnixDgram),
    QuicDatagram(QuicDgram),
    Stream(StreamConnection),
}

/// A client's datagram socket, keyed with the secret in `options` if
/// there is one: every kind tags and checks its datagrams the same way.
fn keyed<D: Datagrams>(mut socket: D, options: &ConnectOptions) -> D {
    if let Some(auth) = &options.auth {
        socket.authenticate(&auth.secret, Role::Client, auth::session_id());
    }
    socket
}

impl Link {
    /// Connects to `addr` over `transport`.
    ///
    /// # Errors
    ///
    /// [`Error::ConnectTimeout`], or the transport's connect or bind error.
    pub async fn connect(
        transport: Transport,
        addr: impl Into<PeerAddr>,
        options: &ConnectOptions,
    ) -> Result<Self, Error> {
        let addr = addr.into();
        let inner = match transport.family() {
            Family::Datagram(DatagramKind::Udp) => {
                let socket = udp_socket(transport.inet(&addr)?, options).await?;
                Inner::Datagram(keyed(socket, options))
            }
            Family::Datagram(DatagramKind::Unix) => {
                let socket = UnixDgram::connect(unix_path(&addr)?).map_err(|source| {
                    msg_tcp::Error::Connect {
                        addr: addr.clone(),
                        source,
                    }
                })?;
                let mut socket = keyed(socket, options);
                socket.set_send_timeout(options.tcp.write_timeout);
                Inner::UnixDatagram(socket)
            }
            Family::Datagram(DatagramKind::Quic) => {
                let tls = options
                    .tls
                    .as_ref()
                    .ok_or(crate::tls::TlsError::Needed(transport))?;
                let socket = QuicDgram::connect(transport.inet(&addr)?, tls).await?;
                Inner::QuicDatagram(keyed(socket, options))
            }
            Family::Stream(_) if transport.caps().encrypted && options.tls.is_none() => {
                return Err(crate::tls::TlsError::Needed(transport).into());
            }
            Family::Stream(kind) => {
                let stream = crate::stream::connect(kind, &addr, options).await?;
                let mut conn = msg_tcp::Connection::new(stream, options.tcp)?;
                if let Some(auth) = &options.auth {
                    auth::client(&mut conn, auth).await?;
                }
                Inner::Stream(conn)
            }
        };
        Ok(Self {
            inner,
            transport,
            peer: addr,
        })
    }

    /// Ends the conversation cleanly. Over TCP it closes our sending side
    /// and reads until the listener closes too (at most `wait`), so that a
    /// listener that refused us (one that needs a secret) can say why;
    /// replies nobody asked for are skipped. UDP has nothing to close.
    ///
    /// # Errors
    ///
    /// [`Error::Peer`] when the listener sent an `Error`, or the
    /// transport's error. When `answered` (every message had its reply, or
    /// every file its verdict), nothing sent can have been lost, and a
    /// connection that fails as it closes is no failure: a listener that
    /// stopped at `--count` after its last reply resets the connection
    /// when TLS's `close_notify` reaches it (audit, round eight).
    pub async fn close(self, wait: Duration, answered: bool) -> Result<(), Error> {
        let conn = match self.inner {
            Inner::Stream(conn) => conn,
            // What quinn still holds goes out before the connection closes.
            Inner::QuicDatagram(socket) => {
                socket.close(wait).await;
                return Ok(());
            }
            Inner::Datagram(_) | Inner::UnixDatagram(_) => return Ok(()),
        };
        // Our end (the stream's own shutdown: over TLS a close_notify
        // too): the listener reads the end of the stream after our last
        // message.
        let mut conn = conn;
        let shut = conn.shutdown().await;
        let drain = async {
            while let Some(msg) = conn.read_message().await? {
                if msg.kind == Kind::Error {
                    return Err(Error::Peer(printable(&msg.body)));
                }
            }
            Ok(())
        };
        // A listener that keeps the connection open owes us nothing more.
        let drained = tokio::time::timeout(wait, drain).await.unwrap_or(Ok(()));
        match drained {
            Err(err @ Error::Peer(_)) => return Err(err),
            Err(err) if !answered => return Err(reset(err)),
            Err(err) => {
                tracing::debug!(
                    "the connection failed as it closed, every message answered: {err}"
                );
            }
            Ok(()) => {}
        }
        if answered {
            return Ok(());
        }
        shut?;
        // Its refusal said, a reset is still a failure: a listener gone
        // before our last messages reset the connection when they came,
        // and the read saw only its close. `msg send` exited 0 with its
        // last message lost (audit, round eight).
        match conn.get_ref().pending_error() {
            Some(err) => Err(Error::Reset(err)),
            None => Ok(()),
        }
    }

    /// The transport in use.
    pub fn transport(&self) -> Transport {
        self.transport
    }

    /// The kernel's view of a TCP link (`TCP_INFO`): retransmissions,
    /// round-trip time, retransmission timeout; `None` over UDP and where
    /// the operating system has no `TCP_INFO` msg can read (Linux only).
    ///
    /// # Errors
    ///
    /// The operating system's.
    pub fn tcp_info(&self) -> Result<Option<TcpInfo>, Error> {
        match &self.inner {
            Inner::Stream(conn) => conn.get_ref().tcp_info(),
            Inner::Datagram(_) | Inner::UnixDatagram(_) | Inner::QuicDatagram(_) => Ok(None),
        }
    }

    /// Sends one message.
    ///
    /// # Errors
    ///
    /// The transport's: too large (nothing sent), or the send failed.
    pub async fn send(&mut self, msg: &Message) -> Result<(), Error> {
        match &mut self.inner {
            Inner::Datagram(socket) => socket.send(msg).await?,
            Inner::UnixDatagram(socket) => socket.send(msg).await?,
            Inner::QuicDatagram(socket) => socket.send(msg).await?,
            Inner::Stream(conn) => {
                if let Err(err) = conn.write_message(msg).await {
                    return Err(refusal_waiting(conn).await.unwrap_or(err.into()));
                }
            }
        }
        Ok(())
    }

    /// Receives the next message; `None` when a TCP peer closed the
    /// connection cleanly between frames (UDP has no end).
    ///
    /// # Errors
    ///
    /// The transport's: over UDP a failed receive (often nobody listening),
    /// over TCP a bad frame or a connection closed mid-frame.
    pub async fn recv(&mut self) -> Result<Option<Message>, Error> {
        Ok(match &mut self.inner {
            Inner::Datagram(socket) => Some(socket.recv_from().await?.0),
            Inner::UnixDatagram(socket) => Some(socket.recv().await?),
            Inner::QuicDatagram(socket) => Some(socket.recv().await?),
            Inner::Stream(conn) => conn.read_message().await?,
        })
    }

    /// Receives the next message and who sent it: for a sender to a group
    /// or a broadcast address, whose answers come from many.
    ///
    /// # Errors
    ///
    /// As [`Link::recv`].
    pub async fn recv_from(&mut self) -> Result<Option<(Message, PeerAddr)>, Error> {
        Ok(match &mut self.inner {
            Inner::Datagram(socket) => {
                let (msg, from) = socket.recv_from().await?;
                Some((msg, from.into()))
            }
            Inner::UnixDatagram(_) | Inner::QuicDatagram(_) | Inner::Stream(_) => {
                let Some(msg) = self.recv().await? else {
                    return Ok(None);
                };
                Some((msg, self.peer.clone()))
            }
        })
    }

    /// Whether it sends to a group or a broadcast address, and so may hear
    /// from many.
    pub fn is_one_to_many(&self) -> bool {
        match &self.inner {
            Inner::Datagram(socket) => socket.is_one_to_many(),
            Inner::UnixDatagram(_) | Inner::QuicDatagram(_) | Inner::Stream(_) => false,
        }
    }

    /// The UDP socket, for the batched sends of `batch.rs`.
    pub(crate) fn udp_socket(&mut self) -> Option<&mut msg_udp::Socket> {
        match &mut self.inner {
            Inner::Datagram(socket) => Some(socket),
            Inner::UnixDatagram(_) | Inner::QuicDatagram(_) | Inner::Stream(_) => None,
        }
    }

    /// Sends the file at `path` and waits (at most `wait` for each answer,
    /// and for the verdict longer the larger the file, since the receiver
    /// may still be writing it) until the receiver has confirmed its size
    /// and hash; with `resume`, only what the receiver does not hold yet
    /// of an earlier transfer cut off, and the receiver keeps what arrives
    /// should this one be cut off too (see [`Resumed`](crate::file::Resumed)).
    /// `progress` is called with the bytes of the file the receiver has
    /// so far. Over a reliable stream only.
    ///
    /// # Errors
    ///
    /// [`Error::File`] with the reason (the receiver's, when it refused
    /// the file), or the transport's error.
    pub async fn send_file(
        &mut self,
        path: &std::path::Path,
        wait: Duration,
        resume: bool,
        progress: &mut dyn FnMut(u64),
    ) -> Result<crate::file::Sent, Error> {
        match &mut self.inner {
            Inner::Stream(conn) => crate::file::send(conn, path, wait, resume, progress).await,
            Inner::Datagram(_) | Inner::UnixDatagram(_) | Inner::QuicDatagram(_) => {
                Err(crate::file::FileError::NeedsTcp.into())
            }
        }
    }

    /// Sends the folder `dir` and everything in it (no link followed),
    /// telling `report` each verdict; see [`file::tree`](crate::file::tree).
    /// Over a reliable stream only.
    ///
    /// # Errors
    ///
    /// [`Error::File`] when the folder cannot be read or is refused
    /// whole, or with `strict` at the first refused entry; the
    /// transport's error.
    #[cfg(unix)]
    pub async fn send_tree(
        &mut self,
        dir: &std::path::Path,
        options: crate::file::tree::TreeOptions,
        report: &mut dyn crate::file::tree::TreeReport,
    ) -> Result<crate::file::tree::TreeSent, Error> {
        match &mut self.inner {
            Inner::Stream(conn) => crate::file::tree::send_tree(conn, dir, options, report).await,
            Inner::Datagram(_) | Inner::UnixDatagram(_) | Inner::QuicDatagram(_) => {
                Err(crate::file::FileError::NeedsTcp.into())
            }
        }
    }
}

/// Why a listener refused us, when it said so before closing: a listener
/// writes its refusal and closes, and over a Unix socket our next write
/// then fails at once (`EPIPE`), the reason still unread in our receive
/// queue. It is there already, so the wait is short.
async fn refusal_waiting(conn: &mut msg_tcp::Connection<AnyStream>) -> Option<Error> {
    let read = tokio::time::timeout(Duration::from_millis(100), conn.read_message());
    match read.await {
        Ok(Ok(Some(msg))) if msg.kind == Kind::Error => Some(Error::Peer(printable(&msg.body))),
        _ => None,
    }
}

/// A close's drain that found the connection reset is the reset the close
/// looks for afterwards, said as such: the listener had closed with our
/// last messages unread (or had gone before they came), and they may not
/// have arrived. Whether the read meets the reset itself or a clean close
/// with the reset held for later is a race, and both were said as one
/// (audit, round twelve: a bare `Connection reset by peer` in most runs).
fn reset(err: Error) -> Error {
    match err {
        Error::Tcp(msg_tcp::Error::Io(io)) if crate::error::peer_left(&io) => Error::Reset(io),
        other => other,
    }
}
