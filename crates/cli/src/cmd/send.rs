//! `msg send`: send each argument (or each line of stdin) as one message.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, anyhow};
use bytes::Bytes;
use clap::Args;
use msg_net::auth::printable;
use msg_net::raw::RawLink;
use msg_net::{ConnectOptions, Link, Transport, data};
use msg_proto::Kind;
use tokio::io::{AsyncBufReadExt, BufReader, Stdin};
use tokio::time::timeout;
use tracing::debug;

use crate::args::{
    AuthArgs, OutputArgs, TcpArgs, TransportArg, UsageError, parse_host_port, usage,
};
use crate::cmd::connect_any;

#[derive(Debug, Args)]
pub(crate) struct SendArgs {
    #[command(flatten)]
    pub(crate) transport: TransportArg,

    // (`help` rather than a doc comment: rustdoc would read "[::1]" as a link.)
    #[arg(value_name = "ADDR", value_parser = parse_host_port,
          help = "Where to send: HOST:PORT, e.g. 127.0.0.1:9000 or [::1]:9000")]
    pub(crate) addr: String,

    /// Messages to send, one per argument; with none, each line of stdin is
    /// one message
    #[arg(value_name = "MESSAGE")]
    pub(crate) messages: Vec<String>,

    /// Send these files instead of messages (TCP): each goes with its name,
    /// size and BLAKE3 hash, and counts as sent only once the receiver has
    /// checked the hash (`msg listen --tcp --save-dir DIR`)
    #[arg(long, value_name = "PATH", num_args = 1.., conflicts_with_all = ["messages", "raw", "reply"])]
    pub(crate) file: Vec<PathBuf>,

    /// Wait for a reply to each message and print it (an error after
    /// --timeout: a lost UDP reply never hangs)
    #[arg(long)]
    pub(crate) reply: bool,

    /// No header and no framing: the bytes alone, for netcat and socat
    #[arg(long)]
    pub(crate) raw: bool,

    /// How long to wait to connect and for each reply, e.g. 500ms, 2s
    #[arg(long, value_name = "DURATION", default_value = "2s", value_parser = humantime::parse_duration)]
    pub(crate) timeout: Duration,

    #[command(flatten)]
    pub(crate) output: OutputArgs,

    #[command(flatten)]
    pub(crate) tcp: TcpArgs,

    #[command(flatten)]
    pub(crate) auth: AuthArgs,
}

pub(crate) async fn run(args: SendArgs, quiet: bool) -> anyhow::Result<()> {
    let transport = args.transport.transport();
    let raw_tcp = args.raw && transport == Transport::Tcp;
    if raw_tcp {
        if let Some(n) = args.messages.iter().position(String::is_empty) {
            return Err(UsageError(format!(
                "message {} is empty: a raw TCP stream cannot carry an empty message \
                 (zero bytes are no message at all; drop --raw to send a header-only one)",
                n + 1
            ))
            .into());
        }
    }
    let auth = args.auth.auth()?;
    if auth.is_some() && args.raw {
        return Err(usage(
            "--raw has no header to authenticate: drop --raw, or the secret",
        ));
    }
    if !args.file.is_empty() && transport == Transport::Udp {
        return Err(usage(
            "files need --tcp: UDP does not promise delivery, and a file must arrive whole",
        ));
    }
    if !args.file.is_empty() {
        let options = ConnectOptions {
            tcp: args.tcp.options(),
            timeout: Some(args.timeout),
            auth,
        };
        let (mut link, _) =
            connect_any(&args.addr, |addr| Link::connect(transport, addr, &options)).await?;
        for path in &args.file {
            send_file(&mut link, path, args.timeout, quiet).await?;
        }
        return Ok(link.close(args.timeout).await?);
    }
    let mut source = Source::new(&args.messages, raw_tcp);
    // Each reply whole, on its own line (raw TCP too: a reply is what was
    // read back for one message).
    let printer = args.output.format(false, false);
    let options = ConnectOptions {
        tcp: args.tcp.options(),
        timeout: Some(args.timeout),
        auth,
    };
    let (mut sender, addr) = connect_any(&args.addr, |addr| {
        Sender::connect(transport, addr, args.raw, &options)
    })
    .await?;
    let mut seq = 0;
    while let Some(body) = source.next().await? {
        seq += 1;
        sender
            .send(seq, body)
            .await
            .with_context(|| format!("cannot send message {seq}"))?;
        if args.reply {
            let reply = timeout(args.timeout, sender.reply(seq, addr))
                .await
                .map_err(|_| no_reply(transport, seq, addr, args.timeout))??;
            printer.print(addr, Some(seq), &reply)?;
        }
    }
    sender.finish(args.timeout).await
}

/// Sends one file, with a progress bar on a terminal, and says on stderr
/// what the receiver confirmed.
async fn send_file(
    link: &mut Link,
    path: &std::path::Path,
    wait: Duration,
    quiet: bool,
) -> anyhow::Result<()> {
    let size = std::fs::metadata(path).map(|meta| meta.len()).unwrap_or(0);
    let bar = progress_bar(size, &path.display().to_string(), quiet);
    let sent = link
        .send_file(path, wait, &mut |bytes| bar.set_position(bytes))
        .await;
    bar.finish_and_clear();
    let sent = sent.with_context(|| format!("cannot send {}", path.display()))?;
    if !quiet {
        let secs = sent.elapsed.as_secs_f64();
        crate::output::stderr_line(format_args!(
            "sent {}: {} bytes in {secs:.2} s ({:.1} MB/s), blake3 {} verified by the receiver",
            sent.name,
            sent.size,
            sent.size as f64 / secs.max(1e-9) / 1e6,
            sent.hash()
        ));
    }
    Ok(())
}

/// Bytes, rate and time left on stderr, only when stderr is a terminal.
fn progress_bar(size: u64, name: &str, quiet: bool) -> indicatif::ProgressBar {
    use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
    let bar = ProgressBar::with_draw_target(Some(size), ProgressDrawTarget::hidden());
    if !quiet && std::io::stderr().is_terminal() {
        bar.set_draw_target(ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template(
                "{msg} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec}, ~{eta} left",
            )
            .expect("a valid template")
            .progress_chars("=> "),
        );
        bar.set_message(name.to_owned());
    }
    bar
}

fn no_reply(transport: Transport, seq: u64, addr: SocketAddr, wait: Duration) -> anyhow::Error {
    let wait = humantime::format_duration(wait);
    match transport {
        Transport::Udp => anyhow!(
            "no reply to message {seq} from {addr} within {wait}: \
             the datagram or its reply was lost, or nobody answers there"
        ),
        Transport::Tcp => anyhow!("no reply to message {seq} from {addr} within {wait}"),
    }
}

/// Where the messages come from: the arguments, or stdin a line at a time.
enum Source<'a> {
    Args(std::slice::Iter<'a, String>),
    Stdin {
        lines: BufReader<Stdin>,
        /// Raw TCP keeps each line's newline: on a stream it is the only
        /// boundary the other side can see.
        keep_newline: bool,
    },
}

impl<'a> Source<'a> {
    fn new(messages: &'a [String], keep_newline: bool) -> Self {
        if messages.is_empty() {
            Self::Stdin {
                lines: BufReader::new(tokio::io::stdin()),
                keep_newline,
            }
        } else {
            Self::Args(messages.iter())
        }
    }

    async fn next(&mut self) -> anyhow::Result<Option<Bytes>> {
        match self {
            Self::Args(args) => Ok(args
                .next()
                .map(|arg| Bytes::copy_from_slice(arg.as_bytes()))),
            Self::Stdin {
                lines,
                keep_newline,
            } => {
                let mut line = Vec::new();
                if lines
                    .read_until(b'\n', &mut line)
                    .await
                    .context("cannot read stdin")?
                    == 0
                {
                    return Ok(None);
                }
                if !*keep_newline {
                    if line.last() == Some(&b'\n') {
                        line.pop();
                    }
                    if line.last() == Some(&b'\r') {
                        line.pop();
                    }
                }
                Ok(Some(line.into()))
            }
        }
    }
}

/// Framed messages or raw bytes.
enum Sender {
    Framed(Link),
    Raw(RawLink),
}

impl Sender {
    async fn connect(
        transport: Transport,
        addr: SocketAddr,
        raw: bool,
        options: &ConnectOptions,
    ) -> anyhow::Result<Self> {
        Ok(if raw {
            Self::Raw(RawLink::connect(transport, addr, options).await?)
        } else {
            Self::Framed(Link::connect(transport, addr, options).await?)
        })
    }

    async fn send(&mut self, seq: u64, body: Bytes) -> anyhow::Result<()> {
        match self {
            Self::Framed(link) => link.send(&data::data(seq, body)).await?,
            Self::Raw(link) => link.send(&body).await?,
        }
        Ok(())
    }

    /// Waits for the reply to message `seq` (the caller bounds the wait).
    async fn reply(&mut self, seq: u64, peer: SocketAddr) -> anyhow::Result<Bytes> {
        let link = match self {
            Self::Raw(link) => return Ok(link.reply().await?),
            Self::Framed(link) => link,
        };
        loop {
            let msg = link
                .recv()
                .await
                .context("cannot receive the reply")?
                .ok_or_else(|| anyhow!("{peer} closed the connection without replying"))?;
            if msg.kind == Kind::Error {
                return Err(msg_net::Error::Peer(printable(&msg.body)).into());
            }
            if msg.seq == seq {
                return Ok(msg.body);
            }
            // A late reply to an earlier message that timed out.
            debug!(seq = msg.seq, "ignored a stale reply");
        }
    }

    /// Closes the sending side cleanly so the peer sees the end of the
    /// stream after the last byte; a framed TCP listener that refused us
    /// gets up to `wait` to say why.
    async fn finish(self, wait: Duration) -> anyhow::Result<()> {
        match self {
            Self::Framed(link) => Ok(link.close(wait).await?),
            Self::Raw(link) => link.finish().await.context("cannot close the connection"),
        }
    }
}
