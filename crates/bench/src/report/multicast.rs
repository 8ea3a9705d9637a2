//! The report of a multicast run: a row per receiver, then the spread
//! across them; or one JSON document, an object per receiver in
//! `"results"` and the spread in `"summary"`, after the `"meta"` every
//! `--json` opens with.

use std::io::{self, Write};

use serde::Serialize;

use super::{Table, fmt_count, fmt_us, percent, tenth, tenth_percent, us};
use crate::meta::Meta;
use crate::multicast::{Fanout, Receiver, Results};
use crate::plan::Mode;

/// Writes the run's report as a table, with the spread below it, to
/// `out`.
///
/// # Errors
///
/// When `out` cannot be written.
pub fn write_table(out: &mut dyn Write, fanout: &Fanout, results: &Results) -> io::Result<()> {
    Report::new(fanout, results).write_table(out)
}

/// Writes the run's report as one JSON document,
/// `{"meta":{...},"results":[{...},...],"summary":{...}}`, and a newline,
/// to `out`.
///
/// # Errors
///
/// When `out` cannot be written.
pub fn write_json(
    out: &mut dyn Write,
    meta: &Meta,
    fanout: &Fanout,
    results: &Results,
) -> io::Result<()> {
    Report::new(fanout, results).write_json(out, meta)
}

/// One receiver's figures, as the table and the JSON show them.
#[derive(Debug, Serialize)]
struct Record {
    mode: &'static str,
    group: String,
    receiver: u32,
    /// Where it answered from; null for a remote receiver never heard
    /// from.
    addr: Option<String>,
    /// `built-in` or `remote`.
    listener: &'static str,
    size: usize,
    sent: u64,
    received: u64,
    lost: u64,
    lost_percent: f64,
    /// Ping-pong: answers after the timeout (among the lost).
    #[serde(skip_serializing_if = "Option::is_none")]
    late: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    samples: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    p50_us: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    p90_us: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    p99_us: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_us: Option<f64>,
    /// Throughput: arrivals after a later discard.
    #[serde(skip_serializing_if = "Option::is_none")]
    reordered: Option<u64>,
    /// Throughput: whether the receiver answered both statistics
    /// requests (false: its count is unknown, shown as 0).
    #[serde(skip_serializing_if = "Option::is_none")]
    counted: Option<bool>,
    msgs_per_s: f64,
}

/// The spread across receivers: the figures every receiver has, their
/// smallest and largest, and the receiver that fared worst.
#[derive(Debug, Serialize)]
struct Summary {
    mode: &'static str,
    group: String,
    iface: Option<String>,
    listener: &'static str,
    /// Receivers started, or expected.
    receivers: u32,
    /// Of the receivers reported, those that answered anything.
    answering: usize,
    size: usize,
    sent: u64,
    elapsed_ms: f64,
    lost_percent_min: f64,
    lost_percent_max: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    p50_us_min: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    p50_us_max: Option<f64>,
    /// p50_us_max − p50_us_min.
    #[serde(skip_serializing_if = "Option::is_none")]
    p50_us_spread: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    p99_us_min: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    p99_us_max: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    p99_us_spread: Option<f64>,
    /// The receiver with the highest loss, and among equals the highest
    /// p99 (throughput: the lowest rate).
    slowest: Option<u32>,
    /// Answers the kernel dropped at the sender, its buffer full.
    sender_overflow: Option<u64>,
    /// Answers from addresses of no receiver of this run.
    strangers: u64,
}

/// Everything the report says.
#[derive(Debug)]
struct Report<'a> {
    fanout: &'a Fanout,
    results: &'a Results,
}

impl<'a> Report<'a> {
    fn new(fanout: &'a Fanout, results: &'a Results) -> Self {
        Self { fanout, results }
    }

    fn pingpong(&self) -> bool {
        self.fanout.mode == Mode::Pingpong
    }

    fn listener(&self) -> &'static str {
        if self.fanout.receivers.builtin() {
            "built-in"
        } else {
            "remote"
        }
    }

    fn quantile(receiver: &Receiver, q: f64) -> Option<f64> {
        let latency = &receiver.latency;
        (!latency.is_empty()).then(|| tenth(us(latency.value_at_quantile(q))))
    }

    fn record(&self, receiver: &Receiver) -> Record {
        let sent = self.results.sent;
        let lost = sent.saturating_sub(receiver.received);
        let pingpong = self.pingpong();
        let latency = |q| pingpong.then(|| Self::quantile(receiver, q)).flatten();
        Record {
            mode: self.fanout.mode.name(),
            group: self.results.group.to_string(),
            receiver: receiver.id,
            addr: receiver.addr.map(|a| a.to_string()),
            listener: self.listener(),
            size: self.fanout.size,
            sent,
            received: receiver.received,
            lost,
            lost_percent: tenth_percent(percent(lost, sent)),
            late: pingpong.then_some(receiver.late),
            samples: pingpong.then(|| receiver.latency.len()),
            p50_us: latency(0.5),
            p90_us: latency(0.9),
            p99_us: latency(0.99),
            max_us: pingpong
                .then(|| (!receiver.latency.is_empty()).then(|| tenth(us(receiver.latency.max()))))
                .flatten(),
            reordered: (!pingpong).then_some(receiver.reordered),
            counted: (!pingpong).then_some(receiver.counted),
            msgs_per_s: tenth(
                receiver.received as f64 / self.results.elapsed.as_secs_f64().max(1e-9),
            ),
        }
    }

    fn summary(&self, records: &[Record]) -> Summary {
        let range = |get: fn(&Record) -> Option<f64>| {
            let values: Vec<f64> = records.iter().filter_map(get).collect();
            let min = values.iter().copied().reduce(f64::min);
            let max = values.iter().copied().reduce(f64::max);
            (min, max, min.zip(max).map(|(lo, hi)| tenth(hi - lo)))
        };
        let (p50_min, p50_max, p50_spread) = range(|r| r.p50_us);
        let (p99_min, p99_max, p99_spread) = range(|r| r.p99_us);
        let (lost_min, lost_max, _) = range(|r| Some(r.lost_percent));
        // Worst first: most lost, then the slowest tail (or the lowest
        // rate).
        let slowest = records
            .iter()
            .max_by(|a, b| {
                a.lost
                    .cmp(&b.lost)
                    .then(a.p99_us.unwrap_or(0.0).total_cmp(&b.p99_us.unwrap_or(0.0)))
                    .then(b.msgs_per_s.total_cmp(&a.msgs_per_s))
            })
            .map(|r| r.receiver);
        Summary {
            mode: self.fanout.mode.name(),
            group: self.results.group.to_string(),
            iface: self.results.iface.as_ref().map(ToString::to_string),
            listener: self.listener(),
            receivers: self.fanout.receivers.count(),
            answering: records.iter().filter(|r| r.received > 0).count(),
            size: self.fanout.size,
            sent: self.results.sent,
            elapsed_ms: tenth(self.results.elapsed.as_secs_f64() * 1e3),
            lost_percent_min: lost_min.unwrap_or(0.0),
            lost_percent_max: lost_max.unwrap_or(0.0),
            p50_us_min: p50_min,
            p50_us_max: p50_max,
            p50_us_spread: p50_spread,
            p99_us_min: p99_min,
            p99_us_max: p99_max,
            p99_us_spread: p99_spread,
            slowest,
            sender_overflow: self.results.sender_overflow,
            strangers: self.results.strangers,
        }
    }

    fn records(&self) -> Vec<Record> {
        self.results
            .receivers
            .iter()
            .map(|r| self.record(r))
            .collect()
    }

    fn write_json(&self, mut out: &mut dyn Write, meta: &Meta) -> io::Result<()> {
        #[derive(Serialize)]
        struct Document<'a> {
            meta: &'a Meta,
            results: Vec<Record>,
            summary: Summary,
        }
        let results = self.records();
        let summary = self.summary(&results);
        serde_json::to_writer(
            &mut out,
            &Document {
                meta,
                results,
                summary,
            },
        )?;
        writeln!(out)?;
        out.flush()
    }

    fn write_table(&self, out: &mut dyn Write) -> io::Result<()> {
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
                        cell(r.p50_us),
                        cell(r.p90_us),
                        cell(r.p99_us),
                        cell(r.max_us),
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
                    summary.p50_us_min,
                    summary.p50_us_max,
                    summary.p50_us_spread
                ),
                span(
                    summary.p99_us_min,
                    summary.p99_us_max,
                    summary.p99_us_spread
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
                 answering from an address another receiver shares (msg listen answers from \
                 the group's port: two on one host look like one)",
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
