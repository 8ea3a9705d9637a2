//! [`Connection`]: a byte stream with the [`Codec`] on it, read and
//! written one message at a time, and the [`Options`] it is made with.
//! Its halves, [`ReadHalf`] and [`WriteHalf`], are in `split.rs`.
//!
//! Generic over the stream, as tokio-util's `Framed<T, U>` is: whatever
//! only reads and writes frames (and so everything authentication, files
//! and commands do) asks `AsyncRead + AsyncWrite + Unpin` and nothing
//! more; making a connection and splitting it ask [`Stream`] too. TCP is
//! the default, so `Connection` alone still means a TCP connection.

use std::io::IoSlice;
use std::time::Duration;

use bytes::Buf;
use futures::{SinkExt, StreamExt};
use msg_proto::Message;
use msg_proto::auth::{Role, SessionKeys};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::codec::Framed;

use crate::codec::LENGTH_PREFIX_LEN;
use crate::{Codec, DEFAULT_MAX_FRAME, Error, PeerAddr, Stream};

mod split;

pub use split::{ReadHalf, WriteHalf};

/// Connection settings.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// The largest frame accepted or sent, prefix excluded.
    pub max_frame: usize,
    /// Whether to set TCP_NODELAY (disable Nagle's algorithm) so each frame
    /// leaves at once instead of waiting to be coalesced with the next.
    /// Streams that have no such option ignore it.
    pub nodelay: bool,
    /// The mode a Unix listener's socket file gets
    /// ([`unix::DEFAULT_MODE`](crate::unix::DEFAULT_MODE), owner-only,
    /// unless asked); the other kinds have no file.
    pub socket_mode: u32,
    /// How long a write may wait for the peer to take anything
    /// ([`Connection::set_write_timeout`]); `None` waits as long as the
    /// peer does. Kept by the halves of [`Connection::into_split`].
    pub write_timeout: Option<Duration>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            max_frame: DEFAULT_MAX_FRAME,
            nodelay: true,
            socket_mode: crate::unix::DEFAULT_MODE,
            write_timeout: None,
        }
    }
}

/// Bodies at least this large are written from their own buffer, behind
/// the head [`Codec::encode_head`] gives (see
/// [`Connection::write_message_direct`]): copying them into the write
/// buffer would cost about what sending them does. Smaller ones are
/// copied, since one contiguous write is cheaper than two parts.
pub const DIRECT_WRITE: usize = 64 * 1024;

/// Writes all of `parts`, in order, through short writes: a frame's head
/// and body in one system call (`writev`) where the stream takes a
/// vector, not a 32-byte write of its own in front of the body, which
/// over TCP with `TCP_NODELAY` left as a segment of its own and woke the
/// peer for nothing; a TLS session seals the two into the same records
/// and sends them in one write. A stream that takes no vector writes the
/// first part, then the rest, as before.
///
/// `limit` bounds each write, not the whole: a large body over a slow
/// path takes as long as it takes while the peer keeps taking bytes, and
/// fails with [`Error::WriteStalled`] once it takes none for `limit`.
async fn write_all_vectored<S: AsyncWrite + Unpin>(
    stream: &mut S,
    mut parts: &mut [IoSlice<'_>],
    limit: Option<Duration>,
) -> Result<(), Error> {
    // Each pass writes at least one byte or ends: bounded by the bytes.
    while !parts.is_empty() {
        let written = write_within(limit, stream.write_vectored(parts)).await?;
        if written == 0 {
            return Err(Error::Io(std::io::ErrorKind::WriteZero.into()));
        }
        IoSlice::advance_slices(&mut parts, written);
    }
    Ok(())
}

/// Writes all of `buf` to `stream`, each write within `limit`, not the
/// whole: for a writer of another kind (a raw stream) bounded as a
/// [`Connection`]'s large bodies are. A peer that keeps taking bytes,
/// however slowly, is written to for as long as it takes; one that takes
/// none for `limit` ends it.
///
/// # Errors
///
/// [`Error::WriteStalled`], or the stream's.
pub async fn write_all_within<S: AsyncWrite + Unpin>(
    stream: &mut S,
    buf: &[u8],
    limit: Option<Duration>,
) -> Result<(), Error> {
    write_all_vectored(stream, &mut [IoSlice::new(buf)], limit).await
}

/// Reads and throws away up to `up_to` bytes of `read`, until it ends;
/// how many were thrown away. One fixed buffer, whatever comes: what is
/// read costs time (bound it with a timeout), never memory. For a
/// connection about to close: closed with bytes unread, it is reset, and
/// the reset throws away what is still on its way to the peer.
///
/// # Errors
///
/// `read`'s.
pub async fn discard<R: AsyncRead + Unpin>(read: &mut R, up_to: usize) -> std::io::Result<usize> {
    let mut discarded = 0;
    let mut scratch = [0; 8 * 1024];
    while discarded < up_to {
        let want = (up_to - discarded).min(scratch.len());
        match read.read(&mut scratch[..want]).await? {
            0 => break,
            n => discarded += n,
        }
    }
    Ok(discarded)
}

/// One framed connection: the stream, its buffers and the codec. A TCP
/// stream unless said otherwise ([`Connection::connect`] is TCP's).
#[derive(Debug)]
pub struct Connection<S = TcpStream> {
    framed: Framed<S, Codec>,
    peer: PeerAddr,
    write_timeout: Option<Duration>,
}

impl<S: Stream> Connection<S> {
    /// Wraps an accepted or connected stream, applying `options`.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if the socket options cannot be set, or the peer's
    /// address cannot be read.
    pub fn new(stream: S, options: Options) -> Result<Self, Error> {
        let peer = stream.peer_addr()?;
        Self::with_peer(stream, peer, options)
    }

    /// As [`Connection::new`], for a stream whose peer is known already
    /// (from `accept`): the kernel is not asked again. A TCP peer that
    /// closed at once (a TLS client right after its handshake) leaves a
    /// socket whose `getpeername` fails with `ENOTCONN`, which said
    /// nothing of what the peer did; the connection's first read does
    /// (a clean end, or a reset mid-frame).
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if the socket options cannot be set.
    pub fn with_peer(stream: S, peer: PeerAddr, options: Options) -> Result<Self, Error> {
        stream.apply(&options)?;
        Ok(Self {
            framed: Framed::new(stream, Codec::new(options.max_frame)),
            peer,
            write_timeout: options.write_timeout,
        })
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Connection<S> {
    /// The peer's address.
    pub fn peer_addr(&self) -> PeerAddr {
        self.peer.clone()
    }

    /// The underlying stream.
    pub fn get_ref(&self) -> &S {
        self.framed.get_ref()
    }

    /// Tags every frame written from now on and verifies every frame read,
    /// with the keys of a handshake that `us` just finished over this same
    /// connection.
    ///
    /// The handshake itself travels as ordinary frames
    /// ([`msg_proto::auth::ClientHandshake`] and
    /// [`msg_proto::auth::ServerHandshake`] produce plain messages), so the
    /// caller runs it with [`Connection::write_message`] and
    /// [`Connection::read_message`] first, then calls this before the next
    /// read or write. A frame the peer sent right behind its last handshake
    /// message may already sit in the read buffer; it is verified too,
    /// since frames are decoded only when read.
    ///
    /// From then on an untagged, altered, dropped, repeated or reordered
    /// frame makes [`Connection::read_message`] fail with [`Error::Auth`].
    pub fn authenticate(&mut self, keys: &SessionKeys, us: Role) {
        let codec = self.framed.codec_mut();
        codec.set_sealer(keys.sealer(us));
        codec.set_opener(keys.opener(us));
    }

    /// The largest frame this connection reads or writes, prefix excluded.
    pub fn max_frame(&self) -> usize {
        self.framed.codec().max_frame()
    }

    /// From now on, refuses frames over `max_frame` bytes, both ways: the
    /// handshake runs under [`msg_proto::auth::MAX_HANDSHAKE_FRAME`], and
    /// the connection's own limit is restored once it succeeds.
    pub fn set_max_frame(&mut self, max_frame: usize) {
        self.framed.codec_mut().set_max_frame(max_frame);
    }

    /// From now on, makes room for up to `bytes` of a frame at a time
    /// ([`Codec::set_read_ahead`]): for a peer whose frames are known to be
    /// large, such as a file's chunks once its header was accepted; set
    /// [`READ_STEP`](crate::READ_STEP) back when they end.
    pub fn set_read_ahead(&mut self, bytes: usize) {
        self.framed.codec_mut().set_read_ahead(bytes);
    }

    /// From now on, makes room for at least about `bytes` before each read
    /// ([`Codec::set_read_room`]): for a peer that sends many small frames
    /// back to back, one read for what the socket holds rather than one
    /// per frame.
    pub fn set_read_room(&mut self, bytes: usize) {
        self.framed.codec_mut().set_read_room(bytes);
    }

    /// How many bytes have arrived that no message has been read from yet:
    /// zero between frames, more while a frame is on its way.
    pub fn buffered(&self) -> usize {
        self.framed.read_buffer().len()
    }

    /// Whether a whole frame waits in the read buffer, so that the next
    /// [`Connection::read_message`] returns without waiting for the peer:
    /// for a reader that hands work on in batches, to hand it on before it
    /// would wait.
    pub fn has_frame(&self) -> bool {
        let buf = self.framed.read_buffer();
        buf.get(..LENGTH_PREFIX_LEN).is_some_and(|prefix| {
            let len = u32::from_be_bytes(prefix.try_into().expect("4 bytes")) as usize;
            buf.len() - LENGTH_PREFIX_LEN >= len
        })
    }

    /// Whether [`Connection::authenticate`] was called.
    pub fn is_authenticated(&self) -> bool {
        self.framed.codec().opens()
    }

    /// Reads the next message; `Ok(None)` when the peer closed the
    /// connection cleanly between frames.
    ///
    /// # Errors
    ///
    /// [`Error::FrameTooLarge`], [`Error::ClosedMidFrame`],
    /// [`Error::Decode`], [`Error::Auth`] (once authenticated) or
    /// [`Error::Io`]. After an error the connection is unusable: the
    /// stream's framing, or the count of authenticated frames, is lost.
    pub async fn read_message(&mut self) -> Result<Option<Message>, Error> {
        self.framed.next().await.transpose()
    }

    /// Writes `msg` and flushes it.
    ///
    /// # Errors
    ///
    /// [`Error::TooLarge`] before anything is written (the limit counts the
    /// tag once authenticated), or [`Error::Io`].
    pub async fn write_message(&mut self, msg: &Message) -> Result<(), Error> {
        // A large body goes out from its own buffer: copying it into the
        // write buffer first would double what a reply the peer does not
        // read holds in memory.
        if msg.body.len() >= DIRECT_WRITE && !self.framed.codec().seals() {
            return self.write_message_direct(msg).await;
        }
        write_within(self.write_timeout, self.framed.send(msg)).await
    }

    /// Writes `msg` and flushes it, its body straight from its buffer: for
    /// large bodies (a file's chunks), where [`Connection::write_message`]
    /// would first copy the body into the write buffer. The same bytes go
    /// on the wire. Once authenticated the tag must cover the body as it
    /// is written, so this falls back to [`Connection::write_message`].
    /// Each of the body's writes waits at most the write timeout, not the
    /// whole body: a slow reader is not a stalled one.
    ///
    /// # Errors
    ///
    /// As [`Connection::write_message`].
    pub async fn write_message_direct(&mut self, msg: &Message) -> Result<(), Error> {
        let limit = self.write_timeout;
        let Some(head) = self.framed.codec().encode_head(msg)? else {
            return write_within(limit, self.framed.send(msg)).await;
        };
        // Whatever the codec has queued goes first, to keep the order.
        write_within(limit, SinkExt::<&Message>::flush(&mut self.framed)).await?;
        let mut parts = [IoSlice::new(&head), IoSlice::new(&msg.body)];
        write_all_vectored(self.framed.get_mut(), &mut parts, limit).await
    }

    /// From now on, messages queued with [`Connection::feed`] are written
    /// once they pass `bytes` together (tokio-util's backpressure
    /// boundary; 8 KiB unless set), not before: for a sender of many small
    /// messages in a row, such as a folder's entries, one write per
    /// `bytes` instead of one per 8 KiB, and as many fewer wake-ups for
    /// the peer. What is queued still goes at [`Connection::flush`].
    pub fn set_write_batch(&mut self, bytes: usize) {
        self.framed.set_backpressure_boundary(bytes);
    }

    /// Queues `msg` without flushing; see [`Connection::flush`].
    ///
    /// # Errors
    ///
    /// As [`Connection::write_message`].
    pub async fn feed(&mut self, msg: &Message) -> Result<(), Error> {
        write_within(self.write_timeout, self.framed.feed(msg)).await
    }

    /// From now on, each write ([`Connection::write_message`],
    /// [`Connection::feed`], [`Connection::flush`],
    /// [`Connection::shutdown`]) waits at most `limit` for the peer to take
    /// what was written before, then fails with [`Error::WriteStalled`];
    /// `None` waits for as long as the peer takes. It starts as
    /// [`Options::write_timeout`].
    ///
    /// For a listener: the idle and frame timeouts bound how long it waits
    /// for a peer's bytes, and this how long it waits for the peer to read
    /// its answers. A peer that sends and never reads (its receive buffer,
    /// then this side's send buffer full) would otherwise hold its
    /// connection, and its place among those served, for ever. For a
    /// client: a listener that stops reading (stopped, or hostile) would
    /// otherwise hold the client's send, file or session for ever.
    pub fn set_write_timeout(&mut self, limit: Option<Duration>) {
        self.write_timeout = limit;
    }

    /// Reads and throws away up to `up_to` bytes, those already buffered
    /// first, until the peer closes; returns how many were thrown away.
    ///
    /// For a peer being refused in the middle of a frame the codec would
    /// not take: closing with its bytes unread makes the kernel reset the
    /// connection, and the reset can reach the peer before the answer that
    /// says why. Reading them into one fixed buffer costs no memory, only
    /// the time the caller allows (bound it with a timeout). The stream's
    /// framing is lost after this.
    ///
    /// # Errors
    ///
    /// [`Error::Io`].
    pub async fn discard(&mut self, up_to: usize) -> Result<usize, Error> {
        let buffered = self.framed.read_buffer().len().min(up_to);
        self.framed.read_buffer_mut().advance(buffered);
        let read = discard(self.framed.get_mut(), up_to - buffered).await?;
        Ok(buffered + read)
    }

    /// Flushes queued messages.
    ///
    /// # Errors
    ///
    /// [`Error::Io`].
    pub async fn flush(&mut self) -> Result<(), Error> {
        write_within(
            self.write_timeout,
            SinkExt::<&Message>::flush(&mut self.framed),
        )
        .await
    }

    /// Flushes queued messages and shuts the sending side down: the peer
    /// reads them, then the end of the stream, while this side can still
    /// read (over TCP, `shutdown(SHUT_WR)`; over TLS it would also say
    /// `close_notify`, which is why this is the stream's own shutdown and
    /// not the socket's).
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

/// `write`, within `limit` when there is one: else
/// [`Error::WriteStalled`]. What [`Connection::set_write_timeout`] does to
/// each write, for a writer of another kind (a raw stream, a
/// length-prefixed one) to bound its writes the same way.
///
/// # Errors
///
/// [`Error::WriteStalled`], or `write`'s.
pub async fn write_within<T, E: Into<Error>>(
    limit: Option<Duration>,
    write: impl Future<Output = Result<T, E>>,
) -> Result<T, Error> {
    match limit {
        None => write.await.map_err(Into::into),
        Some(after) => match tokio::time::timeout(after, write).await {
            Ok(written) => written.map_err(Into::into),
            Err(_) => Err(Error::WriteStalled { after }),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::tests::{frame_of, vector_keys};
    use crate::{LENGTH_PREFIX_LEN, Listener};
    use bytes::{BufMut, BytesMut};
    use msg_proto::Kind;
    use msg_proto::auth::{AuthError, ClientHandshake, Secret, ServerHandshake};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A plain client stream and the framed connection it made.
    pub(super) async fn raw_and_framed() -> (TcpStream, Connection) {
        let listener = Listener::bind("127.0.0.1:0".parse().unwrap(), Options::default())
            .await
            .unwrap();
        let raw = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        (raw, listener.accept().await.unwrap())
    }

    /// A peer that never reads: once its receive buffer and this side's
    /// send buffer are full, a write gives up after the write timeout,
    /// and says so; without one, the same write would wait for ever.
    #[tokio::test]
    async fn a_write_to_a_peer_that_never_reads_gives_up_after_the_write_timeout() {
        let (_never_reads, mut conn) = raw_and_framed().await;
        let limit = Duration::from_millis(200);
        conn.set_write_timeout(Some(limit));
        let msg = Message::new(Kind::Discard, 0, vec![0; 64 * 1024]);
        // Loopback's buffers hold a few MiB: 1,000 writes of 64 KiB (64 MiB)
        // fill them many times over.
        let mut stalled = None;
        for sent in 0..1000 {
            match conn.write_message(&msg).await {
                Ok(()) => {}
                Err(err) => {
                    stalled = Some((sent, err));
                    break;
                }
            }
        }
        let (sent, err) = stalled.expect("a write stalled within 64 MiB");
        assert!(sent > 0, "the first write went: {err}");
        assert!(
            matches!(err, Error::WriteStalled { after } if after == limit),
            "{err}"
        );
        assert_eq!(
            err.to_string(),
            "the peer took nothing written to it for 0.2 s: closed"
        );
    }

    /// The write timeout bounds each write, not a whole large body: a peer
    /// that keeps reading, however slowly, is not a stalled one.
    #[tokio::test]
    async fn a_slow_reader_of_a_large_body_is_not_a_stalled_one() {
        let (mut slow, mut conn) = raw_and_framed().await;
        let limit = Duration::from_millis(200);
        conn.set_write_timeout(Some(limit));
        let body = 8 * 1024 * 1024;
        let reader = tokio::spawn(async move {
            // 256 KiB every 20 ms: a second or more for the whole body,
            // far longer than the limit, never 200 ms without a byte.
            let mut buf = vec![0; 256 * 1024];
            let mut got = 0;
            for _ in 0..10_000 {
                match slow.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => got += n,
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            got
        });
        let msg = Message::new(Kind::FileChunk, 1, vec![0; body]);
        let started = std::time::Instant::now();
        conn.write_message(&msg).await.unwrap();
        assert!(
            started.elapsed() > limit,
            "the body took no longer than one write's limit"
        );
        drop(conn);
        assert!(reader.await.unwrap() > body);
    }

    /// [`Options::write_timeout`] is the connection's from the start, and
    /// the write half of a split keeps it.
    #[tokio::test]
    async fn the_options_write_timeout_holds_for_a_split_write_half() {
        let limit = Duration::from_millis(200);
        let options = Options {
            write_timeout: Some(limit),
            ..Options::default()
        };
        let listener = Listener::bind("127.0.0.1:0".parse().unwrap(), options)
            .await
            .unwrap();
        let _never_reads = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (_read, mut write) = listener.accept().await.unwrap().into_split();
        let msg = Message::new(Kind::Discard, 0, vec![0; 64 * 1024]);
        let mut stalled = None;
        for _ in 0..1000 {
            if let Err(err) = write.write_message(&msg).await {
                stalled = Some(err);
                break;
            }
        }
        let err = stalled.expect("a write stalled within 64 MiB");
        assert!(
            matches!(err, Error::WriteStalled { after } if after == limit),
            "{err}"
        );
    }

    #[tokio::test]
    async fn a_direct_write_puts_the_same_bytes_on_the_wire() {
        let (mut raw, mut conn) = raw_and_framed().await;
        let queued = Message::new(Kind::Data, 1, "queued first");
        let big = Message::new(Kind::FileChunk, 2, vec![7u8; 100_000]);
        conn.feed(&queued).await.unwrap();
        conn.write_message_direct(&big).await.unwrap();
        let mut expected = frame_of(&queued);
        expected.extend_from_slice(&frame_of(&big));
        let mut got = vec![0; expected.len()];
        raw.read_exact(&mut got).await.unwrap();
        assert_eq!(got, expected.to_vec(), "in order, byte for byte");
        let err = conn
            .write_message_direct(&Message::new(
                Kind::FileChunk,
                3,
                vec![0; DEFAULT_MAX_FRAME],
            ))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::TooLarge { .. }), "{err}");
    }

    /// The little a connection asks of a stream beyond bytes, for a test's
    /// stream that is no socket: a loopback peer, no options, and halves
    /// behind a lock (fine for a test, and the reason TCP keeps its own
    /// `into_split`).
    macro_rules! test_stream {
        ($ty:ty) => {
            impl Stream for $ty {
                type Reader = tokio::io::ReadHalf<Self>;
                type Writer = tokio::io::WriteHalf<Self>;

                fn apply(&self, _options: &Options) -> std::io::Result<()> {
                    Ok(())
                }

                fn peer_addr(&self) -> std::io::Result<PeerAddr> {
                    Ok(std::net::SocketAddr::from(([127, 0, 0, 1], 1)).into())
                }

                fn into_split(self) -> (Self::Reader, Self::Writer) {
                    tokio::io::split(self)
                }

                fn input_waiting(&self) -> bool {
                    false
                }
            }
        };
    }

    /// A stream that takes every write whole and records its length.
    #[derive(Debug, Default)]
    struct Recorder {
        writes: Vec<usize>,
    }

    impl AsyncRead for Recorder {
        fn poll_read(
            self: std::pin::Pin<&mut Self>,
            _cx: &mut std::task::Context<'_>,
            _buf: &mut tokio::io::ReadBuf<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            std::task::Poll::Ready(Ok(()))
        }
    }

    impl AsyncWrite for Recorder {
        fn poll_write(
            self: std::pin::Pin<&mut Self>,
            _cx: &mut std::task::Context<'_>,
            buf: &[u8],
        ) -> std::task::Poll<std::io::Result<usize>> {
            self.get_mut().writes.push(buf.len());
            std::task::Poll::Ready(Ok(buf.len()))
        }

        fn poll_write_vectored(
            self: std::pin::Pin<&mut Self>,
            _cx: &mut std::task::Context<'_>,
            bufs: &[IoSlice<'_>],
        ) -> std::task::Poll<std::io::Result<usize>> {
            let len = bufs.iter().map(|buf| buf.len()).sum();
            self.get_mut().writes.push(len);
            std::task::Poll::Ready(Ok(len))
        }

        fn is_write_vectored(&self) -> bool {
            true
        }

        fn poll_flush(
            self: std::pin::Pin<&mut Self>,
            _cx: &mut std::task::Context<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            std::task::Poll::Ready(Ok(()))
        }

        fn poll_shutdown(
            self: std::pin::Pin<&mut Self>,
            _cx: &mut std::task::Context<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            std::task::Poll::Ready(Ok(()))
        }
    }

    test_stream!(Recorder);

    #[tokio::test]
    async fn a_large_frame_is_one_write_where_the_stream_takes_a_vector() {
        let mut conn = Connection::new(Recorder::default(), Options::default()).unwrap();
        let big = Message::new(Kind::FileChunk, 2, vec![7u8; DIRECT_WRITE]);
        conn.write_message(&big).await.unwrap();
        // Head and body together: over TLS, one writev of all its records.
        assert_eq!(conn.get_ref().writes, [frame_of(&big).len()]);
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

    /// A connected client and the server's accepted end of it.
    async fn pair() -> (Connection, Connection) {
        let listener = Listener::bind("127.0.0.1:0".parse().unwrap(), Options::default())
            .await
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let (client, server) = tokio::join!(
            Connection::connect(addr, Options::default()),
            listener.accept()
        );
        (client.unwrap(), server.unwrap())
    }

    fn secret() -> Secret {
        Secret::new(b"s3cret".to_vec()).unwrap()
    }

    /// The client's side of the handshake, as `msg send` would run it.
    async fn client_handshake<S: AsyncRead + AsyncWrite + Unpin>(
        conn: &mut Connection<S>,
    ) -> Result<(), Error> {
        let (state, challenge) = ClientHandshake::start(&secret(), [1; 32]);
        conn.write_message(&challenge).await?;
        let response = conn.read_message().await?.expect("a response");
        let (proof, state) = state.on_response(&response)?;
        conn.write_message(&proof).await?;
        let verdict = conn.read_message().await?.expect("a verdict");
        conn.authenticate(&state.on_result(&verdict)?, Role::Client);
        Ok(())
    }

    /// The server's side, which queues its verdict and, once authenticated,
    /// a first tagged message behind it: both leave in one write, so the
    /// client most likely reads the tagged frame into its buffer before it
    /// has the keys to verify it.
    async fn server_handshake<S: AsyncRead + AsyncWrite + Unpin>(
        conn: &mut Connection<S>,
        first: &Message,
    ) -> Result<(), Error> {
        let challenge = conn.read_message().await?.expect("a challenge");
        let (response, state) =
            ServerHandshake::new(&secret(), [2; 32]).on_challenge(&challenge)?;
        conn.write_message(&response).await?;
        let proof = conn.read_message().await?.expect("a proof");
        let (verdict, keys) = state.on_proof(&proof);
        conn.feed(&verdict).await?;
        conn.authenticate(&keys?, Role::Server);
        conn.write_message(first).await
    }

    pub(super) async fn authenticated_pair() -> (Connection, Connection, Message) {
        let (client, server) = pair().await;
        authenticate_both(client, server).await
    }

    /// Makes the handshake between `client` and `server`, over any byte
    /// stream; the server's first message follows its verdict and is
    /// returned with them.
    async fn authenticate_both<S: Stream>(
        mut client: Connection<S>,
        mut server: Connection<S>,
    ) -> (Connection<S>, Connection<S>, Message) {
        let first = Message::new(Kind::Data, 7, "right behind the verdict");
        let (c, s) = tokio::join!(
            client_handshake(&mut client),
            server_handshake(&mut server, &first)
        );
        c.unwrap();
        s.unwrap();
        assert!(client.is_authenticated() && server.is_authenticated());
        (client, server, first)
    }

    /// Splits both connections and sends a message each way per `seqs`,
    /// half to half; returns the halves.
    pub(super) async fn split_and_exchange<S: Stream>(
        client: Connection<S>,
        server: Connection<S>,
        seqs: std::ops::Range<u64>,
    ) -> ((ReadHalf<S>, WriteHalf<S>), (ReadHalf<S>, WriteHalf<S>)) {
        let (mut client_read, mut client_write) = client.into_split();
        let (mut server_read, mut server_write) = server.into_split();
        for seq in seqs {
            let up = Message::new(Kind::Data, seq, "up");
            client_write.write_message(&up).await.unwrap();
            assert_eq!(server_read.read_message().await.unwrap(), Some(up));
            let down = Message::new(Kind::Data, seq, "down");
            server_write.write_message(&down).await.unwrap();
            assert_eq!(client_read.read_message().await.unwrap(), Some(down));
        }
        ((client_read, client_write), (server_read, server_write))
    }

    #[tokio::test]
    async fn a_handshake_then_tagged_messages_both_ways() {
        let (mut client, mut server, first) = authenticated_pair().await;
        assert_eq!(client.read_message().await.unwrap(), Some(first));
        for seq in 0..3 {
            let ping = Message::new(Kind::Ping, seq, format!("ping {seq}"));
            client.write_message(&ping).await.unwrap();
            assert_eq!(server.read_message().await.unwrap(), Some(ping.clone()));
            let pong = Message {
                kind: Kind::Pong,
                ..ping
            };
            server.write_message(&pong).await.unwrap();
            assert_eq!(client.read_message().await.unwrap(), Some(pong));
        }
        drop(client);
        assert_eq!(server.read_message().await.unwrap(), None);
    }

    #[tokio::test]
    async fn a_flipped_bit_on_the_wire_fails_and_ends_the_connection() {
        let (mut raw, mut conn) = raw_and_framed().await;
        let (client_keys, server_keys) = vector_keys();
        conn.authenticate(&server_keys, Role::Server);
        // The raw peer plays the client with the same keys, sealing by hand
        // so that it can alter the second frame after it was tagged.
        let mut sealer = client_keys.sealer(Role::Client);
        let mut wire = BytesMut::new();
        let mut frame = |msg: &Message, flip: Option<usize>| {
            let start = wire.len();
            wire.put_u32(0);
            sealer.seal(msg, &mut wire).unwrap();
            let len = u32::try_from(wire.len() - start - LENGTH_PREFIX_LEN).unwrap();
            wire[start..start + LENGTH_PREFIX_LEN].copy_from_slice(&len.to_be_bytes());
            if let Some(at) = flip {
                wire[start + LENGTH_PREFIX_LEN + at] ^= 0x01;
            }
        };
        let good = Message::new(Kind::Data, 1, "good");
        frame(&good, None);
        // Bit 0 of the body's first byte: "tampered" becomes "uampered".
        frame(&Message::new(Kind::Data, 2, "tampered"), Some(28));
        frame(&Message::new(Kind::Data, 3, "too late"), None);
        raw.write_all(&wire).await.unwrap();

        assert_eq!(conn.read_message().await.unwrap(), Some(good));
        let err = conn.read_message().await.unwrap_err();
        assert!(matches!(err, Error::Auth(AuthError::BadTag)), "{err}");
        // The third frame is well tagged, but nothing after a failure is
        // trusted, or even read.
        assert!(!matches!(conn.read_message().await, Ok(Some(_))));
    }

    #[tokio::test]
    async fn an_authenticated_peer_refuses_plain_frames() {
        let (mut raw, mut conn) = raw_and_framed().await;
        conn.authenticate(&vector_keys().1, Role::Server);
        raw.write_all(&frame_of(&Message::new(Kind::Data, 1, "plain")))
            .await
            .unwrap();
        let err = conn.read_message().await.unwrap_err();
        assert!(matches!(err, Error::Auth(AuthError::NotTagged)), "{err}");
    }

    #[tokio::test]
    async fn the_oversize_text_counts_the_tag() {
        let (_raw, mut conn) = raw_and_framed().await;
        conn.authenticate(&vector_keys().1, Role::Server);
        let body = DEFAULT_MAX_FRAME - 28 - 32 + 1;
        let err = conn
            .write_message(&Message::new(Kind::Data, 1, vec![0; body]))
            .await
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "message is {body} bytes; a TCP frame holds at most {DEFAULT_MAX_FRAME} bytes \
                 ({} for the body after a 28-byte header and a 32-byte tag)",
                body - 1
            )
        );
    }

    // tokio's in-memory pipe, a byte stream that is no socket: framing,
    // authentication and splitting must not care what carries them.
    test_stream!(tokio::io::DuplexStream);

    #[tokio::test]
    async fn any_byte_stream_authenticates_and_splits() {
        let (a, b) = tokio::io::duplex(64 * 1024);
        let client = Connection::new(a, Options::default()).unwrap();
        let server = Connection::new(b, Options::default()).unwrap();
        let (mut client, server, first) = authenticate_both(client, server).await;
        assert_eq!(client.read_message().await.unwrap(), Some(first));
        let (client, (mut server_read, _server_write)) =
            split_and_exchange(client, server, 1..4).await;
        // The pipe ends when both of its halves are gone.
        drop(client);
        assert_eq!(server_read.read_message().await.unwrap(), None);
    }
}
