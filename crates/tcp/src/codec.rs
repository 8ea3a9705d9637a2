//! [`Codec`]: the frame format, a 4-byte big-endian length and one message,
//! and the limit on the length.

use bytes::{Buf, BufMut, BytesMut};
use msg_proto::Message;
use tokio_util::codec::{Decoder, Encoder};

use crate::Error;

/// The size of the length prefix in bytes.
pub const LENGTH_PREFIX_LEN: usize = 4;

/// The default maximum frame length (the message after the prefix): 16 MiB.
pub const DEFAULT_MAX_FRAME: usize = 16 * 1024 * 1024;

/// The frame codec: a 4-byte big-endian length, then one msg message.
#[derive(Debug, Clone, Copy)]
pub struct Codec {
    max_frame: usize,
}

impl Codec {
    /// A codec that refuses frames over `max_frame` bytes.
    pub fn new(max_frame: usize) -> Self {
        Self { max_frame }
    }
}

impl Default for Codec {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_FRAME)
    }
}

impl Decoder for Codec {
    type Item = Message;
    type Error = Error;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Message>, Error> {
        let Some(prefix) = src.get(..LENGTH_PREFIX_LEN) else {
            return Ok(None);
        };
        let len = u32::from_be_bytes(prefix.try_into().expect("4 bytes")) as usize;
        // The limit is checked before the reserve below, so a hostile length
        // costs the peer its connection and us nothing.
        if len > self.max_frame {
            return Err(Error::FrameTooLarge {
                len,
                max: self.max_frame,
            });
        }
        let total = LENGTH_PREFIX_LEN + len;
        if src.len() < total {
            src.reserve(total - src.len());
            return Ok(None);
        }
        src.advance(LENGTH_PREFIX_LEN);
        let frame = src.split_to(len).freeze();
        Ok(Some(msg_proto::decode(frame)?))
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
        let len = msg.encoded_len();
        if len > self.max_frame {
            return Err(Error::TooLarge {
                body: msg.body.len(),
                max_frame: self.max_frame,
            });
        }
        dst.reserve(LENGTH_PREFIX_LEN + len);
        // len <= max_frame, and a max_frame over u32::MAX would still be
        // caught by msg_proto::encode's own u32 check below.
        dst.put_u32(u32::try_from(len).map_err(|_| Error::TooLarge {
            body: msg.body.len(),
            max_frame: u32::MAX as usize,
        })?);
        msg_proto::encode(msg, dst)?;
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use msg_proto::Kind;
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
                    max_frame: 1024
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
            "message is 73 bytes; a TCP frame holds at most 100 bytes, set by --max-frame \
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
}
