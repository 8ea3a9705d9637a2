//! msg over TCP: a length prefix in front of every message.
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
//! [`Codec`] implements tokio-util's `Decoder` and `Encoder` and so plugs into
//! `Framed`; it reads and writes the same bytes as tokio-util's
//! `LengthDelimitedCodec` with a 4-byte big-endian length (a test checks
//! both directions), but peeks at the length without consuming it, so its
//! errors name the announced length, and encodes the header and body straight
//! into the write buffer, one copy of the body instead of two.

#![warn(missing_docs)]

use std::io;
use std::net::SocketAddr;

use bytes::{Buf, BufMut, BytesMut};
use futures::{SinkExt, StreamExt};
use msg_proto::Message;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::codec::{Decoder, Encoder, Framed, FramedParts, FramedWrite};

/// The size of the length prefix in bytes.
pub const LENGTH_PREFIX_LEN: usize = 4;

/// The default maximum frame length (the message after the prefix): 16 MiB.
pub const DEFAULT_MAX_FRAME: usize = 16 * 1024 * 1024;

/// Errors of the TCP transport.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The peer announced a frame over the maximum; nothing was allocated
    /// for it and the connection should be closed.
    #[error("frame of {len} bytes exceeds the maximum of {max} bytes")]
    FrameTooLarge {
        /// The announced frame length.
        len: usize,
        /// The maximum in force.
        max: usize,
    },
    /// The caller asked to send a message over the maximum frame length;
    /// nothing was sent.
    #[error(
        "message is {len} bytes; a TCP frame holds at most {max} bytes (the maximum frame length)"
    )]
    TooLarge {
        /// The message's size, header included.
        len: usize,
        /// The maximum in force.
        max: usize,
    },
    /// The peer closed the connection inside a frame.
    #[error("connection closed mid-frame: {buffered} bytes of an unfinished frame")]
    ClosedMidFrame {
        /// How many bytes of the unfinished frame had arrived.
        buffered: usize,
    },
    /// A frame arrived whole but is not a valid msg message.
    #[error("invalid message")]
    Decode(#[from] msg_proto::Error),
    /// Binding the listening socket failed.
    #[error("cannot listen on {addr}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// Why.
        source: io::Error,
    },
    /// Connecting to the peer failed.
    #[error("cannot connect to {addr}")]
    Connect {
        /// The peer.
        addr: SocketAddr,
        /// Why.
        source: io::Error,
    },
    /// Reading or writing the stream failed.
    #[error("i/o error on the connection")]
    Io(#[from] io::Error),
}

/// Connection settings.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// The largest frame accepted or sent, prefix excluded.
    pub max_frame: usize,
    /// Whether to set TCP_NODELAY (disable Nagle's algorithm) so each frame
    /// leaves at once instead of waiting to be coalesced with the next.
    pub nodelay: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            max_frame: DEFAULT_MAX_FRAME,
            nodelay: true,
        }
    }
}

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
                len,
                max: self.max_frame,
            });
        }
        dst.reserve(LENGTH_PREFIX_LEN + len);
        // len <= max_frame, and a max_frame over u32::MAX would still be
        // caught by msg_proto::encode's own u32 check below.
        dst.put_u32(u32::try_from(len).map_err(|_| Error::TooLarge {
            len,
            max: u32::MAX as usize,
        })?);
        msg_proto::encode(msg, dst)?;
        Ok(())
    }
}

/// One framed connection: the stream, its buffers and the codec.
#[derive(Debug)]
pub struct Connection {
    framed: Framed<TcpStream, Codec>,
    peer: SocketAddr,
}

impl Connection {
    /// Connects to `addr`.
    ///
    /// # Errors
    ///
    /// [`Error::Connect`], for example when nobody listens there.
    pub async fn connect(addr: SocketAddr, options: Options) -> Result<Self, Error> {
        let stream = TcpStream::connect(addr)
            .await
            .map_err(|source| Error::Connect { addr, source })?;
        Self::new(stream, options)
    }

    /// Wraps an accepted or connected stream, applying `options`.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if the socket options cannot be set.
    pub fn new(stream: TcpStream, options: Options) -> Result<Self, Error> {
        stream.set_nodelay(options.nodelay)?;
        let peer = stream.peer_addr()?;
        Ok(Self {
            framed: Framed::new(stream, Codec::new(options.max_frame)),
            peer,
        })
    }

    /// The peer's address.
    pub fn peer_addr(&self) -> SocketAddr {
        self.peer
    }

    /// The underlying stream.
    pub fn get_ref(&self) -> &TcpStream {
        self.framed.get_ref()
    }

    /// Reads the next message; `Ok(None)` when the peer closed the
    /// connection cleanly between frames.
    ///
    /// # Errors
    ///
    /// [`Error::FrameTooLarge`], [`Error::ClosedMidFrame`],
    /// [`Error::Decode`] or [`Error::Io`]. After an error the connection is
    /// unusable: the stream's framing is lost.
    pub async fn read_message(&mut self) -> Result<Option<Message>, Error> {
        self.framed.next().await.transpose()
    }

    /// Writes `msg` and flushes it.
    ///
    /// # Errors
    ///
    /// [`Error::TooLarge`] before anything is written, or [`Error::Io`].
    pub async fn write_message(&mut self, msg: &Message) -> Result<(), Error> {
        self.framed.send(msg).await
    }

    /// Queues `msg` without flushing; see [`Connection::flush`].
    ///
    /// # Errors
    ///
    /// As [`Connection::write_message`].
    pub async fn feed(&mut self, msg: &Message) -> Result<(), Error> {
        self.framed.feed(msg).await
    }

    /// Flushes queued messages.
    ///
    /// # Errors
    ///
    /// [`Error::Io`].
    pub async fn flush(&mut self) -> Result<(), Error> {
        SinkExt::<&Message>::flush(&mut self.framed).await
    }
}

impl Connection {
    /// Splits the connection into a reading and a writing half that can be
    /// used at the same time (say, by two futures joined in one task), for
    /// a sender that must not wait for replies. Bytes already read and
    /// messages already queued are kept.
    pub fn into_split(self) -> (ReadHalf, WriteHalf) {
        let FramedParts {
            io,
            codec,
            read_buf,
            write_buf,
            ..
        } = self.framed.into_parts();
        let (read, write) = io.into_split();
        // `Framed::from_parts` knows that a non-empty buffer may already
        // hold whole frames; a `FramedRead` given the buffer afterwards
        // would wait for the socket before decoding them.
        let mut parts = FramedParts::new::<&Message>(read, codec);
        parts.read_buf = read_buf;
        let reader = Framed::from_parts(parts);
        let mut writer = FramedWrite::new(write, codec);
        *writer.write_buffer_mut() = write_buf;
        (
            ReadHalf {
                framed: reader,
                peer: self.peer,
            },
            WriteHalf {
                framed: writer,
                peer: self.peer,
            },
        )
    }
}

/// The reading half of a [`Connection`], from [`Connection::into_split`].
#[derive(Debug)]
pub struct ReadHalf {
    framed: Framed<OwnedReadHalf, Codec>,
    peer: SocketAddr,
}

impl ReadHalf {
    /// The peer's address.
    pub fn peer_addr(&self) -> SocketAddr {
        self.peer
    }

    /// As [`Connection::read_message`].
    ///
    /// # Errors
    ///
    /// As [`Connection::read_message`].
    pub async fn read_message(&mut self) -> Result<Option<Message>, Error> {
        self.framed.next().await.transpose()
    }
}

/// The writing half of a [`Connection`], from [`Connection::into_split`].
/// Dropping it shuts the connection down for writing.
#[derive(Debug)]
pub struct WriteHalf {
    framed: FramedWrite<OwnedWriteHalf, Codec>,
    peer: SocketAddr,
}

impl WriteHalf {
    /// The peer's address.
    pub fn peer_addr(&self) -> SocketAddr {
        self.peer
    }

    /// As [`Connection::write_message`].
    ///
    /// # Errors
    ///
    /// As [`Connection::write_message`].
    pub async fn write_message(&mut self, msg: &Message) -> Result<(), Error> {
        self.framed.send(msg).await
    }
}

/// A listening socket that yields framed connections.
#[derive(Debug)]
pub struct Listener {
    inner: TcpListener,
    options: Options,
}

impl Listener {
    /// Listens on `addr` (port 0 picks a free port).
    ///
    /// # Errors
    ///
    /// [`Error::Bind`], for example when the address is in use.
    pub async fn bind(addr: SocketAddr, options: Options) -> Result<Self, Error> {
        let inner = TcpListener::bind(addr)
            .await
            .map_err(|source| Error::Bind { addr, source })?;
        Ok(Self { inner, options })
    }

    /// The local address.
    ///
    /// # Errors
    ///
    /// The operating system's, rarely.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }

    /// Accepts the next connection.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] (for example when out of file descriptors; the listener
    /// itself stays usable).
    pub async fn accept(&self) -> Result<Connection, Error> {
        let (stream, _) = self.inner.accept().await?;
        Connection::new(stream, self.options)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use msg_proto::Kind;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio_util::codec::LengthDelimitedCodec;

    fn frame_of(msg: &Message) -> BytesMut {
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
                    len: 1052,
                    max: 1024
                }
            ),
            "{err}"
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

    #[tokio::test]
    async fn a_connection_round_trips_and_sees_clean_eof() {
        let listener = Listener::bind("127.0.0.1:0".parse().unwrap(), Options::default())
            .await
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let mut conn = listener.accept().await.unwrap();
            assert!(conn.get_ref().nodelay().unwrap());
            while let Some(msg) = conn.read_message().await.unwrap() {
                conn.write_message(&msg).await.unwrap();
            }
        });
        let mut client = Connection::connect(addr, Options::default()).await.unwrap();
        for seq in 0..20 {
            let msg = Message::new(Kind::Data, seq, Bytes::from(vec![seq as u8; 3000]));
            client.write_message(&msg).await.unwrap();
            assert_eq!(client.read_message().await.unwrap(), Some(msg));
        }
        drop(client);
        server.await.unwrap();
    }

    /// A plain client stream and the framed connection it made.
    async fn raw_and_framed() -> (TcpStream, Connection) {
        let listener = Listener::bind("127.0.0.1:0".parse().unwrap(), Options::default())
            .await
            .unwrap();
        let raw = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        (raw, listener.accept().await.unwrap())
    }

    #[tokio::test]
    async fn split_halves_keep_what_was_buffered() {
        let (mut raw, mut conn) = raw_and_framed().await;
        // Two frames in one write: reading the first buffers the second.
        let (first, second) = (
            Message::new(Kind::Data, 1, "one"),
            Message::new(Kind::Data, 2, "two"),
        );
        let mut both = frame_of(&first);
        both.extend_from_slice(&frame_of(&second));
        raw.write_all(&both).await.unwrap();
        assert_eq!(conn.read_message().await.unwrap(), Some(first));
        let (mut read, mut write) = conn.into_split();
        assert_eq!(read.peer_addr(), write.peer_addr());
        assert_eq!(read.read_message().await.unwrap(), Some(second));
        let reply = Message::new(Kind::Pong, 3, "three");
        write.write_message(&reply).await.unwrap();
        let mut back = vec![0; frame_of(&reply).len()];
        raw.read_exact(&mut back).await.unwrap();
        assert_eq!(back, frame_of(&reply));
        drop(raw);
        assert_eq!(read.read_message().await.unwrap(), None);
    }

    #[tokio::test]
    async fn garbage_is_a_decode_error() {
        let (mut raw, mut conn) = raw_and_framed().await;
        raw.write_all(b"\x00\x00\x00\x1cthis is not a msg header!!!!")
            .await
            .unwrap();
        let err = conn.read_message().await.unwrap_err();
        assert!(
            matches!(err, Error::Decode(msg_proto::Error::BadMagic { .. })),
            "{err}"
        );
    }
}
