//! [`Link`]: the blocking engine's client end, one conversation on the
//! calling thread; in `prepared`, the short ways of a ping-pong client (a
//! ping framed once, a pong taken from its bytes).

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use msg_proto::Message;
use msg_proto::auth::Role;
use msg_udp::Framing;

use super::auth::handshake;
use super::io::{Framed, Got, Read, Shortcut, Take, Wait, recv_datagram};
use super::stream::{self, AnyStream};
use crate::dgram::{UnixAddr, UnixStd};
use crate::transport::DatagramKind;
use crate::transport::Family;
use crate::{Auth, Error, PeerAddr, SendBatch, Transport, auth};

mod prepared;

pub use prepared::Prepared;

/// How a blocking link connects and waits.
#[derive(Debug, Clone, Copy)]
pub struct LinkOptions {
    /// TCP framing and `TCP_NODELAY` (ignored for UDP).
    pub tcp: msg_tcp::Options,
    /// The longest a connect, a send or one receive call may take.
    pub timeout: Duration,
    /// Wait for a reply by asking the socket again and again without
    /// blocking (`MSG_DONTWAIT`), as sockperf's `--nonblocked` does,
    /// instead of sleeping in `recv`.
    pub busy_poll: bool,
}

impl Default for LinkOptions {
    fn default() -> Self {
        Self {
            tcp: msg_tcp::Options::default(),
            timeout: Duration::from_secs(2),
            busy_poll: false,
        }
    }
}

/// What [`Link::recv`] got.
#[derive(Debug)]
pub enum Received {
    /// A message.
    Message(Message),
    /// Nothing by the deadline (over UDP, lost).
    Nothing,
    /// The TCP peer closed the connection between frames.
    Closed,
}

/// A framed conversation with one peer over std sockets: every call is a
/// system call on this thread, nothing is shared with a runtime.
#[derive(Debug)]
pub struct Link {
    inner: Inner,
    transport: Transport,
    busy_poll: bool,
    /// The longest one receive call waits, restored after a handshake.
    timeout: Duration,
    /// The TCP send timeout gives up; nothing else to check.
    never: fn(Duration) -> bool,
}

/// What is connected, by family.
#[derive(Debug)]
enum Inner {
    Datagram {
        socket: UdpSocket,
        peer: SocketAddr,
        recv_buf: BytesMut,
        send_buf: BytesMut,
        /// The tokio socket's own framing: header, trailer, replay
        /// windows and the count of what was skipped.
        framing: Framing,
    },
    UnixDatagram {
        socket: UnixStd,
        /// Where it is connected: every datagram's sender.
        peer: UnixAddr,
        recv_buf: BytesMut,
        send_buf: BytesMut,
        framing: Framing<UnixAddr>,
    },
    Stream(Box<Framed<AnyStream>>),
}

impl Link {
    /// The kernel's view of a TCP link (`TCP_INFO`), as
    /// [`crate::Link::tcp_info`]; `None` for the other kinds.
    ///
    /// # Errors
    ///
    /// The operating system's.
    pub fn tcp_info(&self) -> Result<Option<crate::TcpInfo>, Error> {
        match &self.inner {
            Inner::Stream(framed) => match framed.get_ref() {
                AnyStream::Tcp(stream) => crate::stream::tcp_info_of(stream),
                AnyStream::Unix(_) | AnyStream::Seqpacket(_) => Ok(None),
            },
            Inner::Datagram { .. } | Inner::UnixDatagram { .. } => Ok(None),
        }
    }

    /// Connects to `addr`: a UDP socket connected to it, or a TCP stream
    /// (within `options.timeout`). Receives and sends time out after
    /// `options.timeout`.
    ///
    /// # Errors
    ///
    /// The transport's bind or connect error, as [`crate::Link::connect`]
    /// reports them.
    pub fn connect(
        transport: Transport,
        addr: impl Into<PeerAddr>,
        options: &LinkOptions,
    ) -> Result<Self, Error> {
        let addr = addr.into();
        let timeout = Some(options.timeout);
        let inner = match transport.family() {
            Family::Datagram(DatagramKind::Quic) => {
                return Err(Error::NotInBlockingEngine("QUIC datagrams"));
            }
            Family::Datagram(DatagramKind::Unix) => {
                let socket =
                    UnixStd::connect(crate::stream::unix_path(&addr)?).map_err(|source| {
                        msg_tcp::Error::Connect {
                            addr: addr.clone(),
                            source,
                        }
                    })?;
                socket.socket.set_read_timeout(timeout)?;
                socket.socket.set_write_timeout(timeout)?;
                Inner::UnixDatagram {
                    peer: socket.peer_addr()?,
                    socket,
                    recv_buf: BytesMut::new(),
                    send_buf: BytesMut::new(),
                    framing: Framing::default(),
                }
            }
            Family::Datagram(DatagramKind::Udp) => {
                let addr = transport.inet(&addr)?;
                let local: SocketAddr = if addr.is_ipv4() {
                    (Ipv4Addr::UNSPECIFIED, 0).into()
                } else {
                    (Ipv6Addr::UNSPECIFIED, 0).into()
                };
                let socket = UdpSocket::bind(local).map_err(|source| msg_udp::Error::Bind {
                    addr: local,
                    source,
                })?;
                socket
                    .connect(addr)
                    .map_err(|source| msg_udp::Error::Connect { addr, source })?;
                socket.set_read_timeout(timeout)?;
                socket.set_write_timeout(timeout)?;
                Inner::Datagram {
                    socket,
                    peer: addr,
                    recv_buf: BytesMut::new(),
                    send_buf: BytesMut::new(),
                    framing: Framing::new(),
                }
            }
            Family::Stream(kind) => {
                let stream = stream::connect(kind, &addr, options.timeout)?;
                stream.apply(&options.tcp)?;
                stream::Stream::set_read_timeout(&stream, timeout)?;
                stream.set_write_timeout(timeout)?;
                Inner::Stream(Box::new(Framed::new(stream, options.tcp.max_frame)))
            }
        };
        Ok(Self {
            inner,
            transport,
            busy_poll: options.busy_poll,
            timeout: options.timeout,
            never: |_| false,
        })
    }

    /// Authenticates with `auth.secret`, as the tokio engine's link does:
    /// over TCP, the handshake (within `auth.handshake_timeout`), after
    /// which every frame is tagged and verified; over UDP, from now on,
    /// every datagram is tagged with a key derived from the secret and
    /// only replies tagged by a listener that holds it, not seen before,
    /// are accepted.
    ///
    /// # Errors
    ///
    /// Over TCP, [`Error::Auth`] with the reason the handshake failed (the
    /// connection is then of no further use), or the socket's.
    pub fn authenticate(&mut self, auth: &Auth) -> Result<(), Error> {
        match &mut self.inner {
            Inner::Datagram { framing, .. } => {
                framing.authenticate(&auth.secret, Role::Client, auth::session_id());
            }
            Inner::UnixDatagram { framing, .. } => {
                framing.authenticate(&auth.secret, Role::Client, auth::session_id());
            }
            Inner::Stream(framed) => {
                // A client has no stop flag: the handshake timeout ends it.
                let never = AtomicBool::new(false);
                let deadline = Instant::now() + auth.handshake_timeout;
                handshake(framed, auth, (Role::Client, deadline), self.timeout, &never)?;
            }
        }
        Ok(())
    }

    /// The transport in use.
    pub fn transport(&self) -> Transport {
        self.transport
    }

    /// Sends one message: one `send` (UDP, size checked first) or the
    /// writes of one frame (TCP).
    ///
    /// # Errors
    ///
    /// The transport's: too large (nothing sent), or the send failed or
    /// timed out.
    pub fn send(&mut self, msg: &Message) -> Result<(), Error> {
        match &mut self.inner {
            Inner::Datagram {
                socket,
                peer,
                send_buf,
                framing,
                ..
            } => {
                let addr = *peer;
                send_buf.clear();
                framing.encode(msg, &addr, send_buf)?;
                socket
                    .send(send_buf)
                    .map_err(|source| msg_udp::Error::Send { addr, source })?;
            }
            Inner::UnixDatagram {
                socket,
                send_buf,
                framing,
                ..
            } => socket.send(framing, send_buf, msg, None)?,
            Inner::Stream(framed) => framed
                .write_message(msg, &self.never)
                .map_err(send_timed_out)?,
        }
        Ok(())
    }

    /// Sends `msgs` in order, as the tokio link's `send_batch` does: over
    /// UDP one datagram each, batched into as few system calls as the
    /// platform allows (msg-udp's runtime-free `sendmmsg` and GSO, counted
    /// in `batch`), each blocking while the send buffer is full; over TCP
    /// one frame each, as [`Link::send`] does (TCP batches in the kernel
    /// already, and `batch` counts nothing).
    ///
    /// # Errors
    ///
    /// As [`Link::send`]: a message too large (over UDP nothing of its
    /// group of up to [`MAX_BATCH`](crate::MAX_BATCH) is sent), or the
    /// send failed or timed out.
    pub fn send_batch(&mut self, msgs: &[Message], batch: &mut SendBatch) -> Result<(), Error> {
        if let Inner::Datagram {
            socket,
            peer,
            framing,
            ..
        } = &mut self.inner
        {
            msg_udp::sync::send_batch(socket, framing, *peer, msgs, batch)?;
            return Ok(());
        }
        for msg in msgs {
            self.send(msg)?;
        }
        Ok(())
    }

    /// Receives the next message, waiting until `deadline` at the latest
    /// (sleeping, a single receive waits at most the link's timeout).
    /// Datagrams that are not msg messages are skipped.
    ///
    /// # Errors
    ///
    /// The transport's: over UDP a failed receive (often nobody
    /// listening), over TCP a bad frame or a connection closed mid-frame.
    pub fn recv(&mut self, deadline: Instant) -> Result<Received, Error> {
        // Without `take`, every return is a `Some`.
        Ok(self.receive(deadline, None)?.unwrap_or(Received::Nothing))
    }

    fn receive(
        &mut self,
        deadline: Instant,
        mut take: Option<Take<'_>>,
    ) -> Result<Option<Received>, Error> {
        let wait = if self.busy_poll {
            Wait::Spin(deadline)
        } else {
            Wait::Sleep
        };
        loop {
            match &mut self.inner {
                Inner::Datagram {
                    socket,
                    recv_buf,
                    framing,
                    ..
                } => {
                    let got =
                        recv_datagram(socket, recv_buf, wait).map_err(msg_udp::Error::Recv)?;
                    let Got::Data(from) = got else {
                        return Ok(Some(Received::Nothing));
                    };
                    if take.as_mut().is_some_and(|take| take(recv_buf)) {
                        return Ok(None);
                    }
                    // Invalid or unauthenticated: skipped, counted, logged.
                    if let Some(msg) = framing.decode(recv_buf.split().freeze(), from) {
                        return Ok(Some(Received::Message(msg)));
                    }
                }
                Inner::UnixDatagram {
                    socket,
                    peer,
                    recv_buf,
                    framing,
                    ..
                } => {
                    let got = msg_udp::sync::waiting(wait, |flags| {
                        socket.recv_connected(recv_buf, flags, peer)
                    })
                    .map_err(msg_udp::Error::Recv)?;
                    let Got::Data(()) = got else {
                        return Ok(Some(Received::Nothing));
                    };
                    if take.as_mut().is_some_and(|take| take(recv_buf)) {
                        return Ok(None);
                    }
                    if let Some(msg) = framing.decode(recv_buf.split().freeze(), peer.clone()) {
                        return Ok(Some(Received::Message(msg)));
                    }
                }
                Inner::Stream(framed) => {
                    let read = framed.read_or_answer(wait, take.map(Shortcut::Take))?;
                    return Ok(read.map(|read| match read {
                        Read::Message(msg) => Received::Message(msg),
                        Read::Closed => Received::Closed,
                        Read::Nothing => Received::Nothing,
                    }));
                }
            }
            if Instant::now() >= deadline {
                return Ok(Some(Received::Nothing));
            }
        }
    }
}
/// A client's write that gives up at the socket's send timeout, as the
/// timeout it is (`TimedOut`): [`msg_tcp::Error::WriteStalled`] is a
/// listener's verdict on a peer that does not read.
pub(super) fn send_timed_out(err: msg_tcp::Error) -> msg_tcp::Error {
    match err {
        msg_tcp::Error::WriteStalled { after } => std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!(
                "the listener took nothing sent to it for {}",
                humantime::format_duration(after)
            ),
        )
        .into(),
        err => err,
    }
}
