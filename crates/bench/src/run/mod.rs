//! Plan -> run -> results: the listeners started, the interleaved
//! schedule (U T U T ...) carried out over the engines, the cells filled.
//!
//! Runs alternate between the transports (and engines) so that each TCP
//! run sits next to a UDP run taken under the same machine noise; the
//! report takes the median run and shows the spread. Where each run goes
//! (the listeners started, a remote one's addresses) is `targets`.

use std::time::Duration;

use tracing::info;

use msg_net::{BusyPoll, Transport};

use crate::engine::{Outcome, blocking, tokio as tokio_engine};
use crate::error::Error;
use crate::flows;
use crate::interval::{Interval, IntervalOf};
use crate::plan::{Engine, Plan};
use crate::settings::{Direction, Oversize, Settings, Target};

pub(crate) mod targets;

use targets::{Listeners, describe, targets};

/// Told how the measurement goes, between runs (never from inside one):
/// the binary draws a progress bar with it.
pub trait Progress {
    /// Before the first run: how many runs there will be, and how long
    /// each takes (warm-up and measurement).
    fn start(&mut self, runs: u64, each: Duration);
    /// Before each run: which one, in words (`udp 64 B, run 1/3`).
    fn run(&mut self, what: &str);
    /// After each run.
    fn done(&mut self);

    /// An interval of a run is over (with [`Plan::interval`]): told as
    /// the run goes, between two round trips.
    fn interval(&mut self, _of: &IntervalOf, _interval: &Interval) {}
}

/// No progress to show.
impl Progress for () {
    fn start(&mut self, _runs: u64, _each: Duration) {}
    fn run(&mut self, _what: &str) {}
    fn done(&mut self) {}
}

/// What a run measured: a cell per transport, size, engine, secret and
/// impairment.
#[derive(Debug)]
pub struct Results {
    /// The cells, in the order they were measured.
    pub measured: Vec<Measured>,
    /// Where the listeners were, in words: `against HOST:PORT`, or the
    /// built-in listeners' addresses.
    pub listeners: String,
}

/// One cell of the comparison: a transport at a size, over all its runs.
#[derive(Debug)]
pub struct Measured {
    /// The transport.
    pub transport: Transport,
    /// The engine that measured it (client and built-in listener).
    pub engine: Engine,
    /// Every message tagged with the secret.
    pub authenticated: bool,
    /// The payload size.
    pub size: usize,
    /// The runs in the order they were taken, or why the size cannot go
    /// over this transport at all.
    pub runs: Result<Vec<Outcome>, Oversize>,
    /// Which impairment, if any (an index into [`Plan::impairments`]).
    pub impairment: Option<usize>,
}

impl Results {
    /// The cells to which nothing came back in any run: every message sent
    /// and none answered (ping-pong) or counted (throughput). Such a cell
    /// measured nothing; the report shows it as "all lost".
    pub fn unanswered(&self) -> impl Iterator<Item = &Measured> {
        self.measured.iter().filter(|cell| {
            cell.runs.as_ref().is_ok_and(|runs| {
                !runs.is_empty() && runs.iter().all(|run| run.sent > 0 && run.received == 0)
            })
        })
    }
}

/// Carries out `plan`: starts the built-in listeners (unless the plan
/// names a remote one), measures every cell, under each impairment in
/// turn, and stops the listeners. The calling thread runs the client, and
/// is pinned where the plan's placement says.
///
/// # Errors
///
/// A plan that [does not check](Plan::check); an impairment the kernel
/// cannot make; listeners that cannot start; a run that fails (the
/// listener cannot be reached, closes the connection, answers what was not
/// asked, or over TCP does not answer in time).
pub fn run(plan: &Plan, progress: &mut dyn Progress) -> Result<Results, Error> {
    plan.check()?;
    // Every impairment is tried before anything is measured, so that one
    // the kernel cannot do stops the run at once.
    for impairment in &plan.impairments {
        impairment.apply()?;
        impairment.clear()?;
    }
    // With a secret, the built-in listeners measure each transport with and
    // without it, side by side; a remote listener with a secret accepts
    // only authenticated peers.
    let variants: Vec<bool> = match (plan.builtin(), plan.auth.is_some()) {
        (true, true) => vec![false, true],
        (_, authenticated) => vec![authenticated],
    };
    let streams: Vec<(Transport, bool)> = variants
        .iter()
        .flat_map(|&authenticated| plan.transports.iter().map(move |&t| (t, authenticated)))
        .collect();

    plan.placement.pin_client();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let listeners = runtime.block_on(Listeners::start(plan, &streams))?;
    let targets = runtime.block_on(targets(plan, &streams, &listeners))?;

    let phases: Vec<Option<usize>> = if plan.impairments.is_empty() {
        vec![None]
    } else {
        (0..plan.impairments.len()).map(Some).collect()
    };
    let total =
        (targets.len() * plan.sizes.len()) as u64 * u64::from(plan.runs) * phases.len() as u64;
    progress.start(total, plan.warmup + plan.duration);
    let measured = runtime.block_on(async {
        let _spinning = plan.busy_poll.then(BusyPoll::start);
        let mut measured = Vec::new();
        for &phase in &phases {
            let settings = plan.settings(phase, listeners.batching(plan));
            if let Some(i) = phase {
                plan.impairments[i].apply()?;
                info!("impairment applied: {}", plan.impairments[i]);
            }
            let mut cells = measure_all(&targets, plan, &settings, phase, progress).await?;
            if let Some(i) = phase {
                plan.impairments[i].clear()?;
            }
            for cell in &mut cells {
                cell.impairment = phase;
            }
            measured.extend(cells);
        }
        Ok::<_, Error>(measured)
    })?;
    drop(listeners);

    let listeners = match &plan.remote {
        Some(addr) => format!("against {addr}"),
        None if plan.impairments.is_empty() => format!(
            "{}, built-in listeners on {}",
            crate::report::between(&plan.transports),
            describe(&targets)
        ),
        None => format!(
            "on the loopback of a private network namespace, built-in listeners on {}",
            describe(&targets)
        ),
    };
    Ok(Results {
        measured,
        listeners,
    })
}

/// Every size, every run, the transports (and engines) interleaved within
/// each run.
async fn measure_all(
    targets: &[(Engine, Target)],
    plan: &Plan,
    settings: &Settings,
    phase: Option<usize>,
    progress: &mut dyn Progress,
) -> Result<Vec<Measured>, Error> {
    let runs = plan.runs;
    // Every size over every transport's limit: no run could send one
    // message, and a table of error rows alone is no measurement.
    let mut cells = plan.sizes.iter().flat_map(|&size| {
        targets
            .iter()
            .map(move |(_, target)| target.check_size(size))
    });
    if let Some(Err(first)) = cells.next() {
        if cells.all(|cell| cell.is_err()) {
            return Err(Error::NothingFits(first.message));
        }
    }
    let mut measured = Vec::new();
    for &size in &plan.sizes {
        let first = measured.len();
        for (engine, target) in targets {
            measured.push(Measured {
                transport: target.transport,
                engine: *engine,
                authenticated: target.auth.is_some(),
                size,
                runs: target.check_size(size).map(|()| Vec::new()),
                impairment: None,
            });
        }
        for run in 1..=runs {
            for ((engine, target), cell) in targets.iter().zip(&mut measured[first..]) {
                let Ok(outcomes) = &mut cell.runs else {
                    continue;
                };
                progress.run(&format!("{} {size} B, run {run}/{runs}", target.label()));
                let of = IntervalOf {
                    transport: target.transport,
                    engine: *engine,
                    authenticated: target.auth.is_some(),
                    size,
                    run,
                    runs,
                    impairment: phase.map(|i| plan.impairments[i].to_string()),
                    flow: None,
                    direction: plan.direction,
                };
                let outcome = if plan.parallel > 1 || plan.direction == Direction::Bidir {
                    let mut sink = |flow, direction, interval: Interval| {
                        // The flow's own direction, not the run's: a
                        // bidirectional run's intervals are each one way.
                        let of = IntervalOf {
                            flow: Some(flow),
                            direction,
                            ..of.clone()
                        };
                        progress.interval(&of, &interval);
                    };
                    let n = plan.parallel;
                    match engine {
                        Engine::Tokio => {
                            flows::tokio_flows(target, size, settings, n, &mut sink).await
                        }
                        Engine::Blocking => flows::blocking_flows(
                            target,
                            size,
                            settings,
                            plan.busy_poll,
                            n,
                            &mut sink,
                        ),
                    }
                } else {
                    let mut sink = |interval: Interval| progress.interval(&of, &interval);
                    match engine {
                        Engine::Tokio => {
                            tokio_engine::measure(target, size, settings, &mut sink).await
                        }
                        // On this thread: nothing else runs on its runtime.
                        Engine::Blocking => {
                            blocking::measure(target, size, settings, plan.busy_poll, &mut sink)
                        }
                    }
                };
                let outcome = outcome.map_err(|err| Error::Run {
                    label: target.label(),
                    size,
                    addr: target.addr.clone(),
                    source: Box::new(err),
                })?;
                outcomes.push(outcome);
                progress.done();
            }
        }
    }
    Ok(measured)
}
