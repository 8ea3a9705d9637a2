//! The report, as functions of a [`Plan`] and its [`Results`]: the median
//! of each cell's runs, written as a table or JSON; and the latency
//! distributions behind them, drawn ([`plot()`]) and written out
//! ([`write_hgrm`]).
//!
//! A cell is a transport at a size, with or without authentication. Its runs are summarised by the median
//! run (by p50 in ping-pong, by messages per second in throughput), with the
//! range of that figure across runs beside it. Each transport is compared
//! with UDP (the first measured in [`Transport::ALL`]'s order): the
//! TCP/UDP ratio, and UNIX/UDP beside it, is the median of the ratios of
//! runs taken next to each other, so that machine noise that hit one pair
//! does not tilt the comparison.
//!
//! With both engines every cell is measured by each, in the same
//! interleaved run: a row per engine, and a column with what the tokio
//! runtime adds to the blocking engine's p50, in µs per round trip.
//!
//! - here: the figures every output shares (the median run, the spread,
//!   the ratios, which cells exist).
//! - `table`, `notes`: the table, and the lines above and below it.
//! - `json`: the JSON document, exactly its keys.
//! - `batch`: a batched run's columns and keys.
//! - `ends`: both ends' CPU time per message, and parallel flows, as
//!   keys and as the table under the main one.
//! - `text`: the text table and its number formats.
//! - `plot`, `hgrm`: the latency distributions, drawn and written out.
//! - [`clients`]: the report of the `clients` load.
//! - [`intervals`]: `--interval`'s lines, text or JSON Lines.
//! - [`multicast`]: the report of one sender and N receivers of a group.
//! - [`connect`]: the report of the `connect` mode.

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::engine::Outcome;
use crate::error::Error;
use crate::impair::Impairment;
use crate::meta::Meta;
use crate::pin::Placement;
use crate::plan::{Direction, Engine, Mode, Plan};
use crate::run::{Measured, Results};
use msg_net::Transport;

mod batch;
pub mod clients;
pub mod connect;
mod ends;
pub(crate) mod hgrm;
pub mod intervals;
mod json;
pub mod multicast;
mod notes;
pub(crate) mod plot;
mod table;
mod text;

pub(crate) use text::{Table, fmt_count, fmt_us};

/// Writes the report of `results` as a table, with its notes, to `out`.
///
/// # Errors
///
/// When `out` cannot be written.
pub fn write_table(out: &mut dyn Write, plan: &Plan, results: &Results) -> io::Result<()> {
    Report::new(plan, results).write_table(out)
}

/// Writes the report of `results` as one JSON document,
/// `{"meta":{...},"results":[...]}` (with `"impairments"` under
/// impairment), and a newline, to `out`.
///
/// # Errors
///
/// When `out` cannot be written.
pub fn write_json(
    out: &mut dyn Write,
    meta: &Meta,
    plan: &Plan,
    results: &Results,
) -> io::Result<()> {
    Report::new(plan, results).write_json(out, Some(meta))
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
    /// Flows at once.
    parallel: u32,
    /// Which way the streams went.
    direction: Direction,
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
            parallel: plan.parallel,
            direction: plan.direction,
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

/// Rounds to a tenth of a message per second (or of a millisecond): finer
/// digits are noise on any machine.
pub(crate) fn tenth(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

/// `ns` in microseconds, rounded to hundredths: a latency as the JSON
/// gives it. Not to tenths: one run's p50 repeats to about 0.02 µs, and a
/// tenth is over 1 % of a Unix socket's 8 µs round trip, too coarse for
/// medians compared at 5 % (bench/compare.sh against bench/floor.c, which
/// prints hundredths too). Finer would be below the histogram's own
/// resolution (three significant digits: 8 ns at 10 µs).
pub(crate) fn json_us(ns: u64) -> f64 {
    hundredth(us(ns))
}

/// Rounds to hundredths (a latency in µs, a percentage).
pub(crate) fn hundredth(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

impl Report<'_> {
    /// Flows at once: `parallel`, each two with `--bidir` (a forward and a
    /// reverse connection).
    fn flows(&self) -> u32 {
        match self.direction {
            Direction::Bidir => 2 * self.parallel,
            _ => self.parallel,
        }
    }

    /// The impairment a cell was measured under, if any.
    fn impairment(&self, cell: &Measured) -> Option<&Impairment> {
        cell.impairment.and_then(|i| self.impairments.get(i))
    }

    /// What the ratio columns compare the other transports with: the
    /// first of `transports` in [`Transport::ALL`]'s order (UDP, when it
    /// is measured), whatever order the plan names them in; `None` for a
    /// single transport, which has nothing to compare with.
    fn base(transports: &[Transport]) -> Option<Transport> {
        if transports.len() < 2 {
            return None;
        }
        Transport::ALL
            .into_iter()
            .find(|t| transports.contains(t))
            .or(transports.first().copied())
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
    /// Asked of the transport's capabilities: what it loses is measured
    /// where it can lose, what the kernel retransmitted where it reports
    /// that.
    fn impaired_columns(&self, transport: Transport) -> &'static [&'static str] {
        let caps = transport.caps();
        match (self.impairments.is_empty(), self.mode) {
            (true, _) => &[],
            (false, Mode::Pingpong) if !caps.reliable => &["lost %", "per pkt %"],
            (false, Mode::Throughput) if !caps.reliable => &["overflow", "per pkt %"],
            (false, _) if caps.tcp_info => &["retrans", "rtt", "rto"],
            (false, _) => &[],
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

    /// The median of `other / base` over runs taken next to each other.
    fn ratio(&self, base: &[Outcome], other: &[Outcome]) -> Option<f64> {
        paired_ratio(self.mode, base, other)
    }
}

/// The median of `other / base` over runs taken next to each other (run
/// 1 with run 1, ...): what a ratio column (`tcp/udp p50`) shows, and
/// not the ratio of the two medians, from which it can differ (the
/// README says which; audit, round nine).
fn paired_ratio(mode: Mode, base: &[Outcome], other: &[Outcome]) -> Option<f64> {
    let ratios = base
        .iter()
        .zip(other)
        .filter(|(b, o)| {
            mode == Mode::Throughput || !(b.latency.is_empty() || o.latency.is_empty())
        })
        .map(|(b, o)| key(mode, o) / key(mode, b))
        .collect();
    median(ratios)
}

/// Where built-in listeners of `transports` and their clients meet, in
/// words: `on loopback` for the IP transports, `over Unix sockets` for the
/// others (addressed by paths, they never reach a network interface).
pub(crate) fn between(transports: &[Transport]) -> &'static str {
    let inet = transports.iter().filter(|t| t.is_inet()).count();
    match (inet, transports.len() - inet) {
        (_, 0) => "on loopback",
        (0, _) => "over Unix sockets",
        _ => "on loopback and over Unix sockets",
    }
}

/// What alternates within each run, in the title: `UDP and TCP
/// interleaved`, `UDP, TCP and UNIX interleaved`; one alone, `TCP alone`.
pub(crate) fn interleaved(transports: &[Transport]) -> String {
    let names: Vec<String> = transports.iter().map(|t| t.name().to_uppercase()).collect();
    match &names[..] {
        [one] => format!("{one} alone"),
        [init @ .., last] => format!("{} and {last} interleaved", init.join(", ")),
        [] => String::new(),
    }
}

fn percent(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 * 100.0 / whole as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_latency_in_json_keeps_hundredths_of_a_microsecond() {
        assert_eq!(json_us(8_934), 8.93);
        assert_eq!(json_us(9_466), 9.47);
        assert_eq!(json_us(11_000), 11.0);
        // What a tenth would have made one figure: 1.1 % apart at 9 µs.
        assert_ne!(json_us(9_351), json_us(9_449));
    }

    /// The ratio column is the median of each pair of runs' ratio, as
    /// the README says: here 1.1 (of 3, 1 and 1.1), where the ratio of
    /// the medians (20 µs over 20 µs) would be 1.
    #[test]
    fn a_ratio_is_the_median_of_the_paired_runs_ratios() {
        let runs = |p50s: &[u64]| -> Vec<Outcome> {
            p50s.iter()
                .map(|&us| {
                    let mut run = Outcome::new();
                    run.record(us * 1000);
                    run
                })
                .collect()
        };
        let udp = runs(&[10, 20, 30]);
        let tcp = runs(&[30, 20, 33]);
        let ratio = paired_ratio(Mode::Pingpong, &udp, &tcp).unwrap();
        assert!((ratio - 1.1).abs() < 0.01, "{ratio}");
    }

    #[test]
    fn medians() {
        assert_eq!(median(vec![]), None);
        assert_eq!(median(vec![3.0]), Some(3.0));
        assert_eq!(median(vec![5.0, 1.0, 3.0]), Some(3.0));
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(vec![f64::NAN, 2.0]), Some(2.0));
    }
}
