//! One module per subcommand: its flags, and the code that runs it; and
//! how a client reaches a host name's addresses ([`connect_any`]).

use std::future::Future;
use std::net::SocketAddr;

use anyhow::anyhow;
use tracing::debug;

pub(crate) mod bench;
pub(crate) mod completions;
pub(crate) mod demo;
pub(crate) mod exec;
pub(crate) mod listen;
pub(crate) mod send;

/// Connects to `addr` (`HOST:PORT`), trying each of its addresses in the
/// resolver's order until one connects: `localhost` may be `::1` before
/// `127.0.0.1`, and a listener on only one of them must still be found.
/// Returns the connection and the address it reached.
///
/// Over UDP, where a connect sends nothing, only an address that cannot be
/// reached at all (no route, no IPv6) fails over to the next.
///
/// # Errors
///
/// A name that does not resolve; or with one address, its connect error as
/// it is; with several, every address tried and why each failed.
pub(crate) async fn connect_any<T, E, F>(
    addr: &str,
    connect: impl FnMut(SocketAddr) -> F,
) -> anyhow::Result<(T, SocketAddr)>
where
    F: Future<Output = Result<T, E>>,
    E: Into<anyhow::Error>,
{
    let addrs = msg_net::resolve_all(addr).await?;
    connect_first(addr, &addrs, connect).await
}

/// [`connect_any`] once resolved: `addrs` is never empty.
pub(crate) async fn connect_first<T, E, F>(
    name: &str,
    addrs: &[SocketAddr],
    mut connect: impl FnMut(SocketAddr) -> F,
) -> anyhow::Result<(T, SocketAddr)>
where
    F: Future<Output = Result<T, E>>,
    E: Into<anyhow::Error>,
{
    let mut failures = Vec::with_capacity(addrs.len());
    for &candidate in addrs {
        match connect(candidate).await {
            Ok(connected) => return Ok((connected, candidate)),
            Err(err) if addrs.len() == 1 => return Err(err.into()),
            Err(err) => {
                let err = format!("{:#}", err.into());
                debug!("{name}: {err}; trying the next address");
                failures.push(err);
            }
        }
    }
    Err(anyhow!(
        "cannot connect to {name} at any of its {} addresses: {}",
        addrs.len(),
        failures.join("; ")
    ))
}

#[cfg(test)]
mod tests {
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
        let text = format!("{err:#}");
        assert!(
            text.starts_with("cannot connect to name:1 at any of its 2 addresses: "),
            "{text}"
        );
        assert_eq!(text.matches("refused").count(), 2, "{text}");
        // One address: its own error, unchanged.
        let err = connect_first("name:1", &[a], tcp).await.unwrap_err();
        assert!(err.downcast_ref::<std::io::Error>().is_some(), "{err:#}");
    }
}
