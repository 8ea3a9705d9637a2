//! The engines: each measures one run against a [`Target`]
//! and returns its [`Outcome`].
//!
//! - [`tokio`]: msg-net's link on a current-thread runtime: the closed
//!   loop, the open loop at a fixed rate, and the throughput stream.
//! - [`batched`]: a UDP throughput stream many datagrams per system call.
//! - [`blocking`]: std sockets and blocking system calls on the calling
//!   thread, as sockperf measures.
//! - [`start`]: where parallel flows meet before they measure.
//!
//! Here: what a run measured ([`Outcome`], [`Kernel`]), which all engines
//! share; the client's side of a ping (numbering, timestamps, late and
//! lost pongs, the statistics request and its retries) is msg-net's
//! sans-IO [`PingClient`](msg_net::ping::PingClient), which each engine
//! only drives. The
//! `clients` load (`crate::clients`) drives the tokio engine's
//! [`Peer`](tokio::Peer) from many tasks.

use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use msg_net::{Stats, TcpInfo};

use crate::cpu::Cpu;
use crate::error::{Error, RunError};
use crate::settings::{Direction, Settings, Target};

pub(crate) mod batched;
pub(crate) mod blocking;
pub(crate) mod start;
pub(crate) mod tokio;

/// Over UDP, how long the listener gets to drain its queue after a
/// throughput stream before it is asked what arrived.
pub(crate) const UDP_DRAIN: Duration = Duration::from_millis(5);

/// The largest latency recorded: anything slower is recorded as this.
pub(crate) const MAX_LATENCY_NS: u64 = 60_000_000_000;

/// What one run measured.
#[derive(Debug)]
pub struct Outcome {
    /// Round-trip times in nanoseconds (open loop: from the intended send
    /// time); empty in throughput mode.
    pub latency: Histogram<u64>,
    /// Messages sent while measuring.
    pub sent: u64,
    /// Of those, the ones answered (ping-pong) or that arrived (throughput).
    pub received: u64,
    /// Throughput over UDP: arrivals after a higher sequence number.
    pub reordered: u64,
    /// How long the measurement took.
    pub elapsed: Duration,
    /// Under an impairment: what the kernel counted during the measurement.
    pub kernel: Option<Kernel>,
    /// Batched: datagrams per system call.
    pub calls: Option<batched::Calls>,
    /// What the measurement cost in CPU time, per side, where it can be
    /// read ([`Cpu`]).
    pub cpu: Option<Cpu>,
    /// The receiving socket's drops during the measurement (its queue
    /// full): the built-in UDP listener's, read from the kernel's socket
    /// table; `None` where there is none to read (a remote listener, a
    /// stream, a ping-pong).
    pub drops: Option<u64>,
    /// The listener socket's drop counter when this stream began and
    /// ended measuring, from which parallel flows' drops are counted over
    /// all their windows together.
    pub(crate) drops_span: Option<(u64, u64)>,
    /// Parallel flows: each flow's own outcome, in order; this one is
    /// their sum. Empty for one flow.
    pub flows: Vec<Self>,
    /// Which way the stream went: in reverse `sent` is the listener's
    /// count, `received` and `reordered` the client's, and the rate is the
    /// client's.
    pub direction: Direction,
}

/// What the kernel counted while a run measured (under an impairment, where
/// the network namespace holds nothing but the benchmark, so that its
/// counters are the run's own).
#[derive(Debug, Clone, Copy, Default)]
pub struct Kernel {
    /// Over TCP, the client's socket (`TCP_INFO`): segments it
    /// retransmitted, and its smoothed RTT and retransmission timeout at
    /// the end.
    pub tcp: Option<TcpFigures>,
    /// The namespace's UDP datagrams dropped because a receive queue was
    /// full (`/proc/net/snmp` Udp `RcvbufErrors`): losses of a receiver too
    /// slow, not of the network.
    pub udp_overflow: u64,
    /// The namespace's TCP segments retransmitted by either side
    /// (`/proc/net/snmp` Tcp `RetransSegs`).
    pub tcp_retrans_segs: u64,
}

/// From `TCP_INFO`.
#[derive(Debug, Clone, Copy)]
pub struct TcpFigures {
    /// `tcpi_total_retrans` during the measurement.
    pub retrans: u32,
    /// `tcpi_rtt` at the end.
    pub rtt: Duration,
    /// `tcpi_rto` at the end.
    pub rto: Duration,
}

/// The kernel's counters at one moment.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Snapshot {
    tcp: Option<TcpInfo>,
    udp_rcvbuf_errors: u64,
    tcp_retrans_segs: u64,
}

impl Snapshot {
    pub(crate) fn take(tcp: Result<Option<TcpInfo>, msg_net::Error>) -> Result<Self, Error> {
        let snmp = std::fs::read_to_string("/proc/self/net/snmp").unwrap_or_default();
        Ok(Self {
            tcp: tcp.map_err(RunError::TcpInfo)?,
            udp_rcvbuf_errors: snmp_field(&snmp, "Udp", "RcvbufErrors").unwrap_or(0),
            tcp_retrans_segs: snmp_field(&snmp, "Tcp", "RetransSegs").unwrap_or(0),
        })
    }

    /// What happened between `self` and `after`.
    pub(crate) fn until(&self, after: &Self) -> Kernel {
        Kernel {
            tcp: after.tcp.map(|end| TcpFigures {
                retrans: end
                    .total_retrans
                    .saturating_sub(self.tcp.map_or(0, |t| t.total_retrans)),
                rtt: end.rtt,
                rto: end.rto,
            }),
            udp_overflow: after
                .udp_rcvbuf_errors
                .saturating_sub(self.udp_rcvbuf_errors),
            tcp_retrans_segs: after.tcp_retrans_segs.saturating_sub(self.tcp_retrans_segs),
        }
    }
}

/// How long a throughput stream warms up: [`Settings::warmup`] for a run
/// alone; for parallel flows until `warm_until`, one instant for all of
/// them, so that no flow starts measuring while another still warms up
/// (the listener's socket drops, counted over all the flows' windows,
/// would count another flow's warm-up, which no flow counts as lost).
pub(crate) fn warm_up_for(settings: &Settings, warm_until: Option<Instant>) -> Duration {
    warm_until.map_or(settings.warmup, |until| {
        until.saturating_duration_since(Instant::now())
    })
}

/// The drops of the built-in UDP listener a stream goes to, counted from
/// when the measurement starts: its socket's own count (`SO_MEMINFO`).
#[derive(Debug, Clone)]
pub(crate) struct Drops {
    drops: Arc<msg_net::KernelDrops>,
    before: u64,
}

impl Drops {
    /// From now, for a stream to `target` when it is a built-in UDP
    /// listener; `None` for anything else, or where the kernel does not
    /// tell.
    pub(crate) fn start(target: &Target) -> Option<Self> {
        let drops = Arc::clone(target.drops.as_ref()?);
        let before = drops.get()?;
        Some(Self { drops, before })
    }

    /// Into `outcome`: the drops since [`Drops::start`], and the
    /// counter's values then and now.
    pub(crate) fn end(drops: Option<&Self>, outcome: &mut Outcome) {
        let span = drops.and_then(|d| Some((d.before, d.drops.get()?)));
        outcome.drops = span.map(|(before, now)| now.saturating_sub(before));
        outcome.drops_span = span;
    }
}

/// The most messages a listener can have counted between its two
/// statistics replies of a stream of `sent` messages, after `warm` sent
/// to warm up: each of them twice. Over UDP a count above what was sent
/// is no lie by itself. The kernel neither duplicates nor reorders on
/// loopback, but a network may do both, and netem's `duplicate` (an
/// impairment) does: it copies a datagram once, never the copy again, so
/// at most two arrive per message sent. And a path that delays or
/// reorders may deliver some of the warm-up's messages after the first
/// statistics reply, to be counted with the measurement's. Twice
/// everything sent is generous, so that no true network fails a run, and
/// still refuses what no network delivers: 18446744073709551615 messages
/// of 38,000. (Over a transport that loses nothing the counts must agree
/// exactly: [`Outcome::check_stream`].)
pub(crate) fn most_arrived(warm: u64, sent: u64) -> u64 {
    warm.saturating_add(sent).saturating_mul(2)
}

/// What a listener counted between its statistics replies `before` and
/// `after` to a stream of `sent` messages after `warm` to warm up: the
/// messages that arrived and those out of order, or why the replies
/// cannot both be true over any transport (a count that went down, more
/// out of order than arrived, more arrived than [`most_arrived`]). One
/// check for the unicast engines and a group's receivers alike.
pub(crate) fn counted(
    warm: u64,
    sent: u64,
    before: &Stats,
    after: &Stats,
) -> Result<(u64, u64), ImpossibleCounts> {
    let (Some(received), Some(reordered)) = (
        after.received.checked_sub(before.received),
        after.reordered.checked_sub(before.reordered),
    ) else {
        return Err(ImpossibleCounts::WentDown {
            before: *before,
            after: *after,
        });
    };
    // A message is counted as out of order when it arrives, so never
    // more of them than arrived.
    if reordered > received {
        return Err(ImpossibleCounts::MoreReordered {
            reordered,
            received,
        });
    }
    let most = most_arrived(warm, sent);
    if received > most {
        return Err(ImpossibleCounts::MoreReceived {
            received,
            sent,
            most,
        });
    }
    Ok((received, reordered))
}

/// What made a listener's statistics impossible
/// ([`RunError::ImpossibleCounts`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ImpossibleCounts {
    /// A count lower in the second reply than in the first: a listener's
    /// counts only grow.
    #[error(
        "its counts went down from one reply to the next (received {} then {}, out of order {} \
         then {}), and they only grow",
        .before.received, .after.received, .before.reordered, .after.reordered
    )]
    WentDown {
        /// The first reply.
        before: Stats,
        /// The second.
        after: Stats,
    },
    /// More messages out of order than arrived.
    #[error("it counted {reordered} messages out of order of the {received} that arrived")]
    MoreReordered {
        /// Out of order, by the listener's count.
        reordered: u64,
        /// Arrived, by the listener's count.
        received: u64,
    },
    /// More messages arrived than could, even each sent twice.
    #[error(
        "it counted {received} messages of the {sent} sent, more than the {most} that arrive \
         were every message sent (the warm-up's too) to arrive twice"
    )]
    MoreReceived {
        /// Arrived, by the listener's count.
        received: u64,
        /// Sent while measuring.
        sent: u64,
        /// The most that could have arrived: twice everything sent, the
        /// warm-up's too.
        most: u64,
    },
}

/// One counter of `/proc/net/snmp`, whose sections come as two lines: the
/// names, then the values (`Udp: InDatagrams NoPorts ...` / `Udp: 12 0 ...`).
fn snmp_field(text: &str, section: &str, name: &str) -> Option<u64> {
    let prefix = format!("{section}:");
    let mut lines = text.lines().filter(|l| l.starts_with(&prefix));
    let names = lines.next()?;
    let values = lines.next()?;
    let index = names.split_whitespace().position(|n| n == name)?;
    values.split_whitespace().nth(index)?.parse().ok()
}

impl Outcome {
    pub(crate) fn new() -> Self {
        Self {
            latency: Histogram::new_with_bounds(1, MAX_LATENCY_NS, 3)
                .expect("valid histogram bounds"),
            sent: 0,
            received: 0,
            reordered: 0,
            elapsed: Duration::ZERO,
            kernel: None,
            calls: None,
            cpu: None,
            drops: None,
            drops_span: None,
            flows: Vec::new(),
            direction: Direction::Forward,
        }
    }

    /// A one-way stream's outcome: `sent` messages, after `warm` sent to
    /// warm up, of which the listener counted what its statistics say
    /// between `before` and `after`, over `elapsed`.
    ///
    /// # Errors
    ///
    /// [`RunError::ImpossibleCounts`] for statistics that cannot be true
    /// over any transport: a count that went down from one reply to the
    /// next (the difference wrapped: 18446744073709551615 received), more
    /// messages out of order than arrived, or more arrived than
    /// [`most_arrived`] allows. Such a listener's figures are not a
    /// result (audit, round six).
    pub(crate) fn streamed(
        warm: u64,
        sent: u64,
        before: &Stats,
        after: &Stats,
        elapsed: Duration,
    ) -> Result<Self, RunError> {
        let (received, reordered) =
            counted(warm, sent, before, after).map_err(RunError::ImpossibleCounts)?;
        let mut outcome = Self::new();
        outcome.sent = sent;
        outcome.received = received;
        outcome.reordered = reordered;
        outcome.elapsed = elapsed;
        Ok(outcome)
    }

    /// A stream's counts, checked where they can be: over a transport that
    /// loses nothing (`reliable`), what was counted at the receiving end
    /// is what was sent, exactly, since the count is asked behind the
    /// stream on the same connection. A peer that says otherwise (more
    /// received than sent, a stream of 1 that brought thousands) is not
    /// reported as a result. Over UDP the counts may differ either way
    /// (loss, and duplication under `--impair`), within what
    /// [`Outcome::streamed`] checks of any transport.
    pub(crate) fn check_stream(&self, reliable: bool) -> Result<(), RunError> {
        if reliable && self.received != self.sent {
            return Err(RunError::CountsDisagree {
                sent: self.sent,
                received: self.received,
                reverse: self.direction == Direction::Reverse,
            });
        }
        Ok(())
    }

    /// Messages sent and not answered (ping-pong) or not counted by the
    /// listener (throughput).
    pub fn lost(&self) -> u64 {
        self.sent.saturating_sub(self.received)
    }

    /// Messages per second at the receiver; of parallel flows, the sum of
    /// their rates (as iperf3 sums its streams').
    pub fn msgs_per_s(&self) -> f64 {
        if !self.flows.is_empty() {
            return self.flows.iter().map(Self::msgs_per_s).sum();
        }
        if self.elapsed.is_zero() {
            return 0.0;
        }
        self.received as f64 / self.elapsed.as_secs_f64()
    }

    pub(crate) fn record(&mut self, latency_ns: u64) {
        self.received += 1;
        self.latency.saturating_record(latency_ns.max(1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stream_whose_counts_cannot_be_is_refused_over_a_transport_that_loses_nothing() {
        let counted = |sent, received, direction| {
            let mut outcome = Outcome::new();
            (outcome.sent, outcome.received, outcome.direction) = (sent, received, direction);
            outcome
        };
        // What peers reported, as results, before (audit, round four).
        for (sent, received, direction) in [
            (99_456, u64::MAX, Direction::Forward),
            (1, 117_632, Direction::Reverse),
            (117_632, 0, Direction::Reverse),
        ] {
            let outcome = counted(sent, received, direction);
            let refused = outcome.check_stream(true).unwrap_err().to_string();
            assert!(refused.contains("the two counts must agree"), "{refused}");
            // Over UDP either may be larger: loss, or duplication.
            assert!(outcome.check_stream(false).is_ok());
        }
        assert_eq!(
            counted(10, 9, Direction::Forward)
                .check_stream(true)
                .unwrap_err()
                .to_string(),
            "over a transport that loses nothing, the listener counted 9 messages of the 10 sent: \
             the two counts must agree; is the peer msg listen?"
        );
        assert!(
            counted(10, 10, Direction::Reverse)
                .check_stream(true)
                .is_ok()
        );
    }

    #[test]
    fn statistics_that_cannot_be_true_are_refused_over_any_transport() {
        let stats = |received, reordered| Stats {
            received,
            reordered,
        };
        let elapsed = Duration::from_secs(1);
        let refused = |warm, sent, before, after| {
            Outcome::streamed(warm, sent, &before, &after, elapsed)
                .unwrap_err()
                .to_string()
        };
        // What listeners made `msg bench --udp --mode throughput` report
        // (audit, round six): a second reply below the first, received
        // 18446744073709551615 with absurd rates; out of order ten times
        // what arrived.
        assert_eq!(
            refused(1_000, 38_000, stats(5, 0), stats(0, 0)),
            "the listener's statistics cannot be true: its counts went down from one reply to \
             the next (received 5 then 0, out of order 0 then 0), and they only grow; is the \
             peer msg listen?"
        );
        assert!(
            refused(1_000, 38_000, stats(5, 7), stats(9, 6)).contains("out of order 7 then 6"),
            "reordered went down"
        );
        assert_eq!(
            refused(1_000, 38_000, stats(1_000, 0), stats(23_636, 226_360)),
            "the listener's statistics cannot be true: it counted 226360 messages out of order \
             of the 22636 that arrived; is the peer msg listen?"
        );
        assert_eq!(
            refused(1_000, 38_000, stats(0, 0), stats(u64::MAX, u64::MAX)),
            "the listener's statistics cannot be true: it counted 18446744073709551615 messages \
             of the 38000 sent, more than the 78000 that arrive were every message sent (the \
             warm-up's too) to arrive twice; is the peer msg listen?"
        );
        // What a network may do is a result: loss, duplication (each
        // datagram at most twice), the warm-up's stragglers counted late.
        for (after, received) in [
            (stats(1_000 + 30_000, 12), 30_000),
            (stats(1_000 + 40_000, 0), 40_000),
            (stats(1_000 + 78_000, 78_000), 78_000),
        ] {
            let outcome = Outcome::streamed(1_000, 38_000, &stats(1_000, 0), &after, elapsed)
                .expect("possible");
            assert_eq!((outcome.sent, outcome.received), (38_000, received));
            assert_eq!(outcome.reordered, after.reordered);
        }
        assert_eq!(most_arrived(u64::MAX, 1), u64::MAX);
    }

    #[test]
    fn parallel_flows_warm_up_until_one_instant() {
        let settings = crate::Plan::default().settings(None, None);
        assert_eq!(warm_up_for(&settings, None), settings.warmup);
        let now = Instant::now();
        assert_eq!(warm_up_for(&settings, Some(now)), Duration::ZERO, "past");
        let left = warm_up_for(&settings, Some(now + Duration::from_secs(60)));
        assert!(left > Duration::from_secs(59) && left <= Duration::from_secs(60));
    }

    #[test]
    fn snmp_counters_are_found_by_name() {
        let text = "Ip: Forwarding DefaultTTL\nIp: 1 64\n\
                    Tcp: RtoAlgorithm RtoMin MaxConn RetransSegs\nTcp: 1 200 -1 17\n\
                    Udp: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors\n\
                    Udp: 900 0 41 950 41\n\
                    UdpLite: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors\n\
                    UdpLite: 0 0 0 0 0\n";
        assert_eq!(snmp_field(text, "Udp", "RcvbufErrors"), Some(41));
        assert_eq!(snmp_field(text, "Tcp", "RetransSegs"), Some(17));
        assert_eq!(snmp_field(text, "Tcp", "MaxConn"), None);
        assert_eq!(snmp_field(text, "Icmp", "InMsgs"), None);
    }
}
