//! What a `connect` run measured: per transport its runs, per run the
//! times' histograms and counts, and how an interval counts a run's
//! cycles. Apart from the running (`mod.rs`), which fills them, because
//! the report reads them too.

use std::time::Duration;

use hdrhistogram::Histogram;
use msg_net::Transport;

use super::Ports;
use super::stream::nanos;
use crate::engine::MAX_LATENCY_NS;
use crate::interval::Counted;

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
    /// `connect()` until established, in ns (none over QUIC).
    pub(crate) connect: Histogram<u64>,
    /// The TLS or QUIC handshake, until the client may send, in ns (none
    /// without one).
    pub(crate) handshake: Histogram<u64>,
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
    pub(super) fn new() -> Self {
        let histogram =
            || Histogram::new_with_bounds(1, MAX_LATENCY_NS, 3).expect("valid histogram bounds");
        Self {
            connect: histogram(),
            handshake: histogram(),
            exchange: histogram(),
            cycle: histogram(),
            cycles: 0,
            lost: 0,
            syn_data: 0,
            elapsed: Duration::ZERO,
        }
    }

    /// One cycle's times, answered: those its transport has, the exchange
    /// and the whole cycle.
    pub(super) fn record(
        &mut self,
        connect: Option<Duration>,
        handshake: Option<Duration>,
        exchange: Duration,
        cycle: Duration,
    ) {
        self.cycles += 1;
        for (histogram, took) in [
            (&mut self.connect, connect),
            (&mut self.handshake, handshake),
            (&mut self.exchange, Some(exchange)),
            (&mut self.cycle, Some(cycle)),
        ] {
            if let Some(took) = took {
                histogram.saturating_record(nanos(took).max(1));
            }
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
