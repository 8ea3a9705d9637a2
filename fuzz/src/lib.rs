//! What the fuzz targets and the seed writer share: the fixed keys, the
//! input formats, and a reader for them.
//!
//! The formats are plain bytes rather than `arbitrary`-derived structures,
//! so that a seed can be written as the real wire encoding it stands for
//! (`examples/seeds.rs`), and a crash file can be read with `xxd`.
//!
//! | target       | input                                                            |
//! |--------------|------------------------------------------------------------------|
//! | `decode`     | one message's bytes, as a UDP datagram or a TCP frame holds them |
//! | `tcp_frames` | [`tcp_frames`]: flags, piece lengths, then the TCP stream        |
//! | `stats`      | a pong's body                                                    |
//! | `auth`       | [`auth`]: a selector, then what that decoder reads               |
//! | `file`       | [`file`]: a selector, then what that decoder reads               |
//! | `exec`       | [`kind_and_body`]: a kind byte, then the body                    |
//! | `tree`       | [`tree`]: a size, then messages (kind, seq, length, body)         |

use bytes::Bytes;
use msg_proto::auth::{KEY_LEN, NONCE_LEN, Secret};
use msg_proto::{Kind, Message};

/// The shared secret of every handshake and datagram in the `auth` target.
pub const SECRET: &[u8] = b"msg fuzz secret";

/// The client's nonce in the `auth` target's handshakes.
pub const NC: [u8; NONCE_LEN] = [0x11; NONCE_LEN];

/// The server's nonce in the `auth` target's handshakes.
pub const NS: [u8; NONCE_LEN] = [0x22; NONCE_LEN];

/// The key of every tagged TCP frame (`auth` and `tcp_frames`).
pub const FRAME_KEY: [u8; KEY_LEN] = [0x33; KEY_LEN];

/// [`SECRET`] as a [`Secret`].
pub fn secret() -> Secret {
    Secret::new(SECRET.to_vec()).expect("not empty")
}

/// A message of the kind in the first byte with the rest as its body, or
/// `None` for a byte that is no kind: the shape every message decoder
/// above `msg_proto::decode` sees. Header fields other than the kind are
/// 0, as the decoders ignore them.
pub fn kind_and_body(data: &[u8]) -> Option<Message> {
    let (&kind, body) = data.split_first()?;
    let kind = Kind::try_from(kind).ok()?;
    Some(Message::new(kind, 0, Bytes::copy_from_slice(body)))
}

/// The inverse of [`kind_and_body`], for seeds.
pub fn kind_and_body_bytes(msg: &Message) -> Vec<u8> {
    let mut out = vec![u8::from(msg.kind)];
    out.extend_from_slice(&msg.body);
    out
}

/// Reads the fixed-width big-endian fields of an input; past the end,
/// everything reads as absent.
#[derive(Debug)]
pub struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    /// A reader at the start of `data`.
    pub fn new(data: &'a [u8]) -> Self {
        Self(data)
    }

    /// The next `n` bytes, or all that is left if fewer.
    pub fn take(&mut self, n: usize) -> &'a [u8] {
        let (head, tail) = self.0.split_at(n.min(self.0.len()));
        self.0 = tail;
        head
    }

    /// The next byte.
    pub fn u8(&mut self) -> Option<u8> {
        self.array().map(|[b]| b)
    }

    /// The next big-endian `u16`.
    pub fn u16(&mut self) -> Option<u16> {
        self.array().map(u16::from_be_bytes)
    }

    /// The next big-endian `u64`.
    pub fn u64(&mut self) -> Option<u64> {
        self.array().map(u64::from_be_bytes)
    }

    /// Everything left.
    pub fn rest(&mut self) -> &'a [u8] {
        self.take(self.0.len())
    }

    /// Whether nothing is left.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        let (head, tail) = self.0.split_first_chunk::<N>()?;
        self.0 = tail;
        Some(*head)
    }
}

/// The `tcp_frames` input: `flags (1) || count (1) || count piece lengths
/// (1 each) || stream`.
///
/// The stream is fed to the decoder in pieces of `length + 1` bytes, taking
/// the lengths in turn and starting over after the last (a count of 0 feeds
/// it whole).
pub mod tcp_frames {
    /// Flag: the codec's limit is the default, 16 MiB, rather than
    /// [`SMALL_MAX_FRAME`].
    pub const DEFAULT_LIMIT: u8 = 1;
    /// Flag: the codec verifies tagged frames under
    /// [`FRAME_KEY`](crate::FRAME_KEY), as an authenticated connection's does.
    pub const OPENER: u8 = 2;
    /// The small limit: room for a tagged frame with a few body bytes, so
    /// that valid frames, frames just over it and frames far over it are all
    /// a few mutations apart.
    pub const SMALL_MAX_FRAME: usize = 100;
    /// At most this many piece lengths (`count` is taken modulo it plus 1).
    pub const MAX_PIECES: u8 = 32;

    /// A `tcp_frames` input, for seeds.
    pub fn input(flags: u8, pieces: &[u8], stream: &[u8]) -> Vec<u8> {
        assert!(pieces.len() <= usize::from(MAX_PIECES));
        let mut out = vec![flags, pieces.len() as u8];
        out.extend_from_slice(pieces);
        out.extend_from_slice(stream);
        out
    }
}

/// The `auth` input: a selector byte (taken modulo 7), then:
///
/// - [`CHALLENGE`], [`RESPONSE`], [`PROOF`], [`RESULT`]: a
///   [`kind_and_body`](crate::kind_and_body) message for that handshake
///   step, the steps before it played honestly with [`NC`](crate::NC) and
///   [`NS`](crate::NS);
/// - [`FRAMES`]: frames for one [`FrameOpener`](msg_proto::auth::FrameOpener),
///   each a `u16` length and that many bytes (the last may be short);
/// - [`DATAGRAM`]: one datagram for a
///   [`DatagramOpener`](msg_proto::auth::DatagramOpener) of client datagrams;
/// - [`WINDOW`]: a `u64` base, then `i16` steps: each counter is the highest
///   accepted so far (the base before any) plus the step.
pub mod auth {
    /// `ServerHandshake::on_challenge`.
    pub const CHALLENGE: u8 = 0;
    /// `ClientHandshake::on_response`.
    pub const RESPONSE: u8 = 1;
    /// `ServerAwaitProof::on_proof`.
    pub const PROOF: u8 = 2;
    /// `ClientAwaitResult::on_result`.
    pub const RESULT: u8 = 3;
    /// `FrameOpener::open`, frame after frame.
    pub const FRAMES: u8 = 4;
    /// `DatagramOpener::open`.
    pub const DATAGRAM: u8 = 5;
    /// `ReplayWindow`, against a model.
    pub const WINDOW: u8 = 6;
    /// How many selectors there are.
    pub const SELECTORS: u8 = 7;
}

/// The `file` input: a selector byte (taken modulo 3), then:
///
/// - [`MESSAGE`]: a [`kind_and_body`](crate::kind_and_body) message for
///   `FileHeader`, `FileEnd` and `FileResult::from_message`;
/// - [`NAME`]: a name for `FileName::new` (its longest UTF-8 prefix);
/// - [`RECEIVING`]: the announced size (`u64`), then chunks for a
///   `Receiving`, each `kind (1) || seq (1) || length (u16) || bytes`; the
///   last may be short.
pub mod file {
    /// The three message decoders.
    pub const MESSAGE: u8 = 0;
    /// `FileName::new`.
    pub const NAME: u8 = 1;
    /// `Receiving`, chunk after chunk.
    pub const RECEIVING: u8 = 2;
    /// How many selectors there are.
    pub const SELECTORS: u8 = 3;
}

/// The `tree` target's input: a u64 size (what a resume offer must fit),
/// then messages, each a kind byte, a seq byte, a u16 length and that
/// many bytes of body.
pub mod tree {
    use super::{Bytes, Kind, Message, Reader};

    /// The size and the messages of an input; `None` when it has no size.
    pub fn messages(data: &[u8]) -> Option<(u64, Vec<Message>)> {
        let mut input = Reader::new(data);
        let size = input.u64()?;
        let mut out = Vec::new();
        while let (Some(kind), Some(seq), Some(len)) = (input.u8(), input.u8(), input.u16()) {
            let kind = Kind::try_from(kind).ok()?;
            let body = Bytes::copy_from_slice(input.take(usize::from(len)));
            out.push(Message::new(kind, u64::from(seq), body));
        }
        Some((size, out))
    }

    /// The inverse of [`messages`], for seeds.
    pub fn bytes(size: u64, messages: &[Message]) -> Vec<u8> {
        let mut out = size.to_be_bytes().to_vec();
        for msg in messages {
            out.push(msg.kind.into());
            // Seeds number their messages below 256.
            out.push(msg.seq as u8);
            // Seeds' bodies are short.
            out.extend((msg.body.len() as u16).to_be_bytes());
            out.extend_from_slice(&msg.body);
        }
        out
    }
}
