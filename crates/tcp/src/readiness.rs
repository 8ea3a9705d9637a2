//! A Unix socket's halves on the tokio runtime, registered for what they
//! wait on.
//!
//! tokio's own Unix sockets register for readable *and* writable events,
//! edge-triggered. On Linux every byte or packet the peer reads frees this
//! socket's memory, and `unix_write_space` then wakes whoever waits to
//! write, whether the send buffer was ever full or not: a writable edge per
//! message that wakes the runtime for nothing. In a loopback ping-pong
//! `strace -c` counted two `epoll_wait` calls per message over a Unix
//! stream and a seqpacket socket, against one over TCP (BENCHMARKS.md).
//!
//! So the reading half's descriptor is registered for readability alone,
//! and the writing half writes directly. Only when a write finds the
//! buffer full (`EWOULDBLOCK`) does a duplicate descriptor get a writable
//! registration of its own, kept while writes keep finding it full and
//! dropped at the first write that goes through: msg-udp's `Readiness`,
//! which does the same for datagram sockets, in the poll form that
//! `AsyncRead` and `AsyncWrite` need. (A bulk writer over a full buffer
//! so registers once per write that blocks: a few times a file.)

use std::io;
use std::net::Shutdown;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use nix::sys::socket::MsgFlags;
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

/// A send's flags: never waiting (the descriptor is non-blocking too),
/// and a peer that has gone is an error (`EPIPE`), not a signal that ends
/// the process.
const SEND_FLAGS: i32 = MsgFlags::MSG_DONTWAIT.bits() | MsgFlags::MSG_NOSIGNAL.bits();

/// The reading half: the socket, registered for readable events.
#[derive(Debug)]
pub(crate) struct Reader {
    fd: Arc<AsyncFd<OwnedFd>>,
}

/// The writing half: writes go to the reading half's descriptor; a
/// duplicate is registered for writable events only while a write waits.
/// Dropping it shuts the connection down for writing, as dropping tokio's
/// `OwnedWriteHalf` does, so that the peer reads the end.
#[derive(Debug)]
pub(crate) struct Writer {
    fd: Arc<AsyncFd<OwnedFd>>,
    waiting: Option<AsyncFd<OwnedFd>>,
}

/// Registers `fd` (made non-blocking) with the current runtime for
/// `interest` alone.
fn register(fd: OwnedFd, interest: Interest) -> io::Result<AsyncFd<OwnedFd>> {
    socket2::SockRef::from(&fd).set_nonblocking(true)?;
    // SAFETY: an `OwnedFd` owns its descriptor and `as_raw_fd` always
    // returns it; the `AsyncFd` owns the `OwnedFd`, so the descriptor
    // outlives the registration.
    unsafe { AsyncFd::register_with_interest(fd, interest) }.map_err(io::Error::from)
}

/// The connected socket `fd`'s two halves, on the current runtime.
///
/// # Errors
///
/// When it cannot be registered (no runtime, or the operating system
/// refuses).
pub(crate) fn split(fd: OwnedFd) -> io::Result<(Reader, Writer)> {
    let fd = Arc::new(register(fd, Interest::READABLE)?);
    let writer = Writer {
        fd: Arc::clone(&fd),
        waiting: None,
    };
    Ok((Reader { fd }, writer))
}

impl Reader {
    /// The socket.
    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        self.fd.get_ref().as_fd()
    }

    /// Waits until the peer has sent something, closed, or the socket
    /// failed (a read would not wait), taking nothing.
    pub(crate) async fn input(&self) -> io::Result<()> {
        std::future::poll_fn(|cx| {
            self.poll_read_with(cx, |fd| {
                let mut byte = [std::mem::MaybeUninit::uninit()];
                socket2::SockRef::from(&fd).peek(&mut byte)?;
                // What is there stays for the reader: not emptied.
                Ok(((), false))
            })
        })
        .await
    }

    /// Runs `op` (a receive) once the socket is readable, until it stops
    /// failing with `EWOULDBLOCK`. `op` also says whether it emptied the
    /// socket (a byte stream's short read): then the readiness is cleared
    /// at once, and the next read waits for the next event instead of
    /// trying a receive that would find nothing.
    pub(crate) fn poll_read_with<R>(
        &self,
        cx: &mut Context<'_>,
        mut op: impl FnMut(BorrowedFd<'_>) -> io::Result<(R, bool)>,
    ) -> Poll<io::Result<R>> {
        loop {
            let mut guard = ready!(self.fd.poll_read_ready(cx))?;
            match op(self.fd.get_ref().as_fd()) {
                Ok((got, emptied)) => {
                    if emptied {
                        guard.clear_ready();
                    }
                    return Poll::Ready(Ok(got));
                }
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => guard.clear_ready(),
                Err(err) => return Poll::Ready(Err(err)),
            }
        }
    }
}

impl Writer {
    /// Runs `op` (a send) at once, and again whenever the socket is
    /// writable while it fails with `EWOULDBLOCK`.
    pub(crate) fn poll_write_with<R>(
        &mut self,
        cx: &mut Context<'_>,
        mut op: impl FnMut(BorrowedFd<'_>) -> io::Result<R>,
    ) -> Poll<io::Result<R>> {
        // A write that goes through at once asks the runtime nothing, so it
        // would never give the thread back: a task that only writes (a
        // stream back to a client that keeps up) held a current-thread
        // listener for as long as it wrote, every other client and Ctrl-C
        // waiting (audit, round four). Each write spends the task's budget,
        // as a tokio socket's does, and yields when it is spent.
        let coop = ready!(tokio::task::coop::poll_proceed(cx));
        let written = self.poll_write_inner(cx, &mut op);
        if written.is_ready() {
            coop.made_progress();
        }
        written
    }

    fn poll_write_inner<R>(
        &mut self,
        cx: &mut Context<'_>,
        op: &mut impl FnMut(BorrowedFd<'_>) -> io::Result<R>,
    ) -> Poll<io::Result<R>> {
        loop {
            if let Some(waiting) = &self.waiting {
                let mut guard = ready!(waiting.poll_write_ready(cx))?;
                match op(self.fd.get_ref().as_fd()) {
                    Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                        guard.clear_ready();
                        continue;
                    }
                    done => {
                        // Room again: stop listening for writable edges.
                        drop(guard);
                        self.waiting = None;
                        return Poll::Ready(done);
                    }
                }
            }
            match op(self.fd.get_ref().as_fd()) {
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                    // epoll reports a descriptor that is writable when it is
                    // added, so room freed since this attempt is not missed.
                    let dup = self.fd.get_ref().try_clone()?;
                    self.waiting = Some(register(dup, Interest::WRITABLE)?);
                }
                done => return Poll::Ready(done),
            }
        }
    }

    /// Sends `buf` (`send`, never raising `SIGPIPE`), as
    /// [`Writer::poll_write_with`]: a byte stream's write, a seqpacket
    /// socket's one packet.
    pub(crate) fn poll_send(
        &mut self,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.poll_write_with(cx, |fd| {
            socket2::SockRef::from(&fd).send_with_flags(buf, SEND_FLAGS)
        })
    }

    /// Sends the slices in one `sendmsg`, as [`Writer::poll_send`].
    pub(crate) fn poll_send_vectored(
        &mut self,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.poll_write_with(cx, |fd| {
            socket2::SockRef::from(&fd).send_vectored_with_flags(bufs, SEND_FLAGS)
        })
    }

    /// Shuts the connection down for writing: the peer reads its end.
    pub(crate) fn shutdown(&self) -> io::Result<()> {
        socket2::SockRef::from(self.fd.get_ref()).shutdown(Shutdown::Write)
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        // As tokio's `OwnedWriteHalf`: the peer sees the end even while
        // the reading half lives on. Already shut down, or gone: nothing
        // to tell anyone.
        let _ = self.shutdown();
    }
}

/// `AsyncRead` and `AsyncWrite` for a stream made of a reading half (its
/// field `read`) and a writing half (`write`): each call passed on to its
/// half, so that a stream and its split halves behave the same.
macro_rules! by_halves {
    ($stream:ty) => {
        impl tokio::io::AsyncRead for $stream {
            fn poll_read(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                buf: &mut tokio::io::ReadBuf<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                std::pin::Pin::new(&mut self.get_mut().read).poll_read(cx, buf)
            }
        }

        impl tokio::io::AsyncWrite for $stream {
            fn poll_write(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                buf: &[u8],
            ) -> std::task::Poll<std::io::Result<usize>> {
                std::pin::Pin::new(&mut self.get_mut().write).poll_write(cx, buf)
            }

            fn poll_write_vectored(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                bufs: &[std::io::IoSlice<'_>],
            ) -> std::task::Poll<std::io::Result<usize>> {
                std::pin::Pin::new(&mut self.get_mut().write).poll_write_vectored(cx, bufs)
            }

            fn is_write_vectored(&self) -> bool {
                self.write.is_write_vectored()
            }

            fn poll_flush(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                std::pin::Pin::new(&mut self.get_mut().write).poll_flush(cx)
            }

            fn poll_shutdown(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                std::pin::Pin::new(&mut self.get_mut().write).poll_shutdown(cx)
            }
        }
    };
}

pub(crate) use by_halves;
