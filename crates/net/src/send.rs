//! What a client sends and reads back, whatever the transport: message
//! bodies from a reader a line at a time, within a body limit and in
//! bounded memory ([`read_line`]), and a [`Sender`] that sends them framed
//! or raw and waits for the reply to each.

use std::time::Duration;

use bytes::Bytes;
use msg_proto::Kind;
use tokio::io::{AsyncBufRead, AsyncBufReadExt};
use tracing::debug;

use crate::length::LengthLink;
use crate::raw::RawLink;
use crate::text::printable;
use crate::{ConnectOptions, Error, Link, PeerAddr, Transport, data};

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
    /// skipping late replies to earlier messages; `None` when none came.
    /// A raw TCP reply is what arrives until the peer is quiet for `idle`
    /// or closes ([`RawLink::reply`]); `idle` means nothing to the others.
    ///
    /// # Errors
    ///
    /// [`Error::Reply`] when the receive fails or the peer closes without
    /// replying, [`Error::Peer`] when it answers with an error.
    pub async fn reply(
        &mut self,
        seq: u64,
        peer: &PeerAddr,
        wait: Duration,
        idle: Duration,
    ) -> Result<Option<Bytes>, Error> {
        match self {
            Self::Raw(link) => link.reply(wait, idle).await,
            Self::Length(link) => tokio::time::timeout(wait, link.reply())
                .await
                .ok()
                .transpose(),
            Self::Framed(link) => tokio::time::timeout(wait, framed_reply(link, seq, peer))
                .await
                .ok()
                .transpose(),
        }
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
}
