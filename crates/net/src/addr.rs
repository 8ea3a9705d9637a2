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
    if port.parse::<u16>().is_err() {
        let digits = !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit());
        return Err(if digits && !host.is_empty() {
            AddrError::PortOutOfRange(s.to_owned())
        } else {
            usage()
        });
    }
    // Brackets are how an IPv6 address is told from its port; around
    // anything else (an IPv4 address, a name) the resolver is handed the
    // brackets too, and its "not known" hides the typing slip.
    if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        if !inner.is_empty() && !inner.contains(':') {
            return Err(AddrError::Bracketed {
                given: s.to_owned(),
                bare: format!("{inner}:{port}"),
            });
        }
    }
    if host.is_empty() || host.contains(':') || host.contains(['[', ']']) {
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
    /// `HOST:PORT` whose port is more than a port holds.
    #[error("expected HOST:PORT with a port of at most 65535, got '{0}'")]
    PortOutOfRange(String),
    /// An IPv4 address or a name in brackets, which only an IPv6 address
    /// takes.
    #[error(
        "expected HOST:PORT, with brackets only around an IPv6 address (such as [::1]:9000), \
         got '{given}': write {bare}"
    )]
    Bracketed {
        /// The address as given.
        given: String,
        /// The same without the brackets.
        bare: String,
    },
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
        assert_eq!(
            parse_host_port("127.0.0.1:65536"),
            Err(AddrError::PortOutOfRange("127.0.0.1:65536".to_owned()))
        );
        for (given, bare) in [
            ("[127.0.0.1]:9000", "127.0.0.1:9000"),
            ("[localhost]:1", "localhost:1"),
        ] {
            assert_eq!(
                parse_host_port(given),
                Err(AddrError::Bracketed {
                    given: given.to_owned(),
                    bare: bare.to_owned(),
                })
            );
        }
        for bad in [
            "127.0.0.1",
            "[]:9000",
            "[::zz]:9000",
            "[host:9000",
            "host]:9000",
            "[::1]:x",
            ":65536",
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
