//! [`Listener`]: a bound socket over either transport, not yet serving.
//!
//! Binding is separate from serving so that a caller that binds port 0
//! (`msg bench`'s built-in listeners, the tests) learns the address before
//! anyone connects.

use std::fmt;
use std::io;
use std::net::SocketAddr;

use crate::{Error, Transport};

/// A bound listening socket.
#[derive(Debug)]
pub struct Listener {
    pub(crate) inner: Bound,
}

#[derive(Debug)]
pub(crate) enum Bound {
    Udp(msg_udp::Socket),
    Tcp(msg_tcp::Listener),
}

impl Listener {
    /// Binds `addr` (port 0 picks a free port); `tcp` applies to every
    /// accepted connection.
    ///
    /// # Errors
    ///
    /// The transport's bind error, for example when the address is in use.
    pub async fn bind(
        transport: Transport,
        addr: SocketAddr,
        tcp: msg_tcp::Options,
    ) -> Result<Self, Error> {
        let inner = match transport {
            Transport::Udp => Bound::Udp(msg_udp::Socket::bind(addr).await?),
            Transport::Tcp => Bound::Tcp(msg_tcp::Listener::bind(addr, tcp).await?),
        };
        Ok(Self { inner })
    }

    /// The transport it listens on.
    pub fn transport(&self) -> Transport {
        match self.inner {
            Bound::Udp(_) => Transport::Udp,
            Bound::Tcp(_) => Transport::Tcp,
        }
    }

    /// The local address (with the port the system picked for port 0).
    ///
    /// # Errors
    ///
    /// The operating system's, rarely.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        match &self.inner {
            Bound::Udp(socket) => socket.local_addr(),
            Bound::Tcp(listener) => listener.local_addr(),
        }
    }
}

/// `udp 127.0.0.1:9000`, as logged when a listener starts.
impl fmt::Display for Listener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.local_addr() {
            Ok(addr) => write!(f, "{} {addr}", self.transport()),
            Err(_) => write!(f, "{}", self.transport()),
        }
    }
}
