//! The UDP transport's one error type.

use std::io;
use std::net::SocketAddr;

use crate::limits::body_hint;
use crate::{Family, Overhead, group};

/// Errors of the UDP transport.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The message does not fit one datagram; nothing was sent.
    #[error(
        "message is {len} bytes; a UDP datagram holds at most {max} bytes on {family}{}",
        body_hint(*.overhead, *.max)
    )]
    TooLarge {
        /// The size the caller asked to send: the body of a framed message,
        /// or the whole payload of a raw one; never the overhead.
        len: usize,
        /// The datagram payload limit for `family`, overhead included.
        max: usize,
        /// The IP version the datagram would travel over.
        family: Family,
        /// What the datagram would carry besides the `len` bytes.
        overhead: Overhead,
    },
    /// A message larger than a Unix datagram socket sends: its send
    /// buffer, not a header field, sets the limit.
    #[error(
        "message is {len} bytes; a Unix datagram holds at most {max} bytes here (the socket's \
         send buffer, SO_SNDBUF, less 32 bytes of the kernel's; sysctl net.core.wmem_default \
         raises it){}",
        body_hint(*.overhead, *.max)
    )]
    UnixTooLarge {
        /// The size the caller asked to send, as for [`Error::TooLarge`].
        len: usize,
        /// The largest datagram the socket sends, overhead included.
        max: usize,
        /// What the datagram would carry besides the `len` bytes.
        overhead: Overhead,
    },
    /// The local address could not be bound.
    #[error("cannot bind UDP socket to {addr}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// Why.
        source: io::Error,
    },
    /// The socket could not be connected to its peer.
    #[error("cannot connect UDP socket to {addr}")]
    Connect {
        /// The peer.
        addr: SocketAddr,
        /// Why.
        source: io::Error,
    },
    /// The send call failed.
    #[error("cannot send to {addr}")]
    Send {
        /// The peer.
        addr: SocketAddr,
        /// Why.
        source: io::Error,
    },
    /// The receive call failed (on a connected socket, often an ICMP "port
    /// unreachable": nobody listens at the peer's address).
    #[error("cannot receive")]
    Recv(#[source] io::Error),
    /// The datagram could not be tagged (its session's counter is used up).
    #[error("cannot authenticate the datagram")]
    Auth(#[from] msg_proto::auth::AuthError),
    /// A send was asked of a socket that was never connected (or a batch
    /// of a one-to-many socket, which sends one datagram at a time).
    #[error("the socket is not connected")]
    NotConnected,
    /// A group could not be joined or sent to.
    #[error(transparent)]
    Group(#[from] group::GroupError),
}

impl Error {
    /// Whether the kernel found no interface for a multicast group: a join
    /// with `ENODEV`, a send with `ENETUNREACH`. Naming the interface, or a
    /// route for the group, is the fix.
    pub fn no_route_to_group(&self) -> bool {
        match self {
            Self::Group(group::GroupError::Join { source, .. }) => {
                source.raw_os_error() == Some(ENODEV)
            }
            Self::Send { addr, source } => {
                addr.ip().is_multicast() && source.kind() == io::ErrorKind::NetworkUnreachable
            }
            _ => false,
        }
    }

    /// Whether the limited broadcast (255.255.255.255) found no route: it
    /// leaves by the interface the routing table picks for it, by default
    /// the default route's, and a host without one has nowhere to send it.
    pub fn no_route_for_broadcast(&self) -> bool {
        match self {
            Self::Connect { addr, source } | Self::Send { addr, source } => {
                addr.ip() == std::net::IpAddr::V4(std::net::Ipv4Addr::BROADCAST)
                    && source.kind() == io::ErrorKind::NetworkUnreachable
            }
            _ => false,
        }
    }

    /// Whether the kernel refused a broadcast address to a socket without
    /// `SO_BROADCAST` (`EACCES`, at the connect or the send).
    pub fn needs_broadcast(&self) -> bool {
        match self {
            Self::Connect { source, .. } | Self::Send { source, .. } => {
                source.kind() == io::ErrorKind::PermissionDenied
            }
            _ => false,
        }
    }
}

/// `ENODEV`, "no such device".
#[cfg(unix)]
const ENODEV: i32 = libc::ENODEV;
#[cfg(not(unix))]
const ENODEV: i32 = 19;
