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
//! - **TLS** over TCP: TCP's cycle with a TLS 1.3 handshake after
//!   `connect()` (`tls.rs`): the built-in listeners' self-signed
//!   certificate, its fingerprint pinned by the client, no session
//!   resumed, so each cycle makes a full handshake, as each msg process
//!   does. The request and reply go inside the session, and the client
//!   sends its close_notify before `close()`.
//! - **QUIC** (`quic.rs`): one client endpoint (its UDP socket) for the
//!   whole run, a new connection per cycle: the handshake until quinn
//!   has the connection established, the request and reply on a new
//!   stream, then the connection closed. No `connect()`: no kernel
//!   handshake comes before QUIC's own.
//!
//! Each cycle records up to four times: `connect` (the `connect()` call
//! until it returns, the connection established), `handshake` (TLS's or
//! QUIC's, until the client may send), `exchange` (the request sent
//! until the reply is read: the first byte's round trip) and the whole
//! `cycle` (from `socket()`, or QUIC's connect call, until `close()`
//! returns). Connections per second is the cycles over the run's time.
//!
//! With [`Close::Fin`] every TCP cycle leaves the client's end in
//! TIME_WAIT for 60 s, holding its ephemeral port: [`Ports`] reads the
//! kernel's range and `tcp_tw_reuse`, and says at what rate that caps a
//! run. Its report is [`report::connect`](crate::report::connect).

use std::time::{Duration, Instant};

use msg_net::Transport;
use tracing::info;

use crate::error::Error;
use crate::interval::{Interval, IntervalOf, Sink, Ticker};
use crate::pin::Placement;
use crate::run::Progress;
use crate::servers::BlockingServers;

mod fast_open;
mod ports;
mod quic;
mod results;
mod server;
mod stream;
mod tls;
mod way;

pub use ports::{Ports, TIME_WAIT, TW_REUSE_AFTER};
use quic::{QuicClient, QuicServer};
pub use results::Results;
pub(crate) use results::{Cell, Run};
use server::StreamServer;
use stream::{Client, Endpoint};
pub use way::engines;
use way::{Cycler, Way, engine};

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

/// Carries out `plan`: starts the built-in listeners (a sequential one
/// per stream transport, one QUIC endpoint, the blocking engine's for the
/// datagram ones), then cycles each transport in turn, run after run.
///
/// # Errors
///
/// [`Error::Empty`] for no transport or run; [`Error::NotInConnectMode`]
/// for QUIC datagrams; [`Error::FastOpen`] when TCP Fast Open is asked
/// for without TCP or the kernel refuses it; a listener that cannot start;
/// a cycle that fails (a connection refused, reset or unanswered, a
/// handshake refused, [`Error::PortsExhausted`]).
pub fn run(plan: &Cycles, progress: &mut dyn Progress) -> Result<Results, Error> {
    for (empty, what) in [
        (plan.transports.is_empty(), "transport"),
        (plan.runs == 0, "run"),
    ] {
        if empty {
            return Err(Error::Empty(what));
        }
    }
    let ways = plan
        .transports
        .iter()
        .map(|&t| Way::of(t))
        .collect::<Result<Vec<_>, _>>()?;
    let tfo_sysctl = if plan.tfo {
        Some(fast_open::check_fast_open(&plan.transports)?)
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
    let configs = plan
        .transports
        .iter()
        .any(|t| t.caps().encrypted)
        .then(tls::configs);
    let mut servers = Vec::new();
    let mut quic_servers = Vec::new();
    let mut clients = Vec::new();
    for (&transport, way) in plan.transports.iter().zip(ways) {
        let client = match way {
            Way::Quic => {
                let (server_tls, client_tls) = configs.clone().expect("made for QUIC");
                let server = QuicServer::start(plan, core, &server_tls)?;
                let client = QuicClient::new(&server, plan, &client_tls)?;
                quic_servers.push(server);
                Cycler::Quic(client)
            }
            Way::Socket { tls } if transport.caps().connections => {
                let (server_tls, client_tls) = configs.clone().filter(|_| tls).unzip();
                let server = StreamServer::start(transport, plan, core, server_tls)?;
                let endpoint = server.endpoint()?;
                servers.push(server);
                Cycler::Socket(Client::new(endpoint, plan, client_tls))
            }
            Way::Socket { .. } => {
                let addr = blocking
                    .as_ref()
                    .expect("started for the datagram transports")
                    .bound()
                    .addr(transport, false);
                Cycler::Socket(Client::new(Endpoint::of(transport, &addr)?, plan, None))
            }
        };
        clients.push(client);
    }
    let listeners = clients
        .iter()
        .map(Cycler::listener)
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
                engine: engine(cell.transport),
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
    // The clients first: a QUIC client's endpoint closes its connections
    // while its listener still runs.
    drop(clients);
    drop(servers);
    drop(quic_servers);
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
fn measure(client: &mut Cycler, plan: &Cycles, sink: Sink<'_>) -> Result<Run, Error> {
    let mut run = Run::new();
    // The warm-up's figures go into a run nobody reads.
    let mut warm = Run::new();
    let warm_until = Instant::now() + plan.warmup;
    while Instant::now() < warm_until {
        client.cycle(&mut warm)?;
    }
    let start = Instant::now();
    let end = start + plan.duration;
    let mut ticker = Ticker::new(plan.interval, start, &run, None, sink).until(end);
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

#[cfg(test)]
mod tests;
