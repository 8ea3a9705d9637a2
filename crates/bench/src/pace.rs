//! Waiting until an instant with microsecond precision, and the send times
//! of a fixed-rate schedule ([`scheduled`]).
//!
//! tokio's timers tick in whole milliseconds, so at 10,000 messages per
//! second a schedule paced by `tokio::time::sleep_until` would leave in
//! bursts of ten and the open loop would measure its own timer. On Linux a
//! `timerfd`, registered with tokio's reactor like any socket, is precise to
//! the kernel's timer; elsewhere the millisecond timer is the fallback.
//!
//! Even a precise timer is late by however long the CPU takes to wake from
//! idle: on this project's VMs some 40–60 µs, more than a loopback round
//! trip. So the last [`SPIN_WINDOW`] before a send is spent spinning
//! (yielding the core to any thread that wants it) instead of sleeping, but
//! only when the caller says nothing is waiting on this task: a reply that
//! arrives while the task spins would wait for the spin to end.

use std::io;
use std::time::{Duration, Instant};

/// How long before a send the pacer stops sleeping and spins.
pub(crate) const SPIN_WINDOW: Duration = Duration::from_micros(100);

/// The send time of message `i` of a schedule at `rate` per second.
pub(crate) fn scheduled(start: Instant, i: u64, rate: u64) -> Instant {
    let ns = u128::from(i) * 1_000_000_000 / u128::from(rate);
    start + Duration::from_nanos(u64::try_from(ns).unwrap_or(u64::MAX))
}

/// When the next message of a one-way stream goes: now without a pacer;
/// with one at `rate`, message `sent`'s time on the schedule from
/// `start`, waited for unless it falls at or past `end` (spinning through
/// its last moments: nothing comes back on a one-way stream for a spin to
/// hold up). Behind the schedule (a rate above what this machine sends),
/// now: the stream still ends at `end` by the clock, and its intervals
/// are stamped when their messages went (audit, round fifteen: a 0.3 s
/// run at 10,000,000 msg/s took 12.7 s, its first interval claiming all
/// 1,000,000 of its messages sent in 0.1 s).
///
/// # Errors
///
/// The timer's.
pub(crate) async fn next_send(
    pacer: Option<&mut (Pacer, u64)>,
    start: Instant,
    sent: u64,
    end: Instant,
) -> io::Result<Instant> {
    let Some((pacer, rate)) = pacer else {
        return Ok(Instant::now());
    };
    let due = scheduled(start, sent, *rate);
    if due < end {
        pacer.wait_until(due, || true).await?;
    }
    Ok(due.max(Instant::now()))
}

/// A reusable one-shot timer.
#[derive(Debug)]
pub(crate) struct Pacer {
    #[cfg(target_os = "linux")]
    timer: tokio::io::unix::AsyncFd<linux::Timer>,
}

impl Pacer {
    /// # Errors
    ///
    /// When the timer cannot be created or registered.
    pub(crate) fn new() -> io::Result<Self> {
        #[cfg(target_os = "linux")]
        let timer = {
            use tokio::io::{Interest, unix::AsyncFd};
            let timer = linux::Timer::new()?;
            // SAFETY: `Timer` owns its descriptor (a `TimerFd` holds an
            // `OwnedFd`), never replaces it, and its `as_raw_fd` always
            // returns it; the descriptor lives as long as the `AsyncFd`,
            // which owns the `Timer`.
            unsafe { AsyncFd::register_with_interest(timer, Interest::READABLE) }
                .map_err(io::Error::from)?
        };
        Ok(Self {
            #[cfg(target_os = "linux")]
            timer,
        })
    }

    /// Returns at `at`, or at once if `at` has passed. Spins through the
    /// last [`SPIN_WINDOW`] if `may_spin` says so when asked.
    ///
    /// # Errors
    ///
    /// The operating system's, from the timer.
    pub(crate) async fn wait_until(
        &mut self,
        at: Instant,
        may_spin: impl Fn() -> bool,
    ) -> io::Result<()> {
        loop {
            let now = Instant::now();
            if at <= now {
                return Ok(());
            }
            let left = at - now;
            if left <= SPIN_WINDOW {
                if may_spin() {
                    while Instant::now() < at {
                        std::thread::yield_now();
                    }
                    return Ok(());
                }
                return self.sleep_until(at).await;
            }
            // Wake at the start of the window and decide then.
            self.sleep_until(at - SPIN_WINDOW).await?;
        }
    }

    async fn sleep_until(&mut self, at: Instant) -> io::Result<()> {
        let now = Instant::now();
        if at <= now {
            return Ok(());
        }
        #[cfg(target_os = "linux")]
        {
            self.timer.get_ref().arm(at - now)?;
            loop {
                let mut ready = self.timer.readable().await?;
                match ready.try_io(|timer| timer.get_ref().take()) {
                    Ok(result) => return result,
                    Err(_would_block) => {}
                }
            }
        }
        #[cfg(not(target_os = "linux"))]
        {
            tokio::time::sleep_until(at.into()).await;
            Ok(())
        }
    }
}

#[cfg(target_os = "linux")]
mod linux {
    use std::io;
    use std::os::fd::{AsFd, AsRawFd, RawFd};
    use std::time::Duration;

    use nix::sys::time::TimeSpec;
    use nix::sys::timerfd::{ClockId, Expiration, TimerFd, TimerFlags, TimerSetTimeFlags};

    /// A non-blocking monotonic timerfd.
    #[derive(Debug)]
    pub(super) struct Timer(TimerFd);

    impl Timer {
        pub(super) fn new() -> io::Result<Self> {
            let flags = TimerFlags::TFD_NONBLOCK | TimerFlags::TFD_CLOEXEC;
            Ok(Self(TimerFd::new(ClockId::CLOCK_MONOTONIC, flags)?))
        }

        /// Fires once, `after` from now (a zero would disarm the timer, so
        /// the least is a nanosecond).
        pub(super) fn arm(&self, after: Duration) -> io::Result<()> {
            let after = after.max(Duration::from_nanos(1));
            self.0.set(
                Expiration::OneShot(TimeSpec::from_duration(after)),
                TimerSetTimeFlags::empty(),
            )?;
            Ok(())
        }

        /// Consumes an expiry; `WouldBlock` if the timer has not fired.
        pub(super) fn take(&self) -> io::Result<()> {
            self.0.wait().map_err(io::Error::from)
        }
    }

    impl AsRawFd for Timer {
        fn as_raw_fd(&self) -> RawFd {
            self.0.as_fd().as_raw_fd()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules_are_exact_at_any_rate() {
        let start = Instant::now();
        assert_eq!(scheduled(start, 0, 7), start);
        assert_eq!(scheduled(start, 3, 1000), start + Duration::from_millis(3));
        assert_eq!(
            scheduled(start, 1, 3),
            start + Duration::from_nanos(333_333_333)
        );
        assert_eq!(scheduled(start, 3, 3), start + Duration::from_secs(1));
    }

    #[tokio::test]
    async fn returns_at_or_after_the_instant() {
        let mut pacer = Pacer::new().unwrap();
        for step in [50, 300, 0, 2000] {
            for spin in [false, true] {
                let at = Instant::now() + Duration::from_micros(step);
                pacer.wait_until(at, || spin).await.unwrap();
                assert!(Instant::now() >= at);
            }
        }
        // An instant in the past returns at once, and the timer stays usable.
        pacer.wait_until(Instant::now(), || true).await.unwrap();
        let at = Instant::now() + Duration::from_micros(100);
        pacer.wait_until(at, || false).await.unwrap();
        assert!(Instant::now() >= at);
    }
}
