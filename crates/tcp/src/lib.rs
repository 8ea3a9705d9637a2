//! msg over TCP, a Unix stream socket, or any byte stream: a length prefix in front of every message.
//!
//! TCP delivers a byte stream, not messages. Two quick writes can arrive as
//! one read ("sticky packets") and one write can arrive as several, so the
//! receiver cannot know where a message ends unless the sender says so. This
//! crate says so the classic way: each message travels as a *frame*, a
//! 4-byte big-endian length followed by that many bytes.
//!
//! ```text
//! +----------------+------------------------------------------+
//! | length: u32 BE | msg header (28 bytes) | body (length-28) |
//! +----------------+------------------------------------------+
//! ```
//!
//! The frame length is checked against a maximum ([`DEFAULT_MAX_FRAME`]
//! unless configured) *before* anything is reserved for it, so a peer that
//! announces 4 GiB gets an error, not an allocation.
//!
//! # Any byte stream
//!
//! Nothing in the framing is TCP's: a Unix stream socket or a TLS session
//! has no message boundaries either. So [`Connection`] is generic over its
//! stream, as tokio-util's `Framed<T, U>` and h2's `handshake<T>` are:
//! reading and writing frames (and so msg-net's authentication, files and
//! commands) asks only `AsyncRead + AsyncWrite + Unpin`. The little more a
//! connection needs of a stream (its peer's [`PeerAddr`], its socket
//! options, owned halves, whether input waits) is the [`Stream`] trait,
//! and what a [`Listener`] needs of its socket is [`Accept`]; both are
//! implemented once per kind of stream in a file of its own: TCP's in
//! `tcp.rs`, the default, which also holds what TCP alone has (binding,
//! listen backlog, keepalive). A new kind of stream is a new file beside
//! it.
//!
//! # Authentication
//!
//! With a shared secret, the caller first runs the handshake of
//! `msg_proto::auth` over the connection as four ordinary frames, then hands
//! the keys to [`Connection::authenticate`]. From then on every frame, both
//! ways, carries a 32-byte tag inside it (the length counts it, and so does
//! the maximum), and a frame that fails verification is [`Error::Auth`]:
//!
//! ```text
//! +----------------+-----------------------------------------------------+
//! | length: u32 BE | header, flag 0x80000000 | body | tag (32 bytes)      |
//! +----------------+-----------------------------------------------------+
//! ```
//!
//! The tag covers a count of the frames sent that way, which both ends keep
//! and neither sends, so the codec holds state and is `Clone` but not
//! `Copy`. `docs/auth.md` specifies the bytes.
//!
//! # Where things live
//!
//! - `codec.rs`: [`Codec`], the frame format and its limit
//!   ([`LENGTH_PREFIX_LEN`], [`DEFAULT_MAX_FRAME`]): the diagram above.
//! - `length.rs`: [`LengthCodec`], the same prefix with a bare body behind
//!   it and no msg header: for peers that are not msg.
//! - `connection/`: [`Connection<S>`](Connection), any byte stream with
//!   the codec on it, and the [`Options`] it is made with; `split.rs` its
//!   [`ReadHalf`] and [`WriteHalf`].
//! - `stream.rs`: [`Stream`], what a connection asks of its stream beyond
//!   bytes, and [`Accept`], what a listener asks of its socket.
//! - `peer.rs`: [`PeerAddr`], who a connection is with: an IP address and
//!   port for TCP, a Unix socket's path or process.
//! - `tcp.rs`: [`tcp`], one file per kind of stream: TCP's [`Stream`] and
//!   [`Accept`], [`Connection::connect`], [`Listener::bind`], and what is
//!   TCP's alone, for both of msg's engines: listening (the backlog,
//!   `SO_REUSEADDR`) and keepalive.
//! - `unix/`: [`unix`], the Unix stream socket's: its addresses (a path
//!   or an abstract name, within `sun_path`) and the peer's credentials
//!   (`SO_PEERCRED`) in `mod.rs`; the listener's socket file (created
//!   owner-only, a stale one replaced, a live one refused, removed on
//!   drop) in `socket_file.rs`.
//! - `seqpacket.rs`: [`seqpacket`], `SOCK_SEQPACKET`: a connection whose
//!   packets keep their boundaries, as a [`Stream`] for both engines.
//! - `tls.rs`: [`tls`], a TLS session (tokio-rustls's) over any of the
//!   above as a [`Stream`] too, and TLS's first bytes told from a length
//!   prefix, so that a plain reader meeting a TLS peer says so.
//! - `listener.rs`: [`Listener<L>`](Listener), which accepts
//!   [`Connection`]s from any [`Accept`].
//! - `error.rs`: [`Error`], everything the above can report.
//!
//! # The codec
//!
//! [`Codec`] implements tokio-util's `Decoder` and `Encoder` and so plugs into
//! `Framed`; it reads and writes the same bytes as tokio-util's
//! `LengthDelimitedCodec` with a 4-byte big-endian length (a test checks
//! both directions), but peeks at the length without consuming it, so its
//! errors name the announced length, and encodes the header and body straight
//! into the write buffer, one copy of the body instead of two.

#![warn(missing_docs)]

mod codec;
mod connection;
mod error;
mod length;
mod listener;
mod peer;
mod readiness;
pub mod seqpacket;
mod stream;
pub mod tcp;
pub mod tls;
pub mod unix;

pub use codec::{Codec, DEFAULT_MAX_FRAME, LENGTH_PREFIX_LEN, READ_STEP};
pub use connection::{
    Connection, DIRECT_WRITE, Options, ReadHalf, WriteHalf, discard, write_all_within, write_within,
};
pub use error::Error;
pub use length::LengthCodec;
pub use listener::Listener;
pub use peer::PeerAddr;
pub use stream::{Accept, Stream};
