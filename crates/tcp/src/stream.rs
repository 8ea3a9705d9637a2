//! [`Stream`]: what a framed [`Connection`](crate::Connection) needs of its
//! byte stream beyond reading and writing it.
//!
//! Framing needs only `AsyncRead + AsyncWrite` (tokio-util's
//! `Framed<T, U>`, h2's `handshake<T>`), and every method of a
//! [`Connection`](crate::Connection) that only reads and writes frames asks
//! no more, so authentication, files and commands run over any byte stream.
//! A few things differ from one kind of stream to the next, and those go
//! through this trait: who the peer is, the options a kind of socket takes,
//! how to split it into two halves that work at once, and whether input is
//! waiting. Each kind implements it in a file of its own: `tcp.rs` for
//! TCP, `unix/` for a Unix stream socket, `seqpacket/stream.rs` for a
//! sequenced-packet one, and `tls.rs` for TLS over any of them; msg-net
//! adds QUIC's stream (`quic/stream.rs`) and one for any of these
//! (`stream/dispatch.rs`) without changing this crate.

use std::fmt;
use std::io;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite};

use crate::{Options, PeerAddr};

/// A byte stream msg can frame, with what a connection needs to know about
/// it and do with it besides reading and writing.
pub trait Stream: AsyncRead + AsyncWrite + Unpin + Sized {
    /// The reading half [`Stream::into_split`] gives.
    type Reader: AsyncRead + Unpin + fmt::Debug;
    /// The writing half [`Stream::into_split`] gives; dropping it, or
    /// shutting it down, ends the stream for the peer.
    type Writer: AsyncWrite + Unpin + fmt::Debug;

    /// Sets the socket options of `options` that this kind of stream has
    /// (over TCP, `TCP_NODELAY`), on a stream just connected or accepted.
    ///
    /// # Errors
    ///
    /// The operating system's.
    fn apply(&self, options: &Options) -> io::Result<()>;

    /// Who is at the other end.
    ///
    /// # Errors
    ///
    /// The operating system's (the peer already gone, say).
    fn peer_addr(&self) -> io::Result<PeerAddr>;

    /// Two owned halves that two futures can use at once. Where the kind
    /// allows it they share no lock (TCP's `into_split`): the halves of a
    /// split link carry every message of a benchmark.
    fn into_split(self) -> (Self::Reader, Self::Writer);

    /// Whether the peer has sent something not yet read, or closed, or the
    /// stream failed (a read would not wait), found without waiting and
    /// without consuming anything: for a sender that streams and must hear
    /// a refusal as soon as it arrives. Bytes already read into a
    /// connection's buffer are the connection's to count
    /// ([`Connection::buffered`](crate::Connection::buffered)).
    fn input_waiting(&self) -> bool;
}

/// A listening socket for some kind of [`Stream`]: all a
/// [`Listener`](crate::Listener) needs of it. Binding is each kind's own
/// (its addresses differ), in its own file.
pub trait Accept {
    /// The kind of stream it accepts.
    type Stream: Stream;

    /// Polls for the next connection and its peer, as tokio's listeners
    /// do; must be cancel-safe, as theirs are.
    ///
    /// # Errors
    ///
    /// The operating system's (out of descriptors, say); the listener
    /// stays usable.
    fn poll_accept(&self, cx: &mut Context<'_>) -> Poll<io::Result<(Self::Stream, PeerAddr)>>;
}

/// [`Stream::input_waiting`] for a socket: a peek at one byte, which
/// tokio's non-blocking sockets answer at once (`WouldBlock`: nothing
/// yet; an end or an error: something to read).
pub(crate) fn input_waiting(socket: socket2::SockRef<'_>) -> bool {
    let mut byte = [std::mem::MaybeUninit::uninit()];
    match socket.peek(&mut byte) {
        Ok(_) => true,
        Err(err) => err.kind() != io::ErrorKind::WouldBlock,
    }
}
