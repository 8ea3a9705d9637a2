//! `msg send`: send each argument (or each line of stdin) as one message.

use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, anyhow};
use bytes::{Bytes, BytesMut};
use msg_proto::{Kind, Message};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader, Stdin};
use tokio::net::TcpStream;
use tokio::time::timeout;
use tracing::debug;

use crate::cli::{SendArgs, Transport};
use crate::net::{UsageError, resolve};
use crate::output::Printer;

pub(crate) async fn run(args: SendArgs) -> anyhow::Result<()> {
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
    let addr = resolve(&args.addr).await?;
    let mut source = Source::new(&args.messages, raw_tcp);
    let printer = Printer::new(false, true);
    let mut sender = Sender::connect(addr, &args).await?;
    let mut seq = 0;
    while let Some(body) = source.next().await? {
        seq += 1;
        sender
            .send(seq, body)
            .await
            .with_context(|| format!("cannot send message {seq}"))?;
        if args.reply {
            let reply = timeout(args.timeout, sender.reply(seq))
                .await
                .map_err(|_| no_reply(transport, seq, addr, args.timeout))??;
            printer.print(addr, Some(seq), &reply)?;
        }
    }
    sender.finish().await
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

/// One sending end per transport and mode.
enum Sender {
    Udp {
        socket: msg_udp::Socket,
        raw: bool,
    },
    Tcp(msg_tcp::Connection),
    RawTcp {
        stream: TcpStream,
        /// Bytes written since the last reply was read: an echo server owes
        /// us that many.
        owed: usize,
    },
}

impl Sender {
    async fn connect(addr: SocketAddr, args: &SendArgs) -> anyhow::Result<Self> {
        match args.transport.transport() {
            Transport::Udp => Ok(Self::Udp {
                socket: msg_udp::Socket::connect(addr).await?,
                raw: args.raw,
            }),
            Transport::Tcp => {
                let wait = humantime::format_duration(args.timeout);
                let stream = timeout(args.timeout, TcpStream::connect(addr))
                    .await
                    .map_err(|_| anyhow!("cannot connect to {addr}: no answer within {wait}"))?
                    .with_context(|| format!("cannot connect to {addr}"))?;
                if args.raw {
                    stream.set_nodelay(args.tcp.nodelay)?;
                    Ok(Self::RawTcp { stream, owed: 0 })
                } else {
                    Ok(Self::Tcp(msg_tcp::Connection::new(
                        stream,
                        args.tcp.options(),
                    )?))
                }
            }
        }
    }

    async fn send(&mut self, seq: u64, body: Bytes) -> anyhow::Result<()> {
        match self {
            Self::Udp { socket, raw: true } => {
                let peer = socket.peer().expect("connected");
                socket.send_raw_to(&body, peer).await?;
            }
            Self::Udp { socket, raw: false } => socket.send(&data(seq, body)).await?,
            Self::Tcp(conn) => conn.write_message(&data(seq, body)).await?,
            Self::RawTcp { stream, owed } => {
                stream.write_all(&body).await?;
                *owed += body.len();
            }
        }
        Ok(())
    }

    /// Waits for the reply to message `seq` (the caller bounds the wait).
    async fn reply(&mut self, seq: u64) -> anyhow::Result<Bytes> {
        match self {
            Self::Udp { socket, raw: true } => Ok(socket.recv_raw_from().await?.0),
            Self::Udp { socket, raw: false } => loop {
                let (msg, _) = socket
                    .recv_from()
                    .await
                    .context("cannot receive the reply")?;
                if msg.seq == seq {
                    return Ok(msg.body);
                }
                // A late reply to an earlier message that timed out.
                debug!(seq = msg.seq, "ignored a stale reply");
            },
            Self::Tcp(conn) => loop {
                let peer = conn.peer_addr();
                let msg = conn
                    .read_message()
                    .await
                    .context("cannot read the reply")?
                    .ok_or_else(|| anyhow!("{peer} closed the connection without replying"))?;
                if msg.seq == seq {
                    return Ok(msg.body);
                }
                debug!(seq = msg.seq, "ignored an out-of-order reply");
            },
            Self::RawTcp { stream, owed } => {
                // A raw stream has no replies, only bytes: read until as many
                // came back as were sent, which is what an echo server owes.
                let mut buf = BytesMut::with_capacity(*owed);
                while buf.len() < *owed {
                    if stream.read_buf(&mut buf).await? == 0 {
                        if buf.is_empty() {
                            anyhow::bail!("the peer closed the connection without replying");
                        }
                        break;
                    }
                }
                *owed = 0;
                Ok(buf.freeze())
            }
        }
    }

    /// Closes the sending side cleanly so the peer sees the end of the
    /// stream after the last byte.
    async fn finish(self) -> anyhow::Result<()> {
        match self {
            Self::Udp { .. } | Self::Tcp(_) => Ok(()),
            Self::RawTcp { mut stream, .. } => stream
                .shutdown()
                .await
                .context("cannot close the connection"),
        }
    }
}

fn data(seq: u64, body: Bytes) -> Message {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| {
            u64::try_from(since.as_nanos()).unwrap_or(u64::MAX)
        });
    Message::new(Kind::Data, seq, body).with_timestamp(now)
}
