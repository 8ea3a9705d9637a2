//! Logging what peers cost, without letting them flood the log: at most
//! one warning a second, with counts of what was held back.

use std::time::{Duration, Instant};

use msg_proto::Message;
use tracing::warn;

use crate::{Error, Event, Events, Offer, PeerAddr};

/// Offers a datagram's message for printing, without waiting (a UDP loop
/// must not wait on one peer's behalf); `false` once nobody prints any more.
pub(crate) fn show_datagram(
    events: &Events,
    dropped: &mut DropWarning,
    peer: impl Into<PeerAddr>,
    msg: &Message,
) -> bool {
    if !events.wanted() {
        return true;
    }
    // A copy, so the queue holds what arrived and not the socket's whole
    // 64 KiB receive buffer.
    let event = Event::Message {
        peer: peer.into(),
        seq: Some(msg.seq),
        body: bytes::Bytes::copy_from_slice(&msg.body),
    };
    match events.offer(event) {
        Offer::Queued => true,
        Offer::Dropped => {
            dropped.note(events);
            true
        }
        Offer::Closed => false,
    }
}

/// An error and its sources on one line, `a: b: c`, for a log line.
pub(crate) struct Chain<'a>(pub(crate) &'a (dyn std::error::Error + 'static));

impl std::fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(err) = source {
            write!(f, ": {err}")?;
            source = err.source();
        }
        Ok(())
    }
}

/// Warns, through `limit`, that an answer to `peer` could not be sent,
/// and why: a peer that reads none of its answers (a Unix datagram
/// socket's queue full) makes one for every message it sends.
pub(crate) fn reply_failed(limit: &RateLimited, peer: &dyn std::fmt::Display, err: &Error) {
    limit.warn(|suppressed| warn!(%peer, suppressed, "cannot reply: {}", Chain(err)));
}

/// At most one warning a second from many tasks; the ones held back are
/// counted into the next.
#[derive(Debug, Default)]
pub(crate) struct RateLimited {
    last: std::sync::Mutex<Option<Instant>>,
    suppressed: std::sync::atomic::AtomicU64,
}

impl RateLimited {
    const EVERY: Duration = Duration::from_secs(1);

    /// One that has warned nothing yet, for a `static`.
    pub(crate) const fn new() -> Self {
        Self {
            last: std::sync::Mutex::new(None),
            suppressed: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// Calls `warn` with the number held back since the last warning, or
    /// holds this one back.
    pub(crate) fn warn(&self, warn: impl FnOnce(u64)) {
        use std::sync::atomic::Ordering;
        let mut last = self
            .last
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if last.is_none_or(|at| at.elapsed() >= Self::EVERY) {
            *last = Some(Instant::now());
            drop(last);
            warn(self.suppressed.swap(0, Ordering::Relaxed));
        } else {
            self.suppressed.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Warns that messages were dropped because the output did not keep up,
/// at most once a second, with the running total.
#[derive(Debug, Default)]
pub(crate) struct DropWarning {
    last: Option<Instant>,
}

impl DropWarning {
    const EVERY: Duration = Duration::from_secs(1);

    pub(crate) fn note(&mut self, events: &Events) {
        if self.last.is_none_or(|last| last.elapsed() >= Self::EVERY) {
            self.last = Some(Instant::now());
            warn!(
                dropped = events.dropped(),
                "the output is not keeping up: dropped UDP messages it had no room for"
            );
        }
    }
}
