//! [`Link`]: a framed connection to a listener over either transport.
//!
//! Over UDP a "connection" is a socket connected to the peer (the kernel
//! filters everyone else's datagrams and reports an ICMP "port
//! unreachable" as an error); over TCP it is a framed stream. Either way a
//! link sends and receives whole [`Message`]s.

use std::net::SocketAddr;
use std::time::Duration;

use msg_proto::auth::Role;
use msg_proto::{Kind, Message};
use tokio::net::TcpStream;

use crate::auth::{self, Auth, printable};
use crate::{Error, TcpInfo, Transport};

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
}

/// A framed conversation with one peer.
#[derive(Debug)]
pub struct Link {
    inner: Inner,
}

#[derive(Debug)]
enum Inner {
    Udp(msg_udp::Socket),
    Tcp(msg_tcp::Connection),
}

impl Link {
    /// Connects to `addr` over `transport`.
    ///
    /// # Errors
    ///
    /// [`Error::ConnectTimeout`], or the transport's connect or bind error.
    pub async fn connect(
        transport: Transport,
        addr: SocketAddr,
        options: &ConnectOptions,
    ) -> Result<Self, Error> {
        let inner = match transport {
            Transport::Udp => {
                let mut socket = msg_udp::Socket::connect(addr).await?;
                if let Some(auth) = &options.auth {
                    socket.authenticate(&auth.secret, Role::Client, auth::session_id());
                }
                Inner::Udp(socket)
            }
            Transport::Tcp => {
                let mut conn = connect_tcp(addr, options).await?;
                if let Some(auth) = &options.auth {
                    auth::client(&mut conn, auth).await?;
                }
                Inner::Tcp(conn)
            }
        };
        Ok(Self { inner })
    }

    /// Ends the conversation cleanly. Over TCP it closes our sending side
    /// and reads until the listener closes too (at most `wait`), so that a
    /// listener that refused us (one that needs a secret) can say why;
    /// replies nobody asked for are skipped. UDP has nothing to close.
    ///
    /// # Errors
    ///
    /// [`Error::Peer`] when the listener sent an `Error`, or the
    /// transport's error.
    pub async fn close(self, wait: Duration) -> Result<(), Error> {
        let Inner::Tcp(conn) = self.inner else {
            return Ok(());
        };
        // Dropping the write half shuts our side down: the listener reads
        // the end of the stream after our last message.
        let (mut read, _) = conn.into_split();
        let drain = async {
            while let Some(msg) = read.read_message().await? {
                if msg.kind == Kind::Error {
                    return Err(Error::Peer(printable(&msg.body)));
                }
            }
            Ok(())
        };
        // A listener that keeps the connection open owes us nothing more.
        tokio::time::timeout(wait, drain).await.unwrap_or(Ok(()))
    }

    /// The transport in use.
    pub fn transport(&self) -> Transport {
        match self.inner {
            Inner::Udp(_) => Transport::Udp,
            Inner::Tcp(_) => Transport::Tcp,
        }
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
            Inner::Tcp(conn) => tcp_info_of(conn.get_ref()),
            Inner::Udp(_) => Ok(None),
        }
    }

    /// Sends one message.
    ///
    /// # Errors
    ///
    /// The transport's: too large (nothing sent), or the send failed.
    pub async fn send(&mut self, msg: &Message) -> Result<(), Error> {
        match &mut self.inner {
            Inner::Udp(socket) => socket.send(msg).await?,
            Inner::Tcp(conn) => conn.write_message(msg).await?,
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
            Inner::Udp(socket) => Some(socket.recv_from().await?.0),
            Inner::Tcp(conn) => conn.read_message().await?,
        })
    }

    /// The UDP socket, for the batched sends of `batch.rs`.
    pub(crate) fn udp_socket(&mut self) -> Option<&mut msg_udp::Socket> {
        match &mut self.inner {
            Inner::Udp(socket) => Some(socket),
            Inner::Tcp(_) => None,
        }
    }

    /// Sends the file at `path` and waits (at most `wait` for each answer,
    /// and for the verdict longer the larger the file, since the receiver
    /// may still be writing it) until the receiver has confirmed its size
    /// and hash; `progress` is
    /// called with the bytes sent so far. TCP only.
    ///
    /// # Errors
    ///
    /// [`Error::File`] with the reason (the receiver's, when it refused
    /// the file), or the transport's error.
    pub async fn send_file(
        &mut self,
        path: &std::path::Path,
        wait: Duration,
        progress: &mut dyn FnMut(u64),
    ) -> Result<crate::file::Sent, Error> {
        match &mut self.inner {
            Inner::Tcp(conn) => crate::file::send(conn, path, wait, progress).await,
            Inner::Udp(_) => Err(crate::file::FileError::NeedsTcp.into()),
        }
    }

    /// Halves that can be used at once (by two futures joined in one
    /// task), for a sender that must not wait for replies. Over UDP the
    /// second is a duplicated descriptor with a registration of its own,
    /// so each arriving datagram wakes two; only a caller that splits pays
    /// that.
    ///
    /// # Errors
    ///
    /// Over UDP, the operating system's (out of descriptors).
    pub fn split(self) -> Result<(Tx, Rx), Error> {
        Ok(match self.inner {
            Inner::Udp(socket) => {
                let receiver = socket.try_clone()?;
                (Tx(TxInner::Udp(socket)), Rx(RxInner::Udp(receiver)))
            }
            Inner::Tcp(conn) => {
                let (read, write) = conn.into_split();
                (Tx(TxInner::Tcp(write)), Rx(RxInner::Tcp(read)))
            }
        })
    }
}

/// Connects a framed TCP stream within `options.timeout`.
pub(crate) async fn connect_tcp(
    addr: SocketAddr,
    options: &ConnectOptions,
) -> Result<msg_tcp::Connection, Error> {
    let stream = connect_stream(addr, options).await?;
    Ok(msg_tcp::Connection::new(stream, options.tcp)?)
}

/// Connects a plain TCP stream within `options.timeout`.
pub(crate) async fn connect_stream(
    addr: SocketAddr,
    options: &ConnectOptions,
) -> Result<TcpStream, Error> {
    let connect = TcpStream::connect(addr);
    let connected = match options.timeout {
        Some(timeout) => tokio::time::timeout(timeout, connect)
            .await
            .map_err(|_| Error::ConnectTimeout { addr, timeout })?,
        None => connect.await,
    };
    Ok(connected.map_err(|source| msg_tcp::Error::Connect { addr, source })?)
}

fn tcp_info_of(stream: &TcpStream) -> Result<Option<TcpInfo>, Error> {
    match crate::tcp_info::read(stream) {
        Ok(info) => Ok(Some(info)),
        Err(err) if err.kind() == std::io::ErrorKind::Unsupported => Ok(None),
        Err(err) => Err(err.into()),
    }
}

/// The sending half of a split [`Link`].
#[derive(Debug)]
pub struct Tx(TxInner);

#[derive(Debug)]
enum TxInner {
    Udp(msg_udp::Socket),
    Tcp(msg_tcp::WriteHalf),
}

impl Tx {
    /// As [`Link::tcp_info`].
    ///
    /// # Errors
    ///
    /// As [`Link::tcp_info`].
    pub fn tcp_info(&self) -> Result<Option<TcpInfo>, Error> {
        match &self.0 {
            TxInner::Tcp(write) => tcp_info_of(write.get_ref().as_ref()),
            TxInner::Udp(_) => Ok(None),
        }
    }

    /// As [`Link::send`].
    ///
    /// # Errors
    ///
    /// As [`Link::send`].
    pub async fn send(&mut self, msg: &Message) -> Result<(), Error> {
        match &mut self.0 {
            TxInner::Udp(socket) => socket.send(msg).await?,
            TxInner::Tcp(write) => write.write_message(msg).await?,
        }
        Ok(())
    }
}

/// The receiving half of a split [`Link`].
#[derive(Debug)]
pub struct Rx(RxInner);

#[derive(Debug)]
enum RxInner {
    Udp(msg_udp::Socket),
    Tcp(msg_tcp::ReadHalf),
}

impl Rx {
    /// As [`Link::recv`].
    ///
    /// # Errors
    ///
    /// As [`Link::recv`].
    pub async fn recv(&mut self) -> Result<Option<Message>, Error> {
        Ok(match &mut self.0 {
            RxInner::Udp(socket) => Some(socket.recv_from().await?.0),
            RxInner::Tcp(read) => read.read_message().await?,
        })
    }
}
