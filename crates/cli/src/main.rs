//! `msg`: send messages over UDP and TCP, and measure how the two differ.
//!
//! This crate is flags, rendering and exit codes; what msg does lives in
//! `msg-net` below it, and how it measures in `msg-bench`.
//!
//! - `cli`: the top of the command line (clap): `msg` and its subcommands.
//! - `args`: flag groups the subcommands share, and the usage-error type.
//! - `cmd`: one module per subcommand, its flags beside the code that runs
//!   it: `send`, `connect` (a two-way session, as netcat's), `listen`, `bench` (its flags turned into a msg-bench
//!   plan, and the progress bar), `exec`
//!   (a command on an authenticated listener), `keygen` (a new secret),
//!   `demo` (the flags of msg-demo's lessons, `sticky`, `unix`,
//!   `reuseaddr` and `hol`), and
//!   `completions` (shell completions and the man page).
//! - `hint`: the flags behind the libraries' errors and a listener's
//!   refusals, which name none themselves.
//! - `output`: how messages are printed (plain lines or JSON, escaped for
//!   a terminal); a listener's through msg-net's printing thread, into
//!   stdout, with progress bars for its files.
//!
//! Exit codes: 0 success, 1 runtime error, 2 usage error. A closed stdout
//! (`msg listen | head -1`) is success, as it is for other Unix filters. A
//! closed stderr changes nothing: what would have gone there is lost, and
//! the exit code still says how it went (`eprintln!`, which panics when it
//! cannot write, is not used; clippy's `print_stderr` keeps it out).

#![warn(clippy::print_stderr)]

use std::io::{self, IsTerminal};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::CommandFactory;
use tracing_subscriber::EnvFilter;

mod args;
mod cli;
mod cmd;
mod hint;
mod output;
mod stderr;

use cli::{Cli, Command};

/// Not glibc's malloc: where it placed rustls's copy of each decrypted
/// record made that copy the slowest part of a TLS stream on AMD Zen (see
/// the workspace's Cargo.toml and BENCHMARKS.md). Nothing else in msg
/// depends on the allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    msg_net::shutdown::ignore_file_size_signal();
    let cli = match cli::parse() {
        Ok(cli) => cli,
        Err(err) if err.kind() == clap::error::ErrorKind::InvalidUtf8 => {
            output::stderr_line(format_args!("msg: {}", not_utf8()));
            return ExitCode::from(2);
        }
        // clap's own `exit` ignores a failed write: `msg --help > /dev/full`
        // exited 0 with the help lost (audit, round five). Help and the
        // version that cannot be written are said, exit 1 (a closed pipe
        // is success, as for every command); a usage error stays exit 2.
        Err(err) => {
            let code = u8::try_from(err.exit_code()).unwrap_or(2);
            return match (err.print(), code) {
                (Err(io), 0) if io.kind() != io::ErrorKind::BrokenPipe => {
                    output::stderr_line(format_args!("msg: cannot write to stdout: {io}"));
                    ExitCode::from(1)
                }
                _ => ExitCode::from(code),
            };
        }
    };
    // Kept to the end: dropped, it gives the log thread a moment to write
    // what is queued.
    let _logs = init_tracing(&cli.verbosity);
    match run(cli) {
        Ok(code) => code,
        Err(err) if is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            output::stderr_line(format_args!("msg: {}", hint::chain(&err)));
            if err.downcast_ref::<args::UsageError>().is_some() {
                ExitCode::from(2)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

/// Runs the subcommand; its exit code when it succeeds (`msg exec` exits
/// as its remote command did).
fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let quiet = cli.verbosity.quiet;
    if !matches!(
        cli.command,
        Command::Completions(_) | Command::Man(_) | Command::Keygen(_)
    ) {
        enough_open_files()?;
    }
    match cli.command {
        Command::Bench(args) => return cmd::bench::run(args),
        Command::Demo(args) => cmd::demo::run(args)?,
        Command::Send(args) => runtime()?.block_on(cmd::send::run(args, quiet))?,
        Command::Connect(args) => {
            let runtime = runtime()?;
            let result = runtime.block_on(cmd::connect::run(args));
            // A peer that closed first leaves a read of stdin blocked in
            // the runtime's thread pool: exit without waiting for a line.
            runtime.shutdown_background();
            result?;
        }
        Command::Listen(args) => {
            no_huge_pages();
            let runtime = runtime()?;
            let shutdown = {
                let _inside = runtime.enter();
                msg_net::shutdown::on_signal()
            };
            return runtime.block_on(cmd::listen::run(args, quiet, shutdown));
        }
        Command::Exec(args) => return runtime()?.block_on(cmd::exec::run(args)),
        Command::Keygen(args) => cmd::keygen::run(&args)?,
        Command::Completions(args) => {
            cmd::completions::completions(&args, Cli::command(), &mut output::stdout())
                .context("cannot write to stdout")?;
        }
        Command::Man(_) => cmd::completions::man(&Cli::command(), &mut output::stdout())
            .context("cannot write to stdout")?,
    }
    Ok(ExitCode::SUCCESS)
}

/// No transparent huge pages for a listener. mimalloc asks for them
/// (MADV_HUGEPAGE) on the memory it reserves, and each thread has its own
/// heap: where the system grants them on request (`madvise`, a common
/// default), every connection of the blocking engine's, a thread each,
/// touched a 2 MiB page of its own. 1,000 peers that sent a 4-byte frame
/// prefix each held 700 MB (124 MB on the tokio engine), 500 idle
/// seqpacket clients 1.2 GB; without them, 54 and 39 MB, what a connection
/// costs following what it sends. The same as MIMALLOC_ALLOW_THP=0, which
/// is read too early to set here; a command `msg exec` runs gets them back.
/// `msg bench`, whose listeners serve only its own client, keeps them.
fn no_huge_pages() {
    #[cfg(target_os = "linux")]
    let _ = rustix::thread::disable_transparent_huge_pages(true);
}

/// The fewest open files a command that talks to peers runs with: the
/// three standard streams, the runtime's (epoll, its waker, the signal
/// pair), the log's, a socket or two and a file. Below it tokio's signal
/// set-up, which expects its socket pair, panicked (`ulimit -n 6`;
/// audit, round seven), and a few more failed as a bare "Too many open
/// files" before anything was named. Refused at start, naming the limit.
const MIN_OPEN_FILES: u64 = 16;

/// Refuses to start below [`MIN_OPEN_FILES`] (exit 1: the environment's
/// fault, not the command line's).
fn enough_open_files() -> anyhow::Result<()> {
    #[cfg(target_os = "linux")]
    if let Some(limit) = rustix::process::getrlimit(rustix::process::Resource::Nofile).current
        && limit < MIN_OPEN_FILES
    {
        anyhow::bail!(
            "this process may open only {limit} files at once (ulimit -n, RLIMIT_NOFILE), \
             and msg needs {MIN_OPEN_FILES}: raise the limit"
        );
    }
    Ok(())
}

/// `send` and `listen` are I/O-bound and mostly one conversation at a time:
/// a current-thread runtime avoids cross-thread wake-ups.
fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

/// Logs to stderr: into a pipe or a file through `stderr`'s queue and
/// thread, in order with msg's own lines, so that a stderr nobody reads
/// blocks neither the serving nor a stop; on a terminal at once. The
/// guard returned, dropped at the end of `main`, gives what is queued a
/// second at most.
fn init_tracing(verbosity: &cli::Verbosity) -> Option<stderr::Guard> {
    let level = match (verbosity.quiet, verbosity.verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "info",
        (false, 2) => "debug",
        (false, _) => "trace",
    };
    // rustls warns of what a peer sends (a TLS warning alert, a request to
    // renegotiate) on every connection, outside msg's rate limit: a peer
    // could fill the log with them. msg says why it drops a connection
    // itself, once a second at most; rustls's own lines show at -vv, or
    // with RUST_LOG.
    let rustls = if verbosity.verbose >= 2 {
        ""
    } else {
        ",rustls=error"
    };
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(format!("{level}{rustls}")));
    let terminal = io::stderr().is_terminal();
    let guard = stderr::start();
    let writer = tracing_subscriber::fmt::writer::BoxMakeWriter::new(stderr::Event::default);
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_target(false)
        .with_ansi(terminal)
        .without_time()
        // On a failed write it would report the failure with `eprintln!`,
        // to the same broken stderr, and panic.
        .log_internal_errors(false)
        .init();
    guard
}

/// Whether `err` is our stdout closing under us (`msg listen | head -1`),
/// which is success, as for other filters. A broken pipe on a connection
/// is a failed send, not that: the network's errors come wrapped in
/// msg-net's, and only its `Output` (our own output) counts.
fn is_broken_pipe(err: &anyhow::Error) -> bool {
    let broken = |io: &io::Error| io.kind() == io::ErrorKind::BrokenPipe;
    for cause in err.chain() {
        if let Some(net) = cause.downcast_ref::<msg_net::Error>() {
            return matches!(net, msg_net::Error::Output(io) if broken(io));
        }
        if cause.downcast_ref::<io::Error>().is_some_and(broken) {
            return true;
        }
    }
    false
}

/// Which argument is not UTF-8, shown escaped, and how to send such bytes:
/// clap only says that one of them is not.
fn not_utf8() -> String {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let (n, arg) = args
        .iter()
        .enumerate()
        .skip(1)
        .find(|(_, arg)| arg.to_str().is_none())
        .map_or((0, String::new()), |(n, arg)| {
            let mut shown = Vec::new();
            // The escaping a peer's bytes get: nothing reaches the
            // terminal's control sequences.
            let _ = msg_net::text::write_escaped(&mut shown, arg.as_encoded_bytes());
            (n, String::from_utf8_lossy(&shown).into_owned())
        });
    format!(
        "argument {n} (\"{arg}\") is not UTF-8: msg takes its flags, addresses and message \
         arguments as text; send other bytes on stdin (printf '\\377' | msg send --udp ADDR)"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn broken() -> io::Error {
        io::Error::from(io::ErrorKind::BrokenPipe)
    }

    #[test]
    fn only_our_own_output_closing_is_success() {
        // `msg listen | head -1`: stdout's own error.
        let stdout = anyhow::Error::new(broken()).context("cannot write to stdout");
        assert!(is_broken_pipe(&stdout));
        // A remote command's output into a closed stdout.
        let output = anyhow::Error::new(msg_net::Error::Output(broken()));
        assert!(is_broken_pipe(&output));
        // A peer that closed while we were sending: a failed send.
        let peer =
            anyhow::Error::new(msg_net::Error::Io(broken())).context("cannot send message 3");
        assert!(!is_broken_pipe(&peer));
    }
}
