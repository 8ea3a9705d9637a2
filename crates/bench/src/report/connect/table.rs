//! The connect report as text: the title, a row per transport with its
//! times and its ratio to the first, and the lines under the table on
//! TLS's and QUIC's handshakes, TIME_WAIT and Fast Open. Apart from the
//! figures (`mod.rs`), which the JSON shares: this is only how the table
//! words and lays them out.

use hdrhistogram::Histogram;

use super::{Report, Row};
use crate::connect::{Close, Run};
use crate::report::{Table, fmt_count, fmt_us, median, us};
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

impl Report<'_> {
    pub(super) fn title(&self) -> [String; 2] {
        let plan = self.plan;
        let close = if self.tcp_measured() {
            let tfo = if plan.tfo { ", TCP Fast Open" } else { "" };
            format!(" (TCP: {} close{tfo})", plan.close.name())
        } else {
            String::new()
        };
        let measured: Vec<Transport> = self.results.cells.iter().map(|c| c.transport).collect();
        let interleaved = crate::report::interleaved(&measured);
        [
            format!(
                "msg bench: connect, per cycle a new socket, connect(), one {}-byte request and \
                 its reply, close(){close}; {}; {}",
                plan.size, self.results.listeners, plan.placement
            ),
            format!(
                "median of {} run(s) of {} after {} warm-up each, {interleaved}; times in µs{}",
                plan.runs,
                humantime::format_duration(plan.duration),
                humantime::format_duration(plan.warmup),
                // Said only beside a datagram transport's row, which it
                // explains (audit, round nine).
                match measured.iter().any(|t| !t.caps().connections) {
                    true =>
                        "; a datagram socket's connect() sends nothing, so what a stream's \
                             cycle adds is its handshake and teardown",
                    false => "",
                }
            ),
        ]
    }

    pub(super) fn table(&self) -> Table {
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

    pub(super) fn notes(&self) -> Vec<String> {
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
                     {sustainable}/s; a RST close leaves no TIME_WAIT{}",
                    fmt_count(rate),
                    // Advice only where it is not taken already.
                    match ports.reuses_on_loopback() {
                        true => "",
                        false => ", and tcp_tw_reuse=1 frees a port after 1s instead of 60s",
                    }
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
}
