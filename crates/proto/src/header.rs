//! The header and the message: constants, [`Kind`], [`Header`], [`Message`],
//! and the functions that turn them into bytes and back.

use bytes::{Buf, BufMut, Bytes};
use serde::{Deserialize, Serialize};

use crate::Error;

/// The first two bytes of every message: `"ms"`.
///
/// They let a receiver reject stray datagrams (a DNS probe, a `socat` typo)
/// cheaply and with a clear message instead of misreading them as a header.
pub const MAGIC: [u8; 2] = *b"ms";

/// The protocol version this crate speaks.
pub const VERSION: u8 = 1;

/// The size of the fixed header in bytes.
///
/// magic (2) + version (1) + kind (1) + flags (4) + sequence (8) +
/// timestamp (8) + body length (4).
pub const HEADER_LEN: usize = 28;

/// The largest body this format can describe: `body_len` is a `u32`.
///
/// Transports impose tighter limits of their own (a UDP datagram, a TCP
/// frame); this is only the format's ceiling.
pub const MAX_BODY_LEN: usize = u32::MAX as usize;

/// [`Kind::Ping`] flag: the sender asks for statistics instead of an echo.
/// The [`Kind::Pong`] body is then two big-endian `u64`s about the
/// [`Kind::Discard`] messages the receiver has counted from this peer (on a
/// TCP connection: on that connection; over UDP: from that source address):
/// how many arrived, and how many of those arrived after one with a higher
/// `seq` (reordered): a [`Stats`](crate::Stats). Throughput measurements use
/// it to learn what arrived.
pub const FLAG_STATS: u32 = 1;

/// [`Kind::Ping`] flag: "stream to me". The body is a
/// [`SendRequest`](crate::SendRequest) (how long, and how large each
/// message); the receiver answers with [`Kind::Discard`] messages of that
/// size, `seq` from 1, for that long, then a [`Kind::Pong`] with this flag
/// (and the ping's `seq` and `timestamp_ns`) whose body is a
/// [`Streamed`](crate::Streamed): how many it sent. Served over
/// connections only: over UDP a forged source address would aim the
/// stream at anyone, so a datagram receiver ignores the flag (a plain
/// echo `Pong`, flags 0, as from a receiver that does not know it).
pub const FLAG_SEND: u32 = 2;

/// [`Kind::Data`] flag: this message answers another (a listener's
/// `--reply echo` or `upper`), and a receiver never answers it.
///
/// Over UDP a source address can be forged. Without the mark a reply was
/// a `Data` message like any other, so one datagram forged to come from
/// one echoing listener and sent to another (or to the first itself) had
/// them answer each other for ever, a core each (a "loop DoS", as
/// CVE-2024-2169 names it for UDP services; audit, round five).
pub const FLAG_REPLY: u32 = 1;

/// Flag of any kind: an authentication trailer follows the body, so the
/// message is not `header || body` alone and only [`auth`](crate::auth) can
/// open it.
///
/// It is the top bit so that it never collides with a per-kind flag, which
/// grow from bit 0. [`decode`] refuses such a message with
/// [`Error::NeedsSecret`]: without the secret, the trailer would otherwise
/// surface as a baffling body length mismatch.
pub const FLAG_AUTH: u32 = 0x8000_0000;

/// The one bincode configuration of the wire format: big-endian,
/// fixed-width integers, and a decode limit of exactly one header, so that
/// bincode itself can never be asked to read (or allocate) more.
const CONFIG: bincode::config::Configuration<
    bincode::config::BigEndian,
    bincode::config::Fixint,
    bincode::config::Limit<HEADER_LEN>,
> = bincode::config::standard()
    .with_big_endian()
    .with_fixed_int_encoding()
    .with_limit::<HEADER_LEN>();

/// What a message is for.
///
/// Each kind is one byte on the wire. Numbers are grouped by application so
/// that later ones fit without renumbering; a receiver rejects a number it
/// does not know with [`Error::UnknownKind`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(into = "u8", try_from = "u8")]
#[non_exhaustive]
pub enum Kind {
    /// An application message: `msg send` and `msg listen`.
    Data = 0x01,
    /// A latency probe; the receiver answers with a [`Kind::Pong`] carrying
    /// the same sequence number, timestamp and body.
    Ping = 0x02,
    /// The answer to a [`Kind::Ping`].
    Pong = 0x03,
    /// A one-way message that the receiver counts and otherwise discards
    /// (throughput measurements).
    Discard = 0x04,
    /// Opens a file transfer: the file's name, size, hash algorithm and
    /// permission bits (see [`file`](crate::file)).
    FileHeader = 0x10,
    /// The next piece of a file's contents; `seq` counts chunks from 0.
    FileChunk = 0x11,
    /// Closes a file transfer: the digest of the contents, which the sender
    /// could compute only once it had streamed them.
    FileEnd = 0x12,
    /// The receiver's verdict on a file: saved under a name it chose, or
    /// refused with a reason.
    FileResult = 0x13,
    /// Opens a folder transfer: the folder's name, mode, and how many files
    /// and bytes follow (see [`tree`](crate::tree)).
    TreeStart = 0x14,
    /// One entry of a folder: a folder to make or a file whose content
    /// follows, with its path relative to the folder.
    TreeEntry = 0x15,
    /// Closes a folder transfer; the receiver's last verdict answers it.
    TreeEnd = 0x16,
    /// The receiver's answer to a file header that asks to resume: how
    /// much of the file it already holds, and the digest of that prefix.
    FileOffer = 0x17,
    /// The sender's choice after a [`Kind::FileOffer`]: the offset its
    /// content starts from (the offer's, or 0 to start over).
    FileFrom = 0x18,
    /// Opens the authentication handshake: the client's nonce (see
    /// [`auth`](crate::auth)).
    AuthChallenge = 0x20,
    /// A proof of the secret: the server's nonce and proof, or the
    /// client's proof.
    AuthResponse = 0x21,
    /// The server's verdict on the client's proof.
    AuthResult = 0x22,
    /// A request to run a command on the peer: its argv (see
    /// [`exec`](crate::exec)).
    Command = 0x30,
    /// A piece of a running command's stdout or stderr.
    CommandOutput = 0x31,
    /// A piece of a running command's stdin; an empty body closes it.
    CommandInput = 0x32,
    /// How a command ended: its exit status, the signal that killed it, or
    /// why it was refused or stopped.
    CommandExit = 0x33,
    /// The peer reports an error; the body is a UTF-8 description.
    Error = 0x7f,
}

impl Kind {
    /// Every kind this version knows, in wire order.
    pub const ALL: [Self; 21] = [
        Self::Data,
        Self::Ping,
        Self::Pong,
        Self::Discard,
        Self::FileHeader,
        Self::FileChunk,
        Self::FileEnd,
        Self::FileResult,
        Self::TreeStart,
        Self::TreeEntry,
        Self::TreeEnd,
        Self::FileOffer,
        Self::FileFrom,
        Self::AuthChallenge,
        Self::AuthResponse,
        Self::AuthResult,
        Self::Command,
        Self::CommandOutput,
        Self::CommandInput,
        Self::CommandExit,
        Self::Error,
    ];
}

impl From<Kind> for u8 {
    fn from(kind: Kind) -> Self {
        kind as Self
    }
}

impl TryFrom<u8> for Kind {
    type Error = Error;

    fn try_from(byte: u8) -> Result<Self, Error> {
        KIND_OF_BYTE[usize::from(byte)].ok_or(Error::UnknownKind { kind: byte })
    }
}

/// Each byte's kind, if it names one: one load per decoded message rather
/// than a search of [`Kind::ALL`] (about 28 instructions).
const KIND_OF_BYTE: [Option<Kind>; 256] = {
    let mut table = [None; 256];
    let mut i = 0;
    while i < Kind::ALL.len() {
        table[Kind::ALL[i] as usize] = Some(Kind::ALL[i]);
        i += 1;
    }
    table
};

/// The fixed-size header in front of every body.
///
/// Field order is wire order; see the crate documentation for the layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    /// Always [`MAGIC`].
    pub magic: [u8; 2],
    /// The protocol version; [`VERSION`] for everything this crate writes.
    pub version: u8,
    /// What the message is for.
    pub kind: Kind,
    /// Per-kind flags grow from bit 0 ([`FLAG_STATS`]); the top bit,
    /// [`FLAG_AUTH`], means the same for every kind. Senders set 0 for bits
    /// they do not use and receivers ignore bits they do not know.
    pub flags: u32,
    /// The sender's sequence number; a reply carries the request's.
    pub seq: u64,
    /// The sender's clock when it sent the message, in nanoseconds since an
    /// epoch of the sender's choosing (0 when unused). A reply carries the
    /// request's, so the sender can compute a round-trip time on its own
    /// clock.
    pub timestamp_ns: u64,
    /// The number of body bytes that follow the header.
    pub body_len: u32,
}

/// One message: a header and its body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// What the message is for.
    pub kind: Kind,
    /// Reserved per-kind flags.
    pub flags: u32,
    /// The sender's sequence number.
    pub seq: u64,
    /// The sender's send time in nanoseconds, or 0.
    pub timestamp_ns: u64,
    /// The body; its length goes on the wire as `body_len`.
    pub body: Bytes,
}

impl Message {
    /// A message of `kind` with sequence number `seq` and no timestamp.
    pub fn new(kind: Kind, seq: u64, body: impl Into<Bytes>) -> Self {
        Self {
            kind,
            flags: 0,
            seq,
            timestamp_ns: 0,
            body: body.into(),
        }
    }

    /// Sets the send timestamp (the caller owns the clock).
    #[must_use]
    pub fn with_timestamp(mut self, timestamp_ns: u64) -> Self {
        self.timestamp_ns = timestamp_ns;
        self
    }

    /// The number of bytes [`encode`] writes for this message.
    pub fn encoded_len(&self) -> usize {
        HEADER_LEN + self.body.len()
    }

    /// The header that describes this message on the wire.
    ///
    /// # Errors
    ///
    /// [`Error::TooLarge`] if the body does not fit a `u32` length.
    pub fn header(&self) -> Result<Header, Error> {
        let body_len = u32::try_from(self.body.len()).map_err(|_| Error::TooLarge {
            len: self.encoded_len(),
            max: HEADER_LEN + MAX_BODY_LEN,
        })?;
        Ok(Header {
            magic: MAGIC,
            version: VERSION,
            kind: self.kind,
            flags: self.flags,
            seq: self.seq,
            timestamp_ns: self.timestamp_ns,
            body_len,
        })
    }
}

/// Appends `msg` (header, then body) to `dst`.
///
/// `dst` grows as needed; a caller that reuses one buffer allocates once.
///
/// # Errors
///
/// [`Error::TooLarge`] if the body does not fit the format's `u32` length.
pub fn encode<B: BufMut>(msg: &Message, dst: &mut B) -> Result<(), Error> {
    dst.put_slice(&encode_header(&msg.header()?));
    dst.put_slice(&msg.body);
    Ok(())
}

/// The 28 bytes of `header`.
pub fn encode_header(header: &Header) -> [u8; HEADER_LEN] {
    let mut out = [0u8; HEADER_LEN];
    // Cannot fail: every field is fixed-width and the sizes add up to
    // exactly HEADER_LEN, which the unit tests check.
    let written = bincode::serde::encode_into_slice(header, &mut out, CONFIG)
        .expect("a header always encodes to HEADER_LEN bytes");
    debug_assert_eq!(written, HEADER_LEN);
    out
}

/// Reads the header at the start of `src`, checking each field that a peer
/// could get wrong.
///
/// The version is checked before bincode sees the rest: a later version may
/// lay out everything after byte 3 differently.
///
/// # Errors
///
/// [`Error::Truncated`], [`Error::BadMagic`], [`Error::UnknownVersion`] or
/// [`Error::UnknownKind`].
pub fn decode_header(src: &[u8]) -> Result<Header, Error> {
    let Some(bytes) = src.get(..HEADER_LEN) else {
        return Err(Error::Truncated { len: src.len() });
    };
    let found = [bytes[0], bytes[1]];
    if found != MAGIC {
        return Err(Error::BadMagic { found });
    }
    if bytes[2] != VERSION {
        return Err(Error::UnknownVersion { version: bytes[2] });
    }
    Kind::try_from(bytes[3])?;
    let (header, _) = bincode::serde::decode_from_slice::<Header, _>(bytes, CONFIG)
        .map_err(|err| Error::Malformed(err.to_string()))?;
    Ok(header)
}

/// Decodes one whole message: `src` must hold exactly one header and the body
/// it declares, as a UDP datagram or a TCP frame does.
///
/// The body is a slice of `src`; nothing is copied or allocated.
///
/// # Errors
///
/// Any header error from [`decode_header`], [`Error::NeedsSecret`] if the
/// header has [`FLAG_AUTH`] set ([`auth`](crate::auth) opens those), or
/// [`Error::BodyLengthMismatch`] if the body is shorter or longer than the
/// header says.
pub fn decode(mut src: Bytes) -> Result<Message, Error> {
    let header = decode_header(&src)?;
    // Before the length check: a tagged message always has trailer bytes
    // after its body, and "body length mismatch" would send its reader
    // looking for a framing bug instead of a missing secret.
    if header.flags & FLAG_AUTH != 0 {
        return Err(Error::NeedsSecret);
    }
    let actual = src.len() - HEADER_LEN;
    if actual != header.body_len as usize {
        return Err(Error::BodyLengthMismatch {
            declared: header.body_len,
            actual,
        });
    }
    // Advanced in place, not sliced: a slice would take a second reference
    // to the shared buffer and drop the first, two atomic operations on
    // every message a round trip decodes.
    src.advance(HEADER_LEN);
    Ok(Message {
        kind: header.kind,
        flags: header.flags,
        seq: header.seq,
        timestamp_ns: header.timestamp_ns,
        body: src,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;
    use proptest::prelude::*;

    /// The test vector printed in `docs/wire.md`: a Data message, sequence 1,
    /// timestamp 0x0102030405060708, flags 0, body "hello".
    const VECTOR: &[u8] = b"\x6d\x73\x01\x01\x00\x00\x00\x00\
        \x00\x00\x00\x00\x00\x00\x00\x01\
        \x01\x02\x03\x04\x05\x06\x07\x08\
        \x00\x00\x00\x05hello";

    fn vector_message() -> Message {
        Message::new(Kind::Data, 1, "hello").with_timestamp(0x0102_0304_0506_0708)
    }

    fn encoded(msg: &Message) -> Bytes {
        let mut buf = BytesMut::new();
        encode(msg, &mut buf).unwrap();
        buf.freeze()
    }

    #[test]
    fn encodes_the_documented_vector() {
        assert_eq!(&encoded(&vector_message())[..], VECTOR);
    }

    #[test]
    fn decodes_the_documented_vector() {
        assert_eq!(
            decode(Bytes::from_static(VECTOR)).unwrap(),
            vector_message()
        );
    }

    #[test]
    fn docs_carry_the_vector() {
        let first = &crate::doc::vectors_after("\n## One message")[0];
        assert_eq!(*first, crate::doc::hex(VECTOR));
    }

    #[test]
    fn every_byte_reads_as_the_kind_it_names_or_none() {
        for byte in 0..=u8::MAX {
            let named = Kind::ALL.into_iter().find(|kind| u8::from(*kind) == byte);
            match Kind::try_from(byte) {
                Ok(kind) => assert_eq!(Some(kind), named, "{byte:#04x}"),
                Err(err) => {
                    assert_eq!(named, None, "{byte:#04x}");
                    assert_eq!(err, Error::UnknownKind { kind: byte });
                }
            }
        }
    }

    #[test]
    fn kind_numbers_are_stable() {
        let numbers: Vec<u8> = Kind::ALL.iter().map(|k| u8::from(*k)).collect();
        assert_eq!(
            numbers,
            [
                0x01, 0x02, 0x03, 0x04, 0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x20,
                0x21, 0x22, 0x30, 0x31, 0x32, 0x33, 0x7f
            ]
        );
    }

    #[test]
    fn empty_body_is_a_bare_header() {
        let bytes = encoded(&Message::new(Kind::Data, 7, Bytes::new()));
        assert_eq!(bytes.len(), HEADER_LEN);
        assert_eq!(decode(bytes).unwrap().body, Bytes::new());
    }

    #[test]
    fn rejects_truncated_input() {
        assert_eq!(
            decode(Bytes::from_static(&VECTOR[..27])),
            Err(Error::Truncated { len: 27 })
        );
        assert_eq!(decode(Bytes::new()), Err(Error::Truncated { len: 0 }));
    }

    #[test]
    fn rejects_bad_magic() {
        let mut bytes = VECTOR.to_vec();
        bytes[0] = b'x';
        assert_eq!(decode(bytes.into()), Err(Error::BadMagic { found: *b"xs" }));
    }

    #[test]
    fn rejects_unknown_version() {
        let mut bytes = VECTOR.to_vec();
        bytes[2] = 2;
        assert_eq!(
            decode(bytes.into()),
            Err(Error::UnknownVersion { version: 2 })
        );
    }

    #[test]
    fn rejects_unknown_kind() {
        let mut bytes = VECTOR.to_vec();
        bytes[3] = 0x55;
        assert_eq!(decode(bytes.into()), Err(Error::UnknownKind { kind: 0x55 }));
    }

    #[test]
    fn rejects_short_and_long_bodies() {
        assert_eq!(
            decode(Bytes::from_static(&VECTOR[..VECTOR.len() - 1])),
            Err(Error::BodyLengthMismatch {
                declared: 5,
                actual: 4
            })
        );
        let mut long = VECTOR.to_vec();
        long.push(b'!');
        assert_eq!(
            decode(long.into()),
            Err(Error::BodyLengthMismatch {
                declared: 5,
                actual: 6
            })
        );
    }

    #[test]
    fn a_huge_declared_body_allocates_nothing() {
        let mut bytes = VECTOR[..HEADER_LEN].to_vec();
        bytes[24..28].copy_from_slice(&u32::MAX.to_be_bytes());
        assert_eq!(
            decode(bytes.into()),
            Err(Error::BodyLengthMismatch {
                declared: u32::MAX,
                actual: 0
            })
        );
    }

    #[test]
    fn a_tagged_message_needs_a_secret() {
        // A UDP tagged datagram: header with FLAG_AUTH, body, then a 48-byte
        // trailer that `body_len` does not count.
        let mut bytes = VECTOR.to_vec();
        bytes[4..8].copy_from_slice(&FLAG_AUTH.to_be_bytes());
        bytes.extend_from_slice(&[0xaa; 48]);
        assert_eq!(decode(bytes.clone().into()), Err(Error::NeedsSecret));
        // Even with no trailer at all, the flag alone decides.
        bytes.truncate(VECTOR.len());
        assert_eq!(decode(bytes.into()), Err(Error::NeedsSecret));
        assert_eq!(
            Error::NeedsSecret.to_string(),
            "this peer uses a secret, and this receiver has none"
        );
    }

    #[test]
    fn decode_header_still_reads_a_tagged_header() {
        // `auth` parses tagged headers with it, so it must not refuse them.
        let mut bytes = VECTOR.to_vec();
        bytes[4..8].copy_from_slice(&(FLAG_AUTH | FLAG_STATS).to_be_bytes());
        let header = decode_header(&bytes).unwrap();
        assert_eq!(header.flags, FLAG_AUTH | FLAG_STATS);
    }

    fn any_kind() -> impl Strategy<Value = Kind> {
        proptest::sample::select(Kind::ALL.to_vec())
    }

    proptest! {
        #[test]
        fn round_trips_any_message(
            kind in any_kind(),
            flags in any::<u32>(),
            seq in any::<u64>(),
            timestamp_ns in any::<u64>(),
            body in proptest::collection::vec(any::<u8>(), 0..2048),
        ) {
            // FLAG_AUTH messages decode only through `auth`.
            let flags = flags & !FLAG_AUTH;
            let msg = Message { kind, flags, seq, timestamp_ns, body: body.into() };
            let bytes = encoded(&msg);
            prop_assert_eq!(bytes.len(), msg.encoded_len());
            prop_assert_eq!(decode(bytes).unwrap(), msg);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            if let Ok(msg) = decode(bytes.clone().into()) {
                // Whatever decodes re-encodes to the very same bytes.
                prop_assert_eq!(&encoded(&msg)[..], &bytes[..]);
            }
        }

        #[test]
        fn valid_prefix_with_random_tail_never_panics(
            kind in any_kind(),
            tail in proptest::collection::vec(any::<u8>(), 0..64),
        ) {
            let mut bytes = encoded(&Message::new(kind, 1, Bytes::new())).to_vec();
            bytes.truncate(4);
            bytes.extend_from_slice(&tail);
            let _ = decode(bytes.into());
        }
    }
}
