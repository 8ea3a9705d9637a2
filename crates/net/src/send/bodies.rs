//! Message bodies from a reader a line at a time, within a body limit
//! and in bounded memory ([`read_line`]), or the bodies given
//! ([`Bodies`]).

use bytes::Bytes;
use tokio::io::{AsyncBufRead, AsyncBufReadExt};

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

/// How a reader's bytes become bodies ([`Bodies`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    /// A line each, of at most `max` bytes once its end ("\n", and with
    /// `crlf` "\r\n" too) is stripped: msg's messages, one per line.
    Lines {
        /// The longest line.
        max: usize,
        /// Strip "\r\n", not only "\n".
        crlf: bool,
    },
    /// What each read gives, unchanged (newlines and all), at most `max`
    /// bytes (a datagram's or a packet's limit; `None`: as the reader
    /// fills): raw bytes, sent as nc sends them, where a line a datagram
    /// without its newline lost every newline byte of a binary file
    /// (audit, round thirteen).
    Pieces {
        /// The largest piece.
        max: Option<usize>,
    },
}

/// Where a client's message bodies come from: the ones given (its
/// arguments), or a reader as [`Split`] says: a line at a time within a
/// body limit, in bounded memory ([`read_line`]), or a piece at a time as
/// the reader fills (raw: no lines, no messages).
#[derive(Debug)]
pub struct Bodies<'a, R> {
    given: std::slice::Iter<'a, String>,
    /// `None` once there were bodies given: the reader is not read.
    reader: Option<R>,
    split: Split,
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
    /// The bodies `given`, or, when there are none, `reader`'s, split as
    /// `split` says.
    pub fn new(given: &'a [String], reader: R, split: Split) -> Self {
        Self {
            given: given.iter(),
            reader: given.is_empty().then_some(reader),
            split,
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
        let (max, crlf) = match self.split {
            Split::Lines { max, crlf } => (max, crlf),
            Split::Pieces { max } => {
                let piece = reader.fill_buf().await.map_err(BodyError::Read)?;
                if piece.is_empty() {
                    return Ok(None);
                }
                let piece =
                    Bytes::copy_from_slice(&piece[..piece.len().min(max.unwrap_or(usize::MAX))]);
                reader.consume(piece.len());
                return Ok(Some(piece));
            }
        };
        self.lines += 1;
        match read_line(reader, max, crlf)
            .await
            .map_err(BodyError::Read)?
        {
            Line::End => Ok(None),
            Line::Body(body) => Ok(Some(body.into())),
            Line::TooLong => Err(BodyError::TooLong { line: self.lines }),
        }
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
        let lines_of = |max, crlf| Split::Lines { max, crlf };
        let mut bodies = Bodies::new(&given, &b"unread"[..], lines_of(10, false));
        assert_eq!(bodies.next().await.unwrap().unwrap(), "a");
        assert_eq!(bodies.next().await.unwrap().unwrap(), "");
        assert!(
            bodies.next().await.unwrap().is_none(),
            "the reader is not read"
        );

        let mut lines = Bodies::new(&[], &b"one\r\ntwo\nthree is long\n"[..], lines_of(5, true));
        assert_eq!(lines.next().await.unwrap().unwrap(), "one");
        assert_eq!(lines.next().await.unwrap().unwrap(), "two");
        assert!(matches!(
            lines.next().await,
            Err(BodyError::TooLong { line: 3 })
        ));

        let mut pieces = Bodies::new(&[], &b"no\nlines"[..], Split::Pieces { max: None });
        assert_eq!(pieces.next().await.unwrap().unwrap(), "no\nlines");
        assert!(pieces.next().await.unwrap().is_none());

        // At most a datagram's limit each, every byte kept.
        let input = &b"a\0b\r\nc\n\nd"[..];
        let mut pieces = Bodies::new(&[], input, Split::Pieces { max: Some(4) });
        let mut got = Vec::new();
        while let Some(piece) = pieces.next().await.unwrap() {
            assert!(piece.len() <= 4, "{piece:?}");
            got.extend_from_slice(&piece);
        }
        assert_eq!(got, input);
    }
}
