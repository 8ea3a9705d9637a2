//! [`LengthCodec`]: bare length-prefixed frames, the most common framing
//! there is, for peers that are not msg.
//!
//! ```text
//! +----------------+----------------------+
//! | length: u32 BE | body (length bytes)  |
//! +----------------+----------------------+
//! ```
//!
//! The same prefix as [`Codec`](crate::Codec), but no msg header behind it:
//! what Python's `sock.sendall(struct.pack("!I", len(m)) + m)` writes, and
//! what tokio-util's `LengthDelimitedCodec` reads and writes in its default
//! configuration (a test checks both directions). So a peer written in any
//! language in five lines can talk to msg, and msg to it.
//!
//! tokio-util's codec is not used itself because it reserves room for the
//! whole announced length as soon as it has read the prefix: within the
//! limit, but still memory for bytes a peer only promised. This one grows
//! its buffer as the bytes arrive, as [`Codec`](crate::Codec) does.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

use crate::Error;
use crate::codec::{LENGTH_PREFIX_LEN, READ_STEP, whole_frame};

/// Bare length-prefixed frames: a 4-byte big-endian length, then that many
/// bytes of body, at most `max_frame` of them (the prefix not counted).
#[derive(Debug, Clone, Copy)]
pub struct LengthCodec {
    max_frame: usize,
}

impl LengthCodec {
    /// A codec that refuses frames whose body is over `max_frame` bytes,
    /// both ways.
    pub fn new(max_frame: usize) -> Self {
        Self { max_frame }
    }

    /// The largest body it accepts or writes.
    pub fn max_frame(&self) -> usize {
        self.max_frame
    }
}

impl Decoder for LengthCodec {
    type Item = Bytes;
    type Error = Error;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Bytes>, Error> {
        // msg's own rules for the prefix: judged against the limit before
        // anything is reserved, and memory that follows the bytes
        // received, never the length announced.
        let Some(len) = whole_frame(src, self.max_frame, READ_STEP)? else {
            return Ok(None);
        };
        src.advance(LENGTH_PREFIX_LEN);
        // A zero length is a frame too: an empty message, as Python's
        // `struct.pack("!I", 0)` sends it.
        Ok(Some(src.split_to(len).freeze()))
    }

    fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<Bytes>, Error> {
        match self.decode(src)? {
            Some(body) => Ok(Some(body)),
            None if src.is_empty() => Ok(None),
            None => Err(Error::ClosedMidFrame {
                buffered: src.len(),
            }),
        }
    }
}

impl Encoder<&[u8]> for LengthCodec {
    type Error = Error;

    fn encode(&mut self, body: &[u8], dst: &mut BytesMut) -> Result<(), Error> {
        // Refused here rather than by the peer: its limit is most likely
        // ours, and a frame it refuses costs the whole connection.
        let prefix = u32::try_from(body.len())
            .ok()
            .filter(|&len| len as usize <= self.max_frame)
            .ok_or(Error::BodyTooLarge {
                body: body.len(),
                max_frame: self.max_frame.min(u32::MAX as usize),
            })?;
        dst.reserve(LENGTH_PREFIX_LEN + body.len());
        dst.put_u32(prefix);
        dst.put_slice(body);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::READ_STEP;
    use tokio_util::codec::LengthDelimitedCodec;

    #[test]
    fn reads_and_writes_what_length_delimited_codec_does() {
        let mut ours = LengthCodec::new(1024);
        let mut theirs = LengthDelimitedCodec::new();
        for body in [&b""[..], b"hi", &[0xffu8; 300][..]] {
            let (mut a, mut b) = (BytesMut::new(), BytesMut::new());
            ours.encode(body, &mut a).unwrap();
            theirs.encode(Bytes::copy_from_slice(body), &mut b).unwrap();
            assert_eq!(a, b);
            assert_eq!(theirs.decode(&mut a).unwrap().unwrap(), body);
            assert_eq!(ours.decode(&mut b).unwrap().unwrap(), body);
            assert!(a.is_empty() && b.is_empty());
        }
    }

    #[test]
    fn python_s_struct_pack_bytes_decode() {
        // struct.pack("!I", 5) + b"hello", then the next frame's start.
        let mut src = BytesMut::from(&b"\x00\x00\x00\x05hello\x00\x00"[..]);
        let mut codec = LengthCodec::new(16);
        assert_eq!(codec.decode(&mut src).unwrap().unwrap(), &b"hello"[..]);
        assert_eq!(codec.decode(&mut src).unwrap(), None);
        assert_eq!(&src[..], b"\x00\x00", "a partial prefix stays buffered");
        assert!(matches!(
            codec.decode_eof(&mut src),
            Err(Error::ClosedMidFrame { buffered: 2 })
        ));
    }

    #[test]
    fn an_announced_length_is_judged_before_any_room_is_made() {
        let mut codec = LengthCodec::new(1024);
        let mut src = BytesMut::from(&u32::MAX.to_be_bytes()[..]);
        let before = src.capacity();
        assert!(matches!(
            codec.decode(&mut src),
            Err(Error::FrameTooLarge { len, max: 1024 }) if len == u32::MAX as usize
        ));
        assert_eq!(src.capacity(), before);
        // Within the limit, a promise of 1 MiB reserves one read, not 1 MiB.
        let mut codec = LengthCodec::new(1 << 30);
        let mut src = BytesMut::from(&(1u32 << 20).to_be_bytes()[..]);
        assert_eq!(codec.decode(&mut src).unwrap(), None);
        assert!(
            src.capacity() <= LENGTH_PREFIX_LEN + READ_STEP,
            "{}",
            src.capacity()
        );
    }

    #[test]
    fn a_body_over_the_limit_is_not_encoded() {
        let mut dst = BytesMut::new();
        let err = LengthCodec::new(4)
            .encode(&b"hello"[..], &mut dst)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "message is 5 bytes; a length-prefixed frame holds at most 4 bytes"
        );
        assert!(dst.is_empty());
    }

    /// docs/wire.md's length-framing bytes are what this codec reads: a
    /// peer written from the docs alone frames as msg does.
    #[test]
    fn the_docs_bytes_decode() {
        let doc = include_str!("../../../docs/wire.md");
        let section = doc
            .split("## Length framing")
            .nth(1)
            .and_then(|rest| rest.split("```").nth(1))
            .expect("docs/wire.md has a length-framing block");
        let mut frames = Vec::new();
        for line in section.lines() {
            // `00 00 00 05 68 65 6c 6c 6f    "hello"`: the hex, then words.
            let bytes: Vec<u8> = line
                .split_whitespace()
                .map_while(|word| {
                    u8::from_str_radix(word, 16)
                        .ok()
                        .filter(|_| word.len() == 2)
                })
                .collect();
            if bytes.len() >= LENGTH_PREFIX_LEN {
                frames.push(bytes);
            }
        }
        let mut codec = LengthCodec::new(16);
        let bodies: Vec<Bytes> = frames
            .iter()
            .map(|frame| {
                let mut src = BytesMut::from(&frame[..]);
                let body = codec.decode(&mut src).unwrap().expect("a whole frame");
                assert!(src.is_empty(), "one frame a line");
                body
            })
            .collect();
        assert_eq!(bodies, [&b"hello"[..], b""]);
    }
}
