//! Warnings about dropped datagrams, at most one a second.
//!
//! A peer that sends garbage as fast as it can must not turn the log into
//! a second flood: three seconds of invalid datagrams once wrote 445,256
//! warning lines (52 MB) to stderr. The first drop is reported at once;
//! the rest of each second collapse into one summary line.

use std::collections::HashSet;
use std::fmt::Display;
use std::hash::Hash;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tracing::{debug, warn};

/// How often a summary may be written.
const EVERY: Duration = Duration::from_secs(1);

/// How many distinct peers a summary counts; past that it says "at least".
const MAX_PEERS: usize = 1024;

/// Counts drops between warnings.
#[derive(Debug)]
pub(crate) struct DropLog<P = SocketAddr> {
    last: Option<Instant>,
    dropped: u64,
    peers: HashSet<P>,
}

impl<P> Default for DropLog<P> {
    fn default() -> Self {
        Self {
            last: None,
            dropped: 0,
            peers: HashSet::new(),
        }
    }
}

impl<P: Clone + Eq + Hash + Display> DropLog<P> {
    /// Notes one dropped datagram; warns when a second has passed since
    /// the last warning (or at the first drop).
    pub(crate) fn note(&mut self, peer: P, what: &str, error: &dyn Display) {
        self.note_at(Instant::now(), peer, what, error);
    }

    fn note_at(&mut self, now: Instant, peer: P, what: &str, error: &dyn Display) -> bool {
        // Each one at debug level (`-vv`), for whoever is chasing one peer.
        debug!(%peer, "dropped {what}: {error}");
        self.dropped += 1;
        if self.peers.len() < MAX_PEERS {
            self.peers.insert(peer.clone());
        }
        let due = self
            .last
            .is_none_or(|last| now.duration_since(last) >= EVERY);
        if !due {
            return false;
        }
        let peers = self.peers.len();
        let at_least = if peers == MAX_PEERS { "at least " } else { "" };
        match self.last {
            None => warn!(%peer, "dropped {what}: {error}"),
            Some(last) => warn!(
                %peer,
                "dropped {} {what}s from {at_least}{peers} peer(s) in the last {:.1}s; the last: {error}",
                self.dropped,
                now.duration_since(last).as_secs_f64()
            ),
        }
        self.last = Some(now);
        self.dropped = 0;
        self.peers.clear();
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flood_is_one_line_a_second() {
        let mut log = DropLog::default();
        let start = Instant::now();
        let peer: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let mut lines = 0;
        // 10,000 drops over 3 simulated seconds.
        for i in 0..10_000u32 {
            let now = start + Duration::from_micros(u64::from(i) * 300);
            if log.note_at(now, peer, "invalid datagram", &"bad magic") {
                lines += 1;
            }
        }
        assert_eq!(
            lines, 3,
            "the first at once (0 s), then one a second (1 s, 2 s)"
        );
    }
}
