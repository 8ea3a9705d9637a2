//! Address resolution and the usage-error type shared by the subcommands.

use std::fmt;
use std::net::SocketAddr;

use anyhow::Context;

/// An error in what the user asked for rather than in what happened: `main`
/// exits with 2 for it, as clap does for the errors it finds itself.
#[derive(Debug)]
pub(crate) struct UsageError(pub(crate) String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// Resolves `HOST:PORT` (already checked for shape by the argument parser)
/// to its first address. A literal address is returned without a lookup.
pub(crate) async fn resolve(addr: &str) -> anyhow::Result<SocketAddr> {
    if let Ok(literal) = addr.parse() {
        return Ok(literal);
    }
    tokio::net::lookup_host(addr)
        .await
        .with_context(|| format!("cannot resolve '{addr}'"))?
        .next()
        .with_context(|| format!("cannot resolve '{addr}': no addresses"))
}
