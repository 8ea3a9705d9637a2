//! The report of the `connect` mode: a row per transport, the lines on
//! TIME_WAIT and Fast Open under it, or one JSON document.

use std::io::{self, Write};

use hdrhistogram::Histogram;
use serde::Serialize;

use super::{Table, fmt_count, fmt_us, median, tenth, us};
use crate::connect::{Close, Cycles, Ports, Results, Run};
use crate::meta::Meta;
use msg_net::Transport;

/// One of a run's times, as a column shows it.
type Times = fn(&Run) -> &Histogram<u64>;

/// What the handshake and the exchange are over TLS and QUIC.
const HANDSHAKES: &str = "handshake: TLS 1.3's after connect() over tls; QUIC's over quic, from \
     its first packet until the connection is established (no connect(): one endpoint's UDP \
     socket serves the whole run); a full handshake each cycle, the listener's self-signed \
     certificate checked against its pinned fingerprint, no session resumed (a new msg process \
     has none); exchange: the first request's round trip on the new connection, over quic on a \
     new stream";

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

    fn title(&self) -> [String; 2] {
        let plan = self.plan;
        let close = if self.tcp_measured() {
            let tfo = if plan.tfo { ", TCP Fast Open" } else { "" };
            format!(" (TCP: {} close{tfo})", plan.close.name())
        } else {
            String::new()
        };
        let measured: Vec<Transport> = self.results.cells.iter().map(|c| c.transport).collect();
        let interleaved = super::interleaved(&measured);
        [
            format!(
                "msg bench: connect, per cycle a new socket, connect(), one {}-byte request and \
                 its reply, close(){close}; {}; {}",
                plan.size, self.results.listeners, plan.placement
            ),
            format!(
                "median of {} run(s) of {} after {} warm-up each, {interleaved}; times in µs; \
                 a datagram socket's connect() sends nothing, so what a stream's cycle adds is \
                 its handshake and teardown",
                plan.runs,
                humantime::format_duration(plan.duration),
                humantime::format_duration(plan.warmup),
            ),
        ]
    }

    fn table(&self) -> Table {
        let rows = self.rows();
        let base = self.base();
        let base_row = base.and_then(|b| rows.iter().find(|r| r.transport == b));
        // Each time's p50 and p99; the handshake's where one is measured.
        let mut times: Vec<(&str, Times)> = vec![
            ("connect", |run| &run.connect),
            ("handshake", |run| &run.handshake),
            ("exchange", |run| &run.exchange),
            ("cycle", |run| &run.cycle),
        ];
        if !self.handshakes() {
            times.retain(|(name, _)| *name != "handshake");
        }
        let mut header: Vec<String> = ["transport", "conn/s", "conn/s range"]
            .map(str::to_owned)
            .to_vec();
        for (name, _) in &times {
            header.extend([format!("{name} p50"), format!("{name} p99")]);
        }
        header.extend(["cycles", "lost"].map(str::to_owned));
        let fast_open = self.plan.tfo;
        if fast_open {
            header.push("syn data".to_owned());
        }
        if let Some(base) = base {
            header.push(format!("cycle/{base} p50"));
        }
        let mut table = Table {
            groups: vec![(String::new(), header.len())],
            header,
            rows: Vec::new(),
        };
        for row in &rows {
            let run = row.median;
            let q = |h: &Histogram<u64>, q: f64| match h.is_empty() {
                true => "-".to_owned(),
                false => fmt_us(us(h.value_at_quantile(q))),
            };
            let mut cells = vec![
                row.transport.name().to_owned(),
                fmt_count(run.per_s()),
                format!("{}-{}", fmt_count(row.min), fmt_count(row.max)),
            ];
            for (_, of) in &times {
                cells.extend([q(of(run), 0.5), q(of(run), 0.99)]);
            }
            cells.extend([run.cycles.to_string(), run.lost.to_string()]);
            if fast_open {
                cells.push(match row.transport.caps().tcp_info {
                    true => format!("{}/{}", run.syn_data, run.cycles),
                    false => "-".to_owned(),
                });
            }
            if let Some(base_row) = base_row {
                cells.push(
                    self.cycle_ratio(base_row, row)
                        .map_or("-".to_owned(), |r| format!("{r:.2}")),
                );
            }
            table.rows.push(cells);
        }
        table
    }

    /// The median over runs taken next to each other of `row`'s cycle p50
    /// over `base`'s.
    fn cycle_ratio(&self, base: &Row<'_>, row: &Row<'_>) -> Option<f64> {
        let runs_of = |t: Transport| {
            self.results
                .cells
                .iter()
                .find(|c| c.transport == t)
                .map(|c| &c.runs)
        };
        let (base, other) = (runs_of(base.transport)?, runs_of(row.transport)?);
        median(
            base.iter()
                .zip(other)
                .filter(|(b, o)| !(b.cycle.is_empty() || o.cycle.is_empty()))
                .map(|(b, o)| {
                    o.cycle.value_at_quantile(0.5) as f64 / b.cycle.value_at_quantile(0.5) as f64
                })
                .collect(),
        )
    }

    fn notes(&self) -> Vec<String> {
        let mut lines = Vec::new();
        if self.handshakes() {
            lines.push(HANDSHAKES.to_owned());
        }
        if !self.tcp_measured() {
            return lines;
        }
        if let Some(ports) = self.results.ports {
            let range = format!(
                "{} ephemeral ports ({}-{}), net.ipv4.tcp_tw_reuse {}",
                ports.count(),
                ports.low,
                ports.high,
                ports.tw_reuse
            );
            let held = humantime::format_duration(ports.held_for());
            let reuse = match ports.reuses_on_loopback() {
                true => "connect() takes a TIME_WAIT port again after 1s (tcp_tw_reuse)",
                false => "tcp_tw_reuse is off, so a TIME_WAIT port is free only after 60s",
            };
            let sustainable = fmt_count(ports.sustainable_per_s());
            match (self.plan.close, self.fin_rate()) {
                (Close::Fin, Some(rate)) if self.limited(&ports) => lines.push(format!(
                    "warning: TIME_WAIT limits this rate: {} FIN-closed TCP connections/s, each \
                     holding its port for {held} ({reuse}), against {range}, which sustain \
                     {sustainable}/s; a RST close leaves no TIME_WAIT, and tcp_tw_reuse=1 frees \
                     a port after 1s instead of 60s",
                    fmt_count(rate)
                )),
                (Close::Fin, _) => lines.push(format!(
                    "TIME_WAIT: each FIN-closed TCP connection holds its port for {held} \
                     ({reuse}); {range} sustain {sustainable}/s"
                )),
                (Close::Rst, _) => lines.push(format!(
                    "TCP closed with a RST: no TIME_WAIT, the port free at once (a FIN close \
                     would hold each for {held}: {range} would sustain {sustainable}/s)"
                )),
            }
        }
        if let Some(sysctl) = self.results.tfo_sysctl {
            let mut line = format!(
                "TCP Fast Open (net.ipv4.tcp_fastopen {sysctl}): syn data counts connections \
                 whose SYN carried the request and the listener took it; with a cookie cached, \
                 connect() returns before the handshake, which moves into what follows (TLS's \
                 handshake, or the exchange)"
            );
            if sysctl & 2 == 0 {
                line.push_str(
                    "; the listener's side is off (bit 2 of the sysctl), so no SYN's data is \
                     taken: `sysctl -w net.ipv4.tcp_fastopen=3` turns it on",
                );
            }
            lines.push(line);
        }
        lines
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
                    (!h.is_empty()).then(|| tenth(us(h.value_at_quantile(q))))
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
