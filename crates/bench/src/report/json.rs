//! The JSON document: one object per cell, exactly these keys, and the
//! impairments measured.

use std::io::{self, Write};

use serde::Serialize;

use super::{
    Report, Summary, batch, ends, hundredth, json_us, per_packet_loss, percent, summarise, tenth,
};
use crate::engine::Outcome;
use crate::impair::Impairment;
use crate::meta::Meta;
use crate::plan::Mode;
use msg_net::Transport;

/// The JSON object of one cell: exactly these keys.
#[derive(Debug, Serialize)]
#[serde(untagged)]
// A few records per document, written once: boxing would buy nothing.
#[allow(clippy::large_enum_variant)]
enum Record {
    Figures {
        transport: &'static str,
        io: &'static str,
        /// Present, and true, only for authenticated cells.
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        authenticated: bool,
        mode: &'static str,
        /// Which way a stream went (`forward` in ping-pong too).
        direction: &'static str,
        size: usize,
        samples: u64,
        p50_us: Option<f64>,
        p90_us: Option<f64>,
        p99_us: Option<f64>,
        p999_us: Option<f64>,
        max_us: Option<f64>,
        mean_us: Option<f64>,
        msgs_per_s: f64,
        /// The payload's bits per second (msgs_per_s × size × 8), as
        /// iperf3 reports throughput.
        bits_per_s: f64,
        sent: u64,
        received: u64,
        lost: u64,
        /// The receiver's: arrivals after a higher sequence number (a
        /// stream's; null in ping-pong).
        reordered: Option<u64>,
        /// The receiver's: datagrams its socket dropped, its queue full
        /// (the built-in UDP listener's; null elsewhere).
        kernel_drops: Option<u64>,
        /// CPU time per message, each side's (null where it cannot be
        /// read).
        cpu: Option<ends::CpuJson>,
        /// Flows at once (1 unless parallel).
        parallel: u32,
        /// Parallel: each flow's figures; the cell's are their sum.
        #[serde(skip_serializing_if = "Option::is_none")]
        flows: Option<Vec<ends::FlowJson>>,
        runs: usize,
        p50_us_min: Option<f64>,
        p50_us_max: Option<f64>,
        /// A stream's slowest and fastest run, the table's msg/s range
        /// (null in ping-pong, whose range is the p50's).
        msgs_per_s_min: Option<f64>,
        msgs_per_s_max: Option<f64>,
        /// Only under `--impair`.
        #[serde(flatten)]
        impaired: Option<Box<ImpairedFigures>>,
        /// `--batch`, UDP cells only.
        #[serde(flatten, skip_serializing_if = "Option::is_none")]
        batch: Option<batch::Json>,
    },
    Error {
        transport: &'static str,
        io: &'static str,
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        authenticated: bool,
        mode: &'static str,
        /// As a measured cell's: the README says every cell has one, and
        /// an error cell once had none (audit, round nine).
        direction: &'static str,
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
                            direction: self.direction.name(),
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
                        .map(|r| json_us(r.latency.value_at_quantile(q)))
                };
                let rate_range = |pick: fn(&Summary<'_>) -> f64| {
                    summary
                        .as_ref()
                        .filter(|_| self.mode == Mode::Throughput)
                        .map(|s| tenth(pick(s)))
                };
                let p50_range = |pick: fn(&Summary<'_>) -> f64| {
                    summary
                        .as_ref()
                        .filter(|s| latency && !s.median.latency.is_empty())
                        .map(|s| hundredth(pick(s)))
                };
                Record::Figures {
                    transport,
                    io,
                    authenticated: cell.authenticated,
                    mode,
                    direction: self.direction.name(),
                    size: cell.size,
                    samples: run.map_or(0, |r| r.latency.len()),
                    p50_us: quantile(0.5),
                    p90_us: quantile(0.9),
                    p99_us: quantile(0.99),
                    p999_us: quantile(0.999),
                    max_us: run
                        .filter(|r| latency && !r.latency.is_empty())
                        .map(|r| json_us(r.latency.max())),
                    mean_us: run
                        .filter(|r| latency && !r.latency.is_empty())
                        .map(|r| hundredth(r.latency.mean() / 1000.0)),
                    msgs_per_s: run.map_or(0.0, |r| tenth(r.msgs_per_s())),
                    bits_per_s: run
                        .map_or(0.0, |r| (r.msgs_per_s() * cell.size as f64 * 8.0).round()),
                    sent: run.map_or(0, |r| r.sent),
                    received: run.map_or(0, |r| r.received),
                    lost: run.map_or(0, Outcome::lost),
                    reordered: run
                        .filter(|_| self.mode == Mode::Throughput)
                        .map(|r| r.reordered),
                    kernel_drops: run.and_then(|r| r.drops),
                    cpu: run
                        .and_then(|r| r.cpu.map(|cpu| ends::CpuJson::new(&cpu, r, self.builtin))),
                    parallel: self.parallel,
                    flows: run
                        .filter(|r| !r.flows.is_empty())
                        .map(|r| ends::flows_json(r, cell.size)),
                    runs: runs.len(),
                    p50_us_min: p50_range(|s| s.min),
                    p50_us_max: p50_range(|s| s.max),
                    msgs_per_s_min: rate_range(|s| s.min),
                    msgs_per_s_max: rate_range(|s| s.max),
                    impaired: self
                        .impairment(cell)
                        .map(|imp| Box::new(self.impaired_figures(imp, cell.transport, run))),
                    batch: self
                        .batch
                        .zip(run.and_then(|r| r.calls.as_ref()))
                        .map(|(size, calls)| batch::Json::new(size, calls)),
                }
            })
            .collect()
    }
    fn impaired_figures(
        &self,
        imp: &Impairment,
        transport: Transport,
        run: Option<&Outcome>,
    ) -> ImpairedFigures {
        // Loss is measured where messages can be lost, retransmissions
        // where the kernel reports them (TCP_INFO): a Unix stream has none
        // to report, and reports none rather than zeros.
        let caps = transport.caps();
        let udp = !caps.reliable;
        let kernel = run.and_then(|r| r.kernel);
        let tcp = kernel.and_then(|k| k.tcp);
        ImpairedFigures {
            impairment: imp.to_string(),
            configured_loss_percent: imp.loss.map(|p| p.as_f64()),
            lost_percent: run
                .filter(|_| udp)
                .map(|r| hundredth(percent(r.lost(), r.sent))),
            loss_per_packet_percent: run
                .filter(|_| udp)
                .and_then(|r| per_packet_loss(self.mode, r))
                .map(|p| hundredth(p * 100.0)),
            overflow: kernel.filter(|_| udp).map(|k| k.udp_overflow),
            retrans: tcp.map(|t| t.retrans),
            retrans_both_ways: kernel.filter(|_| caps.tcp_info).map(|k| k.tcp_retrans_segs),
            rtt_us: tcp.map(|t| tenth(t.rtt.as_secs_f64() * 1e6)),
            rto_ms: tcp.map(|t| tenth(t.rto.as_secs_f64() * 1e3)),
        }
    }

    /// The document `--json` prints, with its `meta`; without one, the
    /// `end` object of `--interval`'s JSON Lines (whose `start` had it).
    pub(super) fn write_json(
        &self,
        mut out: &mut dyn Write,
        meta: Option<&Meta>,
    ) -> io::Result<()> {
        #[derive(Serialize)]
        struct Document<'a> {
            #[serde(skip_serializing_if = "Option::is_none")]
            r#type: Option<&'static str>,
            #[serde(skip_serializing_if = "Option::is_none")]
            meta: Option<&'a Meta>,
            results: Vec<Record>,
            /// Only under impairment.
            #[serde(skip_serializing_if = "Vec::is_empty")]
            impairments: Vec<ImpairmentJson>,
        }
        serde_json::to_writer(
            &mut out,
            &Document {
                r#type: meta.is_none().then_some("end"),
                meta,
                results: self.records(),
                impairments: self.impairments.iter().map(ImpairmentJson::from).collect(),
            },
        )?;
        writeln!(out)?;
        out.flush()?;
        Ok(())
    }
}
