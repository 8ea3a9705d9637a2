//! The blocking engine's [`Listener`]: std sockets bound (or a group
//! joined), not yet serving; `serve.rs` serves them.

use std::fmt;
use std::net::{SocketAddr, UdpSocket};

use socket2::SockRef;

use super::stream::{self, AnyListener};
use crate::dgram::UnixStd;
use crate::transport::{DatagramKind, Family};
use crate::{Error, PeerAddr, Transport};

/// A bound std socket, not yet serving.
#[derive(Debug)]
pub struct Listener {
    pub(super) inner: Bound,
    transport: Transport,
    pub(super) tcp: msg_tcp::Options,
}

/// What is bound, by family.
#[derive(Debug)]
pub(super) enum Bound {
    /// A UDP socket, and the socket it answers from if not itself: a
    /// joined socket's own ([`Listener::join`]).
    Datagram(UdpSocket, Option<UdpSocket>),
    UnixDatagram(UnixStd),
    Stream(AnyListener),
}

impl Listener {
    /// Binds `addr` (port 0 picks a free port); `tcp` applies to every
    /// accepted connection.
    ///
    /// # Errors
    ///
    /// The transport's bind error, as [`crate::Listener::bind`] reports it.
    pub fn bind(
        transport: Transport,
        addr: impl Into<PeerAddr>,
        tcp: msg_tcp::Options,
    ) -> Result<Self, Error> {
        let addr = addr.into();
        let inner = match transport.family() {
            Family::Datagram(DatagramKind::Quic) => {
                return Err(Error::NotInBlockingEngine("QUIC datagrams"));
            }
            Family::Datagram(DatagramKind::Unix) => Bound::UnixDatagram(UnixStd::bind(
                crate::stream::unix_path(&addr)?,
                tcp.socket_mode,
            )?),
            Family::Datagram(DatagramKind::Udp) => {
                let addr = transport.inet(&addr)?;
                Bound::Datagram(
                    UdpSocket::bind(addr)
                        .map_err(|source| msg_udp::Error::Bind { addr, source })?,
                    None,
                )
            }
            Family::Stream(kind) => Bound::Stream(stream::bind(kind, &addr, &tcp)?),
        };
        Ok(Self {
            inner,
            transport,
            tcp,
        })
    }

    /// A UDP socket bound to `group`'s port that joined it, answering
    /// from a port of its own, as [`crate::Listener::join`]: the group's
    /// receivers on one host share its port, and answers from it would
    /// not say which receiver sent them.
    ///
    /// # Errors
    ///
    /// As [`msg_net::group::receiver`](crate::group::receiver) and
    /// [`msg_net::group::answering`](crate::group::answering).
    pub fn join(group: SocketAddr, options: &crate::group::GroupOptions) -> Result<Self, Error> {
        let socket = crate::group::receiver(group, options).map_err(msg_udp::Error::from)?;
        let answer = crate::group::answering(group).map_err(msg_udp::Error::from)?;
        Ok(Self {
            inner: Bound::Datagram(socket, Some(answer)),
            transport: Transport::Udp,
            tcp: msg_tcp::Options::default(),
        })
    }

    /// The transport it listens on.
    pub fn transport(&self) -> Transport {
        self.transport
    }

    /// The local address, of whatever kind (with the port the system
    /// picked for port 0), as [`crate::Listener::addr`].
    ///
    /// # Errors
    ///
    /// The operating system's, rarely.
    pub fn addr(&self) -> std::io::Result<PeerAddr> {
        match &self.inner {
            Bound::Datagram(socket, _) => socket.local_addr().map(PeerAddr::Inet),
            Bound::UnixDatagram(socket) => socket.local_addr(),
            Bound::Stream(listener) => listener.local_addr(),
        }
    }

    /// The local IP address and port, as [`crate::Listener::local_addr`].
    ///
    /// # Errors
    ///
    /// The operating system's, rarely; `InvalidInput` for a listener whose
    /// address is not an IP address.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.addr()?.inet().ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "the listener has no IP address",
            )
        })
    }

    /// Asks for a UDP receive buffer of `bytes`; returns what the kernel
    /// granted.
    ///
    /// # Errors
    ///
    /// The operating system's; over TCP, `Unsupported`.
    pub fn set_recv_buffer(&self, bytes: usize) -> std::io::Result<usize> {
        match &self.inner {
            Bound::Datagram(socket, _) => {
                let sock = SockRef::from(socket);
                sock.set_recv_buffer_size(bytes)?;
                sock.recv_buffer_size()
            }
            Bound::UnixDatagram(_) | Bound::Stream(_) => {
                Err(std::io::ErrorKind::Unsupported.into())
            }
        }
    }
}

impl Listener {
    /// For a UDP listener, a way to read how many datagrams the kernel
    /// dropped, its receive buffer full, as the tokio listener's
    /// [`kernel_drops`](crate::Listener::kernel_drops); `None` over other
    /// transports.
    ///
    /// # Errors
    ///
    /// The operating system's (out of descriptors).
    pub fn kernel_drops(&self) -> std::io::Result<Option<crate::KernelDrops>> {
        match &self.inner {
            Bound::Datagram(socket, _) => Ok(Some(crate::KernelDrops::new(socket.try_clone()?))),
            Bound::UnixDatagram(_) | Bound::Stream(_) => Ok(None),
        }
    }
}

impl fmt::Display for Listener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.addr() {
            Ok(addr) => write!(f, "{} {addr}", self.transport()),
            Err(_) => write!(f, "{}", self.transport()),
        }
    }
}
