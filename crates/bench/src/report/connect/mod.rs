//! The report of the `connect` mode: a row per transport, the lines on
//! TIME_WAIT and Fast Open under it, or one JSON document.
//!
//! Here the figures both share (a `Row` per transport, the ports' limit)
//! and the JSON; `table` words them as text.

use std::io::{self, Write};

use hdrhistogram::Histogram;
use serde::Serialize;

use super::{json_us, tenth};
use crate::connect::{Close, Cycles, Ports, Results, Run};
use crate::meta::Meta;
use msg_net::Transport;

mod table;

/// The share of the rate the ports sustain past which the report warns
/// that TIME_WAIT is what limits the run.
const NEAR_LIMIT: f64 = 0.5;

/// Writes the report as a table, with its notes, to `out`.
///
/// # Errors
///
/// When `out` cannot be written.
pub fn write_table(out: &mut dyn Write, plan: &Cycles, results: &Results) -> io::Result<()> {
    let report = Report { plan, results };
    for line in report.title() {
        writeln!(out, "{line}")?;
    }
    writeln!(out)?;
    write!(out, "{}", report.table().render())?;
    let notes = report.notes();
    if !notes.is_empty() {
        writeln!(out)?;
    }
    for line in notes {
        writeln!(out, "{line}")?;
    }
    out.flush()
}

/// Writes the report as one JSON document, `{"meta":{...},"results":
/// [...],"ports":{...}}`, and a newline, to `out`; without `meta`, the
/// `end` object of `--interval`'s JSON Lines, `{"type":"end",...}`.
///
/// # Errors
///
/// When `out` cannot be written.
pub fn write_json(
    out: &mut dyn Write,
    meta: Option<&Meta>,
    plan: &Cycles,
    results: &Results,
) -> io::Result<()> {
    let report = Report { plan, results };
    let mut document = report.document();
    // Without its meta, the end of `--interval`'s JSON Lines.
    document.meta = meta;
    document.r#type = meta.is_none().then_some("end");
    serde_json::to_writer(&mut *out, &document)?;
    writeln!(out)?;
    out.flush()
}

#[derive(Debug)]
struct Report<'a> {
    plan: &'a Cycles,
    results: &'a Results,
}

/// One transport's figures: its median run (by connections per second)
/// and the range of that rate across runs.
#[derive(Debug)]
struct Row<'a> {
    transport: Transport,
    median: &'a Run,
    min: f64,
    max: f64,
    runs: usize,
}

/// The JSON object of one transport: exactly these keys.
#[derive(Debug, Serialize)]
struct Record {
    mode: &'static str,
    transport: &'static str,
    /// `fin` or `rst` for TCP; null for the others, which have no
    /// TIME_WAIT.
    close: Option<&'static str>,
    tfo: bool,
    size: usize,
    runs: usize,
    cycles: u64,
    lost: u64,
    connections_per_s: f64,
    connections_per_s_min: f64,
    connections_per_s_max: f64,
    connect_p50_us: Option<f64>,
    connect_p99_us: Option<f64>,
    /// Over TLS and QUIC: the handshake's times.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    handshake: Option<Handshake>,
    exchange_p50_us: Option<f64>,
    exchange_p99_us: Option<f64>,
    cycle_p50_us: Option<f64>,
    cycle_p99_us: Option<f64>,
    /// With `tfo`, over TCP: connections whose SYN carried the request.
    #[serde(skip_serializing_if = "Option::is_none")]
    syn_data: Option<u64>,
}

/// The handshake's percentiles, keys of a TLS or QUIC transport's object.
#[derive(Debug, Serialize)]
struct Handshake {
    handshake_p50_us: Option<f64>,
    handshake_p99_us: Option<f64>,
}

/// The ephemeral ports and what they sustain with a FIN close.
#[derive(Debug, Serialize)]
struct PortsJson {
    low: u16,
    high: u16,
    count: u32,
    tw_reuse: u8,
    held_s: f64,
    sustainable_per_s: f64,
    /// A FIN-closed TCP run at or past half the sustainable rate.
    limited: bool,
}

#[derive(Debug, Serialize)]
struct Document<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    r#type: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    meta: Option<&'a Meta>,
    results: Vec<Record>,
    ports: Option<PortsJson>,
}

impl Report<'_> {
    fn rows(&self) -> Vec<Row<'_>> {
        self.results
            .cells
            .iter()
            .filter_map(|cell| {
                let mut ranked: Vec<&Run> = cell.runs.iter().collect();
                ranked.sort_by(|a, b| a.per_s().total_cmp(&b.per_s()));
                Some(Row {
                    transport: cell.transport,
                    median: ranked.get(ranked.len().checked_sub(1)? / 2)?,
                    min: ranked.first()?.per_s(),
                    max: ranked.last()?.per_s(),
                    runs: ranked.len(),
                })
            })
            .collect()
    }

    /// What the cycle-time ratio compares with: the first of UDP, then
    /// the others in `Transport::ALL`'s order; none for one transport.
    fn base(&self) -> Option<Transport> {
        let measured: Vec<Transport> = self.results.cells.iter().map(|c| c.transport).collect();
        if measured.len() < 2 {
            return None;
        }
        Transport::ALL.into_iter().find(|t| measured.contains(t))
    }

    /// Whether a transport with a handshake of its own (TLS, QUIC) is
    /// measured: the table then has its columns.
    fn handshakes(&self) -> bool {
        self.results
            .cells
            .iter()
            .any(|c| c.transport.caps().encrypted)
    }

    fn tcp_measured(&self) -> bool {
        self.results
            .cells
            .iter()
            .any(|c| c.transport.caps().tcp_info)
    }

    /// The fastest FIN-closed TCP rate of the run, if any.
    fn fin_rate(&self) -> Option<f64> {
        if self.plan.close != Close::Fin {
            return None;
        }
        self.rows()
            .iter()
            .filter(|row| row.transport.caps().tcp_info)
            .map(|row| row.max)
            .reduce(f64::max)
    }

    fn limited(&self, ports: &Ports) -> bool {
        self.fin_rate()
            .is_some_and(|rate| rate >= NEAR_LIMIT * ports.sustainable_per_s())
    }

    fn document(&self) -> Document<'static> {
        let plan = self.plan;
        let results = self
            .rows()
            .iter()
            .map(|row| {
                let run = row.median;
                let tcp = row.transport.caps().tcp_info;
                let q = |h: &Histogram<u64>, q: f64| {
                    (!h.is_empty()).then(|| json_us(h.value_at_quantile(q)))
                };
                Record {
                    mode: "connect",
                    transport: row.transport.name(),
                    close: tcp.then(|| plan.close.name()),
                    tfo: plan.tfo && tcp,
                    size: plan.size,
                    runs: row.runs,
                    cycles: run.cycles,
                    lost: run.lost,
                    connections_per_s: tenth(run.per_s()),
                    connections_per_s_min: tenth(row.min),
                    connections_per_s_max: tenth(row.max),
                    connect_p50_us: q(&run.connect, 0.5),
                    connect_p99_us: q(&run.connect, 0.99),
                    handshake: row.transport.caps().encrypted.then(|| Handshake {
                        handshake_p50_us: q(&run.handshake, 0.5),
                        handshake_p99_us: q(&run.handshake, 0.99),
                    }),
                    exchange_p50_us: q(&run.exchange, 0.5),
                    exchange_p99_us: q(&run.exchange, 0.99),
                    cycle_p50_us: q(&run.cycle, 0.5),
                    cycle_p99_us: q(&run.cycle, 0.99),
                    syn_data: (plan.tfo && tcp).then_some(run.syn_data),
                }
            })
            .collect();
        Document {
            r#type: None,
            meta: None,
            results,
            ports: self.results.ports.map(|ports| PortsJson {
                low: ports.low,
                high: ports.high,
                count: ports.count(),
                tw_reuse: ports.tw_reuse,
                held_s: ports.held_for().as_secs_f64(),
                sustainable_per_s: tenth(ports.sustainable_per_s()),
                limited: self.limited(&ports),
            }),
        }
    }
}
