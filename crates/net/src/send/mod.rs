//! What a client sends and reads back, whatever the transport: message
//! bodies from a reader a line at a time, within a body limit and in
//! bounded memory ([`read_line`], `bodies.rs`), and a [`Sender`] that
//! sends them framed or raw and waits for the reply to each (all of them:
//! [`Sender::send_all`], `all.rs`).

use std::time::Duration;

use bytes::Bytes;
use msg_proto::Kind;
use tracing::{debug, warn};

use crate::length::LengthLink;
use crate::log::RateLimited;
use crate::raw::RawLink;
use crate::text::printable;
use crate::{Caps, ConnectOptions, Error, Link, PeerAddr, Transport, count, data};

mod all;
mod bodies;

pub use all::{Awaiting, SendAllError, Sent};
pub use bodies::{Bodies, BodyError, Line, STDIN_PIECE, Split, read_line};

/// What a sender of datagrams can say of them, where nothing confirms
/// that they arrived: how many left, and how many bytes, to `to`, and the
/// `answers` a group's receivers gave in all when they were waited for.
/// `replied` when one peer's reply came to every message (`--reply`,
/// which fails a send whose reply does not come): those did arrive, and
/// the line says so. `None` over a transport that confirms delivery.
#[must_use]
pub fn unconfirmed(
    caps: Caps,
    sent: u64,
    bytes: u64,
    to: &PeerAddr,
    answers: Option<u64>,
    replied: bool,
) -> Option<String> {
    if caps.reliable {
        return None;
    }
    let heard = answers.map_or_else(String::new, |n| format!("; {} in all", count(n, "answer")));
    // Said after every reply came, the plain sentence read as a doubt the
    // replies had settled (audit, round nine).
    let but = if replied && sent > 0 {
        ", but a reply came to each"
    } else {
        ""
    };
    // QUIC acknowledges its datagrams' packets, but quinn does not say
    // which datagram a lost packet carried.
    let which = if caps.encrypted {
        "QUIC datagrams do"
    } else {
        "UDP does"
    };
    Some(format!(
        "msg send: sent {} ({}) to {to}{heard}; {which} not tell whether they arrived{but}",
        count(sent, "datagram"),
        count(bytes, "byte"),
    ))
}

/// Framed messages or raw bytes.
#[derive(Debug)]
pub enum Sender {
    /// msg messages: a header, a sequence number, framed on a stream.
    Framed(Link),
    /// Bytes as they are (netcat's way).
    Raw(RawLink),
    /// Each body behind a bare length, no header: replies are matched by
    /// their order alone.
    Length(LengthLink),
}

impl Sender {
    /// Connects to `addr`, framed or `raw`.
    ///
    /// # Errors
    ///
    /// As [`Link::connect`] and [`RawLink::connect`].
    pub async fn connect(
        transport: Transport,
        addr: PeerAddr,
        raw: bool,
        options: &ConnectOptions,
    ) -> Result<Self, Error> {
        Ok(if raw {
            Self::Raw(RawLink::connect(transport, addr, options).await?)
        } else {
            Self::Framed(Link::connect(transport, addr, options).await?)
        })
    }

    /// Sends `body` as `Data` message `seq` (raw: the bytes alone).
    ///
    /// # Errors
    ///
    /// The transport's: too large, or the send failed.
    pub async fn send(&mut self, seq: u64, body: Bytes) -> Result<(), Error> {
        match self {
            Self::Framed(link) => link.send(&data::data(seq, body)).await?,
            Self::Raw(link) => link.send(&body).await?,
            Self::Length(link) => link.send(&body).await?,
        }
        Ok(())
    }

    /// Waits up to `wait` for the reply to message `seq` from `peer`,
    /// skipping late replies to earlier messages. A raw TCP reply is what
    /// arrives until the peer is quiet for `idle` or closes
    /// ([`RawLink::reply`]); `idle` means nothing to the others.
    ///
    /// # Errors
    ///
    /// [`Error::NoReplyWithin`] when none came in time, [`Error::Reply`]
    /// when the receive fails or the peer closes without replying,
    /// [`Error::Peer`] when it answers with an error.
    pub async fn reply(
        &mut self,
        seq: u64,
        peer: &PeerAddr,
        wait: Duration,
        idle: Duration,
    ) -> Result<Bytes, Error> {
        let (reply, lossy) = match self {
            Self::Raw(link) => {
                let lossy = link.is_datagram();
                (link.reply(wait, idle).await?, lossy)
            }
            Self::Length(link) => (
                tokio::time::timeout(wait, link.reply())
                    .await
                    .ok()
                    .transpose()?,
                false,
            ),
            Self::Framed(link) => (
                tokio::time::timeout(wait, framed_reply(link, seq, peer))
                    .await
                    .ok()
                    .transpose()?,
                !link.transport().caps().reliable,
            ),
        };
        reply.ok_or_else(|| Error::NoReplyWithin {
            seq,
            peer: peer.clone(),
            wait,
            lossy,
        })
    }

    /// The next piece of a raw stream reply too long, or too slow, to come
    /// whole ([`RawLink::reply_more`]); `None` once the reply has ended,
    /// and always for a framed or datagram reply, which comes whole.
    ///
    /// # Errors
    ///
    /// A failed receive.
    pub async fn reply_more(
        &mut self,
        wait: Duration,
        idle: Duration,
    ) -> Result<Option<Bytes>, Error> {
        match self {
            Self::Raw(link) => link.reply_more(wait, idle).await,
            Self::Framed(_) | Self::Length(_) => Ok(None),
        }
    }

    /// Whether it sends raw bytes over a stream: no messages, so what it
    /// sent is counted in bytes ([`SendAllError::SendBytes`]).
    pub fn is_raw_stream(&self) -> bool {
        matches!(self, Self::Raw(link) if !link.is_datagram())
    }

    /// Whether it sends to a multicast group or a broadcast address, whose
    /// answers come from many ([`Sender::replies`]).
    pub fn is_one_to_many(&self) -> bool {
        match self {
            Self::Framed(link) => link.is_one_to_many(),
            Self::Raw(link) => link.is_one_to_many(),
            Self::Length(_) => false,
        }
    }

    /// A one-to-many sender's answers to message `seq`: every one that
    /// arrives within `wait` goes to `each` with its sender, as it comes
    /// (a raw one is any datagram). Nobody says how many receivers there
    /// are, so the wait is always the whole of `wait`. Returns how many
    /// answered.
    ///
    /// # Errors
    ///
    /// [`Error::NoReplyWithin`] when none answered, [`Error::Reply`] when
    /// a receive fails, or what `each` returns.
    pub async fn replies(
        &mut self,
        seq: u64,
        group: &PeerAddr,
        wait: Duration,
        each: &mut dyn FnMut(&PeerAddr, &[u8]) -> std::io::Result<()>,
    ) -> Result<u64, Error> {
        let deadline = tokio::time::Instant::now() + wait;
        let mut answered = 0;
        loop {
            let next = async {
                match self {
                    Self::Framed(link) => Ok(link
                        .recv_from()
                        .await?
                        .map(|(msg, peer)| (Some(msg.kind), msg.seq, msg.body, peer))),
                    Self::Raw(link) => Ok(link
                        .datagram_from()
                        .await?
                        .map(|(bytes, peer)| (None, seq, bytes, peer))),
                    Self::Length(_) => Ok(None),
                }
            };
            let received: Result<_, Error> = match tokio::time::timeout_at(deadline, next).await {
                Ok(received) => received,
                Err(_) => break,
            };
            let Some((kind, got, body, peer)) =
                received.map_err(|err| Error::Reply(Box::new(err)))?
            else {
                break;
            };
            if kind == Some(Kind::Error) {
                // One receiver's refusal is its own; the others still
                // answer.
                warn!(%peer, "answered with an error: {}", printable(&body));
            } else if got == seq {
                answered += 1;
                each(&peer, &body).map_err(Error::Io)?;
            } else {
                debug!(seq = got, %peer, "ignored a stale reply");
            }
        }
        if answered == 0 {
            return Err(Error::NoReplyWithin {
                seq,
                peer: group.clone(),
                wait,
                lossy: true,
            });
        }
        Ok(answered)
    }

    /// Closes the sending side cleanly so the peer sees the end of the
    /// stream after the last byte; a framed TCP listener that refused us
    /// gets up to `wait` to say why, and any other peer as long to close
    /// its side (what it sends meanwhile is read, and dropped); `answered`
    /// when every message had its reply ([`Link::close`]).
    ///
    /// # Errors
    ///
    /// The transport's, or the listener's refusal.
    pub async fn finish(self, wait: Duration, answered: bool) -> Result<(), Error> {
        match self {
            Self::Framed(link) => link.close(wait, answered).await,
            Self::Length(link) => link
                .finish(wait)
                .await
                .map_err(|err| Error::Close(Box::new(err))),
            Self::Raw(link) => link
                .finish(wait)
                .await
                .map_err(|err| Error::Close(Box::new(err))),
        }
    }
}

/// The framed reply to message `seq`, however long it takes: a `Data`
/// message (what `msg listen --reply` answers with) that carries `seq`.
///
/// An `Error` ends the wait. Over a connection it is the listener's last
/// word on it (seq 0). A datagram has no connection, and a msg listener
/// sends none over one, so there only an `Error` that answers `seq` counts;
/// any other is dropped as a stale reply is, and a stray datagram does
/// not end the session. Over a connection a message of another kind for
/// `seq` (a `Pong`, a file result) is no reply and ends the wait; over
/// datagrams it is dropped. A second reply to an earlier message is
/// dropped with a warning, once a second at most: it was printed once.
async fn framed_reply(link: &mut Link, seq: u64, peer: &PeerAddr) -> Result<Bytes, Error> {
    static EXTRA: RateLimited = RateLimited::new();
    let connected = link.transport().caps().connections;
    loop {
        let msg = link
            .recv()
            .await
            .map_err(|err| Error::Reply(Box::new(err)))?
            .ok_or_else(|| Error::NoReply { peer: peer.clone() })?;
        if msg.kind == Kind::Error && (connected || msg.seq == seq) {
            return Err(Error::Peer(printable(&msg.body)));
        }
        match (msg.seq == seq, msg.kind) {
            (true, Kind::Data) => return Ok(msg.body),
            (true, kind) if connected => return Err(Error::NotAReply { seq, kind }),
            (true, kind) => debug!(seq, ?kind, "ignored a datagram that is no reply"),
            (false, _) if msg.seq < seq => EXTRA.warn(|suppressed| {
                warn!(%peer, suppressed, "ignored a second reply to message {}", msg.seq);
            }),
            (false, _) => debug!(seq = msg.seq, "ignored a reply to no message sent"),
        }
    }
}
