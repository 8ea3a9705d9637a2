//! `msg listen`: receive messages, print them, and optionally answer.
//!
//! The serving is msg-net's [`serve`]; this file binds, starts the printing
//! thread, and decides when to stop: after `--count` messages, when stdout
//! is gone, or on Ctrl-C.

use std::future::Future;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use msg_net::exec::ExecConfig;
use msg_net::file::SaveConfig;
use msg_net::{Events, Listener, ServeConfig, Transport, resolve, serve};
use tracing::{info, warn};

use crate::args::{
    AuthArgs, OutputArgs, ReplyArg, TcpArgs, TransportArg, parse_host_port,
    parse_positive_duration, usage,
};
use crate::output;

/// After Ctrl-C, how long the printing thread gets to write what is
/// queued; a stdout that is blocked does not hold the exit up longer.
const DRAIN: Duration = Duration::from_secs(1);

#[derive(Debug, Args)]
pub(crate) struct ListenArgs {
    #[command(flatten)]
    pub(crate) transport: TransportArg,

    #[arg(value_name = "ADDR", default_value = "127.0.0.1:9000", value_parser = parse_host_port,
          help = "Where to listen: HOST:PORT, e.g. 127.0.0.1:9000 or [::1]:9000")]
    pub(crate) addr: String,

    /// Exit after N messages (with --raw over TCP: N reads)
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) count: Option<u64>,

    /// Answer each message
    #[arg(long, value_enum, default_value_t = ReplyArg::None)]
    pub(crate) reply: ReplyArg,

    /// No header and no framing: print the bytes as they arrive (over TCP,
    /// that shows the stream has no message boundaries)
    #[arg(long)]
    pub(crate) raw: bool,

    /// One JSON object per line: {"peer":..,"seq":..,"len":..,"body":..}
    /// ("body_b64" when the body is not UTF-8)
    #[arg(long, conflicts_with = "null")]
    pub(crate) json: bool,

    #[command(flatten)]
    pub(crate) output: OutputArgs,

    /// Poll the sockets in a loop instead of sleeping until a message
    /// arrives: lower latency when the peer runs on another core, at the
    /// cost of a core kept 100 % busy
    #[arg(long)]
    pub(crate) busy_poll: bool,

    /// Save the files that peers send (`msg send --tcp --file`) in DIR (TCP);
    /// each counts as one message for --count
    #[arg(long, value_name = "DIR")]
    pub(crate) save_dir: Option<PathBuf>,

    /// Replace a file of the same name in --save-dir instead of refusing it
    #[arg(long, requires = "save_dir")]
    pub(crate) overwrite: bool,

    #[command(flatten)]
    pub(crate) exec: ExecArgs,

    #[command(flatten)]
    pub(crate) tcp: TcpArgs,

    #[command(flatten)]
    pub(crate) auth: AuthArgs,
}

/// Remote commands (`msg exec`), for authenticated peers only.
#[derive(Debug, Args)]
pub(crate) struct ExecArgs {
    /// Run the commands that authenticated peers send with `msg exec`
    /// (TCP; needs --secret-file or MSG_SECRET). Without --exec-allow, any
    /// program on this listener's PATH may run, as this listener's user
    #[arg(long)]
    pub(crate) exec: bool,

    /// Kill a command (its whole process group) that runs longer than this
    #[arg(long, value_name = "DURATION", default_value = "60s", requires = "exec",
          value_parser = parse_positive_duration)]
    pub(crate) exec_timeout: Duration,

    /// Kill a command that writes more than this many bytes of output
    #[arg(long, value_name = "BYTES", default_value_t = 16 * 1024 * 1024, requires = "exec")]
    pub(crate) exec_max_output: u64,

    /// How many commands may run at once; one more is refused
    #[arg(long, value_name = "N", default_value_t = 4, requires = "exec",
          value_parser = clap::value_parser!(u64).range(1..=1024))]
    pub(crate) exec_max: u64,

    /// Only these programs may run (repeatable; compared with the program
    /// exactly as the client names it)
    #[arg(long, value_name = "PROGRAM", requires = "exec")]
    pub(crate) exec_allow: Vec<String>,
}

/// Runs the listener until `--count` messages have been printed, stdout
/// closes, an error, or `shutdown` completes (Ctrl-C in the binary).
pub(crate) async fn run(
    args: ListenArgs,
    quiet: bool,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let auth = args.auth.auth()?;
    if auth.is_some() && args.raw {
        return Err(usage(
            "--raw has no header to authenticate: drop --raw, or the secret",
        ));
    }
    let transport = args.transport.transport();
    if args.save_dir.is_some() && (transport == Transport::Udp || args.raw) {
        return Err(usage(
            "--save-dir needs framed --tcp: a file must arrive whole, with its name and hash",
        ));
    }
    let save = match &args.save_dir {
        Some(dir) => {
            msg_net::file::check_save_dir(dir)
                .with_context(|| format!("cannot save files in {}", dir.display()))?;
            Some(SaveConfig {
                dir: dir.clone(),
                overwrite: args.overwrite,
                // Progress bars go to stderr, and only to a terminal.
                progress: !quiet && std::io::stderr().is_terminal(),
            })
        }
        None => None,
    };
    let exec = if args.exec.exec {
        if auth.is_none() {
            return Err(usage(
                "--exec runs commands only for authenticated peers: give it a secret \
                 with --secret-file or MSG_SECRET",
            ));
        }
        if transport == Transport::Udp || args.raw {
            return Err(usage("--exec needs framed --tcp"));
        }
        Some(ExecConfig {
            timeout: args.exec.exec_timeout,
            max_output: args.exec.exec_max_output,
            max_running: usize::try_from(args.exec.exec_max).unwrap_or(usize::MAX),
            allow: args.exec.exec_allow.clone(),
        })
    } else {
        None
    };
    let addr = resolve(&args.addr).await?;
    let listener = Listener::bind(transport, addr, args.tcp.options()).await?;
    info!("listening on {listener}");

    let (events, received) = Events::channel();
    let format = args
        .output
        .format(args.json, args.raw && transport == Transport::Tcp);
    let mut writer = output::spawn_writer(received, format, args.count)
        .context("cannot start the output thread")?;
    let config = ServeConfig {
        auth,
        save,
        exec,
        reply: args.reply.into(),
        raw: args.raw,
        busy_poll: args.busy_poll,
    };
    let counting = events.clone();
    let served = serve(listener, config, events, async {
        tokio::select! {
            () = shutdown => info!("interrupted"),
            () = writer.done() => {}
        }
    })
    .await;

    let dropped = counting.dropped();
    // The last sender: once it is gone the thread sees the queue close.
    drop(counting);
    if dropped > 0 {
        warn!("dropped {dropped} UDP messages: the output did not keep up");
    }
    served?;
    if !writer.is_done() && tokio::time::timeout(DRAIN, writer.done()).await.is_err() {
        warn!("stdout is blocked: exiting without printing what is queued");
        return Ok(());
    }
    writer.join().context("cannot write to stdout")
}
