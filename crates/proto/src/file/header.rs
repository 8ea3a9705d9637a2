//! What opens and closes a file on the wire: its [`FileHeader`] (name,
//! size, mode, hash algorithm), its chunks, and the [`FileEnd`] with the
//! digest.

use bytes::{BufMut, Bytes, BytesMut};

use super::{
    DIGEST_LEN, FileError, FileName, HEADER_FIXED_LEN, MAX_CHUNK, MODE_MASK, expect_kind, hex,
};
use crate::{Kind, Message};

/// How the content is hashed for [`FileEnd`].
///
/// One byte on the wire, so that a later version can add algorithms; a
/// receiver refuses a number it does not know with
/// [`FileError::UnknownAlgorithm`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum HashAlgorithm {
    /// BLAKE3 with its default 32-byte output ([`DIGEST_LEN`]).
    Blake3 = 1,
}

impl From<HashAlgorithm> for u8 {
    fn from(algorithm: HashAlgorithm) -> Self {
        algorithm as Self
    }
}

impl TryFrom<u8> for HashAlgorithm {
    type Error = FileError;

    fn try_from(algorithm: u8) -> Result<Self, FileError> {
        match algorithm {
            1 => Ok(Self::Blake3),
            _ => Err(FileError::UnknownAlgorithm { algorithm }),
        }
    }
}

/// The body of a [`Kind::FileHeader`]: what the sender is about to send.
///
/// ```text
///  0               8   9      11      13
/// +---------------+---+-------+-------+----------------
/// |     size      |alg| mode  |namelen|  name ...
/// |    u64 BE     |u8 |u16 BE |u16 BE |  (namelen bytes of UTF-8)
/// +---------------+---+-------+-------+----------------
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileHeader {
    /// The name to save under, already validated; the receiver may still
    /// choose another (to avoid overwriting a file) and says which in its
    /// [`FileResult::Saved`](super::FileResult::Saved).
    pub name: FileName,
    /// The exact length of the content in bytes.
    pub size: u64,
    /// How the content is hashed for [`FileEnd`].
    pub algorithm: HashAlgorithm,
    /// The file's permission bits, as in `st_mode`.
    ///
    /// The sender puts the low 12 bits on the wire (permissions, setuid,
    /// setgid, sticky; not the file type); [`FileHeader::from_message`]
    /// keeps only [`MODE_MASK`] of them.
    pub mode: u32,
}

impl FileHeader {
    /// The [`Kind::FileHeader`] message, `seq` 0.
    pub fn to_message(&self) -> Message {
        let name = self.name.as_str().as_bytes();
        let mut body = BytesMut::with_capacity(HEADER_FIXED_LEN + name.len());
        body.put_u64(self.size);
        body.put_u8(self.algorithm.into());
        // Cannot truncate a permission: 0o7777 fits in 16 bits.
        body.put_u16((self.mode & 0o7777) as u16);
        // Cannot truncate: a FileName is at most MAX_NAME_LEN bytes.
        body.put_u16(name.len() as u16);
        body.put_slice(name);
        Message::new(Kind::FileHeader, 0, body.freeze())
    }

    /// Reads a [`Kind::FileHeader`] message, checking everything a peer
    /// could get wrong; `mode` comes out masked to [`MODE_MASK`].
    ///
    /// # Errors
    ///
    /// [`FileError::UnexpectedKind`], [`FileError::BodyTooShort`],
    /// [`FileError::BadLength`] (the body must be exactly 13 bytes plus the
    /// name), [`FileError::UnknownAlgorithm`] or [`FileError::BadName`].
    pub fn from_message(msg: &Message) -> Result<Self, FileError> {
        expect_kind(msg, Kind::FileHeader)?;
        let body = &msg.body[..];
        let Some((fixed, name)) = body.split_first_chunk::<HEADER_FIXED_LEN>() else {
            return Err(FileError::BodyTooShort {
                what: "a file header body",
                len: body.len(),
                min: HEADER_FIXED_LEN,
            });
        };
        let name_len = usize::from(u16::from_be_bytes([fixed[11], fixed[12]]));
        // Exactly: trailing bytes would be a sender bug or a smuggling
        // attempt, and a later version that needs more fields bumps the
        // algorithm or the protocol version instead.
        if name.len() != name_len {
            return Err(FileError::BadLength {
                what: "a file header body",
                len: body.len(),
                expected: HEADER_FIXED_LEN + name_len,
            });
        }
        let size = u64::from_be_bytes(fixed[..8].try_into().expect("8 bytes"));
        let algorithm = HashAlgorithm::try_from(fixed[8])?;
        let mode = u32::from(u16::from_be_bytes([fixed[9], fixed[10]])) & MODE_MASK;
        Ok(Self {
            name: FileName::from_bytes(name)?,
            size,
            algorithm,
            mode,
        })
    }
}

/// The [`Kind::FileChunk`] message carrying the chunk numbered `seq` (from
/// 0): the next `bytes` of the content.
///
/// `bytes` must hold 1 to [`MAX_CHUNK`] bytes; the receiver refuses any
/// other chunk, and an empty file sends none.
pub fn chunk(seq: u64, bytes: Bytes) -> Message {
    debug_assert!(
        (1..=MAX_CHUNK).contains(&bytes.len()),
        "a file chunk holds 1 to MAX_CHUNK bytes, not {}",
        bytes.len()
    );
    Message::new(Kind::FileChunk, seq, bytes)
}

/// The body of a [`Kind::FileEnd`]: the digest of the whole content.
///
/// It comes after the content rather than in the header because the sender
/// computes it while streaming: it knows the digest only once it has read
/// the last byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileEnd {
    /// The content's digest under the header's [`HashAlgorithm`].
    pub digest: [u8; DIGEST_LEN],
}

impl FileEnd {
    /// The [`Kind::FileEnd`] message, `seq` 0.
    pub fn to_message(&self) -> Message {
        Message::new(Kind::FileEnd, 0, Bytes::copy_from_slice(&self.digest))
    }

    /// Reads a [`Kind::FileEnd`] message.
    ///
    /// # Errors
    ///
    /// [`FileError::UnexpectedKind`] or [`FileError::BadLength`] (the body
    /// is exactly [`DIGEST_LEN`] bytes).
    pub fn from_message(msg: &Message) -> Result<Self, FileError> {
        expect_kind(msg, Kind::FileEnd)?;
        let digest = msg.body[..].try_into().map_err(|_| FileError::BadLength {
            what: "a file end body",
            len: msg.body.len(),
            expected: DIGEST_LEN,
        })?;
        Ok(Self { digest })
    }

    /// Whether `computed`, the digest of what arrived, is the sender's.
    ///
    /// # Errors
    ///
    /// [`FileError::HashMismatch`], both digests in hex.
    pub fn check(&self, computed: &[u8; DIGEST_LEN]) -> Result<(), FileError> {
        if self.digest == *computed {
            return Ok(());
        }
        Err(FileError::HashMismatch {
            expected: hex(&self.digest),
            computed: hex(computed),
        })
    }
}
