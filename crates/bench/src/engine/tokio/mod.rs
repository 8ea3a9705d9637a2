//! The tokio engine: one measured run over msg-net's [`Link`], a fresh
//! connection, a warm-up, then the measurement.
//!
//! - Closed loop (`pingpong`): one `Ping` in flight; the round trip runs from
//!   its send timestamp to the `Pong`, which carries the timestamp back.
//! - Open loop (`pingpong` at a rate): pings leave on a fixed schedule
//!   whatever the replies do, each stamped with its *intended* send time,
//!   so a stall shows up in every message it delays instead of hiding in the
//!   one that was late (coordinated omission, as wrk2 and HdrHistogram
//!   describe it).
//! - `throughput`: a one-way stream of `Discard` messages; a statistics ping
//!   (`FLAG_STATS`) before and after asks the listener how many arrived and
//!   how many came out of order.
//!
//! Over UDP a reply that does not come within the timeout counts as lost
//! and the run goes on; over TCP nothing is lost, so a missing reply is an
//! error.

use std::cell::Cell;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::Bytes;
use msg_net::ping::{Ask, Clock, Done, Next, PingClient};
use msg_net::{Link, Stats, TcpInfo, Transport};
use msg_proto::{Kind, Message};
use tokio::time::timeout_at;

use super::{Drops, Outcome, Snapshot, batched};
use crate::cpu::Sample;
use crate::engine::start::AsyncStart;
use crate::error::{Error, RunError};
use crate::interval::{Sink, Ticker};
use crate::pace::{Pacer, scheduled};
use crate::settings::{Direction, Mode, Settings, Target};

mod stream;

use stream::{reverse, throughput};

/// Measures one run of `size`-byte messages against `target`.
///
/// # Errors
///
/// When the target cannot be reached, closes the connection, answers what
/// was not asked, or (over TCP) does not answer within the timeout.
pub(crate) async fn measure(
    target: &Target,
    size: usize,
    settings: &Settings,
    sink: Sink<'_>,
) -> Result<Outcome, Error> {
    let link = connect(target).await?;
    measure_on(link, target, size, settings, settings.direction, None, sink).await
}

/// A link to `target`, authenticated if it has a secret.
///
/// # Errors
///
/// When the target cannot be reached or refuses the handshake.
pub(crate) async fn connect(target: &Target) -> Result<Link, Error> {
    Ok(Link::connect(
        target.transport,
        target.addr.clone(),
        &target.connect_options(),
    )
    .await?)
}

/// As [`measure`], over `link`, made by [`connect`], the stream going
/// `direction` (forward or reverse: a flow of a bidirectional run is one
/// of the two).
///
/// # Errors
///
/// As [`measure`].
pub(crate) async fn measure_on(
    link: Link,
    target: &Target,
    size: usize,
    settings: &Settings,
    direction: Direction,
    start: Option<&AsyncStart>,
    sink: Sink<'_>,
) -> Result<Outcome, Error> {
    let caps = target.transport.caps();
    let timeout = settings.reply_timeout(target.transport);
    let body = Bytes::from(vec![b'm'; size]);
    let mut peer = Peer::new(link, target.transport, timeout, body.clone());
    match (settings.mode, settings.rate) {
        (Mode::Pingpong, None) => closed_loop(&mut peer, settings, sink).await,
        (Mode::Pingpong, Some(rate)) => open_loop(peer, body, settings, rate, sink).await,
        (Mode::Throughput, _) if direction == Direction::Reverse => {
            reverse(&mut peer, size, settings, sink).await
        }
        (Mode::Throughput, _) if caps.batches && settings.batch.is_some() => {
            batched::throughput(&mut peer, target, body, settings, sink).await
        }
        (Mode::Throughput, rate) => {
            let drops = || Drops::start(target);
            throughput(&mut peer, body, settings, (rate, start), drops, sink).await
        }
    }
}

/// The connection and the client's side of the conversation on it.
#[derive(Debug)]
pub(crate) struct Peer {
    pub(super) link: Link,
    client: PingClient,
    transport: Transport,
    timeout: Duration,
}

impl Peer {
    /// Pings carrying `body` over `link`, their pongs waited for up to
    /// `timeout`.
    pub(crate) fn new(link: Link, transport: Transport, timeout: Duration, body: Bytes) -> Self {
        Self {
            link,
            client: PingClient::new(transport, timeout, body),
            transport,
            timeout,
        }
    }

    /// Carries out `ask`: sends what the client says, and hands it what
    /// arrives by its deadlines, or that nothing did.
    async fn drive(&mut self, ask: Ask) -> Result<Done, Error> {
        let Self {
            link,
            client,
            timeout,
            ..
        } = self;
        let mut next = client.start(ask);
        loop {
            next = match next {
                Next::Send(msg) => {
                    link.send(msg).await?;
                    client.on_sent(Instant::now)
                }
                Next::Recv(deadline) => match timeout_at(deadline.into(), link.recv()).await {
                    Ok(reply) => {
                        let reply = reply?.ok_or(RunError::ListenerClosed)?;
                        client.on_reply(&reply, Instant::now())
                    }
                    Err(_) => client.on_deadline(),
                }
                .map_err(|err| Error::client(err, *timeout))?,
                Next::Done(done) => return Ok(done),
            };
        }
    }

    /// One round trip, the ping leaving now (`sent`, read by the caller);
    /// its time in nanoseconds, or `None` if lost.
    pub(crate) async fn exchange(&mut self, sent: Instant) -> Result<Option<u64>, Error> {
        Ok(self.drive(Ask::Ping(sent)).await?.round_trip())
    }

    /// The kernel's counters now, under an impairment.
    pub(super) fn snapshot(&self, settings: &Settings) -> Result<Option<Snapshot>, Error> {
        if !settings.impaired {
            return Ok(None);
        }
        Snapshot::take(self.link.tcp_info()).map(Some)
    }

    /// `TCP_INFO` over TCP, for the intervals (none without them).
    pub(super) fn tcp_info(&self, settings: &Settings) -> Result<Option<TcpInfo>, Error> {
        if settings.interval.is_none() {
            return Ok(None);
        }
        Ok(self.link.tcp_info().map_err(RunError::TcpInfo)?)
    }

    /// Asks the listener how many `Discard`s it has counted from us.
    pub(super) async fn stats(&mut self) -> Result<Stats, Error> {
        Ok(self.drive(Ask::Stats).await?.stats())
    }
}

async fn closed_loop(
    peer: &mut Peer,
    settings: &Settings,
    sink: Sink<'_>,
) -> Result<Outcome, Error> {
    let warm_until = Instant::now() + settings.warmup;
    loop {
        // One clock read per round trip serves as both the send time and
        // the loop's check.
        let now = Instant::now();
        if now >= warm_until {
            break;
        }
        peer.exchange(now).await?;
    }
    let before = peer.snapshot(settings)?;
    let mut outcome = Outcome::new();
    let cpu = Sample::now();
    let start = Instant::now();
    let end = start + settings.duration;
    let tcp = peer.tcp_info(settings)?;
    let mut ticker = Ticker::new(settings.interval, start, &outcome, tcp, sink);
    loop {
        let mut now = Instant::now();
        if now >= end {
            ticker.finish(now, &outcome, true, peer.tcp_info(settings)?);
            outcome.elapsed = now - start;
            outcome.cpu = cpu.and_then(|cpu| cpu.elapsed());
            outcome.kernel = before
                .map(|b| Ok::<_, Error>(b.until(&Snapshot::take(peer.link.tcp_info())?)))
                .transpose()?;
            return Ok(outcome);
        }
        if ticker.due(now) {
            ticker.tick(now, &outcome, true, peer.tcp_info(settings)?);
            // The next round trip starts after the tick, not before it.
            now = Instant::now();
        }
        outcome.sent += 1;
        if let Some(rtt) = peer.exchange(now).await? {
            outcome.record(rtt);
        }
    }
}

async fn open_loop(
    peer: Peer,
    body: Bytes,
    settings: &Settings,
    rate: u64,
    sink: Sink<'_>,
) -> Result<Outcome, Error> {
    let Peer {
        link,
        transport,
        timeout,
        ..
    } = peer;
    let (mut tx, mut rx) = link.split()?;
    // A pong echoes its ping's body, so each is this long.
    let size = body.len();
    let clock = Clock::new();
    let start = Instant::now();
    let measure_from = clock.ns(start + settings.warmup);
    let stop = start + settings.warmup + settings.duration;
    // Shared by the two futures below, which run in turn in this one task.
    let sent_total = Cell::new(0u64);
    let sent_measured = Cell::new(0u64);
    let received_total = Cell::new(0u64);
    let done = Cell::new(false);
    // The pacer may spin only while no reply is due.
    let idle = || received_total.get() == sent_total.get();
    let mut before = None;
    let mut cpu = None;

    let send = async {
        let mut pacer = Pacer::new()?;
        let mut ping = Message::new(Kind::Ping, 0, body);
        for i in 0.. {
            let intended = scheduled(start, i, rate);
            if intended >= stop {
                break;
            }
            pacer.wait_until(intended, idle).await?;
            ping.seq = i;
            ping.timestamp_ns = clock.ns(intended);
            if cpu.is_none() && ping.timestamp_ns >= measure_from {
                cpu = Sample::now();
            }
            if settings.impaired && before.is_none() && ping.timestamp_ns >= measure_from {
                before = Some(Snapshot::take(tx.tcp_info())?);
            }
            tx.send(&ping).await?;
            sent_total.set(i + 1);
            if ping.timestamp_ns >= measure_from {
                sent_measured.set(sent_measured.get() + 1);
            }
        }
        done.set(true);
        Ok::<_, Error>(())
    };
    let reliable = transport.caps().reliable;
    let receive = async {
        let mut outcome = Outcome::new();
        let mut answered = Answered::new(reliable);
        // Intervals of the measurement, which starts after the warm-up;
        // counted as the replies come (sent: those of the measurement so
        // far).
        let measure_start = start + settings.warmup;
        let mut ticker = Ticker::new(settings.interval, measure_start, &outcome, None, sink);
        loop {
            let now = Instant::now();
            if now > measure_start && ticker.due(now) {
                outcome.sent = sent_measured.get();
                ticker.tick(now, &outcome, true, None);
            }
            if done.get() && idle() {
                outcome.sent = sent_measured.get();
                ticker.finish(Instant::now().min(stop), &outcome, true, None);
                break;
            }
            let reply = match tokio::time::timeout(timeout, rx.recv()).await {
                Ok(reply) => reply?.ok_or(RunError::ListenerClosed)?,
                // Whatever has not come back by now is lost (over TCP, late).
                Err(_) if done.get() => {
                    outcome.sent = sent_measured.get();
                    ticker.finish(stop, &outcome, true, None);
                    break;
                }
                Err(_) => continue,
            };
            let arrived = clock.ns(Instant::now());
            if reply.kind != Kind::Pong || reply.seq >= sent_total.get() {
                return Err(RunError::UnexpectedPong {
                    sent: sent_total.get(),
                    kind: reply.kind,
                    seq: reply.seq,
                }
                .into());
            }
            if reply.body.len() != size {
                return Err(RunError::PongLength {
                    seq: reply.seq,
                    ping: size,
                    pong: reply.body.len(),
                }
                .into());
            }
            match answered.answer(reply.seq) {
                Pong::First => {}
                // A transport that loses nothing duplicates nothing
                // either: a second pong to a ping is the peer's bug, and
                // no figure of the run can be trusted (it was counted as
                // an answer: 4,000 msg/s at a rate of 2,000; and the last
                // pings' count never came level, so the run waited out
                // the whole timeout).
                Pong::Again if reliable => {
                    return Err(RunError::AnsweredTwice { seq: reply.seq }.into());
                }
                // Over UDP a network may copy a datagram (netem's
                // `duplicate` does). A copy answers nothing: as sockperf
                // and iperf3 do, it is neither an answer nor a loss, and
                // the first pong's time stands. (Forgotten: more than
                // `Answered::MAX_WORDS` × 64 pings late; a copy, or lost.)
                Pong::Again | Pong::Forgotten => continue,
            }
            received_total.set(received_total.get() + 1);
            // When ping `seq` was meant to go is known here, as it was to
            // the sender: the pong's echoed stamp is the peer's number.
            let intended = clock.ns(scheduled(start, reply.seq, rate));
            if intended >= measure_from {
                outcome.record(arrived.saturating_sub(intended));
            }
        }
        Ok::<_, Error>(outcome)
    };
    let ((), mut outcome) = tokio::try_join!(send, receive)?;
    if let Some(before) = before {
        outcome.kernel = Some(before.until(&Snapshot::take(tx.tcp_info())?));
    }
    outcome.sent = sent_measured.get();
    outcome.elapsed = settings.duration;
    outcome.cpu = cpu.and_then(|cpu| cpu.elapsed());
    if transport.caps().reliable && outcome.lost() > 0 {
        return Err(RunError::Unanswered {
            lost: outcome.lost(),
            sent: outcome.sent,
            within: timeout,
        }
        .into());
    }
    Ok(outcome)
}

/// Which pings of an open loop have been answered, a bit each, so that a
/// second pong to one is told from an answer (a listener that answered
/// each ping twice made 4,000 msg/s of a rate of 2,000; audit, round
/// six).
///
/// The bits kept start at the oldest ping not yet answered: each word
/// whose 64 pings are all answered leaves the front, so over a transport
/// that loses nothing (whose pongs come in order) a few words are kept.
/// Over UDP a lost ping holds the front, so there the bits are
/// [`Answered::MAX_WORDS`] words at most, the oldest forgotten first.
#[derive(Debug)]
struct Answered {
    /// The ping of the first bit of `words[0]`, a multiple of 64.
    base: u64,
    /// Pings below this were forgotten, answered or not; from it to
    /// `base`, all were answered.
    forgotten: u64,
    words: VecDeque<u64>,
    /// Whether the oldest words are forgotten past `MAX_WORDS`.
    bounded: bool,
}

/// What a pong is, by [`Answered::answer`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pong {
    /// The first to its ping: an answer.
    First,
    /// Its ping was answered before.
    Again,
    /// Its ping is too old to tell (over UDP alone).
    Forgotten,
}

impl Answered {
    /// The most words kept over a transport that loses messages: 1 MiB,
    /// 8,388,608 pings, 8 s of 1,000,000 pings a second.
    const MAX_WORDS: u64 = 1 << 17;

    /// Nothing answered yet; over a transport that loses messages
    /// (`!reliable`) bounded.
    fn new(reliable: bool) -> Self {
        Self {
            base: 0,
            forgotten: 0,
            words: VecDeque::new(),
            bounded: !reliable,
        }
    }

    /// A pong to ping `seq` came: whether it is the first.
    fn answer(&mut self, seq: u64) -> Pong {
        let Some(offset) = seq.checked_sub(self.base) else {
            return if seq < self.forgotten {
                Pong::Forgotten
            } else {
                Pong::Again
            };
        };
        let mut index = offset / 64;
        if self.bounded && index >= Self::MAX_WORDS {
            let dropped = index - Self::MAX_WORDS + 1;
            let kept = self.words.len() as u64;
            self.words
                .drain(..usize::try_from(dropped.min(kept)).unwrap_or(usize::MAX));
            self.base += dropped * 64;
            self.forgotten = self.base;
            index -= dropped;
        }
        let index = usize::try_from(index).expect("bounded by the pings sent");
        if self.words.len() <= index {
            self.words.resize(index + 1, 0);
        }
        let bit = 1 << (seq % 64);
        if self.words[index] & bit != 0 {
            return Pong::Again;
        }
        self.words[index] |= bit;
        while self.words.front() == Some(&u64::MAX) {
            self.words.pop_front();
            self.base += 64;
        }
        Pong::First
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_ping_of_an_open_loop_is_answered_once() {
        for reliable in [true, false] {
            let mut answered = Answered::new(reliable);
            // Out of order, across words, then each again.
            let pings = [3, 0, 200, 64, 1, 63, 2];
            for seq in pings {
                assert_eq!(answered.answer(seq), Pong::First, "{seq}");
            }
            for seq in pings {
                assert_eq!(answered.answer(seq), Pong::Again, "{seq}");
            }
            // A whole word answered leaves the front; its pings are still
            // answered.
            for seq in 0..64 {
                answered.answer(seq);
            }
            assert_eq!(answered.base, 64);
            assert_eq!(answered.answer(5), Pong::Again);
            assert_eq!(answered.answer(65), Pong::First);
        }
        // Over UDP a lost ping 0 holds the front no longer than
        // MAX_WORDS words: then it is forgotten, and its pong too late to
        // tell from a copy.
        let mut udp = Answered::new(false);
        let far = Answered::MAX_WORDS * 64 + 10;
        assert_eq!(udp.answer(far), Pong::First);
        assert_eq!(udp.words.len() as u64, Answered::MAX_WORDS);
        assert_eq!(udp.answer(0), Pong::Forgotten);
        assert_eq!(udp.answer(far), Pong::Again);
        assert_eq!(udp.answer(far - 1), Pong::First);
        // Over TCP nothing is forgotten.
        let mut tcp = Answered::new(true);
        assert_eq!(tcp.answer(far), Pong::First);
        assert_eq!(tcp.answer(0), Pong::First);
    }
}
