//! `msg listen`: receive messages, print them, and optionally answer.
//!
//! The serving is msg-net's [`serve`]; this file binds, starts the printing
//! thread, and decides when to stop: after `--count` messages, when stdout
//! is gone, or on Ctrl-C (or SIGTERM, or SIGHUP).

use std::future::Future;
use std::io::IsTerminal;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use msg_net::exec::{EnvError, ExecConfig};
use msg_net::file::SaveConfig;
use msg_net::text::path_text;
use msg_net::{BufferDrops, KernelDrops, Limits, Listener, ServeConfig, Summary, Transport, serve};
use tracing::{info, warn};

pub(crate) use msg_net::shutdown::Stop;

use crate::args::{
    AuthArgs, FramingArg, Given, JoinArgs, LENGTH_NO_RAW, LENGTH_NO_SECRET, OutputArgs, ReplyArg,
    SECRET_ENV, TcpArgs, TlsListenArgs, TransportArg, parse_addr, parse_positive_duration, usage,
};
use crate::output::{self, Printing};

mod blocking;

use blocking::ListenIo;

#[derive(Debug, Args)]
pub(crate) struct ListenArgs {
    #[command(flatten)]
    pub(crate) transport: TransportArg,

    #[arg(
        value_name = "ADDR",
        help = "Where to listen: HOST:PORT, e.g. 127.0.0.1:9000 or [::1]:9000, or a PORT alone for 127.0.0.1:PORT [default: 127.0.0.1:9000]; with --unix, the socket's path (or @NAME)"
    )]
    pub(crate) addr: Option<String>,

    /// Exit after N messages (with --raw over TCP: N reads)
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) count: Option<u64>,

    /// Exit when the first connection ends, as nc's listener does (over
    /// --tcp, --unix, --seqpacket or --quic); meanwhile it is the only one
    /// served, others told so and closed
    #[arg(long, conflicts_with = "max_conns")]
    pub(crate) once: bool,

    /// Answer each message
    #[arg(long, value_enum, default_value_t = ReplyArg::None)]
    pub(crate) reply: ReplyArg,

    /// No header and no framing: print the bytes as they arrive (over TCP,
    /// that shows the stream has no message boundaries)
    #[arg(long)]
    pub(crate) raw: bool,

    /// With --raw, each read (over UDP, each datagram) on a line of its
    /// own behind its length, `[5 bytes] hello`: where the kernel's reads
    /// cut the stream
    #[arg(long, requires = "raw", conflicts_with_all = ["null", "hex"])]
    pub(crate) reads: bool,

    /// How messages are told apart on a byte stream (TCP, Unix, QUIC): `msg`
    /// frames, or `length`, a bare 4-byte big-endian length and the body, for
    /// peers that are not msg (replies are framed the same way)
    #[arg(long, value_enum, value_name = "FRAMING", default_value_t = FramingArg::Msg)]
    pub(crate) framing: FramingArg,

    /// One JSON object per line: {"peer":..,"seq":..,"len":..,"body":..}
    /// ("body_b64" when the body is not UTF-8; no "seq" with --raw or
    /// --framing length, which number nothing)
    #[arg(long, conflicts_with_all = ["null", "hex", "reads"])]
    pub(crate) json: bool,

    #[command(flatten)]
    pub(crate) output: OutputArgs,

    /// Poll the sockets in a loop instead of sleeping until a message
    /// arrives: lower latency when the peer runs on another core, at the
    /// cost of a core kept 100 % busy
    #[arg(long)]
    pub(crate) busy_poll: bool,

    /// Save the files that peers send (`msg send --file`) in DIR, made
    /// owner-only (0700) if missing; each counts as one message for --count.
    /// Over a connection: --tcp, --unix, --seqpacket, --quic
    #[arg(long, value_name = "DIR")]
    pub(crate) save_dir: Option<PathBuf>,

    /// Replace a file of the same name in --save-dir instead of refusing it
    #[arg(long, requires = "save_dir")]
    pub(crate) overwrite: bool,

    /// How long a partial file kept for a sender to resume (`msg send
    /// --resume`, cut off mid-file) stays in --save-dir after its last
    /// write, e.g. 30m, 7d; older ones are removed at start and while the
    /// listener runs
    #[arg(long, value_name = "DURATION", default_value = "24h", requires = "save_dir",
          value_parser = parse_positive_duration)]
    pub(crate) partial_max_age: Duration,

    /// On exit, a summary of what arrived and what was dropped: a line on
    /// stderr (text), a last JSON object on stdout (json), or nothing
    #[arg(long, value_enum, default_value_t = SummaryArg::Text)]
    pub(crate) summary: SummaryArg,

    /// Ask the kernel for a UDP receive buffer of this many bytes, so that
    /// bursts wait instead of being dropped (see the summary's kernel drops)
    #[arg(long, value_name = "BYTES")]
    pub(crate) rcvbuf: Option<usize>,

    /// Over UDP, take up to N datagrams per receive call (recvmmsg), and
    /// runs of datagrams coalesced by the kernel (UDP GRO) where it offers
    /// it: for a sender that sends many per call (msg bench --batch). The
    /// summary says how many each call took
    #[arg(long, value_name = "N",
          value_parser = clap::value_parser!(u16).range(2..=msg_net::MAX_BATCH as i64))]
    pub(crate) batch: Option<u16>,

    #[command(flatten)]
    pub(crate) limits: LimitArgs,

    #[command(flatten)]
    pub(crate) exec: ExecArgs,

    #[command(flatten)]
    pub(crate) tcp: TcpArgs,

    #[command(flatten)]
    pub(crate) auth: AuthArgs,

    #[command(flatten)]
    pub(crate) join: JoinArgs,

    #[command(flatten)]
    pub(crate) unix: UnixArgs,

    #[command(flatten)]
    pub(crate) tls: TlsListenArgs,

    /// The engine: tokio (every feature), or blocking (std sockets and
    /// blocking system calls, a thread per conversation; framed data,
    /// pings and echo, with or without a secret; no --raw, --save-dir,
    /// --exec, --tls or QUIC)
    #[arg(long, value_enum, default_value_t = ListenIo::Tokio)]
    pub(crate) io: ListenIo,

    /// The flags named on the command line (`cli::parse`).
    #[arg(skip)]
    pub(crate) given: Given,
}

/// What only a Unix socket's listener has.
#[derive(Debug, Args)]
pub(crate) struct UnixArgs {
    /// With --unix, --unix-dgram or --seqpacket, the socket file's mode in
    /// octal, which decides who may connect or send [default: 600, its
    /// owner only]
    #[arg(long, value_name = "MODE", value_parser = msg_net::limits::parse_socket_mode)]
    pub(crate) socket_mode: Option<u32>,

    /// With --unix, --unix-dgram or --seqpacket, serve only processes of
    /// this user id, as the kernel says who connected (SO_PEERCRED) or
    /// sent each datagram (SO_PASSCRED); others are told so and closed,
    /// and their datagrams dropped unread. Repeat, or list with commas, for
    /// several
    #[arg(long, value_name = "UID", value_delimiter = ',')]
    pub(crate) allow_uid: Vec<u32>,
}

impl ListenArgs {
    /// What each peer may cost: with --once, one connection at a time.
    pub(crate) fn limits(&self) -> Limits {
        let mut limits = self.limits.limits();
        if self.once {
            limits.max_conns = 1;
        }
        limits
    }

    /// With --once, completes when the first connection served has ended
    /// (and says so); without, never.
    pub(crate) async fn first_connection_served(&self, counters: &msg_net::Counters) {
        if !self.once {
            return std::future::pending().await;
        }
        counters.connection_served().await;
        info!("the connection ended: stopping (--once)");
    }

    /// With --once, exit 1 when its one connection ended in an error (reset,
    /// a TLS session cut, a frame cut off): what it carried (`> file`)
    /// may be incomplete, and that must not look received (audit, round
    /// nine). The warning above says why.
    fn once_failed(&self, counters: &msg_net::Counters) -> Option<ExitCode> {
        if !(self.once && counters.served_failed()) {
            return None;
        }
        output::stderr_line(format_args!(
            "msg listen: the connection (--once) ended in an error: what it carried may be \
             incomplete"
        ));
        Some(ExitCode::FAILURE)
    }

    /// With --once, how its one connection's end makes the exit code,
    /// on either engine: [`ListenArgs::once_failed`], else
    /// [`ListenArgs::once_cut`] by the signal that stopped it, if one did.
    pub(crate) fn once_ended(
        &self,
        counters: &msg_net::Counters,
        stop: Option<Stop>,
    ) -> Option<ExitCode> {
        self.once_failed(counters)
            .or_else(|| self.once_cut(counters, stop))
    }

    /// With --once, a signal's exit code (130, 143, 129) when it stopped
    /// the listener while its one connection was still open: what it
    /// carried (`> file`) is cut short, as nc's listener says by exiting
    /// so (audit, round thirteen: exit 0 with 2.3 of 6 MB).
    fn once_cut(&self, counters: &msg_net::Counters, stop: Option<Stop>) -> Option<ExitCode> {
        let stop = stop.filter(|_| self.once && counters.open() > 0)?;
        output::stderr_line(format_args!(
            "msg listen: stopped ({stop:?}) while the connection (--once) was open: what it \
             carried is cut short"
        ));
        Some(ExitCode::from(stop.code()))
    }

    /// Where to listen, checked for the transport: a Unix socket needs its
    /// path, an IP listener defaults to 127.0.0.1:9000.
    pub(crate) fn addr(&self) -> anyhow::Result<String> {
        let transport = self.transport.transport();
        let unix_only = self.unix.socket_mode.is_some() || !self.unix.allow_uid.is_empty();
        if unix_only && transport.is_inet() {
            return Err(usage(
                "--socket-mode and --allow-uid are for Unix socket listeners (--unix, \
                 --unix-dgram, --seqpacket)",
            ));
        }
        match &self.addr {
            Some(addr) => parse_addr(transport, addr),
            None if transport.is_inet() => Ok("127.0.0.1:9000".to_owned()),
            None => Err(usage(format!(
                "--{transport} needs the socket's path: msg listen --{transport} PATH"
            ))),
        }
    }

    /// `--rcvbuf`, asked of the kernel through `set` (a UDP listener's,
    /// on either engine).
    pub(crate) fn receive_buffer(
        &self,
        set: impl FnOnce(usize) -> std::io::Result<usize>,
    ) -> anyhow::Result<()> {
        let Some(bytes) = self.rcvbuf else {
            return Ok(());
        };
        if !self.transport.transport().caps().kernel_drops {
            return Err(usage("--rcvbuf is for --udp listeners"));
        }
        let granted = set(bytes).context("cannot set the receive buffer")?;
        info!("receive buffer: {granted} bytes");
        Ok(())
    }

    /// The stream options, a Unix socket file's mode among them.
    pub(crate) fn stream_options(&self) -> msg_net::limits::TcpOptions {
        let mut options = self.tcp.options();
        if let Some(mode) = self.unix.socket_mode {
            options.socket_mode = mode;
        }
        options
    }
}

/// How the exit summary is given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum SummaryArg {
    /// One line on stderr
    Text,
    /// A final JSON object on stdout: {"summary":{...}}
    Json,
    /// None
    None,
}

/// `--batch` refused where there is nothing it batches, said for what was
/// given (audit, round twelve: `--udp --raw` was told of TCP's reads).
fn check_batch(args: &ListenArgs) -> anyhow::Result<()> {
    if args.batch.is_none() {
        return Ok(());
    }
    if !args.transport.transport().caps().batches {
        return Err(usage(format!(
            "--batch receives UDP datagrams many per call (recvmmsg): use it with --udp; {} has \
             no batched receive",
            args.transport.flag()
        )));
    }
    if args.raw {
        return Err(usage(
            "--batch receives msg's framed datagrams many per call, and --raw takes each \
             datagram as it is: leave out --raw or --batch",
        ));
    }
    Ok(())
}

/// What each peer may cost the listener.
#[derive(Debug, Args)]
pub(crate) struct LimitArgs {
    /// Connections served at once (TCP, Unix, seqpacket, QUIC); the next
    /// client is told so and closed
    #[arg(long, value_name = "N", default_value_t = Limits::default().max_conns as u64,
          value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub(crate) max_conns: u64,

    /// Of those, how many may be in the authentication handshake at once
    /// (with a secret); the next waits its turn within the handshake
    /// timeout, reading nothing
    #[arg(long, value_name = "N", default_value_t = Limits::default().max_handshakes as u64,
          value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub(crate) max_handshakes: u64,

    /// Close a connection that sends nothing for this long (0: never)
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = humantime::parse_duration)]
    pub(crate) idle_timeout: Duration,

    /// Drop a connection whose frame, once begun, does not complete within
    /// this long (ends slowloris), whose file stops arriving for this long,
    /// or that takes nothing the listener writes to it for this long (a
    /// peer that sends and never reads)
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_positive_duration)]
    pub(crate) frame_timeout: Duration,
}

impl LimitArgs {
    fn limits(&self) -> Limits {
        Limits {
            max_conns: usize::try_from(self.max_conns).unwrap_or(usize::MAX),
            max_handshakes: usize::try_from(self.max_handshakes).unwrap_or(usize::MAX),
            idle_timeout: (!self.idle_timeout.is_zero()).then_some(self.idle_timeout),
            frame_timeout: self.frame_timeout,
            ..Limits::default()
        }
    }
}

/// Remote commands (`msg exec`), for authenticated peers only.
#[derive(Debug, Args)]
pub(crate) struct ExecArgs {
    /// Run the commands that authenticated peers send with `msg exec`
    /// (over a connection; needs --secret-file or MSG_SECRET). Without
    /// --exec-allow, any program on this listener's PATH may run, as this
    /// listener's user
    #[arg(long)]
    pub(crate) exec: bool,

    /// Kill a command (its whole process tree) that runs longer than this,
    /// however slowly its client reads
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

    /// Pass this variable of the listener's environment on to commands
    /// (repeatable). Commands start with PATH, HOME, USER, LOGNAME and LANG
    /// (those the listener has) and nothing else; MSG_SECRET is never
    /// passed
    #[arg(long, value_name = "NAME", requires = "exec")]
    pub(crate) exec_env: Vec<String>,

    /// The directory commands start in. The default, /, exists everywhere
    /// and is not wherever the listener happened to be started (a directory
    /// that may hold its secret file)
    #[arg(long, value_name = "DIR", default_value = "/", requires = "exec")]
    pub(crate) exec_dir: PathBuf,
}

/// Room among the open files for `--max-conns` connections: the soft
/// limit raised as far as they need within the hard one, and a warning
/// when the hard one is short (see msg-net's `open_files`).
fn make_room(args: &ListenArgs) {
    #[cfg(unix)]
    let max_conns = u64::try_from(args.limits().max_conns).unwrap_or(u64::MAX);
    let needed = max_conns.saturating_add(msg_net::open_files::OVERHEAD);
    match msg_net::open_files::make_room(needed) {
        msg_net::open_files::OpenFiles::Enough => {}
        msg_net::open_files::OpenFiles::Raised { from, to } => {
            info!("raised the open-file limit from {from} to {to}, for --max-conns");
        }
        msg_net::open_files::OpenFiles::Short { limit, needed } => warn!(
            "--max-conns {} needs about {needed} open files, and this listener may open \
             {limit} (the hard limit, ulimit -Hn, allows no more): past fewer than {} \
             connections, the next are turned away (out of file descriptors) until one \
             closes; lower --max-conns or raise the limit",
            args.limits().max_conns,
            // What msg itself holds open is about a dozen files.
            limit.saturating_sub(12)
        ),
    }
}

/// Runs the listener until `--count` messages have been printed, stdout
/// closes, an error, or `shutdown` completes (Ctrl-C in the binary).
pub(crate) async fn run(
    args: ListenArgs,
    quiet: bool,
    shutdown: impl Future<Output = Stop>,
) -> anyhow::Result<ExitCode> {
    args.given
        .check_transport_flags(args.transport.chosen_flag(), args.raw)?;
    let caps = args.transport.transport().caps();
    // A plain datagram socket has no peers to admit, hold or time out
    // (QUIC's datagrams ride a connection, which these do limit).
    if !caps.connections && !caps.encrypted {
        let limits = [
            "max_conns",
            "max_handshakes",
            "idle_timeout",
            "frame_timeout",
        ];
        args.given.refuse(&limits, |flag| {
            format!(
                "{flag} limits connections, and {} has none (each datagram stands alone); \
                 drop {flag}",
                args.transport.flag()
            )
        })?;
    }
    if caps.connections {
        make_room(&args);
    }
    if args.once && !caps.carries_files() {
        return Err(usage(format!(
            "--once ends with the first connection, over a stream (--tcp, --unix, --seqpacket, \
             --quic); {} has no connections to end",
            args.transport.flag()
        )));
    }
    if args.io == ListenIo::Blocking {
        if args.tls.tls {
            return Err(usage(
                "--tls is served by the tokio engine: drop --io blocking",
            ));
        }
        if args.transport.transport().caps().encrypted {
            return Err(usage(format!(
                "{} is served by the tokio engine: drop --io blocking",
                args.transport.flag()
            )));
        }
        if args.framing == FramingArg::Length {
            return Err(usage(
                "--framing length is served by the tokio engine: drop --io blocking",
            ));
        }
        return blocking::run(args, quiet, shutdown).await;
    }
    let auth = args.auth.auth()?;
    args.framing.check(
        args.transport.transport().caps(),
        args.transport.flag(),
        &[
            (args.raw, LENGTH_NO_RAW),
            (auth.is_some(), LENGTH_NO_SECRET),
            (
                args.save_dir.is_some(),
                "a file needs msg's frames for its name and hash: --save-dir needs --framing msg",
            ),
            (
                args.exec.exec,
                "a command needs msg's frames: --exec needs --framing msg",
            ),
        ],
    )?;
    if auth.is_some() && args.raw {
        return Err(usage(
            "--raw has no header to authenticate: drop --raw, or the secret",
        ));
    }
    let transport = args.transport.transport();
    let caps = transport.caps();
    if args.save_dir.is_some() && (!caps.carries_files() || args.raw) {
        return Err(usage(
            "--save-dir needs a framed connection (--tcp, --unix, --seqpacket or --quic): a file must \
             arrive whole, with its name and hash",
        ));
    }
    let save = match &args.save_dir {
        // Progress bars go to stderr, and only to a terminal.
        Some(dir) => Some(SaveConfig {
            // A sender silent mid-file is a frame that does not complete.
            idle: args.limits.frame_timeout,
            ..SaveConfig::prepare(
                dir.clone(),
                args.overwrite,
                !quiet && std::io::stderr().is_terminal(),
                args.partial_max_age,
            )
            .with_context(|| format!("cannot save files in {}", path_text(dir)))?
        }),
        None => None,
    };
    let exec = if args.exec.exec {
        if auth.is_none() {
            return Err(usage(
                "--exec runs commands only for authenticated peers: give it a secret \
                 with --secret-file or MSG_SECRET",
            ));
        }
        if !caps.carries_files() || args.raw {
            return Err(usage(
                "--exec needs a framed connection (--tcp, --unix, --seqpacket or --quic)",
            ));
        }
        // Whoever may read the secret may run commands as this user.
        let loose =
            args.auth.secret_file.as_deref().and_then(|path| {
                msg_net::secret::readable_by_others(path).map(|mode| (path, mode))
            });
        if let Some((path, mode)) = loose {
            return Err(usage(format!(
                "--exec: the secret file {} is readable by others (mode {mode:03o}), and whoever \
                 reads it may run commands as this user; chmod 600 it",
                path_text(path)
            )));
        }
        Some(ExecConfig {
            timeout: args.exec.exec_timeout,
            max_output: args.exec.exec_max_output,
            max_running: usize::try_from(args.exec.exec_max).unwrap_or(usize::MAX),
            allow: args.exec.exec_allow.clone(),
            env: msg_net::exec::environment(&args.exec.exec_env, SECRET_ENV).map_err(|err| {
                match err {
                    EnvError::Secret(_) => usage(format!("--exec-env {err}")),
                    EnvError::NotAName(_) => usage(format!("--exec-env: {err}")),
                }
            })?,
            dir: msg_net::exec::work_dir(&args.exec.exec_dir).with_context(|| {
                format!("cannot run commands in {}", path_text(&args.exec.exec_dir))
            })?,
        })
    } else {
        None
    };
    check_batch(&args)?;
    let addr = transport.listen_addr(&args.addr()?).await?;
    let tls = args
        .tls
        .server(transport, &addr, args.auth.handshake_timeout)?;
    let listener = match args.join.group(transport, &addr)? {
        Some((group, options)) => Listener::join(group, &options)?,
        None => Listener::bind(transport, addr, args.stream_options()).await?,
    };
    args.receive_buffer(|bytes| listener.set_recv_buffer(bytes))?;
    let kernel_drops = listener.kernel_drops()?;
    let buffer_drops = listener.buffer_drops();
    info!("listening on {listener}");
    if let Some(tls) = &tls {
        // Printed whatever -v says: a client pins it (--tls-fingerprint).
        // A self-signed certificate is new at every start and this line is
        // the only way to learn its fingerprint, so even -q prints it (the
        // audit, round nine: `-q` left a client nothing to pin); a given
        // --cert's can be read from its file.
        if !quiet || args.tls.cert.is_none() {
            output::stderr_line(format_args!(
                "msg listen: TLS certificate sha256 fingerprint {}",
                tls.fingerprint()
            ));
        }
    }

    let mut format = args
        .output
        .format(args.json, args.raw && !caps.keeps_boundaries);
    format.reads = args.reads;
    let (mut printing, events) = output::start_printing(format, args.count)?;
    let counters = printing.counters();
    let config = ServeConfig {
        auth,
        save,
        exec,
        limits: args.limits(),
        counters: Arc::clone(&counters),
        reply: args.reply.into(),
        raw: args.raw,
        framing: args.framing.into(),
        explain: Some(crate::hint::chain_of),
        busy_poll: args.busy_poll,
        udp_batch: args.batch.map_or(0, usize::from),
        allow_uids: args.unix.allow_uid.clone(),
        // Who sent each Unix datagram, for the log and --json.
        senders: true,
        tls,
    };
    // The signal that stopped us, and whether a file was arriving then.
    let mut stopped = None;
    let served = serve(listener, config, events, async {
        tokio::select! {
            stop = shutdown => {
                info!("stopping ({stop:?})");
                stopped = Some((stop, counters.get().transfers > 0));
            }
            () = printing.done() => {}
            () = args.first_connection_served(&counters) => {}
        }
    })
    .await;
    let kernel = kernel_drops.as_ref().and_then(KernelDrops::get);
    let unread = kernel_drops.as_ref().map(KernelDrops::unread);
    let buffer = buffer_drops.as_ref().map(BufferDrops::get);
    finish(printing, served, (kernel, buffer), unread, &args, quiet).await?;
    if let Some(code) = args.once_ended(&counters, stopped.map(|(stop, _)| stop)) {
        return Ok(code);
    }
    Ok(match stopped {
        Some((stop, true)) => ExitCode::from(stop.code()),
        _ => ExitCode::SUCCESS,
    })
}

/// Once serving has ended: gives the printing thread a moment to write
/// what is queued (a blocked stdout does not hold the exit up), then the
/// summary as asked, counted once the thread has written what it could.
async fn finish<E>(
    printing: Printing,
    served: Result<(), E>,
    (kernel_drops, buffer_drops): (Option<u64>, Option<u64>),
    unread: Option<u64>,
    args: &ListenArgs,
    quiet: bool,
) -> anyhow::Result<()>
where
    anyhow::Error: From<E>,
{
    let mut ended = printing.close();
    served?;
    // Stdout closed under us (`msg listen | head -1`) is a stop like
    // any other, and success, as for other filters: the summary still
    // goes to stderr, where it was never bound for the closed pipe.
    let printed = match ended.drain().await {
        Ok(false) => {
            warn!("stdout is blocked: exiting without printing what is queued");
            false
        }
        Ok(true) => true,
        Err(err) if err.kind() == std::io::ErrorKind::BrokenPipe => {
            info!("stdout was closed: stopping");
            false
        }
        Err(err) => return Err(err).context("cannot write to stdout"),
    };
    let summary = Summary {
        buffer_drops,
        ..ended.summary(kernel_drops, unread, args.batch.is_some())
    };
    summarize(
        &summary,
        ended.open_line(),
        args.summary,
        printed,
        quiet,
        args.transport.transport(),
    )
}

/// The summary as `how` asks: a line on stderr, or a last JSON object on
/// stdout once all else is printed.
fn summarize(
    summary: &Summary,
    open_line: bool,
    how: SummaryArg,
    printed: bool,
    quiet: bool,
    transport: Transport,
) -> anyhow::Result<()> {
    match how {
        SummaryArg::Text if !quiet => {
            // Raw TCP data that did not end a line: on a terminal, where
            // stdout and stderr share the screen, the summary would
            // continue it (`hellomsg listen: 1 messages`).
            let mut line = summary.line(transport.caps(), "--rcvbuf");
            if open_line {
                line.insert(0, '\n');
            }
            output::stderr_line(format_args!("{line}"));
        }
        SummaryArg::Json if printed => {
            let mut out = output::stdout();
            serde_json::to_writer(&mut out, &summary.json())?;
            writeln!(out)?;
            out.flush()?;
        }
        _ => {}
    }
    Ok(())
}
