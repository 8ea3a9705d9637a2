//! The stream enums as the traits msg-tcp and tokio ask for: each call
//! passed to the kind inside, a predictable branch and no allocation.

use super::*;

impl Stream for AnyStream {
    type Reader = AnyReader;
    type Writer = AnyWriter;

    fn apply(&self, options: &Options) -> io::Result<()> {
        match self {
            Self::Tcp(stream) => stream.apply(options),
            Self::Unix(stream) => stream.apply(options),
            Self::Seqpacket(stream) => stream.apply(options),
            Self::Tls(stream) => stream.apply(options),
            Self::Quic(stream) => stream.apply(options),
        }
    }

    fn peer_addr(&self) -> io::Result<PeerAddr> {
        match self {
            Self::Tcp(stream) => Stream::peer_addr(stream),
            Self::Unix(stream) => Stream::peer_addr(stream),
            Self::Seqpacket(stream) => Stream::peer_addr(stream),
            Self::Tls(stream) => Stream::peer_addr(&**stream),
            Self::Quic(stream) => Stream::peer_addr(&**stream),
        }
    }

    fn into_split(self) -> (AnyReader, AnyWriter) {
        match self {
            Self::Tcp(stream) => {
                let (read, write) = stream.into_split();
                (AnyReader::Tcp(read), AnyWriter::Tcp(write))
            }
            Self::Unix(stream) => {
                let (read, write) = stream.into_split();
                (AnyReader::Unix(read), AnyWriter::Unix(write))
            }
            Self::Seqpacket(stream) => {
                let (read, write) = stream.into_split();
                (AnyReader::Seqpacket(read), AnyWriter::Seqpacket(write))
            }
            Self::Tls(stream) => {
                let (read, write) = Stream::into_split(*stream);
                (AnyReader::Tls(read), AnyWriter::Tls(write))
            }
            Self::Quic(stream) => {
                let (read, write) = Stream::into_split(*stream);
                (AnyReader::Quic(read), AnyWriter::Quic(write))
            }
        }
    }

    fn input_waiting(&self) -> bool {
        match self {
            Self::Tcp(stream) => stream.input_waiting(),
            Self::Unix(stream) => stream.input_waiting(),
            Self::Seqpacket(stream) => stream.input_waiting(),
            Self::Tls(stream) => stream.input_waiting(),
            Self::Quic(stream) => stream.input_waiting(),
        }
    }
}

impl Accept for AnyListener {
    type Stream = AnyStream;

    fn poll_accept(&self, cx: &mut Context<'_>) -> Poll<io::Result<(AnyStream, PeerAddr)>> {
        match self {
            Self::Tcp(listener) => Accept::poll_accept(listener, cx)
                .map_ok(|(stream, peer)| (AnyStream::Tcp(stream), peer)),
            Self::Unix { listener, .. } => Accept::poll_accept(listener, cx)
                .map_ok(|(stream, peer)| (AnyStream::Unix(stream), peer)),
            Self::Seqpacket { listener, .. } => Accept::poll_accept(listener, cx)
                .map_ok(|(stream, peer)| (AnyStream::Seqpacket(stream), peer)),
            Self::Quic(listener) => listener
                .poll_accept(cx)
                .map_ok(|(stream, peer)| (AnyStream::Quic(Box::new(stream)), peer)),
        }
    }
}

/// `AsyncRead` for each enum, passed to the kind inside.
macro_rules! read_through {
    ($($ty:ident),*) => {$(
        impl AsyncRead for $ty {
            fn poll_read(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &mut ReadBuf<'_>,
            ) -> Poll<io::Result<()>> {
                match self.get_mut() {
                    Self::Tcp(inner) => Pin::new(inner).poll_read(cx, buf),
                    Self::Unix(inner) => Pin::new(inner).poll_read(cx, buf),
                    Self::Seqpacket(inner) => Pin::new(inner).poll_read(cx, buf),
                    Self::Tls(inner) => end_of_session(Pin::new(inner).poll_read(cx, buf)),
                    Self::Quic(inner) => Pin::new(inner).poll_read(cx, buf),
                }
            }
        }
    )*};
}

/// `AsyncWrite` for each enum, passed to the kind inside, vectored writes
/// included: the codec writes a frame's header and body in one call where
/// the stream takes a vector.
macro_rules! write_through {
    ($($ty:ident),*) => {$(
        impl AsyncWrite for $ty {
            fn poll_write(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &[u8],
            ) -> Poll<io::Result<usize>> {
                match self.get_mut() {
                    Self::Tcp(inner) => Pin::new(inner).poll_write(cx, buf),
                    Self::Unix(inner) => Pin::new(inner).poll_write(cx, buf),
                    Self::Seqpacket(inner) => Pin::new(inner).poll_write(cx, buf),
                    Self::Tls(inner) => Pin::new(inner).poll_write(cx, buf),
                    Self::Quic(inner) => Pin::new(inner).poll_write(cx, buf),
                }
            }

            fn poll_write_vectored(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                bufs: &[io::IoSlice<'_>],
            ) -> Poll<io::Result<usize>> {
                match self.get_mut() {
                    Self::Tcp(inner) => Pin::new(inner).poll_write_vectored(cx, bufs),
                    Self::Unix(inner) => Pin::new(inner).poll_write_vectored(cx, bufs),
                    Self::Seqpacket(inner) => Pin::new(inner).poll_write_vectored(cx, bufs),
                    Self::Tls(inner) => Pin::new(inner).poll_write_vectored(cx, bufs),
                    Self::Quic(inner) => Pin::new(inner).poll_write_vectored(cx, bufs),
                }
            }

            fn is_write_vectored(&self) -> bool {
                match self {
                    Self::Tcp(inner) => inner.is_write_vectored(),
                    Self::Unix(inner) => inner.is_write_vectored(),
                    Self::Seqpacket(inner) => inner.is_write_vectored(),
                    Self::Tls(inner) => inner.is_write_vectored(),
                    Self::Quic(inner) => inner.is_write_vectored(),
                }
            }

            fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                match self.get_mut() {
                    Self::Tcp(inner) => Pin::new(inner).poll_flush(cx),
                    Self::Unix(inner) => Pin::new(inner).poll_flush(cx),
                    Self::Seqpacket(inner) => Pin::new(inner).poll_flush(cx),
                    Self::Tls(inner) => Pin::new(inner).poll_flush(cx),
                    Self::Quic(inner) => Pin::new(inner).poll_flush(cx),
                }
            }

            fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                match self.get_mut() {
                    Self::Tcp(inner) => Pin::new(inner).poll_shutdown(cx),
                    Self::Unix(inner) => Pin::new(inner).poll_shutdown(cx),
                    Self::Seqpacket(inner) => Pin::new(inner).poll_shutdown(cx),
                    Self::Tls(inner) => Pin::new(inner).poll_shutdown(cx),
                    Self::Quic(inner) => Pin::new(inner).poll_shutdown(cx),
                }
            }
        }
    )*};
}

/// A TLS session's end without `close_notify`: the TCP connection closed
/// while the session was open. Anyone on the path can cut a session so,
/// and what was still on its way is lost unseen: between two frames the
/// framing cannot tell, and a cut of 194,836 messages, or of the tail of
/// a raw file, left both ends exiting 0 (audit, round nine). So it is an
/// error, [`Truncated`], where a socket's close is the stream's end; every
/// msg peer ends its sessions with `close_notify`.
fn end_of_session(read: Poll<io::Result<()>>) -> Poll<io::Result<()>> {
    match read {
        Poll::Ready(Err(err)) if err.kind() == io::ErrorKind::UnexpectedEof => {
            Poll::Ready(Err(io::Error::new(io::ErrorKind::UnexpectedEof, Truncated)))
        }
        other => other,
    }
}

/// The error of a TLS session that ended without `close_notify` (see
/// [`end_of_session`]).
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error(
    "the peer ended the TLS session without close_notify: what was sent last may have been cut \
     off on the way"
)]
pub(crate) struct Truncated;

read_through!(AnyStream, AnyReader);
write_through!(AnyStream, AnyWriter);
