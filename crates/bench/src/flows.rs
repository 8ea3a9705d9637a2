//! Parallel flows (`Plan::parallel`): N throughput streams of one run
//! at once, each its own connection (or, over a datagram transport, its
//! own socket and source port, which the listener counts apart), as
//! iperf3's `-P` runs them; the run's outcome is their sum, with each
//! flow's own kept beside it ([`Outcome::flows`]).
//!
//! Every flow connects before any streams, so that a flow that cannot
//! connect fails the run before anything is measured, and the flows warm
//! up until one shared instant and then measure over the same time (each
//! still counts its own time, between its own two statistics pings).
//! Between the two, no flow streams until every flow has its first
//! statistics ([`Start`]): over UDP a flow that went on at once filled
//! the listener's receive buffer while the others were still asking, and
//! their requests were dropped with the stream until they gave up (128
//! flows failed every run).
//!
//! The engines keep their rules: the blocking engine runs each flow on a
//! thread of its own (inheriting the client's placement), sending with
//! blocking calls; the tokio engine runs the flows as futures of the
//! client's one current-thread runtime, as a tokio client would. Each
//! flow reports its intervals as one flow alone does, numbered.

use std::cell::RefCell;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use crate::cpu::{Cpu, Sample, Usage};
use crate::engine::start::{AsyncStart, Start};
use crate::engine::{Outcome, blocking, tokio as tokio_engine};
use crate::error::{Error, RunError};
use crate::interval::Interval;
use crate::settings::{Direction, Settings, Target};

/// Where the flows' intervals go: the flow's number (from 1), its own
/// direction (a bidirectional run's flows go both ways, and an interval
/// counts what its own flow sent or received) and the interval.
pub(crate) type FlowSink<'a> = &'a mut dyn FnMut(u32, Direction, Interval);

/// How long a flow with its first statistics waits for the others' at
/// most: as long as a flow's own requests may take, and a second more.
/// Over a reliable transport a flow asks once (its request cannot be
/// lost, only late) and waits [`stats_wait`](msg_net::ping::stats_wait);
/// over UDP it asks again, each time waiting twice as long. TCP was given
/// UDP's five requests, 311 s in all (audit, round seven).
fn counted_within(target: &Target, settings: &Settings) -> Duration {
    let transport = target.transport;
    let first = msg_net::ping::stats_wait(transport, settings.reply_timeout(transport));
    let all = match transport.caps().reliable {
        true => first,
        false => msg_net::ping::stats_waited(first),
    };
    all + Duration::from_secs(1)
}

/// `parallel` flows on the tokio engine, as futures of this thread's
/// runtime.
///
/// # Errors
///
/// The first flow's error: one that cannot connect, or fails as one run
/// alone fails.
pub(crate) async fn tokio_flows(
    target: &Target,
    size: usize,
    settings: &Settings,
    parallel: u32,
    sink: FlowSink<'_>,
) -> Result<Outcome, Error> {
    // Bidirectional: each flow a forward connection and a reverse one,
    // numbered in turn (1 forward, 2 reverse, 3 forward, ...).
    let directions: Vec<Direction> = match settings.direction {
        Direction::Bidir => (0..parallel)
            .flat_map(|_| [Direction::Forward, Direction::Reverse])
            .collect(),
        one => vec![one; parallel as usize],
    };
    let mut links = Vec::new();
    for _ in &directions {
        links.push(tokio_engine::connect(target).await?);
    }
    // Only the flows that stream to the listener ask it for statistics.
    let forward = directions
        .iter()
        .filter(|&&direction| direction == Direction::Forward)
        .count();
    let start = AsyncStart::new(
        Instant::now() + settings.warmup,
        forward,
        counted_within(target, settings),
    );
    let start = &start;
    // One thread: the flows' sinks take turns, never at once.
    let sink = RefCell::new(sink);
    let sink = &sink;
    let flows =
        links
            .into_iter()
            .zip(directions)
            .zip(1..)
            .map(|((link, direction), flow)| async move {
                let mut each = |interval| (sink.borrow_mut())(flow, direction, interval);
                tokio_engine::measure_on(
                    link,
                    target,
                    size,
                    settings,
                    direction,
                    Some(start),
                    &mut each,
                )
                .await
            });
    let flows = futures::future::try_join_all(flows).await?;
    // One thread ran them all: its time over the first flow's measurement
    // is all of theirs, which no flow has apart.
    let cpu = flows.first().and_then(|f| f.cpu);
    Ok(sum(flows, cpu, false))
}

/// `parallel` flows on the blocking engine, a thread each.
///
/// # Errors
///
/// As [`tokio_flows`]; and a flow's thread that cannot be made.
pub(crate) fn blocking_flows(
    target: &Target,
    size: usize,
    settings: &Settings,
    busy_poll: bool,
    parallel: u32,
    sink: FlowSink<'_>,
) -> Result<Outcome, Error> {
    let links = (0..parallel)
        .map(|_| blocking::connect(target, settings, busy_poll))
        .collect::<Result<Vec<_>, _>>()?;
    let start = Start::new(
        Instant::now() + settings.warmup,
        parallel,
        counted_within(target, settings),
    );
    let start = &start;
    let (tx, rx) = mpsc::channel::<(u32, Interval)>();
    // No bidirectional run on this engine: every flow goes one way.
    let direction = settings.direction;
    let flows = thread::scope(|scope| {
        let mut threads = Vec::new();
        for (link, flow) in links.into_iter().zip(1..) {
            let tx = tx.clone();
            let spawned = thread::Builder::new()
                .name(format!("msg-bench-flow-{flow}"))
                .spawn_scoped(scope, move || {
                    let mut each = |interval| {
                        // The receiver outlives every flow.
                        let _ = tx.send((flow, interval));
                    };
                    let measured =
                        blocking::measure_on(link, target, size, settings, Some(start), &mut each);
                    if measured.is_err() {
                        start.failed();
                    }
                    measured
                });
            match spawned {
                Ok(thread) => threads.push(thread),
                Err(source) => {
                    // The flows started so far wait for this one at the
                    // meeting point, and the scope for them: released
                    // now, not at the meeting point's bound (TCP's waited
                    // 311 s there; audit, round seven).
                    start.failed();
                    return Err(Error::Thread {
                        what: "a flow's thread",
                        source,
                    });
                }
            }
        }
        drop(tx);
        // The process's time from the end of the warm-ups until the last
        // flow has ended: every thread's own measurement lies inside it.
        thread::sleep(start.warm_until.saturating_duration_since(Instant::now()));
        let process = Sample::now();
        // Until every flow has ended (each bounded by its duration and
        // its timeouts), their intervals in the order they come.
        for (flow, interval) in rx {
            sink(flow, direction, interval);
        }
        let flows: Vec<_> = threads
            .into_iter()
            .map(|thread| thread.join().expect("a flow's thread does not panic"))
            .collect();
        // The flow that failed says why, not one that was waiting for it.
        let waited =
            |flow: &Result<_, _>| matches!(flow, Err(Error::Measuring(RunError::OtherFlowFailed)));
        if let Some(failed) = flows.iter().position(|flow| flow.is_err() && !waited(flow)) {
            return Err(flows
                .into_iter()
                .nth(failed)
                .and_then(Result::err)
                .expect("an error"));
        }
        let flows = flows.into_iter().collect::<Result<Vec<_>, _>>()?;
        Ok((flows, process.and_then(|p| p.elapsed()).map(|c| c.process)))
    })?;
    let (flows, process) = flows;
    // A thread each: the clients' time is the sum of the threads'. The
    // process's is read over all of their measurements at once, not one
    // flow's: the listeners' share (the process's less the clients') then
    // never comes out short when the threads' windows do not line up.
    let cpu = flows.iter().map(|f| f.cpu).collect::<Option<Vec<Cpu>>>();
    let cpu = cpu.zip(process).map(|(cpus, process)| Cpu {
        client: cpus.iter().fold(Usage::default(), |sum, c| sum + c.client),
        process,
    });
    Ok(sum(flows, cpu, true))
}

/// The run's outcome: the flows' counts added up, over the longest
/// flow's time; each flow's kept (with its own CPU time where it has one
/// of its own: `per_flow_cpu`).
fn sum(mut flows: Vec<Outcome>, cpu: Option<Cpu>, per_flow_cpu: bool) -> Outcome {
    let mut total = Outcome::new();
    for flow in &mut flows {
        total.sent += flow.sent;
        total.received += flow.received;
        total.reordered += flow.reordered;
        total.elapsed = total.elapsed.max(flow.elapsed);
        if !per_flow_cpu {
            flow.cpu = None;
        }
    }
    // The flows stream to one listener socket (over UDP), whose drops
    // are counted from the first flow's start of measuring to the last
    // one's end: no flow has any of its own, and the first flow's window
    // alone missed what the others lost after it (audit, round fifteen:
    // 93,531 drops of 646,092 lost with -P 128).
    let spans: Vec<(u64, u64)> = flows.iter().filter_map(|f| f.drops_span).collect();
    total.drops = match (
        spans.iter().map(|s| s.0).min(),
        spans.iter().map(|s| s.1).max(),
    ) {
        (Some(from), Some(to)) => Some(to.saturating_sub(from)),
        _ => None,
    };
    total.drops_span = None;
    for flow in &mut flows {
        flow.drops = None;
    }
    total.cpu = cpu;
    // Flows of both directions make a bidirectional run.
    total.direction = match flows.first() {
        Some(first) if flows.iter().all(|f| f.direction == first.direction) => first.direction,
        Some(_) => Direction::Bidir,
        None => Direction::default(),
    };
    total.flows = flows;
    total
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn flow(sent: u64, received: u64, ms: u64) -> Outcome {
        let mut outcome = Outcome::new();
        outcome.sent = sent;
        outcome.received = received;
        outcome.reordered = 1;
        outcome.elapsed = Duration::from_millis(ms);
        outcome
    }

    /// The sum's counts are the flows' added up, and its rate is the sum
    /// of theirs, each over its own time.
    #[test]
    fn flows_sum_to_the_total() {
        let total = sum(vec![flow(100, 90, 100), flow(300, 300, 200)], None, false);
        assert_eq!(
            (total.sent, total.received, total.reordered, total.lost()),
            (400, 390, 2, 10)
        );
        assert_eq!(total.elapsed, Duration::from_millis(200));
        assert!((total.msgs_per_s() - (900.0 + 1500.0)).abs() < 1e-6);
        assert_eq!(total.flows.len(), 2);
    }
}
