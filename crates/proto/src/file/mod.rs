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
    /// A [`Kind::FileResult`] status other than 0 (saved), 1 (refused)
    /// or 2 (ready).
    #[error("unknown file result status {status}; expected 0, 1 or 2")]
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

mod header;
mod name;
mod receiving;
mod resume;

pub use header::{FileEnd, FileHeader, HashAlgorithm, chunk};
pub use name::{
    CHECK_PREFIX, FileName, KEPT_PREFIX, NameProblem, PARTIAL_PREFIX, RESERVED_PREFIXES,
};
pub use receiving::{FileResult, Receiving};
pub use resume::{FLAG_RESUME, FileFrom, FileOffer};

/// `digest` in lower-case hex, two digits a byte, as `b3sum` prints it.
pub fn hex(digest: &[u8]) -> String {
    // By table, not `write!` per byte: a folder of 10,000 files prints
    // 10,000 digests at each end, and the formatter was most of the cost.
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(digest.len() * 2);
    for byte in digest {
        out.push(char::from(DIGITS[usize::from(byte >> 4)]));
        out.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
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
    use bytes::{Bytes, BytesMut};
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
        // A receiver's own names, whatever the ASCII case.
        assert_eq!(refusal(".msg-partial-aB3xY9"), Reserved(".msg-partial-"));
        assert_eq!(
            refusal(".MSG-Resume-0123456789abcdef0123456789abcdef"),
            Reserved(".msg-resume-")
        );
        assert_eq!(refusal(".msg-check-x"), Reserved(".msg-check-"));
        // Shown as another name: "invoiceexe.pdf".
        assert_eq!(refusal("invoice\u{202e}fdp.exe"), Invisible('\u{202e}'));
        assert_eq!(refusal("a\u{200b}b"), Invisible('\u{200b}'));
        assert_eq!(refusal("a\u{2028}b"), Invisible('\u{2028}'));
        assert_eq!(refusal("\u{feff}a"), Invisible('\u{feff}'));
        assert_eq!(refusal("a\u{2067}b"), Invisible('\u{2067}'));
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
            ".msg-config",
            ".msg-partial",
            // The zero-width non-joiner and joiner belong to Persian words
            // and to emoji.
            "\u{646}\u{627}\u{645}\u{647}\u{200c}\u{647}\u{627}.txt",
            "\u{1f469}\u{200d}\u{1f4bb}.png",
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
        assert_eq!(
            text("invoice\u{202e}fdp.exe"),
            r#"refused file name "invoice\u{202e}fdp.exe": it contains \u{202e}, which is not seen and changes how the rest of the name is shown"#
        );
        assert_eq!(
            text(".msg-partial-x"),
            r#"refused file name ".msg-partial-x": it begins with ".msg-partial-", as the receiver's own files in the save directory do"#
        );
        // Whatever the name, no control character reaches the text, nor
        // one that hides.
        for name in [
            "\x1b[2J",
            "a\0b",
            "\n",
            "\r\x07\u{9b}",
            "a\u{202e}b\u{2066}",
        ] {
            let text = text(name);
            assert!(!text.chars().any(char::is_control), "{name:?}");
            assert!(!text.contains(['\u{202e}', '\u{2066}']), "{name:?}");
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
        let every: Vec<u8> = (0..=255).collect();
        let formatted: String = every.iter().map(|byte| format!("{byte:02x}")).collect();
        assert_eq!(hex(&every), formatted);
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
