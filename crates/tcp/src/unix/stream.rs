//! [`UnixStream`]: a connected Unix stream socket on the tokio runtime,
//! and its halves, registered for what each waits on (`readiness.rs`):
//! tokio's own `UnixStream` would wake the runtime once more a message
//! for a writable edge nobody waits for.

use std::io;
use std::os::fd::{BorrowedFd, OwnedFd};
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use socket2::SockRef;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::{SEND_BUFFER, UnixPath, UnixPeer, peer_cred};
use crate::readiness::{Reader, Writer};
use crate::{Options, PeerAddr, Stream};

/// A connected Unix stream socket on the tokio runtime.
#[derive(Debug)]
pub struct UnixStream {
    read: UnixReader,
    write: UnixWriter,
}

/// The reading half of a [`UnixStream`].
#[derive(Debug)]
pub struct UnixReader {
    half: Reader,
}

/// The writing half of a [`UnixStream`]; shutting it down, or dropping
/// it, ends the stream for the peer.
#[derive(Debug)]
pub struct UnixWriter {
    half: Writer,
}

impl UnixStream {
    /// `socket`, connected or accepted, on the current runtime (made
    /// non-blocking).
    ///
    /// # Errors
    ///
    /// When it cannot be registered with the runtime.
    pub fn from_std(socket: std::os::unix::net::UnixStream) -> io::Result<Self> {
        let (read, write) = crate::readiness::split(OwnedFd::from(socket))?;
        Ok(Self {
            read: UnixReader { half: read },
            write: UnixWriter { half: write },
        })
    }

    fn fd(&self) -> BorrowedFd<'_> {
        self.read.half.fd()
    }

    /// Waits until the peer has sent something or closed, taking nothing:
    /// for a listener that gives a connection a turn at its handshake
    /// only once the client has begun it.
    ///
    /// # Errors
    ///
    /// The socket's.
    pub async fn input(&self) -> io::Result<()> {
        self.read.half.input().await
    }

    /// The peer, as the kernel reports it: the path it is bound to, if
    /// any (a client seldom is), and its credentials.
    pub(super) fn peer(&self) -> UnixPeer {
        let path = SockRef::from(&self.fd()).peer_addr().ok().and_then(|addr| {
            let abstract_name = || {
                addr.as_abstract_namespace()
                    .map(|name| UnixPath::Abstract(name.to_vec()))
            };
            addr.as_pathname()
                .map(|path| UnixPath::File(path.to_owned()))
                .or_else(abstract_name)
        });
        UnixPeer {
            path,
            cred: peer_cred(&self.fd()),
        }
    }
}

impl AsyncRead for UnixReader {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if buf.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        let read = self.get_mut().half.poll_read_with(cx, |fd| {
            // SAFETY: `recv` writes bytes into the room, never reads it or
            // de-initialises it; only the `n` bytes it wrote are marked
            // filled below.
            let room = unsafe { buf.unfilled_mut() };
            let len = room.len();
            let n = SockRef::from(&fd).recv(room)?;
            // A short read emptied the socket, as tokio's own streams
            // take it: the next read waits for the next event rather
            // than trying a receive that would find nothing.
            Ok((n, n > 0 && n < len))
        });
        let n = ready!(read)?;
        // SAFETY: `recv` wrote the first `n` bytes of the room.
        unsafe { buf.assume_init(n) };
        buf.advance(n);
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for UnixWriter {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.get_mut().half.poll_send(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.get_mut().half.poll_send_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(self.half.shutdown())
    }
}

crate::readiness::by_halves!(UnixStream);

impl Stream for UnixStream {
    type Reader = UnixReader;
    type Writer = UnixWriter;

    /// A Unix stream has neither Nagle's algorithm nor keepalive: every
    /// write is handed to the peer's queue at once, and a peer that dies
    /// is seen at once.
    fn apply(&self, _options: &Options) -> io::Result<()> {
        // Best effort: a system that caps it lower keeps its own size.
        let _ = SockRef::from(&self.fd()).set_send_buffer_size(SEND_BUFFER);
        Ok(())
    }

    fn peer_addr(&self) -> io::Result<PeerAddr> {
        Ok(PeerAddr::Unix(self.peer()))
    }

    fn into_split(self) -> (UnixReader, UnixWriter) {
        (self.read, self.write)
    }

    fn input_waiting(&self) -> bool {
        crate::stream::input_waiting(SockRef::from(&self.fd()))
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    fn pair() -> (UnixStream, UnixStream) {
        let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
        (
            UnixStream::from_std(a).unwrap(),
            UnixStream::from_std(b).unwrap(),
        )
    }

    /// More than the send buffer holds, both ways at once: each writer
    /// finds the buffer full, waits on its writable registration and goes
    /// on; every byte arrives in order; a writer's shutdown, and then the
    /// writing half's drop, end each way for its reader.
    #[tokio::test]
    async fn a_full_send_buffer_waits_and_every_byte_arrives_in_order() {
        let (a, b) = pair();
        let big: Vec<u8> = (0..3_000_000u32).map(|n| (n % 251) as u8).collect();
        let (mut a_read, mut a_write) = a.into_split();
        let (mut b_read, b_write) = b.into_split();
        let sent = big.clone();
        let writer = tokio::spawn(async move {
            a_write.write_all(&sent).await.unwrap();
            a_write.shutdown().await.unwrap();
        });
        let back = tokio::spawn(async move {
            let mut b_write = b_write;
            b_write.write_all(b"and back").await.unwrap();
            // Dropped without a shutdown: the end all the same.
        });
        let mut got = Vec::new();
        let read = tokio::time::timeout(
            std::time::Duration::from_secs(10),
            b_read.read_to_end(&mut got),
        );
        read.await.unwrap().unwrap();
        writer.await.unwrap();
        assert_eq!(got, big);
        back.await.unwrap();
        let mut answer = Vec::new();
        let read = tokio::time::timeout(
            std::time::Duration::from_secs(10),
            a_read.read_to_end(&mut answer),
        );
        read.await.unwrap().unwrap();
        assert_eq!(answer, b"and back");
    }
}
