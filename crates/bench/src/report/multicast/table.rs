//! The multicast report as text: the title, a row per receiver, and the
//! lines under the table (the spread across receivers, the slowest, and
//! what else the run saw). Apart from the figures (`mod.rs`), which the
//! JSON shares: this is only how the table words and lays them out.

use std::io::{self, Write};

use super::{Report, Summary};
use crate::report::{Table, fmt_count, fmt_us};

impl Report<'_> {
    pub(super) fn write_table(&self, out: &mut dyn Write) -> io::Result<()> {
        let fanout = self.fanout;
        let results = self.results;
        let count = fanout.receivers.count();
        let on = results
            .iface
            .as_ref()
            .map_or("the interface the routing table picks".to_owned(), |i| {
                format!("interface {i}")
            });
        let whose = if fanout.receivers.builtin() {
            format!(
                "{} (a thread and a socket each, in this process), {on}",
                receivers(count as usize).replacen(' ', " built-in ", 1)
            )
        } else {
            format!(
                "{} expected (msg listen), sent on {on}",
                receivers(count as usize).replacen(' ', " remote ", 1)
            )
        };
        let what = match (self.pingpong(), fanout.rate) {
            (true, None) => {
                "ping-pong: each ping answered by every receiver, the next sent once all have"
                    .to_owned()
            }
            (true, Some(rate)) => {
                format!("open loop: {rate} pings/s, each answered by every receiver")
            }
            (false, None) => "a one-way stream, as fast as the socket takes it".to_owned(),
            (false, Some(rate)) => format!("a one-way stream at {rate} msg/s"),
        };
        writeln!(
            out,
            "msg bench: one sender, the group {} with {whose}; {what}",
            results.group
        )?;
        let timeout = humantime::format_duration(fanout.timeout());
        let times = if self.pingpong() {
            format!("round-trip times in µs; an answer later than {timeout} is lost")
        } else {
            "what each receiver counted (its answer to a statistics request)".to_owned()
        };
        writeln!(
            out,
            "{} after {} warm-up; {} B messages; {times}",
            humantime::format_duration(fanout.duration),
            humantime::format_duration(fanout.warmup),
            fanout.size,
        )?;
        writeln!(out)?;
        let records = self.records();
        let mut header = vec![
            "receiver",
            "answers from",
            "sent",
            "received",
            "lost",
            "lost %",
        ];
        if self.pingpong() {
            header.extend(["late", "p50", "p90", "p99", "max"]);
        } else {
            header.extend(["reordered", "msg/s"]);
        }
        let cell = |v: Option<f64>| v.map_or("-".to_owned(), fmt_us);
        let rows = records
            .iter()
            .map(|r| {
                let mut row = vec![
                    r.receiver.to_string(),
                    r.addr.clone().unwrap_or_else(|| "(never heard)".to_owned()),
                    r.sent.to_string(),
                    if r.counted == Some(false) {
                        "-".to_owned()
                    } else {
                        r.received.to_string()
                    },
                    r.lost.to_string(),
                    format!("{:.2}", r.lost_percent),
                ];
                match (r.late, r.reordered) {
                    (Some(late), _) => row.extend([
                        late.to_string(),
                        cell(r.p50_us.flatten()),
                        cell(r.p90_us.flatten()),
                        cell(r.p99_us.flatten()),
                        cell(r.max_us.flatten()),
                    ]),
                    (None, reordered) => {
                        row.extend([reordered.unwrap_or(0).to_string(), fmt_count(r.msgs_per_s)]);
                    }
                }
                row
            })
            .collect();
        let table = Table {
            groups: vec![(String::new(), header.len())],
            header: header.into_iter().map(str::to_owned).collect(),
            rows,
        };
        // One group of columns, untitled: no line for it.
        write!(out, "{}", table.render().trim_start_matches('\n'))?;
        writeln!(out)?;
        for line in self.notes(&self.summary(&records)) {
            writeln!(out, "{line}")?;
        }
        out.flush()
    }

    /// The lines under the table: the spread, the slowest receiver, and
    /// what else the run saw.
    fn notes(&self, summary: &Summary) -> Vec<String> {
        let mut lines = Vec::new();
        let span = |lo: Option<f64>, hi: Option<f64>, spread: Option<f64>| match (lo, hi, spread) {
            (Some(lo), Some(hi), Some(spread)) => {
                format!(
                    "{} to {} µs (spread {})",
                    fmt_us(lo),
                    fmt_us(hi),
                    fmt_us(spread)
                )
            }
            _ => "none answered".to_owned(),
        };
        if self.pingpong() {
            lines.push(format!(
                "across the {} that answered: p50 {}; p99 {}",
                receivers(summary.answering),
                span(
                    summary.p50_us_min.flatten(),
                    summary.p50_us_max.flatten(),
                    summary.p50_us_spread.flatten()
                ),
                span(
                    summary.p99_us_min.flatten(),
                    summary.p99_us_max.flatten(),
                    summary.p99_us_spread.flatten()
                ),
            ));
        }
        lines.push(format!(
            "loss {:.2} % to {:.2} %; slowest: {}",
            summary.lost_percent_min,
            summary.lost_percent_max,
            summary
                .slowest
                .map_or("none".to_owned(), |id| format!("receiver {id}")),
        ));
        let expected = self.fanout.receivers.count() as usize;
        if summary.answering < expected {
            lines.push(format!(
                "{} of {expected} receivers answered nothing: never joined, unreachable, or \
                 answering from an address another receiver shares (two that answer from the \
                 group's port on one host look like one; msg listen answers from a port of its \
                 own)",
                expected - summary.answering
            ));
        }
        if self.results.receivers.len() > expected {
            lines.push(format!(
                "{} receivers answered, {expected} expected",
                self.results.receivers.len()
            ));
        }
        if let Some(overflow @ 1..) = summary.sender_overflow {
            lines.push(format!(
                "the sender's own receive buffer overflowed: {overflow} answers dropped there \
                 are counted as the receivers' loss (raise net.core.rmem_max)"
            ));
        }
        if summary.strangers > 0 {
            lines.push(format!(
                "{} answers came from addresses of no receiver of this run (another \
                 program's receivers of the group?), ignored",
                summary.strangers
            ));
        }
        lines
    }
}

/// `1 receiver`, `3 receivers`.
fn receivers(n: usize) -> String {
    if n == 1 {
        "1 receiver".to_owned()
    } else {
        format!("{n} receivers")
    }
}
