//! `msg bench`: the flags, turned into a [`Plan`] for msg-bench, which
//! measures; the progress bar; and msg run again inside the private
//! network namespace of an impaired run.
//!
//! Here: [`BenchArgs`] and the flag-level checks, the plan, the library's
//! errors with the flags that led to them (its refusals of a plan are
//! usage errors), and the progress bar, drawn between runs. Everything
//! else, from the namespace (msg-bench's `netns`) and the built-in
//! listeners to the report, is msg-bench's.

use std::io::{self, IsTerminal, Write};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, anyhow};
use clap::{ArgAction, ValueEnum};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tracing::info;

use msg_bench::clients::Load;
use msg_bench::meta::Meta;
use msg_bench::multicast::{self, Fanout, Receivers};
use msg_bench::{Batch, Direction, Engine, Impairment, Mode, Pin, Placement, Plan, report};
use msg_net::Transport;

use crate::args::{AuthArgs, parse_peer_addr, parse_positive_duration, usage};

mod connect;

/// What a failed write of the report says: stdout full (`>/dev/full`) said
/// only `No space left on device` (audit, round seven).
const STDOUT: &str = "cannot write to stdout";

/// Options of `msg bench`.
#[derive(Debug, clap::Args)]
pub(crate) struct BenchArgs {
    /// Measure UDP (with neither --udp nor --tcp: both)
    #[arg(short, long)]
    udp: bool,

    /// Measure TCP (with neither --udp nor --tcp: both)
    #[arg(long)]
    tcp: bool,

    /// The transports to measure side by side in one interleaved run,
    /// comma-separated, named as the report names them (udp, tcp, unix,
    /// ...); the table compares each with UDP. With ADDR, one
    /// [default: udp,tcp]
    #[arg(long, value_name = "LIST", value_delimiter = ',', value_parser = clap::value_parser!(Transport),
          conflicts_with_all = ["udp", "tcp"])]
    transports: Option<Vec<Transport>>,

    #[arg(
        value_name = "ADDR",
        help = "A `msg listen` to measure against (any --reply: a listener always answers \
                  msg bench's pings): HOST:PORT, or a Unix socket's path with --transports \
                  unix; without it msg bench starts its own listeners, on 127.0.0.1 and, for \
                  a Unix socket, in a private temporary directory"
    )]
    addr: Option<String>,

    /// Payload sizes in bytes, comma-separated (each message adds a 28-byte
    /// header) [default: 64,1024,16384,65000; with --clients, one size:
    /// 64]
    #[arg(short = 'l', long, value_name = "BYTES,...", value_delimiter = ',', value_parser = msg_bench::parse_size)]
    sizes: Option<Vec<usize>>,

    /// How long each run measures: seconds (5, 0.5) or a duration (750ms)
    #[arg(short = 't', long, visible_alias = "time", value_name = "DURATION", default_value = "750ms",
          value_parser = msg_bench::parse_seconds)]
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
    pin: Option<PinArg>,

    /// pingpong: one message in flight, round-trip times; throughput: a
    /// one-way stream, messages per second at the receiver and loss;
    /// connect: per cycle a new connection (a new socket for UDP), one
    /// request and reply, close: connections per second, connect and
    /// exchange times
    #[arg(long, value_enum, default_value_t = ModeArg::Pingpong)]
    mode: ModeArg,

    /// With --mode connect: how TCP connections close. rst (SO_LINGER 0)
    /// leaves no TIME_WAIT, so the run measures the handshake and not the
    /// search for a free port; fin is netperf TCP_CRR's graceful close,
    /// whose TIME_WAIT holds each client port (60 s, or 1 s with
    /// net.ipv4.tcp_tw_reuse) [default: rst]
    #[arg(long, value_enum)]
    close: Option<CloseArg>,

    /// With --mode connect: TCP Fast Open (TCP_FASTOPEN on the built-in
    /// listener, TCP_FASTOPEN_CONNECT on the client, Linux); the table
    /// counts the connections whose SYN carried the request
    #[arg(long)]
    tfo: bool,

    /// Send N messages per second whatever the replies do (open loop);
    /// latency counts from each message's intended send time. With
    /// --mode throughput, paces the stream
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    rate: Option<u64>,

    /// How long to wait for each reply before a UDP datagram counts as lost
    /// (over TCP, an error) [default: 200ms for a datagram, 5s over a
    /// transport that loses nothing (a late reply is late, not lost); with
    /// --clients, where each reply waits behind the other clients'
    /// messages: 5s; with --impair, 10ms plus twice the impairment's delay,
    /// jitter and rate-limiting queue over UDP, and 60s over TCP, which
    /// retransmits; with --mode connect, 1s for a UDP reply]
    #[arg(long, value_name = "DURATION", value_parser = parse_positive_duration)]
    timeout: Option<Duration>,

    /// TCP_NODELAY on the client and the built-in TCP listener (UDP and
    /// Unix sockets have no Nagle's algorithm to switch off)
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
    /// stream; tokio with --rate, which only tokio measures, and with
    /// --batch or a secret]
    #[arg(long, value_enum)]
    io: Option<Io>,

    /// Open N TCP connections at once, each a ping-pong for --duration:
    /// connections per second, messages per second across all of them,
    /// round-trip times, and this process's memory (with the built-in
    /// listener in it). TCP, or the one transport with connections
    /// --transports names (unix, seqpacket, tls, quic)
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=i64::from(msg_bench::clients::MAX_CLIENTS)),
          conflicts_with_all = ["runs", "pin", "mode", "rate", "busy_poll", "io"])]
    clients: Option<u32>,

    /// One sender, N receivers of a multicast group, each answering every
    /// ping: round trips and loss per receiver, and their spread (with
    /// --mode throughput, what each received). With --multicast GROUP, N
    /// built-in receivers (a thread and a socket each); with GROUP:PORT as
    /// ADDR, N `msg listen --udp GROUP:PORT` elsewhere are expected to
    /// answer, and one that does not shows as 100 % lost
    #[arg(long, value_name = "N", help_heading = "One to many (UDP)",
          value_parser = clap::value_parser!(u32).range(1..=i64::from(multicast::MAX_RECEIVERS)),
          conflicts_with_all = ["clients", "runs", "pin", "busy_poll", "io", "batch", "plot", "hgrm", "impair"])]
    receivers: Option<u32>,

    /// The group the built-in receivers join: IP, or IP:PORT (no port, or
    /// 0, picks a free one)
    #[arg(long, value_name = "GROUP", help_heading = "One to many (UDP)", requires = "receivers",
          value_parser = |s: &str| multicast::parse_group(s).map_err(|e| e.to_string()))]
    multicast: Option<std::net::SocketAddr>,

    /// The interface to send the group on (and the built-in receivers to
    /// join it on): its IPv4 address, its name or its index [default:
    /// 127.0.0.1 (IPv6: lo) with built-in receivers; with remote ones, the
    /// one the routing table picks]
    #[arg(
        long,
        value_name = "IFACE",
        help_heading = "One to many (UDP)",
        requires = "receivers"
    )]
    iface: Option<msg_net::group::Iface>,

    /// The group's TTL: 0 stays on this host, 1 (the default) on the link
    #[arg(long, value_name = "N", help_heading = "One to many (UDP)", requires = "receivers",
          value_parser = clap::value_parser!(u32).range(0..=255))]
    ttl: Option<u32>,

    /// Print one JSON document, {"meta":{...},"results":[...]}, instead of
    /// the table
    #[arg(short = 'J', long)]
    json: bool,

    /// Report each run every DURATION as it goes (seconds, or 100ms; at
    /// least 10ms): a
    /// line per interval before the table, or with --json, JSON Lines
    /// (start, an interval object each, end), as iperf3's --json-stream
    #[arg(short, long, value_name = "DURATION", value_parser = msg_bench::parse_interval,
          conflicts_with = "clients")]
    interval: Option<Duration>,

    /// With --mode throughput: N streams at once (iperf3's -P), each its
    /// own connection (or UDP socket), on a thread each with the blocking
    /// engine, a task each with tokio; the table and the JSON give each
    /// flow and their sum
    #[arg(short = 'P', long, value_name = "N", default_value_t = 1,
          value_parser = clap::value_parser!(u32).range(1..=i64::from(msg_bench::MAX_PARALLEL)),
          conflicts_with_all = ["clients", "receivers"])]
    parallel: u32,

    /// With --mode throughput: the listener sends and the client counts
    /// (iperf3's -R), over connections only (TCP by default; a Unix
    /// socket with --transports), on the tokio engine; against a remote
    /// msg listen too
    #[arg(short = 'R', long, conflicts_with_all = ["clients", "receivers"])]
    reverse: bool,

    /// With --mode throughput: both ways at once (iperf3's --bidir), each
    /// flow a forward connection and a reverse one; as --reverse, over
    /// connections, on the tokio engine
    #[arg(long, conflicts_with_all = ["clients", "receivers", "reverse"])]
    bidir: bool,

    /// Run in a private network namespace whose loopback the kernel
    /// impairs, as netem's words say: 'loss 2%', 'rate 100mbit', 'delay 5ms
    /// 1ms', 'reorder 1%', 'duplicate 1%', combined at will. Loss drops
    /// that share of the packets in each direction (an nftables rule);
    /// delay, reorder and duplicate need netem in the kernel. Repeat to
    /// measure several in turn, in one table. Built-in listeners only
    #[arg(long, value_name = "SPEC", value_parser = parse_impairment)]
    impair: Vec<Impairment>,

    /// With --mode throughput: send UDP datagrams N per system call
    /// (sendmmsg on Linux, each batch one GSO send where the kernel offers
    /// it), and have the built-in listener take up to 64 per call
    /// (recvmmsg, GSO runs coalesced by GRO); the report adds datagrams per
    /// send and per receive call and the offload used. TCP is sent as
    /// without it
    #[arg(long, value_name = "N", conflicts_with = "clients",
          value_parser = clap::value_parser!(u16).range(1..=msg_net::MAX_BATCH as i64))]
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

/// `--mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ModeArg {
    /// One message in flight: round-trip time (or, with --rate, open loop)
    Pingpong,
    /// A one-way stream: messages per second at the receiver, loss
    Throughput,
    /// A new connection per request and reply: what the handshake costs
    Connect,
}

impl ModeArg {
    /// The mode of a ping-pong or a stream; `None` for connect, which has
    /// a plan of its own.
    fn mode(self) -> Option<Mode> {
        match self {
            Self::Pingpong => Some(Mode::Pingpong),
            Self::Throughput => Some(Mode::Throughput),
            Self::Connect => None,
        }
    }
}

/// `--close`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum CloseArg {
    /// close(): FIN, and TIME_WAIT on the client's port
    Fin,
    /// SO_LINGER 0, then close(): a RST, no TIME_WAIT
    Rst,
}

/// `--pin`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum PinArg {
    /// Client and listeners on one core
    Same,
    /// Client on one core, listeners on another
    Cross,
    /// No pinning: the scheduler decides
    Off,
}

impl From<PinArg> for Pin {
    fn from(arg: PinArg) -> Self {
        match arg {
            PinArg::Same => Self::Same,
            PinArg::Cross => Self::Cross,
            PinArg::Off => Self::Off,
        }
    }
}

/// `--io`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Io {
    /// std sockets and blocking system calls on dedicated threads
    Blocking,
    /// The tokio runtime (msg listen's serve loop and msg send's link)
    Tokio,
    /// Each cell under both, interleaved, with what tokio costs per round trip
    Both,
}

/// The transports to measure: `--transports`, or what `--udp` and `--tcp`
/// say, with msg-bench's defaults where they name none.
fn transports(args: &BenchArgs) -> Vec<Transport> {
    let named = args.transports.clone().unwrap_or_else(|| {
        [(args.udp, Transport::Udp), (args.tcp, Transport::Tcp)]
            .into_iter()
            .filter_map(|(set, transport)| set.then_some(transport))
            .collect()
    });
    msg_bench::defaults::transports(&named, direction(args))
}

/// `--reverse` and `--bidir`.
fn direction(args: &BenchArgs) -> Direction {
    if args.bidir {
        Direction::Bidir
    } else if args.reverse {
        Direction::Reverse
    } else {
        Direction::Forward
    }
}

/// ADDR, checked as the transports read it (a usage error otherwise). ADDR
/// is one listener on one transport, as iperf3's and sockperf's server is:
/// `--transports` with several is refused. (Without `--transports`, UDP
/// and TCP measure the same HOST:PORT, as they always have.)
fn remote(args: &BenchArgs, transports: &[Transport]) -> anyhow::Result<Option<String>> {
    let Some(addr) = &args.addr else {
        return Ok(None);
    };
    if args.transports.is_some() && transports.len() > 1 {
        return Err(usage(format!(
            "ADDR is one listener, on one transport, and --transports names {}: name the one \
             it listens on (--transports {}), or leave ADDR out to measure them side by side \
             against built-in listeners",
            transports.len(),
            transports[0]
        )));
    }
    let mut checked = None;
    for &transport in transports {
        checked = Some(parse_peer_addr(transport, addr)?);
    }
    Ok(checked)
}

/// `--impair`'s parser: a clap value parser, so that a malformed SPEC is a
/// usage error (exit 2) before anything runs.
fn parse_impairment(spec: &str) -> Result<Impairment, String> {
    spec.parse()
        .map_err(|err: msg_bench::Error| err.to_string())
}

pub(crate) fn run(args: BenchArgs) -> anyhow::Result<ExitCode> {
    // Ctrl-C removes the built-in Unix listeners' directory on its way.
    // Not in an impaired run, whose parent waits for the signals itself to
    // forward them into the namespace (and which measures no Unix socket).
    if args.impair.is_empty() {
        msg_bench::remove_on_signal().map_err(error)?;
    }
    let transports = transports(&args);
    if let Some(receivers) = args.receivers {
        run_multicast(&args, receivers)?;
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(clients) = args.clients {
        run_clients(&args, clients, &transports)?;
        return Ok(ExitCode::SUCCESS);
    }
    let Some(mode) = args.mode.mode() else {
        connect::run(&args, transports)?;
        return Ok(ExitCode::SUCCESS);
    };
    for (given, flag) in [(args.close.is_some(), "--close"), (args.tfo, "--tfo")] {
        if given {
            return Err(usage(format!(
                "{flag} is the connect mode's: use it with --mode connect"
            )));
        }
    }
    let remote = remote(&args, &transports)?;
    let sizes = msg_bench::defaults::sizes(args.sizes.as_deref());
    let pin = args
        .pin
        .map_or(msg_bench::defaults::pin(remote.is_some()), Pin::from);
    if mode == Mode::Throughput {
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
                msg_net::text::path_text(parent)
            )));
        }
    }
    if let Some(dir) = &args.hgrm {
        // Found out now, as --plot's directory is, not after the whole
        // run (exit 1 once the measurement was done; audit, round nine):
        // the directory is made then, so the nearest part of its path
        // that is there must be a directory.
        if let Some(there) = dir.ancestors().find(|part| part.exists()) {
            if !there.is_dir() {
                return Err(usage(format!(
                    "--hgrm: {} is not a directory to write into",
                    msg_net::text::path_text(there)
                )));
            }
        }
    }
    let mut placement = Placement::new(pin).map_err(error)?;
    if remote.is_some() {
        placement = placement.for_remote();
    }
    if !args.impair.is_empty() {
        msg_bench::check_impairable(remote.is_some(), &transports).map_err(error)?;
        // The user's process makes the namespace and waits; the child,
        // inside it, measures.
        if let Some(code) = enter_namespace()? {
            return Ok(code);
        }
    }
    let auth = args.auth.auth()?;
    let mut plan = Plan {
        transports,
        sizes,
        remote,
        placement,
        mode,
        rate: args.rate,
        warmup: args.warmup,
        duration: args.duration,
        runs: args.runs,
        timeout: args.timeout,
        nodelay: args.nodelay,
        busy_poll: args.busy_poll,
        engines: Vec::new(),
        auth,
        impairments: args.impair.clone(),
        batch: args.batch.map(|size| Batch {
            size: usize::from(size),
            gso: !args.no_gso,
        }),
        interval: args.interval,
        parallel: args.parallel,
        direction: direction(&args),
    };
    plan.engines = match args.io {
        None => plan.default_engines(),
        Some(Io::Blocking) => vec![Engine::Blocking],
        Some(Io::Tokio) => vec![Engine::Tokio],
        Some(Io::Both) => vec![Engine::Blocking, Engine::Tokio],
    };
    // Before the run, which pins this thread to the client's core.
    let engines = plan.engines.iter().map(|engine| engine.name()).collect();
    let meta = Meta::collect(
        plan.placement.to_string(),
        engines,
        std::env::args().collect(),
    );
    if args.json && args.interval.is_some() {
        let shape = report::intervals::Shape::from(&plan);
        report::intervals::write_start(&mut crate::output::stdout(), &meta, &shape)
            .context(STDOUT)?;
    }
    let mut progress = Bar::new(args.json);
    let results = msg_bench::run(&plan, &mut progress).map_err(error)?;
    progress.bar.finish_and_clear();

    let mut out = crate::output::stdout();
    if args.json && args.interval.is_some() {
        report::intervals::write_end(&mut out, &plan, &results).context(STDOUT)?;
    } else if args.json {
        report::write_json(&mut out, &meta, &plan, &results).context(STDOUT)?;
    } else {
        report::write_table(&mut out, &plan, &results).context(STDOUT)?;
    }
    drop(out);
    if let Some(path) = &args.plot {
        let lines = report::plot(path, &plan, &results)?;
        info!(
            "drew {lines} line(s) into {}",
            msg_net::text::path_text(path)
        );
    }
    if let Some(dir) = &args.hgrm {
        let written = report::write_hgrm(dir, &plan, &results)?;
        info!(
            "wrote {} histogram(s) into {}",
            written.len(),
            msg_net::text::path_text(dir)
        );
    }
    unanswered(&plan, &results)
}

/// A ping-pong cell no answer came to measured nothing: after the report,
/// which shows it "all lost", a failure naming it (audit, round eleven:
/// exit 0 against a port that never answered, where `--receivers` with no
/// receiver answering is exit 1).
fn unanswered(plan: &Plan, results: &msg_bench::Results) -> anyhow::Result<ExitCode> {
    if plan.mode != Mode::Pingpong {
        return Ok(ExitCode::SUCCESS);
    }
    let cells: Vec<String> = results
        .unanswered()
        .map(|cell| {
            format!(
                "{} {} B ({})",
                cell.transport,
                cell.size,
                cell.engine.name()
            )
        })
        .collect();
    if cells.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    let whom = match &plan.remote {
        Some(addr) => format!("is {addr} a msg listener? msg listen answers every ping"),
        None => "the built-in listeners did not answer".to_owned(),
    };
    anyhow::bail!(
        "no answer came in {} of {} cells, so they measured nothing: {}; {whom}",
        cells.len(),
        results.measured.len(),
        cells.join(", ")
    )
}

/// `msg bench --clients N`: N connections at once (TCP, or the one
/// transport `--transports` names), and their report.
fn run_clients(args: &BenchArgs, clients: u32, transports: &[Transport]) -> anyhow::Result<()> {
    let transport = match (&args.transports, transports) {
        (None, _) if args.udp => {
            return Err(usage(
                "--clients opens TCP connections, and UDP has none to open; drop --udp",
            ));
        }
        (None, _) => msg_bench::clients::DEFAULT_TRANSPORT,
        (Some(_), &[one]) => one,
        (Some(_), several) => {
            return Err(usage(format!(
                "--clients loads one transport at a time, and --transports names {}",
                several.len()
            )));
        }
    };
    if !transport.caps().connections {
        return Err(error(msg_bench::Error::ClientsNeedConnections(transport)));
    }
    let remote = remote(args, &[transport])?;
    let size = one_size(args, "--clients", msg_bench::clients::DEFAULT_SIZE)?;
    let load = Load {
        clients,
        size,
        warmup: args.warmup,
        duration: args.duration,
        timeout: args.timeout,
        nodelay: args.nodelay,
        auth: args.auth.auth()?,
        remote,
    };
    let command = std::env::args().collect();
    let meta = Meta::collect("pin off".to_owned(), vec![Engine::Tokio.name()], command);
    let results = msg_bench::clients::run_over(&load, transport).map_err(error)?;
    let mut out = crate::output::stdout();
    if args.json {
        report::clients::write_json(&mut out, &meta, &load, &results).context(STDOUT)?;
    } else {
        report::clients::write_table(&mut out, &load, &results).context(STDOUT)?;
    }
    out.flush().context(STDOUT)?;
    Ok(())
}

/// The one size of `--sizes` (else `default`), for a mode (`flag`) that
/// measures one.
fn one_size(args: &BenchArgs, flag: &str, default: usize) -> anyhow::Result<usize> {
    match args.sizes.as_deref() {
        None => Ok(default),
        Some(&[size]) => Ok(size),
        Some(sizes) => Err(usage(format!(
            "{flag} measures one size at a time; --sizes names {}",
            sizes.len()
        ))),
    }
}

/// `msg bench --receivers N`: one sender, N receivers of a group, built-in
/// (`--multicast GROUP`) or remote (GROUP:PORT as ADDR).
fn run_multicast(args: &BenchArgs, count: u32) -> anyhow::Result<()> {
    if args.tcp || args.transports.is_some() {
        return Err(usage(
            "--receivers measures a UDP multicast group: TCP and Unix sockets have one peer \
             per connection; leave out --tcp and --transports",
        ));
    }
    if args.auth.auth()?.is_some() {
        return Err(usage(
            "--receivers measures a group without authentication (msg's tags belong to one \
             peer's session); leave out --secret-file and MSG_SECRET",
        ));
    }
    if args.interval.is_some() {
        return Err(usage(
            "--interval reports one peer's run as it goes; --receivers reports each receiver \
             once, at the end: leave out --interval",
        ));
    }
    let (group, receivers) = match (args.multicast, &args.addr) {
        (Some(group), None) => (group, Receivers::BuiltIn(count)),
        (None, Some(addr)) => (
            multicast::parse_group(addr).map_err(error)?,
            Receivers::Remote(count),
        ),
        (Some(_), Some(_)) => {
            return Err(usage(
                "--multicast GROUP starts built-in receivers, and ADDR names remote ones: \
                 give one of them",
            ));
        }
        (None, None) => {
            return Err(usage(
                "--receivers counts the receivers of a multicast group: name it, with \
                 --multicast GROUP (built-in receivers) or as ADDR (remote msg listen --udp \
                 GROUP:PORT)",
            ));
        }
    };
    let fanout = Fanout {
        group,
        receivers,
        iface: args.iface.clone(),
        ttl: args.ttl,
        mode: args.mode.mode().ok_or_else(|| {
            usage(
                "--mode connect opens connections, and a multicast group has none: \
                 --receivers measures pingpong or throughput",
            )
        })?,
        size: one_size(args, "--receivers", msg_bench::clients::DEFAULT_SIZE)?,
        rate: args.rate,
        warmup: args.warmup,
        duration: args.duration,
        timeout: args.timeout,
    };
    // Receivers and sender on blocking sockets and threads, unpinned.
    let command = std::env::args().collect();
    let meta = Meta::collect("pin off".to_owned(), vec![Engine::Blocking.name()], command);
    let results = multicast::run(&fanout).map_err(error)?;
    let mut out = crate::output::stdout();
    if args.json {
        report::multicast::write_json(&mut out, &meta, &fanout, &results).context(STDOUT)?;
    } else {
        report::multicast::write_table(&mut out, &fanout, &results).context(STDOUT)?;
    }
    // A run no receiver answered measured nothing: shown, and a failure
    // (audit, round eleven: exit 0, even with msg's own receivers, where
    // the interface delivered none of the group's datagrams).
    if results
        .receivers
        .iter()
        .all(|receiver| receiver.received == 0)
    {
        let none = match results.receivers.len() {
            1 => "the receiver did not answer".to_owned(),
            n => format!("none of the {n} receivers answered"),
        };
        anyhow::bail!(
            "{none}: nothing was measured (does the interface deliver the group's datagrams? \
             --iface names it)"
        );
    }
    Ok(())
}

/// msg-bench's error, with the flags that led to it: the plan's refusals,
/// and a program or kernel feature `--impair` needs and does not find, are
/// usage errors (exit 2).
fn error(err: msg_bench::Error) -> anyhow::Error {
    use msg_bench::Error as E;
    match err {
        E::BusyPollOnOneCore => usage(
            "--busy-poll needs the client and the listeners on different cores \
             (--pin cross or off): on one core each spinner would hold up the other",
        ),
        E::BusyPollBothEngines => usage(
            "--io both cannot --busy-poll: the tokio listeners spin all the time and would \
             hold up the blocking ones on their core; measure each engine on its own",
        ),
        E::BatchNeedsThroughput => usage(
            "--batch batches a one-way stream: use it with --mode throughput \
             (a ping-pong has one message in flight, nothing to batch)",
        ),
        E::BatchNeedsUdp => usage(
            "--batch sends UDP datagrams many per system call; a stream (TCP, a Unix \
             socket) needs no batching (it already carries many messages per write)",
        ),
        E::NotInBlockingEngine(_) => usage(format!("--io: {err}; use --io tokio")),
        E::ReverseNeedsThroughput => usage(
            "--reverse and --bidir turn a throughput stream around: use them with --mode \
                 throughput",
        ),
        E::ReverseNeedsConnections(_) => usage(format!(
            "--reverse, --bidir: {err}; measure TCP (--tcp) or a Unix socket (--transports unix)"
        )),
        E::ReverseWith(_) => usage(format!(
            "--reverse, --bidir: {err}; leave out --rate, --batch and --impair"
        )),
        E::ReverseTooLong => usage(format!("--duration: {err}")),
        E::ParallelNeedsThroughput => usage(
            "--parallel runs throughput streams: use it with --mode throughput (a ping-pong \
             measures one message in flight on one connection)",
        ),
        E::ParallelBatched => usage(
            "--parallel and --batch: each flow's datagrams per call would be counted with the \
             other flows' by the one listener; measure them apart",
        ),
        E::ParallelImpaired => usage(
            "--parallel and --impair: the kernel's counters under impairment are the \
             namespace's, not a flow's; measure them apart",
        ),
        E::ImpairNotInet(transport) => usage(format!(
            "--impair impairs the loopback interface, which {transport} never crosses (a Unix \
             socket goes from process to process inside the kernel): leave {transport} out of \
             --transports, or measure it without --impair"
        )),
        E::ClientsNeedConnections(transport) => {
            let with: Vec<&str> = Transport::ALL
                .iter()
                .filter(|t| t.caps().connections)
                .map(|t| t.name())
                .collect();
            usage(format!(
                "--clients opens connections, and {transport} has none to open: name one \
                 that has, --transports {}",
                with.join(" or ")
            ))
        }
        E::TlsRemote => usage(format!("--transports: {err}; leave ADDR out")),
        E::NotInConnectMode(_) => usage(format!("--mode connect: {err}")),
        E::ImpairRemote => usage(
            "--impair measures the built-in listeners inside a network namespace of its \
             own, from which ADDR cannot be reached: leave ADDR out",
        ),
        E::NoCpuList => usage("--pin: cannot list the CPUs this process may use; try --pin off"),
        E::TooFewCpus { available } => usage(format!(
            "--pin cross needs two CPUs; this process may use {available}"
        )),
        E::MissingProgram {
            spec,
            program,
            package,
        } => usage(format!(
            "--impair '{spec}' needs the program '{program}', which is not installed \
             (the package {package})"
        )),
        E::NoQdisc {
            spec,
            qdisc,
            config,
            words,
            stderr,
        } => usage(format!(
            "--impair '{spec}': this kernel has no {qdisc} queueing discipline (sch_{qdisc}, \
             {config}), which {words} need; tc says: {stderr}. Loss works without it \
             (nftables), e.g. --impair 'loss 2%'"
        )),
        E::OpenFiles {
            clients,
            needed,
            hard,
            why,
        } => anyhow!(
            "--clients {clients} needs about {needed} open files ({why}), and the hard limit \
             (RLIMIT_NOFILE) is {hard}: raise it (ulimit -Hn as root, LimitNOFILE= in a \
             systemd unit) or use fewer clients"
        ),
        E::Empty(_) | E::NothingFits(_) => usage(err.to_string()),
        E::NotAGroup(_) => usage(format!("ADDR: {err}; --receivers measures a group")),
        E::Receivers(_) => usage(format!("--receivers: {err}")),
        E::GroupNeedsPort(_) | E::GroupOversize { .. } => usage(err.to_string()),
        // The group's options, refused as listen and send refuse them
        // (exit 2; audit, round eleven: exit 1 here); joining and sending
        // stay runtime failures.
        E::Group(ref group)
            if !matches!(
                group,
                msg_net::group::GroupError::Join { .. } | msg_net::group::GroupError::Socket { .. }
            ) =>
        {
            usage(crate::hint::group(group))
        }
        E::GroupSend { group, ref source }
            if source.kind() == io::ErrorKind::NetworkUnreachable =>
        {
            // An IPv6 group's interface goes by name or index, never an
            // address (audit, round eleven: the hint gave 127.0.0.1).
            let how = if group.is_ipv6() {
                "by its name or index (--iface eth0)"
            } else {
                "(--iface eth0, or --iface 127.0.0.1 for receivers on this host)"
            };
            anyhow::Error::from(err).context(format!(
                "no route to the group: name the interface to send it on {how}"
            ))
        }
        E::FastOpen(why) => usage(format!("--tfo: {why}")),
        E::Cycle { transport, source } if matches!(*source, E::PortsExhausted { .. }) => anyhow!(
            "{transport} connect cycle: {source}; with --close rst (the default) nothing \
             waits in TIME_WAIT"
        ),
        err => err.into(),
    }
}

/// Enters the private network namespace an impaired run happens in
/// (msg-bench's `netns` makes it, and runs msg again inside): `Some` is
/// the exit code of that run, for the process the user started.
#[cfg(target_os = "linux")]
fn enter_namespace() -> anyhow::Result<Option<ExitCode>> {
    use msg_bench::netns::{self, NetnsError};
    let entered = netns::enter().map_err(|err| match err {
        NetnsError::Unshare { .. } => usage(format!("--impair: {err}")),
        err => err.into(),
    })?;
    Ok(entered.map(ExitCode::from))
}

#[cfg(not(target_os = "linux"))]
fn enter_namespace() -> anyhow::Result<Option<ExitCode>> {
    Err(usage(
        "--impair needs Linux: network namespaces, nftables and tc",
    ))
}

/// A progress bar on stderr, drawn only when stderr is a terminal and only
/// between runs, never from inside one; and `--interval`'s lines on
/// stdout, as each interval ends.
#[derive(Debug)]
pub(super) struct Bar {
    bar: ProgressBar,
    json: bool,
}

impl Bar {
    /// Nothing drawn until [`msg_bench::Progress::start`]; intervals as
    /// JSON Lines or text.
    pub(super) fn new(json: bool) -> Self {
        Self {
            bar: ProgressBar::hidden(),
            json,
        }
    }
}

impl msg_bench::Progress for Bar {
    fn start(&mut self, runs: u64, each: Duration) {
        let bar = ProgressBar::with_draw_target(Some(runs), ProgressDrawTarget::hidden());
        if io::stderr().is_terminal() {
            bar.set_draw_target(ProgressDrawTarget::stderr());
            let style =
                ProgressStyle::with_template("{msg:24} [{bar:24}] {pos}/{len}, ~{eta} left")
                    .expect("a valid template")
                    .progress_chars("=> ");
            bar.set_style(style);
            info!("{runs} runs of {}", humantime::format_duration(each));
        }
        self.bar = bar;
    }

    fn run(&mut self, what: &str) {
        self.bar.set_message(what.to_owned());
    }

    fn done(&mut self) {
        self.bar.inc(1);
    }

    fn interval(&mut self, of: &msg_bench::IntervalOf, interval: &msg_bench::Interval) {
        let out = &mut crate::output::stdout();
        // Written between two round trips: a stdout that fails (a closed
        // pipe) is found again, and reported, when the report is written.
        let _ = self.bar.suspend(|| match self.json {
            true => report::intervals::write_interval_json(out, of, interval),
            false => report::intervals::write_interval_text(out, of, interval),
        });
    }
}
