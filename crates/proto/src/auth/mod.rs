//! Shared-secret authentication, sans-IO: a TCP handshake, tagged TCP frames
//! and tagged UDP datagrams.
//!
//! Both ends hold the same secret. Nothing here encrypts: bodies still travel
//! in clear. What the secret buys is that a peer who does not know it can
//! neither pass for one who does nor alter, drop, replay, reorder or reflect a
//! message without the receiver noticing. `docs/auth.md` is the byte-level
//! specification, with test vectors that the unit tests below recompute.
//!
//! Like the rest of this crate, nothing here touches a socket, a clock or a
//! random number generator: nonces and session ids come from the caller,
//! who owns the entropy, and every function is a pure step from bytes to
//! bytes, so each can be tested with fixed inputs.
//!
//! # TCP
//!
//! ```text
//! client                                              server
//!   | AuthChallenge  Nc                                 |
//!   |-------------------------------------------------->|
//!   |                AuthResponse  Ns || proof_s        |
//!   |<--------------------------------------------------|
//!   | AuthResponse  proof_c          (if proof_s is ok) |
//!   |-------------------------------------------------->|
//!   |                AuthResult  0 accepted / 1 rejected|
//!   |<--------------------------------------------------|
//!   | header|FLAG_AUTH || body || tag(k_cs, counter)    |
//!   |<=================================================>|
//! ```
//!
//! [`ClientHandshake`] and [`ServerHandshake`] are the two state machines;
//! each step consumes the state, so a finished or failed handshake cannot be
//! stepped again. Both yield [`SessionKeys`], from which a connection makes
//! one [`FrameSealer`] for what it writes and one [`FrameOpener`] for what it
//! reads.
//!
//! A whole handshake and one frame, with both ends in one place (a real
//! caller sends each returned message and feeds what it reads to the next
//! step):
//!
//! ```
//! use bytes::BytesMut;
//! use msg_proto::auth::{ClientHandshake, Role, Secret, ServerHandshake};
//! use msg_proto::{Kind, Message};
//!
//! let secret = Secret::new(b"correct horse battery staple".to_vec())?;
//! // Nonces come from the caller's random number generator.
//! let (client, challenge) = ClientHandshake::start(&secret, [1; 32]);
//! let server = ServerHandshake::new(&secret, [2; 32]);
//! let (response, server) = server.on_challenge(&challenge)?;
//! let (proof, client) = client.on_response(&response)?;
//! let (result, server_keys) = server.on_proof(&proof);
//! let client_keys = client.on_result(&result)?;
//!
//! let mut frame = BytesMut::new();
//! let msg = Message::new(Kind::Data, 1, "hello");
//! client_keys.sealer(Role::Client).seal(&msg, &mut frame)?;
//! let opened = server_keys?.opener(Role::Server).open(frame.freeze())?;
//! assert_eq!(opened, msg);
//! # Ok::<(), msg_proto::auth::AuthError>(())
//! ```
//!
//! # UDP
//!
//! There is no handshake (a datagram has no connection to hang one on), so
//! the keys are fixed per secret and role, and freshness comes from a
//! per-socket session id and counter carried in a 48-byte trailer
//! ([`DatagramSealer`], [`DatagramOpener`]), checked against a
//! [`ReplayWindow`] that the receiver keeps per sender.
//!
//! # Cost
//!
//! Each key is absorbed once into a keyed HMAC state when a sealer or opener
//! is made; every message then clones that state on the stack, hashes the
//! slices in place and writes into the caller's buffer, so the per-message
//! path allocates nothing.

use std::fmt;

use bytes::{BufMut, Bytes, BytesMut};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::{FLAG_AUTH, HEADER_LEN, Kind, Message, decode_header, encode_header};

type HmacSha256 = Hmac<Sha256>;

/// The length of each handshake nonce, `Nc` and `Ns`.
///
/// 256 bits: two honest nonces never repeat, so a recorded handshake never
/// matches a fresh one, whichever side an attacker replays it to.
pub const NONCE_LEN: usize = 32;

/// The length of every HMAC-SHA256 output on the wire: proofs and tags.
///
/// Untruncated: 32 bytes is small next to a message, and a full tag leaves no
/// margin to argue about.
pub const TAG_LEN: usize = 32;

/// The length of every derived key.
pub const KEY_LEN: usize = 32;

/// The largest frame either side of the TCP handshake reads before the
/// handshake completes, prefix excluded.
///
/// The handshake's own messages are at most 92 bytes (step 2: a 28-byte
/// header, `Ns` and `proof_s`); the rest of the kibibyte leaves room for
/// an `Error` message that says why a listener refuses. Until the peer has
/// proved it holds the secret it has earned nothing more: read with the
/// connection's full limit (16 MiB by default), every unauthenticated
/// connection could make the listener buffer that much.
pub const MAX_HANDSHAKE_FRAME: usize = 1024;

/// The length of a UDP session id.
pub const SESSION_ID_LEN: usize = 8;

/// The bytes a tagged datagram carries after its body: session id (8),
/// counter (8) and tag (32).
///
/// A sealed datagram is this much longer than the plain message, which
/// lowers the largest UDP body by as much.
pub const UDP_TRAILER_LEN: usize = SESSION_ID_LEN + 8 + TAG_LEN;

/// How many of the most recent datagram counters a [`ReplayWindow`]
/// remembers.
///
/// UDP reorders, so the receiver cannot demand strictly increasing counters.
/// IPsec's default of 64 is too tight for a fast stream (RFC 6479 exists
/// because of it); 1024 datagrams of slack absorbs the reordering of a busy
/// benchmark stream for 136 bytes of state per sender.
pub const REPLAY_WINDOW: u64 = 1024;

/// The one byte of a [`Kind::AuthResult`] body that accepts.
const ACCEPTED: u8 = 0;
/// The one byte of a [`Kind::AuthResult`] body that rejects.
const REJECTED: u8 = 1;

// Every MAC and key derivation carries a label naming its purpose and the
// protocol version. Without them, one value could stand for another: a
// server's proof would pass as a client's (reflection: an attacker hands a
// server's own proof back to it), and a key derived for one direction or
// transport would verify messages of another. With them, a future v2 can
// never be confused with v1 either.
const SERVER_PROOF_LABEL: &[u8] = b"msg-v1 server proof";
const CLIENT_PROOF_LABEL: &[u8] = b"msg-v1 client proof";
const TCP_CLIENT_TO_SERVER: &[u8] = b"msg-v1 tcp client to server";
const TCP_SERVER_TO_CLIENT: &[u8] = b"msg-v1 tcp server to client";
const UDP_CLIENT: &[u8] = b"msg-v1 udp client";
const UDP_SERVER: &[u8] = b"msg-v1 udp server";

/// Everything that can go wrong while authenticating.
///
/// Every error is final for what it concerns: a TCP connection whose
/// handshake or frame failed must be closed (its counters are out of step),
/// and a datagram that failed is dropped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// A [`Secret`] must have at least one byte: an empty one would
    /// authenticate anyone who guesses it is empty.
    #[error("the secret is empty")]
    EmptySecret,
    /// A handshake message of the wrong kind arrived.
    #[error("expected {expected:?} during the handshake, got {found:?}")]
    UnexpectedKind {
        /// The kind this step needs.
        expected: Kind,
        /// The kind that arrived.
        found: Kind,
    },
    /// A handshake body, frame or datagram of the wrong length.
    #[error("{what} is {len} bytes; expected {expected}")]
    BadLength {
        /// What was measured.
        what: &'static str,
        /// Its length.
        len: usize,
        /// The length it must have.
        expected: usize,
    },
    /// The server's proof is wrong: it does not know the secret, or a
    /// different one. The client sends nothing more.
    #[error("the server could not prove it knows the secret")]
    ServerUnproven,
    /// The client's proof is wrong (seen by the server, which rejects it).
    #[error("the client could not prove it knows the secret")]
    ClientUnproven,
    /// The server rejected the client's proof (seen by the client).
    #[error("the server rejected our proof: the secrets differ")]
    Rejected,
    /// A [`Kind::AuthResult`] byte other than 0 (accepted) or 1 (rejected).
    #[error("unknown authentication verdict {verdict}; expected 0 or 1")]
    BadVerdict {
        /// The byte found.
        verdict: u8,
    },
    /// A frame or datagram without [`FLAG_AUTH`] where one was required: the
    /// peer is sending without a secret.
    #[error("message is not authenticated: the peer sends without a secret")]
    NotTagged,
    /// The tag does not match: the bytes were altered, the frame is out of
    /// order, or the peer holds another secret.
    #[error(
        "authentication tag mismatch: the message was altered, reordered or \
         replayed, or the peer's secret differs"
    )]
    BadTag,
    /// A datagram counter this window already accepted.
    #[error("datagram counter {counter} was already accepted (a replay)")]
    Replayed {
        /// The repeated counter.
        counter: u64,
    },
    /// A datagram counter too far behind the highest one seen to tell
    /// whether it is a replay, so it is refused.
    #[error(
        "datagram counter {counter} is older than the replay window \
         (highest {highest}, window {REPLAY_WINDOW})"
    )]
    TooOld {
        /// The counter that arrived.
        counter: u64,
        /// The highest counter accepted so far.
        highest: u64,
    },
    /// A sender's message counter reached its end; it would have to repeat
    /// one, which receivers would refuse, so it stops instead.
    #[error("the message counter is exhausted; start a new session")]
    CounterExhausted,
    /// The bytes are not a well-formed msg message at all.
    #[error(transparent)]
    Decode(#[from] crate::Error),
}

// What tagged frames and tagged datagrams share: the header with the flag
// set, the checks before a tag is verified, and the counter's next value.

/// The header of `msg` with [`FLAG_AUTH`] set, as bytes.
fn tagged_header(msg: &Message) -> Result<[u8; HEADER_LEN], AuthError> {
    let mut header = msg.header()?;
    header.flags |= FLAG_AUTH;
    Ok(encode_header(&header))
}

/// Parses a tagged message's header and checks that `len` bytes hold exactly
/// it, its body and a trailer of `trailer` bytes; returns the body length.
///
/// Only structure is checked here, to give a precise error; nothing read is
/// acted on until the tag has verified.
fn check_tagged(
    bytes: &[u8],
    trailer: usize,
    what: &'static str,
) -> Result<(crate::Header, usize), AuthError> {
    let header = decode_header(bytes)?;
    if header.flags & FLAG_AUTH == 0 {
        return Err(AuthError::NotTagged);
    }
    let body_len = header.body_len as usize;
    let expected = body_len.saturating_add(HEADER_LEN + trailer);
    if bytes.len() != expected {
        return Err(AuthError::BadLength {
            what,
            len: bytes.len(),
            expected,
        });
    }
    Ok((header, body_len))
}

/// The authenticated message, with [`FLAG_AUTH`] cleared: the flag is the
/// transport's business, not the application's.
fn opened(header: &crate::Header, body: Bytes) -> Message {
    Message {
        kind: header.kind,
        flags: header.flags & !FLAG_AUTH,
        seq: header.seq,
        timestamp_ns: header.timestamp_ns,
        body,
    }
}

/// The counter after `counter`, or an error rather than a wrap: a wrapped
/// counter would repeat a tag input, and a repeated input is a replay.
fn next(counter: u64) -> Result<u64, AuthError> {
    counter.checked_add(1).ok_or(AuthError::CounterExhausted)
}

mod datagram;
mod frame;
mod handshake;
mod keys;
mod replay;

pub use datagram::{DatagramOpener, DatagramSealer, Opened};
pub use frame::{FrameOpener, FrameSealer};
pub use handshake::{ClientAwaitResult, ClientHandshake, ServerAwaitProof, ServerHandshake};
use keys::keyed;
pub use keys::{Role, Secret, SessionKeys};
pub use replay::ReplayWindow;

#[cfg(test)]
mod tests {
    use super::datagram::udp_key;
    use super::handshake::handshake_message;
    use super::*;
    use crate::{Error, decode, encode};
    use hkdf::Hkdf;
    use proptest::prelude::*;

    fn hex(s: &str) -> Vec<u8> {
        let digits: Vec<u8> = s
            .bytes()
            .filter(u8::is_ascii_hexdigit)
            .map(|b| (b as char).to_digit(16).unwrap() as u8)
            .collect();
        digits.chunks(2).map(|p| p[0] << 4 | p[1]).collect()
    }

    fn to_hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
        let mut mac = keyed(key);
        mac.update(data);
        mac.finalize().into_bytes().to_vec()
    }

    fn secret(s: &str) -> Secret {
        Secret::new(s.as_bytes().to_vec()).unwrap()
    }

    // RFC 4231 §4.2, §4.3 and §4.8: the HMAC-SHA256 we link is the standard
    // one, including keys longer than a block (case 7).
    #[test]
    fn hmac_sha256_matches_rfc_4231() {
        assert_eq!(
            to_hex(&hmac(&[0x0b; 20], b"Hi There")),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"
        );
        assert_eq!(
            to_hex(&hmac(b"Jefe", b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_eq!(
            to_hex(&hmac(
                &[0xaa; 131],
                b"This is a test using a larger than block-size key and a larger \
                  than block-size data. The key needs to be hashed before being \
                  used by the HMAC algorithm."
            )),
            "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2"
        );
    }

    // RFC 5869 A.1.
    #[test]
    fn hkdf_sha256_matches_rfc_5869() {
        let ikm = [0x0b; 22];
        let salt = hex("000102030405060708090a0b0c");
        let info = hex("f0f1f2f3f4f5f6f7f8f9");
        let mut okm = [0u8; 42];
        Hkdf::<Sha256>::new(Some(&salt), &ikm)
            .expand(&info, &mut okm)
            .unwrap();
        assert_eq!(
            to_hex(&okm),
            "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf\
             34007208d5b887185865"
        );
    }

    #[test]
    fn an_empty_secret_is_refused_and_a_secret_never_prints() {
        assert_eq!(Secret::new(Vec::new()).unwrap_err(), AuthError::EmptySecret);
        let printed = format!("{:?}", secret("hunter2"));
        assert_eq!(printed, "Secret(..)");
    }

    struct Done {
        client: SessionKeys,
        server: SessionKeys,
    }

    fn handshake(client_secret: &Secret, server_secret: &Secret) -> Result<Done, AuthError> {
        let (client, challenge) = ClientHandshake::start(client_secret, [1; NONCE_LEN]);
        let server = ServerHandshake::new(server_secret, [2; NONCE_LEN]);
        let (response, server) = server.on_challenge(&challenge)?;
        let (proof, client) = client.on_response(&response)?;
        let (result, server_keys) = server.on_proof(&proof);
        let client_keys = client.on_result(&result)?;
        Ok(Done {
            client: client_keys,
            server: server_keys?,
        })
    }

    #[test]
    fn a_full_handshake_agrees_on_keys() {
        let done = handshake(&secret("s3cret"), &secret("s3cret")).unwrap();
        assert_eq!(
            done.client.client_to_server(),
            done.server.client_to_server()
        );
        assert_eq!(
            done.client.server_to_client(),
            done.server.server_to_client()
        );
        assert_ne!(
            done.client.client_to_server(),
            done.client.server_to_client()
        );
    }

    #[test]
    fn handshake_messages_survive_the_wire() {
        // Every handshake message is a plain message: flags 0, seq 0,
        // timestamp 0, decodable by `decode`.
        let (_, challenge) = ClientHandshake::start(&secret("s"), [1; NONCE_LEN]);
        let mut buf = BytesMut::new();
        encode(&challenge, &mut buf).unwrap();
        let decoded = decode(buf.freeze()).unwrap();
        assert_eq!(decoded, challenge);
        assert_eq!(
            (decoded.flags, decoded.seq, decoded.timestamp_ns),
            (0, 0, 0)
        );
    }

    #[test]
    fn a_server_with_another_secret_is_unproven_and_hears_nothing_more() {
        let (client, challenge) = ClientHandshake::start(&secret("right"), [1; NONCE_LEN]);
        let server = ServerHandshake::new(&secret("wrong"), [2; NONCE_LEN]);
        let (response, _server) = server.on_challenge(&challenge).unwrap();
        // The error carries no message: the client has nothing to send, so
        // the impostor learns nothing computed from the secret.
        let outcome: Result<(Message, ClientAwaitResult), AuthError> =
            client.on_response(&response);
        assert_eq!(outcome.unwrap_err(), AuthError::ServerUnproven);
    }

    #[test]
    fn a_client_with_another_secret_is_rejected_on_both_sides() {
        // The client checks the server's proof with its own secret, so an
        // honest client whose secret differs stops there, before proving
        // anything: the server just sees it hang up.
        assert_eq!(
            handshake(&secret("wrong"), &secret("right")).err(),
            Some(AuthError::ServerUnproven)
        );
        // A client that skips that check and sends a proof anyway (here a
        // forged one) is rejected by the server, and reads the rejection.
        let (client, challenge) = ClientHandshake::start(&secret("right"), [1; NONCE_LEN]);
        let server = ServerHandshake::new(&secret("right"), [2; NONCE_LEN]);
        let (response, server) = server.on_challenge(&challenge).unwrap();
        let (_, client) = client.on_response(&response).unwrap();
        let forged = handshake_message(Kind::AuthResponse, vec![0u8; TAG_LEN]);
        let (result, keys) = server.on_proof(&forged);
        assert_eq!(keys.unwrap_err(), AuthError::ClientUnproven);
        assert_eq!(result.body, Bytes::from_static(&[REJECTED]));
        assert_eq!(client.on_result(&result).unwrap_err(), AuthError::Rejected);
    }

    #[test]
    fn a_recorded_handshake_fails_against_a_fresh_server_nonce() {
        let s = secret("s3cret");
        let (client, challenge) = ClientHandshake::start(&s, [1; NONCE_LEN]);
        let (response, server) = ServerHandshake::new(&s, [2; NONCE_LEN])
            .on_challenge(&challenge)
            .unwrap();
        let (recorded_proof, _) = client.on_response(&response).unwrap();
        assert!(server.on_proof(&recorded_proof).1.is_ok());

        // The attacker replays the client's two messages to a new
        // connection; the server's fresh nonce makes the old proof stale.
        let (_, server) = ServerHandshake::new(&s, [3; NONCE_LEN])
            .on_challenge(&challenge)
            .unwrap();
        let (result, keys) = server.on_proof(&recorded_proof);
        assert_eq!(keys.unwrap_err(), AuthError::ClientUnproven);
        assert_eq!(result.body, Bytes::from_static(&[REJECTED]));
    }

    #[test]
    fn a_reflected_server_proof_is_not_a_client_proof() {
        let s = secret("s3cret");
        let (_, challenge) = ClientHandshake::start(&s, [1; NONCE_LEN]);
        let (response, server) = ServerHandshake::new(&s, [2; NONCE_LEN])
            .on_challenge(&challenge)
            .unwrap();
        // An attacker without the secret sends the server its own proof_s
        // back as proof_c: same nonces, same length, different label.
        let reflected = handshake_message(Kind::AuthResponse, response.body.slice(NONCE_LEN..));
        assert_eq!(
            server.on_proof(&reflected).1.unwrap_err(),
            AuthError::ClientUnproven
        );
    }

    #[test]
    fn handshake_steps_refuse_wrong_kinds_and_lengths() {
        let s = secret("s");
        let server = ServerHandshake::new(&s, [2; NONCE_LEN]);
        assert_eq!(
            server
                .on_challenge(&Message::new(Kind::Data, 0, vec![0; NONCE_LEN]))
                .unwrap_err(),
            AuthError::UnexpectedKind {
                expected: Kind::AuthChallenge,
                found: Kind::Data
            }
        );
        let server = ServerHandshake::new(&s, [2; NONCE_LEN]);
        assert_eq!(
            server
                .on_challenge(&handshake_message(Kind::AuthChallenge, vec![0; 31]))
                .unwrap_err(),
            AuthError::BadLength {
                what: "the client's challenge body",
                len: 31,
                expected: NONCE_LEN
            }
        );
        let (client, _) = ClientHandshake::start(&s, [1; NONCE_LEN]);
        assert!(matches!(
            client.on_response(&handshake_message(Kind::AuthResponse, vec![0; 63])),
            Err(AuthError::BadLength {
                len: 63,
                expected: 64,
                ..
            })
        ));
        let done = |body: &'static [u8]| {
            let (client, challenge) = ClientHandshake::start(&s, [1; NONCE_LEN]);
            let (response, _) = ServerHandshake::new(&s, [2; NONCE_LEN])
                .on_challenge(&challenge)
                .unwrap();
            let (_, client) = client.on_response(&response).unwrap();
            client.on_result(&handshake_message(Kind::AuthResult, body))
        };
        assert_eq!(
            done(&[7]).unwrap_err(),
            AuthError::BadVerdict { verdict: 7 }
        );
        assert!(matches!(
            done(&[]),
            Err(AuthError::BadLength {
                len: 0,
                expected: 1,
                ..
            })
        ));
        assert!(done(&[ACCEPTED]).is_ok());
    }

    fn frame_pair() -> (FrameSealer, FrameOpener) {
        let done = handshake(&secret("s3cret"), &secret("s3cret")).unwrap();
        (
            done.client.sealer(Role::Client),
            done.server.opener(Role::Server),
        )
    }

    fn sealed_frames(sealer: &mut FrameSealer, n: u64) -> Vec<Bytes> {
        (0..n)
            .map(|seq| {
                let mut buf = BytesMut::new();
                let msg = Message::new(Kind::Data, seq, format!("frame {seq}"));
                sealer.seal(&msg, &mut buf).unwrap();
                buf.freeze()
            })
            .collect()
    }

    #[test]
    fn frames_round_trip_with_the_flag_cleared() {
        let (mut sealer, mut opener) = frame_pair();
        let msg = Message::new(Kind::Ping, 9, "hi").with_timestamp(77);
        let mut buf = BytesMut::new();
        sealer.seal(&msg, &mut buf).unwrap();
        assert_eq!(buf.len(), HEADER_LEN + 2 + TAG_LEN);
        // body_len counts the body only; the tag is outside it.
        assert_eq!(&buf[24..28], &[0, 0, 0, 2]);
        let frame = buf.freeze();
        // A receiver without a secret names the problem.
        assert_eq!(decode(frame.clone()), Err(Error::NeedsSecret));
        let opened = opener.open(frame.clone()).unwrap();
        assert_eq!(opened, msg);
        // Zero-copy: the body points into the frame.
        assert_eq!(opened.body.as_ptr(), frame[HEADER_LEN..].as_ptr());
    }

    #[test]
    fn one_flipped_bit_anywhere_in_a_frame_fails() {
        let (mut sealer, _) = frame_pair();
        let frame = sealed_frames(&mut sealer, 1).remove(0);
        for byte in 0..frame.len() {
            for bit in 0..8 {
                let mut bent = frame.to_vec();
                bent[byte] ^= 1 << bit;
                let (_, mut opener) = frame_pair();
                assert!(
                    opener.open(bent.into()).is_err(),
                    "flip of bit {bit} of byte {byte} went unnoticed"
                );
            }
        }
    }

    #[test]
    fn replayed_reordered_dropped_or_reflected_frames_fail() {
        let (mut sealer, _) = frame_pair();
        let frames = sealed_frames(&mut sealer, 3);

        let (_, mut opener) = frame_pair();
        opener.open(frames[0].clone()).unwrap();
        assert_eq!(opener.open(frames[0].clone()), Err(AuthError::BadTag));

        let (_, mut opener) = frame_pair();
        assert_eq!(opener.open(frames[1].clone()), Err(AuthError::BadTag));

        let (_, mut opener) = frame_pair();
        opener.open(frames[0].clone()).unwrap();
        assert_eq!(opener.open(frames[2].clone()), Err(AuthError::BadTag));

        // A client's frame bounced back to the client: k_cs is not k_sc.
        let done = handshake(&secret("s3cret"), &secret("s3cret")).unwrap();
        let mut client_opener = done.client.opener(Role::Client);
        assert_eq!(
            client_opener.open(frames[0].clone()),
            Err(AuthError::BadTag)
        );
    }

    #[test]
    fn an_untagged_or_misframed_frame_is_named() {
        let (_, mut opener) = frame_pair();
        let mut buf = BytesMut::new();
        encode(&Message::new(Kind::Data, 1, "plain"), &mut buf).unwrap();
        assert_eq!(opener.open(buf.freeze()), Err(AuthError::NotTagged));
        let (mut sealer, _) = frame_pair();
        let frame = sealed_frames(&mut sealer, 1).remove(0);
        assert!(matches!(
            opener.open(frame.slice(..frame.len() - 1)),
            Err(AuthError::BadLength { .. })
        ));
        assert_eq!(
            opener.open(Bytes::from_static(b"ms")),
            Err(AuthError::Decode(Error::Truncated { len: 2 }))
        );
    }

    const SID: [u8; SESSION_ID_LEN] = [1, 2, 3, 4, 5, 6, 7, 8];

    fn sealed_datagram(sealer: &mut DatagramSealer, seq: u64) -> Bytes {
        let mut buf = BytesMut::new();
        sealer
            .seal(&Message::new(Kind::Discard, seq, "payload"), &mut buf)
            .unwrap();
        buf.freeze()
    }

    #[test]
    fn datagrams_round_trip_with_their_trailer() {
        let s = secret("s3cret");
        let mut sealer = DatagramSealer::new(&s, Role::Client, SID);
        let opener = DatagramOpener::new(&s, Role::Client);
        for counter in 0..3 {
            let datagram = sealed_datagram(&mut sealer, 5);
            assert_eq!(datagram.len(), HEADER_LEN + 7 + UDP_TRAILER_LEN);
            assert_eq!(decode(datagram.clone()), Err(Error::NeedsSecret));
            let opened = opener.open(datagram).unwrap();
            assert_eq!(opened.message, Message::new(Kind::Discard, 5, "payload"));
            assert_eq!((opened.session_id, opened.counter), (SID, counter));
        }
    }

    #[test]
    fn a_bent_datagram_fails() {
        let s = secret("s3cret");
        let datagram = sealed_datagram(&mut DatagramSealer::new(&s, Role::Client, SID), 1);
        let opener = DatagramOpener::new(&s, Role::Client);
        for byte in 0..datagram.len() {
            let mut bent = datagram.to_vec();
            bent[byte] ^= 0x10;
            assert!(opener.open(bent.into()).is_err(), "byte {byte}");
        }
        // The counter and session id are inside the tag, so a replay cannot
        // be dressed up as new by editing them.
        let mut renumbered = datagram.to_vec();
        let at = renumbered.len() - TAG_LEN - 1;
        renumbered[at] = 9;
        assert_eq!(opener.open(renumbered.into()), Err(AuthError::BadTag));
        let other = DatagramOpener::new(&secret("other"), Role::Client);
        assert_eq!(other.open(datagram), Err(AuthError::BadTag));
    }

    #[test]
    fn a_client_datagram_does_not_open_as_a_server_one() {
        let s = secret("s3cret");
        let datagram = sealed_datagram(&mut DatagramSealer::new(&s, Role::Client, SID), 1);
        // The client's own opener expects server datagrams: a reflection of
        // what it sent fails.
        let reflected_to_client = DatagramOpener::new(&s, Role::Server);
        assert_eq!(reflected_to_client.open(datagram), Err(AuthError::BadTag));
    }

    #[test]
    fn a_replayed_datagram_is_refused_by_the_window() {
        let s = secret("s3cret");
        let datagram = sealed_datagram(&mut DatagramSealer::new(&s, Role::Client, SID), 1);
        let opener = DatagramOpener::new(&s, Role::Client);
        let mut window = ReplayWindow::new();
        let first = opener.open(datagram.clone()).unwrap();
        window.check_and_set(first.counter).unwrap();
        // The replay still verifies (it is genuine), so only the window
        // stops it.
        let again = opener.open(datagram).unwrap();
        assert_eq!(
            window.check_and_set(again.counter),
            Err(AuthError::Replayed { counter: 0 })
        );
    }

    #[test]
    fn the_window_accepts_reordering_and_slides() {
        let mut window = ReplayWindow::new();
        for counter in [5, 3, 4, 0, 1, 2] {
            window.check_and_set(counter).unwrap();
        }
        for counter in 0..=5 {
            assert_eq!(
                window.check_and_set(counter),
                Err(AuthError::Replayed { counter })
            );
        }
        assert_eq!(window.highest(), Some(5));
        // Slide so that 5 is the oldest counter still in the window, then
        // one step more so that it falls out.
        window.check_and_set(5 + REPLAY_WINDOW - 1).unwrap();
        assert_eq!(window.check(5), Err(AuthError::Replayed { counter: 5 }));
        assert!(window.check(6).is_ok());
        window.check_and_set(5 + REPLAY_WINDOW).unwrap();
        assert_eq!(
            window.check(5),
            Err(AuthError::TooOld {
                counter: 5,
                highest: 5 + REPLAY_WINDOW
            })
        );
        assert!(window.check(6).is_ok());
        // A jump far past the ring clears every block: nothing stale stays.
        window.check_and_set(10 * REPLAY_WINDOW).unwrap();
        for counter in 9 * REPLAY_WINDOW + 1..10 * REPLAY_WINDOW {
            assert!(window.check(counter).is_ok(), "{counter}");
        }
        assert!(window.check(9 * REPLAY_WINDOW).is_err());
    }

    #[test]
    fn a_refused_counter_leaves_the_window_alone() {
        let mut window = ReplayWindow::new();
        window.check_and_set(2000).unwrap();
        let before = window.clone();
        assert!(window.check_and_set(1).is_err());
        assert_eq!(window.bits, before.bits);
        assert_eq!(window.highest(), Some(2000));
    }

    /// The hex digits of the ```hex block that follows "Vector `label`:" in
    /// docs/auth.md.
    fn doc_vector(label: &str) -> String {
        let doc = include_str!("../../../../docs/auth.md");
        let start = doc
            .find(&format!("Vector `{label}`:"))
            .unwrap_or_else(|| panic!("docs/auth.md has no vector {label}"));
        doc[start..]
            .split("```hex")
            .nth(1)
            .and_then(|rest| rest.split("```").next())
            .unwrap_or_else(|| panic!("vector {label} has no ```hex block"))
            .chars()
            .filter(char::is_ascii_hexdigit)
            .collect()
    }

    // Every vector of docs/auth.md, recomputed from the inputs the page
    // states, so the page cannot drift from the code.
    #[test]
    fn docs_carry_the_vectors() {
        let s = secret("msg test secret");
        let nc: [u8; NONCE_LEN] = std::array::from_fn(|i| i as u8);
        let ns: [u8; NONCE_LEN] = std::array::from_fn(|i| (NONCE_LEN + i) as u8);
        let (client, challenge) = ClientHandshake::start(&s, nc);
        let (response, server) = ServerHandshake::new(&s, ns)
            .on_challenge(&challenge)
            .unwrap();
        let (proof, client) = client.on_response(&response).unwrap();
        let (result, server_keys) = server.on_proof(&proof);
        let keys = client.on_result(&result).unwrap();
        let server_keys = server_keys.unwrap();

        let hello = Message::new(Kind::Data, 1, "hello");
        let mut frame = BytesMut::new();
        keys.sealer(Role::Client).seal(&hello, &mut frame).unwrap();
        assert_eq!(
            server_keys
                .opener(Role::Server)
                .open(frame.clone().freeze()),
            Ok(hello.clone())
        );
        let mut datagram = BytesMut::new();
        DatagramSealer::new(&s, Role::Client, SID)
            .seal(&hello, &mut datagram)
            .unwrap();

        let wire = |msg: &Message| {
            let mut buf = BytesMut::new();
            encode(msg, &mut buf).unwrap();
            buf.to_vec()
        };
        let vectors: [(&str, Vec<u8>); 9] = [
            ("challenge", wire(&challenge)),
            ("server-response", wire(&response)),
            ("client-proof", wire(&proof)),
            ("result", wire(&result)),
            ("k_cs", keys.client_to_server().to_vec()),
            ("k_sc", keys.server_to_client().to_vec()),
            ("frame", frame.to_vec()),
            ("k_udp_client", udp_key(&s, Role::Client).to_vec()),
            ("datagram", datagram.to_vec()),
        ];
        for (label, bytes) in vectors {
            assert_eq!(doc_vector(label), to_hex(&bytes), "vector {label}");
        }
    }

    #[test]
    fn errors_read_as_sentences() {
        assert_eq!(
            AuthError::ServerUnproven.to_string(),
            "the server could not prove it knows the secret"
        );
        assert_eq!(
            AuthError::Rejected.to_string(),
            "the server rejected our proof: the secrets differ"
        );
        assert_eq!(
            AuthError::BadTag.to_string(),
            "authentication tag mismatch: the message was altered, reordered or \
             replayed, or the peer's secret differs"
        );
        assert_eq!(
            AuthError::UnexpectedKind {
                expected: Kind::AuthResult,
                found: Kind::Error
            }
            .to_string(),
            "expected AuthResult during the handshake, got Error"
        );
        assert_eq!(
            AuthError::Decode(Error::NeedsSecret).to_string(),
            Error::NeedsSecret.to_string()
        );
    }

    proptest! {
        // The window against a model that remembers everything: accept
        // exactly what is new and within REPLAY_WINDOW of the highest.
        #[test]
        fn the_window_matches_a_model(
            counters in proptest::collection::vec(0u64..4000, 0..300),
        ) {
            let mut window = ReplayWindow::new();
            let mut seen = std::collections::BTreeSet::new();
            for counter in counters {
                let highest = seen.iter().next_back().copied();
                let fresh = !seen.contains(&counter)
                    && highest.is_none_or(|h| counter > h || h - counter < REPLAY_WINDOW);
                prop_assert_eq!(window.check_and_set(counter).is_ok(), fresh);
                if fresh {
                    seen.insert(counter);
                }
            }
        }

        #[test]
        fn handshake_steps_never_panic(
            kind in proptest::sample::select(Kind::ALL.to_vec()),
            body in proptest::collection::vec(any::<u8>(), 0..100),
        ) {
            let s = secret("s3cret");
            let msg = Message::new(kind, 0, body);
            let _ = ServerHandshake::new(&s, [2; NONCE_LEN]).on_challenge(&msg);
            let (client, challenge) = ClientHandshake::start(&s, [1; NONCE_LEN]);
            let _ = client.on_response(&msg);
            let (client, _) = ClientHandshake::start(&s, [1; NONCE_LEN]);
            let (response, server) = ServerHandshake::new(&s, [2; NONCE_LEN])
                .on_challenge(&challenge)
                .unwrap();
            let (result, keys) = server.on_proof(&msg);
            prop_assert_eq!(result.body.len(), 1);
            prop_assert!(keys.is_err());
            let (_, client) = client.on_response(&response).unwrap();
            let _ = client.on_result(&msg);
        }

        #[test]
        fn openers_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let s = secret("s3cret");
            let (_, mut frames) = frame_pair();
            prop_assert!(frames.open(bytes.clone().into()).is_err());
            let datagrams = DatagramOpener::new(&s, Role::Client);
            prop_assert!(datagrams.open(bytes.into()).is_err());
        }

        // Random bytes rarely get past the magic; a real tagged header with
        // a random length and tail reaches the length and tag checks.
        #[test]
        fn openers_never_panic_past_the_header(
            body_len in any::<u32>(),
            tail in proptest::collection::vec(any::<u8>(), 0..128),
        ) {
            let mut bytes = BytesMut::new();
            FrameSealer::new(&[0; KEY_LEN])
                .seal(&Message::new(Kind::Data, 1, Bytes::new()), &mut bytes)
                .unwrap();
            bytes.truncate(HEADER_LEN);
            bytes[24..28].copy_from_slice(&body_len.to_be_bytes());
            bytes.extend_from_slice(&tail);
            let bytes = bytes.freeze();
            let (_, mut frames) = frame_pair();
            prop_assert!(frames.open(bytes.clone()).is_err());
            let datagrams = DatagramOpener::new(&secret("s3cret"), Role::Client);
            prop_assert!(datagrams.open(bytes).is_err());
        }
    }
}
