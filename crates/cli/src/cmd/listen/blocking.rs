//! `msg listen --io blocking`: the same framed listener on the blocking
//! engine (`msg_net::blocking`), a thread per UDP socket or TCP
//! connection, each sleeping in its system call (or, with `--busy-poll`,
//! spinning on `recv` while messages keep coming).
//!
//! It serves data (with `--reply`), pings, discards and statistics pings,
//! with the same limits, output and summary as the tokio listener, and
//! with a secret too (over TCP the same handshake); what only the tokio
//! listener does (`--raw`, `--save-dir`, `--exec`) is refused as a usage
//! error. `--batch N` takes up to N datagrams per receive call here too.

use std::future::Future;
use std::process::ExitCode;

use anyhow::Context;
use msg_net::{ServeConfig, blocking};
use tracing::info;

use super::{ListenArgs, Stop};
use crate::args::usage;
use crate::output;

/// `--io` of `msg listen`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum ListenIo {
    /// The tokio runtime: every feature
    Tokio,
    /// std sockets and blocking system calls, a thread per conversation:
    /// framed data, pings and echo only
    Blocking,
}

/// Refuses what the blocking engine does not serve: raw mode, files and
/// commands.
fn check(args: &ListenArgs) -> anyhow::Result<()> {
    super::check_batch(args)?;
    for (asked, what) in [
        (args.raw, "--raw"),
        (args.save_dir.is_some(), "--save-dir"),
        (args.exec.exec, "--exec"),
    ] {
        if asked {
            return Err(usage(format!(
                "--io blocking serves framed data, pings and echo only; {what} needs --io tokio"
            )));
        }
    }
    Ok(())
}

/// Runs the blocking listener until `--count` messages have been printed,
/// stdout closes, an error, or `shutdown` completes.
pub(super) async fn run(
    args: ListenArgs,
    quiet: bool,
    shutdown: impl Future<Output = Stop>,
) -> anyhow::Result<ExitCode> {
    check(&args)?;
    let transport = args.transport.transport();
    let addr = transport.listen_addr(&args.addr()?).await?;
    let listener = match args.join.group(transport, &addr)? {
        Some((group, options)) => blocking::Listener::join(group, &options)?,
        None => blocking::Listener::bind(transport, addr, args.stream_options())?,
    };
    args.receive_buffer(|bytes| listener.set_recv_buffer(bytes))?;
    info!("listening on {listener}");

    let format = args.output.format(args.json, false);
    let (mut printing, events) = output::start_printing(format, args.count)?;
    let config = ServeConfig {
        auth: args.auth.auth()?,
        limits: args.limits(),
        counters: printing.counters(),
        reply: args.reply.into(),
        busy_poll: args.busy_poll,
        udp_batch: args.batch.map_or(0, usize::from),
        allow_uids: args.unix.allow_uid.clone(),
        // Who sent each Unix datagram, for the log and --json.
        senders: true,
        explain: Some(crate::hint::chain_of),
        ..ServeConfig::default()
    };
    let mut serving =
        blocking::spawn(listener, config, events).context("cannot start the listener's thread")?;
    let counters = printing.counters();
    let mut stopped = None;
    tokio::select! {
        stop = shutdown => {
            info!("stopping ({stop:?})");
            stopped = Some(stop);
        }
        () = printing.done() => {}
        () = serving.ended() => {}
        () = args.first_connection_served(&counters) => {}
    }
    let served = serving.stop().await?;
    let (kernel, unread) = (served.kernel_drops, served.unread);
    super::finish(
        printing,
        served.result,
        (kernel, None),
        unread,
        &args,
        quiet,
    )
    .await?;
    Ok(args
        .once_ended(&counters, stopped)
        .unwrap_or(ExitCode::SUCCESS))
}
