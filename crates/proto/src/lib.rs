//! The msg wire format, sans-IO: bytes in, messages out.
//!
//! This crate knows nothing of sockets, runtimes or clocks. A caller hands it
//! a [`Message`] (and the time, if it wants a timestamp on the wire) and gets
//! bytes; it hands it the bytes of one whole message and gets a [`Message`] or
//! a typed [`Error`]. Where one message ends is the transport's business: a
//! UDP datagram is one message, and a TCP stream carries each message behind a
//! 4-byte length prefix (see `msg-tcp`).
//!
//! # Where things live
//!
//! - `header.rs`: the constants ([`MAGIC`], [`VERSION`], [`HEADER_LEN`],
//!   [`MAX_BODY_LEN`], [`FLAG_STATS`]), [`Kind`], [`Header`], [`Message`],
//!   and [`encode`], [`decode`], [`encode_header`], [`decode_header`]: the
//!   diagram below, in code.
//! - `stats.rs`: [`Stats`], the body of a statistics pong (see
//!   [`FLAG_STATS`]), written and parsed in one place, and
//!   [`DiscardCounter`], which counts a peer's discards for it.
//! - `send.rs`: the reverse stream: [`SendRequest`], the body of a ping
//!   with [`FLAG_SEND`] that asks the listener to stream `Discard`s back,
//!   and [`Streamed`], the body of the pong that ends that stream.
//! - `error.rs`: [`Error`], every way a message's bytes can be wrong.
//! - [`auth`]: the shared-secret handshake, tagged TCP frames and tagged UDP
//!   datagrams with their replay window, as state machines that take nonces
//!   and keys from the caller ([`FLAG_AUTH`] marks a tagged message).
//! - [`file`](mod@file): file transfer: the bodies of [`Kind::FileHeader`],
//!   [`Kind::FileChunk`], [`Kind::FileEnd`] and [`Kind::FileResult`], the
//!   validated [`file::FileName`] that keeps a peer inside the save
//!   directory, and [`file::Receiving`], which checks each chunk against the
//!   header before the caller writes it.
//!   A header with [`file::FLAG_RESUME`] asks to resume: the receiver
//!   answers [`Kind::FileOffer`] (what it holds, and its digest) and the
//!   sender [`Kind::FileFrom`] (where its content starts).
//! - [`tree`]: folders: [`Kind::TreeStart`], a [`Kind::TreeEntry`] per
//!   folder or file (each file's content as a single file's), and
//!   [`Kind::TreeEnd`]; the validated [`tree::TreePath`] that keeps every
//!   entry inside the folder, and [`tree::TreeReceiving`], which reads the
//!   stream and refuses a bad entry alone.
//! - [`exec`]: remote commands: the argv of [`Kind::Command`] (bytes, no
//!   shell), output chunks per stream, stdin, and how the command ended.
//!
//! # Layout
//!
//! Every message is a fixed 28-byte header followed by the body. All integers
//! are big-endian and fixed-width:
//!
//! ```text
//!  0       2   3   4               8                              16
//! +-------+---+---+---------------+-------------------------------+
//! | magic |ver|knd|     flags     |            sequence           |
//! | "ms"  | 1 |   |      u32      |              u64              |
//! +-------+---+---+---------------+-------------------------------+
//! 16                              24              28
//! +-------------------------------+---------------+---------------
//! |          timestamp_ns         |   body_len    |  body ...
//! |              u64              |      u32      |  (body_len bytes)
//! +-------------------------------+---------------+---------------
//! ```
//!
//! `docs/wire.md` describes every field and carries a hex test vector that
//! the unit tests in `header.rs` check byte for byte.
//!
//! # Decoding never trusts the peer
//!
//! [`decode`] checks the length, the magic, the version and the kind before
//! anything else, checks `body_len` against what actually arrived, and never
//! allocates: the body it returns is a slice of the input
//! [`Bytes`](bytes::Bytes).
//!
//! The header is encoded with bincode behind this crate's API only, so the
//! encoder can be swapped without touching any other crate.

#![warn(missing_docs)]

pub mod auth;
mod error;
pub mod exec;
pub mod file;
mod header;
mod send;
mod stats;
pub mod tree;

pub use error::Error;
pub use header::{
    FLAG_AUTH, FLAG_REPLY, FLAG_SEND, FLAG_STATS, HEADER_LEN, Header, Kind, MAGIC, MAX_BODY_LEN,
    Message, VERSION, decode, decode_header, encode, encode_header,
};
pub use send::{SendRequest, Streamed};
pub use stats::{DiscardCounter, Stats};

/// What the unit tests share: the hex vectors of `docs/wire.md`.
#[cfg(test)]
mod doc {
    /// The hex digits of every ```hex block after `marker` in
    /// `docs/wire.md`, block by block.
    pub(crate) fn vectors_after(marker: &str) -> Vec<String> {
        include_str!("../../../docs/wire.md")
            .split_once(marker)
            .unwrap_or_else(|| panic!("docs/wire.md has no {marker:?}"))
            .1
            .split("```hex")
            .skip(1)
            .map(|rest| {
                rest.split("```")
                    .next()
                    .unwrap_or_default()
                    .chars()
                    .filter(char::is_ascii_hexdigit)
                    .collect()
            })
            .collect()
    }

    /// `bytes` as the blocks hold them: lower-case hex digits.
    pub(crate) fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }
}
