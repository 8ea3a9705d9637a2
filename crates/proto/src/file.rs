//! File transfer, sans-IO: the four messages that carry a file over a TCP
//! connection, and [`Receiving`], which checks a transfer as it arrives.
//!
//! ```text
//! sender                                              receiver
//!   | FileHeader  size, algorithm, mode, name           |
//!   |-------------------------------------------------->|
//!   | FileChunk   seq 0: bytes 0..                      |
//!   |-------------------------------------------------->|  (none for an
//!   | FileChunk   seq 1, 2, ...                         |   empty file)
//!   |-------------------------------------------------->|
//!   | FileEnd     BLAKE3 digest of the content          |
//!   |-------------------------------------------------->|
//!   |                FileResult  0 saved + name         |
//!   |                            1 refused + reason     |
//!   |<--------------------------------------------------|
//!   | FileHeader  (the next file, if any)               |
//! ```
//!
//! Each is an ordinary [`Message`], after the authentication handshake if
//! there is one; `docs/wire.md` lays out every body byte by byte and carries
//! a test vector that the unit tests below check.
//!
//! The digest travels last, in [`FileEnd`], so that the sender can hash the
//! content while it streams it: putting it in the header would mean reading
//! the whole file twice, or holding it in memory.
//!
//! This module neither hashes nor writes: the caller owns the file and the
//! BLAKE3 hasher, feeds each chunk that [`Receiving::on_chunk`] lets through
//! to both, and hands the finished digest to [`Receiving::on_end`].
//!
//! ```
//! use bytes::Bytes;
//! use msg_proto::file::{self, FileEnd, FileHeader, FileName, HashAlgorithm, Receiving};
//!
//! // Sender.
//! let header = FileHeader {
//!     name: FileName::new("hello.txt")?,
//!     size: 5,
//!     algorithm: HashAlgorithm::Blake3,
//!     mode: 0o644,
//! };
//! // Stands in for blake3::hash(b"hello"), which the caller computes.
//! let digest = [7; file::DIGEST_LEN];
//! let sent = [
//!     header.to_message(),
//!     file::chunk(0, Bytes::from_static(b"hello")),
//!     FileEnd { digest }.to_message(),
//! ];
//!
//! // Receiver.
//! let mut receiving = Receiving::new(FileHeader::from_message(&sent[0])?);
//! let content = receiving.on_chunk(&sent[1])?; // write it, hash it
//! assert_eq!(content, b"hello");
//! let header = receiving.on_end(&sent[2], &digest)?;
//! assert_eq!(header.name.as_str(), "hello.txt");
//! # Ok::<(), msg_proto::file::FileError>(())
//! ```

use std::fmt;

use bytes::{BufMut, Bytes, BytesMut};

use crate::{Kind, Message};

/// The most content one [`Kind::FileChunk`] carries: 1 MiB.
///
/// Large enough that the 28-byte header and the 4-byte TCP length prefix
/// cost nothing, small enough that a receiver holds at most one such body
/// per connection, and well under the TCP transport's default 16 MiB frame
/// limit.
pub const MAX_CHUNK: usize = 1 << 20;

/// The longest [`FileName`], in bytes of UTF-8: 255.
///
/// `NAME_MAX` on Linux and the BSDs, and the limit of ext4, XFS, APFS and
/// NTFS (the latter in UTF-16 units): a longer name could not be created on
/// the receiver anyway, so it is refused before anything is written.
pub const MAX_NAME_LEN: usize = 255;

/// The length of a BLAKE3 digest, the one in [`FileEnd`].
pub const DIGEST_LEN: usize = 32;

/// The longest text a [`FileResult`] carries, in bytes of UTF-8.
///
/// A reason is for a human to read; the bound keeps a hostile receiver from
/// making the sender buffer or print megabytes.
pub const MAX_RESULT_TEXT: usize = 1024;

/// The permission bits a receiver keeps of [`FileHeader::mode`]: read,
/// write and execute for owner, group and others.
///
/// Never setuid, setgid or sticky: a peer must not be able to plant a
/// setuid executable on the receiver.
pub const MODE_MASK: u32 = 0o777;

/// size (8) + algorithm (1) + mode (2) + name length (2).
const HEADER_FIXED_LEN: usize = 13;

/// The status byte of a [`FileResult::Saved`].
const SAVED: u8 = 0;
/// The status byte of a [`FileResult::Refused`].
const REFUSED: u8 = 1;
/// The status byte of a [`FileResult::Ready`].
const READY: u8 = 2;

/// Everything that can be wrong with a file transfer's messages.
///
/// Every error ends the transfer it concerns: the receiver answers with a
/// [`FileResult::Refused`] carrying the error's text and keeps nothing of
/// the file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FileError {
    /// A name that [`FileName::new`] refuses.
    ///
    /// The name is shown escaped, so that a control character in it never
    /// reaches a terminal.
    #[error("refused file name \"{}\": {reason}", name.escape_debug())]
    BadName {
        /// The name as received (invalid UTF-8 replaced by U+FFFD).
        name: String,
        /// What is wrong with it.
        reason: NameProblem,
    },
    /// A hash algorithm number this version does not know.
    #[error("unknown hash algorithm {algorithm}; this msg knows 1 (blake3)")]
    UnknownAlgorithm {
        /// The algorithm byte found.
        algorithm: u8,
    },
    /// A body whose length is fixed, or fixed by its own fields, and wrong.
    #[error("{what} is {len} bytes; expected {expected}")]
    BadLength {
        /// What was measured.
        what: &'static str,
        /// Its length.
        len: usize,
        /// The length it must have.
        expected: usize,
    },
    /// A body too short to hold even its fixed fields.
    #[error("{what} is {len} bytes; it needs at least {min}")]
    BodyTooShort {
        /// What was measured.
        what: &'static str,
        /// Its length.
        len: usize,
        /// The least it must have.
        min: usize,
    },
    /// A message of the wrong kind for this step of a transfer.
    #[error("expected {expected:?} during a file transfer, got {found:?}")]
    UnexpectedKind {
        /// The kind this step needs.
        expected: Kind,
        /// The kind that arrived.
        found: Kind,
    },
    /// A chunk whose `seq` is not the number of chunks before it: the
    /// sender skipped, repeated or reordered one.
    #[error("file chunk {found} arrived where chunk {expected} was due")]
    ChunkOutOfOrder {
        /// The `seq` due next.
        expected: u64,
        /// The `seq` that arrived.
        found: u64,
    },
    /// A chunk with no content: an empty file sends no chunk at all.
    #[error("empty file chunk; an empty file sends no chunks")]
    EmptyChunk,
    /// A chunk over [`MAX_CHUNK`].
    #[error("file chunk of {len} bytes; the limit is {max}")]
    ChunkTooLarge {
        /// The chunk's length.
        len: usize,
        /// [`MAX_CHUNK`].
        max: usize,
    },
    /// A chunk that would take the content past the size the header
    /// announced; refused before the caller writes it.
    #[error(
        "file content runs past its announced size: {announced} bytes announced, {received} sent"
    )]
    TooLong {
        /// The size in the header.
        announced: u64,
        /// The content's size with the refused chunk.
        received: u64,
    },
    /// The content ended before the size the header announced.
    #[error("file content ended short: {announced} bytes announced, {received} received")]
    TooShort {
        /// The size in the header.
        announced: u64,
        /// The content's size at [`Kind::FileEnd`].
        received: u64,
    },
    /// The sender's digest and the digest of what arrived differ: the
    /// content changed in transit, or on the sender's disk while it was
    /// being sent.
    #[error(
        "hash mismatch: the sender's blake3 is {expected}, the received content's is {computed}"
    )]
    HashMismatch {
        /// The digest in [`FileEnd`], in lower-case hex.
        expected: String,
        /// The digest the receiver computed, in lower-case hex.
        computed: String,
    },
    /// An offset in a [`FileOffer`] or [`FileFrom`] that cannot be: an
    /// offer of nothing or past the file's size, or a start that is
    /// neither 0 nor the offer's.
    #[error("offset {offset} does not fit a resumed transfer of {size} bytes")]
    BadOffset {
        /// The offset found.
        offset: u64,
        /// The size (or the offer) it had to fit.
        size: u64,
    },
    /// A path in a folder transfer that [`TreePath::new`](crate::tree::TreePath::new)
    /// refuses; the path shown escaped.
    #[error("refused path \"{}\": {reason}", path.escape_debug())]
    BadPath {
        /// The path as received (invalid UTF-8 replaced by U+FFFD).
        path: String,
        /// What is wrong with it.
        reason: crate::tree::PathProblem,
    },
    /// A folder entry type this version does not know.
    #[error("unknown folder entry type {found}; this msg knows 1 (file) and 2 (folder)")]
    UnknownEntryType {
        /// The type byte found.
        found: u8,
    },
    /// A folder entry that is not a file but announces content.
    #[error("a folder entry of type {kind} announces {size} bytes; only a file has content")]
    ContentOfNoFile {
        /// Its type byte.
        kind: u8,
        /// The size it announced.
        size: u64,
    },
    /// A [`Kind::FileResult`] status other than 0 (saved) or 1 (refused).
    #[error("unknown file result status {status}; expected 0 or 1")]
    UnknownStatus {
        /// The status byte found.
        status: u8,
    },
    /// A [`Kind::FileResult`] text over [`MAX_RESULT_TEXT`].
    #[error("file result text of {len} bytes; the limit is {max}")]
    TextTooLong {
        /// The text's length.
        len: usize,
        /// [`MAX_RESULT_TEXT`].
        max: usize,
    },
}

/// Why [`FileName::new`] refused a name; the `reason` of
/// [`FileError::BadName`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum NameProblem {
    /// The name is empty.
    Empty,
    /// The name is `.` or `..`, which name the save directory or its parent.
    Dots,
    /// The name contains `/` or `\`, a path separator on Unix or Windows.
    Separator(char),
    /// The name contains a control character (`NUL`, escape, newline, ...):
    /// a path ends at `NUL`, and the others rewrite a terminal that prints
    /// the name.
    Control(char),
    /// The name is over [`MAX_NAME_LEN`] bytes.
    TooLong {
        /// Its length in bytes.
        len: usize,
    },
    /// The name's bytes are not UTF-8.
    NotUtf8,
}

impl fmt::Display for NameProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `{:?}` on a char escapes it like `escape_debug`: '\\', '\0',
        // '\u{1b}', so the reason is as safe to print as the name.
        match self {
            Self::Empty => f.write_str("it is empty"),
            Self::Dots => f.write_str("it names a directory, not a file"),
            Self::Separator(c) => write!(f, "it contains {c:?}"),
            Self::Control(c) => write!(f, "it contains the control character {c:?}"),
            Self::TooLong { len } => {
                write!(f, "it is {len} bytes; the limit is {MAX_NAME_LEN}")
            }
            Self::NotUtf8 => f.write_str("it is not UTF-8"),
        }
    }
}

/// A file name that is safe to create inside the save directory: one path
/// component, and nothing else.
///
/// This is what keeps a peer from writing outside the save directory. The
/// receiver never uses the sender's path, only this validated single
/// component, which it joins to a directory of its own choosing. A name is
/// refused if it
///
/// - is empty, `.` or `..` (the directory itself or its parent);
/// - contains `/` or `\`, on every platform, so that a name accepted on one
///   is never a path on another;
/// - contains a control character ([`char::is_control`]): `NUL` ends a path
///   in the kernel's eyes, and escape sequences or newlines would rewrite the
///   terminal of whoever lists the directory or reads the log;
/// - is longer than [`MAX_NAME_LEN`] bytes.
///
/// Leading and trailing spaces and names of three or more dots are ordinary
/// names on Unix and are accepted; so are hidden names such as `.profile`.
/// Windows-only hazards (`C:x`, a drive-relative path; `CON`; a trailing
/// dot) are not checked here: a Windows receiver must refuse them itself.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FileName(String);

impl FileName {
    /// Validates `name` as a single path component.
    ///
    /// # Errors
    ///
    /// [`FileError::BadName`] with the first problem found: emptiness,
    /// dots, the first separator or control character, then the length.
    pub fn new(name: &str) -> Result<Self, FileError> {
        let refuse = |reason| FileError::BadName {
            name: name.to_owned(),
            reason,
        };
        if name.is_empty() {
            return Err(refuse(NameProblem::Empty));
        }
        if name == "." || name == ".." {
            return Err(refuse(NameProblem::Dots));
        }
        for c in name.chars() {
            if c == '/' || c == '\\' {
                return Err(refuse(NameProblem::Separator(c)));
            }
            if c.is_control() {
                return Err(refuse(NameProblem::Control(c)));
            }
        }
        if name.len() > MAX_NAME_LEN {
            return Err(refuse(NameProblem::TooLong { len: name.len() }));
        }
        Ok(Self(name.to_owned()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The name, as an owned string.
    pub fn into_string(self) -> String {
        self.0
    }
}

impl AsRef<str> for FileName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

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
    /// [`FileResult::Saved`].
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
        let name = std::str::from_utf8(name).map_err(|_| FileError::BadName {
            name: String::from_utf8_lossy(name).into_owned(),
            reason: NameProblem::NotUtf8,
        })?;
        Ok(Self {
            name: FileName::new(name)?,
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

/// [`Kind::FileHeader`] flag: the sender asks to resume. A receiver that
/// keeps what it has of this file (under a name of its own, never the
/// file's, as `msg listen` does) answers with a [`FileOffer`] instead of
/// [`FileResult::Ready`]; one that keeps nothing answers `Ready` and the
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
    /// bytes the receiver already holds (a [`FileFrom`] agreed on them):
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

/// `digest` in lower-case hex, two digits a byte, as `b3sum` prints it.
pub fn hex(digest: &[u8]) -> String {
    use fmt::Write;
    let mut out = String::with_capacity(digest.len() * 2);
    for byte in digest {
        write!(out, "{byte:02x}").expect("writing to a String cannot fail");
    }
    out
}

pub(crate) fn expect_kind(msg: &Message, expected: Kind) -> Result<(), FileError> {
    if msg.kind == expected {
        Ok(())
    } else {
        Err(FileError::UnexpectedKind {
            expected,
            found: msg.kind,
        })
    }
}

/// The longest prefix of `text` that is at most `max` bytes and ends on a
/// character boundary.
fn truncate(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    // A UTF-8 character is at most 4 bytes, so this steps back at most 3.
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn header(name: &str, size: u64) -> FileHeader {
        FileHeader {
            name: FileName::new(name).unwrap(),
            size,
            algorithm: HashAlgorithm::Blake3,
            mode: 0o644,
        }
    }

    fn refusal(name: &str) -> NameProblem {
        match FileName::new(name) {
            Err(FileError::BadName { name: got, reason }) => {
                assert_eq!(got, name);
                reason
            }
            other => panic!("{name:?} was not refused: {other:?}"),
        }
    }

    #[test]
    fn hostile_names_are_refused_with_the_right_reason() {
        use NameProblem::*;
        assert_eq!(refusal("../x"), Separator('/'));
        assert_eq!(refusal("/etc/x"), Separator('/'));
        assert_eq!(refusal("a/b"), Separator('/'));
        assert_eq!(refusal("a\\b"), Separator('\\'));
        assert_eq!(refusal("a\0b"), Control('\0'));
        assert_eq!(refusal("\x1b[2J"), Control('\x1b'));
        assert_eq!(refusal("\n"), Control('\n'));
        assert_eq!(refusal("a\u{85}b"), Control('\u{85}'));
        assert_eq!(refusal(""), Empty);
        assert_eq!(refusal("."), Dots);
        assert_eq!(refusal(".."), Dots);
        assert_eq!(refusal(&"a".repeat(256)), TooLong { len: 256 });
        // 254 bytes of 'a' and a 2-byte 'é': 255 characters but 256 bytes.
        let name = format!("{}é", "a".repeat(254));
        assert_eq!(name.chars().count(), 255);
        assert_eq!(refusal(&name), TooLong { len: 256 });
    }

    #[test]
    fn ordinary_names_are_accepted() {
        let longest = "a".repeat(MAX_NAME_LEN);
        for name in [
            "report.pdf",
            "ünïcödé.txt",
            ".hidden",
            "a b",
            " padded ",
            "...",
            "a..b",
            &longest,
        ] {
            assert_eq!(FileName::new(name).unwrap().as_str(), name);
        }
    }

    #[test]
    fn refusals_read_as_sentences_and_escape_the_name() {
        let text = |name: &str| FileName::new(name).unwrap_err().to_string();
        assert_eq!(text("../x"), r#"refused file name "../x": it contains '/'"#);
        assert_eq!(
            text("a\\b"),
            r#"refused file name "a\\b": it contains '\\'"#
        );
        assert_eq!(
            text("\x1b[2J"),
            r#"refused file name "\u{1b}[2J": it contains the control character '\u{1b}'"#
        );
        assert_eq!(
            text("a\0b"),
            r#"refused file name "a\0b": it contains the control character '\0'"#
        );
        assert_eq!(
            text(".."),
            r#"refused file name "..": it names a directory, not a file"#
        );
        assert_eq!(text(""), r#"refused file name "": it is empty"#);
        assert_eq!(
            text(&"a".repeat(256)),
            format!(
                r#"refused file name "{}": it is 256 bytes; the limit is 255"#,
                "a".repeat(256)
            )
        );
        // Whatever the name, no control character reaches the text.
        for name in ["\x1b[2J", "a\0b", "\n", "\r\x07\u{9b}"] {
            assert!(!text(name).chars().any(char::is_control), "{name:?}");
        }
    }

    /// The test vector printed in `docs/wire.md`: the header of "hello.txt",
    /// 5 bytes, mode 0o644, as a whole message (header, then body).
    const VECTOR: &[u8] = b"\x6d\x73\x01\x10\x00\x00\x00\x00\
        \x00\x00\x00\x00\x00\x00\x00\x00\
        \x00\x00\x00\x00\x00\x00\x00\x00\
        \x00\x00\x00\x16\
        \x00\x00\x00\x00\x00\x00\x00\x05\
        \x01\x01\xa4\x00\x09hello.txt";

    fn encoded(msg: &Message) -> Vec<u8> {
        let mut buf = BytesMut::new();
        crate::encode(msg, &mut buf).unwrap();
        buf.to_vec()
    }

    #[test]
    fn the_header_encodes_to_the_documented_vector() {
        let msg = header("hello.txt", 5).to_message();
        assert_eq!(encoded(&msg), VECTOR);
        let decoded = crate::decode(Bytes::from_static(VECTOR)).unwrap();
        assert_eq!(
            FileHeader::from_message(&decoded).unwrap(),
            header("hello.txt", 5)
        );
    }

    #[test]
    fn docs_carry_the_vector() {
        let first = &crate::doc::vectors_after("\n## Files")[0];
        assert_eq!(*first, crate::doc::hex(VECTOR));
    }

    #[test]
    fn resume_messages_encode_to_the_documented_vector_and_check_offsets() {
        let offer = FileOffer {
            offset: 4,
            digest: [0xab; DIGEST_LEN],
        };
        let bytes = encoded(&offer.to_message());
        let doc = &crate::doc::vectors_after("Vector `file-offer`")[0];
        assert_eq!(*doc, crate::doc::hex(&bytes));
        let decoded = crate::decode(Bytes::from(bytes)).unwrap();
        assert_eq!(FileOffer::from_message(&decoded, 4), Ok(offer));
        // An offer of nothing, or past the size, is a receiver that lies.
        assert_eq!(
            FileOffer::from_message(&decoded, 3),
            Err(FileError::BadOffset { offset: 4, size: 3 })
        );
        let zero = FileOffer { offset: 0, ..offer }.to_message();
        assert!(FileOffer::from_message(&zero, 4).is_err());
        let short = Message::new(Kind::FileOffer, 0, vec![0; 39]);
        assert_eq!(
            FileOffer::from_message(&short, 4).unwrap_err().to_string(),
            "a file offer body is 39 bytes; expected 40"
        );
        let from = |offset| FileFrom::from_message(&FileFrom { offset }.to_message(), 4);
        assert_eq!(from(4), Ok(FileFrom { offset: 4 }));
        assert_eq!(from(0), Ok(FileFrom { offset: 0 }));
        assert_eq!(
            from(2).unwrap_err().to_string(),
            "offset 2 does not fit a resumed transfer of 4 bytes"
        );
        // Resumed, the end is checked against the whole size.
        let mut receiving = Receiving::resumed(header("f", 5), 4);
        assert!(
            receiving
                .on_chunk(&chunk(0, Bytes::from_static(b"o")))
                .is_ok()
        );
        let digest = [3; DIGEST_LEN];
        assert!(
            receiving
                .on_end(&FileEnd { digest }.to_message(), &digest)
                .is_ok()
        );
    }

    #[test]
    fn every_message_round_trips() {
        let h = FileHeader {
            mode: 0o755,
            ..header("ünïcödé.txt", u64::MAX)
        };
        assert_eq!(FileHeader::from_message(&h.to_message()), Ok(h));

        let msg = chunk(3, Bytes::from_static(b"abc"));
        assert_eq!(
            (msg.kind, msg.seq, &msg.body[..]),
            (Kind::FileChunk, 3, &b"abc"[..])
        );

        let end = FileEnd {
            digest: std::array::from_fn(|i| i as u8),
        };
        assert_eq!(FileEnd::from_message(&end.to_message()), Ok(end));

        for result in [
            FileResult::Saved {
                name: "report (1).pdf".into(),
            },
            FileResult::Refused {
                reason: "hash mismatch: ...".into(),
            },
            FileResult::Saved {
                name: String::new(),
            },
            FileResult::Ready,
        ] {
            assert_eq!(FileResult::from_message(&result.to_message()), Ok(result));
        }
    }

    #[test]
    fn setuid_setgid_and_sticky_never_survive() {
        let msg = FileHeader {
            mode: 0o4755,
            ..header("run.sh", 0)
        }
        .to_message();
        // On the wire: the sender's bits, as they are.
        assert_eq!(&msg.body[9..11], &0o4755u16.to_be_bytes());
        assert_eq!(FileHeader::from_message(&msg).unwrap().mode, 0o755);
        // And the file type bits of a raw st_mode never reach the wire.
        let msg = FileHeader {
            mode: 0o100_644,
            ..header("a", 0)
        }
        .to_message();
        assert_eq!(&msg.body[9..11], &0o644u16.to_be_bytes());
        let mut body = msg.body.to_vec();
        body[9..11].copy_from_slice(&0xffffu16.to_be_bytes());
        let msg = Message::new(Kind::FileHeader, 0, body);
        assert_eq!(FileHeader::from_message(&msg).unwrap().mode, 0o777);
    }

    #[test]
    fn a_header_must_be_exactly_its_length() {
        let good = header("hello.txt", 5).to_message().body.to_vec();
        let with =
            |body: Vec<u8>| FileHeader::from_message(&Message::new(Kind::FileHeader, 0, body));
        assert_eq!(
            with(good[..12].to_vec()),
            Err(FileError::BodyTooShort {
                what: "a file header body",
                len: 12,
                min: 13
            })
        );
        assert_eq!(
            with(good[..21].to_vec()),
            Err(FileError::BadLength {
                what: "a file header body",
                len: 21,
                expected: 22
            })
        );
        let mut long = good.clone();
        long.push(b'!');
        assert_eq!(
            with(long).unwrap_err().to_string(),
            "a file header body is 23 bytes; expected 22"
        );
        let mut algorithm = good.clone();
        algorithm[8] = 2;
        assert_eq!(
            with(algorithm).unwrap_err().to_string(),
            "unknown hash algorithm 2; this msg knows 1 (blake3)"
        );
        let mut utf8 = good.clone();
        utf8[13] = 0xff;
        assert_eq!(
            with(utf8),
            Err(FileError::BadName {
                name: "\u{fffd}ello.txt".into(),
                reason: NameProblem::NotUtf8
            })
        );
        let mut hostile = good[..13].to_vec();
        hostile[12] = 4;
        hostile.extend(b"../x");
        assert_eq!(
            with(hostile).unwrap_err().to_string(),
            r#"refused file name "../x": it contains '/'"#
        );
        assert_eq!(
            FileHeader::from_message(&Message::new(Kind::Data, 0, good)),
            Err(FileError::UnexpectedKind {
                expected: Kind::FileHeader,
                found: Kind::Data
            })
        );
    }

    #[test]
    fn end_and_result_bodies_are_checked() {
        let end =
            |body: &[u8]| FileEnd::from_message(&Message::new(Kind::FileEnd, 0, body.to_vec()));
        assert_eq!(
            end(&[0; 31]).unwrap_err().to_string(),
            "a file end body is 31 bytes; expected 32"
        );
        assert!(end(&[0; 33]).is_err());

        let result = |body: &[u8]| {
            FileResult::from_message(&Message::new(Kind::FileResult, 0, body.to_vec()))
        };
        assert_eq!(
            result(b"").unwrap_err().to_string(),
            "a file result body is 0 bytes; it needs at least 1"
        );
        assert_eq!(result(b"\x02"), Ok(FileResult::Ready));
        assert_eq!(
            result(b"\x03x"),
            Err(FileError::UnknownStatus { status: 3 })
        );
        // Invalid UTF-8 is shown, not refused: the verdict matters more.
        assert_eq!(
            result(b"\x01bad \xff"),
            Ok(FileResult::Refused {
                reason: "bad \u{fffd}".into()
            })
        );
        let mut long = vec![REFUSED];
        long.extend([b'x'; MAX_RESULT_TEXT]);
        assert!(result(&long).is_ok());
        long.push(b'x');
        assert_eq!(
            result(&long),
            Err(FileError::TextTooLong {
                len: 1025,
                max: 1024
            })
        );
    }

    #[test]
    fn long_result_text_is_cut_on_a_char_boundary() {
        // 1023 bytes of 'a', then 'é' (2 bytes) would end at 1025.
        let reason = format!("{}é and more", "a".repeat(1023));
        let msg = FileResult::Refused { reason }.to_message();
        assert_eq!(msg.body.len(), 1 + 1023);
        assert_eq!(
            FileResult::from_message(&msg),
            Ok(FileResult::Refused {
                reason: "a".repeat(1023)
            })
        );
    }

    #[test]
    fn an_exact_transfer_is_accepted() {
        let mut receiving = Receiving::new(header("f", 5));
        assert_eq!(
            receiving.on_chunk(&chunk(0, Bytes::from_static(b"hel"))),
            Ok(&b"hel"[..])
        );
        assert_eq!(
            receiving.on_chunk(&chunk(1, Bytes::from_static(b"lo"))),
            Ok(&b"lo"[..])
        );
        assert_eq!(receiving.received(), 5);
        let digest = [9; DIGEST_LEN];
        assert_eq!(
            receiving.on_end(&FileEnd { digest }.to_message(), &digest),
            Ok(header("f", 5))
        );
    }

    #[test]
    fn an_empty_file_has_no_chunk() {
        let receiving = Receiving::new(header("empty", 0));
        let digest = [1; DIGEST_LEN];
        assert!(
            receiving
                .on_end(&FileEnd { digest }.to_message(), &digest)
                .is_ok()
        );
        let mut receiving = Receiving::new(header("empty", 0));
        assert_eq!(
            receiving.on_chunk(&Message::new(Kind::FileChunk, 0, Bytes::new())),
            Err(FileError::EmptyChunk)
        );
    }

    #[test]
    fn one_byte_too_many_is_refused_before_it_is_handed_out() {
        let mut receiving = Receiving::new(header("f", 5));
        receiving
            .on_chunk(&chunk(0, Bytes::from_static(b"hell")))
            .unwrap();
        let err = receiving
            .on_chunk(&chunk(1, Bytes::from_static(b"o!")))
            .unwrap_err();
        assert_eq!(
            err,
            FileError::TooLong {
                announced: 5,
                received: 6
            }
        );
        assert_eq!(
            err.to_string(),
            "file content runs past its announced size: 5 bytes announced, 6 sent"
        );
        // Refused, so not counted.
        assert_eq!(receiving.received(), 4);
    }

    #[test]
    fn one_byte_short_is_refused_at_the_end() {
        let mut receiving = Receiving::new(header("f", 5));
        receiving
            .on_chunk(&chunk(0, Bytes::from_static(b"hell")))
            .unwrap();
        let digest = [0; DIGEST_LEN];
        let err = receiving
            .on_end(&FileEnd { digest }.to_message(), &digest)
            .unwrap_err();
        assert_eq!(
            err,
            FileError::TooShort {
                announced: 5,
                received: 4
            }
        );
        assert_eq!(
            err.to_string(),
            "file content ended short: 5 bytes announced, 4 received"
        );
    }

    #[test]
    fn a_digest_mismatch_is_refused() {
        let mut receiving = Receiving::new(header("f", 1));
        receiving
            .on_chunk(&chunk(0, Bytes::from_static(b"x")))
            .unwrap();
        let sent = FileEnd {
            digest: [0xab; DIGEST_LEN],
        };
        let mut computed = [0xab; DIGEST_LEN];
        computed[31] = 0xac;
        let err = receiving.on_end(&sent.to_message(), &computed).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "hash mismatch: the sender's blake3 is {}, the received content's is {}ac",
                "ab".repeat(32),
                "ab".repeat(31)
            )
        );
    }

    #[test]
    fn chunks_are_checked_for_kind_order_and_size() {
        let mut receiving = Receiving::new(header("f", u64::MAX));
        assert_eq!(
            receiving.on_chunk(&FileEnd { digest: [0; 32] }.to_message()),
            Err(FileError::UnexpectedKind {
                expected: Kind::FileChunk,
                found: Kind::FileEnd
            })
        );
        assert_eq!(
            receiving.on_chunk(&chunk(1, Bytes::from_static(b"x"))),
            Err(FileError::ChunkOutOfOrder {
                expected: 0,
                found: 1
            })
        );
        let big = Message::new(Kind::FileChunk, 0, vec![0; MAX_CHUNK + 1]);
        assert_eq!(
            receiving.on_chunk(&big),
            Err(FileError::ChunkTooLarge {
                len: MAX_CHUNK + 1,
                max: MAX_CHUNK
            })
        );
        let full = chunk(0, Bytes::from(vec![0; MAX_CHUNK]));
        assert_eq!(receiving.on_chunk(&full).map(<[u8]>::len), Ok(MAX_CHUNK));
        // A repeat of the chunk just accepted is out of order too.
        assert!(matches!(
            receiving.on_chunk(&full),
            Err(FileError::ChunkOutOfOrder {
                expected: 1,
                found: 0
            })
        ));
    }

    #[test]
    fn hex_is_lower_case_two_digits_a_byte() {
        assert_eq!(hex(&[0x00, 0x0f, 0xab, 0xff]), "000fabff");
        assert_eq!(hex(&[]), "");
    }

    fn any_kind() -> impl Strategy<Value = Kind> {
        proptest::sample::select(Kind::ALL.to_vec())
    }

    fn valid_name() -> impl Strategy<Value = FileName> {
        "\\PC{1,80}".prop_filter_map("not a valid name", |s| FileName::new(&s).ok())
    }

    proptest! {
        #[test]
        fn arbitrary_bodies_never_panic_any_decoder(
            kind in any_kind(),
            seq in 0u64..3,
            size in 0u64..64,
            body in proptest::collection::vec(any::<u8>(), 0..128),
            computed in any::<[u8; DIGEST_LEN]>(),
        ) {
            let msg = Message::new(kind, seq, body);
            if let Ok(h) = FileHeader::from_message(&msg) {
                // Whatever decodes re-encodes to the very same body, but for
                // the mode bits the decoder drops.
                let mut again = h.to_message().body.to_vec();
                let mut original = msg.body.to_vec();
                again[9..11].fill(0);
                original[9..11].fill(0);
                prop_assert_eq!(again, original);
            }
            if let Ok(end) = FileEnd::from_message(&msg) {
                prop_assert_eq!(end.to_message().body, msg.body.clone());
            }
            let _ = FileResult::from_message(&msg);
            if let Ok(offer) = FileOffer::from_message(&msg, size) {
                prop_assert!((1..=size).contains(&offer.offset));
                prop_assert_eq!(offer.to_message().body, msg.body.clone());
            }
            if let Ok(from) = FileFrom::from_message(&msg, size) {
                prop_assert!(from.offset == 0 || from.offset == size);
            }
            let mut receiving = Receiving::new(header("f", size));
            if let Ok(content) = receiving.on_chunk(&msg) {
                prop_assert_eq!(content, &msg.body[..]);
                prop_assert!(receiving.received() <= size);
            }
            let _ = receiving.on_end(&msg, &computed);
        }

        // A sender's chunks in any order, of any kind and length, against
        // any announced size: what is handed out never passes the size, a
        // refused chunk changes nothing, and the end is accepted exactly at
        // the size. `None` stands for the seq that is due.
        #[test]
        fn a_transfer_never_hands_out_more_than_announced(
            size in 0u64..64,
            chunks in proptest::collection::vec(
                (
                    prop_oneof![4 => Just(Kind::FileChunk), 1 => any_kind()],
                    prop_oneof![3 => Just(None), 1 => (0u64..4).prop_map(Some)],
                    proptest::collection::vec(any::<u8>(), 0..24),
                ),
                0..10,
            ),
        ) {
            let mut receiving = Receiving::new(header("f", size));
            let mut total = 0u64;
            let mut accepted = 0u64;
            for (kind, seq, body) in chunks {
                let msg = Message::new(kind, seq.unwrap_or(accepted), body);
                let before = receiving.received();
                match receiving.on_chunk(&msg) {
                    Ok(content) => {
                        prop_assert_eq!(content, &msg.body[..]);
                        total += content.len() as u64;
                        accepted += 1;
                    }
                    Err(_) => prop_assert_eq!(receiving.received(), before),
                }
                prop_assert_eq!(receiving.received(), total);
                prop_assert!(total <= size);
            }
            let digest = [0; DIGEST_LEN];
            let end = receiving.on_end(&FileEnd { digest }.to_message(), &digest);
            prop_assert_eq!(end.is_ok(), total == size);
        }

        #[test]
        fn any_valid_header_round_trips(
            name in valid_name(),
            size in any::<u64>(),
            mode in 0u32..=0o777,
        ) {
            let h = FileHeader { name, size, algorithm: HashAlgorithm::Blake3, mode };
            let msg = h.to_message();
            prop_assert_eq!(msg.body.len(), 13 + h.name.as_str().len());
            prop_assert_eq!(FileHeader::from_message(&msg), Ok(h));
        }

        #[test]
        fn an_accepted_name_is_one_normal_path_component(
            name in prop_oneof![any::<String>(), "[./\\\\a\\x00\n ]{0,6}"],
        ) {
            use std::path::{Component, Path};
            if let Ok(file_name) = FileName::new(&name) {
                let components: Vec<_> = Path::new(file_name.as_str()).components().collect();
                prop_assert_eq!(components, [Component::Normal(name.as_ref())]);
                prop_assert!(!name.chars().any(char::is_control));
            }
        }
    }
}
