//! What to measure: the [`Plan`] a run carries out, its [`Mode`] and
//! [`Engine`]s; [`Plan::settings`] makes what the engines get from it for
//! one run (`settings.rs`).

use std::fmt;
use std::time::Duration;

use msg_net::{Auth, Transport};

use crate::error::Error;
use crate::impair::Impairment;
use crate::pin::{Pin, Placement};
use crate::settings::{Batching, Settings};
pub use crate::settings::{Direction, Mode};

/// The payload sizes measured by default: small, a page, a large write, and
/// one near the UDP limit.
pub const DEFAULT_SIZES: [usize; 4] = [64, 1024, 16384, 65000];

/// The largest payload msg bench measures: what a 16 MiB TCP frame (msg's
/// default largest) holds after its header.
pub const MAX_SIZE: usize = msg_net::limits::DEFAULT_MAX_FRAME - msg_net::limits::HEADER_LEN;

/// Why a payload size is not one msg bench measures.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SizeError {
    /// Not a number of bytes.
    #[error("expected a size in bytes, got '{0}'")]
    NotASize(String),
    /// Over [`MAX_SIZE`].
    #[error(
        "{0} bytes is over the largest size msg bench measures, {MAX_SIZE} (a 16 MiB TCP frame)"
    )]
    TooLarge(usize),
}

/// A payload size as a user writes it: bytes, at most [`MAX_SIZE`].
///
/// # Errors
///
/// [`SizeError`].
pub fn parse_size(s: &str) -> Result<usize, SizeError> {
    let n: usize = s
        .trim()
        .parse()
        .map_err(|_| SizeError::NotASize(s.to_owned()))?;
    if n > MAX_SIZE {
        return Err(SizeError::TooLarge(n));
    }
    Ok(n)
}

/// The shortest run `--duration` takes: a loopback round trip takes
/// microseconds, so a millisecond holds a hundred of them, where a
/// nanosecond's run sent nothing and reported a cell "all lost" with
/// nothing lost (audit, round fifteen).
pub const MIN_DURATION: Duration = Duration::from_millis(1);

/// A length of time as iperf3's `-t` takes it, a number of seconds
/// (`5`, `0.5`), or as the rest of msg writes it (`750ms`, `2s`, `1m`);
/// at least [`MIN_DURATION`].
///
/// # Errors
///
/// A text that is neither, zero, or under [`MIN_DURATION`].
pub fn parse_seconds(s: &str) -> Result<Duration, String> {
    let duration = parse_length(s)?;
    if duration < MIN_DURATION {
        return Err(format!(
            "must be at least {}: a shorter run sends nothing to measure",
            humantime::format_duration(MIN_DURATION)
        ));
    }
    Ok(duration)
}

/// A length of time as [`parse_seconds`] reads it, longer than zero,
/// with no least length of its own.
fn parse_length(s: &str) -> Result<Duration, String> {
    let expected = || format!("expected seconds (5, 0.5) or a duration (750ms, 2s), got '{s}'");
    let duration = match s.trim().parse::<f64>() {
        Ok(secs) => Duration::try_from_secs_f64(secs).map_err(|_| expected())?,
        Err(_) => humantime::parse_duration(s).map_err(|_| expected())?,
    };
    if duration.is_zero() {
        return Err("must be longer than zero".to_owned());
    }
    Ok(duration)
}

/// The shortest interval `--interval` reports in. Each interval is a
/// line (or a JSON object) written between two round trips: at 1 ns a
/// ping-pong ran at a thirtieth of its rate, and its report said nothing
/// of it (audit, round five). iperf3 takes 0.1 s at least.
pub const MIN_INTERVAL: Duration = Duration::from_millis(10);

/// [`parse_seconds`], for an interval: at least [`MIN_INTERVAL`].
///
/// # Errors
///
/// [`parse_seconds`]'s, and an interval under [`MIN_INTERVAL`].
pub fn parse_interval(s: &str) -> Result<Duration, String> {
    let interval = parse_length(s)?;
    if interval < MIN_INTERVAL {
        return Err(format!(
            "must be at least {}: each interval is a line written between two messages, and \
             shorter ones slow the run they report on",
            humantime::format_duration(MIN_INTERVAL)
        ));
    }
    Ok(interval)
}

/// How long a reply may take before a UDP datagram counts as lost: a
/// loopback round trip takes microseconds.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(200);

/// How long a reply over a transport that loses nothing (TCP, a Unix
/// socket) may take before the run fails: such a reply is late, never
/// lost, and on a machine busy with other work a ping-pong's listener may
/// lose its core for longer than [`DEFAULT_TIMEOUT`]. A late reply shows
/// in the percentiles; only one that never comes fails the run.
const RELIABLE_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a TCP reply may take under impairment: a segment lost six
/// times in a row waits out 0.2 + 0.4 + ... + 6.4 = 12.6 s of backed-off
/// retransmission timeouts before it gets through.
const IMPAIRED_TCP_TIMEOUT: Duration = Duration::from_secs(60);

/// Under impairment, a UDP reply that has not come 10 ms after the time
/// the impairment's delay explains is lost: a thousand loopback round
/// trips, and short enough that a lossy run still takes many samples.
const IMPAIRED_UDP_SLACK: Duration = Duration::from_millis(10);

/// The most parallel flows a run makes (iperf3's limit for `-P`).
pub const MAX_PARALLEL: u32 = 128;

/// One engine: the client and the built-in listener it measures against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Engine {
    /// std sockets and blocking system calls on dedicated threads.
    Blocking,
    /// The tokio runtime (msg-net's serve loop and link).
    Tokio,
}

impl Engine {
    /// `blocking` or `tokio`, as the JSON names it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Blocking => "blocking",
            Self::Tokio => "tokio",
        }
    }
}

impl fmt::Display for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A UDP throughput stream sent many datagrams per system call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Batch {
    /// Datagrams per send call, 1 to [`msg_net::MAX_BATCH`].
    pub size: usize,
    /// Send each batch as one GSO run where the kernel offers it.
    pub gso: bool,
}

/// Everything a run needs to know: what to measure, against what, how.
///
/// Each transport is measured at each size, `runs` times, the transports
/// (and engines) interleaved within each run; with impairments, all of
/// that once per impairment.
#[derive(Debug)]
pub struct Plan {
    /// The transports, in the order the report shows them.
    pub transports: Vec<Transport>,
    /// Payload sizes in bytes (each message adds a 28-byte header).
    pub sizes: Vec<usize>,
    /// A listener to measure against, answering pings as `msg listen`
    /// does, at an address each transport reads as its own
    /// ([`Transport::connect_addrs`]: `HOST:PORT`, or a Unix socket's
    /// path); `None` starts built-in listeners, on 127.0.0.1 or, for a
    /// transport addressed by a path, in a private temporary directory.
    pub remote: Option<String>,
    /// Where the client and the built-in listeners run.
    pub placement: Placement,
    /// What is measured.
    pub mode: Mode,
    /// Messages per second: an open-loop ping-pong, or a paced stream.
    pub rate: Option<u64>,
    /// How long each run exchanges messages before it measures.
    pub warmup: Duration,
    /// How long each run measures.
    pub duration: Duration,
    /// Runs per transport and size.
    pub runs: u32,
    /// How long a UDP reply may take before it counts as lost (over TCP,
    /// an error); `None`: [`DEFAULT_TIMEOUT`], or under an impairment what
    /// its delay explains.
    pub timeout: Option<Duration>,
    /// `TCP_NODELAY` on the client and the built-in listener, where the
    /// transport has Nagle's algorithm (TCP; msg-net applies it where it
    /// means something and nowhere else).
    pub nodelay: bool,
    /// Poll the sockets in a loop instead of sleeping, in the client and
    /// the built-in listeners.
    pub busy_poll: bool,
    /// The engines, each measuring every cell, blocking first.
    pub engines: Vec<Engine>,
    /// Authenticate every message with this secret. With the built-in
    /// listeners each transport is measured with and without it.
    pub auth: Option<Auth>,
    /// Impairments of the loopback, measured in turn. They are applied to
    /// `lo` of this process's network namespace: use them only in a
    /// private one made for the purpose.
    pub impairments: Vec<Impairment>,
    /// UDP throughput sent many datagrams per call.
    pub batch: Option<Batch>,
    /// Report each run every this long as it goes
    /// ([`Progress::interval`](crate::Progress::interval)).
    pub interval: Option<Duration>,
    /// Throughput streams per run, at once, each its own connection or
    /// socket (1 to [`MAX_PARALLEL`]); the run's figures are their sum,
    /// each flow's kept beside it.
    pub parallel: u32,
    /// Which way a throughput stream goes: reverse asks the listener to
    /// stream to the client (over connections, on the tokio engine).
    pub direction: Direction,
}

impl Default for Plan {
    /// A short look at both transports on loopback: the default sizes,
    /// three runs of 750 ms after 150 ms each, the blocking engine, no
    /// pinning.
    fn default() -> Self {
        Self {
            transports: Transport::INET.to_vec(),
            sizes: DEFAULT_SIZES.to_vec(),
            remote: None,
            placement: Placement::off(),
            mode: Mode::Pingpong,
            rate: None,
            warmup: Duration::from_millis(150),
            duration: Duration::from_millis(750),
            runs: 3,
            timeout: None,
            nodelay: true,
            busy_poll: false,
            engines: vec![Engine::Blocking],
            auth: None,
            impairments: Vec::new(),
            batch: None,
            interval: None,
            parallel: 1,
            direction: Direction::Forward,
        }
    }
}

impl Plan {
    /// Whether the plan can be carried out as it stands.
    ///
    /// # Errors
    ///
    /// What makes no sense together: busy polling on one core or with
    /// both engines, batching outside a UDP stream, the blocking engine
    /// asked for what only tokio measures, impairments with a remote
    /// listener or a transport that no network interface carries (a Unix
    /// socket), parallel flows outside an unbatched, unimpaired stream, or
    /// nothing to measure.
    pub fn check(&self) -> Result<(), Error> {
        for (empty, what) in [
            (self.transports.is_empty(), "transport"),
            (self.sizes.is_empty(), "size"),
            (self.engines.is_empty(), "engine"),
            (self.runs == 0, "run"),
            (self.parallel == 0, "flow"),
        ] {
            if empty {
                return Err(Error::Empty(what));
            }
        }
        if self.parallel > MAX_PARALLEL {
            return Err(Error::TooManyFlows(self.parallel));
        }
        if self.parallel > 1 {
            if self.mode != Mode::Throughput {
                return Err(Error::ParallelNeedsThroughput);
            }
            if self.batch.is_some() {
                return Err(Error::ParallelBatched);
            }
            if !self.impairments.is_empty() {
                return Err(Error::ParallelImpaired);
            }
        }
        if self.direction != Direction::Forward {
            self.check_reverse()?;
        }
        if self.busy_poll && self.placement.pin() == Pin::Same {
            return Err(Error::BusyPollOnOneCore);
        }
        if self.batch.is_some() {
            if self.mode != Mode::Throughput {
                return Err(Error::BatchNeedsThroughput);
            }
            if !self.transports.iter().any(|t| t.caps().batches) {
                return Err(Error::BatchNeedsUdp);
            }
        }
        if !self.impairments.is_empty() {
            crate::impair::check_impairable(self.remote.is_some(), &self.transports)?;
        }
        let encrypted = self.transports.iter().any(|t| t.caps().encrypted);
        if encrypted && self.remote.is_some() {
            return Err(Error::TlsRemote);
        }
        if self.engines.contains(&Engine::Blocking) {
            let refused = if encrypted {
                Some("no TLS or QUIC (the tokio engine measures them)")
            } else if !self.impairments.is_empty() {
                Some("no impaired runs (their TCP retransmissions come from the tokio link)")
            } else if self.rate.is_some() {
                Some(
                    "only the closed loop or an unpaced stream, as fast as the socket takes it, \
                     not a paced one",
                )
            } else {
                None
            };
            if let Some(what) = refused {
                return Err(Error::NotInBlockingEngine(what));
            }
        }
        if self.engines.len() > 1 && self.busy_poll {
            return Err(Error::BusyPollBothEngines);
        }
        Ok(())
    }

    /// What a reverse stream needs: a throughput run, over connections,
    /// unpaced, unbatched, unimpaired, on the tokio engine (whose
    /// listener streams back; the blocking one refuses to).
    fn check_reverse(&self) -> Result<(), Error> {
        if self.mode != Mode::Throughput {
            return Err(Error::ReverseNeedsThroughput);
        }
        if let Some(&transport) = self.transports.iter().find(|t| !t.caps().connections) {
            return Err(Error::ReverseNeedsConnections(transport));
        }
        let refused = if self.rate.is_some() {
            Some("as fast as the listener sends, not paced")
        } else if self.batch.is_some() {
            Some("over connections, which have no datagrams to batch")
        } else if !self.impairments.is_empty() {
            Some("unimpaired")
        } else {
            None
        };
        if let Some(what) = refused {
            return Err(Error::ReverseWith(what));
        }
        // Refused before anything runs, not by the listener after the
        // warm-up (audit, round fifteen: exit 1 then, and the built-in
        // listener's warning on stderr).
        if self.duration > msg_proto::SendRequest::MAX_DURATION {
            return Err(Error::ReverseTooLong);
        }
        if self.engines.contains(&Engine::Blocking) {
            return Err(Error::NotInBlockingEngine(
                "no reverse streams (its listener does not stream back)",
            ));
        }
        Ok(())
    }

    /// The engines a plan measures with when none are asked for: the
    /// blocking engine for a closed-loop ping-pong or an unbatched, unpaced
    /// forward stream without a secret, where it measures nearer the kernel's
    /// floor; tokio for the rest. A batched stream and a secret run on the
    /// blocking engine too, when asked for: their default stays the engine
    /// their figures have always come from.
    #[must_use]
    pub fn default_engines(&self) -> Vec<Engine> {
        let blocking_can = self.rate.is_none()
            && self.impairments.is_empty()
            && !self.transports.iter().any(|t| t.caps().encrypted)
            && self.direction == Direction::Forward;
        if blocking_can && self.batch.is_none() && self.auth.is_none() {
            vec![Engine::Blocking]
        } else {
            vec![Engine::Tokio]
        }
    }

    /// The built-in listeners are measured (no remote listener).
    pub(crate) fn builtin(&self) -> bool {
        self.remote.is_none()
    }

    /// How one run measures, under the impairment `phase` (an index into
    /// [`Plan::impairments`]) if any.
    pub(crate) fn settings(&self, phase: Option<usize>, batching: Option<Batching>) -> Settings {
        let impairment = phase.map(|i| &self.impairments[i]);
        let default = match impairment {
            Some(imp) => IMPAIRED_UDP_SLACK + 2 * imp.one_way_delay(),
            None => DEFAULT_TIMEOUT,
        };
        let timeout = self.timeout.unwrap_or(default);
        Settings {
            mode: self.mode,
            direction: self.direction,
            warmup: self.warmup,
            duration: self.duration,
            timeout,
            tcp_timeout: match impairment {
                Some(_) => timeout.max(IMPAIRED_TCP_TIMEOUT),
                None => self.timeout.unwrap_or(RELIABLE_TIMEOUT),
            },
            rate: self.rate,
            impaired: impairment.is_some(),
            batch: batching,
            interval: self.interval,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reply_that_cannot_be_lost_may_be_later_than_one_that_can() {
        let plan = Plan::default();
        let settings = plan.settings(None, None);
        assert_eq!(settings.reply_timeout(Transport::Udp), DEFAULT_TIMEOUT);
        assert_eq!(settings.reply_timeout(Transport::Tcp), RELIABLE_TIMEOUT);
        assert_eq!(settings.reply_timeout(Transport::Unix), RELIABLE_TIMEOUT);
        // --timeout says it for every transport.
        let given = Duration::from_millis(50);
        let plan = Plan {
            timeout: Some(given),
            ..Plan::default()
        };
        let settings = plan.settings(None, None);
        assert_eq!(settings.reply_timeout(Transport::Udp), given);
        assert_eq!(settings.reply_timeout(Transport::Tcp), given);
    }

    #[test]
    fn seconds_are_a_number_or_a_duration() {
        assert_eq!(parse_seconds("5"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_seconds("0.25"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_seconds("750ms"), Ok(Duration::from_millis(750)));
        assert_eq!(
            parse_seconds("0"),
            Err("must be longer than zero".to_owned())
        );
        for bad in ["abc", "-1", "5 parsecs"] {
            assert_eq!(
                parse_seconds(bad),
                Err(format!(
                    "expected seconds (5, 0.5) or a duration (750ms, 2s), got '{bad}'"
                ))
            );
        }
        // Too short to send anything (audit, round fifteen: 1ns ran, and
        // reported "all lost" with nothing lost).
        for short in ["1ns", "999us", "0.0005"] {
            assert_eq!(
                parse_seconds(short),
                Err("must be at least 1ms: a shorter run sends nothing to measure".to_owned()),
                "{short}"
            );
        }
        assert_eq!(parse_seconds("1ms"), Ok(MIN_DURATION));
    }

    #[test]
    fn sizes_are_bytes_up_to_a_frame() {
        assert_eq!(parse_size(" 64"), Ok(64));
        assert_eq!(parse_size(&MAX_SIZE.to_string()), Ok(MAX_SIZE));
        assert_eq!(parse_size("1k"), Err(SizeError::NotASize("1k".into())));
        let over = parse_size(&(MAX_SIZE + 1).to_string()).unwrap_err();
        assert!(over.to_string().contains("16 MiB"), "{over}");
    }

    #[test]
    fn blocking_is_the_default_only_where_it_measures() {
        let closed_loop = Plan::default();
        assert_eq!(closed_loop.default_engines(), [Engine::Blocking]);
        let paced = Plan {
            rate: Some(1000),
            ..Plan::default()
        };
        let batched = Plan {
            mode: Mode::Throughput,
            batch: Some(Batch { size: 8, gso: true }),
            ..Plan::default()
        };
        let secret = Plan {
            auth: Some(Auth::new(
                msg_proto::auth::Secret::new(b"in-process".to_vec()).unwrap(),
            )),
            ..Plan::default()
        };
        let impaired = Plan {
            impairments: vec!["loss 1%".parse().unwrap()],
            ..Plan::default()
        };
        for plan in [&paced, &batched, &secret, &impaired] {
            assert_eq!(plan.default_engines(), [Engine::Tokio], "{plan:?}");
        }
    }

    #[test]
    fn the_blocking_engine_refuses_what_it_does_not_measure() {
        for plan in [
            Plan {
                rate: Some(1000),
                ..Plan::default()
            },
            Plan {
                impairments: vec!["loss 1%".parse().unwrap()],
                engines: vec![Engine::Blocking, Engine::Tokio],
                ..Plan::default()
            },
        ] {
            assert!(
                matches!(plan.check(), Err(Error::NotInBlockingEngine(_))),
                "{plan:?}"
            );
        }
        // A secret and a batch run on the blocking engine when asked for.
        let batched = Plan {
            mode: Mode::Throughput,
            batch: Some(Batch { size: 8, gso: true }),
            ..Plan::default()
        };
        assert!(batched.check().is_ok());
    }

    #[test]
    fn a_reverse_stream_is_a_throughput_run_over_connections_on_tokio() {
        let reverse = |transports: Vec<Transport>| Plan {
            mode: Mode::Throughput,
            transports,
            direction: Direction::Reverse,
            engines: vec![Engine::Tokio],
            ..Plan::default()
        };
        assert!(reverse(vec![Transport::Tcp]).check().is_ok());
        assert_eq!(
            reverse(vec![Transport::Tcp]).default_engines(),
            [Engine::Tokio]
        );
        assert!(matches!(
            reverse(Transport::INET.to_vec()).check(),
            Err(Error::ReverseNeedsConnections(Transport::Udp))
        ));
        let pingpong = Plan {
            mode: Mode::Pingpong,
            ..reverse(vec![Transport::Tcp])
        };
        assert!(matches!(
            pingpong.check(),
            Err(Error::ReverseNeedsThroughput)
        ));
        let blocking = Plan {
            engines: vec![Engine::Blocking],
            ..reverse(vec![Transport::Tcp])
        };
        assert!(matches!(
            blocking.check(),
            Err(Error::NotInBlockingEngine(_))
        ));
        let paced = Plan {
            rate: Some(10),
            ..reverse(vec![Transport::Tcp])
        };
        assert!(matches!(paced.check(), Err(Error::ReverseWith(_))));
        // Longer than a listener streams for one request: refused before
        // the run, not by the listener after the warm-up.
        let hours = Plan {
            duration: Duration::from_secs(2 * 3600),
            ..reverse(vec![Transport::Tcp])
        };
        assert!(matches!(hours.check(), Err(Error::ReverseTooLong)));
        let hour = Plan {
            duration: msg_proto::SendRequest::MAX_DURATION,
            ..reverse(vec![Transport::Tcp])
        };
        assert!(hour.check().is_ok());
    }

    #[test]
    fn parallel_flows_are_throughput_streams_unbatched_and_unimpaired() {
        let stream = |parallel| Plan {
            mode: Mode::Throughput,
            parallel,
            ..Plan::default()
        };
        assert!(stream(4).check().is_ok());
        assert!(matches!(stream(0).check(), Err(Error::Empty("flow"))));
        assert!(matches!(
            stream(MAX_PARALLEL + 1).check(),
            Err(Error::TooManyFlows(_))
        ));
        let pingpong = Plan {
            parallel: 2,
            ..Plan::default()
        };
        assert!(matches!(
            pingpong.check(),
            Err(Error::ParallelNeedsThroughput)
        ));
        let batched = Plan {
            batch: Some(Batch { size: 8, gso: true }),
            ..stream(2)
        };
        assert!(matches!(batched.check(), Err(Error::ParallelBatched)));
        let impaired = Plan {
            impairments: vec!["loss 1%".parse().unwrap()],
            engines: vec![Engine::Tokio],
            ..stream(2)
        };
        assert!(matches!(impaired.check(), Err(Error::ParallelImpaired)));
    }
}
