//! `--interval`: what each run did in each slice of its measurement, told
//! as the run goes (iperf3's `-i`, neper's per-interval lines), so that a
//! long run shows its progress and its changes (a stall, TCP's window
//! growing back after a loss) instead of one figure at the end.
//!
//! An engine holds a [`Ticker`] while it measures and asks it, at each
//! clock read it makes anyway, whether an interval is over: a comparison
//! with the next boundary, nothing more, so that the ping-pong's round
//! trip pays nothing measurable for it. When one is over, the ticker
//! takes what the run's [`Outcome`] gained since the last boundary: the
//! messages sent and answered, and the round-trip times, as the
//! cumulative histogram less the copy taken at the last boundary (a fresh
//! histogram per interval, the cumulative one kept whole for the end).
//! Over TCP it reads the kernel's `TCP_INFO` too: the congestion window,
//! the smoothed RTT and the segments retransmitted in the interval.

use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use msg_net::{TcpInfo, Transport};

use crate::engine::Outcome;
use crate::plan::{Direction, Engine};

/// One interval of one run.
#[derive(Debug, Clone)]
pub struct Interval {
    /// When it began, from the start of the measurement (after the
    /// warm-up).
    pub t0: Duration,
    /// When it ended; the last interval of a run ends with the run, so may
    /// be shorter than the others.
    pub t1: Duration,
    /// Messages sent in it (in reverse, 0: the listener's count comes at
    /// the end of the run alone).
    pub sent: u64,
    /// Of those, answered (ping-pong), or in reverse what arrived; `None`
    /// for a forward stream, whose listener counts what arrived once, at
    /// the end of the run.
    pub received: Option<u64>,
    /// Its round-trip times, in nanoseconds (empty for a stream).
    pub latency: Histogram<u64>,
    /// Over TCP, the kernel's view at its end.
    pub tcp: Option<TcpInterval>,
}

impl Interval {
    /// Messages answered (ping-pong) or sent (a stream) per second.
    pub fn msgs_per_s(&self) -> f64 {
        let secs = (self.t1 - self.t0).as_secs_f64();
        if secs <= 0.0 {
            return 0.0;
        }
        self.received.unwrap_or(self.sent) as f64 / secs
    }
}

/// What `TCP_INFO` says at the end of an interval.
#[derive(Debug, Clone, Copy)]
pub struct TcpInterval {
    /// The congestion window, in segments.
    pub cwnd: u32,
    /// The smoothed round-trip time.
    pub rtt: Duration,
    /// Segments retransmitted in the interval.
    pub retrans: u32,
}

/// Which run an interval belongs to: the cell of the table and the run's
/// number.
#[derive(Debug, Clone)]
pub struct IntervalOf {
    /// The transport.
    pub transport: Transport,
    /// The engine.
    pub engine: Engine,
    /// Whether the run was authenticated.
    pub authenticated: bool,
    /// The payload size.
    pub size: usize,
    /// The run, from 1.
    pub run: u32,
    /// How many runs the cell has.
    pub runs: u32,
    /// The impairment applied, as its SPEC, if any.
    pub impairment: Option<String>,
    /// Of parallel flows, which (from 1); `None` for a run of one.
    pub flow: Option<u32>,
    /// Which way the stream goes: in reverse an interval counts what
    /// arrived (`received`), and nothing of what the listener sent.
    pub direction: Direction,
}

/// Where an engine's intervals go.
pub(crate) type Sink<'a> = &'a mut dyn FnMut(Interval);

/// What a run has counted so far, as a [`Ticker`] reads it: an engine's
/// [`Outcome`], or the connect mode's run (cycles, and their times).
pub(crate) trait Counted {
    /// Messages (or cycles) sent.
    fn sent(&self) -> u64;
    /// Of those, answered.
    fn received(&self) -> u64;
    /// Their times, in nanoseconds.
    fn latency(&self) -> &Histogram<u64>;
}

impl Counted for Outcome {
    fn sent(&self) -> u64 {
        self.sent
    }
    fn received(&self) -> u64 {
        self.received
    }
    fn latency(&self) -> &Histogram<u64> {
        &self.latency
    }
}

/// An engine's clock for intervals (see the module's text).
pub(crate) struct Ticker<'a> {
    every: Option<Duration>,
    start: Instant,
    /// The next boundary; far in the future without `--interval`, or
    /// once the next would be at or past the run's end ([`Ticker::until`]),
    /// so that [`Ticker::due`] is one comparison either way.
    next: Instant,
    /// "Never": a century from the start.
    never: Instant,
    /// The run's end, if the engine said ([`Ticker::until`]).
    end: Option<Instant>,
    /// What the outcome held at the last boundary.
    t0: Duration,
    sent: u64,
    received: u64,
    latency: Histogram<u64>,
    retrans: Option<u32>,
    sink: Sink<'a>,
}

impl<'a> Ticker<'a> {
    /// Intervals of `every` (none without it) from `start`, the beginning
    /// of the measurement, of which `outcome` is what has been counted so
    /// far (nothing, usually), going to `sink`.
    pub(crate) fn new(
        every: Option<Duration>,
        start: Instant,
        outcome: &impl Counted,
        tcp: Option<TcpInfo>,
        sink: Sink<'a>,
    ) -> Self {
        // A century is "never" for a benchmark, and fits an Instant.
        let never = Duration::from_secs(100 * 365 * 24 * 3600);
        let next = every.map_or(never, |every| every.max(Duration::from_micros(1)));
        Self {
            every,
            start,
            next: start.checked_add(next).unwrap_or(start),
            never: start.checked_add(never).unwrap_or(start),
            end: None,
            t0: Duration::ZERO,
            sent: outcome.sent(),
            received: outcome.received(),
            latency: outcome.latency().clone(),
            retrans: tcp.map(|info| info.total_retrans),
            sink,
        }
    }

    /// Ends the run at `end`, the very instant the engine stops measuring
    /// at: no boundary falls at or after it, so the run's last interval is
    /// the one [`Ticker::finish`] ends, never a sliver after a boundary
    /// on the run's end itself (0.500001-0.500519 s, one message, a rate
    /// a hundred times off; audit, round nine).
    pub(crate) fn until(mut self, end: Instant) -> Self {
        self.end = Some(end);
        self.cap();
        self
    }

    /// No boundary at or after the run's end.
    fn cap(&mut self) {
        if self.end.is_some_and(|end| self.next >= end) {
            self.next = self.never;
        }
    }

    /// Whether `now` is at or past the run's end ([`Ticker::until`]): for
    /// an engine that goes on counting after it (a reverse stream, until
    /// the listener's closing pong), where a boundary noticed late would
    /// still make a sliver.
    pub(crate) fn ended(&self, now: Instant) -> bool {
        self.end.is_some_and(|end| now >= end)
    }

    /// Whether an interval is over at `now`.
    #[inline]
    pub(crate) fn due(&self, now: Instant) -> bool {
        now >= self.next
    }

    /// Ends the interval at `now` with what `outcome` holds; `answered`
    /// says whether it counts answers (ping-pong) or only what was sent (a
    /// stream); `tcp` is the kernel's view now, over TCP.
    pub(crate) fn tick(
        &mut self,
        now: Instant,
        outcome: &impl Counted,
        answered: bool,
        tcp: Option<TcpInfo>,
    ) {
        let Some(every) = self.every else { return };
        let t1 = now.saturating_duration_since(self.start);
        let mut latency = outcome.latency().clone();
        // The cumulative histogram only grows: the difference is exactly
        // the interval's samples.
        latency
            .subtract(&self.latency)
            .expect("the same bounds, and the later counts are never smaller");
        let interval = Interval {
            t0: self.t0,
            t1,
            sent: outcome.sent() - self.sent,
            received: answered.then(|| outcome.received() - self.received),
            latency,
            tcp: tcp.map(|info| TcpInterval {
                cwnd: info.snd_cwnd,
                rtt: info.rtt,
                retrans: info
                    .total_retrans
                    .saturating_sub(self.retrans.unwrap_or(info.total_retrans)),
            }),
        };
        self.t0 = t1;
        self.sent = outcome.sent();
        self.received = outcome.received();
        self.latency = outcome.latency().clone();
        self.retrans = tcp.map(|info| info.total_retrans);
        // The boundaries stay on the grid of `every` from the start, however
        // late this tick was noticed.
        while self.next <= now {
            self.next += every;
        }
        self.cap();
        (self.sink)(interval);
    }

    /// Ends the run's last interval at `now`, if any time has passed since
    /// the last boundary.
    pub(crate) fn finish(
        &mut self,
        now: Instant,
        outcome: &impl Counted,
        answered: bool,
        tcp: Option<TcpInfo>,
    ) {
        if now.saturating_duration_since(self.start) > self.t0 {
            self.tick(now, outcome, answered, tcp);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The intervals cover the measurement without gap or overlap, and
    /// their counts add up to the run's.
    #[test]
    fn intervals_add_up_to_the_run() {
        let start = Instant::now();
        let mut outcome = Outcome::new();
        let mut got = Vec::new();
        let mut sink = |interval: Interval| got.push(interval);
        let every = Duration::from_millis(10);
        let mut ticker = Ticker::new(Some(every), start, &outcome, None, &mut sink);
        for step in 1..=35u32 {
            let now = start + Duration::from_millis(u64::from(step));
            if ticker.due(now) {
                ticker.tick(now, &outcome, true, None);
            }
            outcome.sent += 1;
            outcome.record(u64::from(step) * 1000);
        }
        let end = start + Duration::from_millis(36);
        ticker.finish(end, &outcome, true, None);
        let bounds: Vec<(u128, u128)> = got
            .iter()
            .map(|i| (i.t0.as_millis(), i.t1.as_millis()))
            .collect();
        assert_eq!(bounds, [(0, 10), (10, 20), (20, 30), (30, 36)]);
        assert_eq!(got.iter().map(|i| i.sent).sum::<u64>(), outcome.sent);
        let received: u64 = got.iter().filter_map(|i| i.received).sum();
        assert_eq!(received, outcome.received);
        let samples: u64 = got.iter().map(|i| i.latency.len()).sum();
        assert_eq!(samples, outcome.latency.len());
        // The first interval's samples are its own: 1 to 9 µs.
        assert!(got[0].latency.max() < 10_000, "{}", got[0].latency.max());
    }

    /// With the run's end given, no boundary falls on it or after it:
    /// the last interval is the one `finish` ends, however late the
    /// engine notices the end, not a sliver after a boundary on the end.
    #[test]
    fn no_boundary_at_or_after_the_runs_end() {
        let start = Instant::now();
        let mut outcome = Outcome::new();
        let mut got = Vec::new();
        let mut sink = |interval: Interval| got.push(interval);
        let every = Duration::from_millis(10);
        let end = start + Duration::from_millis(20);
        let mut ticker = Ticker::new(Some(every), start, &outcome, None, &mut sink).until(end);
        for step in 1..=25u32 {
            let now = start + Duration::from_millis(u64::from(step));
            if ticker.due(now) {
                ticker.tick(now, &outcome, false, None);
            }
            outcome.sent += 1;
        }
        ticker.finish(start + Duration::from_millis(26), &outcome, false, None);
        let bounds: Vec<(u128, u128)> = got
            .iter()
            .map(|i| (i.t0.as_millis(), i.t1.as_millis()))
            .collect();
        assert_eq!(bounds, [(0, 10), (10, 26)]);
        assert_eq!(got.iter().map(|i| i.sent).sum::<u64>(), outcome.sent);
    }

    #[test]
    fn without_an_interval_nothing_is_ever_due() {
        let start = Instant::now();
        let outcome = Outcome::new();
        let mut sink = |_: Interval| panic!("no interval asked for");
        let mut ticker = Ticker::new(None, start, &outcome, None, &mut sink);
        assert!(!ticker.due(start + Duration::from_secs(3600)));
        ticker.finish(start + Duration::from_secs(1), &outcome, true, None);
    }
}
