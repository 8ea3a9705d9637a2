//! [`Listener`]: a bound socket over any transport, not yet serving: a
//! datagram socket, or a stream listener of any kind (`stream.rs`).
//!
//! Binding is separate from serving so that a caller that binds port 0
//! (`msg bench`'s built-in listeners, the tests) learns the address before
//! anyone connects.

use std::fmt;
use std::io;
use std::net::SocketAddr;

use crate::dgram::UnixDgram;
use crate::quic_dgram::QuicDgram;
use crate::stream::AnyListener;
use crate::stream::unix_path;
use crate::transport::{DatagramKind, Family};
use crate::{Error, PeerAddr, Transport};

/// A bound listening socket.
#[derive(Debug)]
pub struct Listener {
    pub(crate) inner: Bound,
    transport: Transport,
}

/// What is bound, by family.
#[derive(Debug)]
pub(crate) enum Bound {
    Datagram(msg_udp::Socket),
    UnixDatagram(UnixDgram),
    QuicDatagram(QuicDgram),
    Stream(msg_tcp::Listener<AnyListener>),
}

impl Listener {
    /// The QUIC endpoint under a QUIC listener, to close when serving ends.
    pub(crate) fn quic_endpoint(&self) -> Option<quinn::Endpoint> {
        match &self.inner {
            Bound::QuicDatagram(socket) => Some(socket.endpoint()),
            Bound::Stream(listener) => match listener.get_ref() {
                AnyListener::Quic(quic) => Some(quic.endpoint()),
                _ => None,
            },
            Bound::Datagram(_) | Bound::UnixDatagram(_) => None,
        }
    }

    /// Binds `addr` (port 0 picks a free port); `tcp` applies to every
    /// accepted connection.
    ///
    /// # Errors
    ///
    /// The transport's bind error, for example when the address is in use.
    pub async fn bind(
        transport: Transport,
        addr: impl Into<PeerAddr>,
        tcp: msg_tcp::Options,
    ) -> Result<Self, Error> {
        let addr = addr.into();
        let inner = match transport.family() {
            Family::Datagram(DatagramKind::Udp) => {
                Bound::Datagram(msg_udp::Socket::bind(transport.inet(&addr)?).await?)
            }
            Family::Datagram(DatagramKind::Unix) => {
                Bound::UnixDatagram(UnixDgram::bind(unix_path(&addr)?, tcp.socket_mode)?)
            }
            Family::Datagram(DatagramKind::Quic) => {
                Bound::QuicDatagram(QuicDgram::bind(transport.inet(&addr)?)?)
            }
            Family::Stream(kind) => Bound::Stream(crate::stream::bind(kind, &addr, tcp).await?),
        };
        Ok(Self { inner, transport })
    }

    /// A UDP socket bound to `group`'s port that joined the group on the
    /// interface `options` names (from its source alone, if it names one),
    /// sharing the port with the group's other receivers on this host
    /// (see [`crate::group::receiver`]), and answering from a port of its
    /// own, so that a sender tells those receivers apart by their answers
    /// (see `msg_udp::Socket::join`).
    ///
    /// # Errors
    ///
    /// [`crate::group::GroupError`] inside [`Error::Udp`]: no interface for
    /// the group, a source that is not unicast, a refused bind.
    pub fn join(group: SocketAddr, options: &crate::group::GroupOptions) -> Result<Self, Error> {
        Ok(Self {
            inner: Bound::Datagram(msg_udp::Socket::join(group, options)?),
            transport: Transport::Udp,
        })
    }

    /// The transport it listens on.
    pub fn transport(&self) -> Transport {
        self.transport
    }

    /// The local address, of whatever kind (with the port the system
    /// picked for port 0): what a client connects to.
    ///
    /// # Errors
    ///
    /// The operating system's, rarely.
    pub fn addr(&self) -> io::Result<PeerAddr> {
        match &self.inner {
            Bound::Datagram(socket) => socket.local_addr().map(PeerAddr::Inet),
            Bound::UnixDatagram(socket) => socket.local_addr(),
            Bound::QuicDatagram(socket) => socket.local_addr().map(PeerAddr::Inet),
            Bound::Stream(listener) => listener.get_ref().local_addr(),
        }
    }

    /// The local IP address and port, for a listener on an IP transport
    /// (all of them so far).
    ///
    /// # Errors
    ///
    /// The operating system's, rarely; `InvalidInput` for a listener whose
    /// address is not an IP address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.addr()?.inet().ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "the listener has no IP address",
            )
        })
    }
}

impl Listener {
    /// For a UDP listener, a way to read at the end how many datagrams the
    /// kernel dropped, its receive buffer full; `None` for TCP.
    ///
    /// # Errors
    ///
    /// The operating system's (out of descriptors).
    pub fn kernel_drops(&self) -> io::Result<Option<crate::KernelDrops>> {
        match &self.inner {
            Bound::Datagram(socket) => Ok(Some(crate::KernelDrops::new(socket.try_clone_std()?))),
            Bound::UnixDatagram(_) | Bound::QuicDatagram(_) | Bound::Stream(_) => Ok(None),
        }
    }

    /// For a QUIC datagram listener, a way to read at the end how many
    /// datagrams arrived and were dropped before it read them (quinn's
    /// receive buffer full); `None` for the others, which keep nothing of
    /// their own (the kernel's drops are [`Listener::kernel_drops`]).
    pub fn buffer_drops(&self) -> Option<crate::BufferDrops> {
        match &self.inner {
            Bound::QuicDatagram(socket) => Some(crate::BufferDrops(socket.unread())),
            Bound::Datagram(_) | Bound::UnixDatagram(_) | Bound::Stream(_) => None,
        }
    }

    /// Asks for a receive buffer of `bytes` on a UDP listener (see
    /// `msg_udp::Socket::set_recv_buffer`); the size granted.
    ///
    /// # Errors
    ///
    /// The operating system's; an `InvalidInput` error on a TCP listener.
    pub fn set_recv_buffer(&self, bytes: usize) -> io::Result<usize> {
        match &self.inner {
            Bound::Datagram(socket) => socket.set_recv_buffer(bytes),
            Bound::UnixDatagram(_) | Bound::QuicDatagram(_) | Bound::Stream(_) => {
                Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "a receive buffer is set for UDP listeners only",
                ))
            }
        }
    }
}

/// `udp 127.0.0.1:9000`, as logged when a listener starts.
impl fmt::Display for Listener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.addr() {
            Ok(addr) => write!(f, "{} {addr}", self.transport()),
            Err(_) => write!(f, "{}", self.transport()),
        }
    }
}
