//! Reaching what a user wrote: [`connect_any`] tries each of its
//! addresses (as its transport reads them: a host name's in the
//! resolver's order) until one connects.
//!
//! `localhost` may be `::1` before `127.0.0.1`, and a listener on only one
//! of them must still be found. Over UDP, where a connect sends nothing,
//! only an address that cannot be reached at all (no route, no IPv6) fails
//! over to the next.

use std::future::Future;

use tracing::debug;

use crate::log::Chain;
use crate::{PeerAddr, Transport};

/// Why no address of a name connected.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectError<E> {
    /// The name has one address: its error, as it is.
    #[error(transparent)]
    One(E),
    /// Every one of several addresses failed.
    #[error("cannot connect to {name} at any of its {count} addresses: {failures}")]
    All {
        /// The name asked for.
        name: String,
        /// How many addresses it has.
        count: usize,
        /// Each address's error, `; `-separated.
        failures: String,
    },
    /// The name did not resolve.
    #[error(transparent)]
    Resolve(crate::Error),
}

/// Connects to `addr`, as `transport` reads it ([`Transport::connect_addrs`]:
/// `HOST:PORT` for an IP transport), with `connect`, trying each of its
/// addresses in order until one connects; the connection and the address
/// it reached.
///
/// # Errors
///
/// [`ConnectError`]: a name that does not resolve; with one address, its
/// connect error as it is; with several, every address tried and why each
/// failed.
pub async fn connect_any<T, E, F>(
    transport: Transport,
    addr: &str,
    connect: impl FnMut(PeerAddr) -> F,
) -> Result<(T, PeerAddr), ConnectError<E>>
where
    F: Future<Output = Result<T, E>>,
    E: std::error::Error + 'static,
{
    let addrs = transport
        .connect_addrs(addr)
        .await
        .map_err(ConnectError::Resolve)?;
    connect_first(addr, &addrs, connect).await
}

/// [`connect_any`] once `name` is resolved to `addrs` (never empty).
///
/// # Errors
///
/// As [`connect_any`].
pub async fn connect_first<A: Clone, T, E, F>(
    name: &str,
    addrs: &[A],
    mut connect: impl FnMut(A) -> F,
) -> Result<(T, A), ConnectError<E>>
where
    F: Future<Output = Result<T, E>>,
    E: std::error::Error + 'static,
{
    let mut failures = Vec::with_capacity(addrs.len());
    for candidate in addrs {
        let candidate = candidate.clone();
        match connect(candidate.clone()).await {
            Ok(connected) => return Ok((connected, candidate)),
            Err(err) if addrs.len() == 1 => return Err(ConnectError::One(err)),
            Err(err) => {
                let err = Chain(&err).to_string();
                debug!("{name}: {err}; trying the next address");
                failures.push(err);
            }
        }
    }
    Err(ConnectError::All {
        name: name.to_owned(),
        count: addrs.len(),
        failures: failures.join("; "),
    })
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use super::*;

    /// A port on `ip` where nobody listens (bound, then released).
    fn closed_port(ip: &str) -> SocketAddr {
        std::net::TcpListener::bind((ip, 0))
            .unwrap()
            .local_addr()
            .unwrap()
    }

    async fn tcp(addr: SocketAddr) -> std::io::Result<tokio::net::TcpStream> {
        tokio::net::TcpStream::connect(addr).await
    }

    #[tokio::test]
    async fn the_first_address_that_connects_wins() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let open = listener.local_addr().unwrap();
        let refused = closed_port("127.0.0.1");
        let (_, reached) = connect_first("name:1", &[refused, open, refused], tcp)
            .await
            .unwrap();
        assert_eq!(reached, open);
    }

    #[tokio::test]
    async fn the_error_names_every_address_tried() {
        let (a, b) = (closed_port("127.0.0.1"), closed_port("127.0.0.1"));
        let err = connect_first("name:1", &[a, b], tcp).await.unwrap_err();
        let text = err.to_string();
        assert!(
            text.starts_with("cannot connect to name:1 at any of its 2 addresses: "),
            "{text}"
        );
        assert_eq!(text.matches("refused").count(), 2, "{text}");
        // One address: its own error, unchanged.
        let err = connect_first("name:1", &[a], tcp).await.unwrap_err();
        assert!(matches!(err, ConnectError::One(_)), "{err}");
    }
}
