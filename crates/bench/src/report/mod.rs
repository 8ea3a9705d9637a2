//! The report, as functions of a [`Plan`] and its [`Results`]: the median
//! of each cell's runs, written as a table or JSON; and the latency
//! distributions behind them, drawn ([`plot()`]) and written out
//! ([`write_hgrm`]).
//!
//! A cell is a transport at a size, with or without authentication. Its runs are summarised by the median
//! run (by p50 in ping-pong, by messages per second in throughput), with the
//! range of that figure across runs beside it. The TCP/UDP ratio is the
//! median of the ratios of runs taken next to each other, so that machine
//! noise that hit one pair does not tilt the comparison.
//!
//! With both engines every cell is measured by each, in the same
//! interleaved run: a row per engine, and a column with what the tokio
//! runtime adds to the blocking engine's p50, in µs per round trip.

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;

use crate::engine::Outcome;
use crate::engine::batched;
use crate::error::Error;
use crate::impair::Impairment;
use crate::pin::Placement;
use crate::plan::{Engine, Mode, Plan};
use crate::run::{Measured, Results};
use msg_net::{MAX_BATCH, Transport};

pub(crate) mod hgrm;
pub(crate) mod plot;

/// Writes the report of `results` as a table, with its notes, to `out`.
///
/// # Errors
///
/// When `out` cannot be written.
pub fn write_table(out: &mut dyn Write, plan: &Plan, results: &Results) -> io::Result<()> {
    Report::new(plan, results).write_table(out)
}

/// Writes the report of `results` as one JSON document,
/// `{"results":[...]}` (with `"impairments"` under impairment), and a
/// newline, to `out`.
///
/// # Errors
///
/// When `out` cannot be written.
pub fn write_json(out: &mut dyn Write, plan: &Plan, results: &Results) -> io::Result<()> {
    Report::new(plan, results).write_json(out)
}

/// Draws the round-trip time percentile distribution of each cell's median
/// run (p50 to p99.99, HdrHistogram style) into `path`, an SVG; returns
/// how many lines it drew.
///
/// # Errors
///
/// When the plot cannot be drawn or the file written.
pub fn plot(path: &Path, plan: &Plan, results: &Results) -> Result<usize, Error> {
    let series = plot::series(&results.measured, &plan.impairments);
    let what = match plan.rate {
        Some(rate) => format!("round-trip times, open loop at {rate} msg/s"),
        None => "round-trip times, ping-pong".to_owned(),
    };
    plot::draw(path, &series, &plan.placement, &what)?;
    Ok(series.len())
}

/// Writes each cell's round-trip time histogram into `dir` in
/// HdrHistogram's percentile format (`TRANSPORT-SIZE.hgrm`, values in µs);
/// returns the paths written.
///
/// # Errors
///
/// When the directory cannot be made or a file cannot be written.
pub fn write_hgrm(dir: &Path, plan: &Plan, results: &Results) -> Result<Vec<PathBuf>, Error> {
    let series = plot::series(&results.measured, &plan.impairments);
    plot::write_hgrm(dir, &series)
}

/// Everything the report says.
#[derive(Debug)]
struct Report<'a> {
    mode: Mode,
    rate: Option<u64>,
    runs: u32,
    duration: Duration,
    warmup: Duration,
    placement: &'a Placement,
    busy_poll: bool,
    /// Batched: UDP datagrams per send call.
    batch: Option<usize>,
    /// Whether the listeners are the built-in ones.
    builtin: bool,
    /// Where the listeners were, in words.
    where_: &'a str,
    measured: &'a [Measured],
    /// Under impairment, the impairments measured in turn; empty otherwise.
    impairments: &'a [Impairment],
}

impl<'a> Report<'a> {
    fn new(plan: &'a Plan, results: &'a Results) -> Self {
        Self {
            mode: plan.mode,
            rate: plan.rate,
            runs: plan.runs,
            duration: plan.duration,
            warmup: plan.warmup,
            placement: &plan.placement,
            busy_poll: plan.busy_poll,
            batch: plan.batch.map(|batch| batch.size),
            builtin: plan.builtin(),
            where_: &results.listeners,
            measured: &results.measured,
            impairments: &plan.impairments,
        }
    }
}

/// The figure runs are ranked and compared by.
fn key(mode: Mode, run: &Outcome) -> f64 {
    match mode {
        Mode::Pingpong => us(run.latency.value_at_quantile(0.5)),
        Mode::Throughput => run.msgs_per_s(),
    }
}

pub(crate) fn us(ns: u64) -> f64 {
    ns as f64 / 1000.0
}

/// The summary of one cell's runs.
#[derive(Debug)]
struct Summary<'a> {
    median: &'a Outcome,
    min: f64,
    max: f64,
}

fn summarise(mode: Mode, runs: &[Outcome]) -> Option<Summary<'_>> {
    let mut ranked: Vec<&Outcome> = runs.iter().collect();
    ranked.sort_by(|a, b| key(mode, a).total_cmp(&key(mode, b)));
    Some(Summary {
        median: ranked.get((ranked.len().checked_sub(1)?) / 2)?,
        min: key(mode, ranked.first()?),
        max: key(mode, ranked.last()?),
    })
}

/// The median of `values`, or `None` if there are none.
fn median(mut values: Vec<f64>) -> Option<f64> {
    values.retain(|v| v.is_finite());
    values.sort_by(f64::total_cmp);
    let n = values.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(values[n / 2]),
        _ => Some((values[n / 2 - 1] + values[n / 2]) / 2.0),
    }
}

/// The JSON object of one cell: exactly these keys.
#[derive(Debug, Serialize)]
#[serde(untagged)]
enum Record {
    Figures {
        transport: &'static str,
        io: &'static str,
        /// Present, and true, only for authenticated cells.
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        authenticated: bool,
        mode: &'static str,
        size: usize,
        samples: u64,
        p50_us: Option<f64>,
        p90_us: Option<f64>,
        p99_us: Option<f64>,
        p999_us: Option<f64>,
        max_us: Option<f64>,
        mean_us: Option<f64>,
        msgs_per_s: f64,
        sent: u64,
        received: u64,
        lost: u64,
        runs: usize,
        p50_us_min: Option<f64>,
        p50_us_max: Option<f64>,
        /// Only under `--impair`.
        #[serde(flatten)]
        impaired: Option<Box<ImpairedFigures>>,
        /// `--batch`, UDP cells only.
        #[serde(flatten, skip_serializing_if = "Option::is_none")]
        batch: Option<batched::Json>,
    },
    Error {
        transport: &'static str,
        io: &'static str,
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        authenticated: bool,
        mode: &'static str,
        size: usize,
        error: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        impairment: Option<String>,
    },
}

/// What a cell adds under `--impair`.
#[derive(Debug, Serialize)]
struct ImpairedFigures {
    /// The SPEC, as in the table.
    impairment: String,
    /// The loss configured, per packet and direction (null: none).
    configured_loss_percent: Option<f64>,
    /// UDP: the share of messages lost (`lost / sent`).
    #[serde(skip_serializing_if = "Option::is_none")]
    lost_percent: Option<f64>,
    /// UDP: the share of packets the network dropped, from the
    /// measurement: comparable with the configured loss.
    #[serde(skip_serializing_if = "Option::is_none")]
    loss_per_packet_percent: Option<f64>,
    /// UDP: datagrams the kernel dropped because a receive queue was full.
    #[serde(skip_serializing_if = "Option::is_none")]
    overflow: Option<u64>,
    /// UDP throughput: arrivals after a higher sequence number.
    #[serde(skip_serializing_if = "Option::is_none")]
    reordered: Option<u64>,
    /// TCP: segments the client retransmitted (`tcpi_total_retrans`).
    #[serde(skip_serializing_if = "Option::is_none")]
    retrans: Option<u32>,
    /// TCP: segments either side retransmitted (the namespace's
    /// `RetransSegs`).
    #[serde(skip_serializing_if = "Option::is_none")]
    retrans_both_ways: Option<u64>,
    /// TCP: the client's smoothed RTT at the end (`tcpi_rtt`).
    #[serde(skip_serializing_if = "Option::is_none")]
    rtt_us: Option<f64>,
    /// TCP: the client's retransmission timeout at the end (`tcpi_rto`).
    #[serde(skip_serializing_if = "Option::is_none")]
    rto_ms: Option<f64>,
}

/// An impairment in the JSON document: its words, their values, and the
/// mechanisms applied.
#[derive(Debug, Serialize)]
struct ImpairmentJson {
    spec: String,
    loss_percent: Option<f64>,
    rate_bits_per_s: Option<u64>,
    delay_us: Option<u128>,
    jitter_us: Option<u128>,
    reorder_percent: Option<f64>,
    duplicate_percent: Option<f64>,
    applied: Vec<String>,
}

impl From<&Impairment> for ImpairmentJson {
    fn from(imp: &Impairment) -> Self {
        Self {
            spec: imp.to_string(),
            loss_percent: imp.loss.map(|p| p.as_f64()),
            rate_bits_per_s: imp.rate,
            delay_us: imp.delay.map(|(d, _)| d.as_micros()),
            jitter_us: imp.delay.map(|(_, j)| j.as_micros()),
            reorder_percent: imp.reorder.map(|p| p.as_f64()),
            duplicate_percent: imp.duplicate.map(|p| p.as_f64()),
            applied: imp.applied(),
        }
    }
}

/// The share of packets the network dropped, estimated from a run: a
/// ping-pong's round trip crosses the impaired network twice (answered
/// with probability (1 − p)², so p = 1 − √answered), a one-way datagram
/// once. Receive-queue overflows are the receiver's, not the network's.
fn per_packet_loss(mode: Mode, run: &Outcome) -> Option<f64> {
    if run.sent == 0 {
        return None;
    }
    let overflow = run.kernel.map_or(0, |k| k.udp_overflow);
    let lost = run.lost().saturating_sub(overflow) as f64 / run.sent as f64;
    Some(match mode {
        Mode::Pingpong => 1.0 - (1.0 - lost).max(0.0).sqrt(),
        Mode::Throughput => lost,
    })
}

/// Rounds to a tenth of a microsecond or of a message per second: finer
/// digits are noise on any machine.
pub(crate) fn tenth(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

impl Report<'_> {
    fn records(&self) -> Vec<Record> {
        let mode = self.mode.name();
        self.measured
            .iter()
            .map(|cell| {
                let transport = cell.transport.name();
                let io = cell.engine.name();
                let runs = match &cell.runs {
                    Ok(runs) => runs,
                    Err(oversize) => {
                        return Record::Error {
                            transport,
                            io,
                            authenticated: cell.authenticated,
                            mode,
                            size: cell.size,
                            error: oversize.message.clone(),
                            impairment: self.impairment(cell).map(ToString::to_string),
                        };
                    }
                };
                let summary = summarise(self.mode, runs);
                let run = summary.as_ref().map(|s| s.median);
                let latency = self.mode == Mode::Pingpong;
                let quantile = |q: f64| {
                    run.filter(|r| latency && !r.latency.is_empty())
                        .map(|r| tenth(us(r.latency.value_at_quantile(q))))
                };
                let p50_range = |pick: fn(&Summary<'_>) -> f64| {
                    summary
                        .as_ref()
                        .filter(|s| latency && !s.median.latency.is_empty())
                        .map(|s| tenth(pick(s)))
                };
                Record::Figures {
                    transport,
                    io,
                    authenticated: cell.authenticated,
                    mode,
                    size: cell.size,
                    samples: run.map_or(0, |r| r.latency.len()),
                    p50_us: quantile(0.5),
                    p90_us: quantile(0.9),
                    p99_us: quantile(0.99),
                    p999_us: quantile(0.999),
                    max_us: run
                        .filter(|r| latency && !r.latency.is_empty())
                        .map(|r| tenth(us(r.latency.max()))),
                    mean_us: run
                        .filter(|r| latency && !r.latency.is_empty())
                        .map(|r| tenth(r.latency.mean() / 1000.0)),
                    msgs_per_s: run.map_or(0.0, |r| tenth(r.msgs_per_s())),
                    sent: run.map_or(0, |r| r.sent),
                    received: run.map_or(0, |r| r.received),
                    lost: run.map_or(0, Outcome::lost),
                    runs: runs.len(),
                    p50_us_min: p50_range(|s| s.min),
                    p50_us_max: p50_range(|s| s.max),
                    impaired: self
                        .impairment(cell)
                        .map(|imp| Box::new(self.impaired_figures(imp, cell.transport, run))),
                    batch: self
                        .batch
                        .zip(run.and_then(|r| r.calls.as_ref()))
                        .map(|(size, calls)| batched::Json::new(size, calls)),
                }
            })
            .collect()
    }

    /// The impairment a cell was measured under, if any.
    fn impairment(&self, cell: &Measured) -> Option<&Impairment> {
        cell.impairment.and_then(|i| self.impairments.get(i))
    }

    fn impaired_figures(
        &self,
        imp: &Impairment,
        transport: Transport,
        run: Option<&Outcome>,
    ) -> ImpairedFigures {
        let udp = transport == Transport::Udp;
        let kernel = run.and_then(|r| r.kernel);
        let tcp = kernel.and_then(|k| k.tcp);
        ImpairedFigures {
            impairment: imp.to_string(),
            configured_loss_percent: imp.loss.map(|p| p.as_f64()),
            lost_percent: run
                .filter(|_| udp)
                .map(|r| tenth_percent(percent(r.lost(), r.sent))),
            loss_per_packet_percent: run
                .filter(|_| udp)
                .and_then(|r| per_packet_loss(self.mode, r))
                .map(|p| tenth_percent(p * 100.0)),
            overflow: kernel.filter(|_| udp).map(|k| k.udp_overflow),
            reordered: run
                .filter(|_| udp && self.mode == Mode::Throughput)
                .map(|r| r.reordered),
            retrans: tcp.map(|t| t.retrans),
            retrans_both_ways: kernel.filter(|_| !udp).map(|k| k.tcp_retrans_segs),
            rtt_us: tcp.map(|t| tenth(t.rtt.as_secs_f64() * 1e6)),
            rto_ms: tcp.map(|t| tenth(t.rto.as_secs_f64() * 1e3)),
        }
    }

    fn write_json(&self, mut out: &mut dyn Write) -> io::Result<()> {
        #[derive(Serialize)]
        struct Document {
            results: Vec<Record>,
            /// Only under impairment.
            #[serde(skip_serializing_if = "Vec::is_empty")]
            impairments: Vec<ImpairmentJson>,
        }
        serde_json::to_writer(
            &mut out,
            &Document {
                results: self.records(),
                impairments: self.impairments.iter().map(ImpairmentJson::from).collect(),
            },
        )?;
        writeln!(out)?;
        out.flush()?;
        Ok(())
    }

    fn write_table(&self, out: &mut dyn Write) -> io::Result<()> {
        for line in self.title() {
            writeln!(out, "{line}")?;
        }
        writeln!(out)?;
        write!(out, "{}", self.table().render())?;
        for cell in self.measured {
            if let Err(oversize) = &cell.runs {
                if cell.impairment.is_some_and(|i| i > 0) {
                    // Said once, under the first impairment's rows.
                    continue;
                }
                let message = &oversize.message;
                let auth = if cell.authenticated { "+auth" } else { "" };
                let engine = match self.engines().len() {
                    2 => format!(" ({})", cell.engine.name()),
                    _ => String::new(),
                };
                writeln!(
                    out,
                    "{}{auth}{engine} {} B: {message}",
                    cell.transport, cell.size
                )?;
            }
        }
        if !self.impairments.is_empty() {
            writeln!(out)?;
            for line in self.impairment_notes() {
                writeln!(out, "{line}")?;
            }
        }
        out.flush()?;
        Ok(())
    }

    /// Under the impaired table: what was applied, and how to read the
    /// columns that only impaired runs have.
    fn impairment_notes(&self) -> Vec<String> {
        let mut lines = vec![
            "applied, in turn, by the kernel on the namespace's lo (each packet, each direction):"
                .to_owned(),
        ];
        for imp in self.impairments {
            lines.push(format!("  {imp}: {}", imp.applied().join("; ")));
        }
        let transports = self.transports();
        if transports.contains(&Transport::Udp) {
            lines.push(match self.mode {
                Mode::Pingpong => "UDP: lost %: round trips unanswered; per pkt %: the share of \
                 packets the network dropped, measured, beside the configured loss (a round \
                 trip crosses it twice: 1 - sqrt(answered share))"
                    .to_owned(),
                Mode::Throughput => "UDP: per pkt %: the share of datagrams the network dropped, \
                 measured, beside the configured loss; overflow: datagrams dropped by a full \
                 receive queue, the receiver's loss and not the network's"
                    .to_owned(),
            });
        }
        if transports.contains(&Transport::Tcp) {
            lines.push(
                "TCP: loses nothing; retrans: segments the client sent again (TCP_INFO \
                 tcpi_total_retrans; the JSON's retrans_both_ways adds the listener's); rtt: its \
                 smoothed round-trip time in µs; rto: its retransmission timeout in ms"
                    .to_owned(),
            );
        }
        lines
    }

    fn title(&self) -> [String; 2] {
        let what = match (self.mode, self.rate) {
            (Mode::Pingpong, None) => format!(
                "ping-pong, one message in flight, {}",
                match self.engines()[..] {
                    [Engine::Blocking] => "blocking engine",
                    [Engine::Tokio] => "tokio engine",
                    _ => "blocking and tokio engines interleaved",
                }
            ),
            (Mode::Pingpong, Some(rate)) => {
                format!("open loop at {rate} msg/s, latency from each intended send time")
            }
            (Mode::Throughput, None) => "throughput, one-way stream as fast as it goes".to_owned(),
            (Mode::Throughput, Some(rate)) => format!("throughput, one-way stream at {rate} msg/s"),
        };
        let figures = match self.mode {
            Mode::Pingpong => "round-trip times in µs",
            Mode::Throughput => "rates at the receiver",
        };
        [
            format!(
                "msg bench: {what}; {}; {}{}{}",
                self.where_,
                self.placement,
                if self.busy_poll { ", busy-poll" } else { "" },
                match self.variants()[..] {
                    [true] => ", authenticated (every message tagged)",
                    [false, true] => ", with and without authentication",
                    _ => "",
                }
            ),
            format!(
                "median of {} run(s) of {} after {} warm-up each, UDP and TCP interleaved; {figures}{}",
                self.runs,
                humantime::format_duration(self.duration),
                humantime::format_duration(self.warmup),
                self.batch_note(),
            ),
        ]
    }

    /// With `--batch`, what was batched, for the title.
    fn batch_note(&self) -> String {
        let Some(size) = self.batch else {
            return String::new();
        };
        let receive = if self.builtin {
            format!(
                "the built-in listener receives up to {} per call (recvmmsg)",
                MAX_BATCH
            )
        } else {
            "the remote listener's calls are not known here (n/a)".to_owned()
        };
        format!(
            "\nUDP sent {size} datagrams per call (sendmmsg, with GSO where offered); {receive}; \
             dgram/send and dgram/recv: datagrams moved per system call; \
             offload: GSO if they went to the kernel as segmented runs, GRO if they arrived coalesced"
        )
    }

    fn transports(&self) -> Vec<Transport> {
        let mut transports: Vec<Transport> = Vec::new();
        for cell in self.measured {
            if !transports.contains(&cell.transport) {
                transports.push(cell.transport);
            }
        }
        transports
    }

    /// Which of unauthenticated (`false`) and authenticated (`true`) were
    /// measured, in that order.
    fn variants(&self) -> Vec<bool> {
        [false, true]
            .into_iter()
            .filter(|&auth| self.measured.iter().any(|c| c.authenticated == auth))
            .collect()
    }

    /// Which engines measured, blocking first.
    fn engines(&self) -> Vec<Engine> {
        let mut engines: Vec<Engine> = self.measured.iter().map(|c| c.engine).collect();
        engines.sort_unstable();
        engines.dedup();
        engines
    }

    /// The runs of one cell, if it was measured.
    fn runs(
        &self,
        impairment: Option<usize>,
        size: usize,
        transport: Transport,
        authenticated: bool,
        engine: Engine,
    ) -> Option<&[Outcome]> {
        self.measured
            .iter()
            .find(|c| {
                c.impairment == impairment
                    && c.size == size
                    && c.transport == transport
                    && c.authenticated == authenticated
                    && c.engine == engine
            })
            .and_then(|c| c.runs.as_deref().ok())
    }

    /// The columns only an impaired run has, for `transport`.
    fn impaired_columns(&self, transport: Transport) -> &'static [&'static str] {
        match (self.impairments.is_empty(), transport, self.mode) {
            (true, _, _) => &[],
            (false, Transport::Udp, Mode::Pingpong) => &["lost %", "per pkt %"],
            (false, Transport::Udp, Mode::Throughput) => &["overflow", "per pkt %"],
            (false, Transport::Tcp, _) => &["retrans", "rtt", "rto"],
        }
    }

    /// The median over neighbouring runs of tokio's p50 less the blocking
    /// engine's, in µs.
    fn runtime_cost(&self, blocking: &[Outcome], tokio: &[Outcome]) -> Option<f64> {
        let differences = blocking
            .iter()
            .zip(tokio)
            .filter(|(b, t)| !(b.latency.is_empty() || t.latency.is_empty()))
            .map(|(b, t)| key(self.mode, t) - key(self.mode, b))
            .collect();
        median(differences)
    }

    fn table(&self) -> Table {
        let transports = self.transports();
        let variants = self.variants();
        // With both, each authenticated row also shows what the secret
        // costs: auth/plain of the p50 (or msg/s), per transport.
        let cost = variants.len() == 2;
        // With both engines, each tokio row shows what the runtime adds.
        let engines = self.engines();
        let runtime_cost = engines.len() == 2 && self.mode == Mode::Pingpong;
        let columns: &[&str] = match self.mode {
            Mode::Pingpong => &["p50", "p50 range", "p90", "p99", "p99.9", "max", "msg/s"],
            Mode::Throughput => &["msg/s", "range", "MB/s", "sent", "received", "lost %"],
        };
        let extra: &[&str] = match (self.mode, self.batch) {
            (Mode::Pingpong, _) => &["lost"],
            (Mode::Throughput, None) => &["reordered"],
            (Mode::Throughput, Some(_)) => {
                let [send, recv, offload] = batched::COLUMNS;
                &["reordered", send, recv, offload]
            }
        };
        let impaired = !self.impairments.is_empty();
        let mut table = Table::default();
        let mut groups = vec![(String::new(), if impaired { 2 } else { 1 })];
        let mut header = vec!["size".to_owned()];
        if impaired {
            header.insert(0, "impairment".to_owned());
        }
        let width_of = |transport: Transport| {
            columns.len()
                + if transport == Transport::Udp {
                    extra.len()
                } else {
                    0
                }
        };
        for &transport in &transports {
            let impaired_columns = self.impaired_columns(transport);
            groups.push((
                transport.name().to_uppercase(),
                width_of(transport) + impaired_columns.len(),
            ));
            header.extend(columns.iter().map(|c| (*c).to_owned()));
            if transport == Transport::Udp {
                header.extend(extra.iter().map(|c| (*c).to_owned()));
            }
            header.extend(impaired_columns.iter().map(|c| (*c).to_owned()));
        }
        let ratio = transports.len() == 2;
        let figure = match self.mode {
            Mode::Pingpong => "p50",
            Mode::Throughput => "msg/s",
        };
        if ratio {
            groups.push((String::new(), 1));
            header.push(format!("tcp/udp {figure}"));
        }
        if cost {
            groups.push((format!("auth/plain {figure}"), transports.len()));
            header.extend(transports.iter().map(|t| t.name().to_owned()));
        }
        if runtime_cost {
            groups.push(("tokio-blocking p50 µs".to_owned(), transports.len()));
            header.extend(transports.iter().map(|t| t.name().to_owned()));
        }
        table.groups = groups;
        table.header = header;

        let mut sizes: Vec<usize> = self.measured.iter().map(|c| c.size).collect();
        sizes.sort_unstable();
        sizes.dedup();
        // Sizes in the order they were measured.
        sizes.sort_by_key(|&size| self.measured.iter().position(|c| c.size == size));
        let phases: Vec<Option<usize>> = if impaired {
            (0..self.impairments.len()).map(Some).collect()
        } else {
            vec![None]
        };
        let mut rows = Vec::new();
        for &phase in &phases {
            for &size in &sizes {
                for &auth in &variants {
                    rows.extend(engines.iter().map(|&engine| (phase, size, auth, engine)));
                }
            }
        }
        for (phase, size, authenticated, engine) in rows {
            let mut label = if authenticated && cost {
                format!("{size} auth")
            } else {
                size.to_string()
            };
            if engines.len() == 2 {
                label = format!("{label} {}", engine.name());
            }
            let mut row = vec![label];
            if let Some(i) = phase {
                row.insert(0, self.impairments[i].to_string());
            }
            let mut pair = Vec::new();
            for &transport in &transports {
                let Some(cell) = self.measured.iter().find(|c| {
                    c.impairment == phase
                        && c.size == size
                        && c.transport == transport
                        && c.authenticated == authenticated
                        && c.engine == engine
                }) else {
                    continue;
                };
                let width = width_of(transport);
                let impaired_width = self.impaired_columns(transport).len();
                match &cell.runs {
                    Err(oversize) => {
                        row.push(format!("exceeds {}", oversize.limit));
                        row.extend((1..width + impaired_width).map(|_| "-".to_owned()));
                    }
                    Ok(runs) => {
                        let summary = summarise(self.mode, runs);
                        row.extend(self.cells(transport, size, summary.as_ref(), width));
                        row.extend(self.impaired_cells(transport, summary.as_ref()));
                        pair.push(runs);
                    }
                }
            }
            if ratio {
                row.push(match pair[..] {
                    [udp, tcp] => self
                        .ratio(udp, tcp)
                        .map_or("-".to_owned(), |r| format!("{r:.2}")),
                    _ => "-".to_owned(),
                });
            }
            if cost {
                for &transport in &transports {
                    let plain = self.runs(phase, size, transport, false, engine);
                    let tagged = self.runs(phase, size, transport, true, engine);
                    row.push(match (authenticated, plain, tagged) {
                        (true, Some(plain), Some(tagged)) => self
                            .ratio(plain, tagged)
                            .map_or("-".to_owned(), |r| format!("{r:.2}")),
                        _ => "-".to_owned(),
                    });
                }
            }
            if runtime_cost {
                for &transport in &transports {
                    let blocking =
                        self.runs(phase, size, transport, authenticated, Engine::Blocking);
                    let tokio = self.runs(phase, size, transport, authenticated, Engine::Tokio);
                    row.push(match (engine, blocking, tokio) {
                        (Engine::Tokio, Some(blocking), Some(tokio)) => self
                            .runtime_cost(blocking, tokio)
                            .map_or("-".to_owned(), |d| format!("{d:+.1}")),
                        _ => "-".to_owned(),
                    });
                }
            }
            table.rows.push(row);
        }
        table
    }

    fn cells(
        &self,
        transport: Transport,
        size: usize,
        summary: Option<&Summary<'_>>,
        width: usize,
    ) -> Vec<String> {
        let Some(summary) = summary else {
            return vec!["-".to_owned(); width];
        };
        let batch_cells = self.batch.is_some() && self.mode == Mode::Throughput;
        let run = summary.median;
        let mut cells = match self.mode {
            Mode::Pingpong if run.latency.is_empty() => {
                // The figures only: UDP's lost column is added below.
                let mut cells =
                    vec!["-".to_owned(); width - usize::from(transport == Transport::Udp)];
                cells[0] = "all lost".to_owned();
                cells
            }
            Mode::Pingpong => vec![
                fmt_us(us(run.latency.value_at_quantile(0.5))),
                format!("{}-{}", fmt_us(summary.min), fmt_us(summary.max)),
                fmt_us(us(run.latency.value_at_quantile(0.9))),
                fmt_us(us(run.latency.value_at_quantile(0.99))),
                fmt_us(us(run.latency.value_at_quantile(0.999))),
                fmt_us(us(run.latency.max())),
                fmt_count(run.msgs_per_s()),
            ],
            Mode::Throughput => {
                let bytes = run.msgs_per_s() * size as f64;
                vec![
                    fmt_count(run.msgs_per_s()),
                    format!("{}-{}", fmt_count(summary.min), fmt_count(summary.max)),
                    format!("{:.1}", bytes / 1e6),
                    run.sent.to_string(),
                    run.received.to_string(),
                    format!("{:.1}", percent(run.lost(), run.sent)),
                ]
            }
        };
        if transport == Transport::Udp {
            cells.push(match self.mode {
                Mode::Pingpong => run.lost().to_string(),
                Mode::Throughput => run.reordered.to_string(),
            });
            if batch_cells {
                cells.extend(batched::cells(run.calls.as_ref()));
            }
        }
        cells
    }

    /// The cells of [`Report::impaired_columns`], from the median run.
    fn impaired_cells(&self, transport: Transport, summary: Option<&Summary<'_>>) -> Vec<String> {
        let columns = self.impaired_columns(transport);
        let Some(run) = summary.map(|s| s.median) else {
            return vec!["-".to_owned(); columns.len()];
        };
        let kernel = run.kernel.unwrap_or_default();
        match transport {
            Transport::Udp if columns.is_empty() => Vec::new(),
            Transport::Udp => {
                let first = match self.mode {
                    Mode::Pingpong => format!("{:.1}", percent(run.lost(), run.sent)),
                    Mode::Throughput => kernel.udp_overflow.to_string(),
                };
                let per_packet = per_packet_loss(self.mode, run)
                    .map_or("-".to_owned(), |p| format!("{:.1}", p * 100.0));
                vec![first, per_packet]
            }
            Transport::Tcp if columns.is_empty() => Vec::new(),
            Transport::Tcp => match kernel.tcp {
                Some(tcp) => vec![
                    tcp.retrans.to_string(),
                    fmt_us(tcp.rtt.as_secs_f64() * 1e6),
                    format!("{:.0}", tcp.rto.as_secs_f64() * 1e3),
                ],
                None => vec!["-".to_owned(); columns.len()],
            },
        }
    }

    /// The median of `other / base` over runs taken next to each other.
    fn ratio(&self, base: &[Outcome], other: &[Outcome]) -> Option<f64> {
        let ratios = base
            .iter()
            .zip(other)
            .filter(|(b, o)| {
                self.mode == Mode::Throughput || !(b.latency.is_empty() || o.latency.is_empty())
            })
            .map(|(b, o)| key(self.mode, o) / key(self.mode, b))
            .collect();
        median(ratios)
    }
}

/// Rounds a percentage to hundredths.
fn tenth_percent(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

fn percent(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 * 100.0 / whole as f64
    }
}

/// Microseconds with a tenth below 1000, whole above.
pub(crate) fn fmt_us(v: f64) -> String {
    if v < 1000.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.0}")
    }
}

/// Whole numbers, with a k or M past ten thousand.
pub(crate) fn fmt_count(v: f64) -> String {
    if v >= 10e6 {
        format!("{:.1}M", v / 1e6)
    } else if v >= 10e3 {
        format!("{:.1}k", v / 1e3)
    } else {
        format!("{v:.0}")
    }
}

/// A right-aligned text table with one row of column groups above the
/// column names.
#[derive(Debug, Default)]
pub(crate) struct Table {
    pub(crate) groups: Vec<(String, usize)>,
    pub(crate) header: Vec<String>,
    pub(crate) rows: Vec<Vec<String>>,
}

impl Table {
    pub(crate) fn render(&self) -> String {
        const GAP: usize = 2;
        let n = self.header.len();
        let mut widths: Vec<usize> = self.header.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let mut out = String::new();
        // Group titles, centred over their columns.
        let mut col = 0;
        let mut line = String::new();
        for (title, span) in &self.groups {
            let span_width: usize =
                widths[col..(col + span).min(n)].iter().sum::<usize>() + GAP * span;
            let title = if title.is_empty() {
                String::new()
            } else {
                format!(" {title} ")
            };
            let fill = if title.is_empty() { ' ' } else { '-' };
            let pad = span_width.saturating_sub(title.chars().count() + GAP);
            let left = pad / 2;
            line.push_str(&" ".repeat(GAP));
            line.extend(std::iter::repeat_n(fill, left));
            line.push_str(&title);
            line.extend(std::iter::repeat_n(fill, pad - left));
            col += span;
        }
        out.push_str(line.trim_end());
        out.push('\n');
        for row in std::iter::once(&self.header).chain(&self.rows) {
            let mut line = String::new();
            for (cell, w) in row.iter().zip(&widths) {
                line.push_str(&" ".repeat(GAP));
                line.push_str(&format!("{cell:>w$}"));
            }
            out.push_str(&line);
            out.push('\n');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians() {
        assert_eq!(median(vec![]), None);
        assert_eq!(median(vec![3.0]), Some(3.0));
        assert_eq!(median(vec![5.0, 1.0, 3.0]), Some(3.0));
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(vec![f64::NAN, 2.0]), Some(2.0));
    }

    #[test]
    fn numbers_read_easily() {
        assert_eq!(fmt_us(11.26), "11.3");
        assert_eq!(fmt_us(1234.4), "1234");
        assert_eq!(fmt_count(812.0), "812");
        assert_eq!(fmt_count(85_123.0), "85.1k");
        assert_eq!(fmt_count(12_345_678.0), "12.3M");
    }

    #[test]
    fn tables_align_under_their_groups() {
        let table = Table {
            groups: vec![(String::new(), 1), ("UDP".to_owned(), 2)],
            header: vec!["size".to_owned(), "p50".to_owned(), "max".to_owned()],
            rows: vec![vec!["64".to_owned(), "11.3".to_owned(), "1234".to_owned()]],
        };
        let text = table.render();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[1], "  size   p50   max");
        assert_eq!(lines[2], "    64  11.3  1234");
        assert!(lines[0].contains(" UDP "), "{text}");
        assert!(lines[0].len() <= lines[1].len(), "{text}");
    }
}
