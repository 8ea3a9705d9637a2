//! `--interval`'s output, written as each interval ends: a line of text
//! per interval before the table, or, with `--json`, JSON Lines as
//! iperf3's `--json-stream` writes them: a `start` object (the `meta` and
//! the plan), an `interval` object per interval of each run, and an `end`
//! object holding what `--json` alone prints (the cells, from the median
//! runs).

use std::io::{self, Write};

use serde::Serialize;

use super::{Report, fmt_count, fmt_us, json_us, tenth, us};
use crate::interval::{Interval, IntervalOf};
use crate::meta::Meta;
use crate::plan::{Direction, Plan};
use crate::run::Results;

/// What a run is, as the `start` object tells it: the plan of a ping-pong
/// or a stream ([`Plan`]), or of the connect mode
/// ([`Cycles`](crate::connect::Cycles)).
#[derive(Debug, Serialize)]
pub struct Shape {
    transports: Vec<&'static str>,
    sizes: Vec<usize>,
    mode: &'static str,
    runs: u32,
    warmup_s: f64,
    duration_s: f64,
    interval_s: Option<f64>,
    /// Flows at once (absent from the connect mode's).
    #[serde(skip_serializing_if = "Option::is_none")]
    parallel: Option<u32>,
}

impl From<&Plan> for Shape {
    fn from(plan: &Plan) -> Self {
        Self {
            transports: plan.transports.iter().map(|t| t.name()).collect(),
            sizes: plan.sizes.clone(),
            mode: plan.mode.name(),
            runs: plan.runs,
            warmup_s: plan.warmup.as_secs_f64(),
            duration_s: plan.duration.as_secs_f64(),
            interval_s: plan.interval.map(|i| i.as_secs_f64()),
            parallel: Some(plan.parallel),
        }
    }
}

impl From<&crate::connect::Cycles> for Shape {
    fn from(plan: &crate::connect::Cycles) -> Self {
        Self {
            transports: plan.transports.iter().map(|t| t.name()).collect(),
            sizes: vec![plan.size],
            mode: "connect",
            runs: plan.runs,
            warmup_s: plan.warmup.as_secs_f64(),
            duration_s: plan.duration.as_secs_f64(),
            interval_s: plan.interval.map(|i| i.as_secs_f64()),
            parallel: None,
        }
    }
}

/// Writes the `start` object: `{"type":"start","meta":{...},...}`, then
/// the run's [`Shape`].
///
/// # Errors
///
/// When `out` cannot be written.
pub fn write_start(out: &mut dyn Write, meta: &Meta, shape: &Shape) -> io::Result<()> {
    #[derive(Serialize)]
    struct Start<'a> {
        r#type: &'static str,
        meta: &'a Meta,
        #[serde(flatten)]
        shape: &'a Shape,
    }
    line(
        out,
        &Start {
            r#type: "start",
            meta,
            shape,
        },
    )
}

/// The `interval` object: exactly these keys.
#[derive(Debug, Serialize)]
struct Json<'a> {
    r#type: &'static str,
    transport: &'static str,
    io: &'static str,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    authenticated: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    impairment: Option<&'a str>,
    size: usize,
    run: u32,
    /// Of parallel flows, which one (from 1).
    #[serde(skip_serializing_if = "Option::is_none")]
    flow: Option<u32>,
    /// `forward`, or `reverse` (the listener sends).
    direction: &'static str,
    /// Seconds from the start of the run's measurement.
    t0: f64,
    t1: f64,
    /// Null in reverse: the listener says what it sent at the end alone.
    sent: Option<u64>,
    /// Null for a forward stream: its listener counts at the end alone.
    received: Option<u64>,
    lost: Option<u64>,
    /// Answered (ping-pong) or sent (a stream) per second.
    msgs_per_s: f64,
    bits_per_s: f64,
    p50_us: Option<f64>,
    p90_us: Option<f64>,
    p99_us: Option<f64>,
    max_us: Option<f64>,
    /// Over TCP, the kernel's view at the interval's end.
    #[serde(skip_serializing_if = "Option::is_none")]
    tcp: Option<TcpJson>,
}

#[derive(Debug, Serialize)]
struct TcpJson {
    cwnd: u32,
    rtt_us: f64,
    retrans: u32,
}

/// Seconds, to the microsecond.
fn secs(d: std::time::Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e6
}

/// Writes one `interval` object as a line.
///
/// # Errors
///
/// When `out` cannot be written.
pub fn write_interval_json(
    out: &mut dyn Write,
    of: &IntervalOf,
    interval: &Interval,
) -> io::Result<()> {
    let latency = &interval.latency;
    let quantile = |q: f64| (!latency.is_empty()).then(|| json_us(latency.value_at_quantile(q)));
    let msgs_per_s = interval.msgs_per_s();
    let forward = of.direction == Direction::Forward;
    line(
        out,
        &Json {
            r#type: "interval",
            transport: of.transport.name(),
            io: of.engine.name(),
            authenticated: of.authenticated,
            impairment: of.impairment.as_deref(),
            size: of.size,
            run: of.run,
            flow: of.flow,
            direction: of.direction.name(),
            t0: secs(interval.t0),
            t1: secs(interval.t1),
            sent: forward.then_some(interval.sent),
            received: interval.received,
            lost: interval
                .received
                .filter(|_| forward)
                .map(|r| interval.sent.saturating_sub(r)),
            msgs_per_s: tenth(msgs_per_s),
            bits_per_s: (msgs_per_s * of.size as f64 * 8.0).round(),
            p50_us: quantile(0.5),
            p90_us: quantile(0.9),
            p99_us: quantile(0.99),
            max_us: (!latency.is_empty()).then(|| json_us(latency.max())),
            tcp: interval.tcp.map(|tcp| TcpJson {
                cwnd: tcp.cwnd,
                rtt_us: tenth(tcp.rtt.as_secs_f64() * 1e6),
                retrans: tcp.retrans,
            }),
        },
    )
}

/// Writes one interval as a line of text: `udp 64 B run 1/3  0.00-0.10 s
/// ...`.
///
/// # Errors
///
/// When `out` cannot be written.
pub fn write_interval_text(
    out: &mut dyn Write,
    of: &IntervalOf,
    interval: &Interval,
) -> io::Result<()> {
    let mut text = format!("{}", of.transport);
    if of.authenticated {
        text.push_str("+auth");
    }
    text.push_str(&format!(
        " {} B {} run {}/{}",
        of.size,
        of.engine.name(),
        of.run,
        of.runs
    ));
    if let Some(flow) = of.flow {
        text.push_str(&format!(" flow {flow}"));
    }
    if let Some(impairment) = &of.impairment {
        text.push_str(&format!(" [{impairment}]"));
    }
    text.push_str(&format!(
        "  {:.2}-{:.2} s",
        interval.t0.as_secs_f64(),
        interval.t1.as_secs_f64(),
    ));
    let rate = interval.msgs_per_s();
    let gbit = |rate: f64| {
        format!(
            "  {} msg/s  {:.2} Gbit/s",
            fmt_count(rate),
            rate * of.size as f64 * 8.0 / 1e9
        )
    };
    match interval.received {
        Some(received) if of.direction == Direction::Reverse => {
            text.push_str(&format!("  received {received}{}", gbit(rate)));
        }
        Some(received) => {
            text.push_str(&format!("  sent {}", interval.sent));
            let latency = &interval.latency;
            text.push_str(&format!(
                "  lost {}",
                interval.sent.saturating_sub(received)
            ));
            if !latency.is_empty() {
                text.push_str(&format!(
                    "  p50 {} µs  p99 {} µs  max {} µs",
                    fmt_us(us(latency.value_at_quantile(0.5))),
                    fmt_us(us(latency.value_at_quantile(0.99))),
                    fmt_us(us(latency.max()))
                ));
            }
            text.push_str(&format!("  {} msg/s", fmt_count(rate)));
        }
        None => text.push_str(&format!("  sent {}{}", interval.sent, gbit(rate))),
    }
    if let Some(tcp) = interval.tcp {
        text.push_str(&format!(
            "  cwnd {}  rtt {} µs  retrans {}",
            tcp.cwnd,
            fmt_us(tcp.rtt.as_secs_f64() * 1e6),
            tcp.retrans
        ));
    }
    writeln!(out, "{text}")?;
    out.flush()
}

/// Writes the `end` object: `{"type":"end","results":[...]}`, the cells
/// as `--json` alone gives them.
///
/// # Errors
///
/// When `out` cannot be written.
pub fn write_end(out: &mut dyn Write, plan: &Plan, results: &Results) -> io::Result<()> {
    Report::new(plan, results).write_json(out, None)
}

fn line(mut out: &mut dyn Write, value: &impl Serialize) -> io::Result<()> {
    serde_json::to_writer(&mut out, value)?;
    writeln!(out)?;
    out.flush()
}
