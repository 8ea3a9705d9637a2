//! What a listener answers: the dispatch of one message by its kind to the
//! feature that owns it, and the per-peer discard counters of a UDP
//! listener. Both engines (tokio and blocking) and both UDP loops (single
//! and batched) answer with it.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::hash::Hash;
use std::net::SocketAddr;

use msg_proto::{DiscardCounter, Kind, Message};
use tracing::debug;

use crate::error::peer_left_in;
use crate::{Reply, data, ping};

/// What to do with one framed message.
#[derive(Debug, PartialEq)]
pub(crate) struct Response {
    /// Sent back to the peer first, so that a caller that stops after a
    /// number of messages never stops before the answer left.
    pub(crate) answer: Option<Message>,
    /// Whether the message is reported as an [`Event::Message`](crate::Event::Message).
    pub(crate) show: bool,
}

/// Answers to one stream connection's peer, while it takes them.
///
/// A peer that sends messages and goes without reading its answers (a
/// script's `sendall` and `close`, `nc -q0`) fails the first answer's
/// write: `EPIPE`, or a reset. What it sent before it went is still in this
/// end's buffers, in order, and is read and shown to the end, unanswered;
/// the kernel hands over queued bytes before it reports the reset. Before,
/// that write ended the connection and every message after the first was
/// lost, neither shown nor counted (audit, round ten).
#[derive(Debug, Default)]
pub(crate) struct Answering {
    gone: bool,
}

impl Answering {
    /// Whether answers still go to the peer.
    pub(crate) fn wanted(&self) -> bool {
        !self.gone
    }

    /// After an answer's write to `peer`: `Ok` to go on (from now on
    /// unanswered, when the peer has gone); any other failure as it is.
    pub(crate) fn written<E: std::error::Error + 'static>(
        &mut self,
        peer: &crate::PeerAddr,
        written: Result<(), E>,
    ) -> Result<(), E> {
        match written {
            Err(err) if peer_left_in(&err) => {
                debug!(%peer, "the peer has gone ({err}): what it sent is shown, unanswered");
                self.gone = true;
                Ok(())
            }
            written => written,
        }
    }

    /// Whether a read that failed with `err` is the end of a peer an answer
    /// found gone: its reset, after the bytes it sent were read.
    pub(crate) fn ended<E: std::error::Error + 'static>(&self, err: &E) -> bool {
        self.gone && peer_left_in(err)
    }
}

/// The dispatch by kind: one arm per feature, each in its own module.
/// The blocking engine answers with it too.
pub(crate) fn respond(msg: &Message, reply: Reply, counter: &mut DiscardCounter) -> Response {
    match msg.kind {
        Kind::Data => Response {
            answer: data::reply_to(msg, reply),
            show: true,
        },
        Kind::Ping => Response {
            answer: ping::pong(msg, counter),
            show: false,
        },
        Kind::Discard => {
            counter.count(msg.seq);
            Response {
                answer: None,
                show: false,
            }
        }
        other => {
            debug!(kind = ?other, seq = msg.seq, "ignored a message of a kind msg listen does not serve");
            Response {
                answer: None,
                show: false,
            }
        }
    }
}

/// The discard counters of a UDP listener's peers, at most `max` of them:
/// a flood of spoofed source addresses cannot grow the table past it.
///
/// A stream comes from one peer datagram after datagram, so the peer of
/// the last lookup is checked first, by comparing addresses: hashing a
/// `SocketAddr` with the map's SipHash (kept, because a peer picks the
/// keys) cost about 220 instructions a datagram, a quarter of what the
/// blocking listener spent on one (callgrind, BENCHMARKS.md).
#[derive(Debug)]
pub(crate) struct UdpPeers<P = SocketAddr> {
    /// Each peer's place in `counters`.
    index: HashMap<P, usize>,
    counters: Vec<(P, DiscardCounter)>,
    /// The place of the peer looked up last.
    last: usize,
    max: usize,
}

impl<P: Clone + Eq + Hash> UdpPeers<P> {
    pub(crate) fn new(max: usize) -> Self {
        Self {
            index: HashMap::new(),
            counters: Vec::new(),
            last: 0,
            max,
        }
    }

    /// [`respond`] with `peer`'s counter. Only discards and statistics
    /// pings need it; a benchmark's plain pings skip the lookup, and a
    /// peer past the table's size gets a scratch counter.
    pub(crate) fn respond(&mut self, msg: &Message, peer: &P, reply: Reply) -> Response {
        let mut untracked = DiscardCounter::default();
        let counter = if ping::uses_counter(msg) {
            self.counter(peer).unwrap_or(&mut untracked)
        } else {
            &mut untracked
        };
        respond(msg, reply, counter)
    }

    /// `peer`'s counter, made on its first message while the table has
    /// room; `None` once it is full.
    fn counter(&mut self, peer: &P) -> Option<&mut DiscardCounter> {
        if self
            .counters
            .get(self.last)
            .is_none_or(|(at, _)| at != peer)
        {
            self.last = match self.index.entry(peer.clone()) {
                Entry::Occupied(known) => *known.get(),
                Entry::Vacant(_) if self.counters.len() >= self.max => return None,
                Entry::Vacant(new) => {
                    new.insert(self.counters.len());
                    self.counters
                        .push((peer.clone(), DiscardCounter::default()));
                    self.counters.len() - 1
                }
            };
        }
        Some(&mut self.counters[self.last].1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn udp_peers_count_each_peer_apart_up_to_the_table_size() {
        let mut peers = UdpPeers::new(2);
        let (a, b, c): (SocketAddr, SocketAddr, SocketAddr) = (
            "127.0.0.1:1".parse().unwrap(),
            "127.0.0.1:2".parse().unwrap(),
            "[::1]:1".parse().unwrap(),
        );
        // Interleaved, so the last-peer shortcut misses as often as it hits.
        for seq in 1..=3 {
            for peer in [a, a, b, c] {
                let discard = Message::new(Kind::Discard, seq, "x");
                assert_eq!(peers.respond(&discard, &peer, Reply::None).answer, None);
            }
        }
        let received = |peers: &mut UdpPeers, peer: SocketAddr| {
            let answer = peers
                .respond(&ping::stats_request(9), &peer, Reply::None)
                .answer
                .expect("a statistics ping is answered");
            ping::parse_stats(&answer).unwrap().received
        };
        assert_eq!(received(&mut peers, a), 6);
        assert_eq!(received(&mut peers, b), 3);
        // The third peer found the table full: answered, not counted.
        assert_eq!(received(&mut peers, c), 0);
        assert_eq!(peers.counters.len(), 2);
    }

    #[test]
    fn data_is_shown_and_answered_per_reply() {
        let data = Message::new(Kind::Data, 7, "hi");
        let mut counter = DiscardCounter::default();
        let response = respond(&data, Reply::Upper, &mut counter);
        assert!(response.show);
        assert_eq!(response.answer.unwrap().body, "HI");
        assert_eq!(
            respond(&data, Reply::None, &mut counter),
            Response {
                answer: None,
                show: true
            }
        );
    }

    #[test]
    fn pings_are_answered_whatever_reply_says_and_not_shown() {
        // With its own body, the same length, which msg bench checks.
        let ping = Message::new(Kind::Ping, 4, "xyz");
        for reply in [Reply::None, Reply::Echo, Reply::Upper] {
            let response = respond(&ping, reply, &mut DiscardCounter::default());
            assert!(!response.show);
            let pong = response.answer.unwrap();
            assert_eq!((pong.kind, &pong.body[..]), (Kind::Pong, &b"xyz"[..]));
        }
    }

    #[test]
    fn other_kinds_are_ignored() {
        for kind in [Kind::Pong, Kind::Discard, Kind::Error, Kind::FileChunk] {
            let response = respond(
                &Message::new(kind, 1, "x"),
                Reply::Echo,
                &mut DiscardCounter::default(),
            );
            assert_eq!(
                response,
                Response {
                    answer: None,
                    show: false
                },
                "{kind:?}"
            );
        }
    }
}
