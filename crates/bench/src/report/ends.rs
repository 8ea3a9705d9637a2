//! Both ends of a run: what each side spent in CPU time per message, and
//! the flows of a parallel run, as JSON keys and as the table under the
//! main one.

use serde::Serialize;

use super::text::Table;
use super::{Report, summarise};
use crate::cpu::{Cpu, Usage};
use crate::engine::Outcome;
use crate::settings::Direction;

/// Rounds µs per message to thousandths: a small message costs a few.
fn thousandth(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

/// One side's CPU time per message, in the JSON.
#[derive(Debug, Serialize)]
pub(crate) struct SideJson {
    user_us_per_msg: f64,
    system_us_per_msg: f64,
}

impl SideJson {
    fn new(usage: &Usage, count: u64) -> Option<Self> {
        let (user, system) = usage.per_message_us(count)?;
        Some(Self {
            user_us_per_msg: thousandth(user),
            system_us_per_msg: thousandth(system),
        })
    }
}

/// The messages each side's CPU time is counted per: the sender's per
/// message sent, the receiver's per message received; `(client,
/// listener)`.
fn per_side(run: &Outcome) -> (u64, u64) {
    match run.direction {
        Direction::Forward => (run.sent, run.received),
        Direction::Reverse => (run.received, run.sent),
        // Each side sends on one connection and receives on the other:
        // its messages are those of both.
        Direction::Bidir => run
            .flows
            .iter()
            .map(per_side)
            .fold((0, 0), |(c, l), (fc, fl)| (c + fc, l + fl)),
    }
}

/// `"cpu"`: the client's time per message it sent (in reverse, received),
/// and the built-in listener's per message it received (in reverse,
/// sent; null against a remote one).
#[derive(Debug, Serialize)]
pub(crate) struct CpuJson {
    client: Option<SideJson>,
    listener: Option<SideJson>,
}

impl CpuJson {
    pub(crate) fn new(cpu: &Cpu, run: &Outcome, builtin: bool) -> Self {
        let (client, listener) = per_side(run);
        Self {
            client: SideJson::new(&cpu.client, client),
            listener: builtin
                .then(|| SideJson::new(&cpu.listener(), listener))
                .flatten(),
        }
    }
}

/// One flow of a parallel run, in the JSON.
#[derive(Debug, Serialize)]
pub(crate) struct FlowJson {
    flow: usize,
    direction: &'static str,
    sent: u64,
    received: u64,
    lost: u64,
    reordered: u64,
    msgs_per_s: f64,
    bits_per_s: f64,
    /// Its own thread's CPU time (the blocking engine's); null where the
    /// flows share one thread (tokio).
    client_cpu: Option<SideJson>,
}

/// The flows of `run`, numbered from 1.
pub(crate) fn flows_json(run: &Outcome, size: usize) -> Vec<FlowJson> {
    run.flows
        .iter()
        .zip(1..)
        .map(|(flow, number)| FlowJson {
            flow: number,
            direction: flow.direction.name(),
            sent: flow.sent,
            received: flow.received,
            lost: flow.lost(),
            reordered: flow.reordered,
            msgs_per_s: super::tenth(flow.msgs_per_s()),
            bits_per_s: (flow.msgs_per_s() * size as f64 * 8.0).round(),
            client_cpu: flow
                .cpu
                .and_then(|cpu| SideJson::new(&cpu.client, per_side(flow).0)),
        })
        .collect()
}

impl Report<'_> {
    /// The table of CPU time per message, a row per cell (from its median
    /// run), and the line that says how it was read; nothing where no run
    /// could read it.
    pub(super) fn cpu_table(&self) -> Option<(String, Table)> {
        let engines = self.engines().len();
        let mut table = Table {
            groups: vec![
                (String::new(), 1),
                ("client".to_owned(), 2),
                ("listener".to_owned(), 2),
            ],
            header: ["cpu µs/msg", "user", "system", "user", "system"]
                .map(str::to_owned)
                .to_vec(),
            rows: Vec::new(),
        };
        for cell in self.measured {
            let Ok(runs) = &cell.runs else { continue };
            let Some(summary) = summarise(self.mode, runs) else {
                continue;
            };
            let run = summary.median;
            let Some(cpu) = run.cpu else { continue };
            let mut label = format!("{} {}", cell.transport, cell.size);
            if cell.authenticated {
                label.push_str(" auth");
            }
            if engines == 2 {
                label = format!("{label} {}", cell.engine);
            }
            if let Some(imp) = self.impairment(cell) {
                label = format!("{label} {imp}");
            }
            let side = |usage: &Usage, count: u64| match usage.per_message_us(count) {
                Some((user, system)) => [format!("{user:.2}"), format!("{system:.2}")],
                None => ["-".to_owned(), "-".to_owned()],
            };
            let mut row = vec![label];
            let (client, listener) = per_side(run);
            row.extend(side(&cpu.client, client));
            if self.builtin {
                row.extend(side(&cpu.listener(), listener));
            } else {
                row.extend(["n/a".to_owned(), "n/a".to_owned()]);
            }
            table.rows.push(row);
        }
        if table.rows.is_empty() {
            return None;
        }
        let (sent, received) = match self.direction {
            Direction::Forward => ("sent", "received"),
            Direction::Reverse => ("received", "sent"),
            Direction::Bidir => ("sent or received", "received or sent"),
        };
        let listener = if self.builtin {
            format!(
                "the built-in listener's, per message it {received}: the process's time less \
                 the client's"
            )
        } else {
            "the remote listener's is not known here (n/a)".to_owned()
        };
        let note = format!(
            "CPU time per message over the measurement, in µs: the client's thread(s), per \
             message {sent} (getrusage RUSAGE_THREAD); {listener}"
        );
        Some((note, table))
    }
}
