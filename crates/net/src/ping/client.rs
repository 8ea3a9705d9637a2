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
use msg_proto::{HEADER_LEN, Kind, Message, Stats};

use super::waits::{STATS_ATTEMPTS, stats_wait_of};
use super::{PongError, PongWait, Waited, parse_stats, stats_request};
use crate::Transport;

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
    /// Over a reliable transport, the statistics request was not answered
    /// within its wait ([`stats_wait`](super::stats_wait)), which a driver
    /// reports as such: not as a ping's, and not with a ping's timeout (an
    /// unanswered request over TCP said `no answer to ping 1 within 5s`
    /// after 10 s; audit, round six).
    #[error("no answer to the statistics request in time")]
    StatsUnanswered {
        /// How long it waited.
        waited: Duration,
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
#[derive(Debug, Clone)]
pub struct PingClient {
    transport: Transport,
    /// How long a pong may take.
    timeout: Duration,
    clock: Clock,
    /// The last instant a round trip was timed at (a pong's arrival) and
    /// its clock reading: a closed loop's next ping leaves at that very
    /// instant, and its stamp is then this reading, not a second
    /// subtraction of the base (std's `sub_timespec`, about 37
    /// instructions of a round trip's).
    last_read: (Instant, u64),
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
        let clock = Clock::new();
        Self {
            transport,
            timeout,
            clock,
            last_read: (clock.base, 0),
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
                self.ping.timestamp_ns = self.ns(sent);
                self.state = State::Pong {
                    wait: PongWait::new(self.seq, sent + self.timeout, self.transport),
                };
                Next::Send(&self.ping)
            }
            Ask::Stats => self.send_stats(1),
        }
    }

    /// The ping every round trip sends, as it stands before the next
    /// [`Ask::Ping`] renumbers and restamps it: for a driver that frames it
    /// once ([`crate::blocking::Link::prepare`]) and then rewrites only its
    /// header ([`PingClient::start_ping`]).
    pub fn ping(&self) -> &Message {
        &self.ping
    }

    /// As [`PingClient::start`] with [`Ask::Ping`], for a driver that sends
    /// the ping's bytes framed once ([`PingClient::ping`]): the encoded
    /// header of this round trip's ping, which is all that changes from one
    /// to the next. Then [`PingClient::on_sent`], as after `start`.
    ///
    /// # Errors
    ///
    /// A body the format cannot describe (over 4 GiB), which framing the
    /// ping already refused.
    pub fn start_ping(&mut self, sent: Instant) -> Result<[u8; HEADER_LEN], msg_proto::Error> {
        let Next::Send(ping) = self.start(Ask::Ping(sent)) else {
            unreachable!("a ping is sent first")
        };
        Ok(msg_proto::encode_header(&ping.header()?))
    }

    /// `message`, one whole message's bytes (header and body, undecoded),
    /// arrived at `arrived`: when it is the pong to the ping in flight, as
    /// nearly every reply is, the round trip is done and this is its time
    /// in nanoseconds, the same as [`PingClient::on_reply`] would find.
    /// Neither the message nor its body is made.
    ///
    /// `None`, with nothing changed, for anything else: a late pong, an
    /// error, statistics, a header that does not decode, flags, a body of
    /// another length than the header says or than the ping's. The caller decodes those as
    /// before and hands them to [`PingClient::on_reply`], which says what
    /// they are; the tests hold the two to the same answer.
    pub fn on_pong_bytes(&mut self, message: &[u8], arrived: Instant) -> Option<u64> {
        let State::Pong { wait } = self.state else {
            return None;
        };
        let header = msg_proto::decode_header(message).ok()?;
        // One compare more than before for the body's length: a pong of
        // another length than its ping is no answer (on_reply says so).
        let current = header.kind == Kind::Pong
            && header.seq == wait.seq()
            && header.flags == 0
            && header.body_len as usize == self.ping.body.len()
            && message.len() - HEADER_LEN == header.body_len as usize;
        if !current {
            return None;
        }
        self.state = State::Idle;
        Some(self.round_trip(arrived))
    }

    /// The time from the ping in flight's send to `arrived`, in
    /// nanoseconds: from the client's own stamp. The pong carries the stamp
    /// back, and a listener must echo it unchanged, but a peer's number is
    /// not a measurement: one that sent `u64::MAX` back made every round
    /// trip 0 µs.
    fn round_trip(&mut self, arrived: Instant) -> u64 {
        let at = self.clock.ns(arrived);
        self.last_read = (arrived, at);
        at.saturating_sub(self.ping.timestamp_ns)
    }

    /// `at` on the client's clock, as [`Clock::ns`] has it: the last
    /// reading again when `at` is its instant.
    fn ns(&self, at: Instant) -> u64 {
        match self.last_read {
            (last, ns) if last == at => ns,
            _ => self.clock.ns(at),
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
            State::Stats { wait, attempt } => {
                let deadline = now() + stats_wait_of(self.transport, self.timeout, *attempt);
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
        let waited = self
            .waiting()
            .on_reply(reply, arrived)
            .map_err(|err| self.failed(err))?;
        self.after(waited, Some((reply, arrived)))
    }

    /// Nothing (more) came by the deadline.
    ///
    /// # Errors
    ///
    /// [`ClientError`]: over a reliable transport, a pong that did not
    /// come; statistics requests that all went unanswered.
    pub fn on_deadline(&mut self) -> Result<Next<'_>, ClientError> {
        let waited = self
            .waiting()
            .on_deadline()
            .map_err(|err| self.failed(err))?;
        self.after(waited, None)
    }

    /// A failed wait, in what it was waiting for: for statistics, a
    /// silence (or only late pongs) is the request's, with its own wait.
    fn failed(&self, err: PongError) -> ClientError {
        match (self.state, err) {
            (State::Stats { attempt, .. }, PongError::NoAnswer { .. } | PongError::Late { .. }) => {
                ClientError::StatsUnanswered {
                    waited: stats_wait_of(self.transport, self.timeout, attempt),
                }
            }
            (_, err) => err.into(),
        }
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
            State::Pong { wait } => {
                self.state = State::Idle;
                // A pong echoes its ping's body: one of another length
                // did not carry the bytes the round trip is timed for.
                if let Some((reply, _)) = answered {
                    if reply.body.len() != self.ping.body.len() {
                        return Err(PongError::BodyLength {
                            seq: wait.seq(),
                            ping: self.ping.body.len(),
                            pong: reply.body.len(),
                        }
                        .into());
                    }
                }
                Ok(Next::Done(Done::RoundTrip(
                    answered.map(|(_, arrived)| self.round_trip(arrived)),
                )))
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
    use super::super::waits::{RELIABLE_STATS_WAIT, stats_wait, stats_waited};
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

    /// A ping that leaves at the instant the last pong arrived is stamped
    /// from the reading kept for it: the stamp the clock gives, and the
    /// next round trip timed from it as before.
    #[test]
    fn a_ping_sent_as_the_last_pong_arrived_is_stamped_as_the_clock_says() {
        let mut client = PingClient::new(Transport::Udp, TIMEOUT, Bytes::from_static(b"b"));
        let mut at = Instant::now() + Duration::from_micros(5);
        for _ in 0..3 {
            let ping = sent(client.start(Ask::Ping(at)));
            assert_eq!(ping.timestamp_ns, client.clock.ns(at));
            let _ = client.on_sent(|| unreachable!());
            let arrived = at + Duration::from_micros(20);
            let Next::Done(done) = client.on_reply(&pong_to(&ping), arrived).unwrap() else {
                panic!("answered")
            };
            assert_eq!(done.round_trip(), Some(20_000));
            at = arrived;
        }
    }

    /// The bytes `msg` is sent as, header and body.
    fn bytes_of(msg: &Message) -> Vec<u8> {
        let mut out = bytes::BytesMut::new();
        msg_proto::encode(msg, &mut out).unwrap();
        out.to_vec()
    }

    /// The client's answer to `message`'s bytes the long way: decoded,
    /// then [`PingClient::on_reply`]; `None` when it does not decode.
    fn the_long_way(client: &mut PingClient, message: &[u8], at: Instant) -> Option<String> {
        let msg = msg_proto::decode(Bytes::copy_from_slice(message)).ok()?;
        Some(format!("{:?}", client.on_reply(&msg, at)))
    }

    #[test]
    fn a_ping_from_its_header_and_a_pong_from_its_bytes_are_the_long_ways() {
        let body = Bytes::from_static(b"body of the ping");
        let mut fast = PingClient::new(Transport::Tcp, TIMEOUT, body.clone());
        let at = Instant::now();
        for seq in 1..=3 {
            let mut long = fast.clone();
            // The header written anew, before the body framed once: the
            // bytes the long way encodes.
            let header = fast.start_ping(at).unwrap();
            let ping = sent(long.start(Ask::Ping(at)));
            assert_eq!(ping.seq, seq);
            assert_eq!([&header[..], &body[..]].concat(), bytes_of(&ping));
            assert_eq!(format!("{fast:?}"), format!("{long:?}"));
            let _ = (fast.on_sent(Instant::now), long.on_sent(Instant::now));

            let pong = bytes_of(&pong_to(&ping));
            let arrived = at + Duration::from_micros(30);
            assert_eq!(fast.on_pong_bytes(&pong, arrived), Some(30_000));
            assert_eq!(
                the_long_way(&mut long, &pong, arrived).unwrap(),
                "Ok(Done(RoundTrip(Some(30000))))"
            );
            // Both idle again, ready for the next.
            assert_eq!(format!("{fast:?}"), format!("{long:?}"));
        }
    }

    #[test]
    fn a_round_trip_is_timed_from_the_clients_own_stamp_not_the_pongs() {
        let mut client = PingClient::new(Transport::Udp, TIMEOUT, Bytes::from_static(b"b"));
        let at = Instant::now();
        for lie in [0, u64::MAX] {
            let mut long = client.clone();
            let ping = sent(client.start(Ask::Ping(at)));
            let _ = sent(long.start(Ask::Ping(at)));
            let _ = (client.on_sent(Instant::now), long.on_sent(Instant::now));
            let pong = pong_to(&ping).with_timestamp(lie);
            let arrived = at + Duration::from_micros(25);
            assert_eq!(
                client.on_pong_bytes(&bytes_of(&pong), arrived),
                Some(25_000)
            );
            let Next::Done(done) = long.on_reply(&pong, arrived).unwrap() else {
                panic!("answered")
            };
            assert_eq!(done.round_trip(), Some(25_000));
        }
    }

    #[test]
    fn what_is_not_the_pong_in_flight_is_left_to_the_long_way() {
        let mut client = PingClient::new(Transport::Udp, TIMEOUT, Bytes::from_static(b"b"));
        let at = Instant::now();
        let first = sent(client.start(Ask::Ping(at)));
        let _ = client.start_ping(at).unwrap();
        let _ = client.on_sent(Instant::now);
        let second = Message::new(Kind::Ping, 2, "b").with_timestamp(first.timestamp_ns);
        let mut flagged = pong_to(&second);
        flagged.flags = msg_proto::FLAG_STATS;
        let mut short = bytes_of(&pong_to(&second));
        short.pop();
        let not_current = [
            bytes_of(&pong_to(&first)),                  // late
            bytes_of(&Message::new(Kind::Pong, 3, "b")), // from the future
            bytes_of(&second),                           // an echo
            bytes_of(&Message::new(Kind::Error, 2, "no")),
            bytes_of(&flagged),
            short,
            b"MX".to_vec(),
            Vec::new(),
        ];
        for message in &not_current {
            let before = format!("{client:?}");
            assert_eq!(client.on_pong_bytes(message, at), None, "{message:?}");
            assert_eq!(format!("{client:?}"), before);
        }
        // And waiting for statistics, even a pong with their number is
        // left to the long way, which reads the statistics.
        let mut client = PingClient::new(Transport::Udp, TIMEOUT, Bytes::new());
        let request = sent(client.start(Ask::Stats));
        let _ = client.on_sent(|| at);
        let answer = Message::new(Kind::Pong, request.seq, vec![0; Stats::BODY_LEN]);
        assert_eq!(client.on_pong_bytes(&bytes_of(&answer), at), None);
    }

    proptest::proptest! {
        /// Whatever bytes arrive, the short way takes only what the long
        /// way finds to be the pong in flight, and times it the same.
        #[test]
        fn the_short_way_agrees_with_the_long_way(
            seq in 0u64..4,
            kind in 0u8..10,
            flags in proptest::prop_oneof![proptest::strategy::Just(0u32), proptest::arbitrary::any::<u32>()],
            ts in proptest::arbitrary::any::<u64>(),
            body in proptest::collection::vec(proptest::arbitrary::any::<u8>(), 0..40),
            declared in proptest::option::of(0u32..48),
            raw in proptest::collection::vec(proptest::arbitrary::any::<u8>(), 0..80),
            shaped in proptest::arbitrary::any::<bool>(),
        ) {
            let mut client = PingClient::new(Transport::Udp, TIMEOUT, Bytes::new());
            let at = Instant::now();
            for _ in 0..2 {
                let _ = client.start_ping(at).unwrap();
            }
            let _ = client.on_sent(Instant::now);
            let message = if shaped {
                let mut header = msg_proto::Header {
                    kind: Kind::Pong,
                    seq,
                    timestamp_ns: ts,
                    flags,
                    body_len: declared.unwrap_or(body.len() as u32),
                    ..Message::new(Kind::Pong, 0, "").header().unwrap()
                };
                if let Ok(kind) = Kind::try_from(kind) {
                    header.kind = kind;
                }
                [&msg_proto::encode_header(&header)[..], &body].concat()
            } else {
                raw
            };
            let mut long = client.clone();
            let arrived = at + Duration::from_micros(7);
            match client.on_pong_bytes(&message, arrived) {
                Some(rtt) => proptest::prop_assert_eq!(
                    the_long_way(&mut long, &message, arrived),
                    Some(format!("Ok(Done(RoundTrip(Some({rtt}))))"))
                ),
                None => proptest::prop_assert_eq!(format!("{client:?}"), format!("{long:?}")),
            }
        }
    }

    #[test]
    fn a_pong_whose_body_is_not_its_pings_length_is_no_answer() {
        // An empty pong to a 1 MB ping was timed as a 1 MB round trip
        // (audit, round six); one a byte longer, or shorter, is refused
        // too, by both ways, on either transport.
        for transport in [Transport::Udp, Transport::Tcp] {
            for (ping_len, pong_len) in [(1_000_000, 0), (64, 65), (64, 63), (0, 1)] {
                let body = Bytes::from(vec![b'm'; ping_len]);
                let mut client = PingClient::new(transport, TIMEOUT, body);
                let at = Instant::now();
                let ping = sent(client.start(Ask::Ping(at)));
                let _ = client.on_sent(Instant::now);
                let pong = Message::new(Kind::Pong, ping.seq, vec![b'm'; pong_len])
                    .with_timestamp(ping.timestamp_ns);
                assert_eq!(client.on_pong_bytes(&bytes_of(&pong), at), None);
                let refused = client.on_reply(&pong, at).unwrap_err();
                assert!(
                    matches!(
                        refused,
                        ClientError::Pong(PongError::BodyLength { seq: 1, ping, pong })
                            if (ping, pong) == (ping_len, pong_len)
                    ),
                    "{refused:?}"
                );
                assert_eq!(
                    refused.to_string(),
                    format!(
                        "the pong to ping 1 has a {pong_len}-byte body, and its ping {ping_len} \
                         bytes: a pong echoes its ping's body; is the peer `msg listen`?"
                    )
                );
            }
            // The same length is the answer, both ways.
            let mut client = PingClient::new(transport, TIMEOUT, Bytes::from_static(b"abc"));
            let at = Instant::now();
            let ping = sent(client.start(Ask::Ping(at)));
            let _ = client.on_sent(Instant::now);
            let mut long = client.clone();
            assert!(
                client
                    .on_pong_bytes(&bytes_of(&pong_to(&ping)), at)
                    .is_some()
            );
            assert!(matches!(
                long.on_reply(&pong_to(&ping), at).unwrap(),
                Next::Done(Done::RoundTrip(Some(_)))
            ));
        }
    }

    #[test]
    fn an_unanswered_statistics_request_over_tcp_is_the_requests_with_its_own_wait() {
        let mut client = PingClient::new(Transport::Tcp, TIMEOUT, Bytes::new());
        let at = Instant::now();
        let request = sent(client.start(Ask::Stats));
        let Next::Recv(deadline) = client.on_sent(|| at) else {
            panic!("a wait")
        };
        assert_eq!(deadline, at + stats_wait(Transport::Tcp, TIMEOUT));
        let mut late = client.clone();
        assert!(matches!(
            client.on_deadline(),
            Err(ClientError::StatsUnanswered { waited }) if waited == RELIABLE_STATS_WAIT
        ));
        // Only a pong to an earlier request by then: the same.
        let earlier = Message::new(Kind::Pong, request.seq - 1, vec![0; Stats::BODY_LEN]);
        assert!(matches!(
            late.on_reply(&earlier, deadline),
            Err(ClientError::StatsUnanswered { waited }) if waited == RELIABLE_STATS_WAIT
        ));
        // A ping's silence is still the ping's.
        let mut client = PingClient::new(Transport::Tcp, TIMEOUT, Bytes::new());
        let _ = sent(client.start(Ask::Ping(at)));
        let _ = client.on_sent(|| at);
        assert!(matches!(
            client.on_deadline(),
            Err(ClientError::Pong(PongError::NoAnswer { seq: 1 }))
        ));
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
            // Each waits twice as long as the one before: 1, 2, 4, 8 ...
            let wait = TIMEOUT * (1 << (attempt - 1));
            assert!(matches!(client.on_sent(|| now), Next::Recv(d) if d == now + wait));
            request = sent(client.on_deadline().unwrap());
        }
        assert_eq!(stats_waited(TIMEOUT), TIMEOUT * 31);
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
