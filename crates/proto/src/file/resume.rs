//! Resuming a file (`FLAG_RESUME`): the receiver's [`FileOffer`] of what
//! it holds, and the sender's [`FileFrom`], where the content starts.

use bytes::{BufMut, Bytes, BytesMut};

use super::{DIGEST_LEN, FileError, expect_kind};
use crate::{Kind, Message};

/// [`Kind::FileHeader`] flag: the sender asks to resume. A receiver that
/// keeps what it has of this file (under a name of its own, never the
/// file's, as `msg listen` does) answers with a [`FileOffer`] instead of
/// [`FileResult::Ready`](super::FileResult::Ready); one that keeps nothing answers `Ready` and the
/// content starts at 0, as without the flag. A receiver that does not
/// know the flag ignores it (unknown bits are ignored), so an old one
/// simply takes the whole file.
pub const FLAG_RESUME: u32 = 0x1;

/// The body of a [`Kind::FileOffer`]: how much of the file the receiver
/// holds from an earlier, cut-off transfer, and the BLAKE3 digest of those
/// bytes, which the sender compares with the digest of its own first
/// `offset` bytes.
///
/// ```text
///  0               8                               40
/// +---------------+-------------------------------+
/// |    offset     |  digest of bytes 0..offset    |
/// |    u64 BE     |  32 bytes                     |
/// +---------------+-------------------------------+
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileOffer {
    /// The bytes the receiver holds: `1..=size` of the header.
    pub offset: u64,
    /// Their digest.
    pub digest: [u8; DIGEST_LEN],
}

/// The length of a [`FileOffer`] body: offset and digest.
const OFFER_LEN: usize = 8 + DIGEST_LEN;

impl FileOffer {
    /// The [`Kind::FileOffer`] message, `seq` 0.
    pub fn to_message(&self) -> Message {
        let mut body = BytesMut::with_capacity(OFFER_LEN);
        body.put_u64(self.offset);
        body.put_slice(&self.digest);
        Message::new(Kind::FileOffer, 0, body.freeze())
    }

    /// Reads a [`Kind::FileOffer`] message, checking the offset against
    /// the `size` the sender announced: an offer past it, or of nothing,
    /// is a receiver that lies.
    ///
    /// # Errors
    ///
    /// [`FileError::UnexpectedKind`], [`FileError::BadLength`] or
    /// [`FileError::BadOffset`].
    pub fn from_message(msg: &Message, size: u64) -> Result<Self, FileError> {
        expect_kind(msg, Kind::FileOffer)?;
        let Some((offset, digest)) = msg.body.split_first_chunk::<8>() else {
            return Err(offer_length(msg.body.len()));
        };
        let digest: [u8; DIGEST_LEN] = digest
            .try_into()
            .map_err(|_| offer_length(msg.body.len()))?;
        let offset = u64::from_be_bytes(*offset);
        if offset == 0 || offset > size {
            return Err(FileError::BadOffset { offset, size });
        }
        Ok(Self { offset, digest })
    }
}

fn offer_length(len: usize) -> FileError {
    FileError::BadLength {
        what: "a file offer body",
        len,
        expected: OFFER_LEN,
    }
}

/// The body of a [`Kind::FileFrom`]: the offset the sender's content
/// starts from after a [`FileOffer`], the offer's own when the digests
/// agree, else 0 (the receiver then drops what it had and starts over).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileFrom {
    /// The first byte of content the chunks carry.
    pub offset: u64,
}

impl FileFrom {
    /// The [`Kind::FileFrom`] message, `seq` 0.
    pub fn to_message(&self) -> Message {
        Message::new(
            Kind::FileFrom,
            0,
            Bytes::copy_from_slice(&self.offset.to_be_bytes()),
        )
    }

    /// Reads a [`Kind::FileFrom`] message: the offer's offset or 0, and
    /// nothing else.
    ///
    /// # Errors
    ///
    /// [`FileError::UnexpectedKind`], [`FileError::BadLength`] or
    /// [`FileError::BadOffset`] (neither 0 nor `offered`).
    pub fn from_message(msg: &Message, offered: u64) -> Result<Self, FileError> {
        expect_kind(msg, Kind::FileFrom)?;
        let offset = msg.body[..]
            .try_into()
            .map(u64::from_be_bytes)
            .map_err(|_| FileError::BadLength {
                what: "a file-from body",
                len: msg.body.len(),
                expected: 8,
            })?;
        if offset != 0 && offset != offered {
            return Err(FileError::BadOffset {
                offset,
                size: offered,
            });
        }
        Ok(Self { offset })
    }
}
