//! [`Deadlines`]: the idle and frame limits of one stream connection, with
//! no clock and no socket. Both engines keep one per connection and only
//! tell it what happened and when; it says how long the next wait may be
//! and whether a limit ran out. One algorithm, whichever engine waits.
//!
//! - **Idle**: a peer may stay quiet between messages for
//!   [`Limits::idle_timeout`](crate::Limits::idle_timeout), counted from
//!   its last whole message.
//! - **Frame**: once part of a frame has arrived, the rest must follow
//!   within [`Limits::frame_timeout`](crate::Limits::frame_timeout), so
//!   that a peer that trickles a byte a second (slowloris) cannot hold the
//!   connection for ever. A frame's first bytes are noticed when a wait
//!   runs out with them buffered, not when they arrive (that would take a
//!   clock reading per read), so a wait with no frame in progress lasts a
//!   tenth of the frame timeout at most ([`NOTICE`]): a slow frame is
//!   dropped between one and 1.1 frame timeouts after it began. (Waits of
//!   a whole frame timeout let it run to two, where the log said "within"
//!   one: audit, round fourteen.)

use std::time::{Duration, Instant};

use crate::Limits;

/// A wait with no frame in progress lasts at most the frame timeout over
/// this, so that a frame's first bytes are noticed that soon after they
/// came: a wake-up of an idle connection every 3 s at the default 30 s.
const NOTICE: u32 = 10;

/// Which limit ran out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Expired {
    /// No whole message for the idle timeout, and nothing of one pending.
    Idle(Duration),
    /// A frame began and did not complete within the frame timeout.
    Frame(Duration),
}

/// The idle and frame deadlines of one connection; see the module docs.
#[derive(Debug, Clone)]
pub(crate) struct Deadlines {
    idle: Option<Duration>,
    frame: Duration,
    /// When the last whole message arrived (or the connection began).
    last_message: Instant,
    /// When a wait first ran out with part of a frame buffered.
    partial_since: Option<Instant>,
}

impl Deadlines {
    /// The deadlines of a connection that begins at `now`.
    pub(crate) fn new(limits: &Limits, now: Instant) -> Self {
        Self {
            idle: limits.idle_timeout,
            frame: limits.frame_timeout,
            last_message: now,
            partial_since: None,
        }
    }

    /// A whole message arrived, at `now()`: called only when there is an
    /// idle timeout to count from it, so a connection without one reads
    /// no clock per message (a ping-pong's hot path).
    pub(crate) fn on_message(&mut self, now: impl FnOnce() -> Instant) {
        if self.idle.is_some() {
            self.last_message = now();
        }
        self.partial_since = None;
    }

    /// How long the next wait may last before [`Deadlines::on_wait_over`]
    /// must be asked: until the idle deadline or the frame deadline,
    /// whichever comes first, and never zero (a wait that is over is
    /// asked about at once anyway).
    pub(crate) fn next_wait(&self, now: Instant) -> Duration {
        let frame = match self.partial_since {
            Some(since) => (since + self.frame).saturating_duration_since(now),
            None => self.frame / NOTICE,
        };
        let idle = self
            .idle
            .map(|idle| (self.last_message + idle).saturating_duration_since(now));
        idle.map_or(frame, |idle| idle.min(frame))
            .max(Duration::from_millis(1))
    }

    /// A wait ran out at `now` with `buffered` bytes of an unfinished
    /// frame: whether a limit has run out.
    ///
    /// # Errors
    ///
    /// [`Expired`], naming the limit; the caller closes the connection.
    pub(crate) fn on_wait_over(&mut self, now: Instant, buffered: usize) -> Result<(), Expired> {
        if buffered > 0 {
            let since = *self.partial_since.get_or_insert(now);
            if now.saturating_duration_since(since) >= self.frame {
                return Err(Expired::Frame(self.frame));
            }
            return Ok(());
        }
        self.partial_since = None;
        match self.idle {
            Some(idle) if now.saturating_duration_since(self.last_message) >= idle => {
                Err(Expired::Idle(idle))
            }
            _ => Ok(()),
        }
    }
}

/// What a listener tells a peer it closes for idling.
pub(crate) fn idle_text(after: Duration) -> String {
    crate::refusal::IDLE.format(humantime::format_duration(after))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(idle: Option<u64>, frame: u64) -> Limits {
        Limits {
            idle_timeout: idle.map(Duration::from_secs),
            frame_timeout: Duration::from_secs(frame),
            ..Limits::default()
        }
    }

    #[test]
    fn a_quiet_peer_is_idle_at_the_idle_timeout_and_not_before() {
        let t0 = Instant::now();
        let mut deadlines = Deadlines::new(&limits(Some(5), 60), t0);
        assert_eq!(deadlines.next_wait(t0), Duration::from_secs(5));
        let s = Duration::from_secs;
        assert_eq!(deadlines.on_wait_over(t0 + s(4), 0), Ok(()));
        assert_eq!(deadlines.next_wait(t0 + s(4)), s(1));
        assert_eq!(
            deadlines.on_wait_over(t0 + s(5), 0),
            Err(Expired::Idle(s(5)))
        );
        // A message resets it.
        deadlines.on_message(|| t0 + s(5));
        assert_eq!(deadlines.on_wait_over(t0 + s(9), 0), Ok(()));
    }

    #[test]
    fn a_trickled_frame_ends_one_frame_timeout_after_it_was_noticed() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let mut deadlines = Deadlines::new(&limits(None, 30), t0);
        // With nothing in progress, a wait of a tenth of the timeout: a
        // frame begun in it is noticed at its end.
        assert_eq!(deadlines.next_wait(t0), s(3));
        assert_eq!(deadlines.on_wait_over(t0 + s(3), 0), Ok(()));
        // Noticed at the first wait that runs out with bytes buffered.
        assert_eq!(deadlines.on_wait_over(t0 + s(6), 3), Ok(()));
        assert_eq!(deadlines.next_wait(t0 + s(6)), s(30));
        assert_eq!(deadlines.on_wait_over(t0 + s(21), 9), Ok(()));
        assert_eq!(deadlines.next_wait(t0 + s(21)), s(15));
        assert_eq!(
            deadlines.on_wait_over(t0 + s(36), 12),
            Err(Expired::Frame(s(30)))
        );
    }

    #[test]
    fn a_frame_in_progress_is_not_idle() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let mut deadlines = Deadlines::new(&limits(Some(1), 30), t0);
        assert_eq!(deadlines.on_wait_over(t0 + s(2), 5), Ok(()));
        // The frame completed: idle counts from that message.
        deadlines.on_message(|| t0 + s(3));
        assert_eq!(deadlines.on_wait_over(t0 + s(3), 0), Ok(()));
        assert_eq!(
            deadlines.on_wait_over(t0 + s(4), 0),
            Err(Expired::Idle(s(1)))
        );
    }
}
