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

/// Resolves `HOST:PORT` to its first address, for binding. A literal
/// address is returned without a lookup. A client should try them all:
/// [`resolve_all`].
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

/// Resolves `HOST:PORT` to all its addresses, in the resolver's order, for
/// a client to try one after the other: `localhost` is often `::1` first
/// and `127.0.0.1` second, while a listener is on only one of them. A
/// literal address is returned alone, without a lookup.
///
/// # Errors
///
/// [`Error::Resolve`] or [`Error::NoAddress`].
pub async fn resolve_all(addr: &str) -> Result<Vec<SocketAddr>, Error> {
    if let Ok(literal) = addr.parse() {
        return Ok(vec![literal]);
    }
    let mut all: Vec<SocketAddr> = tokio::net::lookup_host(addr)
        .await
        .map_err(|source| Error::Resolve {
            addr: addr.to_owned(),
            source,
        })?
        .collect();
    // getaddrinfo lists an address once per socket type unless told which.
    let mut seen = std::collections::HashSet::new();
    all.retain(|a| seen.insert(*a));
    if all.is_empty() {
        return Err(Error::NoAddress {
            addr: addr.to_owned(),
        });
    }
    Ok(all)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_literal_is_its_only_address() {
        let all = resolve_all("[::1]:9000").await.unwrap();
        assert_eq!(all, ["[::1]:9000".parse::<SocketAddr>().unwrap()]);
    }

    #[tokio::test]
    async fn a_name_gives_every_address_once() {
        let all = resolve_all("localhost:9000").await.unwrap();
        assert!(!all.is_empty());
        assert!(all.iter().all(|a| a.port() == 9000 && a.ip().is_loopback()));
        let unique: std::collections::HashSet<_> = all.iter().collect();
        assert_eq!(unique.len(), all.len(), "{all:?}");
        assert_eq!(resolve("localhost:9000").await.unwrap(), all[0]);
    }
}
