//! [`Connection::into_split`] and the two halves it gives, [`ReadHalf`]
//! and [`WriteHalf`]: apart from the connection because they are types of
//! their own, each with half of its codec, for a caller that reads and
//! writes at once (`msg connect`, a sender that must not wait for
//! replies).

use futures::{SinkExt, StreamExt};
use msg_proto::Message;
use tokio::net::TcpStream;
use tokio_util::codec::{Framed, FramedParts, FramedWrite};

use std::time::Duration;

use super::{Connection, write_within};
use crate::{Codec, Error, PeerAddr, Stream};

impl<S: Stream> Connection<S> {
    /// Splits the connection into a reading and a writing half that can be
    /// used at the same time (say, by two futures joined in one task), for
    /// a sender that must not wait for replies. Bytes already read and
    /// messages already queued are kept, and so is authentication: the
    /// reading half verifies with the connection's opener and the writing
    /// half tags with its sealer, each carrying on its direction's count.
    pub fn into_split(self) -> (ReadHalf<S>, WriteHalf<S>) {
        let FramedParts {
            io,
            codec,
            read_buf,
            write_buf,
            ..
        } = self.framed.into_parts();
        let (read, write) = io.into_split();
        let (read_codec, write_codec) = codec.split();
        // `Framed::from_parts` knows that a non-empty buffer may already
        // hold whole frames; a `FramedRead` given the buffer afterwards
        // would wait for the socket before decoding them.
        let mut parts = FramedParts::new::<&Message>(read, read_codec);
        parts.read_buf = read_buf;
        let reader = Framed::from_parts(parts);
        let mut writer = FramedWrite::new(write, write_codec);
        *writer.write_buffer_mut() = write_buf;
        (
            ReadHalf {
                framed: reader,
                peer: self.peer.clone(),
            },
            WriteHalf {
                framed: writer,
                peer: self.peer,
                write_timeout: self.write_timeout,
            },
        )
    }
}

/// The reading half of a [`Connection`], from [`Connection::into_split`].
#[derive(Debug)]
pub struct ReadHalf<S: Stream = TcpStream> {
    framed: Framed<S::Reader, Codec>,
    peer: PeerAddr,
}

impl<S: Stream> ReadHalf<S> {
    /// The peer's address.
    pub fn peer_addr(&self) -> PeerAddr {
        self.peer.clone()
    }

    /// As [`Connection::read_message`].
    ///
    /// # Errors
    ///
    /// As [`Connection::read_message`].
    pub async fn read_message(&mut self) -> Result<Option<Message>, Error> {
        self.framed.next().await.transpose()
    }

    /// As [`Connection::buffered`]: bytes arrived that no message has been
    /// read from yet, more than zero while a frame is on its way.
    pub fn buffered(&self) -> usize {
        self.framed.read_buffer().len()
    }
}

/// The writing half of a [`Connection`], from [`Connection::into_split`].
/// Dropping it shuts the connection down for writing, where the stream's
/// halves do that (a socket's; not a TLS session's: see
/// [`WriteHalf::shutdown`]).
#[derive(Debug)]
pub struct WriteHalf<S: Stream = TcpStream> {
    framed: FramedWrite<S::Writer, Codec>,
    peer: PeerAddr,
    /// The connection's write timeout, on each write and the shutdown.
    write_timeout: Option<Duration>,
}

impl<S: Stream> WriteHalf<S> {
    /// The peer's address.
    pub fn peer_addr(&self) -> PeerAddr {
        self.peer.clone()
    }

    /// The underlying half of the stream, for its socket options (a TCP
    /// half gives its whole stream with `as_ref`).
    pub fn get_ref(&self) -> &S::Writer {
        self.framed.get_ref()
    }

    /// As [`Connection::write_message`].
    ///
    /// # Errors
    ///
    /// As [`Connection::write_message`].
    pub async fn write_message(&mut self, msg: &Message) -> Result<(), Error> {
        write_within(self.write_timeout, self.framed.send(msg)).await
    }

    /// As [`Connection::shutdown`]: what dropping the half does for a
    /// socket's own halves, and what a TLS session's halves (which share
    /// one state) need done explicitly, `close_notify` first.
    ///
    /// # Errors
    ///
    /// [`Error::Io`].
    pub async fn shutdown(&mut self) -> Result<(), Error> {
        write_within(
            self.write_timeout,
            SinkExt::<&Message>::close(&mut self.framed),
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::tests::frame_of;
    use crate::connection::tests::{authenticated_pair, raw_and_framed, split_and_exchange};
    use msg_proto::Kind;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

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
    async fn split_halves_stay_authenticated_and_keep_counting() {
        let (mut client, mut server, first) = authenticated_pair().await;
        assert_eq!(client.read_message().await.unwrap(), Some(first));
        // One frame each way before the split, so the halves must carry on
        // from counter 1, not restart at 0.
        let before = Message::new(Kind::Data, 1, "before");
        client.write_message(&before).await.unwrap();
        assert_eq!(server.read_message().await.unwrap(), Some(before));
        split_and_exchange(client, server, 2..5).await;
    }
}
