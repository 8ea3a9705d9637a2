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

/// Busy polling: while it lives, the runtime never sleeps in `epoll_wait`
/// but polls its sockets without blocking, again and again, so that a
/// message is picked up the moment it arrives instead of after the thread
/// is woken. On a machine whose idle cores take tens of microseconds to
/// wake, that is most of a cross-core round trip; the price is a whole
/// core kept busy, and on a core shared with the peer it is a loss (the
/// peer waits for the spinner to be preempted).
///
/// It is a task that yields forever: a current-thread runtime with a
/// yielded task polls its drivers with a zero timeout instead of parking.
#[derive(Debug)]
pub(crate) struct BusyPoll(tokio::task::JoinHandle<()>);

impl BusyPoll {
    /// Starts spinning the current runtime.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime.
    pub(crate) fn start() -> Self {
        Self(tokio::spawn(async {
            loop {
                tokio::task::yield_now().await;
            }
        }))
    }
}

impl Drop for BusyPoll {
    fn drop(&mut self) {
        self.0.abort();
    }
}
