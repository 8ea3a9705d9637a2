//! The statistics pong: what a receiver counted of a peer's
//! [`Kind::Discard`](crate::Kind::Discard) messages, and the 16-byte body
//! that reports it.
//!
//! Both halves live here so that the writer ([`Stats::to_body`], on the
//! listener) and the reader ([`Stats::parse`], on the benchmark client) cannot
//! drift apart: one type, one layout, one set of tests.
//!
//! ```text
//!  0                              8                              16
//! +-------------------------------+-------------------------------+
//! |           received            |           reordered           |
//! |            u64 BE             |            u64 BE             |
//! +-------------------------------+-------------------------------+
//! ```

use crate::Error;

/// The statistics a [`Kind::Pong`](crate::Kind::Pong) carries in answer to a
/// [`Kind::Ping`](crate::Kind::Ping) with [`FLAG_STATS`](crate::FLAG_STATS).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// How many discards arrived.
    pub received: u64,
    /// How many of those arrived after one with a higher `seq`.
    pub reordered: u64,
}

impl Stats {
    /// The length of the body [`Stats::to_body`] writes: two `u64`s.
    pub const BODY_LEN: usize = 16;

    /// The pong's body: `received`, then `reordered`, big-endian.
    #[inline]
    pub fn to_body(&self) -> [u8; Self::BODY_LEN] {
        let mut body = [0; Self::BODY_LEN];
        body[..8].copy_from_slice(&self.received.to_be_bytes());
        body[8..].copy_from_slice(&self.reordered.to_be_bytes());
        body
    }

    /// Reads a pong's body.
    ///
    /// Receivers older than the reordering count send only `received` (8
    /// bytes); its `reordered` then reads as 0. Bytes after the first 16 are
    /// ignored, so that a later version can append counters.
    ///
    /// # Errors
    ///
    /// [`Error::StatsTooShort`] if `body` holds fewer than 8 bytes, too few
    /// for even the received count.
    pub fn parse(body: &[u8]) -> Result<Self, Error> {
        let word = |i: usize| {
            body.get(i * 8..i * 8 + 8)
                .map(|b| u64::from_be_bytes(b.try_into().expect("8 bytes")))
        };
        let received = word(0).ok_or(Error::StatsTooShort { len: body.len() })?;
        Ok(Self {
            received,
            reordered: word(1).unwrap_or(0),
        })
    }
}

/// Counts one peer's discards as they arrive, for a later [`Stats`].
///
/// A receiver keeps one per peer: per TCP connection, or per source address
/// over UDP.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DiscardCounter {
    received: u64,
    reordered: u64,
    /// The highest `seq` seen so far; `None` before the first discard.
    highest_seq: Option<u64>,
}

impl DiscardCounter {
    /// Counts a discard with sequence number `seq`.
    ///
    /// It is reordered when `seq` is below the highest seen so far: a later
    /// message overtook it. A repeated `seq` equal to the highest is not, so a
    /// duplicated datagram counts as received but not as reordered.
    // Called once per discard on the listener's hot path; `#[inline]` lets it
    // inline across the crate boundary even without LTO.
    #[inline]
    pub fn count(&mut self, seq: u64) {
        self.received += 1;
        match self.highest_seq {
            Some(highest) if seq < highest => self.reordered += 1,
            _ => self.highest_seq = Some(seq),
        }
    }

    /// What has been counted so far.
    #[inline]
    pub fn stats(&self) -> Stats {
        Stats {
            received: self.received,
            reordered: self.reordered,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn discards_are_counted_and_reported() {
        let mut discarded = DiscardCounter::default();
        for seq in [0, 2, 1, 3] {
            discarded.count(seq);
        }
        let body = discarded.stats().to_body();
        let mut expected = 4u64.to_be_bytes().to_vec();
        expected.extend(1u64.to_be_bytes());
        assert_eq!(body[..], expected[..]);
    }

    #[test]
    fn stats_answers_of_either_length_parse() {
        let mut body = 5u64.to_be_bytes().to_vec();
        let old = Stats::parse(&body).unwrap();
        assert_eq!((old.received, old.reordered), (5, 0));
        body.extend(2u64.to_be_bytes());
        let new = Stats::parse(&body).unwrap();
        assert_eq!((new.received, new.reordered), (5, 2));
        let err = Stats::parse(b"abc").unwrap_err();
        assert_eq!(
            err.to_string(),
            "a statistics answer of 3 bytes; expected 16"
        );
    }

    #[test]
    fn a_duplicate_of_the_highest_is_not_reordered() {
        let mut discarded = DiscardCounter::default();
        for seq in [5, 5, 4] {
            discarded.count(seq);
        }
        assert_eq!(
            discarded.stats(),
            Stats {
                received: 3,
                reordered: 1
            }
        );
    }

    #[test]
    fn the_body_round_trips_and_ignores_a_longer_tail() {
        let stats = Stats {
            received: u64::MAX,
            reordered: 0x0102_0304_0506_0708,
        };
        let mut body = stats.to_body().to_vec();
        assert_eq!(Stats::parse(&body), Ok(stats));
        body.extend(b"later counters");
        assert_eq!(Stats::parse(&body), Ok(stats));
        assert_eq!(Stats::parse(&[]), Err(Error::StatsTooShort { len: 0 }));
    }

    proptest! {
        // A peer's pong body: refused exactly when too short for the
        // received count, and otherwise read from where `to_body` writes
        // (a partial second counter reads as 0, like a missing one).
        #[test]
        fn arbitrary_bodies_never_panic(body in proptest::collection::vec(any::<u8>(), 0..40)) {
            match Stats::parse(&body) {
                Ok(stats) => {
                    let known = if body.len() >= Stats::BODY_LEN { Stats::BODY_LEN } else { 8 };
                    prop_assert!(body.len() >= 8);
                    prop_assert_eq!(&stats.to_body()[..known], &body[..known]);
                }
                Err(err) => {
                    prop_assert_eq!(err, Error::StatsTooShort { len: body.len() });
                }
            }
        }
    }
}
