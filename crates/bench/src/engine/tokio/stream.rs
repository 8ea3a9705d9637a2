//! The tokio engine's one-way streams: throughput (the client sends
//! `Discard`s, the listener counts) and its reverse (the listener sends,
//! the client counts).

use std::time::{Duration, Instant};

use bytes::Bytes;
use msg_proto::{DiscardCounter, FLAG_SEND, Kind, Message, SendRequest, Streamed};
use tokio::time::timeout_at;

use super::Peer;
use crate::cpu::Sample;
use crate::engine::start::AsyncStart;
use crate::engine::{Drops, Outcome, Snapshot, UDP_DRAIN};
use crate::error::{Error, RunError};
use crate::interval::{Sink, Ticker};
use crate::pace::{Pacer, next_send};
use crate::settings::{Direction, Settings};

pub(super) async fn throughput(
    peer: &mut Peer,
    body: Bytes,
    settings: &Settings,
    (rate, start): (Option<u64>, Option<&AsyncStart>),
    drops: impl Fn() -> Option<Drops>,
    sink: Sink<'_>,
) -> Result<Outcome, Error> {
    let mut pacer = match rate {
        Some(rate) => Some((Pacer::new()?, rate)),
        None => None,
    };
    let mut discard = Message::new(Kind::Discard, 0, body);
    let warmup = super::super::warm_up_for(settings, start.map(|start| start.warm_until));
    // One of several flows on this thread: it takes turns with the others.
    let shared = start.is_some();
    let warm = stream(
        peer,
        &mut discard,
        (Instant::now(), warmup),
        pacer.as_mut(),
        None,
        shared,
    )
    .await?;
    let before = peer.stats().await?;
    if let Some(start) = start {
        start.counted().await?;
    }
    let kernel_before = peer.snapshot(settings)?;

    let drops = drops();
    let cpu = Sample::now();
    let start = Instant::now();
    let tcp = peer.tcp_info(settings)?;
    // One end for the ticker and the stream: the intervals end with it.
    let mut ticker = Ticker::new(settings.interval, start, &Outcome::new(), tcp, sink)
        .until(start + settings.duration);
    let sent = stream(
        peer,
        &mut discard,
        (start, settings.duration),
        pacer.as_mut(),
        Some((&mut ticker, settings)),
        shared,
    )
    .await?;
    let elapsed = if peer.transport.caps().reliable {
        // TCP loses nothing: the receiver may lag behind by the socket
        // buffers, so its rate counts until it has answered the stats ping
        // queued behind the stream.
        Duration::ZERO
    } else {
        // What UDP's receiver has not taken by the end of the stream is
        // lost (its queue is full or it is about to be), so the rate at the
        // receiver is what arrived over the time of sending.
        let elapsed = start.elapsed();
        tokio::time::sleep(UDP_DRAIN).await;
        elapsed
    };
    let after = peer.stats().await?;
    let elapsed = if elapsed.is_zero() {
        start.elapsed()
    } else {
        elapsed
    };
    let mut outcome = Outcome::streamed(warm, sent, &before, &after, elapsed)?;
    outcome.check_stream(peer.transport.caps().reliable)?;
    outcome.cpu = cpu.and_then(|cpu| cpu.elapsed());
    Drops::end(drops.as_ref(), &mut outcome);
    if let Some(kernel_before) = kernel_before {
        outcome.kernel = Some(kernel_before.until(&Snapshot::take(peer.link.tcp_info())?));
    }
    Ok(outcome)
}

/// A reverse stream: the listener is asked (a ping with
/// [`FLAG_SEND`]) to stream for the warm-up, counted by nobody, then for
/// the measurement; the client counts what arrives, and the listener's
/// closing pong says how many it sent. The rate is the client's, from the
/// request to that pong (which comes after everything still in flight).
pub(super) async fn reverse(
    peer: &mut Peer,
    size: usize,
    settings: &Settings,
    shared: bool,
    sink: Sink<'_>,
) -> Result<Outcome, Error> {
    // Plan sizes are at most a 16 MiB frame's body.
    let size = u32::try_from(size).unwrap_or(u32::MAX);
    let mut ignored = |_| {};
    let mut warm = Ticker::new(None, Instant::now(), &Outcome::new(), None, &mut ignored);
    let stream = (settings.warmup, size, shared);
    receive_stream(peer, 1, stream, &mut warm).await?;
    let cpu = Sample::now();
    let start = Instant::now();
    let tcp = peer.tcp_info(settings)?;
    // No boundary after the duration: what arrives from then until the
    // closing pong (what was still in flight) is the last interval's.
    let mut ticker = Ticker::new(settings.interval, start, &Outcome::new(), tcp, sink)
        .until(start + settings.duration);
    let stream = (settings.duration, size, shared);
    let mut outcome = receive_stream(peer, 2, stream, &mut ticker).await?;
    outcome.elapsed = start.elapsed();
    outcome.cpu = cpu.and_then(|cpu| cpu.elapsed());
    Ok(outcome)
}

/// Asks the listener for `duration` of `size`-byte `Discard`s (request
/// `seq`) and counts them until its closing pong, within the duration
/// and the reply timeout; the ticker is shown what has arrived, with no
/// TCP figures: this socket only receives, and its congestion window and
/// round-trip time are its ACKs', not the stream's (audit, round fifteen:
/// `cwnd 12 rtt 8.0 µs` in every interval; iperf3's `-R` reports the
/// sender's, which is the listener). One of several flows on this thread
/// (`shared`), it takes turns with the others.
async fn receive_stream(
    peer: &mut Peer,
    seq: u64,
    (duration, size, shared): (Duration, u32, bool),
    ticker: &mut Ticker<'_>,
) -> Result<Outcome, Error> {
    let duration = duration.max(Duration::from_micros(1));
    peer.link
        .send(&msg_net::ping::send_request(
            seq,
            &SendRequest { duration, size },
        ))
        .await?;
    // The closing pong queues behind the whole stream, as a statistics
    // pong does behind a forward one: it has as long past the duration.
    let within = duration + msg_net::ping::stats_wait(peer.transport, peer.timeout);
    let deadline = Instant::now() + within;
    let mut counter = DiscardCounter::default();
    // What the ticker is shown: the messages received so far.
    let mut so_far = Outcome::new();
    let mut received: u64 = 0;
    let sent = loop {
        let msg = match timeout_at(deadline.into(), peer.link.recv()).await {
            Ok(msg) => msg?.ok_or(RunError::ListenerClosed)?,
            Err(_) => return Err(RunError::NoAnswer { seq, within }.into()),
        };
        match msg.kind {
            // Each counted as a message of the size asked for: one of
            // another size is no such message, and would make the rate in
            // bytes a fiction (empty ones counted as 65,000 bytes each).
            Kind::Discard if msg.body.len() != size as usize => {
                return Err(RunError::StreamedSize {
                    seq: msg.seq,
                    len: msg.body.len(),
                    size,
                }
                .into());
            }
            Kind::Discard => {
                counter.count(msg.seq);
                let now = Instant::now();
                if ticker.due(now) && !ticker.ended(now) {
                    so_far.received = counter.stats().received;
                    ticker.tick(now, &so_far, true, None);
                }
                // A stream that keeps the socket full is read without
                // ever waiting, so this loop would hold the thread as the
                // sending one would: of -R -P 2 one flow took 95% of the
                // messages (318k against 15k msg/s; audit, round nine).
                // A yield now and then lets the other flows take turns,
                // as the sending side's does.
                received += 1;
                if shared && received % YIELD_EVERY == 0 {
                    tokio::task::yield_now().await;
                }
            }
            Kind::Pong if msg.flags & FLAG_SEND == 0 => return Err(RunError::NoStreamBack.into()),
            Kind::Pong if msg.seq == seq => break Streamed::parse(&msg.body)?.sent,
            Kind::Error => {
                let text = msg_net::text::printable(&msg.body);
                return Err(Error::Net(msg_net::Error::Peer(text)));
            }
            kind => {
                return Err(RunError::UnexpectedPong {
                    sent: seq + 1,
                    kind,
                    seq: msg.seq,
                }
                .into());
            }
        }
    };
    let stats = counter.stats();
    so_far.received = stats.received;
    ticker.finish(Instant::now(), &so_far, true, None);
    let mut outcome = Outcome::new();
    outcome.direction = Direction::Reverse;
    outcome.sent = sent;
    outcome.received = stats.received;
    outcome.reordered = stats.reordered;
    outcome.check_stream(peer.transport.caps().reliable)?;
    Ok(outcome)
}

/// Sends `Discard`s for `duration` from `start` (the ticker's, when it
/// has one, so that both end at once), as fast as the transport takes them or
/// at the pacer's rate, taking turns with the other flows on this thread
/// when it is one of several (`shared`); returns how many were sent.
async fn stream(
    peer: &mut Peer,
    discard: &mut Message,
    (start, duration): (Instant, Duration),
    mut pacer: Option<&mut (Pacer, u64)>,
    mut ticker: Option<(&mut Ticker<'_>, &Settings)>,
    shared: bool,
) -> Result<u64, Error> {
    let end = start + duration;
    let mut sent = 0;
    // What the ticker is shown: the messages sent so far.
    let mut so_far = Outcome::new();
    loop {
        let next = next_send(pacer.as_deref_mut(), start, sent, end).await?;
        if let Some((ticker, settings)) = ticker.as_mut() {
            if next >= end || ticker.due(next) {
                so_far.sent = sent;
                let tcp = peer.tcp_info(settings)?;
                if next >= end {
                    ticker.finish(next, &so_far, false, tcp);
                } else {
                    ticker.tick(next, &so_far, false, tcp);
                }
            }
        }
        if next >= end {
            break;
        }
        discard.seq += 1;
        peer.link.send(discard).await?;
        sent += 1;
        // A UDP send on loopback never waits (a full receiver drops
        // instead), so this loop would hold the thread: parallel flows,
        // futures of one task, ran one after another, each for the whole
        // duration. A yield now and then lets the others take turns (a
        // flow alone has none to let through, and yields nothing). (Not
        // tokio's coop budget: msg-udp's send, which goes straight through,
        // spends none, and a budget the flows share went to the first flow
        // every turn.)
        if shared && sent % YIELD_EVERY == 0 {
            tokio::task::yield_now().await;
        }
    }
    Ok(sent)
}

/// How many messages a stream sends between two yields to the other
/// flows on its thread: a runtime turn each time.
const YIELD_EVERY: u64 = 64;

#[cfg(test)]
mod tests {
    use std::cell::Cell;
    use std::io::Write;

    use msg_net::{ConnectOptions, Link, Transport};

    use super::*;
    use crate::settings::Mode;

    /// A reverse stream that never has to wait for a message (all of it
    /// already in the socket) still takes turns with the other flows on
    /// its thread when it is one of several: before, it read the whole
    /// stream in one turn, and of `-R -P 2` one flow took nearly all the
    /// messages (audit, round nine).
    #[test]
    fn a_shared_reverse_stream_takes_turns_with_the_other_flows() {
        const MESSAGES: u64 = 8 * YIELD_EVERY;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let (written, all_written) = std::sync::mpsc::channel();
        let server = std::thread::spawn(move || {
            let (mut conn, _) = listener.accept().unwrap();
            let mut out = Vec::new();
            let mut frame = |msg: &Message| {
                let mut encoded = Vec::new();
                msg_proto::encode(msg, &mut encoded).unwrap();
                out.extend(u32::try_from(encoded.len()).unwrap().to_be_bytes());
                out.extend(encoded);
            };
            for seq in 1..=MESSAGES {
                frame(&Message::new(Kind::Discard, seq, vec![b'm'; 16]));
            }
            let mut pong = Message::new(
                Kind::Pong,
                1,
                Streamed { sent: MESSAGES }.to_body().to_vec(),
            );
            pong.flags = FLAG_SEND;
            frame(&pong);
            // Some 25 KB: the socket's buffers hold it all unread.
            conn.write_all(&out).unwrap();
            written.send(()).unwrap();
            // Until the client is done (its request, then its close).
            let _ = std::io::copy(&mut conn, &mut std::io::sink());
        });
        let settings = Settings {
            mode: Mode::Throughput,
            direction: Direction::Reverse,
            warmup: Duration::ZERO,
            duration: Duration::from_millis(1),
            timeout: Duration::from_secs(10),
            tcp_timeout: Duration::from_secs(10),
            rate: None,
            impaired: false,
            batch: None,
            interval: None,
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let (received, turns) = runtime.block_on(async {
            let link = Link::connect(Transport::Tcp, addr, &ConnectOptions::default())
                .await
                .unwrap();
            all_written.recv().unwrap();
            let timeout = Duration::from_secs(10);
            let mut peer = Peer::new(link, Transport::Tcp, timeout, Bytes::new());
            let mut ignored = |_| {};
            let mut ticker = Ticker::new(None, Instant::now(), &Outcome::new(), None, &mut ignored);
            let done = Cell::new(false);
            let turns = Cell::new(0u64);
            let stream = async {
                let stream = (settings.duration, 16, true);
                let outcome = receive_stream(&mut peer, 1, stream, &mut ticker).await;
                done.set(true);
                outcome
            };
            let other = async {
                while !done.get() {
                    turns.set(turns.get() + 1);
                    tokio::task::yield_now().await;
                }
            };
            let (outcome, ()) = tokio::join!(stream, other);
            (outcome.unwrap().received, turns.get())
        });
        server.join().unwrap();
        assert_eq!(received, MESSAGES);
        // A turn each YIELD_EVERY messages, give or take the first.
        assert!(turns >= MESSAGES / YIELD_EVERY - 1, "{turns} turns");
    }
}
