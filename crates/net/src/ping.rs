//! `Ping`, `Pong` and `Discard`, both ends: the listener's answers and
//! counters, and the client's checks of what comes back.
//!
//! A `Ping` is answered with a `Pong` whatever `--reply` says, like an ICMP
//! echo: it is how `msg bench` measures a round trip. A `Discard` is
//! counted and dropped; a `Ping` with [`FLAG_STATS`] asks how many
//! `Discard`s arrived, which is how a throughput run learns what was lost.

use bytes::Bytes;
use msg_proto::{FLAG_STATS, Kind, Message};

use msg_proto::{DiscardCounter, Stats};

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

/// Whether `ping` asks for statistics.
pub fn is_stats(ping: &Message) -> bool {
    ping.flags & FLAG_STATS != 0
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

/// Parses a statistics pong.
///
/// # Errors
///
/// When the body is too short to hold the received count.
pub fn parse_stats(pong: &Message) -> Result<Stats, msg_proto::Error> {
    Stats::parse(&pong.body)
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn pongs_are_matched_by_sequence_number() {
        let pong = |seq| Message::new(Kind::Pong, seq, "");
        assert_eq!(check_pong(&pong(4), 4).unwrap(), PongMatch::Current);
        assert_eq!(check_pong(&pong(3), 4).unwrap(), PongMatch::Late);
        assert!(check_pong(&pong(5), 4).is_err());
        assert!(check_pong(&Message::new(Kind::Ping, 4, ""), 4).is_err());
    }
}
