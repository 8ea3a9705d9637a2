//! The sender's one-way stream: discards to the group, as fast as the
//! socket takes them or at a rate, between two statistics requests whose
//! answers say what each receiver counted. Apart from the ping-pong
//! (`pings`): nothing here is timed per message, only counted.

use std::thread;
use std::time::{Duration, Instant};

use bytes::Bytes;
use msg_net::Stats;
use msg_net::ping::{STATS_ATTEMPTS, parse_stats, stats_request};
use msg_proto::{Kind, Message};

use super::{Measured, Sender};
use crate::engine::{UDP_DRAIN, counted};
use crate::error::{Error, RunError};
use crate::pace::scheduled;

impl Sender<'_> {
    /// A stream of discards for the warm-up, then for the duration,
    /// between two statistics requests.
    pub(in crate::multicast) fn throughput(&mut self) -> Result<Measured, Error> {
        let body = Bytes::from(vec![b'm'; self.fanout.size]);
        let mut discard = Message::new(Kind::Discard, 0, body);
        let warm = self.stream(&mut discard, self.fanout.warmup)?;
        let before = self.stats()?;
        let overflow = self.overflow();
        let start = Instant::now();
        let sent = self.stream(&mut discard, self.fanout.duration)?;
        // As a unicast stream: the rate at a receiver is what arrived over
        // the time of sending; what it has not taken soon after is lost.
        let elapsed = start.elapsed();
        thread::sleep(UDP_DRAIN);
        let after = self.stats()?;
        for (i, receiver) in self.receivers.iter_mut().enumerate() {
            let (Some(Some(before)), Some(Some(after)), Some(addr)) =
                (before.get(i), after.get(i), receiver.addr)
            else {
                continue;
            };
            // Checked as a unicast listener's are: a receiver's counts
            // that cannot be true fail the run rather than show as a
            // loss of 0 or a rate above what was sent.
            let (received, reordered) =
                counted(warm, sent, before, after).map_err(|why| Error::GroupAnswer {
                    id: receiver.id,
                    addr,
                    source: RunError::ImpossibleCounts(why),
                })?;
            receiver.counted = true;
            receiver.received = received;
            receiver.reordered = reordered;
        }
        Ok(self.measured(sent, elapsed, overflow))
    }

    /// Sends discards for `window`, as fast as the socket takes them or
    /// at the rate; returns how many.
    fn stream(&mut self, discard: &mut Message, window: Duration) -> Result<u64, Error> {
        let start = Instant::now();
        let end = start + window;
        let mut sent = 0;
        loop {
            let now = Instant::now();
            if now >= end {
                return Ok(sent);
            }
            if let Some(rate) = self.fanout.rate {
                let at = scheduled(start, sent, rate);
                if at > now {
                    thread::sleep((at - now).min(end - now));
                    continue;
                }
            }
            discard.seq += 1;
            self.send(discard)?;
            sent += 1;
        }
    }

    /// Every receiver's statistics, by index: a request to the group,
    /// sent again (up to [`STATS_ATTEMPTS`]) while a receiver heard from
    /// has not answered; the first waits its whole timeout unless every
    /// receiver expected has answered, so that remote ones are heard.
    fn stats(&mut self) -> Result<Vec<Option<Stats>>, Error> {
        let mut got: Vec<Option<Stats>> = Vec::new();
        let first = self.seq + 1;
        let expected = self.fanout.receivers.count() as usize;
        for attempt in 1..=STATS_ATTEMPTS {
            self.seq += 1;
            self.send(&stats_request(self.seq))?;
            let deadline = Instant::now() + self.timeout;
            loop {
                let answered = got.iter().flatten().count();
                let heard = self.index.len();
                let all = answered >= heard && (attempt > 1 || heard >= expected);
                if (heard > 0 && all) || Instant::now() >= deadline {
                    break;
                }
                let Some((reply, from, _)) = self.recv(deadline)? else {
                    continue;
                };
                if reply.kind != Kind::Pong || !(first..=self.seq).contains(&reply.seq) {
                    continue;
                }
                let Some(r) = self.receiver(from) else {
                    continue;
                };
                if got.len() <= r {
                    got.resize(r + 1, None);
                }
                got[r] = Some(parse_stats(&reply)?);
            }
            if !self.index.is_empty() && got.iter().flatten().count() >= self.index.len() {
                break;
            }
        }
        Ok(got)
    }
}
