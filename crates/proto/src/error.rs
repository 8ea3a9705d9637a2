//! [`Error`]: everything that can be wrong with a message's bytes.

use crate::Stats;
use crate::header::{HEADER_LEN, MAGIC, VERSION};

/// Everything that can be wrong with a message's bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Fewer bytes than a header arrived.
    #[error("truncated message: {len} bytes, but a header alone is {HEADER_LEN}")]
    Truncated {
        /// How many bytes arrived.
        len: usize,
    },
    /// The first two bytes are not [`MAGIC`]: this is not a msg message.
    #[error("not a msg message: starts with {found:02x?}, expected {MAGIC:02x?} (\"ms\")")]
    BadMagic {
        /// The two bytes found.
        found: [u8; 2],
    },
    /// A protocol version this crate does not speak.
    #[error("unknown protocol version {version}; this msg speaks version {VERSION}")]
    UnknownVersion {
        /// The version byte found.
        version: u8,
    },
    /// A kind byte this version does not define.
    #[error("unknown message kind 0x{kind:02x}")]
    UnknownKind {
        /// The kind byte found.
        kind: u8,
    },
    /// The header's `body_len` disagrees with the bytes that arrived.
    #[error("body length mismatch: header says {declared} bytes, {actual} arrived")]
    BodyLengthMismatch {
        /// What the header declared.
        declared: u32,
        /// What arrived after the header.
        actual: usize,
    },
    /// A message larger than the limit in force.
    #[error("message is {len} bytes; the limit is {max}")]
    TooLarge {
        /// The message's size, header included.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The header bytes passed every check above but bincode rejected them.
    /// Kept for completeness; the checks above make it unreachable for
    /// version 1.
    #[error("malformed header: {0}")]
    Malformed(String),
    /// The message carries [`FLAG_AUTH`](crate::FLAG_AUTH): its peer
    /// authenticates with a shared secret, and this receiver was given none.
    #[error("this peer uses a secret, and this receiver has none")]
    NeedsSecret,
    /// A statistics pong's body is too short to hold even the received
    /// count; see [`Stats::parse`].
    #[error("a statistics answer of {len} bytes; expected {}", Stats::BODY_LEN)]
    StatsTooShort {
        /// How many body bytes arrived.
        len: usize,
    },
    /// A request to stream ([`SendRequest`](crate::SendRequest)) is too
    /// short for its fields.
    #[error(
        "a request to stream of {len} bytes; expected {}",
        crate::SendRequest::BODY_LEN
    )]
    SendRequestTooShort {
        /// How many body bytes arrived.
        len: usize,
    },
    /// A request to stream for no time, or for longer than
    /// [`SendRequest::MAX_DURATION`](crate::SendRequest::MAX_DURATION).
    #[error("a request to stream for {micros} µs; the listener streams for 1 µs to 1 hour")]
    SendDuration {
        /// The duration asked for, in microseconds.
        micros: u64,
    },
    /// A request to stream messages larger than the connection carries.
    #[error("a request to stream {size}-byte messages; this connection carries at most {max}")]
    SendSize {
        /// The body size asked for.
        size: u32,
        /// The largest body the connection carries.
        max: usize,
    },
    /// The answer that ends a stream ([`Streamed`](crate::Streamed)) is
    /// too short to hold the count.
    #[error(
        "a stream's closing answer of {len} bytes; expected {}",
        crate::Streamed::BODY_LEN
    )]
    StreamedTooShort {
        /// How many body bytes arrived.
        len: usize,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_read_as_sentences() {
        assert_eq!(
            Error::UnknownKind { kind: 0x55 }.to_string(),
            "unknown message kind 0x55"
        );
        assert_eq!(
            Error::BadMagic { found: *b"GE" }.to_string(),
            "not a msg message: starts with [47, 45], expected [6d, 73] (\"ms\")"
        );
    }
}
