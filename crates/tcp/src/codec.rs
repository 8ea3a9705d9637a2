//! [`Codec`]: the frame format, a 4-byte big-endian length and one message,
//! and the limit on the length.

use bytes::{Buf, BufMut, BytesMut};
use msg_proto::auth::{FrameOpener, FrameSealer, TAG_LEN};
use msg_proto::{HEADER_LEN, Message};
use tokio_util::codec::{Decoder, Encoder};

use crate::Error;

/// The size of the length prefix in bytes.
pub const LENGTH_PREFIX_LEN: usize = 4;

/// How much room the decoder makes for an unfinished frame before any of
/// it has arrived: one generous read.
pub const READ_STEP: usize = 64 * 1024;

/// The default maximum frame length (the message after the prefix): 16 MiB.
pub const DEFAULT_MAX_FRAME: usize = 16 * 1024 * 1024;

/// The frame codec: a 4-byte big-endian length, then one msg message,
/// tagged once the connection is authenticated.
///
/// Not `Copy`: a sealer and an opener count the frames they handled, and a
/// silent copy would fork a count that the peer keeps in step with exactly
/// one of them.
#[derive(Debug, Clone)]
pub struct Codec {
    max_frame: usize,
    /// The most room made ahead of a partial frame's bytes in one go
    /// ([`READ_STEP`] unless raised): see [`Codec::set_read_ahead`].
    read_ahead: usize,
    /// The least room a read gets, across frames (0 unless set): see
    /// [`Codec::set_read_room`].
    read_room: usize,
    // Boxed: a keyed HMAC state is about 200 bytes, and unboxed it would
    // grow every connection, authenticated or not, by twice that. One
    // allocation per connection, none per frame.
    /// Tags what [`Encoder::encode`] writes, once set.
    sealer: Option<Box<FrameSealer>>,
    /// Verifies what [`Decoder::decode`] reads, once set; then an untagged
    /// frame is an error.
    opener: Option<Box<FrameOpener>>,
}

impl Codec {
    /// A codec that refuses frames over `max_frame` bytes, and neither tags
    /// nor verifies them.
    pub fn new(max_frame: usize) -> Self {
        Self {
            max_frame,
            read_ahead: READ_STEP,
            read_room: 0,
            sealer: None,
            opener: None,
        }
    }

    /// From now on, makes room for up to `bytes` of a partial frame at
    /// once (never less than [`READ_STEP`], never more than the frame
    /// still lacks), rather than doubling the buffer as the frame arrives.
    ///
    /// For a peer whose frames are known to be large (a file's chunks,
    /// once its header was accepted): a 1 MiB frame read into a buffer
    /// that doubles from 64 KiB is copied once more in the growing, which
    /// costs a receiver about what hashing it does. The room is this
    /// side's constant, not the length the peer announced; memory still
    /// follows the bytes that arrived, plus at most `bytes`.
    pub fn set_read_ahead(&mut self, bytes: usize) {
        self.read_ahead = bytes.max(READ_STEP);
    }

    /// From now on, makes room for at least about `bytes` before each read,
    /// whatever the frame in progress still lacks (0, the default: only
    /// what that frame lacks, up to the read ahead).
    ///
    /// For a peer that sends many small frames back to back (a folder's
    /// small files): without it each read stops at the end of the current
    /// frame, so a 4 KiB file costs a read of its own, and a wake-up for
    /// whoever waits on what was read. With it one read takes what the
    /// socket holds, up to `bytes`. The room is made only when less than
    /// half of it is free, and it is this side's constant: memory follows
    /// the bytes that came, plus at most `bytes`.
    pub fn set_read_room(&mut self, bytes: usize) {
        self.read_room = bytes;
    }

    /// From now on, tags every encoded frame with `sealer`.
    ///
    /// Frames already encoded into a write buffer stay as they are, which is
    /// what a handshake needs: its last message goes out plain even if the
    /// sealer is installed before the buffer is flushed.
    pub fn set_sealer(&mut self, sealer: FrameSealer) {
        self.sealer = Some(Box::new(sealer));
    }

    /// From now on, verifies every decoded frame with `opener` and refuses
    /// untagged ones.
    ///
    /// Bytes already buffered but not yet decoded are verified too: a peer
    /// may send its first tagged frame right behind the handshake, in the
    /// same read.
    pub fn set_opener(&mut self, opener: FrameOpener) {
        self.opener = Some(Box::new(opener));
    }

    /// The largest frame it accepts or writes, prefix excluded.
    pub fn max_frame(&self) -> usize {
        self.max_frame
    }

    /// From now on, refuses frames over `max_frame` bytes, both ways.
    ///
    /// A frame already partly buffered is judged by the new limit when it
    /// is decoded: its prefix is read again then.
    pub fn set_max_frame(&mut self, max_frame: usize) {
        self.max_frame = max_frame;
    }

    /// Whether this codec tags what it encodes.
    pub fn seals(&self) -> bool {
        self.sealer.is_some()
    }

    /// The length prefix and the header of `msg`'s frame, for a writer
    /// that sends the body from its own buffer right behind them (a large
    /// body, which copying into the write buffer would cost as much as
    /// sending): the same bytes as [`Encoder::encode`] writes, without the
    /// body. `None` once this codec seals: the tag must cover the body as
    /// it is written, so such a frame is encoded whole.
    ///
    /// # Errors
    ///
    /// [`Error::TooLarge`], as `encode` refuses the frame.
    pub fn encode_head(
        &self,
        msg: &Message,
    ) -> Result<Option<[u8; LENGTH_PREFIX_LEN + HEADER_LEN]>, Error> {
        if self.seals() {
            return Ok(None);
        }
        let len = msg.encoded_len();
        let too_large = |max_frame| Error::TooLarge {
            body: msg.body.len(),
            max_frame,
            tag: 0,
        };
        if len > self.max_frame {
            return Err(too_large(self.max_frame));
        }
        let prefix = u32::try_from(len).map_err(|_| too_large(u32::MAX as usize))?;
        let mut head = [0u8; LENGTH_PREFIX_LEN + HEADER_LEN];
        head[..LENGTH_PREFIX_LEN].copy_from_slice(&prefix.to_be_bytes());
        head[LENGTH_PREFIX_LEN..].copy_from_slice(&msg_proto::encode_header(&msg.header()?));
        Ok(Some(head))
    }

    /// Whether this codec verifies what it decodes.
    pub fn opens(&self) -> bool {
        self.opener.is_some()
    }

    /// The length of the frame at the front of `src` (its length prefix
    /// not counted) when all of it is there and [`Decoder::decode`] would
    /// hand it over as it stands: within the maximum, nothing to open.
    /// `None` otherwise, for `decode` to wait for it, refuse it or open it.
    ///
    /// For a reader that answers some frames without decoding them (a
    /// blocking listener's pings: `msg_net::ping::pong_in_place`).
    pub fn plain_frame(&self, src: &[u8]) -> Option<usize> {
        if self.opener.is_some() {
            return None;
        }
        let prefix = src.get(..LENGTH_PREFIX_LEN)?;
        let len = u32::from_be_bytes(prefix.try_into().ok()?) as usize;
        (len <= self.max_frame && src.len() - LENGTH_PREFIX_LEN >= len).then_some(len)
    }

    /// Two codecs with this one's limit: the first keeps the opener (for a
    /// reading half), the second the sealer (for a writing half). Each
    /// direction's count then lives in exactly one place.
    pub(crate) fn split(self) -> (Self, Self) {
        let Self {
            max_frame,
            read_ahead,
            read_room,
            sealer,
            opener,
        } = self;
        (
            Self {
                max_frame,
                read_ahead,
                read_room,
                sealer: None,
                opener,
            },
            Self {
                max_frame,
                read_ahead,
                read_room,
                sealer,
                opener: None,
            },
        )
    }
}

impl Default for Codec {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_FRAME)
    }
}

/// The length of the frame at the start of `src` once all of it has
/// arrived; until then `None`, with room made for more of it. Shared by
/// both decoders: msg's frames and bare length-prefixed ones read the same
/// prefix under the same rules.
///
/// The prefix is peeked, not consumed, until its frame is whole: a partial
/// frame stays in the buffer as it came, so a timeout can tell "nothing
/// yet" from "half a frame" by the buffer alone, and a limit changed
/// meanwhile judges it again.
pub(crate) fn whole_frame(
    src: &mut BytesMut,
    max_frame: usize,
    read_ahead: usize,
) -> Result<Option<usize>, Error> {
    let Some(prefix) = src.get(..LENGTH_PREFIX_LEN) else {
        return Ok(None);
    };
    let len = u32::from_be_bytes(prefix.try_into().expect("4 bytes")) as usize;
    // The limit is checked before the reserve below, so a hostile length
    // costs the peer its connection and us nothing.
    if len > max_frame {
        // A TLS peer's first record, read as a length: say what it is.
        if let Some(record) = crate::tls::looks_like_tls(prefix.try_into().expect("4 bytes")) {
            return Err(Error::Tls(record));
        }
        return Err(Error::FrameTooLarge {
            len,
            max: max_frame,
        });
    }
    let total = LENGTH_PREFIX_LEN + len;
    if src.len() < total {
        // Room for the rest of the frame, but never more than what has
        // arrived already (or one read's worth): memory follows the
        // bytes a peer actually sent, not the length it announced. A
        // peer that announces 16 MiB and sends 4 bytes costs 64 KiB,
        // and a real 16 MiB frame grows its buffer by doubling, as it
        // arrives (or by `read_ahead` at a time, when the caller raised it
        // for a peer whose frames are large: this side's constant).
        let missing = total - src.len();
        src.reserve(missing.min(src.len().max(read_ahead)));
        return Ok(None);
    }
    Ok(Some(len))
}

impl Decoder for Codec {
    type Item = Message;
    type Error = Error;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Message>, Error> {
        let Some(len) = whole_frame(src, self.max_frame, self.read_ahead)? else {
            if src.capacity() - src.len() < self.read_room / 2 {
                src.reserve(self.read_room);
            }
            return Ok(None);
        };
        src.advance(LENGTH_PREFIX_LEN);
        let frame = src.split_to(len).freeze();
        match &mut self.opener {
            Some(opener) => Ok(Some(opener.open(frame)?)),
            None => Ok(Some(msg_proto::decode(frame)?)),
        }
    }

    fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<Message>, Error> {
        match self.decode(src)? {
            Some(msg) => Ok(Some(msg)),
            None if src.is_empty() => Ok(None),
            None => Err(Error::ClosedMidFrame {
                buffered: src.len(),
            }),
        }
    }
}

impl Encoder<&Message> for Codec {
    type Error = Error;

    fn encode(&mut self, msg: &Message, dst: &mut BytesMut) -> Result<(), Error> {
        // The tag sits inside the frame, so it counts against the limit: a
        // body that fits alone could otherwise overflow the peer's maximum
        // once tagged, and be refused there instead of here.
        let tag = if self.sealer.is_some() { TAG_LEN } else { 0 };
        let body = msg.body.len();
        let len = msg.encoded_len().saturating_add(tag);
        if len > self.max_frame {
            return Err(Error::TooLarge {
                body,
                max_frame: self.max_frame,
                tag,
            });
        }
        // len <= max_frame, and a max_frame over u32::MAX would still be
        // caught by msg_proto's own u32 check of the body below.
        let prefix = u32::try_from(len).map_err(|_| Error::TooLarge {
            body,
            max_frame: u32::MAX as usize,
            tag,
        })?;
        dst.reserve(LENGTH_PREFIX_LEN + len);
        let start = dst.len();
        dst.put_u32(prefix);
        let encoded = match &mut self.sealer {
            Some(sealer) => sealer.seal(msg, dst).map_err(Error::from),
            None => msg_proto::encode(msg, dst).map_err(Error::from),
        };
        if encoded.is_err() {
            // Leave no orphan prefix behind: the buffer may hold frames
            // queued before this one, and they must still go out whole.
            dst.truncate(start);
        }
        encoded
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use msg_proto::Kind;
    use msg_proto::auth::{AuthError, ClientHandshake, Role, Secret, ServerHandshake, SessionKeys};
    use proptest::prelude::*;
    use tokio_util::codec::LengthDelimitedCodec;

    /// The bytes [`Codec`] writes for `msg`.
    pub(crate) fn frame_of(msg: &Message) -> BytesMut {
        let mut buf = BytesMut::new();
        Codec::default().encode(msg, &mut buf).unwrap();
        buf
    }

    #[test]
    fn frames_the_documented_vector() {
        let msg = Message::new(Kind::Data, 1, "hello").with_timestamp(0x0102_0304_0506_0708);
        assert_eq!(
            &frame_of(&msg)[..],
            b"\x00\x00\x00\x21\x6d\x73\x01\x01\x00\x00\x00\x00\
              \x00\x00\x00\x00\x00\x00\x00\x01\x01\x02\x03\x04\x05\x06\x07\x08\
              \x00\x00\x00\x05hello"
        );
    }

    #[test]
    fn interoperates_with_length_delimited_codec() {
        let msg = Message::new(Kind::Ping, 9, "abc");
        let mut ldc = LengthDelimitedCodec::builder()
            .length_field_length(4)
            .big_endian()
            .new_codec();
        let mut ours = frame_of(&msg);
        let frame = ldc.decode(&mut ours).unwrap().unwrap();
        assert_eq!(msg_proto::decode(frame.freeze()).unwrap(), msg);

        let mut body = BytesMut::new();
        msg_proto::encode(&msg, &mut body).unwrap();
        let mut theirs = BytesMut::new();
        ldc.encode(body.freeze(), &mut theirs).unwrap();
        assert_eq!(Codec::default().decode(&mut theirs).unwrap(), Some(msg));
    }

    #[test]
    fn decodes_byte_by_byte_and_glued() {
        let a = Message::new(Kind::Data, 1, "first");
        let b = Message::new(Kind::Data, 2, "second");
        let mut wire = frame_of(&a);
        wire.extend_from_slice(&frame_of(&b));

        // Glued: both frames in one read.
        let mut codec = Codec::default();
        let mut glued = wire.clone();
        assert_eq!(codec.decode(&mut glued).unwrap(), Some(a.clone()));
        assert_eq!(codec.decode(&mut glued).unwrap(), Some(b.clone()));
        assert_eq!(codec.decode(&mut glued).unwrap(), None);

        // Split: one byte per read.
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        for byte in wire {
            buf.put_u8(byte);
            if let Some(msg) = codec.decode(&mut buf).unwrap() {
                out.push(msg);
            }
        }
        assert_eq!(out, [a, b]);
    }

    #[test]
    fn memory_follows_the_bytes_that_arrived_not_the_announced_length() {
        let mut codec = Codec::default();
        // 16 MiB announced, 4 bytes sent: one read's worth of room.
        let mut buf = BytesMut::from(&b"\x00\xff\xff\xff"[..]);
        assert_eq!(codec.decode(&mut buf).unwrap(), None);
        assert!(buf.capacity() <= 2 * READ_STEP, "{}", buf.capacity());
        // As the frame arrives the room grows, never past twice what came.
        for _ in 0..64 {
            let spare = buf.capacity() - buf.len();
            buf.extend_from_slice(&vec![0; spare.max(1)]);
            assert_eq!(codec.decode(&mut buf).unwrap(), None);
            assert!(
                buf.capacity() <= 2 * buf.len() + 2 * READ_STEP,
                "{} bytes arrived, {} reserved",
                buf.len(),
                buf.capacity()
            );
            if buf.len() > 4 * 1024 * 1024 {
                break;
            }
        }
    }

    #[test]
    fn a_read_room_makes_room_past_a_small_frame_and_no_more() {
        let mut codec = Codec::default();
        // Without it, the room is what the frame lacks: a read would stop
        // at the frame's end.
        let mut buf = BytesMut::from(&b"\x00\x00\x10\x00"[..]);
        buf.reserve(0);
        assert_eq!(codec.decode(&mut buf).unwrap(), None);
        assert!(
            buf.capacity() < 2 * 0x1000 + READ_STEP,
            "{}",
            buf.capacity()
        );
        codec.set_read_room(256 * 1024);
        // A partial small frame: room for the room, not for the frame only.
        assert_eq!(codec.decode(&mut buf).unwrap(), None);
        let room = buf.capacity() - buf.len();
        assert!((256 * 1024..=512 * 1024).contains(&room), "{room}");
        // Between frames, the same; and nothing more while half is free.
        let mut empty = BytesMut::new();
        assert_eq!(codec.decode(&mut empty).unwrap(), None);
        let room = empty.capacity();
        assert!((256 * 1024..=512 * 1024).contains(&room), "{room}");
        empty.extend_from_slice(&[0, 0]);
        assert_eq!(codec.decode(&mut empty).unwrap(), None);
        assert_eq!(empty.capacity(), room);
        // Frames still decode whole, and one by one.
        let a = Message::new(Kind::Data, 1, "first");
        let b = Message::new(Kind::Data, 2, "second");
        let mut wire = BytesMut::new();
        wire.extend_from_slice(&frame_of(&a));
        wire.extend_from_slice(&frame_of(&b));
        assert_eq!(codec.decode(&mut wire).unwrap(), Some(a));
        assert_eq!(codec.decode(&mut wire).unwrap(), Some(b));
        assert_eq!(codec.decode(&mut wire).unwrap(), None);
    }

    #[test]
    fn a_raised_read_ahead_makes_room_for_a_large_frame_at_once_and_no_more() {
        let mut codec = Codec::default();
        codec.set_read_ahead(1 << 20);
        // 16 MiB announced, 4 bytes sent: the read ahead's room, no more.
        let mut buf = BytesMut::from(&b"\x00\xff\xff\xff"[..]);
        assert_eq!(codec.decode(&mut buf).unwrap(), None);
        let room = buf.capacity();
        assert!((1 << 20..=2 << 20).contains(&room), "{room}");
        // A frame that fits is read into that room without growing it.
        let mut buf = BytesMut::from(&b"\x00\x08\x00\x00"[..]);
        assert_eq!(codec.decode(&mut buf).unwrap(), None);
        let room = buf.capacity();
        assert!(room >= LENGTH_PREFIX_LEN + 0x8_0000, "{room}");
        assert!(room <= 2 * (LENGTH_PREFIX_LEN + 0x8_0000), "{room}");
        // Never below one read's worth.
        codec.set_read_ahead(1);
        let mut buf = BytesMut::from(&b"\x00\xff\xff\xff"[..]);
        assert_eq!(codec.decode(&mut buf).unwrap(), None);
        assert!(buf.capacity() >= READ_STEP, "{}", buf.capacity());
    }

    #[test]
    fn refuses_oversize_frames_before_reserving() {
        let mut codec = Codec::new(1024);
        let mut buf = BytesMut::from(&b"\xff\xff\xff\xff"[..]);
        let err = codec.decode(&mut buf).unwrap_err();
        assert_eq!(
            err.to_string(),
            "frame of 4294967295 bytes exceeds the maximum of 1024 bytes"
        );
        assert!(buf.capacity() < 1024);

        let big = Message::new(Kind::Data, 1, vec![0; 1024]);
        let mut out = BytesMut::new();
        let err = codec.encode(&big, &mut out).unwrap_err();
        assert!(
            matches!(
                err,
                Error::TooLarge {
                    body: 1024,
                    max_frame: 1024,
                    tag: 0
                }
            ),
            "{err}"
        );
        assert!(out.is_empty());
    }

    #[test]
    fn a_refused_message_names_its_body_and_what_fits() {
        let mut codec = Codec::new(100);
        let mut out = BytesMut::new();
        let fits = Message::new(Kind::Data, 1, vec![0; 72]);
        codec.encode(&fits, &mut out).unwrap();
        assert_eq!(out.len(), LENGTH_PREFIX_LEN + 100);
        out.clear();
        let err = codec
            .encode(&Message::new(Kind::Data, 2, vec![0; 73]), &mut out)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "message is 73 bytes; a TCP frame holds at most 100 bytes \
             (72 for the body after a 28-byte header)"
        );
        assert!(out.is_empty());
    }

    #[test]
    fn eof_mid_frame_is_an_error() {
        let mut codec = Codec::default();
        let mut buf = frame_of(&Message::new(Kind::Data, 1, "cut"));
        buf.truncate(10);
        assert!(matches!(
            codec.decode_eof(&mut buf),
            Err(Error::ClosedMidFrame { buffered: 10 })
        ));
        assert_eq!(codec.decode_eof(&mut BytesMut::new()).unwrap(), None);
    }

    /// The session keys of the handshake in docs/auth.md's test vectors.
    pub(crate) fn vector_keys() -> (SessionKeys, SessionKeys) {
        let secret = Secret::new(b"msg test secret".to_vec()).unwrap();
        let nc: [u8; 32] = std::array::from_fn(|i| i as u8);
        let ns: [u8; 32] = std::array::from_fn(|i| 0x20 + i as u8);
        let (client, challenge) = ClientHandshake::start(&secret, nc);
        let (response, server) = ServerHandshake::new(&secret, ns)
            .on_challenge(&challenge)
            .unwrap();
        let (proof, client) = client.on_response(&response).unwrap();
        let (result, server_keys) = server.on_proof(&proof);
        (client.on_result(&result).unwrap(), server_keys.unwrap())
    }

    /// docs/auth.md's `frame` vector, behind its length prefix.
    const VECTOR_FRAME: &[u8] = b"\x00\x00\x00\x41\
        \x6d\x73\x01\x01\x80\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\
        \x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x05hello\
        \xd4\x4d\x39\x11\xf8\x23\xba\x63\x48\xf6\xd2\x7f\xa7\x41\x9e\x29\
        \x91\x05\xc2\x37\xa6\x3c\x72\x6a\xc6\xc4\xc6\x77\x7f\xc1\x54\xea";

    #[test]
    fn encode_head_is_the_frame_without_its_body() {
        let mut codec = Codec::new(100);
        let msg = Message::new(Kind::Data, 7, vec![b'z'; 50]);
        let mut whole = BytesMut::new();
        codec.encode(&msg, &mut whole).unwrap();
        let head = codec.encode_head(&msg).unwrap().expect("an unsealed codec");
        assert_eq!([&head[..], &msg.body[..]].concat(), &whole[..]);
        // Refused as encode refuses it, before anything is written.
        let big = Message::new(Kind::Data, 8, vec![0; 100]);
        assert!(matches!(
            codec.encode_head(&big),
            Err(Error::TooLarge {
                body: 100,
                max_frame: 100,
                tag: 0
            })
        ));
        // A sealing codec tags the body as written: no head alone.
        let (client_keys, _) = vector_keys();
        codec.set_sealer(client_keys.sealer(Role::Client));
        assert!(codec.encode_head(&msg).unwrap().is_none());
    }

    #[test]
    fn seals_and_opens_the_documented_tagged_frame() {
        let (client_keys, server_keys) = vector_keys();
        let mut client = Codec::default();
        client.set_sealer(client_keys.sealer(Role::Client));
        let msg = Message::new(Kind::Data, 1, "hello");
        let mut wire = BytesMut::new();
        client.encode(&msg, &mut wire).unwrap();
        assert_eq!(&wire[..], VECTOR_FRAME);

        let mut server = Codec::default();
        server.set_opener(server_keys.opener(Role::Server));
        // The flag is the transport's business: it is cleared on the way in.
        assert_eq!(server.decode(&mut wire).unwrap(), Some(msg));
        assert!(wire.is_empty());
    }

    #[test]
    fn an_opener_refuses_a_flipped_bit_and_an_untagged_frame() {
        let (_, server_keys) = vector_keys();
        for at in [4, 20, 33, VECTOR_FRAME.len() - 1] {
            let mut wire = BytesMut::from(VECTOR_FRAME);
            wire[at] ^= 0x01;
            let mut server = Codec::default();
            server.set_opener(server_keys.opener(Role::Server));
            let err = server.decode(&mut wire).unwrap_err();
            assert!(matches!(err, Error::Auth(_)), "byte {at}: {err}");
        }
        let mut server = Codec::default();
        server.set_opener(server_keys.opener(Role::Server));
        let err = server
            .decode(&mut frame_of(&Message::new(Kind::Data, 1, "hello")))
            .unwrap_err();
        assert!(matches!(err, Error::Auth(AuthError::NotTagged)), "{err}");
    }

    #[test]
    fn a_sealed_frame_counts_its_tag_against_the_limit() {
        let (client_keys, _) = vector_keys();
        let mut codec = Codec::new(100);
        codec.set_sealer(client_keys.sealer(Role::Client));
        let mut out = BytesMut::new();
        codec
            .encode(&Message::new(Kind::Data, 1, vec![0; 40]), &mut out)
            .unwrap();
        assert_eq!(out.len(), LENGTH_PREFIX_LEN + 100);
        out.clear();
        let err = codec
            .encode(&Message::new(Kind::Data, 2, vec![0; 41]), &mut out)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "message is 41 bytes; a TCP frame holds at most 100 bytes \
             (40 for the body after a 28-byte header and a 32-byte tag)"
        );
        assert!(out.is_empty());
    }

    #[test]
    fn a_plain_frame_is_one_decode_would_hand_over_as_it_stands() {
        let msg = Message::new(Kind::Ping, 3, "ping");
        let frame = frame_of(&msg);
        let len = frame.len() - LENGTH_PREFIX_LEN;
        let mut codec = Codec::new(len);
        assert_eq!(codec.plain_frame(&frame), Some(len));
        let glued = [&frame[..], &frame[..2]].concat();
        assert_eq!(codec.plain_frame(&glued), Some(len), "the first of two");
        for part in [0, 3, 4, frame.len() - 1] {
            assert_eq!(codec.plain_frame(&frame[..part]), None, "{part} bytes");
        }
        assert_eq!(
            Codec::new(len - 1).plain_frame(&frame),
            None,
            "over the maximum"
        );
        let (_, server_keys) = vector_keys();
        codec.set_opener(server_keys.opener(Role::Server));
        assert_eq!(codec.plain_frame(&frame), None, "a frame to open");
    }

    #[test]
    fn split_gives_the_opener_to_the_reader_and_the_sealer_to_the_writer() {
        let (client_keys, _) = vector_keys();
        let mut codec = Codec::new(100);
        codec.set_sealer(client_keys.sealer(Role::Client));
        codec.set_opener(client_keys.opener(Role::Client));
        let (reader, writer) = codec.split();
        assert_eq!((reader.opens(), reader.seals()), (true, false));
        assert_eq!((writer.opens(), writer.seals()), (false, true));
        assert_eq!((reader.max_frame, writer.max_frame), (100, 100));
    }

    /// A peer's stream: whole frames, garbage, and length prefixes of any
    /// size, in any order.
    fn any_stream() -> impl Strategy<Value = Vec<u8>> {
        let frame = (
            proptest::sample::select(Kind::ALL.to_vec()),
            proptest::collection::vec(any::<u8>(), 0..80),
        )
            .prop_map(|(kind, body)| frame_of(&Message::new(kind, 1, body)).to_vec());
        let prefix = any::<u32>().prop_map(|len| len.to_be_bytes().to_vec());
        let garbage = proptest::collection::vec(any::<u8>(), 0..16);
        proptest::collection::vec(prop_oneof![4 => frame, 1 => prefix, 1 => garbage], 0..6)
            .prop_map(|parts| parts.concat())
    }

    proptest! {
        // The stream in arbitrary pieces, as reads return it: the decoder
        // never panics, returns each whole frame it can re-encode byte for
        // byte, and never grows the buffer past twice what arrived plus
        // one frame. (A BytesMut grows only when what is asked for does not
        // fit, to at most twice its old size or the ask; the ask is at most
        // the bytes fed plus the prefix and max_frame that `decode`
        // reserves for a frame it has the prefix of. Reserving what a
        // prefix announces before checking it would break the bound.)
        #[test]
        fn arbitrary_splits_never_panic(
            max_frame in prop_oneof![Just(100usize), Just(DEFAULT_MAX_FRAME)],
            stream in any_stream(),
            pieces in proptest::collection::vec(1usize..48, 1..8),
        ) {
            let mut codec = Codec::new(max_frame);
            let bound = |fed: usize| 2 * (fed + LENGTH_PREFIX_LEN + max_frame);
            let mut buf = BytesMut::new();
            let (mut fed, mut consumed) = (0, 0);
            let mut decoded = Vec::new();
            let mut pieces = pieces.into_iter().cycle();
            let mut failed = false;
            'feed: while fed < stream.len() {
                let end = (fed + pieces.next().unwrap()).min(stream.len());
                buf.extend_from_slice(&stream[fed..end]);
                fed = end;
                loop {
                    let decoded_now = codec.decode(&mut buf);
                    prop_assert!(buf.capacity() <= bound(fed));
                    match decoded_now {
                        Ok(Some(msg)) => {
                            decoded.push(msg);
                            consumed = fed - buf.len();
                        }
                        Ok(None) => break,
                        Err(_) => {
                            failed = true;
                            break 'feed;
                        }
                    }
                }
            }
            if !failed {
                let left = buf.len();
                match codec.decode_eof(&mut buf) {
                    Ok(None) => prop_assert_eq!(left, 0),
                    Err(Error::ClosedMidFrame { buffered }) => prop_assert_eq!(buffered, left),
                    other => prop_assert!(false, "decode_eof: {:?}", other),
                }
            }
            let mut again = BytesMut::new();
            for msg in &decoded {
                Codec::new(max_frame).encode(msg, &mut again).unwrap();
            }
            prop_assert_eq!(&again[..], &stream[..consumed]);
        }
    }
}
