//! [`PeerAddr`]: who is at the other end of a stream, whatever the stream.

use std::fmt;
use std::net::SocketAddr;

use crate::unix::UnixPeer;

/// The address of a stream's peer, as a connection reports it and a
/// listener shows it.
///
/// An IP address and port for TCP and UDP; for a Unix socket a path, or
/// nothing but who the peer is (a client is usually unnamed). An enum,
/// and non-exhaustive, because msg's framing is not tied to one kind of
/// stream; not `Copy`, because a path is not.
///
/// It displays exactly as the address inside does (`127.0.0.1:5000`,
/// `[::1]:5000`), so logs and the listener's output read as they did when
/// every peer was a `SocketAddr`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PeerAddr {
    /// A peer on the Internet protocols: TCP, or UDP where a datagram
    /// listener reports its peers the same way.
    Inet(SocketAddr),
    /// A peer on a Unix socket: its path, if it has one, and who it is.
    Unix(UnixPeer),
}

impl PeerAddr {
    /// The IP address and port, for a peer that has them.
    pub fn inet(&self) -> Option<SocketAddr> {
        match self {
            Self::Inet(addr) => Some(*addr),
            Self::Unix(_) => None,
        }
    }

    /// The Unix socket's peer, for a peer on one.
    pub fn unix(&self) -> Option<&UnixPeer> {
        match self {
            Self::Unix(peer) => Some(peer),
            Self::Inet(_) => None,
        }
    }
}

impl From<SocketAddr> for PeerAddr {
    fn from(addr: SocketAddr) -> Self {
        Self::Inet(addr)
    }
}

impl fmt::Display for PeerAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // The formatter passed on, width and fill included.
            Self::Inet(addr) => fmt::Display::fmt(addr, f),
            Self::Unix(peer) => f.pad(&peer.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn displays_as_the_socket_address_does() {
        for addr in ["127.0.0.1:5000", "[::1]:5000", "[fe80::1%2]:1"] {
            let addr: SocketAddr = addr.parse().unwrap();
            let peer = PeerAddr::from(addr);
            assert_eq!(peer.to_string(), addr.to_string());
            assert_eq!(format!("{peer:>30}"), format!("{addr:>30}"));
            assert_eq!(peer.inet(), Some(addr));
        }
    }
}
