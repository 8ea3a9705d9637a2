//! Plan -> run -> results: the listeners started, the interleaved
//! schedule (U T U T ...) carried out over the engines, the cells filled.
//!
//! Runs alternate between the transports (and engines) so that each TCP
//! run sits next to a UDP run taken under the same machine noise; the
//! report takes the median run and shows the spread.

use std::time::Duration;

use tracing::info;

use msg_net::connect::{self, ConnectError};
use msg_net::{BusyPoll, Link, PeerAddr, Transport};

use crate::engine::{Outcome, blocking, tokio as tokio_engine};
use crate::error::Error;
use crate::flows;
use crate::interval::{Interval, IntervalOf};
use crate::plan::{Engine, Plan};
use crate::servers;
use crate::settings::{Batching, Direction, Oversize, Settings, Target};

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

/// The built-in listeners of each engine the plan measures, if any.
#[derive(Debug)]
struct Listeners {
    tokio: Option<servers::Servers>,
    blocking: Option<servers::BlockingServers>,
}

impl Listeners {
    async fn start(plan: &Plan, streams: &[(Transport, bool)]) -> Result<Self, Error> {
        let builtin = plan.builtin();
        let core = plan.placement.listener_core();
        let udp_batch = if plan.batch.is_some() {
            msg_net::MAX_BATCH
        } else {
            0
        };
        let blocking = if builtin && plan.engines.contains(&Engine::Blocking) {
            Some(
                servers::BlockingServers::start(
                    streams,
                    core,
                    plan.nodelay,
                    plan.busy_poll,
                    plan.auth.as_ref(),
                    udp_batch,
                )
                .await?,
            )
        } else {
            None
        };
        let tokio = if builtin && plan.engines.contains(&Engine::Tokio) {
            Some(servers::Servers::start_batched(
                streams,
                core,
                plan.nodelay,
                plan.busy_poll,
                plan.auth.clone(),
                udp_batch,
            )?)
        } else {
            None
        };
        Ok(Self { tokio, blocking })
    }

    /// How a batched run is sent, and the built-in listeners' counters.
    fn batching(&self, plan: &Plan) -> Option<Batching> {
        plan.batch.map(|batch| Batching {
            size: batch.size,
            gso: batch.gso,
            listeners: self
                .tokio
                .as_ref()
                .map(servers::Servers::counters)
                .into_iter()
                .chain(
                    self.blocking
                        .as_ref()
                        .map(servers::BlockingServers::counters),
                )
                .flatten()
                .collect(),
        })
    }
}

/// Where each engine measures each stream (transport, with the secret or
/// without).
async fn targets(
    plan: &Plan,
    streams: &[(Transport, bool)],
    listeners: &Listeners,
) -> Result<Vec<(Engine, Target)>, Error> {
    // A remote listener's addresses, as each transport reads ADDR (a host
    // name's in the resolver's order, a path as it is).
    let mut remote: Vec<(Transport, Vec<PeerAddr>)> = Vec::new();
    if let Some(addr) = &plan.remote {
        for &transport in &plan.transports {
            remote.push((transport, transport.connect_addrs(addr).await?));
        }
    }
    let mut targets = Vec::with_capacity(streams.len() * plan.engines.len());
    for (&engine, &(transport, authenticated)) in plan
        .engines
        .iter()
        .flat_map(|engine| streams.iter().map(move |stream| (engine, stream)))
    {
        let target = |addr| Target {
            transport,
            addr,
            nodelay: plan.nodelay,
            auth: plan.auth.clone().filter(|_| authenticated),
        };
        let remote = remote.iter().find(|(t, _)| *t == transport);
        let addr = match (&listeners.tokio, &plan.remote, remote) {
            _ if engine == Engine::Blocking && plan.builtin() => listeners
                .blocking
                .as_ref()
                .expect("started for the blocking engine")
                .addr(transport, authenticated),
            (Some(listeners), _, _) => listeners.addr(transport, authenticated),
            (None, _, Some((_, addrs))) if addrs.len() == 1 => addrs[0].clone(),
            // A name with several addresses: measure the first that
            // connects, as msg send would use.
            (None, Some(name), Some((_, addrs))) => {
                connect_first(name, addrs, transport, &target(addrs[0].clone())).await?
            }
            _ => unreachable!("either built-in listeners or a remote one"),
        };
        targets.push((engine, target(addr)));
    }
    Ok(targets)
}

/// The first of `addrs` (never empty) that `target`'s transport connects
/// to, in the resolver's order (msg-net's `connect_first`); with one
/// address, its error as it is.
async fn connect_first(
    name: &str,
    addrs: &[PeerAddr],
    transport: Transport,
    target: &Target,
) -> Result<PeerAddr, Error> {
    let options = target.connect_options();
    match connect::connect_first(name, addrs, |addr| Link::connect(transport, addr, &options)).await
    {
        Ok((_, reached)) => Ok(reached),
        Err(ConnectError::All {
            name,
            count,
            failures,
        }) => Err(Error::Connect {
            name,
            count,
            failures,
        }),
        Err(ConnectError::One(err) | ConnectError::Resolve(err)) => Err(err.into()),
        // A reason of a later msg-net, said as it says it.
        Err(other) => Err(Error::Connect {
            name: name.to_owned(),
            count: addrs.len(),
            failures: other.to_string(),
        }),
    }
}

fn describe(targets: &[(Engine, Target)]) -> String {
    let both = targets.iter().any(|(engine, _)| *engine != targets[0].0);
    let addrs: Vec<String> = targets
        .iter()
        .map(|(engine, t)| match both {
            true => format!("{} {} {}", t.label(), engine.name(), t.addr),
            false => format!("{} {}", t.label(), t.addr),
        })
        .collect();
    addrs.join(", ")
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
                    let mut sink = |flow, interval: Interval| {
                        let of = IntervalOf {
                            flow: Some(flow),
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
