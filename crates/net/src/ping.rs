//! `Ping`, `Pong` and `Discard`, both ends: the listener's answers and
//! counters, and the client's checks of what comes back.
//!
//! A `Ping` is answered with a `Pong` whatever `--reply` says, like an ICMP
//! echo: it is how `msg bench` measures a round trip. A `Discard` is
//! counted and dropped; a `Ping` with [`FLAG_STATS`] asks how many
//! `Discard`s arrived, which is how a throughput run learns what was lost.
//!
//! Nothing here does I/O: [`PingClient`] is the client's side of the
//! conversation (numbering, timestamps, a pong, a late one, a silence, the
//! statistics request and its retries), built on [`PongWait`], which both
//! engines' clients drive with their own sockets and clocks.

use std::time::Instant;

use bytes::Bytes;
use msg_proto::{
    FLAG_AUTH, FLAG_SEND, FLAG_STATS, HEADER_LEN, Kind, Message, SendRequest, Streamed,
};

use crate::Transport;
use crate::text::printable;

use msg_proto::{DiscardCounter, Stats};

mod client;
mod waits;

pub use client::{Ask, ClientError, Clock, Done, Next, PingClient};
pub use waits::{STATS_ATTEMPTS, stats_wait, stats_waited};

/// The `Pong` for `ping`: its `seq`, `timestamp_ns` and body, flags 0
/// (the ping's flags describe the ping). A statistics ping gets `stats`'s
/// body instead of its own.
///
/// `None` for a statistics ping whose body is shorter than the statistics
/// it asks for ([`Stats::BODY_LEN`]): no answer is larger than its
/// question. A UDP source address can be forged, so an answer larger than
/// the request would make every listener an amplifier aimed at whoever
/// the forger names (a 28-byte request drew a 44-byte pong, ×1.57). So a
/// client pads its statistics ping, as QUIC pads its Initial packet, and
/// any other pong is the ping's own size.
pub fn pong(ping: &Message, counter: &DiscardCounter) -> Option<Message> {
    let body = if is_stats(ping) {
        if ping.body.len() < Stats::BODY_LEN {
            return None;
        }
        Bytes::copy_from_slice(&counter.stats().to_body())
    } else {
        ping.body.clone()
    };
    Some(Message::new(Kind::Pong, ping.seq, body).with_timestamp(ping.timestamp_ns))
}

/// Answers the plain ping in `message` (one whole encoded message, header
/// and body, as a stream frame or a datagram carries it) in place: its
/// bytes become those
/// of the pong [`pong`] answers it with, to be sent back as they stand. A
/// ping-pong listener then neither decodes the ping nor encodes the pong,
/// which is sockperf's echo and the floor's (bench/floor.c); the tests
/// hold it to [`pong`], byte for byte.
///
/// Only a plain ping: `false`, and `message` untouched, for anything else.
/// A statistics ping (its answer has another body), a stream request, a
/// tagged message (its tag covers the header), a header with an error or
/// a body of another length than it declares: the caller decodes those as
/// before, with the same answer or error.
pub fn pong_in_place(message: &mut [u8]) -> bool {
    let Some(pong) = plain_pong(message) else {
        return false;
    };
    message[..HEADER_LEN].copy_from_slice(&pong);
    true
}

/// The header of the pong for `message` if it is a plain ping (see
/// [`pong_in_place`]).
fn plain_pong(message: &[u8]) -> Option<[u8; HEADER_LEN]> {
    let mut header = msg_proto::decode_header(message).ok()?;
    let plain = header.kind == Kind::Ping
        && header.flags & (FLAG_STATS | FLAG_SEND | FLAG_AUTH) == 0
        && message.len() - HEADER_LEN == header.body_len as usize;
    // A pong's flags are 0 (the ping's describe the ping); seq, timestamp
    // and body stay as they are.
    header.kind = Kind::Pong;
    header.flags = 0;
    plain.then(|| msg_proto::encode_header(&header))
}

/// Whether `ping` asks for statistics.
pub fn is_stats(ping: &Message) -> bool {
    ping.flags & FLAG_STATS != 0
}

/// Whether `ping` asks the listener to stream to it (a reverse
/// throughput run), which only a connection's serve loop carries out.
pub fn is_send(ping: &Message) -> bool {
    ping.kind == Kind::Ping && ping.flags & FLAG_SEND != 0
}

/// A request to stream `request`'s messages back, numbered `seq`.
pub fn send_request(seq: u64, request: &SendRequest) -> Message {
    let mut ping = Message::new(Kind::Ping, seq, Bytes::copy_from_slice(&request.to_body()));
    ping.flags = FLAG_SEND;
    ping
}

/// The `Pong` that ends the stream `ping` asked for: its `seq` and
/// `timestamp_ns`, [`FLAG_SEND`], and how many `Discard`s were sent.
pub fn streamed_pong(ping: &Message, sent: u64) -> Message {
    let body = Bytes::copy_from_slice(&Streamed { sent }.to_body());
    let mut pong = Message::new(Kind::Pong, ping.seq, body).with_timestamp(ping.timestamp_ns);
    pong.flags = FLAG_SEND;
    pong
}

/// Whether answering `msg` reads or updates the sender's discard counter;
/// the others skip looking it up.
pub fn uses_counter(msg: &Message) -> bool {
    match msg.kind {
        Kind::Discard => true,
        Kind::Ping => is_stats(msg),
        _ => false,
    }
}

/// A statistics request: its body is [`Stats::BODY_LEN`] zero bytes, so
/// that it is as large as the pong it asks for (see [`pong`]).
pub fn stats_request(seq: u64) -> Message {
    const PADDING: [u8; Stats::BODY_LEN] = [0; Stats::BODY_LEN];
    let mut ping = Message::new(Kind::Ping, seq, Bytes::from_static(&PADDING));
    ping.flags = FLAG_STATS;
    ping
}

/// What a reply is, given the ping it should answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PongMatch {
    /// The pong for the ping in flight.
    Current,
    /// A pong for an earlier ping (one the caller gave up on).
    Late,
}

/// Checks that `reply` answers ping `seq` or an earlier one.
///
/// # Errors
///
/// [`UnexpectedReply`] for anything else: a peer that is not `msg listen`
/// (an echo server answers a `Ping` with a `Ping`), or a pong from the
/// future.
pub fn check_pong(reply: &Message, seq: u64) -> Result<PongMatch, UnexpectedReply> {
    match (reply.kind, reply.seq) {
        (Kind::Pong, s) if s == seq => Ok(PongMatch::Current),
        (Kind::Pong, s) if s < seq => Ok(PongMatch::Late),
        (kind, found) => Err(UnexpectedReply {
            expected: seq,
            kind,
            seq: found,
        }),
    }
}

/// A reply that answers no ping in flight.
#[derive(Debug, Clone, thiserror::Error)]
#[error("expected a pong to ping {expected}, got {kind:?} {seq}: is the peer `msg listen`?")]
pub struct UnexpectedReply {
    /// The ping in flight.
    pub expected: u64,
    /// What came instead.
    pub kind: Kind,
    /// Its sequence number.
    pub seq: u64,
}

/// What a pinging client makes of what arrives while it waits for the pong
/// to one ping, without I/O: both engines' clients wait with one, so a
/// reply, a late pong or a silence means the same whichever engine waits.
///
/// Over a transport that loses messages (UDP) a pong that does not come
/// by the deadline is lost, and counted; over a reliable one (TCP) it is an
/// error, since nothing there is lost without the connection failing.
#[derive(Debug, Clone, Copy)]
pub struct PongWait {
    seq: u64,
    deadline: Instant,
    reliable: bool,
}

/// What to do after [`PongWait::on_reply`] or [`PongWait::on_deadline`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Waited {
    /// The pong to this ping: done.
    Answered,
    /// A pong to an earlier ping, given up on; wait on.
    Wait,
    /// The pong did not come in time: lost (count it).
    Lost,
}

/// Why waiting for a pong failed.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum PongError {
    /// The listener answered with an error (its text, made safe to
    /// print): one that needs a secret says so before it closes.
    #[error("the listener says: {0}")]
    Refused(String),
    /// A reply that answers no ping in flight.
    #[error(transparent)]
    Unexpected(#[from] UnexpectedReply),
    /// The pong to the ping in flight, its body another length than the
    /// ping's, which a pong echoes (an empty pong to a 1 MB ping was
    /// timed as a 1 MB round trip).
    #[error(
        "the pong to ping {seq} has a {pong}-byte body, and its ping {ping} bytes: a pong \
         echoes its ping's body; is the peer `msg listen`?"
    )]
    BodyLength {
        /// The ping.
        seq: u64,
        /// Its body's length.
        ping: usize,
        /// The pong's.
        pong: usize,
    },
    /// Over a reliable transport, nothing came by the deadline.
    #[error("no answer to ping {seq} in time")]
    NoAnswer {
        /// The ping.
        seq: u64,
    },
    /// Over a reliable transport, only a pong to an earlier ping came by
    /// the deadline.
    #[error("no answer to ping {seq} in time, only to earlier ones")]
    Late {
        /// The ping.
        seq: u64,
    },
}

impl PongWait {
    /// Waiting for the pong to ping `seq` until `deadline`, over
    /// `transport`.
    pub fn new(seq: u64, deadline: Instant, transport: Transport) -> Self {
        Self {
            seq,
            deadline,
            reliable: transport.caps().reliable,
        }
    }

    /// The ping waited for.
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// Until when.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// `reply` arrived at `arrived`.
    ///
    /// # Errors
    ///
    /// [`PongError`]: an error message from the listener, a reply that is
    /// no pong to this ping or an earlier one, or (reliable transports) a
    /// late pong after the deadline.
    pub fn on_reply(&self, reply: &Message, arrived: Instant) -> Result<Waited, PongError> {
        if reply.kind == Kind::Error {
            return Err(PongError::Refused(printable(&reply.body)));
        }
        match check_pong(reply, self.seq)? {
            PongMatch::Current => Ok(Waited::Answered),
            PongMatch::Late if arrived < self.deadline => Ok(Waited::Wait),
            PongMatch::Late if self.reliable => Err(PongError::Late { seq: self.seq }),
            PongMatch::Late => Ok(Waited::Lost),
        }
    }

    /// Nothing (more) came by the deadline.
    ///
    /// # Errors
    ///
    /// [`PongError::NoAnswer`] over a reliable transport.
    pub fn on_deadline(&self) -> Result<Waited, PongError> {
        if self.reliable {
            Err(PongError::NoAnswer { seq: self.seq })
        } else {
            Ok(Waited::Lost)
        }
    }
}

/// Parses a statistics pong.
///
/// # Errors
///
/// When the body is too short to hold the received count.
pub fn parse_stats(pong: &Message) -> Result<Stats, msg_proto::Error> {
    Stats::parse(&pong.body)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn encoded(msg: &Message) -> Vec<u8> {
        let mut bytes = Vec::new();
        msg_proto::encode(msg, &mut bytes).unwrap();
        bytes
    }

    #[test]
    fn a_ping_answered_in_place_is_the_pong_byte_for_byte() {
        let bodies: [&[u8]; 4] = [b"", b"x", &[b'm'; 1024], &[0; Stats::BODY_LEN]];
        let flags = [
            0,
            FLAG_STATS,
            FLAG_SEND,
            FLAG_AUTH,
            0x4000_0000,
            0x10,
            FLAG_STATS | 0x10,
        ];
        let counter = DiscardCounter::default();
        let mut answered = 0;
        for kind in Kind::ALL {
            for flags in flags {
                for body in bodies {
                    let mut msg = Message::new(kind, 7, Bytes::copy_from_slice(body))
                        .with_timestamp(0x0102_0304_0506_0708);
                    msg.flags = flags;
                    let before = encoded(&msg);
                    let mut bytes = before.clone();
                    let plain =
                        kind == Kind::Ping && flags & (FLAG_STATS | FLAG_SEND | FLAG_AUTH) == 0;
                    assert_eq!(
                        pong_in_place(&mut bytes),
                        plain,
                        "{kind:?} flags {flags:#x}"
                    );
                    if plain {
                        answered += 1;
                        let expected = encoded(&pong(&msg, &counter).unwrap());
                        assert_eq!(bytes, expected);
                    } else {
                        assert_eq!(bytes, before, "untouched");
                    }
                }
            }
        }
        assert_eq!(answered, 3 * bodies.len());
    }

    proptest::proptest! {
        /// Whatever a peer sends: no panic, and an answer only where the
        /// decoded path gives one, with the same bytes.
        #[test]
        fn arbitrary_bytes_are_answered_in_place_only_as_pong_answers_them(
            mut bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..96),
            kind_ping in proptest::prelude::any::<bool>(),
        ) {
            // Half the cases start as a ping's header would, with the body
            // length it has, so that the flags decide (an eighth of them
            // plain): random bytes alone would almost never be a ping.
            if kind_ping && bytes.len() >= HEADER_LEN {
                bytes[..4].copy_from_slice(&[b'm', b's', msg_proto::VERSION, Kind::Ping as u8]);
                let body = u32::try_from(bytes.len() - HEADER_LEN).unwrap();
                bytes[24..HEADER_LEN].copy_from_slice(&body.to_be_bytes());
            }
            let before = bytes.clone();
            let answered = pong_in_place(&mut bytes);
            let expected = msg_proto::decode(Bytes::from(before.clone()))
                .ok()
                .filter(|msg| msg.kind == Kind::Ping && !is_stats(msg) && !is_send(msg))
                .and_then(|ping| pong(&ping, &DiscardCounter::default()))
                .map(|pong| encoded(&pong));
            match expected {
                Some(expected) => {
                    proptest::prop_assert!(answered);
                    proptest::prop_assert_eq!(&bytes, &expected);
                }
                None => {
                    proptest::prop_assert!(!answered);
                    proptest::prop_assert_eq!(bytes, before);
                }
            }
        }
    }

    #[test]
    fn a_ping_that_would_not_decode_is_left_to_the_decoder() {
        let mut bytes = encoded(&Message::new(Kind::Ping, 1, "four"));
        for mut broken in [
            bytes[..HEADER_LEN - 1].to_vec(),  // a truncated header
            [bytes.as_slice(), b"+"].concat(), // a body longer than declared
            bytes[..bytes.len() - 1].to_vec(), // and shorter
            [b"xx", &bytes[2..]].concat(),     // not msg's magic
        ] {
            let before = broken.clone();
            assert!(!pong_in_place(&mut broken));
            assert_eq!(broken, before);
        }
        assert!(pong_in_place(&mut bytes));
    }

    #[test]
    fn pings_are_answered_with_their_seq_timestamp_and_body() {
        let mut ping = Message::new(Kind::Ping, 4, "x").with_timestamp(9);
        ping.flags = 0x4000_0000;
        let pong = pong(&ping, &DiscardCounter::default()).unwrap();
        assert_eq!(
            (pong.kind, pong.seq, pong.timestamp_ns, pong.flags),
            (Kind::Pong, 4, 9, 0)
        );
        assert_eq!(pong.body, "x");
    }

    #[test]
    fn a_stats_pong_carries_the_counts_and_no_flag() {
        let mut counter = DiscardCounter::default();
        for seq in [0, 2, 1, 3] {
            counter.count(seq);
        }
        let answer = pong(&stats_request(9), &counter).unwrap();
        assert_eq!((answer.kind, answer.seq, answer.flags), (Kind::Pong, 9, 0));
        let stats = parse_stats(&answer).unwrap();
        assert_eq!((stats.received, stats.reordered), (4, 1));
    }

    /// Hardening round two, finding 13: a 28-byte statistics ping drew a
    /// 44-byte pong from any (spoofable) source. No answer is larger than
    /// its question now: an unpadded statistics ping gets none.
    #[test]
    fn no_pong_is_larger_than_its_ping() {
        let counter = DiscardCounter::default();
        let mut bare = Message::new(Kind::Ping, 1, Bytes::new());
        bare.flags = FLAG_STATS;
        assert_eq!(pong(&bare, &counter), None);
        for ping in [
            stats_request(2),
            Message::new(Kind::Ping, 3, ""),
            Message::new(Kind::Ping, 4, "a body"),
        ] {
            let answer = pong(&ping, &counter).unwrap();
            assert!(
                answer.encoded_len() <= ping.encoded_len(),
                "{ping:?} drew {answer:?}"
            );
        }
    }

    #[test]
    fn a_request_to_stream_and_its_closing_pong() {
        let request = SendRequest {
            duration: std::time::Duration::from_millis(5),
            size: 64,
        };
        let ping = send_request(7, &request).with_timestamp(3);
        assert!(is_send(&ping) && !is_stats(&ping));
        assert_eq!(SendRequest::parse(&ping.body, 64), Ok(request));
        let pong = streamed_pong(&ping, 42);
        assert_eq!(
            (pong.kind, pong.seq, pong.timestamp_ns, pong.flags),
            (Kind::Pong, 7, 3, FLAG_SEND)
        );
        assert_eq!(Streamed::parse(&pong.body), Ok(Streamed { sent: 42 }));
        // A listener that does not know the flag echoes the request.
        let echo = super::pong(&ping, &DiscardCounter::default()).unwrap();
        assert_eq!((echo.flags, &echo.body), (0, &ping.body));
    }

    #[test]
    fn only_discards_and_stats_pings_use_the_counter() {
        for kind in [Kind::Data, Kind::Ping, Kind::Pong, Kind::Discard] {
            assert_eq!(
                uses_counter(&Message::new(kind, 5, "x")),
                kind == Kind::Discard,
                "{kind:?}"
            );
        }
        assert!(uses_counter(&stats_request(1)));
    }

    /// The hex block that follows `marker` in `docs/wire.md`, as bytes.
    pub(crate) fn doc_vector(marker: &str) -> Vec<u8> {
        let doc = include_str!("../../../docs/wire.md");
        let hex: String = doc
            .split(marker)
            .nth(1)
            .and_then(|rest| rest.split("```hex").nth(1))
            .and_then(|rest| rest.split("```").next())
            .unwrap_or_else(|| panic!("docs/wire.md has no hex block after {marker}"))
            .chars()
            .filter(char::is_ascii_hexdigit)
            .collect();
        (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect()
    }

    /// docs/wire.md's statistics vectors are what msg sends and answers: a
    /// peer written from the docs pads its ping as msg does.
    #[test]
    fn the_docs_carry_the_statistics_vectors() {
        let mut ping = Vec::new();
        msg_proto::encode(&stats_request(2), &mut ping).unwrap();
        assert_eq!(doc_vector("Vector `stats-ping`"), ping);
        let mut counter = DiscardCounter::default();
        for seq in [1, 3, 2] {
            counter.count(seq);
        }
        let mut pong_bytes = Vec::new();
        msg_proto::encode(&pong(&stats_request(2), &counter).unwrap(), &mut pong_bytes).unwrap();
        assert_eq!(doc_vector("Vector `stats-pong`"), pong_bytes);
        assert_eq!(
            ping.len(),
            pong_bytes.len(),
            "no answer larger than its question"
        );
    }

    /// docs/wire.md's streaming-back vectors are what msg sends.
    #[test]
    fn the_docs_carry_the_send_vectors() {
        let request = SendRequest {
            duration: std::time::Duration::from_secs(2),
            size: 1024,
        };
        let ping = send_request(1, &request);
        let mut bytes = Vec::new();
        msg_proto::encode(&ping, &mut bytes).unwrap();
        assert_eq!(doc_vector("Vector `send-ping`"), bytes);
        bytes.clear();
        msg_proto::encode(&streamed_pong(&ping, 3), &mut bytes).unwrap();
        assert_eq!(doc_vector("Vector `send-pong`"), bytes);
    }

    #[test]
    fn a_pong_wait_counts_a_silence_as_lost_only_where_messages_are_lost() {
        let now = Instant::now();
        let later = now + std::time::Duration::from_secs(1);
        let udp = PongWait::new(4, later, Transport::Udp);
        let tcp = PongWait::new(4, later, Transport::Tcp);
        let pong = |seq| Message::new(Kind::Pong, seq, "");
        for wait in [udp, tcp] {
            assert_eq!(wait.on_reply(&pong(4), now).unwrap(), Waited::Answered);
            assert_eq!(wait.on_reply(&pong(3), now).unwrap(), Waited::Wait);
            assert!(wait.on_reply(&pong(5), now).is_err());
            let refusal = Message::new(Kind::Error, 0, "needs a \x1b secret");
            let Err(PongError::Refused(text)) = wait.on_reply(&refusal, now) else {
                panic!("an error message is a refusal")
            };
            assert_eq!(text, r"needs a \x1b secret");
        }
        assert_eq!(udp.on_deadline().unwrap(), Waited::Lost);
        assert_eq!(udp.on_reply(&pong(3), later).unwrap(), Waited::Lost);
        assert!(matches!(
            tcp.on_deadline(),
            Err(PongError::NoAnswer { seq: 4 })
        ));
        assert!(matches!(
            tcp.on_reply(&pong(3), later),
            Err(PongError::Late { seq: 4 })
        ));
    }

    #[test]
    fn pongs_are_matched_by_sequence_number() {
        let pong = |seq| Message::new(Kind::Pong, seq, "");
        assert_eq!(check_pong(&pong(4), 4).unwrap(), PongMatch::Current);
        assert_eq!(check_pong(&pong(3), 4).unwrap(), PongMatch::Late);
        assert!(check_pong(&pong(5), 4).is_err());
        assert!(check_pong(&Message::new(Kind::Ping, 4, ""), 4).is_err());
    }
}
