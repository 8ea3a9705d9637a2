//! Tagged datagrams: what an authenticated [`Socket`](crate::Socket) adds.
//!
//! There is no handshake over UDP, so every datagram carries its own proof
//! (msg-proto's [`auth`](msg_proto::auth)): a 48-byte trailer with the
//! sender's random session id, a counter, and an HMAC-SHA256 tag under a
//! key derived from the secret and the sender's role. A receiver checks
//! the tag first, then a replay window per session id: a datagram seen
//! before, or too old for the window, is dropped. A restarted sender picks
//! a new session id, so its counter starting again at 0 is no replay.
//!
//! The window is keyed by the session id alone, not by the source address
//! too: the tag does not cover the address (a NAT may change it), so keyed
//! by (address, session id), one captured datagram sent again from five
//! new ports found five empty windows and was accepted five times, and
//! answered at each. The session id is 64 random bits, so two honest
//! senders share a window only by a 1 in 2^64 chance. What follows: a
//! sender whose address changes mid-session (NAT rebinding) goes on in the
//! same window, and replies follow it to its new address; and whichever
//! copy of a datagram arrives first is the one accepted, so an attacker on
//! the path who races a fresh datagram from another address has it
//! answered there, and the sender's own copy is then dropped as a replay.

use std::collections::HashMap;
use std::fmt;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use msg_proto::Message;
use msg_proto::auth::{
    AuthError, DatagramOpener, DatagramSealer, ReplayWindow, Role, SESSION_ID_LEN, Secret,
};
use tracing::warn;

/// How many senders' replay windows a socket keeps. When a new session
/// comes and the table is full, the window of the session heard from
/// least recently is forgotten: only holders of the secret make windows
/// (the tag is checked first), and even they cannot grow memory past this,
/// at the price that datagrams of a forgotten session could be accepted
/// once more (docs/auth.md says so). The session forgotten is an idle one,
/// not the first made: forgetting by age of creation let 4,096 new
/// sessions make an active one's recent datagrams replayable (audit,
/// round fourteen).
pub const MAX_REPLAY_SENDERS: usize = 4096;

/// How often a socket may warn about rejected datagrams.
const WARN_EVERY: Duration = Duration::from_secs(1);

/// Datagrams an authenticated socket dropped, by reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AuthRejections {
    /// The tag did not verify: forged, altered, or another secret.
    pub bad_tag: u64,
    /// Seen before, or older than the replay window.
    pub replayed: u64,
    /// A plain msg message: its sender has no secret.
    pub untagged: u64,
}

impl AuthRejections {
    /// Every datagram dropped, whatever the reason.
    pub fn total(&self) -> u64 {
        self.bad_tag + self.replayed + self.untagged
    }
}

/// What a replay window is kept for: a sending socket's session id,
/// whatever address its datagrams come from.
type Sender = [u8; SESSION_ID_LEN];

/// The sealing and opening state of one socket.
#[derive(Debug)]
pub(crate) struct Authenticated {
    sealer: DatagramSealer,
    opener: DatagramOpener,
    /// Each session's window, and when it last accepted a datagram (a
    /// tick of `ticks`), for forgetting the one heard from least recently.
    windows: HashMap<Sender, (ReplayWindow, u64)>,
    ticks: u64,
    pub(crate) rejections: AuthRejections,
    last_warn: Option<Instant>,
}

impl Authenticated {
    pub(crate) fn new(secret: &Secret, us: Role, session_id: [u8; SESSION_ID_LEN]) -> Self {
        let peer = match us {
            Role::Client => Role::Server,
            Role::Server => Role::Client,
        };
        Self {
            sealer: DatagramSealer::new(secret, us, session_id),
            opener: DatagramOpener::new(secret, peer),
            windows: HashMap::new(),
            ticks: 0,
            rejections: AuthRejections::default(),
            last_warn: None,
        }
    }

    /// The same keys and sending state, with no replay windows yet: for a
    /// second handle on the socket, of which only one should send.
    pub(crate) fn for_clone(&self) -> Self {
        Self {
            sealer: self.sealer.clone(),
            opener: self.opener.clone(),
            windows: HashMap::new(),
            ticks: 0,
            rejections: AuthRejections::default(),
            last_warn: None,
        }
    }

    pub(crate) fn seal(&mut self, msg: &Message, dst: &mut BytesMut) -> Result<(), AuthError> {
        self.sealer.seal(msg, dst)
    }

    /// The message in `datagram` if its tag verifies and it is no replay;
    /// `Ok(None)` (counted, and warned about at most once a second) if it
    /// fails authentication; the decode error if it is no msg message at
    /// all, which the socket counts as invalid, as it does without a
    /// secret.
    pub(crate) fn open(
        &mut self,
        datagram: Bytes,
        peer: &dyn fmt::Display,
    ) -> Result<Option<Message>, msg_proto::Error> {
        let opened = match self.opener.open(datagram) {
            Ok(opened) => opened,
            Err(AuthError::Decode(err)) => return Err(err),
            Err(err) => {
                self.reject(&err, peer);
                return Ok(None);
            }
        };
        // Only now, with the tag verified: a forged datagram must not move
        // anyone's window.
        let key = opened.session_id;
        if !self.windows.contains_key(&key) && self.windows.len() >= MAX_REPLAY_SENDERS {
            // A scan, only when a new session finds the table full.
            let idlest = self
                .windows
                .iter()
                .min_by_key(|(_, (_, used))| *used)
                .map(|(sender, _)| *sender);
            if let Some(idlest) = idlest {
                self.windows.remove(&idlest);
            }
        }
        let (window, used) = self
            .windows
            .entry(key)
            .or_insert_with(|| (ReplayWindow::new(), 0));
        if let Err(err) = window.check_and_set(opened.counter) {
            self.reject(&err, peer);
            return Ok(None);
        }
        self.ticks += 1;
        *used = self.ticks;
        Ok(Some(opened.message))
    }

    fn reject(&mut self, err: &AuthError, peer: &dyn fmt::Display) {
        match err {
            AuthError::NotTagged => self.rejections.untagged += 1,
            AuthError::Replayed { .. } | AuthError::TooOld { .. } => self.rejections.replayed += 1,
            _ => self.rejections.bad_tag += 1,
        }
        if self.last_warn.is_none_or(|at| at.elapsed() >= WARN_EVERY) {
            self.last_warn = Some(Instant::now());
            let AuthRejections {
                bad_tag,
                replayed,
                untagged,
            } = self.rejections;
            warn!(%peer, bad_tag, replayed, untagged, "dropped an unauthenticated datagram: {err}");
        }
    }
}

#[cfg(test)]
mod tests {
    use msg_proto::Kind;

    use super::*;

    /// A datagram sealed by a client of session `id`, numbered `seq`.
    fn sealed(secret: &Secret, sealers: &mut HashMap<u64, DatagramSealer>, id: u64) -> Bytes {
        let sealer = sealers
            .entry(id)
            .or_insert_with(|| DatagramSealer::new(secret, Role::Client, id.to_be_bytes()));
        let mut out = BytesMut::new();
        sealer
            .seal(&Message::new(Kind::Data, id, "x"), &mut out)
            .unwrap();
        out.freeze()
    }

    /// With the table full, a new session forgets the one heard from least
    /// recently, never one that is still talking: its recorded datagrams
    /// stay replays (audit, round fourteen: the first made was forgotten,
    /// however active).
    #[test]
    fn a_full_table_forgets_the_idlest_session_not_an_active_one() {
        let secret = Secret::new(b"replay windows".to_vec()).unwrap();
        let mut server = Authenticated::new(&secret, Role::Server, [0; SESSION_ID_LEN]);
        let mut sealers = HashMap::new();
        let accepted = |server: &mut Authenticated, datagram: &Bytes| {
            server.open(datagram.clone(), &"peer").unwrap().is_some()
        };
        // Session 0 first, then the rest of a full table; 0 keeps talking.
        let recorded = sealed(&secret, &mut sealers, 0);
        assert!(accepted(&mut server, &recorded));
        for id in 1..MAX_REPLAY_SENDERS as u64 {
            let datagram = sealed(&secret, &mut sealers, id);
            assert!(accepted(&mut server, &datagram));
        }
        let later = sealed(&secret, &mut sealers, 0);
        assert!(accepted(&mut server, &later));
        // A new session: session 1, idle since its one datagram, goes.
        let new = sealed(&secret, &mut sealers, MAX_REPLAY_SENDERS as u64);
        assert!(accepted(&mut server, &new));
        assert_eq!(server.windows.len(), MAX_REPLAY_SENDERS);
        assert!(!accepted(&mut server, &recorded), "session 0 was forgotten");
        assert!(!server.windows.contains_key(&1u64.to_be_bytes()));
    }
}
