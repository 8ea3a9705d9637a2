//! The datagram family's serve loops: one socket serves every peer, one
//! datagram per message, plain (any kind of datagram socket, through
//! [`Datagrams`]) or batched (UDP's `recvmmsg`, GRO).

use std::net::SocketAddr;

use msg_proto::Message;
use tracing::{debug, warn};

use super::ServeConfig;
use crate::dgram::{Datagrams, Incoming};
use crate::log::{DropWarning, RateLimited, reply_failed, show_datagram};
use crate::respond::{Response, UdpPeers};
use crate::{Counters, Error, Events};

/// The plain loop: one datagram per receive.
pub(super) async fn serve<S: Datagrams>(
    socket: S,
    config: &ServeConfig,
    events: Events,
) -> Result<(), Error> {
    let mut served = Served::new(socket, config, events);
    loop {
        // A plain ping is answered by the socket, from its own bytes
        // rewritten where they lie into those of the pong `respond` would
        // give (a ping-pong's whole work on this side), as the blocking
        // loop answers it. Its peer needs no counter: only statistics and
        // discards do.
        let (msg, peer) = match served.socket.recv_or_answer().await? {
            Incoming::Message(msg, peer) => (msg, peer),
            Incoming::Answered(_, Ok(())) => continue,
            Incoming::Answered(peer, Err(err)) => {
                warn!(%peer, "cannot reply: {err}");
                continue;
            }
        };
        served.count();
        if !served.answer(&msg, peer).await {
            return Ok(());
        }
    }
}

/// The loop receiving in batches of up to `config.udp_batch` datagrams
/// per call; otherwise as [`serve`].
pub(super) async fn serve_batched(
    socket: msg_udp::Socket,
    config: &ServeConfig,
    events: Events,
) -> Result<(), Error> {
    let mut served = Served::new(socket, config, events);
    // Only this loop may turn GRO on: it receives with `recv_batch`,
    // which cuts coalesced runs apart. Without it, the kernel cuts them.
    if let Err(err) = served.socket.set_gro(true) {
        debug!("UDP GRO is not available ({err}); receiving datagram by datagram");
    }
    let mut batch = msg_udp::RecvBatch::new(config.udp_batch);
    let mut received: Vec<(Message, SocketAddr)> = Vec::with_capacity(batch.len());
    loop {
        // The messages of the last batch are gone by now, so its slots
        // are reclaimed, not reallocated.
        received.clear();
        served.socket.recv_batch(&mut batch, &mut received).await?;
        served.count();
        config.counters.set_udp_recv_calls(batch.counts());
        for (msg, peer) in received.drain(..) {
            if !served.answer(&msg, peer).await {
                return Ok(());
            }
        }
    }
}

/// What both loops keep while they serve: the socket, each peer's state,
/// and where the messages to show go.
struct Served<'a, S: Datagrams> {
    socket: CountedSocket<'a, S>,
    config: &'a ServeConfig,
    peers: UdpPeers<S::Peer>,
    events: Events,
    dropped: DropWarning,
    reply_failures: RateLimited,
}

impl<'a, S: Datagrams> Served<'a, S> {
    fn new(socket: S, config: &'a ServeConfig, events: Events) -> Self {
        Self {
            socket: CountedSocket::new(socket, &config.counters),
            config,
            peers: UdpPeers::new(config.limits.max_udp_peers),
            events,
            dropped: DropWarning::default(),
            reply_failures: RateLimited::default(),
        }
    }

    /// Leaves the socket's counts of invalid and unauthenticated datagrams
    /// in the listener's counters, after each receive.
    fn count(&self) {
        self.config.counters.set_udp(
            self.socket.invalid_datagrams(),
            self.socket.auth_rejections().total(),
        );
    }

    /// Answers `msg` from `peer` as the listener's reply mode says, and
    /// shows it; `false` once nobody reads what is shown.
    async fn answer(&mut self, msg: &Message, peer: S::Peer) -> bool {
        let Response { answer, show } = self.peers.respond(msg, &peer, self.config.reply);
        if let Some(answer) = answer {
            if let Err(err) = self.socket.send_to(&answer, &peer).await {
                reply_failed(&self.reply_failures, &peer, &err);
            }
        }
        !show || show_datagram(&self.events, &mut self.dropped, peer, msg)
    }
}

/// A UDP listener's socket that leaves its counts of invalid and
/// unauthenticated datagrams in the listener's [`Counters`] however its
/// loop ends, an error or the serve future dropped at shutdown included.
/// The loop updates them only when a valid message arrives (the socket
/// skips the others inside one receive), so without this, garbage after
/// the last valid message was counted nowhere.
struct CountedSocket<'a, S: Datagrams> {
    socket: S,
    counters: &'a Counters,
}

impl<'a, S: Datagrams> CountedSocket<'a, S> {
    fn new(socket: S, counters: &'a Counters) -> Self {
        Self { socket, counters }
    }
}

impl<S: Datagrams> std::ops::Deref for CountedSocket<'_, S> {
    type Target = S;

    fn deref(&self) -> &S {
        &self.socket
    }
}

impl<S: Datagrams> std::ops::DerefMut for CountedSocket<'_, S> {
    fn deref_mut(&mut self) -> &mut S {
        &mut self.socket
    }
}

impl<S: Datagrams> Drop for CountedSocket<'_, S> {
    fn drop(&mut self) {
        self.counters.set_udp(
            self.socket.invalid_datagrams(),
            self.socket.auth_rejections().total(),
        );
    }
}
