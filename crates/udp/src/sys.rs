//! The socket's readiness, registered for what msg waits on.
//!
//! tokio's own `UdpSocket` registers for readable *and* writable events,
//! edge-triggered. On Linux every datagram the socket sends frees its
//! send-buffer space a moment later, and that raises a writable edge that
//! wakes the runtime for nothing: in a loopback ping-pong, `strace` counted
//! four `epoll_wait` calls per round trip instead of two (BENCHMARKS.md has
//! what removing them saved).
//!
//! So on Unix the socket is registered for readability alone, and a send is
//! attempted directly. Only when the send buffer is full (`EWOULDBLOCK`),
//! which a UDP send rarely meets, does a duplicate descriptor get a
//! writable registration of its own, kept while sends keep finding the
//! buffer full and dropped at the first send that goes straight through.

use std::io;
use std::net::{SocketAddr, UdpSocket};

use bytes::BytesMut;

#[cfg(unix)]
pub(crate) use unix::Io;
#[cfg(unix)]
pub use unix::{OwnedSocket, Readiness};

#[cfg(not(unix))]
pub(crate) use portable::Io;

#[cfg(unix)]
mod unix {
    use std::os::fd::{AsFd, AsRawFd, OwnedFd};

    use super::{BytesMut, SocketAddr, UdpSocket, io};
    use tokio::io::Interest;
    use tokio::io::unix::AsyncFd;

    /// What a receive waits for. `ERROR` too: an ICMP "port unreachable"
    /// for a connected socket raises only `EPOLLERR`, and the receive call
    /// that it wakes returns the error ("connection refused").
    const RECV: Interest = Interest::READABLE.add(Interest::ERROR);

    /// What a send that found the buffer full waits for.
    const SEND: Interest = Interest::WRITABLE.add(Interest::ERROR);

    /// A non-blocking socket of any kind registered with the tokio runtime
    /// as the module docs say: for readable events alone, and, only while
    /// sends find its buffer full, through a duplicate descriptor for
    /// writable ones. msg's UDP socket is one; so is msg-net's Unix
    /// datagram socket, whose every datagram read by its peer raises a
    /// writable edge on Linux (`unix_write_space` wakes the sender's
    /// waiters whenever a datagram's memory is freed).
    #[derive(Debug)]
    pub struct Readiness<T: AsRawFd> {
        /// Readable events only.
        socket: AsyncFd<T>,
        /// The same socket through a duplicate descriptor, registered for
        /// writable events while sends are waiting for buffer space.
        writer: Option<AsyncFd<T>>,
    }

    /// The UDP socket's registration.
    pub(crate) type Io = Readiness<UdpSocket>;

    /// A socket of the standard library's that [`Readiness`] registers:
    /// one that owns its descriptor for its whole life and never swaps it
    /// for another, as the runtime's registration needs. Sealed: only the
    /// kinds listed here.
    pub trait OwnedSocket: AsRawFd + AsFd + From<OwnedFd> + sealed::Sealed {}

    mod sealed {
        pub trait Sealed {}
        impl Sealed for std::net::UdpSocket {}
        impl Sealed for std::os::unix::net::UnixDatagram {}
    }

    impl OwnedSocket for UdpSocket {}
    impl OwnedSocket for std::os::unix::net::UnixDatagram {}

    /// Registers `socket` (made non-blocking) with the current runtime for
    /// `interest` alone.
    fn register<T: OwnedSocket>(socket: T, interest: Interest) -> io::Result<AsyncFd<T>> {
        socket2::SockRef::from(&socket).set_nonblocking(true)?;
        // SAFETY: an `OwnedSocket` owns its descriptor, never swaps it for
        // another, and `as_raw_fd` always returns it; the `AsyncFd` owns
        // the socket, so the descriptor outlives the registration.
        unsafe { AsyncFd::register_with_interest(socket, interest) }.map_err(io::Error::from)
    }

    impl<T: OwnedSocket> Readiness<T> {
        /// Registers `socket`, made non-blocking, for readable events.
        ///
        /// # Errors
        ///
        /// When it cannot be registered with the tokio runtime (there is
        /// none, or the operating system refuses).
        pub fn new(socket: T) -> io::Result<Self> {
            Ok(Self {
                socket: register(socket, RECV)?,
                writer: None,
            })
        }

        /// The socket.
        pub fn get_ref(&self) -> &T {
            self.socket.get_ref()
        }

        /// Runs `op` (a receive of some kind) when the socket is readable,
        /// until it stops failing with `EWOULDBLOCK`.
        ///
        /// # Errors
        ///
        /// `op`'s, or the runtime's.
        pub async fn recv_with<R>(&self, op: impl FnMut(&T) -> io::Result<R>) -> io::Result<R> {
            self.socket.async_io(RECV, op).await
        }

        /// Runs `op` (a send of some kind) at once, and again whenever the
        /// socket is writable while it fails with `EWOULDBLOCK`.
        ///
        /// # Errors
        ///
        /// `op`'s, or the runtime's, or a failed duplicate descriptor.
        pub async fn send_with<R>(
            &mut self,
            mut op: impl FnMut(&T) -> io::Result<R>,
        ) -> io::Result<R> {
            match op(self.socket.get_ref()) {
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {}
                done => {
                    // Room again: stop listening for writable edges.
                    self.writer = None;
                    return done;
                }
            }
            let writer = match &mut self.writer {
                Some(writer) => writer,
                None => {
                    let dup = T::from(self.socket.get_ref().as_fd().try_clone_to_owned()?);
                    self.writer.insert(register(dup, SEND)?)
                }
            };
            // epoll reports a descriptor that is writable when it is added,
            // so room freed since the failed attempt is not missed.
            writer.async_io(SEND, op).await
        }
    }

    /// Receives one datagram into `buf`'s spare capacity without
    /// initialising it first.
    fn recv_into(socket: &UdpSocket, buf: &mut BytesMut) -> io::Result<(usize, SocketAddr)> {
        let sock = socket2::SockRef::from(socket);
        let (len, from) = crate::sync::recv_into(buf, |spare| sock.recv_from(spare))?;
        let from = from
            .as_socket()
            .ok_or_else(|| io::Error::other("a datagram from a non-IP address"))?;
        Ok((len, from))
    }

    fn send_once(socket: &UdpSocket, buf: &[u8], to: Option<SocketAddr>) -> io::Result<usize> {
        match to {
            Some(addr) => socket.send_to(buf, addr),
            None => socket.send(buf),
        }
    }

    impl Readiness<UdpSocket> {
        pub(crate) fn local_addr(&self) -> io::Result<SocketAddr> {
            self.get_ref().local_addr()
        }

        pub(crate) fn sock_ref(&self) -> socket2::SockRef<'_> {
            socket2::SockRef::from(self.get_ref())
        }

        pub(crate) fn try_clone(&self) -> io::Result<UdpSocket> {
            self.get_ref().try_clone()
        }

        pub(crate) async fn recv_from(
            &self,
            buf: &mut BytesMut,
        ) -> io::Result<(usize, SocketAddr)> {
            self.recv_with(|socket| recv_into(socket, buf)).await
        }

        pub(crate) async fn send(
            &mut self,
            buf: &[u8],
            to: Option<SocketAddr>,
        ) -> io::Result<usize> {
            self.send_with(|socket| send_once(socket, buf, to)).await
        }
    }
}

/// Elsewhere, tokio's socket as it is.
#[cfg(not(unix))]
mod portable {
    use super::{BytesMut, SocketAddr, UdpSocket, io};

    #[derive(Debug)]
    pub(crate) struct Io {
        socket: tokio::net::UdpSocket,
    }

    impl Io {
        pub(crate) fn new(socket: UdpSocket) -> io::Result<Self> {
            socket.set_nonblocking(true)?;
            Ok(Self {
                socket: tokio::net::UdpSocket::from_std(socket)?,
            })
        }

        pub(crate) fn local_addr(&self) -> io::Result<SocketAddr> {
            self.socket.local_addr()
        }

        pub(crate) fn sock_ref(&self) -> socket2::SockRef<'_> {
            socket2::SockRef::from(&self.socket)
        }

        pub(crate) fn try_clone(&self) -> io::Result<UdpSocket> {
            Ok(socket2::SockRef::from(&self.socket).try_clone()?.into())
        }

        pub(crate) async fn recv_from(
            &self,
            buf: &mut BytesMut,
        ) -> io::Result<(usize, SocketAddr)> {
            self.socket.recv_buf_from(buf).await
        }

        pub(crate) async fn send(
            &mut self,
            buf: &[u8],
            to: Option<SocketAddr>,
        ) -> io::Result<usize> {
            match to {
                Some(addr) => self.socket.send_to(buf, addr).await,
                None => self.socket.send(buf).await,
            }
        }
    }
}
