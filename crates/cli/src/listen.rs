//! `msg listen`: receive messages, print them, and optionally answer.
//!
//! Over UDP one socket serves every peer in one loop: a datagram is a whole
//! message, so there is nothing per peer to keep but a counter. Over TCP each
//! connection gets a task of its own, so a slow or broken client stalls only
//! itself; the tasks hand what they received to one printer, which also
//! enforces `--count`.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use bytes::{Bytes, BytesMut};
use msg_proto::{FLAG_STATS, Kind, Message};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use crate::cli::{ListenArgs, Reply, Transport};
use crate::net::resolve;
use crate::output::Printer;

/// How many peers a UDP listener keeps a `Discard` count for; a flood of
/// spoofed source addresses cannot grow the table past it.
const MAX_UDP_PEERS: usize = 4096;

/// Raw TCP reads at most this much at a time.
const RAW_READ_LEN: usize = 64 * 1024;

/// Runs the listener until `--count` messages have arrived, an error, or
/// `shutdown` completes (Ctrl-C in the binary).
pub(crate) async fn run(
    args: ListenArgs,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let addr = resolve(&args.addr).await?;
    let transport = args.transport.transport();
    let served = async {
        match transport {
            Transport::Udp => udp(addr, &args).await,
            Transport::Tcp => tcp(addr, &args).await,
        }
    };
    tokio::select! {
        result = served => result,
        () = shutdown => {
            info!("interrupted");
            Ok(())
        }
    }
}

/// Counts printed messages against `--count`.
#[derive(Debug)]
struct Counter {
    limit: Option<u64>,
    seen: u64,
}

impl Counter {
    fn new(limit: Option<u64>) -> Self {
        Self { limit, seen: 0 }
    }

    /// Records one message; true when the limit is reached.
    fn done_after_one(&mut self) -> bool {
        self.seen += 1;
        self.limit.is_some_and(|limit| self.seen >= limit)
    }
}

/// What a listener does with one framed message.
#[derive(Debug)]
enum Action {
    /// A data message: print it, after sending the reply if there is one
    /// (replying first means `--count` never exits before the answer left).
    Print { reply: Option<Message> },
    /// A protocol message answered without printing (a ping).
    Answer(Message),
    /// Counted or ignored.
    Nothing,
}

fn action(msg: &Message, reply: Reply, discarded: &mut u64) -> Action {
    match msg.kind {
        Kind::Data => Action::Print {
            reply: reply.answer(&msg.body).map(|body| Message {
                body,
                ..msg.clone()
            }),
        },
        Kind::Ping if msg.flags & FLAG_STATS != 0 => Action::Answer(Message {
            kind: Kind::Pong,
            body: Bytes::copy_from_slice(&discarded.to_be_bytes()),
            ..msg.clone()
        }),
        Kind::Ping => Action::Answer(Message {
            kind: Kind::Pong,
            ..msg.clone()
        }),
        Kind::Discard => {
            *discarded += 1;
            Action::Nothing
        }
        other => {
            debug!(kind = ?other, seq = msg.seq, "ignored a message of a kind msg listen does not serve");
            Action::Nothing
        }
    }
}

async fn udp(addr: SocketAddr, args: &ListenArgs) -> anyhow::Result<()> {
    let mut socket = msg_udp::Socket::bind(addr).await?;
    info!("listening on udp {}", socket.local_addr()?);
    let printer = Printer::new(args.json, true);
    let mut counter = Counter::new(args.count);
    let mut discarded: HashMap<SocketAddr, u64> = HashMap::new();
    loop {
        if args.raw {
            let (bytes, peer) = socket.recv_raw_from().await?;
            if let Some(answer) = args.reply.answer(&bytes) {
                if let Err(err) = socket.send_raw_to(&answer, peer).await {
                    warn!(%peer, "cannot reply: {:#}", anyhow::Error::new(err));
                }
            }
            printer.print(peer, None, &bytes)?;
            if counter.done_after_one() {
                return Ok(());
            }
            continue;
        }

        let (msg, peer) = socket.recv_from().await?;
        let mut untracked = 0;
        let count = if discarded.len() < MAX_UDP_PEERS || discarded.contains_key(&peer) {
            discarded.entry(peer).or_default()
        } else {
            &mut untracked
        };
        let (answer, print) = match action(&msg, args.reply, count) {
            Action::Print { reply } => (reply, true),
            Action::Answer(answer) => (Some(answer), false),
            Action::Nothing => (None, false),
        };
        if let Some(answer) = answer {
            if let Err(err) = socket.send_to(&answer, peer).await {
                warn!(%peer, "cannot reply: {:#}", anyhow::Error::new(err));
            }
        }
        if print {
            printer.print(peer, Some(msg.seq), &msg.body)?;
            if counter.done_after_one() {
                return Ok(());
            }
        }
    }
}

/// What a connection task hands the printer.
#[derive(Debug)]
struct Received {
    peer: SocketAddr,
    seq: Option<u64>,
    body: Bytes,
}

async fn tcp(addr: SocketAddr, args: &ListenArgs) -> anyhow::Result<()> {
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    info!("listening on tcp {}", listener.local_addr()?);

    // Bounded, so a printer that cannot keep up (a slow terminal) slows the
    // senders down instead of growing without limit.
    let (tx, mut rx) = mpsc::channel::<Received>(256);
    let accept = async {
        loop {
            match listener.accept().await {
                Ok((stream, peer)) => {
                    debug!(%peer, "connected");
                    let tx = tx.clone();
                    if args.raw {
                        tokio::spawn(serve_raw(stream, peer, args.reply, args.tcp.nodelay, tx));
                    } else {
                        let options = args.tcp.options();
                        tokio::spawn(serve_framed(stream, peer, args.reply, options, tx));
                    }
                }
                Err(err) => {
                    // Out of file descriptors, usually: back off rather than
                    // spin, and keep serving the connections already open.
                    warn!("cannot accept a connection: {err}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    };
    let print = async {
        let printer = Printer::new(args.json, !args.raw);
        let mut counter = Counter::new(args.count);
        while let Some(received) = rx.recv().await {
            printer.print(received.peer, received.seq, &received.body)?;
            if counter.done_after_one() {
                break;
            }
        }
        anyhow::Ok(())
    };
    tokio::select! {
        result = print => result,
        never = accept => never,
    }
}

async fn serve_framed(
    stream: TcpStream,
    peer: SocketAddr,
    reply: Reply,
    options: msg_tcp::Options,
    tx: mpsc::Sender<Received>,
) {
    if let Err(err) = serve_framed_inner(stream, peer, reply, options, tx).await {
        warn!(%peer, "dropped connection: {err:#}");
    }
}

async fn serve_framed_inner(
    stream: TcpStream,
    peer: SocketAddr,
    reply: Reply,
    options: msg_tcp::Options,
    tx: mpsc::Sender<Received>,
) -> anyhow::Result<()> {
    let mut conn = msg_tcp::Connection::new(stream, options)?;
    let mut discarded = 0;
    while let Some(msg) = conn.read_message().await? {
        match action(&msg, reply, &mut discarded) {
            Action::Print { reply } => {
                if let Some(reply) = reply {
                    conn.write_message(&reply).await?;
                }
                let received = Received {
                    peer,
                    seq: Some(msg.seq),
                    body: msg.body,
                };
                if tx.send(received).await.is_err() {
                    break; // the printer is done (--count reached)
                }
            }
            Action::Answer(answer) => conn.write_message(&answer).await?,
            Action::Nothing => {}
        }
    }
    debug!(%peer, "closed");
    Ok(())
}

async fn serve_raw(
    mut stream: TcpStream,
    peer: SocketAddr,
    reply: Reply,
    nodelay: bool,
    tx: mpsc::Sender<Received>,
) {
    let result = async {
        stream.set_nodelay(nodelay)?;
        let mut buf = BytesMut::with_capacity(RAW_READ_LEN);
        loop {
            buf.reserve(RAW_READ_LEN);
            if stream.read_buf(&mut buf).await? == 0 {
                return anyhow::Ok(());
            }
            // Whatever one read returned, glued or cut: that is the lesson.
            let chunk = buf.split().freeze();
            if let Some(answer) = reply.answer(&chunk) {
                stream.write_all(&answer).await?;
            }
            let received = Received {
                peer,
                seq: None,
                body: chunk,
            };
            if tx.send(received).await.is_err() {
                return Ok(());
            }
        }
    }
    .await;
    match result {
        Ok(()) => debug!(%peer, "closed"),
        Err(err) => warn!(%peer, "dropped connection: {err:#}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pings_are_answered_whatever_reply_says() {
        let ping = Message::new(Kind::Ping, 4, "x").with_timestamp(9);
        let Action::Answer(pong) = action(&ping, Reply::None, &mut 0) else {
            panic!("a ping is answered")
        };
        assert_eq!((pong.kind, pong.seq, pong.timestamp_ns), (Kind::Pong, 4, 9));
        assert_eq!(pong.body, "x");
    }

    #[test]
    fn discards_are_counted_and_reported() {
        let mut discarded = 0;
        for seq in 0..3 {
            let discard = Message::new(Kind::Discard, seq, "");
            assert!(matches!(
                action(&discard, Reply::Echo, &mut discarded),
                Action::Nothing
            ));
        }
        let mut stats = Message::new(Kind::Ping, 9, "");
        stats.flags = FLAG_STATS;
        let Action::Answer(pong) = action(&stats, Reply::None, &mut discarded) else {
            panic!("a stats ping is answered")
        };
        assert_eq!(pong.body, &3u64.to_be_bytes()[..]);
    }

    #[test]
    fn data_replies_keep_seq_and_timestamp() {
        let data = Message::new(Kind::Data, 7, "hello").with_timestamp(11);
        let Action::Print { reply: Some(reply) } = action(&data, Reply::Upper, &mut 0) else {
            panic!("upper replies")
        };
        assert_eq!(
            (reply.kind, reply.seq, reply.timestamp_ns),
            (Kind::Data, 7, 11)
        );
        assert_eq!(reply.body, "HELLO");
        assert!(matches!(
            action(&data, Reply::None, &mut 0),
            Action::Print { reply: None }
        ));
    }
}
