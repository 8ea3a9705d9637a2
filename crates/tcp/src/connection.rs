//! [`Connection`] and its halves: a TCP stream with the [`Codec`] on it,
//! read and written one message at a time, and the [`Options`] it is made
//! with.

use std::net::SocketAddr;

use futures::{SinkExt, StreamExt};
use msg_proto::Message;
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio_util::codec::{Framed, FramedParts, FramedWrite};

use crate::{Codec, DEFAULT_MAX_FRAME, Error};

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Listener;
    use crate::codec::tests::frame_of;
    use msg_proto::Kind;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

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
