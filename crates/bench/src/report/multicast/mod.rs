//! The report of a multicast run: a row per receiver, then the spread
//! across them; or one JSON document, an object per receiver in
//! `"results"` and the spread in `"summary"`, after the `"meta"` every
//! `--json` opens with.
//!
//! Here the figures both share (a `Record` per receiver, the
//! `Summary` across them) and the JSON; `table` words them as text.

use std::io::{self, Write};

use serde::Serialize;

use super::{hundredth, json_us, percent, tenth};
use crate::meta::Meta;
use crate::multicast::{Fanout, Receiver, Results};
use crate::plan::Mode;

mod table;

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
    p50_us: Latency,
    #[serde(skip_serializing_if = "Option::is_none")]
    p90_us: Latency,
    #[serde(skip_serializing_if = "Option::is_none")]
    p99_us: Latency,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_us: Latency,
    /// Throughput: arrivals after a later discard.
    #[serde(skip_serializing_if = "Option::is_none")]
    reordered: Option<u64>,
    /// Throughput: whether the receiver answered both statistics
    /// requests (false: its count is unknown, shown as 0).
    #[serde(skip_serializing_if = "Option::is_none")]
    counted: Option<bool>,
    msgs_per_s: f64,
}

/// A ping-pong's figure in µs: absent from a throughput run's JSON, and
/// null where no answer came to measure (audit, round eleven: the keys
/// were dropped then, so a reader of a run nobody answered found no
/// `p50_us` at all rather than a null one).
type Latency = Option<Option<f64>>;

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
    p50_us_min: Latency,
    #[serde(skip_serializing_if = "Option::is_none")]
    p50_us_max: Latency,
    /// p50_us_max − p50_us_min.
    #[serde(skip_serializing_if = "Option::is_none")]
    p50_us_spread: Latency,
    #[serde(skip_serializing_if = "Option::is_none")]
    p99_us_min: Latency,
    #[serde(skip_serializing_if = "Option::is_none")]
    p99_us_max: Latency,
    #[serde(skip_serializing_if = "Option::is_none")]
    p99_us_spread: Latency,
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
        (!latency.is_empty()).then(|| json_us(latency.value_at_quantile(q)))
    }

    fn record(&self, receiver: &Receiver) -> Record {
        let sent = self.results.sent;
        let lost = sent.saturating_sub(receiver.received);
        let pingpong = self.pingpong();
        let latency = |q| pingpong.then(|| Self::quantile(receiver, q));
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
            lost_percent: hundredth(percent(lost, sent)),
            late: pingpong.then_some(receiver.late),
            samples: pingpong.then(|| receiver.latency.len()),
            p50_us: latency(0.5),
            p90_us: latency(0.9),
            p99_us: latency(0.99),
            max_us: pingpong
                .then(|| (!receiver.latency.is_empty()).then(|| json_us(receiver.latency.max()))),
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
        // Each a ping-pong's (null when none answered), absent otherwise.
        let pingpong = |get: fn(&Record) -> Option<f64>| {
            let (min, max, spread) = range(get);
            let only = |value| self.pingpong().then_some(value);
            (only(min), only(max), only(spread))
        };
        let (p50_min, p50_max, p50_spread) = pingpong(|r| r.p50_us.flatten());
        let (p99_min, p99_max, p99_spread) = pingpong(|r| r.p99_us.flatten());
        let (lost_min, lost_max, _) = range(|r| Some(r.lost_percent));
        // Worst first: most lost, then the slowest tail (or the lowest
        // rate).
        let slowest = records
            .iter()
            .max_by(|a, b| {
                a.lost
                    .cmp(&b.lost)
                    .then(
                        a.p99_us
                            .flatten()
                            .unwrap_or(0.0)
                            .total_cmp(&b.p99_us.flatten().unwrap_or(0.0)),
                    )
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
}
