//! The open loop (`pingpong` at a rate): pings leave on a fixed schedule
//! whatever the replies do, each stamped with its *intended* send time,
//! and each ping's pong is taken once ([`Answered`]).

use std::cell::Cell;
use std::collections::VecDeque;
use std::time::Instant;

use bytes::Bytes;
use msg_net::ping::{Clock, PongError};
use msg_proto::{Kind, Message};

use super::Peer;
use crate::cpu::Sample;
use crate::engine::{Outcome, Snapshot};
use crate::error::{Error, RunError};
use crate::interval::{Sink, Ticker};
use crate::pace::{Pacer, scheduled};
use crate::settings::Settings;

pub(super) async fn open_loop(
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
    let mut sending_ended = start;

    let send = async {
        let mut pacer = Pacer::new()?;
        let mut ping = Message::new(Kind::Ping, 0, body);
        // The run ends by the clock too, a tenth of its length after
        // `stop`: behind a schedule this machine cannot keep, every ping
        // went however late, and a 0.5 s run at 10,000,000 msg/s took
        // 38 s (audit, round fifteen). The grace keeps a kept schedule's
        // count exact when its last pings are a little late.
        let late = stop + (stop - start) / 10;
        for i in 0.. {
            let intended = scheduled(start, i, rate);
            if intended >= stop || Instant::now() >= late {
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
            // Behind the schedule a send does not wait (a UDP send never
            // does), so the replies would wait for the sending to end, and
            // the client's own receive queue overflow: counted as lost.
            // A turn now and then lets them be read as they come.
            if i % YIELD_EVERY == YIELD_EVERY - 1 {
                tokio::task::yield_now().await;
            }
        }
        done.set(true);
        sending_ended = Instant::now();
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
        let mut ticker =
            Ticker::new(settings.interval, measure_start, &outcome, None, sink).until(stop);
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
                return Err(RunError::PongLength(PongError::BodyLength {
                    seq: reply.seq,
                    ping: size,
                    pong: reply.body.len(),
                })
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
    behind(
        rate,
        (start, start + settings.warmup, stop),
        outcome.sent,
        (sent_total.get(), sending_ended),
    )?;
    outcome.elapsed = settings.duration;
    outcome.cpu = cpu.and_then(|cpu| cpu.elapsed());
    // As a closed loop's end (`super::end`): a TLS session's close_notify.
    if transport == msg_net::Transport::Tls {
        let _ = tokio::time::timeout(super::END_WAIT, tx.finish()).await;
    }
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

/// Refuses a run whose sender fell behind its schedule by more than 1 %
/// of the pings `rate` asked for between `from` and `stop` (a schedule
/// from `start`): `sent` of them went, and `total` in all by `ended`. A
/// run that keeps its schedule misses only the few pings whose time came
/// while the last ones were sent.
fn behind(
    rate: u64,
    (start, from, stop): (Instant, Instant, Instant),
    sent: u64,
    (total, ended): (u64, Instant),
) -> Result<(), RunError> {
    // How many of the schedule's pings fall before `at`.
    let before = |at: Instant| {
        let ns = (at - start).as_nanos();
        u64::try_from((ns * u128::from(rate)).div_ceil(1_000_000_000)).unwrap_or(u64::MAX)
    };
    let asked = before(stop) - before(from);
    if sent >= asked - asked / 100 {
        return Ok(());
    }
    let took = (ended - start).as_secs_f64();
    Err(RunError::BehindSchedule {
        rate,
        sent: total,
        asked: before(stop),
        within: stop - start,
        achieved: if took > 0.0 {
            (total as f64 / took) as u64
        } else {
            0
        },
    })
}

/// How many pings the open loop sends between two turns for its replies,
/// when it is behind its schedule (on it, each wait for the next ping's
/// time is such a turn).
const YIELD_EVERY: u64 = 32;

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
