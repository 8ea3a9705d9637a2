//! Which transport, and addresses.

use std::fmt;
use std::net::SocketAddr;

use crate::Error;

/// UDP datagrams or a TCP stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// One message per datagram.
    Udp,
    /// A stream, each message behind a 4-byte length.
    Tcp,
}

impl Transport {
    /// The name used in logs, tables and JSON.
    pub fn name(self) -> &'static str {
        match self {
            Self::Udp => "udp",
            Self::Tcp => "tcp",
        }
    }
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Resolves `HOST:PORT` to its first address. A literal address is
/// returned without a lookup.
///
/// # Errors
///
/// [`Error::Resolve`] or [`Error::NoAddress`].
pub async fn resolve(addr: &str) -> Result<SocketAddr, Error> {
    if let Ok(literal) = addr.parse() {
        return Ok(literal);
    }
    tokio::net::lookup_host(addr)
        .await
        .map_err(|source| Error::Resolve {
            addr: addr.to_owned(),
            source,
        })?
        .next()
        .ok_or_else(|| Error::NoAddress {
            addr: addr.to_owned(),
        })
}
