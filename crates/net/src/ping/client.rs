//! [`PingClient`]: the pinging client's side of the conversation, once,
//! without I/O. It numbers and stamps each ping, waits for its pong with
//! a [`PongWait`] (a late pong, a silence, a refusal), times the round
//! trip, and asks for the listener's statistics, again while the answer
//! does not come. A driver only moves messages and reads the clock: it
//! sends what the client gives it, receives until the deadline the client
//! names, and hands over what came ([`PingClient::on_reply`]) or that
//! nothing did ([`PingClient::on_deadline`]). Both benchmark engines drive
//! one, the tokio engine with a future per wait, the blocking engine with
//! a blocking `recv`.
//!
//! Nothing on the path of a round trip allocates: the ping is one message,
//! renumbered and restamped in place, and a statistics request has a
//! static body.

use std::time::{Duration, Instant};

use bytes::Bytes;
use msg_proto::{Kind, Message, Stats};

use super::{PongError, PongWait, Waited, parse_stats, stats_request};
use crate::Transport;

/// How many times a statistics request is sent before the client gives
/// up: over UDP it can be lost behind the stream it asks about.
pub const STATS_ATTEMPTS: u32 = 5;

/// How long a statistics answer may take over a reliable transport, behind
/// the stream it counts.
const RELIABLE_STATS_WAIT: Duration = Duration::from_secs(10);

/// How long to wait for the answer to one statistics request. Over TCP the
/// answer queues behind every discard still in flight, a backlog a busy
/// machine can take a while to work through; TCP loses nothing, so waiting
/// longer only waits.
pub fn stats_wait(transport: Transport, timeout: Duration) -> Duration {
    if transport.caps().reliable {
        timeout.max(RELIABLE_STATS_WAIT)
    } else {
        timeout
    }
}

/// Nanoseconds since a base instant: the timestamps on the wire, which a
/// pong carries back.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    base: Instant,
}

impl Clock {
    /// Counting from now.
    pub fn new() -> Self {
        Self {
            base: Instant::now(),
        }
    }

    /// `at`, in nanoseconds since the base (0 before it).
    pub fn ns(self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.base).as_nanos()).unwrap_or(u64::MAX)
    }
}

impl Default for Clock {
    fn default() -> Self {
        Self::new()
    }
}

/// What a [`PingClient`] is asked for.
#[derive(Debug, Clone, Copy)]
pub enum Ask {
    /// A round trip, its ping leaving at this instant (read by the caller
    /// just before it sends).
    Ping(Instant),
    /// The listener's statistics.
    Stats,
}

/// What a [`PingClient`]'s driver does next.
#[derive(Debug)]
pub enum Next<'a> {
    /// Send this message, then call [`PingClient::on_sent`].
    Send(&'a Message),
    /// Receive until this deadline; then [`PingClient::on_reply`] with
    /// what came, or [`PingClient::on_deadline`] when nothing did.
    Recv(Instant),
    /// What was asked for.
    Done(Done),
}

/// What a [`PingClient`] found.
#[derive(Debug, Clone, Copy)]
pub enum Done {
    /// A round trip's time in nanoseconds, or `None` when its pong did not
    /// come in time (lost, over UDP).
    RoundTrip(Option<u64>),
    /// The listener's answer to the statistics request.
    Stats(Stats),
}

impl Done {
    /// What [`Ask::Ping`] found.
    ///
    /// # Panics
    ///
    /// For statistics, which only [`Ask::Stats`] finds.
    pub fn round_trip(self) -> Option<u64> {
        match self {
            Self::RoundTrip(rtt) => rtt,
            Self::Stats(_) => unreachable!("a ping ends in a round trip"),
        }
    }

    /// What [`Ask::Stats`] found.
    ///
    /// # Panics
    ///
    /// For a round trip, which only [`Ask::Ping`] finds.
    pub fn stats(self) -> Stats {
        match self {
            Self::Stats(stats) => stats,
            Self::RoundTrip(_) => unreachable!("a statistics request ends in statistics"),
        }
    }
}

/// Why a [`PingClient`] gave up.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The wait for a pong failed.
    #[error(transparent)]
    Pong(#[from] PongError),
    /// No statistics request was answered.
    #[error("no answer to {attempts} statistics requests")]
    NoStats {
        /// How many were sent.
        attempts: u32,
    },
    /// A statistics answer too short to read.
    #[error(transparent)]
    Stats(#[from] msg_proto::Error),
}

/// What the client waits for.
#[derive(Debug, Clone, Copy)]
enum State {
    /// Nothing: the next step is a ping or a statistics request.
    Idle,
    /// The pong to the ping.
    Pong { wait: PongWait },
    /// The answer to statistics request number `attempt` (from 1); its
    /// wait starts once it is sent, since the send may wait behind a
    /// stream.
    Stats {
        attempt: u32,
        wait: Option<PongWait>,
    },
}

/// The pinging client's side of the conversation, without I/O (see the
/// module docs).
#[derive(Debug)]
pub struct PingClient {
    transport: Transport,
    /// How long a pong may take.
    timeout: Duration,
    clock: Clock,
    /// The ping, renumbered and restamped for each round trip.
    ping: Message,
    /// The statistics request in flight.
    stats: Message,
    /// The last sequence number used, pings and statistics requests alike:
    /// any pong to an earlier one is late.
    seq: u64,
    state: State,
}

impl PingClient {
    /// A client over `transport` whose pings carry `body` and whose pongs
    /// may take `timeout` (then, over UDP, lost; over TCP, an error).
    pub fn new(transport: Transport, timeout: Duration, body: Bytes) -> Self {
        Self {
            transport,
            timeout,
            clock: Clock::new(),
            ping: Message::new(Kind::Ping, 0, body),
            stats: stats_request(0),
            seq: 0,
            state: State::Idle,
        }
    }

    /// Starts what is asked for: the message to send.
    pub fn start(&mut self, ask: Ask) -> Next<'_> {
        match ask {
            Ask::Ping(sent) => {
                self.seq += 1;
                self.ping.seq = self.seq;
                self.ping.timestamp_ns = self.clock.ns(sent);
                self.state = State::Pong {
                    wait: PongWait::new(self.seq, sent + self.timeout, self.transport),
                };
                Next::Send(&self.ping)
            }
            Ask::Stats => self.send_stats(1),
        }
    }

    /// The deadline of the pong waited for, when one is.
    pub fn deadline(&self) -> Option<Instant> {
        match self.state {
            State::Pong { wait }
            | State::Stats {
                wait: Some(wait), ..
            } => Some(wait.deadline()),
            _ => None,
        }
    }

    /// The message of the last [`Next::Send`] is sent, at `now` (read only
    /// when a wait starts from the send): what to wait for.
    pub fn on_sent(&mut self, now: impl FnOnce() -> Instant) -> Next<'_> {
        match &mut self.state {
            State::Pong { wait } => Next::Recv(wait.deadline()),
            State::Stats { wait, .. } => {
                let deadline = now() + stats_wait(self.transport, self.timeout);
                *wait = Some(PongWait::new(self.seq, deadline, self.transport));
                Next::Recv(deadline)
            }
            State::Idle => unreachable!("nothing was sent"),
        }
    }

    /// `reply` arrived at `arrived`.
    ///
    /// # Errors
    ///
    /// [`ClientError`]: the wait for a pong failed, or a statistics answer
    /// could not be read.
    pub fn on_reply(&mut self, reply: &Message, arrived: Instant) -> Result<Next<'_>, ClientError> {
        let waited = self.waiting().on_reply(reply, arrived)?;
        self.after(waited, Some((reply, arrived)))
    }

    /// Nothing (more) came by the deadline.
    ///
    /// # Errors
    ///
    /// [`ClientError`]: over a reliable transport, a pong that did not
    /// come; statistics requests that all went unanswered.
    pub fn on_deadline(&mut self) -> Result<Next<'_>, ClientError> {
        let waited = self.waiting().on_deadline()?;
        self.after(waited, None)
    }

    fn waiting(&self) -> PongWait {
        match self.state {
            State::Pong { wait }
            | State::Stats {
                wait: Some(wait), ..
            } => wait,
            _ => unreachable!("a reply or a deadline while waiting for nothing"),
        }
    }

    fn after(
        &mut self,
        waited: Waited,
        reply: Option<(&Message, Instant)>,
    ) -> Result<Next<'_>, ClientError> {
        let answered = match (waited, reply) {
            (Waited::Wait, _) => {
                return Ok(Next::Recv(self.waiting().deadline()));
            }
            (Waited::Answered, Some(answered)) => Some(answered),
            _ => None,
        };
        match self.state {
            State::Pong { .. } => {
                self.state = State::Idle;
                Ok(Next::Done(Done::RoundTrip(answered.map(
                    |(reply, arrived)| self.clock.ns(arrived).saturating_sub(reply.timestamp_ns),
                ))))
            }
            State::Stats { attempt, .. } => match answered {
                Some((reply, _)) => {
                    self.state = State::Idle;
                    Ok(Next::Done(Done::Stats(parse_stats(reply)?)))
                }
                None if attempt == STATS_ATTEMPTS => {
                    self.state = State::Idle;
                    Err(ClientError::NoStats { attempts: attempt })
                }
                // Lost (over UDP, behind the stream it asks about): again.
                None => Ok(self.send_stats(attempt + 1)),
            },
            State::Idle => unreachable!("checked by waiting()"),
        }
    }

    /// Statistics request number `attempt`, to send.
    fn send_stats(&mut self, attempt: u32) -> Next<'_> {
        self.seq += 1;
        self.stats.seq = self.seq;
        self.state = State::Stats {
            attempt,
            wait: None,
        };
        Next::Send(&self.stats)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TIMEOUT: Duration = Duration::from_millis(100);

    fn pong_to(msg: &Message) -> Message {
        Message::new(Kind::Pong, msg.seq, msg.body.clone()).with_timestamp(msg.timestamp_ns)
    }

    /// The ping a `Next` says to send, as the listener would get it.
    fn sent(next: Next<'_>) -> Message {
        match next {
            Next::Send(msg) => msg.clone(),
            other => panic!("expected a message to send, got {other:?}"),
        }
    }

    #[test]
    fn a_round_trip_is_numbered_stamped_and_timed() {
        let mut client = PingClient::new(Transport::Udp, TIMEOUT, Bytes::from_static(b"b"));
        let at = Instant::now();
        for seq in 1..=3 {
            let ping = sent(client.start(Ask::Ping(at)));
            assert_eq!(
                (ping.kind, ping.seq, &ping.body[..]),
                (Kind::Ping, seq, &b"b"[..])
            );
            assert!(
                matches!(client.on_sent(|| unreachable!()), Next::Recv(d) if d == at + TIMEOUT)
            );
            let arrived = at + Duration::from_micros(20);
            let Next::Done(done) = client.on_reply(&pong_to(&ping), arrived).unwrap() else {
                panic!("answered")
            };
            assert_eq!(done.round_trip(), Some(20_000));
        }
    }

    #[test]
    fn late_pongs_are_skipped_and_a_silence_is_lost_only_over_udp() {
        for transport in [Transport::Udp, Transport::Tcp] {
            let mut client = PingClient::new(transport, TIMEOUT, Bytes::new());
            let at = Instant::now();
            let first = sent(client.start(Ask::Ping(at)));
            let _ = sent(client.start(Ask::Ping(at)));
            let _ = client.on_sent(Instant::now);
            // The pong to the first ping, given up on: wait on.
            let next = client.on_reply(&pong_to(&first), at).unwrap();
            assert!(matches!(next, Next::Recv(_)), "{transport}: {next:?}");
            match transport {
                Transport::Udp => {
                    let done = client.on_deadline().unwrap();
                    assert!(matches!(done, Next::Done(Done::RoundTrip(None))));
                }
                _ => assert!(matches!(
                    client.on_deadline(),
                    Err(ClientError::Pong(PongError::NoAnswer { seq: 2 }))
                )),
            }
        }
    }

    #[test]
    fn statistics_are_asked_again_while_unanswered_then_given_up() {
        let mut client = PingClient::new(Transport::Udp, TIMEOUT, Bytes::new());
        let now = Instant::now();
        let mut request = sent(client.start(Ask::Stats));
        for attempt in 1..STATS_ATTEMPTS {
            assert_eq!(request.seq, u64::from(attempt));
            assert!(super::super::is_stats(&request));
            assert!(matches!(client.on_sent(|| now), Next::Recv(d) if d == now + TIMEOUT));
            request = sent(client.on_deadline().unwrap());
        }
        let _ = client.on_sent(|| now);
        assert!(matches!(
            client.on_deadline(),
            Err(ClientError::NoStats {
                attempts: STATS_ATTEMPTS
            })
        ));

        // Answered on the second attempt; the answer is read.
        let mut client = PingClient::new(Transport::Tcp, TIMEOUT, Bytes::new());
        let _ = sent(client.start(Ask::Stats));
        assert!(matches!(client.on_sent(|| now), Next::Recv(d) if d == now + RELIABLE_STATS_WAIT));
        let stats = Stats {
            received: 7,
            reordered: 1,
        };
        let answer = Message::new(Kind::Pong, 1, Bytes::copy_from_slice(&stats.to_body()));
        let Next::Done(done) = client.on_reply(&answer, now).unwrap() else {
            panic!("answered")
        };
        assert_eq!(done.stats(), stats);
    }
}
