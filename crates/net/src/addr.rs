//! Addresses as a user writes them: `HOST:PORT` (or a `PORT` alone),
//! resolved to every address a name has, and a Unix socket's path or
//! `@name`.

use std::net::SocketAddr;

use crate::{Error, PeerAddr};

/// A Unix socket's address as a user wrote it: a path, or `@name`.
pub(crate) fn unix_addr(addr: &str) -> Result<PeerAddr, Error> {
    Ok(PeerAddr::Unix(msg_tcp::unix::UnixPeer {
        path: Some(msg_tcp::unix::UnixPath::parse(addr)?),
        cred: None,
    }))
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

/// The host a port given alone means, to listen on and to send to alike:
/// loopback, as the listener's default address is, so that `msg listen
/// --tcp 9000` exposes nothing to the network unasked, and `msg send --tcp
/// 9000 hi` reaches it (as `nc localhost 9000` would).
pub const DEFAULT_HOST: &str = "127.0.0.1";

/// An address as a user types it: accepts `HOST:PORT` with a numeric port and a non-empty host (IPv6
/// literals in brackets), or a port alone, which means
/// [`DEFAULT_HOST`]`:PORT`; resolving the host is left to run time, where a
/// failure is a runtime error rather than a usage error.
///
/// # Errors
///
/// [`AddrError`] for what is neither.
pub fn parse_host_port(s: &str) -> Result<String, AddrError> {
    if s.parse::<SocketAddr>().is_ok() {
        return Ok(s.to_owned());
    }
    // Digits only: a port, as nc and socat users type it.
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        let port: u16 = s
            .parse()
            .map_err(|_| AddrError::PortTooLarge(s.to_owned()))?;
        return Ok(format!("{DEFAULT_HOST}:{port}"));
    }
    let usage = || AddrError::NotHostPort(s.to_owned());
    let (host, port) = s.rsplit_once(':').ok_or_else(usage)?;
    if host.is_empty() || host.contains(':') || port.parse::<u16>().is_err() {
        return Err(usage());
    }
    Ok(s.to_owned())
}

/// Why an address is not `HOST:PORT` or `PORT`.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AddrError {
    /// Digits only, but more than a port holds.
    #[error("a port is at most 65535, got {0}")]
    PortTooLarge(String),
    /// Anything else.
    #[error("expected HOST:PORT or PORT such as 127.0.0.1:9000, [::1]:9000 or 9000, got '{0}'")]
    NotHostPort(String),
    /// A Unix socket's path that `sun_path` cannot hold, or none.
    #[error(transparent)]
    Unix(#[from] msg_tcp::unix::UnixPathError),
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

    #[test]
    fn addresses() {
        for ok in [
            "127.0.0.1:9000",
            "[::1]:9000",
            "localhost:1",
            "example.com:65535",
        ] {
            assert_eq!(parse_host_port(ok).as_deref(), Ok(ok));
        }
        assert_eq!(parse_host_port("9000").as_deref(), Ok("127.0.0.1:9000"));
        assert_eq!(parse_host_port("0").as_deref(), Ok("127.0.0.1:0"));
        assert_eq!(
            parse_host_port("65536"),
            Err(AddrError::PortTooLarge("65536".to_owned()))
        );
        for bad in [
            "127.0.0.1",
            "9000x",
            "-1",
            "::1:9000",
            ":9000",
            "host:",
            "host:65536",
            "host:x",
            "",
        ] {
            assert!(parse_host_port(bad).is_err(), "{bad}");
        }
    }
}
