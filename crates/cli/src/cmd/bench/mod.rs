//! `msg bench`: the same payloads over UDP datagrams and over length-framed
//! TCP, measured side by side in one run.
//!
//! - `servers`: the built-in echo listeners, on a thread and a
//!   current-thread runtime of their own (the very code of `msg listen`).
//! - `pin`: where the client and the listeners run. On a small machine CPU
//!   placement moves a round trip more than the protocol does.
//! - `client`: one measured run: ping-pong (closed loop), open loop at a
//!   fixed `--rate`, or a one-way throughput stream.
//! - `pace`: a sub-millisecond timer for the open loop.
//! - `report`: the median of the runs, the table and the JSON.
//! - `clients`: `--clients N`, a load of N TCP connections at once, with
//!   its own small report.
//! - `impair`: `--impair SPEC`, netem's words, and the kernel mechanisms
//!   (nftables, tbf, netem) that carry each out.
//! - `netns`: the private network namespace an impaired run happens in:
//!   msg runs itself again inside it, and it vanishes with that child.
//! - `blocking`: `--io`, and the blocking engine's client and listeners
//!   (std sockets, blocking system calls, a thread per conversation).
//! - `plot`, `hgrm`: `--plot FILE.svg` and `--hgrm DIR`, the latency
//!   distributions drawn (HdrHistogram style) and written out.
//! - `batch`: `--batch N`, a UDP throughput stream of many datagrams per
//!   system call, and how many each call moved.
//!
//! Runs alternate between the transports (U T U T ...) so that each TCP run
//! sits next to a UDP run taken under the same machine noise; the report
//! takes the median run and shows the spread.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{ArgAction, ValueEnum};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tracing::info;

use msg_net::limits::{DEFAULT_MAX_FRAME, Family, HEADER_LEN, Overhead, check_size};
use msg_net::{BusyPoll, Link, Transport, resolve_all};
use msg_proto::auth::UDP_TRAILER_LEN;

use crate::args::{AuthArgs, parse_host_port, parse_positive_duration, usage};
use crate::cmd::connect_first;

mod batch;
mod blocking;
mod client;
mod clients;
mod hgrm;
mod impair;
#[cfg(target_os = "linux")]
mod netns;
mod pace;
mod pin;
mod plot;
mod report;
mod servers;

use blocking::{Engine, Io};
use client::{Outcome, Settings, Target};
use impair::Impairment;
use pin::{Pin, Placement};

/// The payload sizes measured by default: small, a page, a large write, and
/// one near the UDP limit.
const DEFAULT_SIZES: [usize; 4] = [64, 1024, 16384, 65000];

/// How long a reply may take before a UDP datagram counts as lost: a
/// loopback round trip takes microseconds.
const DEFAULT_TIMEOUT: Duration = Duration::from_millis(200);

/// Options of `msg bench`.
#[derive(Debug, clap::Args)]
pub(crate) struct BenchArgs {
    /// Measure UDP (with neither --udp nor --tcp: both)
    #[arg(long)]
    udp: bool,

    /// Measure TCP (with neither --udp nor --tcp: both)
    #[arg(long)]
    tcp: bool,

    #[arg(value_name = "ADDR", value_parser = parse_host_port,
          help = "A `msg listen --udp|--tcp --reply echo` to measure against, \
                  HOST:PORT; without it msg bench starts its own listeners on 127.0.0.1")]
    addr: Option<String>,

    /// Payload sizes in bytes, comma-separated (each message adds a 28-byte
    /// header) [default: 64,1024,16384,65000; with --clients, one size:
    /// 64]
    #[arg(long, value_name = "BYTES,...", value_delimiter = ',', value_parser = parse_size)]
    sizes: Option<Vec<usize>>,

    /// How long each run measures, e.g. 750ms, 5s
    #[arg(long, value_name = "DURATION", default_value = "750ms", value_parser = parse_positive_duration)]
    duration: Duration,

    /// How long each run exchanges messages before it measures
    #[arg(long, value_name = "DURATION", default_value = "150ms", value_parser = humantime::parse_duration)]
    warmup: Duration,

    /// Runs per transport and size, interleaved U T U T ...; the report shows
    /// the median run and the spread of p50
    #[arg(long, value_name = "N", default_value_t = 3,
          value_parser = clap::value_parser!(u32).range(1..=1000))]
    runs: u32,

    /// CPU placement: client and listeners on the same core, on different
    /// cores, or wherever the OS likes [default: same with the built-in
    /// listeners, off against ADDR]
    #[arg(long, value_enum)]
    pin: Option<Pin>,

    /// pingpong: one message in flight, round-trip times; throughput: a
    /// one-way stream, messages per second at the receiver and loss
    #[arg(long, value_enum, default_value_t = Mode::Pingpong)]
    mode: Mode,

    /// Send N messages per second whatever the replies do (open loop);
    /// latency counts from each message's intended send time. With
    /// --mode throughput, paces the stream
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    rate: Option<u64>,

    /// How long to wait for each reply before a UDP datagram counts as lost
    /// (over TCP, an error) [default: 200ms; with --clients, where each
    /// reply waits behind the other clients' messages: 5s; with --impair,
    /// 10ms plus twice the impairment's delay, jitter and rate-limiting
    /// queue over UDP, and 60s over TCP, which retransmits]
    #[arg(long, value_name = "DURATION", value_parser = parse_positive_duration)]
    timeout: Option<Duration>,

    /// TCP_NODELAY on the client and the built-in TCP listener
    #[arg(long, value_name = "BOOL", default_value_t = true, action = ArgAction::Set)]
    nodelay: bool,

    /// Poll the sockets in a loop instead of sleeping until a reply
    /// arrives, in the client and the built-in listeners: for --pin cross,
    /// where waking an idle core costs more than the round trip; each side
    /// keeps its core 100 % busy
    #[arg(long)]
    busy_poll: bool,

    /// The engine: blocking (std sockets and blocking system calls on
    /// dedicated threads, as sockperf), tokio (msg listen's and msg send's
    /// runtime), or both, interleaved, with what the runtime costs per
    /// round trip [default: blocking for a ping-pong or a throughput
    /// stream; tokio with --rate, --batch or a secret, which only tokio
    /// measures]
    #[arg(long, value_enum)]
    io: Option<Io>,

    /// Open N TCP connections at once, each a ping-pong for --duration:
    /// connections per second, messages per second across all of them,
    /// round-trip times, and this process's memory (with the built-in
    /// listener in it). TCP only
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=i64::from(clients::MAX_CLIENTS)),
          conflicts_with_all = ["runs", "pin", "mode", "rate", "busy_poll", "io"])]
    clients: Option<u32>,

    /// Print one JSON document, {"results":[...]}, instead of the table
    #[arg(long)]
    json: bool,

    /// Run in a private network namespace whose loopback the kernel
    /// impairs, as netem's words say: 'loss 2%', 'rate 100mbit', 'delay 5ms
    /// 1ms', 'reorder 1%', 'duplicate 1%', combined at will. Loss drops
    /// that share of the packets in each direction (an nftables rule);
    /// delay, reorder and duplicate need netem in the kernel. Repeat to
    /// measure several in turn, in one table. Built-in listeners only
    #[arg(long, value_name = "SPEC", value_parser = impair::parse_spec)]
    impair: Vec<Impairment>,

    /// With --mode throughput: send UDP datagrams N per system call
    /// (sendmmsg on Linux, each batch one GSO send where the kernel offers
    /// it), and have the built-in listener take up to 64 per call
    /// (recvmmsg, GSO runs coalesced by GRO); the report adds datagrams per
    /// send and per receive call and the offload used. TCP is sent as
    /// without it
    #[arg(long, value_name = "N", conflicts_with = "clients",
          value_parser = clap::value_parser!(u16).range(1..=batch::MAX_BATCH as i64))]
    batch: Option<u16>,

    /// With --batch: send with sendmmsg alone, without UDP GSO, to see
    /// what the offload adds
    #[arg(long, requires = "batch")]
    no_gso: bool,

    /// Draw the round-trip time percentile distribution (p50 to p99.99,
    /// HdrHistogram style) of each transport and size into FILE, an SVG.
    /// Ping-pong only
    #[arg(long, value_name = "FILE.svg", conflicts_with = "clients")]
    plot: Option<std::path::PathBuf>,

    /// Write each round-trip time histogram into DIR in HdrHistogram's
    /// percentile format (TRANSPORT-SIZE.hgrm, values in µs), for existing
    /// plotters. Ping-pong only
    #[arg(long, value_name = "DIR", conflicts_with = "clients")]
    hgrm: Option<std::path::PathBuf>,

    #[command(flatten)]
    auth: AuthArgs,
}

/// What is measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Mode {
    /// One message in flight: round-trip time (or, with --rate, open loop)
    Pingpong,
    /// A one-way stream: messages per second at the receiver, loss
    Throughput,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Self::Pingpong => "pingpong",
            Self::Throughput => "throughput",
        }
    }
}

fn parse_size(s: &str) -> Result<usize, String> {
    let max = DEFAULT_MAX_FRAME - HEADER_LEN;
    let n: usize = s
        .trim()
        .parse()
        .map_err(|_| format!("expected a size in bytes, got '{s}'"))?;
    if n > max {
        return Err(format!(
            "{n} bytes is over the largest size msg bench measures, {max} (a 16 MiB TCP frame)"
        ));
    }
    Ok(n)
}

/// One cell of the comparison: a transport at a size, over all its runs.
#[derive(Debug)]
pub(crate) struct Measured {
    transport: Transport,
    /// The engine that measured it (client and built-in listener).
    engine: Engine,
    /// Every message tagged with the secret.
    authenticated: bool,
    size: usize,
    /// The runs in the order they were taken, or why the size cannot go
    /// over this transport at all.
    runs: Result<Vec<Outcome>, Oversize>,
    /// Under `--impair`, which impairment (an index into the list).
    impairment: Option<usize>,
}

/// A size that does not fit a UDP datagram.
#[derive(Debug)]
pub(crate) struct Oversize {
    /// The datagram limit it exceeds, for the table cell.
    limit: usize,
    /// The transport's own error message, for the note under the table and
    /// the JSON.
    message: String,
}

/// How long a TCP reply may take under `--impair`: a segment lost six
/// times in a row waits out 0.2 + 0.4 + ... + 6.4 = 12.6 s of backed-off
/// retransmission timeouts before it gets through.
const IMPAIRED_TCP_TIMEOUT: Duration = Duration::from_secs(60);

/// Under `--impair`, a UDP reply that has not come 10 ms after the time
/// the impairment's delay explains is lost: a thousand loopback round
/// trips, and short enough that a lossy run still takes many samples.
const IMPAIRED_UDP_SLACK: Duration = Duration::from_millis(10);

pub(crate) fn run(args: BenchArgs) -> anyhow::Result<ExitCode> {
    if let Some(clients) = args.clients {
        clients::run(&args, clients)?;
        return Ok(ExitCode::SUCCESS);
    }
    let transports: Vec<Transport> = match (args.udp, args.tcp) {
        (true, false) => vec![Transport::Udp],
        (false, true) => vec![Transport::Tcp],
        _ => vec![Transport::Udp, Transport::Tcp],
    };
    let mut sizes = args.sizes.clone().unwrap_or_else(|| DEFAULT_SIZES.to_vec());
    sizes.dedup();
    let builtin = args.addr.is_none();
    let pin = args
        .pin
        .unwrap_or(if builtin { Pin::Same } else { Pin::Off });
    if args.busy_poll && pin == Pin::Same {
        return Err(usage(
            "--busy-poll needs the client and the listeners on different cores \
             (--pin cross or off): on one core each spinner would hold up the other",
        ));
    }
    if args.batch.is_some() {
        if args.mode != Mode::Throughput {
            return Err(usage(
                "--batch batches a one-way stream: use it with --mode throughput \
                 (a ping-pong has one message in flight, nothing to batch)",
            ));
        }
        if !transports.contains(&Transport::Udp) {
            return Err(usage(
                "--batch sends UDP datagrams many per system call; TCP needs no batching \
                 (its stream already carries many messages per write)",
            ));
        }
    }
    if args.mode == Mode::Throughput {
        for (given, flag) in [
            (args.plot.is_some(), "--plot"),
            (args.hgrm.is_some(), "--hgrm"),
        ] {
            if given {
                return Err(usage(format!(
                    "{flag} shows round-trip times, and --mode throughput measures none: \
                     use it with --mode pingpong"
                )));
            }
        }
    }
    if let Some(parent) = args.plot.as_deref().and_then(std::path::Path::parent) {
        // Found out now, not after the whole run.
        if !parent.as_os_str().is_empty() && !parent.is_dir() {
            return Err(usage(format!(
                "--plot: no directory {} to write into",
                parent.display()
            )));
        }
    }
    let placement = Placement::new(pin)?;
    if !args.impair.is_empty() {
        if args.addr.is_some() {
            return Err(usage(
                "--impair measures the built-in listeners inside a network namespace of its \
                 own, from which ADDR cannot be reached: leave ADDR out",
            ));
        }
        // The user's process makes the namespace and waits; the child,
        // inside it, measures.
        match namespace::parent() {
            None => return namespace::reexec(),
            Some(parent) => namespace::check_private(&parent)?,
        }
        // Every impairment is tried before anything is measured, so that
        // one the kernel cannot do stops the run at once.
        for impairment in &args.impair {
            impairment.apply()?;
            impairment.clear()?;
        }
    }
    let auth = args.auth.auth()?;
    // What the blocking engine measures: one message in flight, or a
    // stream as fast as the socket takes it; not a paced or batched one.
    let closed_loop = args.rate.is_none() && args.batch.is_none();
    let engines = Io::engines(
        args.io,
        closed_loop,
        auth.is_some(),
        !args.impair.is_empty(),
    )
    .map_err(usage)?;
    if engines.len() == 2 && args.busy_poll {
        return Err(usage(
            "--io both cannot --busy-poll: the tokio listeners spin all the time and would \
             hold up the blocking ones on their core; measure each engine on its own",
        ));
    }

    // With a secret, the built-in listeners measure each transport with and
    // without it, side by side; a remote listener with a secret accepts
    // only authenticated peers.
    let variants: Vec<bool> = match (builtin, auth.is_some()) {
        (true, true) => vec![false, true],
        (_, authenticated) => vec![authenticated],
    };
    let streams: Vec<(Transport, bool)> = variants
        .iter()
        .flat_map(|&authenticated| transports.iter().map(move |&t| (t, authenticated)))
        .collect();

    placement.pin_client();
    let tokio_builtin = builtin && engines.contains(&Engine::Tokio);
    let blocking_listeners = if builtin && engines.contains(&Engine::Blocking) {
        Some(blocking::Servers::start(
            &transports,
            placement.listener_core(),
            args.nodelay,
            args.busy_poll,
        )?)
    } else {
        None
    };
    let listeners = if tokio_builtin {
        Some(servers::Servers::start_batched(
            &streams,
            placement.listener_core(),
            args.nodelay,
            args.busy_poll,
            auth.clone(),
            if args.batch.is_some() {
                batch::MAX_BATCH
            } else {
                0
            },
        )?)
    } else {
        None
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let targets: Vec<(Engine, Target)> = runtime.block_on(async {
        let remote = match &args.addr {
            Some(addr) => Some((addr, resolve_all(addr).await?)),
            None => None,
        };
        let mut targets = Vec::with_capacity(streams.len() * engines.len());
        for (&engine, &(transport, authenticated)) in engines
            .iter()
            .flat_map(|engine| streams.iter().map(move |stream| (engine, stream)))
        {
            let target = |addr| Target {
                transport,
                addr,
                nodelay: args.nodelay,
                auth: auth.clone().filter(|_| authenticated),
            };
            let addr = match (&listeners, &remote) {
                _ if engine == Engine::Blocking && builtin => blocking_listeners
                    .as_ref()
                    .expect("started for the blocking engine")
                    .addr(transport),
                (Some(listeners), _) => listeners.addr(transport, authenticated),
                (None, Some((_, addrs))) if addrs.len() == 1 => addrs[0],
                // A name with several addresses: measure the first that
                // connects, as msg send would use.
                (None, Some((name, addrs))) => {
                    let options = target(addrs[0]).connect_options();
                    connect_first(name, addrs, |addr| Link::connect(transport, addr, &options))
                        .await?
                        .1
                }
                (None, None) => unreachable!("either built-in listeners or ADDR"),
            };
            targets.push((engine, target(addr)));
        }
        anyhow::Ok(targets)
    })?;

    let phases: Vec<Option<usize>> = if args.impair.is_empty() {
        vec![None]
    } else {
        (0..args.impair.len()).map(Some).collect()
    };
    let settings_for = |phase: Option<usize>| {
        let impairment = phase.map(|i| &args.impair[i]);
        let default = match impairment {
            Some(imp) => IMPAIRED_UDP_SLACK + 2 * imp.one_way_delay(),
            None => DEFAULT_TIMEOUT,
        };
        let timeout = args.timeout.unwrap_or(default);
        Settings {
            mode: args.mode,
            warmup: args.warmup,
            duration: args.duration,
            timeout,
            tcp_timeout: match impairment {
                Some(_) => timeout.max(IMPAIRED_TCP_TIMEOUT),
                None => timeout,
            },
            rate: args.rate,
            impaired: impairment.is_some(),
            batch: args.batch.map(|size| batch::Batching {
                size: usize::from(size),
                gso: !args.no_gso,
                listeners: listeners
                    .as_ref()
                    .map(servers::Servers::counters)
                    .unwrap_or_default(),
            }),
        }
    };
    let progress = progress_bar(
        &targets,
        &sizes,
        args.runs * u32::try_from(phases.len()).unwrap_or(1),
        &settings_for(None),
    );
    let measured = runtime.block_on(async {
        let _spinning = args.busy_poll.then(BusyPoll::start);
        let mut measured = Vec::new();
        for &phase in &phases {
            let settings = settings_for(phase);
            if let Some(i) = phase {
                args.impair[i].apply()?;
                info!("impairment applied: {}", args.impair[i]);
            }
            let mut cells = measure_all(
                &targets,
                &sizes,
                args.runs,
                &settings,
                args.busy_poll,
                &progress,
            )
            .await?;
            if let Some(i) = phase {
                args.impair[i].clear()?;
            }
            for cell in &mut cells {
                cell.impairment = phase;
            }
            measured.extend(cells);
        }
        anyhow::Ok(measured)
    })?;
    progress.finish_and_clear();
    drop(listeners);
    drop(blocking_listeners);

    let report = report::Report {
        mode: args.mode,
        rate: args.rate,
        runs: args.runs,
        duration: args.duration,
        warmup: args.warmup,
        placement: &placement,
        busy_poll: args.busy_poll,
        batch: args.batch.map(usize::from),
        builtin,
        where_: match &args.addr {
            Some(addr) => format!("against {addr}"),
            None if args.impair.is_empty() => {
                format!("on loopback, built-in listeners on {}", describe(&targets))
            }
            None => format!(
                "on the loopback of a private network namespace, built-in listeners on {}",
                describe(&targets)
            ),
        },
        measured: &measured,
        impairments: &args.impair,
    };
    if args.json {
        report.print_json()?;
    } else {
        report.print_table()?;
    }
    let series = plot::series(&measured, &args.impair);
    if let Some(path) = &args.plot {
        let what = match args.rate {
            Some(rate) => format!("round-trip times, open loop at {rate} msg/s"),
            None => "round-trip times, ping-pong".to_owned(),
        };
        plot::draw(path, &series, &placement, &what)?;
        info!("drew {} line(s) into {}", series.len(), path.display());
    }
    if let Some(dir) = &args.hgrm {
        let written = plot::write_hgrm(dir, &series)?;
        info!(
            "wrote {} histogram(s) into {}",
            written.len(),
            dir.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// The namespace an impaired run happens in (Linux only).
mod namespace {
    #[cfg(target_os = "linux")]
    pub(super) use super::netns::{check_private, reexec};

    #[cfg(target_os = "linux")]
    pub(super) fn parent() -> Option<String> {
        super::netns::parent_namespace()
    }

    #[cfg(not(target_os = "linux"))]
    pub(super) fn parent() -> Option<String> {
        None
    }

    #[cfg(not(target_os = "linux"))]
    pub(super) fn reexec() -> anyhow::Result<std::process::ExitCode> {
        Err(crate::args::usage(
            "--impair needs Linux: network namespaces, nftables and tc",
        ))
    }

    #[cfg(not(target_os = "linux"))]
    pub(super) fn check_private(_parent: &str) -> anyhow::Result<()> {
        unreachable!("parent() is None off Linux")
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
    sizes: &[usize],
    runs: u32,
    settings: &Settings,
    busy_poll: bool,
    progress: &ProgressBar,
) -> anyhow::Result<Vec<Measured>> {
    let mut measured = Vec::new();
    for &size in sizes {
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
                progress.set_message(format!("{} {size} B, run {run}/{runs}", target.label()));
                let outcome = match engine {
                    Engine::Tokio => client::measure(target, size, settings).await,
                    // On this thread: nothing else runs on its runtime.
                    Engine::Blocking => blocking::measure(target, size, settings, busy_poll),
                };
                let outcome = outcome.with_context(|| {
                    format!("{} {size}-byte run against {}", target.label(), target.addr)
                })?;
                outcomes.push(outcome);
                progress.inc(1);
            }
        }
    }
    Ok(measured)
}

/// A progress bar on stderr, drawn only when stderr is a terminal and only
/// between runs, never from inside one.
fn progress_bar(
    targets: &[(Engine, Target)],
    sizes: &[usize],
    runs: u32,
    settings: &Settings,
) -> ProgressBar {
    let total = (targets.len() * sizes.len()) as u64 * u64::from(runs);
    let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::hidden());
    if std::io::stderr().is_terminal() {
        bar.set_draw_target(ProgressDrawTarget::stderr());
        let style = ProgressStyle::with_template("{msg:24} [{bar:24}] {pos}/{len}, ~{eta} left")
            .expect("a valid template")
            .progress_chars("=> ");
        bar.set_style(style);
        let per_run = settings.warmup + settings.duration;
        info!("{total} runs of {}", humantime::format_duration(per_run));
    }
    bar
}

impl Target {
    /// Whether `size`-byte messages can be sent at all.
    fn check_size(&self, size: usize) -> Result<(), Oversize> {
        match self.transport {
            Transport::Udp => {
                let overhead = if self.auth.is_some() {
                    Overhead::framed_with_tag(UDP_TRAILER_LEN)
                } else {
                    Overhead::FRAMED
                };
                check_size(size, overhead, &self.addr).map_err(|err| Oversize {
                    limit: Family::of(&self.addr).max_payload(),
                    message: err.to_string(),
                })
            }
            Transport::Tcp => Ok(()),
        }
    }
}
