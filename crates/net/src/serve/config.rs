//! [`ServeConfig`]: how a listener behaves, for every family's serve loop.

use std::sync::Arc;

use crate::auth::Auth;
use crate::exec::ExecConfig;
use crate::file::SaveConfig;
use crate::length::Framing;
use tracing::warn;

use crate::log::{Chain, RateLimited};
use crate::{Counters, Error, Limits, PeerAddr, Reply};

/// How a listener behaves.
#[derive(Debug, Clone, Default)]
pub struct ServeConfig {
    /// Accept only peers that know this secret: over TCP each connection
    /// must complete the handshake first, over UDP each datagram must carry
    /// a valid tag (and not be a replay).
    pub auth: Option<Auth>,
    /// What to answer each `Data` message (or, raw, each datagram or read).
    pub reply: Reply,
    /// No header and no framing: the bytes alone.
    pub raw: bool,
    /// How a stream's messages are told apart when not raw: msg's frames,
    /// or a bare length and the body (no secret, files or commands then).
    pub framing: Framing,
    /// How a dropped stream connection's error is worded in the log; `None`:
    /// the error and its causes as they are. A caller with flags uses it to
    /// name the flag that would have served the peer.
    pub explain: Option<fn(&(dyn std::error::Error + 'static)) -> String>,
    /// Poll the sockets in a loop instead of sleeping (see [`BusyPoll`](crate::BusyPoll)).
    pub busy_poll: bool,
    /// What each peer may cost.
    pub limits: Limits,
    /// What the listener counts as it goes, for a summary.
    pub counters: Arc<Counters>,
    /// Save the files peers send here (TCP); without it they are refused.
    pub save: Option<SaveConfig>,
    /// Run the commands authenticated peers send (TCP), within these
    /// limits. Ignored without [`ServeConfig::auth`]: a command never runs
    /// for a peer that did not prove it knows the secret.
    pub exec: Option<ExecConfig>,
    /// Over UDP, receive up to this many datagrams per system call
    /// (`recvmmsg`, at most [`MAX_BATCH`](crate::MAX_BATCH)), and GSO runs
    /// of datagrams coalesced (UDP GRO) where the kernel offers it; 0 or 1,
    /// one per call. The calls are counted in [`ServeConfig::counters`].
    pub udp_batch: usize,
    /// Over a Unix socket, serve only processes of these users (their uid
    /// as the kernel recorded it when they connected, `SO_PEERCRED`);
    /// empty: every user the socket file's mode lets connect. A peer
    /// whose uid is not known is refused too.
    pub allow_uids: Vec<u32>,
    /// Over a Unix datagram socket, ask the kernel who sent each datagram
    /// (`SO_PASSCRED`, a control message with each): the sender's pid, uid
    /// and gid then come with its address, as a Unix stream's peer's do.
    /// Asked whenever [`ServeConfig::allow_uids`] names a user, which over
    /// a datagram socket refuses each datagram of another user, dropped
    /// unread (there is no connection to refuse).
    pub senders: bool,
    /// Over a stream, TLS: each connection's TLS handshake first (within
    /// its timeout, and sharing [`Limits::max_handshakes`] with the
    /// secret's), and everything after it inside the session.
    pub tls: Option<crate::tls::TlsServer>,
}

impl ServeConfig {
    /// Whether a refused connection is told why: only a peer that speaks
    /// msg's frames can read it.
    pub(crate) fn tells_why(&self) -> bool {
        !self.raw && self.framing == Framing::Msg
    }

    /// A stream connection dropped with `err`, for both engines' serve
    /// loops: said in the log (in the words of [`ServeConfig::explain`],
    /// at most a line a second through `failures`), and counted as
    /// invalid when what the peer sent was not msg's frames (a frame over
    /// the limit, bytes that do not decode, a TLS record, a frame cut off
    /// by the close): the summary's `N invalid`, which over a stream
    /// listener said 0 whatever arrived (audit, round five).
    pub(crate) fn dropped(&self, failures: &RateLimited, peer: &PeerAddr, err: &Error) {
        // A plain client's bytes at a TLS listener are as invalid as a TLS
        // record at a plain one (audit, round nine: `0 invalid` where the
        // reverse said `1 invalid`).
        if let Error::Tcp(
            msg_tcp::Error::FrameTooLarge { .. }
            | msg_tcp::Error::Tls(_)
            | msg_tcp::Error::ClosedMidFrame { .. }
            | msg_tcp::Error::Decode(_),
        )
        | Error::Tls(crate::tls::TlsError::NotTls(_)) = err
        {
            self.counters.invalid_connection();
        }
        failures.warn(|suppressed| match self.explain {
            Some(explain) => warn!(%peer, suppressed, "dropped connection: {}", explain(err)),
            None => warn!(%peer, suppressed, "dropped connection: {}", Chain(err)),
        });
    }

    /// Whether a Unix datagram socket asks who sent each datagram.
    pub(crate) fn asks_senders(&self) -> bool {
        self.senders || !self.allow_uids.is_empty()
    }

    /// The refusal of `peer` by [`ServeConfig::allow_uids`], if it is
    /// refused, for both engines' accept loops.
    pub(crate) fn refuses(&self, peer: &PeerAddr) -> Option<UidRefused> {
        let cred = peer.unix().and_then(|peer| peer.cred);
        UidRefused::by(&self.allow_uids, cred)
    }
}

/// A Unix peer [`ServeConfig::allow_uids`] does not allow: its uid, or
/// `None` when the kernel gave none. Displays as the listener logs it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct UidRefused(Option<u32>);

impl UidRefused {
    /// The refusal of a peer the kernel says is `cred` (`None`: it said
    /// nothing) by `allow_uids`, if it is refused: by none, where the list
    /// is empty. For a stream's peer and a Unix datagram's sender alike.
    pub(crate) fn by(allow_uids: &[u32], cred: Option<msg_tcp::unix::Cred>) -> Option<Self> {
        if allow_uids.is_empty() {
            return None;
        }
        match cred.map(|cred| cred.uid) {
            Some(uid) if allow_uids.contains(&uid) => None,
            uid => Some(Self(uid)),
        }
    }

    fn uid(self) -> String {
        self.0
            .map_or_else(|| "unknown".to_owned(), |uid| uid.to_string())
    }

    /// What the peer is told (docs/wire.md lists it).
    pub(crate) fn text(self) -> String {
        crate::refusal::UID_NOT_ALLOWED.format(self.uid())
    }
}

impl std::fmt::Display for UidRefused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "uid {} is not allowed", self.uid())
    }
}
