//! `msg listen`: receive messages, print them, and optionally answer.
//!
//! Over UDP one socket serves every peer in one loop: a datagram is a whole
//! message, so there is nothing per peer to keep but a counter. Over TCP each
//! connection gets a task of its own, so a slow or broken client stalls only
//! itself; the tasks hand what they received to one printer, which also
//! enforces `--count`.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use bytes::{BufMut, Bytes, BytesMut};
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
    let bound = Bound::bind(args.transport.transport(), addr).await?;
    info!("listening on {bound}");
    tokio::select! {
        result = bound.serve(&args) => result,
        () = shutdown => {
            info!("interrupted");
            Ok(())
        }
    }
}

/// A bound listening socket, not yet serving: `msg bench` binds its
/// built-in listeners on port 0 and needs their addresses first.
#[derive(Debug)]
pub(crate) enum Bound {
    Udp(msg_udp::Socket),
    Tcp(TcpListener),
}

impl Bound {
    pub(crate) async fn bind(transport: Transport, addr: SocketAddr) -> anyhow::Result<Self> {
        Ok(match transport {
            Transport::Udp => Self::Udp(msg_udp::Socket::bind(addr).await?),
            Transport::Tcp => Self::Tcp(
                TcpListener::bind(addr)
                    .await
                    .with_context(|| format!("cannot listen on {addr}"))?,
            ),
        })
    }

    pub(crate) fn local_addr(&self) -> std::io::Result<SocketAddr> {
        match self {
            Self::Udp(socket) => socket.local_addr(),
            Self::Tcp(listener) => listener.local_addr(),
        }
    }

    /// Serves until `--count` messages have arrived or an error.
    pub(crate) async fn serve(self, args: &ListenArgs) -> anyhow::Result<()> {
        let _spinning = args.busy_poll.then(crate::net::BusyPoll::start);
        match self {
            Self::Udp(socket) => udp(socket, args).await,
            Self::Tcp(listener) => tcp(listener, args).await,
        }
    }
}

impl std::fmt::Display for Bound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let transport = match self {
            Self::Udp(_) => "udp",
            Self::Tcp(_) => "tcp",
        };
        match self.local_addr() {
            Ok(addr) => write!(f, "{transport} {addr}"),
            Err(_) => write!(f, "{transport}"),
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

/// What a listener counts of one peer's [`Kind::Discard`] stream (over UDP
/// per source address, over TCP per connection), reported in answer to a
/// [`FLAG_STATS`] ping.
#[derive(Debug, Default)]
struct DiscardStats {
    received: u64,
    /// Discards whose `seq` is below the highest seen so far.
    reordered: u64,
    highest_seq: Option<u64>,
}

impl DiscardStats {
    fn count(&mut self, seq: u64) {
        self.received += 1;
        match self.highest_seq {
            Some(highest) if seq < highest => self.reordered += 1,
            _ => self.highest_seq = Some(seq),
        }
    }

    /// The stats pong's body: received, then reordered, big-endian `u64`s.
    fn to_body(&self) -> Bytes {
        let mut body = BytesMut::with_capacity(16);
        body.put_u64(self.received);
        body.put_u64(self.reordered);
        body.freeze()
    }
}

/// Whether `action` reads or updates the sender's discard counters.
fn uses_stats(msg: &Message) -> bool {
    match msg.kind {
        Kind::Discard => true,
        Kind::Ping => msg.flags & FLAG_STATS != 0,
        _ => false,
    }
}

fn action(msg: &Message, reply: Reply, discarded: &mut DiscardStats) -> Action {
    match msg.kind {
        Kind::Data => Action::Print {
            reply: reply.answer(&msg.body).map(|body| Message {
                body,
                ..msg.clone()
            }),
        },
        Kind::Ping if msg.flags & FLAG_STATS != 0 => Action::Answer(Message {
            kind: Kind::Pong,
            body: discarded.to_body(),
            ..msg.clone()
        }),
        Kind::Ping => Action::Answer(Message {
            kind: Kind::Pong,
            ..msg.clone()
        }),
        Kind::Discard => {
            discarded.count(msg.seq);
            Action::Nothing
        }
        other => {
            debug!(kind = ?other, seq = msg.seq, "ignored a message of a kind msg listen does not serve");
            Action::Nothing
        }
    }
}

async fn udp(mut socket: msg_udp::Socket, args: &ListenArgs) -> anyhow::Result<()> {
    let printer = Printer::new(args.json, true);
    let mut counter = Counter::new(args.count);
    let mut discarded: HashMap<SocketAddr, DiscardStats> = HashMap::new();
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
        let mut untracked = DiscardStats::default();
        let full = discarded.len() >= MAX_UDP_PEERS;
        // Only discards and statistics pings need the peer's counters;
        // a benchmark's plain pings skip the lookup.
        let count = if uses_stats(&msg) {
            match discarded.entry(peer) {
                Entry::Occupied(known) => known.into_mut(),
                Entry::Vacant(new) if !full => new.insert(DiscardStats::default()),
                Entry::Vacant(_) => &mut untracked,
            }
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

async fn tcp(listener: TcpListener, args: &ListenArgs) -> anyhow::Result<()> {
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
    let mut discarded = DiscardStats::default();
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
        let Action::Answer(pong) = action(&ping, Reply::None, &mut DiscardStats::default()) else {
            panic!("a ping is answered")
        };
        assert_eq!((pong.kind, pong.seq, pong.timestamp_ns), (Kind::Pong, 4, 9));
        assert_eq!(pong.body, "x");
    }

    #[test]
    fn discards_are_counted_and_reported() {
        let mut discarded = DiscardStats::default();
        for seq in [0, 2, 1, 3] {
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
        let mut expected = 4u64.to_be_bytes().to_vec();
        expected.extend(1u64.to_be_bytes());
        assert_eq!(pong.body, expected);
    }

    #[test]
    fn data_replies_keep_seq_and_timestamp() {
        let data = Message::new(Kind::Data, 7, "hello").with_timestamp(11);
        let Action::Print { reply: Some(reply) } =
            action(&data, Reply::Upper, &mut DiscardStats::default())
        else {
            panic!("upper replies")
        };
        assert_eq!(
            (reply.kind, reply.seq, reply.timestamp_ns),
            (Kind::Data, 7, 11)
        );
        assert_eq!(reply.body, "HELLO");
        assert!(matches!(
            action(&data, Reply::None, &mut DiscardStats::default()),
            Action::Print { reply: None }
        ));
    }

    #[test]
    fn only_discards_and_stats_pings_use_the_counters() {
        let mut stats_ping = Message::new(Kind::Ping, 1, "");
        stats_ping.flags = FLAG_STATS;
        for kind in [Kind::Data, Kind::Ping, Kind::Pong, Kind::Discard] {
            let msg = Message::new(kind, 5, "x");
            let mut counters = DiscardStats::default();
            let before = counters.to_body();
            let _ = action(&msg, Reply::Echo, &mut counters);
            // The UDP listener hands the others a scratch copy: nothing
            // they do may touch the counters.
            assert_eq!(counters.to_body() != before, uses_stats(&msg), "{kind:?}");
        }
        assert!(uses_stats(&stats_ping));
    }
}
