//! The one stream of a QUIC connection msg runs over, as a [`Stream`] of
//! msg-tcp: its halves, and its end acknowledged before the connection
//! closes.

use std::fmt;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use msg_tcp::{Options, PeerAddr, Stream};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::LINGER;
use crate::tls::alert_refusal;

/// The one stream of a QUIC connection msg runs over.
#[derive(Debug)]
pub(crate) struct QuicStream {
    reader: QuicReader,
    writer: QuicWriter,
}

impl QuicStream {
    pub(super) fn new(
        conn: quinn::Connection,
        send: quinn::SendStream,
        recv: quinn::RecvStream,
        endpoint: Option<quinn::Endpoint>,
    ) -> Self {
        // quinn copies each write into an allocation of its own, held
        // until the peer acknowledges it: a 64 KiB message is a 64 KiB
        // allocation, and a heap trimmed as they are freed makes each a
        // fresh page-faulting one (2-3 % of a stream's CPU). As for files.
        crate::file::keep_freed_chunks();
        Self {
            reader: QuicReader {
                recv,
                conn: conn.clone(),
                _endpoint: endpoint,
            },
            writer: QuicWriter {
                send: Some(send),
                conn,
                stopping: None,
            },
        }
    }
}

/// The reading half of a [`QuicStream`].
pub(crate) struct QuicReader {
    recv: quinn::RecvStream,
    conn: quinn::Connection,
    /// A client's endpoint, kept as long as its connection.
    _endpoint: Option<quinn::Endpoint>,
}

impl fmt::Debug for QuicReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("QuicReader")
            .field("peer", &self.conn.remote_address())
            .finish_non_exhaustive()
    }
}

/// A stream's end, acknowledged (or the connection closed cleanly).
type Stopping = Pin<Box<dyn Future<Output = io::Result<()>> + Send + Sync>>;

/// The writing half of a [`QuicStream`]; dropping it finishes the stream
/// and keeps the connection until the peer has everything (at most
/// [`LINGER`]).
pub(crate) struct QuicWriter {
    send: Option<quinn::SendStream>,
    conn: quinn::Connection,
    /// Shutting down: until the peer acknowledges the stream's end.
    stopping: Option<Stopping>,
}

impl fmt::Debug for QuicWriter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("QuicWriter")
            .field("peer", &self.conn.remote_address())
            .finish_non_exhaustive()
    }
}

impl Drop for QuicWriter {
    fn drop(&mut self) {
        let Some(mut send) = self.send.take() else {
            return;
        };
        let _ = send.finish();
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        // The stream (and so the connection) lives until the peer has
        // acknowledged its end, or the connection is lost, or LINGER.
        let stopped = send.stopped();
        runtime.spawn(async move {
            let _ = tokio::time::timeout(LINGER, stopped).await;
            drop(send);
        });
    }
}

/// A connection the peer closed without an error (code 0, as a dropped
/// quinn connection closes) read as the end of the stream, as a socket's
/// close is: the framing above tells an end between frames from one
/// inside a frame.
fn clean_close(err: &quinn::ConnectionError) -> bool {
    match err {
        quinn::ConnectionError::ApplicationClosed(close) => close.error_code == 0u32.into(),
        quinn::ConnectionError::LocallyClosed => true,
        _ => false,
    }
}

/// A stream's error as an `io::Error` of the same kind, its text and its
/// causes' made printable ([`crate::text::printable`]): a lost
/// connection's text carries the reason the peer closed it with, bytes of
/// the peer's choosing, which quinn shows as they came.
fn printable_error(err: impl Into<io::Error>) -> io::Error {
    let err: io::Error = err.into();
    if let Some(refused) = refused_by_alert(&err) {
        return refused;
    }
    let mut text = err.to_string();
    let mut cause = std::error::Error::source(&err);
    while let Some(err) = cause {
        text.push_str(": ");
        text.push_str(&err.to_string());
        cause = err.source();
    }
    io::Error::new(err.kind(), crate::text::printable(text.as_bytes()))
}

/// A listener's refusal of this client's certificate, as over TLS: QUIC
/// carries the TLS alert in its CONNECTION_CLOSE (a CRYPTO_ERROR,
/// 0x100 plus the alert's code), and TLS 1.3 delivers it after the
/// client's handshake, at the first read or write. Made the error TLS
/// gives ([`rustls::Error::AlertReceived`]), so that
/// [`crate::tls::client_refused`] says it in the same words
/// (`the listener requires a client certificate, and this client gave
/// none`), where quinn's text was `connection lost: aborted by peer: the
/// cryptographic handshake failed: error 116: peer sent no certificates`.
/// Any other close is left as it was.
fn refused_by_alert(err: &io::Error) -> Option<io::Error> {
    let inner = err.get_ref()?;
    let ((Some(quinn::ReadError::ConnectionLost(lost)), _)
    | (_, Some(quinn::WriteError::ConnectionLost(lost)))) = (
        inner.downcast_ref::<quinn::ReadError>(),
        inner.downcast_ref::<quinn::WriteError>(),
    )
    else {
        return None;
    };
    let alert = crypto_alert(lost).filter(|alert| alert_refusal(*alert).is_some())?;
    Some(io::Error::new(
        err.kind(),
        rustls::Error::AlertReceived(alert),
    ))
}

/// The listener's refusal of this client's certificate that `lost` says,
/// if it says one: the stream's reads and writes, and the opening of the
/// stream, meet it, whichever comes first.
pub(crate) fn client_refused_by(
    lost: &quinn::ConnectionError,
) -> Option<crate::tls::ClientRefused> {
    crypto_alert(lost).and_then(alert_refusal)
}

/// The TLS alert the peer closed the connection with: QUIC's
/// CRYPTO_ERROR, 0x100 plus the alert's code.
fn crypto_alert(lost: &quinn::ConnectionError) -> Option<rustls::AlertDescription> {
    let quinn::ConnectionError::ConnectionClosed(close) = lost else {
        return None;
    };
    let code = u64::from(close.error_code);
    Some(rustls::AlertDescription::from(
        u8::try_from(code.checked_sub(0x100)?).ok()?,
    ))
}

impl AsyncRead for QuicReader {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut().recv.poll_read_buf(cx, buf) {
            Poll::Ready(Err(quinn::ReadError::ConnectionLost(err))) if clean_close(&err) => {
                Poll::Ready(Ok(()))
            }
            Poll::Ready(result) => Poll::Ready(result.map_err(printable_error)),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl AsyncWrite for QuicWriter {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut().send.as_mut() {
            Some(send) => Pin::new(send).poll_write(cx, buf).map_err(printable_error),
            None => Poll::Ready(Err(io::ErrorKind::BrokenPipe.into())),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    /// Finishes the stream and waits until the peer has acknowledged all
    /// of it: a QUIC connection closed sooner would discard the rest.
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.stopping.is_none() {
            let Some(send) = this.send.as_mut() else {
                return Poll::Ready(Ok(()));
            };
            let _ = send.finish();
            let stopped = send.stopped();
            this.stopping = Some(Box::pin(async move {
                match stopped.await {
                    Ok(_) => Ok(()),
                    Err(quinn::StoppedError::ConnectionLost(err)) if clean_close(&err) => Ok(()),
                    Err(err) => Err(printable_error(err)),
                }
            }));
        }
        this.stopping.as_mut().expect("set above").as_mut().poll(cx)
    }
}

impl AsyncRead for QuicStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().reader).poll_read(cx, buf)
    }
}

impl AsyncWrite for QuicStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().writer).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().writer).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().writer).poll_shutdown(cx)
    }
}

impl Stream for QuicStream {
    type Reader = QuicReader;
    type Writer = QuicWriter;

    /// QUIC has no socket options per connection: its UDP socket is the
    /// endpoint's, and it never delays a small write as Nagle's would.
    fn apply(&self, _options: &Options) -> io::Result<()> {
        Ok(())
    }

    fn peer_addr(&self) -> io::Result<PeerAddr> {
        Ok(PeerAddr::Inet(self.reader.conn.remote_address()))
    }

    fn into_split(self) -> (QuicReader, QuicWriter) {
        // Two streams of quinn's already, sharing no lock of ours.
        (self.reader, self.writer)
    }

    /// Only a closed or failed connection is seen (a read would not wait:
    /// it ends or fails), from quinn's state at the cost of a lock. Bytes
    /// waiting on the stream are not: quinn's receive stream has no peek,
    /// and reading one byte ahead would need a buffer behind a lock on
    /// every read of the reading half, which runs apart from the writer
    /// that asks. A sender that streams hears a refusal at its next read.
    fn input_waiting(&self) -> bool {
        self.reader.conn.close_reason().is_some()
    }
}

#[cfg(test)]
mod tests {
    use std::future::poll_fn;
    use std::time::Instant;

    use tokio::io::AsyncWriteExt;

    use std::net::Ipv4Addr;
    use std::time::Duration;

    use super::*;
    use crate::quic::{Admission, QuicListener, connect};
    use crate::tls::TlsClient;

    /// What a peer closes a connection with, escape sequence and line
    /// break in its reason.
    fn closed_with_a_forged_reason() -> quinn::ConnectionError {
        quinn::ConnectionError::ApplicationClosed(quinn::ApplicationClose {
            error_code: quinn::VarInt::from_u32(7),
            reason: bytes::Bytes::from_static(b"\x1b[2Jbye\nWARN forged"),
        })
    }

    /// A peer's close reason reaches no terminal as it came: not in a
    /// stream's error, nor in a lost connection's, nor in a refused
    /// handshake's.
    #[test]
    fn a_peer_close_reason_is_shown_escaped() {
        let read = printable_error(quinn::ReadError::ConnectionLost(
            closed_with_a_forged_reason(),
        ));
        let lost = crate::quic::QuicError::Lost(closed_with_a_forged_reason());
        let refused = crate::quic::config::handshake_error(
            closed_with_a_forged_reason(),
            crate::tls::Peer::Listener,
            (Ipv4Addr::LOCALHOST, 1).into(),
            Duration::from_secs(1),
        );
        for text in [read.to_string(), lost.to_string(), refused.to_string()] {
            assert!(text.contains(r"\x1b[2Jbye\nWARN forged"), "{text}");
            assert!(!text.contains(['\x1b', '\n']), "{text:?}");
        }
        assert_eq!(
            read.kind(),
            io::Error::from(quinn::ReadError::ConnectionLost(
                closed_with_a_forged_reason()
            ))
            .kind()
        );
    }

    /// A QUIC listener started with `admission`, and a client's TLS
    /// settings that pin its certificate.
    fn listening(admission: Admission) -> (QuicListener, TlsClient) {
        let timeout = Duration::from_secs(5);
        let (server, client) = crate::tls::pinned_pair(timeout).unwrap();
        let listener = QuicListener::bind((Ipv4Addr::LOCALHOST, 0).into()).unwrap();
        listener.start(&server, admission).unwrap();
        (listener, client)
    }

    /// Connections through their handshake that have opened no stream yet
    /// take places of their own, as many as the listener serves: one more
    /// is closed at once, saying so, and the one waiting is served.
    #[tokio::test]
    async fn a_connection_past_those_waiting_for_a_stream_is_closed() {
        let timeout = Duration::from_secs(5);
        let (listener, client) = listening(Admission {
            max_handshakes: 4,
            max_waiting: 1,
            idle: Some(timeout),
        });
        let addr = listener.local_addr().unwrap();
        // Through the handshake, no stream yet: quinn opens one only when
        // something is sent on it.
        let mut waiting = connect(addr, &client).await.unwrap();
        // The listener has taken the first one's handshake before the
        // second starts: the same endpoint takes them in order.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let mut late = connect(addr, &client).await.unwrap();
        closed_within(&late, timeout, "the second connection was never closed").await;
        let mut buf = [0; 64];
        let err = tokio::io::AsyncReadExt::read(&mut late, &mut buf)
            .await
            .expect_err("closed by the listener");
        assert!(
            err.to_string().contains(crate::refusal::ONE_AT_A_TIME),
            "{err}"
        );
        waiting.write_all(b"x").await.unwrap();
        let (accepted, _) = poll_fn(|cx| listener.poll_accept(cx)).await.unwrap();
        accepted.reader.conn.close(0u32.into(), b"done");
    }

    /// A QUIC stream's `input_waiting` is false while the peer is quiet,
    /// and true once the peer closed the connection: a read then ends.
    #[tokio::test]
    async fn input_waiting_sees_the_peer_close_the_connection() {
        let timeout = Duration::from_secs(5);
        let (stream, accepted, _listener) = one_stream(timeout).await;
        assert!(!stream.input_waiting(), "the listener sent nothing");
        accepted.reader.conn.close(0u32.into(), b"done");
        closed_within(&stream, timeout, "the close never arrived").await;
    }

    /// Audit, round four: a client could open 100 streams of each kind
    /// and fill each with 1.25 MB the listener never read (290 MB held
    /// for one connection). It may now open the one stream msg reads:
    /// a second of either kind waits for credit that never comes.
    #[tokio::test]
    async fn a_client_may_open_the_one_stream_msg_reads_and_no_other() {
        let (stream, accepted, _listener) = one_stream(Duration::from_secs(5)).await;
        let conn = stream.reader.conn.clone();
        let wait = Duration::from_millis(300);
        assert!(
            tokio::time::timeout(wait, conn.open_bi()).await.is_err(),
            "a second bidirectional stream opened"
        );
        assert!(
            tokio::time::timeout(wait, conn.open_uni()).await.is_err(),
            "a unidirectional stream opened"
        );
        accepted.reader.conn.close(0u32.into(), b"done");
    }

    /// A client's stream to a listener of one connection, and the
    /// listener's side of it once accepted (with the listener, whose
    /// endpoint the connection lives on).
    async fn one_stream(timeout: Duration) -> (QuicStream, QuicStream, QuicListener) {
        let (listener, client) = listening(Admission {
            max_handshakes: 1,
            max_waiting: 1,
            idle: Some(timeout),
        });
        let addr = listener.local_addr().unwrap();
        let mut stream = connect(addr, &client).await.unwrap();
        // The listener sees the stream once something is sent on it.
        stream.write_all(b"x").await.unwrap();
        let (accepted, _) = poll_fn(|cx| listener.poll_accept(cx)).await.unwrap();
        (stream, accepted, listener)
    }

    /// Waits, at most `timeout`, until `stream` has input waiting: the
    /// peer's close, here.
    async fn closed_within(stream: &QuicStream, timeout: Duration, never: &str) {
        let until = Instant::now() + timeout;
        while !stream.input_waiting() {
            assert!(Instant::now() < until, "{never}");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}
