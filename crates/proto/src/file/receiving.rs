//! The receiver's side: [`Receiving`], which checks a transfer as it
//! arrives, and its verdict, [`FileResult`].

use bytes::{BufMut, BytesMut};

use super::{
    DIGEST_LEN, FileEnd, FileError, FileHeader, MAX_CHUNK, MAX_RESULT_TEXT, READY, REFUSED, SAVED,
    expect_kind, truncate,
};
use crate::{Kind, Message};

/// The body of a [`Kind::FileResult`]: the receiver's verdict on one file.
///
/// A status byte, then UTF-8 text of at most [`MAX_RESULT_TEXT`] bytes.
/// The text is the peer's: escape it before printing it
/// ([`str::escape_debug`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FileResult {
    /// Status 0: the file is saved.
    Saved {
        /// The name the receiver saved it under, which may differ from the
        /// header's (the receiver does not overwrite).
        name: String,
    },
    /// Status 1: the file is refused and nothing of it is kept.
    Refused {
        /// Why, for a human: typically a [`FileError`]'s text.
        reason: String,
    },
    /// Status 2, in answer to a [`FileHeader`]: the receiver accepts the
    /// name and has a place to write; send the content. A receiver that
    /// cannot take the file (a bad name, a file of that name, no save
    /// directory) answers [`FileResult::Refused`] instead, before a byte of
    /// content has been sent for nothing.
    Ready,
}

impl FileResult {
    /// The [`Kind::FileResult`] message, `seq` 0.
    ///
    /// Text over [`MAX_RESULT_TEXT`] bytes is cut at the last character
    /// boundary that fits, so that a long reason (one quoting a long name,
    /// say) still gets through.
    pub fn to_message(&self) -> Message {
        let (status, text) = match self {
            Self::Saved { name } => (SAVED, name.as_str()),
            Self::Refused { reason } => (REFUSED, reason.as_str()),
            Self::Ready => (READY, ""),
        };
        let text = truncate(text, MAX_RESULT_TEXT);
        let mut body = BytesMut::with_capacity(1 + text.len());
        body.put_u8(status);
        body.put_slice(text.as_bytes());
        Message::new(Kind::FileResult, 0, body.freeze())
    }

    /// Reads a [`Kind::FileResult`] message.
    ///
    /// Invalid UTF-8 in the text is replaced by U+FFFD rather than refused:
    /// the text is only shown to a human, and refusing it would hide the
    /// verdict that came with it.
    ///
    /// # Errors
    ///
    /// [`FileError::UnexpectedKind`], [`FileError::BodyTooShort`] (no status
    /// byte), [`FileError::UnknownStatus`] or [`FileError::TextTooLong`].
    pub fn from_message(msg: &Message) -> Result<Self, FileError> {
        expect_kind(msg, Kind::FileResult)?;
        let Some((&status, text)) = msg.body.split_first() else {
            return Err(FileError::BodyTooShort {
                what: "a file result body",
                len: 0,
                min: 1,
            });
        };
        if text.len() > MAX_RESULT_TEXT {
            return Err(FileError::TextTooLong {
                len: text.len(),
                max: MAX_RESULT_TEXT,
            });
        }
        let text = String::from_utf8_lossy(text).into_owned();
        match status {
            SAVED => Ok(Self::Saved { name: text }),
            REFUSED => Ok(Self::Refused { reason: text }),
            READY => Ok(Self::Ready),
            _ => Err(FileError::UnknownStatus { status }),
        }
    }
}

/// The receiver's side of one transfer, from its [`FileHeader`] to its
/// [`FileEnd`]: it checks each chunk before the caller writes it.
///
/// Between the header and the end, only chunks may arrive. Any error is
/// final: the caller deletes what it wrote, answers with a
/// [`FileResult::Refused`] and, if the error came before the end, closes the
/// connection, whose remaining chunks it can no longer place.
#[derive(Debug, Clone)]
pub struct Receiving {
    header: FileHeader,
    /// Content bytes accepted so far; never more than `header.size`.
    received: u64,
    /// The `seq` the next chunk must carry: the number accepted so far.
    next_seq: u64,
}

impl Receiving {
    /// Starts a transfer that `header` announced.
    pub fn new(header: FileHeader) -> Self {
        Self {
            header,
            received: 0,
            next_seq: 0,
        }
    }

    /// Resumes a transfer that `header` announced, whose first `offset`
    /// bytes the receiver already holds (a [`FileFrom`](super::FileFrom) agreed on them):
    /// the chunks carry the rest, numbered from 0 again, and the end is
    /// checked against the whole size.
    pub fn resumed(header: FileHeader, offset: u64) -> Self {
        Self {
            received: offset.min(header.size),
            header,
            next_seq: 0,
        }
    }

    /// The header that started this transfer.
    pub fn header(&self) -> &FileHeader {
        &self.header
    }

    /// Content bytes accepted so far.
    pub fn received(&self) -> u64 {
        self.received
    }

    /// Checks the next chunk and returns its content, for the caller to
    /// write and hash.
    ///
    /// The size is checked before the content is handed out, so a sender
    /// that lies about the size can never make the receiver write more than
    /// it announced. A refused chunk leaves the state unchanged.
    ///
    /// # Errors
    ///
    /// [`FileError::UnexpectedKind`] (anything but a chunk, including a
    /// [`Kind::FileEnd`], which goes to [`Receiving::on_end`]),
    /// [`FileError::ChunkOutOfOrder`], [`FileError::EmptyChunk`],
    /// [`FileError::ChunkTooLarge`] or [`FileError::TooLong`].
    pub fn on_chunk<'m>(&mut self, msg: &'m Message) -> Result<&'m [u8], FileError> {
        expect_kind(msg, Kind::FileChunk)?;
        if msg.seq != self.next_seq {
            return Err(FileError::ChunkOutOfOrder {
                expected: self.next_seq,
                found: msg.seq,
            });
        }
        let len = msg.body.len();
        if len == 0 {
            return Err(FileError::EmptyChunk);
        }
        if len > MAX_CHUNK {
            return Err(FileError::ChunkTooLarge {
                len,
                max: MAX_CHUNK,
            });
        }
        // `len` is at most MAX_CHUNK, so it fits a u64; the sum overflows
        // only past u64::MAX, which is past any announced size too.
        let total = self.received.checked_add(len as u64);
        match total {
            Some(total) if total <= self.header.size => self.received = total,
            _ => {
                return Err(FileError::TooLong {
                    announced: self.header.size,
                    received: total.unwrap_or(u64::MAX),
                });
            }
        }
        self.next_seq += 1;
        Ok(&msg.body)
    }

    /// Checks the end of the transfer: the content is exactly the announced
    /// size and `computed`, the digest of what the caller received, matches
    /// the sender's. Returns the header, for the caller to save the file
    /// under its name and mode.
    ///
    /// The digests are compared in ordinary, variable time: they are not
    /// secrets, and a peer that learns where they first differ learns
    /// nothing it could not compute itself.
    ///
    /// # Errors
    ///
    /// [`FileError::UnexpectedKind`], [`FileError::BadLength`],
    /// [`FileError::TooShort`], or [`FileError::HashMismatch`].
    pub fn on_end(
        self,
        msg: &Message,
        computed: &[u8; DIGEST_LEN],
    ) -> Result<FileHeader, FileError> {
        let (header, end) = self.end(msg)?;
        end.check(computed)?;
        Ok(header)
    }

    /// The first half of [`Receiving::on_end`], for a caller that hashes
    /// elsewhere (a folder's receiver hashes on its writing thread): the
    /// end message read and the size checked, the digest left to
    /// [`FileEnd::check`].
    ///
    /// # Errors
    ///
    /// [`FileError::UnexpectedKind`], [`FileError::BadLength`] or
    /// [`FileError::TooShort`].
    pub fn end(self, msg: &Message) -> Result<(FileHeader, FileEnd), FileError> {
        let end = FileEnd::from_message(msg)?;
        // Before the digest: on short content the digests differ anyway,
        // and the size says far better what went wrong.
        if self.received != self.header.size {
            return Err(FileError::TooShort {
                announced: self.header.size,
                received: self.received,
            });
        }
        Ok((self.header, end))
    }
}
