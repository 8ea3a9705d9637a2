//! The sender: pings to the group and every receiver's answers, or a
//! stream to the group between two statistics requests, on the calling
//! thread with one blocking socket.
//!
//! Each ping in flight is a [`Flight`]: its sequence number, its deadline
//! and which receivers have answered it. A flight ends when every
//! receiver heard from so far has answered it, or at its deadline; an
//! answer after that is late, and lost. In the closed loop the next ping
//! leaves when the last flight ended; with a rate, on schedule.

use std::collections::{HashMap, VecDeque};
use std::net::{SocketAddr, UdpSocket};
use std::thread;
use std::time::{Duration, Instant};

use bytes::Bytes;
use msg_net::Stats;
use msg_net::group::{self, GroupOptions};
use msg_net::ping::{Clock, STATS_ATTEMPTS, parse_stats, stats_request};
use msg_proto::{Kind, Message};

use super::{Fanout, MAX_RECEIVERS, Receiver, retry};
use crate::engine::UDP_DRAIN;
use crate::error::Error;
use crate::pace::scheduled;

/// The receive buffer the sender asks for: every receiver's answer to a
/// ping arrives at once, and 256 answers overflow the kernel's default
/// (about 208 KiB, at some 800 bytes of accounting per small datagram),
/// which would count as the receivers' loss what is the sender's.
const SENDER_RCVBUF: usize = 8 << 20;

/// The longest a read of a readable socket may block (never, unless the
/// datagram was dropped in between).
const READ_TIMEOUT: Duration = Duration::from_secs(1);

/// Words of a flight's answered-bitset: a bit per receiver.
const WORDS: usize = MAX_RECEIVERS.div_ceil(64) as usize;

/// A ping in flight.
#[derive(Debug)]
struct Flight {
    seq: u64,
    deadline: Instant,
    answered: [u64; WORDS],
    count: u32,
}

/// What a run measured, beside the receivers' own figures.
#[derive(Debug)]
pub(super) struct Measured {
    pub(super) sent: u64,
    pub(super) elapsed: Duration,
    pub(super) strangers: u64,
    pub(super) sender_overflow: Option<u64>,
}

/// The sender's socket and what it knows of the receivers.
#[derive(Debug)]
pub(super) struct Sender<'a> {
    socket: UdpSocket,
    group: SocketAddr,
    fanout: &'a Fanout,
    timeout: Duration,
    clock: Clock,
    /// The last sequence number of a ping or statistics request.
    seq: u64,
    receivers: Vec<Receiver>,
    /// A receiver's index by the address it answers from.
    index: HashMap<SocketAddr, usize>,
    /// Whether answers from new addresses are receivers (remote ones)
    /// rather than strangers.
    open: bool,
    strangers: u64,
    buf: Vec<u8>,
    out: Vec<u8>,
}

impl<'a> Sender<'a> {
    /// A socket that sends to `group` as `options` say; `known`: the
    /// built-in receivers' addresses, in order (`None`: remote receivers,
    /// learnt as they answer).
    pub(super) fn new(
        group: SocketAddr,
        options: &GroupOptions,
        fanout: &'a Fanout,
        known: Option<Vec<SocketAddr>>,
    ) -> Result<Self, Error> {
        let socket = group::sender(group, options)?;
        // As large as the kernel allows (net.core.rmem_max): a smaller
        // buffer is still a buffer, and its drops are counted apart.
        let _ = socket2::SockRef::from(&socket).set_recv_buffer_size(SENDER_RCVBUF);
        // A safety net: `recv` reads only once the socket is readable.
        socket.set_read_timeout(Some(READ_TIMEOUT))?;
        let open = known.is_none();
        let (receivers, index) = match known {
            Some(addrs) => (
                (1..)
                    .zip(&addrs)
                    .map(|(id, a)| Receiver::new(id, Some(*a)))
                    .collect(),
                addrs.iter().enumerate().map(|(i, a)| (*a, i)).collect(),
            ),
            None => (
                (1..=fanout.receivers.count())
                    .map(|id| Receiver::new(id, None))
                    .collect(),
                HashMap::new(),
            ),
        };
        Ok(Self {
            socket,
            group,
            fanout,
            timeout: fanout.timeout(),
            clock: Clock::new(),
            seq: 0,
            receivers,
            index,
            open,
            strangers: 0,
            buf: vec![0; 65_536],
            out: Vec::with_capacity(65_536),
        })
    }

    /// The receivers and their figures.
    pub(super) fn into_receivers(self) -> Vec<Receiver> {
        self.receivers
    }

    /// Pings for the warm-up, then for the duration, every receiver's
    /// round trips recorded.
    pub(super) fn pingpong(&mut self) -> Result<Measured, Error> {
        let body = Bytes::from(vec![b'm'; self.fanout.size]);
        let mut ping = Message::new(Kind::Ping, 0, body);
        self.pings(&mut ping, self.fanout.warmup, false)?;
        let overflow = self.overflow();
        let start = Instant::now();
        let sent = self.pings(&mut ping, self.fanout.duration, true)?;
        let elapsed = start.elapsed();
        Ok(self.measured(sent, elapsed, overflow))
    }

    /// A stream of discards for the warm-up, then for the duration,
    /// between two statistics requests.
    pub(super) fn throughput(&mut self) -> Result<Measured, Error> {
        let body = Bytes::from(vec![b'm'; self.fanout.size]);
        let mut discard = Message::new(Kind::Discard, 0, body);
        self.stream(&mut discard, self.fanout.warmup)?;
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
            let (Some(Some(before)), Some(Some(after))) = (before.get(i), after.get(i)) else {
                continue;
            };
            receiver.counted = true;
            receiver.received = after.received.saturating_sub(before.received);
            receiver.reordered = after.reordered.saturating_sub(before.reordered);
        }
        Ok(self.measured(sent, elapsed, overflow))
    }

    fn measured(&self, sent: u64, elapsed: Duration, overflow: Option<u64>) -> Measured {
        Measured {
            sent,
            elapsed,
            strangers: self.strangers,
            sender_overflow: overflow
                .zip(self.overflow())
                .map(|(before, after)| after.saturating_sub(before)),
        }
    }

    /// The datagrams the kernel dropped for the sender's socket, its
    /// buffer full (`/proc/net/udp`); `None` where it does not tell.
    fn overflow(&self) -> Option<u64> {
        msg_net::kernel_udp_drops(self.socket.local_addr().ok()?)
    }

    fn send(&mut self, msg: &Message) -> Result<(), Error> {
        self.out.clear();
        msg_proto::encode(msg, &mut self.out)?;
        loop {
            match self.socket.send_to(&self.out, self.group) {
                Ok(_) => return Ok(()),
                Err(err) if err.kind() == std::io::ErrorKind::Interrupted => {}
                Err(source) => {
                    return Err(Error::GroupSend {
                        group: self.group,
                        source,
                    });
                }
            }
        }
    }

    /// The next message from anyone until `until`: `None` when nothing
    /// (decodable) came by then.
    fn recv(&mut self, until: Instant) -> Result<Option<(Message, SocketAddr, Instant)>, Error> {
        let wait = until.saturating_duration_since(Instant::now());
        if !readable(&self.socket, wait)? {
            return Ok(None);
        }
        match self.socket.recv_from(&mut self.buf) {
            Ok((n, from)) => {
                let arrived = Instant::now();
                Ok(msg_proto::decode(Bytes::copy_from_slice(&self.buf[..n]))
                    .ok()
                    .map(|msg| (msg, from, arrived)))
            }
            Err(err) if retry(&err) => Ok(None),
            Err(err) => Err(err.into()),
        }
    }

    /// The receiver that answers from `from`: a known one, or (remote) the
    /// next expected one not yet heard from, or one more; `None` for a
    /// stranger.
    fn receiver(&mut self, from: SocketAddr) -> Option<usize> {
        if let Some(&i) = self.index.get(&from) {
            return Some(i);
        }
        if !self.open {
            self.strangers += 1;
            return None;
        }
        let i = match self.receivers.iter().position(|r| r.addr.is_none()) {
            Some(i) => i,
            None if self.receivers.len() < MAX_RECEIVERS as usize => {
                let id = u32::try_from(self.receivers.len()).unwrap_or(u32::MAX) + 1;
                self.receivers.push(Receiver::new(id, None));
                self.receivers.len() - 1
            }
            None => {
                self.strangers += 1;
                return None;
            }
        };
        self.receivers[i].addr = Some(from);
        self.index.insert(from, i);
        Some(i)
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
                self.on_answer(&reply, from, arrived, &mut flights, record);
            }
        }
    }

    /// `reply` came from `from` at `arrived`: a pong to a flight, late, or
    /// nothing of this run's.
    fn on_answer(
        &mut self,
        reply: &Message,
        from: SocketAddr,
        arrived: Instant,
        flights: &mut VecDeque<Flight>,
        record: bool,
    ) {
        if reply.kind != Kind::Pong {
            return;
        }
        let Some(r) = self.receiver(from) else {
            return;
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
            return;
        };
        let (word, bit) = (r / 64, 1u64 << (r % 64));
        if flight.answered[word] & bit != 0 {
            return;
        }
        flight.answered[word] |= bit;
        flight.count += 1;
        if record {
            receiver.received += 1;
            let rtt = self.clock.ns(arrived).saturating_sub(reply.timestamp_ns);
            receiver.latency.saturating_record(rtt.max(1));
        }
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

/// Whether `socket` has a datagram to read within `wait`. On Linux
/// `ppoll`, whose timeout is a high-resolution timer: `SO_RCVTIMEO` (and
/// `poll`'s milliseconds) round up to the kernel's tick, up to 4 ms late,
/// which would hold an open loop's sends back by as much and count it as
/// latency.
#[cfg(target_os = "linux")]
fn readable(socket: &UdpSocket, wait: Duration) -> std::io::Result<bool> {
    use nix::poll::{PollFd, PollFlags, ppoll};
    use std::os::fd::AsFd;
    let mut fds = [PollFd::new(socket.as_fd(), PollFlags::POLLIN)];
    match ppoll(&mut fds, Some(wait.into()), None) {
        Ok(n) => Ok(n > 0),
        Err(nix::errno::Errno::EINTR) => Ok(false),
        Err(errno) => Err(errno.into()),
    }
}

/// Whether `socket` has a datagram to read within `wait`, as the receive
/// timeout tells (to the kernel's tick).
#[cfg(not(target_os = "linux"))]
fn readable(socket: &UdpSocket, wait: Duration) -> std::io::Result<bool> {
    // A zero timeout would mean "wait forever".
    socket.set_read_timeout(Some(wait.max(Duration::from_micros(1))))?;
    let mut byte = [0; 1];
    match socket.peek_from(&mut byte) {
        Ok(_) => Ok(true),
        Err(err) if retry(&err) => Ok(false),
        // A datagram larger than the byte: readable.
        Err(_) => Ok(true),
    }
}
