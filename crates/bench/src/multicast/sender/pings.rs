//! The sender's ping-pong: pings to the group, closed loop or at a rate,
//! and every receiver's answers to them. Apart from the stream (`stream`)
//! because only this mode has answers in flight to match and time.
//!
//! Each ping in flight is a [`Flight`]: its sequence number, its deadline
//! and which receivers have answered it. A flight ends when every
//! receiver heard from so far has answered it, or at its deadline; an
//! answer after that is late, and lost. In the closed loop the next ping
//! leaves when the last flight ended; with a rate, on schedule.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use msg_net::ping::PongError;
use msg_proto::{Kind, Message};

use super::{Measured, Sender};
use crate::error::{Error, RunError};
use crate::multicast::MAX_RECEIVERS;
use crate::pace::scheduled;

/// Words of a flight's answered-bitset: a bit per receiver.
const WORDS: usize = MAX_RECEIVERS.div_ceil(64) as usize;

/// A ping in flight.
#[derive(Debug)]
struct Flight {
    seq: u64,
    /// When it went, on the sender's clock: what its round trips count
    /// from.
    sent: u64,
    deadline: Instant,
    answered: [u64; WORDS],
    count: u32,
}

impl Sender<'_> {
    /// Pings for the warm-up, then for the duration, every receiver's
    /// round trips recorded.
    pub(in crate::multicast) fn pingpong(&mut self) -> Result<Measured, Error> {
        let body = Bytes::from(vec![b'm'; self.fanout.size]);
        let mut ping = Message::new(Kind::Ping, 0, body);
        self.pings(&mut ping, self.fanout.warmup, false)?;
        let overflow = self.overflow();
        let start = Instant::now();
        let sent = self.pings(&mut ping, self.fanout.duration, true)?;
        let elapsed = start.elapsed();
        Ok(self.measured(sent, elapsed, overflow))
    }

    /// Pings for `window` (closed loop, or at the rate), then waits for
    /// the answers in flight; records round trips when `record`. Returns
    /// how many pings it sent.
    fn pings(&mut self, ping: &mut Message, window: Duration, record: bool) -> Result<u64, Error> {
        let rate = self.fanout.rate;
        let start = Instant::now();
        let end = start + window;
        let mut flights: VecDeque<Flight> = VecDeque::new();
        let mut sent = 0;
        loop {
            let now = Instant::now();
            let known = u32::try_from(self.index.len()).unwrap_or(u32::MAX);
            while flights
                .front()
                .is_some_and(|f| f.deadline <= now || (known > 0 && f.count >= known))
            {
                flights.pop_front();
            }
            let sending = now < end;
            let next = rate.map(|rate| scheduled(start, sent, rate));
            let due = match next {
                None => flights.is_empty(),
                Some(at) => at <= now,
            };
            if sending && due {
                let at = next.unwrap_or(now);
                self.seq += 1;
                ping.seq = self.seq;
                ping.timestamp_ns = self.clock.ns(at);
                self.send(ping)?;
                flights.push_back(Flight {
                    seq: self.seq,
                    sent: ping.timestamp_ns,
                    deadline: at + self.timeout,
                    answered: [0; WORDS],
                    count: 0,
                });
                sent += 1;
                continue;
            }
            let deadline = flights.front().map(|f| f.deadline);
            let wake = match (deadline, next.filter(|_| sending)) {
                (Some(d), Some(n)) => d.min(n),
                (Some(at), None) | (None, Some(at)) => at,
                (None, None) => return Ok(sent),
            };
            if let Some((reply, from, arrived)) = self.recv(wake)? {
                self.on_answer(&reply, from, arrived, &mut flights, record)?;
            }
        }
    }

    /// `reply` came from `from` at `arrived`: a pong to a flight, late, or
    /// nothing of this run's.
    ///
    /// # Errors
    ///
    /// [`Error::GroupAnswer`] for a pong to a flight whose body is not
    /// the ping's length, as a unicast run fails for it.
    fn on_answer(
        &mut self,
        reply: &Message,
        from: SocketAddr,
        arrived: Instant,
        flights: &mut VecDeque<Flight>,
        record: bool,
    ) -> Result<(), Error> {
        if reply.kind != Kind::Pong {
            return Ok(());
        }
        let Some(r) = self.receiver(from) else {
            return Ok(());
        };
        let first = flights.front().map_or(u64::MAX, |f| f.seq);
        let flight = reply
            .seq
            .checked_sub(first)
            .and_then(|i| flights.get_mut(usize::try_from(i).ok()?));
        let receiver = &mut self.receivers[r];
        let Some(flight) = flight.filter(|f| arrived <= f.deadline) else {
            if record && reply.seq <= self.seq {
                receiver.late += 1;
            }
            return Ok(());
        };
        if reply.body.len() != self.fanout.size {
            return Err(Error::GroupAnswer {
                id: receiver.id,
                addr: from,
                source: RunError::PongLength(PongError::BodyLength {
                    seq: reply.seq,
                    ping: self.fanout.size,
                    pong: reply.body.len(),
                }),
            });
        }
        // A second answer from the same receiver (a duplicate, or a
        // replay) is not a second round trip.
        let (word, bit) = (r / 64, 1u64 << (r % 64));
        if flight.answered[word] & bit != 0 {
            return Ok(());
        }
        flight.answered[word] |= bit;
        flight.count += 1;
        if record {
            receiver.received += 1;
            // From the flight's own stamp: the pong's echo is the peer's.
            let rtt = self.clock.ns(arrived).saturating_sub(flight.sent);
            receiver.latency.saturating_record(rtt.max(1));
        }
        Ok(())
    }
}
