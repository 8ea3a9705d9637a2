//! How long a client waits for the listener's statistics: the first
//! request's wait, and each one after it twice the one before.

use std::time::Duration;

use crate::Transport;

/// How many times a statistics request is sent before the client gives
/// up: over UDP it can be lost behind the stream it asks about. Each
/// waits twice as long as the one before ([`stats_wait`]), so five wait
/// 31 times the first's wait in all (6.2 s from 200 ms).
pub const STATS_ATTEMPTS: u32 = 5;

/// How long a statistics answer may take over a reliable transport, behind
/// the stream it counts.
pub(super) const RELIABLE_STATS_WAIT: Duration = Duration::from_secs(10);

/// How long to wait for the answer to the first statistics request. Over
/// TCP the answer queues behind every discard still in flight, a backlog a
/// busy machine can take a while to work through; TCP loses nothing, so
/// waiting longer only waits. Over UDP each request after the first waits
/// twice as long as the one before: a listener working through the
/// backlog of many flows at once answers late, not never (128 flows at
/// once gave up after five requests 200 ms apart; audit, round five).
pub fn stats_wait(transport: Transport, timeout: Duration) -> Duration {
    if transport.caps().reliable {
        timeout.max(RELIABLE_STATS_WAIT)
    } else {
        timeout
    }
}

/// How long statistics request number `attempt` (from 1) waits for its
/// answer: [`stats_wait`], doubled for each request before it.
pub(super) fn stats_wait_of(transport: Transport, timeout: Duration, attempt: u32) -> Duration {
    doubled(stats_wait(transport, timeout), attempt)
}

/// `first` doubled for each of the `attempt - 1` before it.
fn doubled(first: Duration, attempt: u32) -> Duration {
    first.saturating_mul(1 << attempt.clamp(1, STATS_ATTEMPTS).saturating_sub(1))
}

/// How long [`STATS_ATTEMPTS`] statistics requests over UDP, the first
/// waiting `first`, wait in all before the client gives up.
pub fn stats_waited(first: Duration) -> Duration {
    (1..=STATS_ATTEMPTS)
        .map(|attempt| doubled(first, attempt))
        .sum()
}
