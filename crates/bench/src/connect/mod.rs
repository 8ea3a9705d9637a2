//! The `connect` mode: what a connection costs a short request. Per
//! cycle, a new socket, `connect()`, one request and its reply, and
//! `close()`, as netperf's `TCP_CRR`, neper's `tcp_crr` and iperf 2's
//! `--connect-only` measure it; the transports interleaved in one run, so
//! that TCP's handshake shows by difference from UDP's cycle.
//!
//! - **Streams** (TCP, a Unix stream, seqpacket): `connect()` until the
//!   connection is established (for TCP the SYN, SYN-ACK, ACK on
//!   loopback), one framed `Ping` and its `Pong`, then `close()`, with
//!   [`Close::Fin`] or [`Close::Rst`]. The built-in listener
//!   (`stream.rs`) serves one connection after another on its thread, as
//!   netperf's netserver serves `TCP_CRR`: accept, answer, wait for the
//!   client's close, close. (`msg listen` starts a thread or a task per
//!   connection, which would measure thread creation, not the handshake.)
//! - **Datagrams** (UDP, a Unix datagram socket): a new socket per cycle
//!   too, connected (which for UDP sends nothing: it only fixes the
//!   peer), one `Ping` and its `Pong`, closed; so each cycle makes and
//!   closes a socket as a stream's does, and what the stream adds is its
//!   handshake and teardown. (The same socket for every exchange is
//!   `--mode pingpong`.) Against the blocking engine's built-in
//!   listeners, msg's own serve loop.
//!
//! Each cycle records three times: `connect` (the `connect()` call until
//! it returns, the connection established), `exchange` (the request sent
//! until the reply is read) and the whole `cycle` (from `socket()` until
//! `close()` returns). Connections per second is the cycles over the
//! run's time.
//!
//! With [`Close::Fin`] every TCP cycle leaves the client's end in
//! TIME_WAIT for 60 s, holding its ephemeral port: [`Ports`] reads the
//! kernel's range and `tcp_tw_reuse`, and says at what rate that caps a
//! run. Its report is [`report::connect`](crate::report::connect).

use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use msg_net::Transport;
use tracing::info;

use crate::engine::MAX_LATENCY_NS;
use crate::error::Error;
use crate::interval::{Counted, Interval, IntervalOf, Sink, Ticker};
use crate::pin::Placement;
use crate::plan::Engine;
use crate::run::Progress;
use crate::servers::BlockingServers;

mod stream;

use stream::{Client, Endpoint, StreamServer};

/// The payload size when none is given: a short request.
pub const DEFAULT_SIZE: usize = 64;

/// How long a cycle's waits (connect, send, the reply) may take when no
/// timeout is given: a loopback cycle takes tens of microseconds.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1);

/// How a stream's client closes each connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Close {
    /// `close()`: FIN, FIN-ACK; the client's end waits in TIME_WAIT for
    /// 60 s, holding its port (netperf's `TCP_CRR` closes so).
    Fin,
    /// `SO_LINGER` 0, then `close()`: a RST, no TIME_WAIT, the port free
    /// at once.
    Rst,
}

impl Close {
    /// `fin` or `rst`, as the JSON names it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Fin => "fin",
            Self::Rst => "rst",
        }
    }
}

/// The default close, [`Close::Rst`]: what a connection costs, not what
/// the ephemeral port allocator does once TIME_WAIT holds most ports (with
/// FIN, a TCP run at loopback speed fills the range within seconds and
/// then measures the search for a free port, or fails), and without 28,000
/// sockets in TIME_WAIT left behind for the next run to trip over.
pub const DEFAULT_CLOSE: Close = Close::Rst;

/// What the `connect` mode measures.
#[derive(Debug)]
pub struct Cycles {
    /// The transports, interleaved in each run, in the report's order.
    pub transports: Vec<Transport>,
    /// Bytes of payload in the request and in the reply (each adds a
    /// 28-byte header, and over a stream a 4-byte length).
    pub size: usize,
    /// How TCP connections are closed (a Unix socket has no TIME_WAIT).
    pub close: Close,
    /// TCP Fast Open: the listener takes data in a SYN, the client sends
    /// its request in its SYN once it holds a cookie.
    pub tfo: bool,
    /// How long each run cycles before it measures.
    pub warmup: Duration,
    /// How long each run measures.
    pub duration: Duration,
    /// Runs per transport, interleaved.
    pub runs: u32,
    /// Where the client and the built-in listeners run.
    pub placement: Placement,
    /// How long each wait of a cycle may take; a UDP reply later than this
    /// is lost, over a stream the run fails.
    pub timeout: Duration,
    /// Report each run every this long as it goes: cycles, and their
    /// times' percentiles.
    pub interval: Option<Duration>,
}

impl Default for Cycles {
    /// UDP and TCP, 64 bytes, RST, three runs of 750 ms after 150 ms.
    fn default() -> Self {
        Self {
            transports: Transport::INET.to_vec(),
            size: DEFAULT_SIZE,
            close: DEFAULT_CLOSE,
            tfo: false,
            warmup: Duration::from_millis(150),
            duration: Duration::from_millis(750),
            runs: 3,
            placement: Placement::off(),
            timeout: DEFAULT_TIMEOUT,
            interval: None,
        }
    }
}

/// What a `connect` run measured.
#[derive(Debug)]
pub struct Results {
    pub(crate) cells: Vec<Cell>,
    /// The built-in listeners' addresses, in words.
    pub listeners: String,
    /// The ephemeral ports and TIME_WAIT reuse, where `/proc` tells.
    pub ports: Option<Ports>,
    /// With TCP Fast Open: `net.ipv4.tcp_fastopen`.
    pub tfo_sysctl: Option<u32>,
}

/// One transport's runs.
#[derive(Debug)]
pub(crate) struct Cell {
    pub(crate) transport: Transport,
    pub(crate) runs: Vec<Run>,
}

/// One run of one transport.
#[derive(Debug)]
pub(crate) struct Run {
    /// `connect()` until established, in ns.
    pub(crate) connect: Histogram<u64>,
    /// Request sent until reply read, in ns.
    pub(crate) exchange: Histogram<u64>,
    /// `socket()` until `close()` returned, in ns.
    pub(crate) cycle: Histogram<u64>,
    /// Cycles measured (a lost UDP reply's included).
    pub(crate) cycles: u64,
    /// UDP replies that did not come within the timeout.
    pub(crate) lost: u64,
    /// With TCP Fast Open: connections whose SYN carried the request and
    /// the listener took it (`TCP_INFO`'s `TCPI_OPT_SYN_DATA`).
    pub(crate) syn_data: u64,
    pub(crate) elapsed: Duration,
}

impl Run {
    fn new() -> Self {
        let histogram =
            || Histogram::new_with_bounds(1, MAX_LATENCY_NS, 3).expect("valid histogram bounds");
        Self {
            connect: histogram(),
            exchange: histogram(),
            cycle: histogram(),
            cycles: 0,
            lost: 0,
            syn_data: 0,
            elapsed: Duration::ZERO,
        }
    }

    /// Completed cycles per second (a lost UDP reply's cycle counts: its
    /// socket was made and closed).
    pub(crate) fn per_s(&self) -> f64 {
        if self.elapsed.is_zero() {
            return 0.0;
        }
        self.cycles as f64 / self.elapsed.as_secs_f64()
    }
}

/// The kernel's ephemeral ports and how soon a port in TIME_WAIT may be
/// used again: what caps a run that closes with FIN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ports {
    /// `net.ipv4.ip_local_port_range`, both ends included.
    pub low: u16,
    /// Its upper end.
    pub high: u16,
    /// `net.ipv4.tcp_tw_reuse`: 0 off, 1 on, 2 on for loopback only (the
    /// default since Linux 4.20).
    pub tw_reuse: u8,
}

/// How long a closed TCP connection's client end stays in TIME_WAIT:
/// Linux's `TCP_TIMEWAIT_LEN`, fixed at build time.
pub const TIME_WAIT: Duration = Duration::from_secs(60);

/// With `tcp_tw_reuse`, how long a TIME_WAIT port must wait before
/// `connect()` takes it again: its last timestamp must be older than a
/// second.
pub const TW_REUSE_AFTER: Duration = Duration::from_secs(1);

impl Ports {
    /// Reads `/proc/sys/net/ipv4`; `None` where it cannot.
    pub fn read() -> Option<Self> {
        let range = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").ok()?;
        let reuse = std::fs::read_to_string("/proc/sys/net/ipv4/tcp_tw_reuse").ok()?;
        Self::parse(&range, &reuse)
    }

    fn parse(range: &str, reuse: &str) -> Option<Self> {
        let mut ends = range.split_whitespace().map(str::parse::<u16>);
        let (low, high) = (ends.next()?.ok()?, ends.next()?.ok()?);
        Some(Self {
            low,
            high,
            tw_reuse: reuse.trim().parse().ok()?,
        })
    }

    /// How many ephemeral ports there are.
    pub fn count(&self) -> u32 {
        u32::from(self.high.saturating_sub(self.low)) + 1
    }

    /// Whether `connect()` reuses a TIME_WAIT port on loopback, where the
    /// benchmark connects.
    pub fn reuses_on_loopback(&self) -> bool {
        self.tw_reuse != 0
    }

    /// How long a port stays taken after a FIN close on loopback.
    pub fn held_for(&self) -> Duration {
        if self.reuses_on_loopback() {
            TW_REUSE_AFTER
        } else {
            TIME_WAIT
        }
    }

    /// The highest rate of FIN-closed connections to one listener that
    /// the ports sustain: every port taken for [`Ports::held_for`].
    pub fn sustainable_per_s(&self) -> f64 {
        f64::from(self.count()) / self.held_for().as_secs_f64()
    }
}

/// Carries out `plan`: starts the built-in listeners (a sequential one
/// per stream transport, the blocking engine's for the datagram ones),
/// then cycles each transport in turn, run after run.
///
/// # Errors
///
/// [`Error::Empty`] for no transport or run; [`Error::FastOpen`] when TCP
/// Fast Open is asked for without TCP or the kernel refuses it; a listener
/// that cannot start; a cycle that fails (a connection refused, reset or
/// unanswered, [`Error::PortsExhausted`]).
pub fn run(plan: &Cycles, progress: &mut dyn Progress) -> Result<Results, Error> {
    for (empty, what) in [
        (plan.transports.is_empty(), "transport"),
        (plan.runs == 0, "run"),
    ] {
        if empty {
            return Err(Error::Empty(what));
        }
    }
    // The connect mode's listener is a plain accept loop of its own.
    if let Some(&transport) = plan.transports.iter().find(|t| t.caps().encrypted) {
        return Err(Error::NotInConnectMode(transport));
    }
    let tfo_sysctl = if plan.tfo {
        Some(stream::check_fast_open(&plan.transports)?)
    } else {
        None
    };
    plan.placement.pin_client();
    let core = plan.placement.listener_core();
    let datagrams: Vec<(Transport, bool)> = plan
        .transports
        .iter()
        .filter(|t| !t.caps().connections)
        .map(|&t| (t, false))
        .collect();
    let blocking = if datagrams.is_empty() {
        None
    } else {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        Some(runtime.block_on(BlockingServers::start(
            &datagrams, core, true, false, None, 0,
        ))?)
    };
    let mut servers = Vec::new();
    let mut clients = Vec::new();
    for &transport in &plan.transports {
        let endpoint = if transport.caps().connections {
            let server = StreamServer::start(transport, plan, core)?;
            let endpoint = server.endpoint()?;
            servers.push(server);
            endpoint
        } else {
            let addr = blocking
                .as_ref()
                .expect("started for the datagram transports")
                .addr(transport, false);
            Endpoint::of(transport, &addr)?
        };
        clients.push(Client::new(endpoint, plan));
    }
    let listeners = clients
        .iter()
        .map(|c| c.endpoint.to_string())
        .collect::<Vec<_>>()
        .join(", ");
    info!("connect mode, built-in listeners on {listeners}");

    let mut cells: Vec<Cell> = plan
        .transports
        .iter()
        .map(|&transport| Cell {
            transport,
            runs: Vec::new(),
        })
        .collect();
    for number in 1..=plan.runs {
        for (client, cell) in clients.iter_mut().zip(&mut cells) {
            let of = IntervalOf {
                transport: cell.transport,
                engine: Engine::Blocking,
                authenticated: false,
                size: plan.size,
                run: number,
                runs: plan.runs,
                impairment: None,
                flow: None,
                direction: crate::Direction::Forward,
            };
            let mut sink = |interval: Interval| progress.interval(&of, &interval);
            let run = measure(client, plan, &mut sink).map_err(|err| Error::Cycle {
                transport: cell.transport,
                source: Box::new(err),
            })?;
            cell.runs.push(run);
        }
    }
    drop(servers);
    drop(blocking);
    Ok(Results {
        cells,
        listeners: format!(
            "{}, built-in listeners on {listeners}",
            crate::report::between(&plan.transports)
        ),
        ports: Ports::read(),
        tfo_sysctl,
    })
}

/// One run: cycles for the warm-up, unrecorded, then for the duration.
fn measure(client: &mut Client, plan: &Cycles, sink: Sink<'_>) -> Result<Run, Error> {
    let mut run = Run::new();
    // The warm-up's figures go into a run nobody reads.
    let mut warm = Run::new();
    let warm_until = Instant::now() + plan.warmup;
    while Instant::now() < warm_until {
        client.cycle(&mut warm)?;
    }
    let start = Instant::now();
    let end = start + plan.duration;
    let mut ticker = Ticker::new(plan.interval, start, &run, None, sink);
    loop {
        let now = Instant::now();
        if now >= end {
            run.elapsed = now - start;
            ticker.finish(now, &run, true, None);
            return Ok(run);
        }
        if ticker.due(now) {
            ticker.tick(now, &run, true, None);
        }
        client.cycle(&mut run)?;
    }
}

/// A run's cycles as an interval counts them: each cycle one message sent,
/// answered unless its UDP reply was lost, timed from `socket()` to
/// `close()`.
impl Counted for Run {
    fn sent(&self) -> u64 {
        self.cycles
    }
    fn received(&self) -> u64 {
        self.cycles - self.lost
    }
    fn latency(&self) -> &Histogram<u64> {
        &self.cycle
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_read_from_proc_text() {
        let ports = Ports::parse("32768\t60999\n", "2\n").unwrap();
        assert_eq!(ports.count(), 28_232);
        assert!(ports.reuses_on_loopback());
        assert_eq!(ports.sustainable_per_s(), 28_232.0);
        let off = Ports::parse("32768 60999", "0").unwrap();
        assert!((off.sustainable_per_s() - 470.5).abs() < 0.1);
        assert_eq!(Ports::parse("", "0"), None);
        assert_eq!(Ports::parse("1 2", "x"), None);
    }
}
