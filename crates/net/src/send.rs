//! What a client sends and reads back, whatever the transport: message
//! bodies from a reader a line at a time, within a body limit and in
//! bounded memory ([`read_line`]), and a [`Sender`] that sends them framed
//! or raw and waits for the reply to each.

use std::time::Duration;

use bytes::Bytes;
use msg_proto::Kind;
use tokio::io::{AsyncBufRead, AsyncBufReadExt};
use tracing::{debug, warn};

use crate::length::LengthLink;
use crate::raw::RawLink;
use crate::text::printable;
use crate::{Caps, ConnectOptions, Error, Link, PeerAddr, Transport, count, data};

/// What [`read_line`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum Line {
    /// A line, its end stripped.
    Body(Vec<u8>),
    /// A line longer than the limit; the rest of it was left unread.
    TooLong,
    /// The end of the input.
    End,
}

/// Reads one line of at most `max` bytes after "\n" (and with `crlf` a
/// "\r" before it) is stripped; the last line needs no "\n". A longer
/// line is refused as soon as it is known to be longer, so no more than
/// `max` + 2 bytes of it are ever held: `msg send < /dev/zero` must not
/// read without end.
///
/// # Errors
///
/// `reader`'s.
pub async fn read_line(
    reader: &mut (impl AsyncBufRead + Unpin),
    max: usize,
    crlf: bool,
) -> std::io::Result<Line> {
    // The line with its end, at most: the body, "\r" with --crlf, "\n".
    let cap = max + usize::from(crlf) + 1;
    let mut line = Vec::new();
    loop {
        let available = reader.fill_buf().await?;
        if available.is_empty() {
            if line.is_empty() {
                return Ok(Line::End);
            }
            break;
        }
        let (take, ended) = match available.iter().position(|&b| b == b'\n') {
            Some(at) => (at + 1, true),
            None => (available.len(), false),
        };
        if line.len() + take > cap {
            return Ok(Line::TooLong);
        }
        line.extend_from_slice(&available[..take]);
        reader.consume(take);
        if ended {
            break;
        }
    }
    if line.last() == Some(&b'\n') {
        line.pop();
        if crlf && line.last() == Some(&b'\r') {
            line.pop();
        }
    }
    if line.len() > max {
        return Ok(Line::TooLong);
    }
    Ok(Line::Body(line))
}

/// How much a reader with no lines (raw TCP) is read and sent at a time.
pub const STDIN_PIECE: usize = 64 * 1024;

/// Where a client's message bodies come from: the ones given (its
/// arguments), or a reader a line at a time within a body limit, in
/// bounded memory ([`read_line`]), or, with no limit, a piece at a time as
/// the reader fills (raw TCP: no lines, no messages).
#[derive(Debug)]
pub struct Bodies<'a, R> {
    given: std::slice::Iter<'a, String>,
    /// `None` once there were bodies given: the reader is not read.
    reader: Option<R>,
    /// The longest line; `None`: pieces, not lines.
    max: Option<usize>,
    /// Strip "\r\n", not only "\n".
    crlf: bool,
    /// Lines read so far, for the error.
    lines: u64,
}

/// Why [`Bodies::next`] gave no body.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BodyError {
    /// The reader failed.
    #[error("cannot read the input")]
    Read(#[source] std::io::Error),
    /// Line `line` is longer than the limit; the rest is left unread.
    #[error("line {line} is longer than the limit")]
    TooLong {
        /// Its number, from 1.
        line: u64,
    },
}

impl<'a, R: AsyncBufRead + Unpin> Bodies<'a, R> {
    /// The bodies `given`, or, when there are none, `reader`'s lines of at
    /// most `max` bytes (pieces, with no `max`), "\r\n" stripped too with
    /// `crlf`.
    pub fn new(given: &'a [String], reader: R, max: Option<usize>, crlf: bool) -> Self {
        Self {
            given: given.iter(),
            reader: given.is_empty().then_some(reader),
            max,
            crlf,
            lines: 0,
        }
    }

    /// The next body; `None` at the end.
    ///
    /// # Errors
    ///
    /// [`BodyError`]: the reader's error, or a line too long.
    pub async fn next(&mut self) -> Result<Option<Bytes>, BodyError> {
        let Some(reader) = &mut self.reader else {
            return Ok(self
                .given
                .next()
                .map(|body| Bytes::copy_from_slice(body.as_bytes())));
        };
        let Some(max) = self.max else {
            let piece = reader.fill_buf().await.map_err(BodyError::Read)?;
            if piece.is_empty() {
                return Ok(None);
            }
            let piece = Bytes::copy_from_slice(piece);
            reader.consume(piece.len());
            return Ok(Some(piece));
        };
        self.lines += 1;
        match read_line(reader, max, self.crlf)
            .await
            .map_err(BodyError::Read)?
        {
            Line::End => Ok(None),
            Line::Body(body) => Ok(Some(body.into())),
            Line::TooLong => Err(BodyError::TooLong { line: self.lines }),
        }
    }
}

/// What a sender of datagrams can say of them, where nothing confirms
/// that they arrived: how many left, and how many bytes, to `to`, and the
/// `answers` a group's receivers gave in all when they were waited for.
/// `None` over a transport that confirms delivery.
#[must_use]
pub fn unconfirmed(
    caps: Caps,
    sent: u64,
    bytes: u64,
    to: &PeerAddr,
    answers: Option<u64>,
) -> Option<String> {
    if caps.reliable {
        return None;
    }
    let heard = answers.map_or_else(String::new, |n| format!("; {} in all", count(n, "answer")));
    // QUIC acknowledges its datagrams' packets, but quinn does not say
    // which datagram a lost packet carried.
    let which = if caps.encrypted {
        "QUIC datagrams do"
    } else {
        "UDP does"
    };
    Some(format!(
        "msg send: sent {} ({}) to {to}{heard}; {which} not tell whether they arrived",
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
    /// gets up to `wait` to say why.
    ///
    /// # Errors
    ///
    /// The transport's, or the listener's refusal.
    pub async fn finish(self, wait: Duration) -> Result<(), Error> {
        match self {
            Self::Framed(link) => link.close(wait).await,
            Self::Length(link) => link
                .finish()
                .await
                .map_err(|err| Error::Close(Box::new(err))),
            Self::Raw(link) => link
                .finish()
                .await
                .map_err(|err| Error::Close(Box::new(err))),
        }
    }
}

/// The framed reply to message `seq`, however long it takes.
async fn framed_reply(link: &mut Link, seq: u64, peer: &PeerAddr) -> Result<Bytes, Error> {
    loop {
        let msg = link
            .recv()
            .await
            .map_err(|err| Error::Reply(Box::new(err)))?
            .ok_or_else(|| Error::NoReply { peer: peer.clone() })?;
        if msg.kind == Kind::Error {
            return Err(Error::Peer(printable(&msg.body)));
        }
        if msg.seq == seq {
            return Ok(msg.body);
        }
        // A late reply to an earlier message that timed out.
        debug!(seq = msg.seq, "ignored a stale reply");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::BufReader;

    async fn lines(input: &[u8], max: usize, crlf: bool) -> Vec<Line> {
        let mut reader = input;
        let mut out = Vec::new();
        loop {
            match read_line(&mut reader, max, crlf).await.unwrap() {
                Line::End => return out,
                Line::TooLong => {
                    out.push(Line::TooLong);
                    return out;
                }
                line => out.push(line),
            }
        }
    }

    fn body(text: &str) -> Line {
        Line::Body(text.as_bytes().to_vec())
    }

    #[tokio::test]
    async fn only_the_newline_is_stripped_unless_crlf() {
        assert_eq!(
            lines(b"a\r\nb\n", 10, false).await,
            [body("a\r"), body("b")]
        );
        assert_eq!(lines(b"a\r\nb\n", 10, true).await, [body("a"), body("b")]);
        assert_eq!(
            lines(b"\n\nlast", 10, false).await,
            [body(""), body(""), body("last")]
        );
        assert_eq!(lines(b"", 10, false).await, []);
    }

    #[tokio::test]
    async fn a_line_may_be_as_long_as_the_limit_and_no_longer() {
        assert_eq!(
            lines(b"abc\nabc", 3, false).await,
            [body("abc"), body("abc")]
        );
        assert_eq!(lines(b"abc\r\n", 3, true).await, [body("abc")]);
        assert_eq!(lines(b"abc\r\n", 3, false).await, [Line::TooLong]);
        assert_eq!(
            lines(b"ok\nabcd\n", 3, false).await,
            [body("ok"), Line::TooLong]
        );
        assert_eq!(lines(b"abcd", 3, false).await, [Line::TooLong]);
        assert_eq!(lines(b"abcd\n", 3, true).await, [Line::TooLong]);
    }

    #[tokio::test]
    async fn an_endless_line_is_refused_without_reading_it_all() {
        let mut zeros = BufReader::new(tokio::io::repeat(0));
        assert_eq!(
            read_line(&mut zeros, 1000, false).await.unwrap(),
            Line::TooLong
        );
    }

    /// Given bodies, lines within a limit (numbered in the error), and
    /// pieces as the reader fills.
    #[tokio::test]
    async fn bodies_come_given_or_a_line_or_a_piece_at_a_time() {
        let given = ["a".to_owned(), String::new()];
        let mut bodies = Bodies::new(&given, &b"unread"[..], Some(10), false);
        assert_eq!(bodies.next().await.unwrap().unwrap(), "a");
        assert_eq!(bodies.next().await.unwrap().unwrap(), "");
        assert!(
            bodies.next().await.unwrap().is_none(),
            "the reader is not read"
        );

        let mut lines = Bodies::new(&[], &b"one\r\ntwo\nthree is long\n"[..], Some(5), true);
        assert_eq!(lines.next().await.unwrap().unwrap(), "one");
        assert_eq!(lines.next().await.unwrap().unwrap(), "two");
        assert!(matches!(
            lines.next().await,
            Err(BodyError::TooLong { line: 3 })
        ));

        let mut pieces = Bodies::new(&[], &b"no\nlines"[..], None, false);
        assert_eq!(pieces.next().await.unwrap().unwrap(), "no\nlines");
        assert!(pieces.next().await.unwrap().is_none());
    }
}
