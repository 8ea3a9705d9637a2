//! The one error type of this crate.

use std::io;
use std::time::Duration;

use msg_proto::Kind;

use crate::{PeerAddr, Transport};

/// What can go wrong in a link, a listener or the serve loop.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The UDP transport's error (a datagram too large, a failed send or
    /// receive, a bind); its text says which.
    #[error(transparent)]
    Udp(#[from] msg_udp::Error),
    /// The TCP transport's error (a frame too large, a connection closed
    /// mid-frame, a decode error, a failed connect).
    #[error(transparent)]
    Tcp(#[from] msg_tcp::Error),
    /// A Unix socket address that `sun_path` cannot hold, or none.
    #[error(transparent)]
    UnixPath(#[from] msg_tcp::unix::UnixPathError),
    /// A Unix listener could not start: its file is in use, or is not a
    /// socket, or the system refused.
    #[error(transparent)]
    UnixBind(#[from] msg_tcp::unix::BindError),
    /// Sending on a Unix datagram socket failed (nobody bound at the
    /// address, say).
    #[error("cannot send to {addr}")]
    UnixSend {
        /// Where it went.
        addr: String,
        /// Why.
        source: io::Error,
    },
    /// Receiving on a Unix datagram socket failed.
    #[error("cannot receive")]
    UnixRecv(#[source] io::Error),
    /// The host name could not be looked up.
    #[error("cannot resolve '{addr}'")]
    Resolve {
        /// The `HOST:PORT` asked for.
        addr: String,
        /// Why.
        source: io::Error,
    },
    /// The host name resolved to nothing.
    #[error("cannot resolve '{addr}': no addresses")]
    NoAddress {
        /// The `HOST:PORT` asked for.
        addr: String,
    },
    /// Nobody answered a TCP connect within the timeout.
    #[error("cannot connect to {addr}: no answer within {}", humantime::format_duration(*.timeout))]
    ConnectTimeout {
        /// The peer.
        addr: PeerAddr,
        /// How long we waited.
        timeout: Duration,
    },
    /// An address of the wrong kind for the transport: a path for UDP,
    /// say.
    #[error("{transport} needs {needs}, not {addr}")]
    AddressKind {
        /// The transport.
        transport: Transport,
        /// What kind of address it takes.
        needs: &'static str,
        /// The address given.
        addr: PeerAddr,
    },
    /// TLS could not be set up, or its handshake failed.
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
    /// QUIC could not start, or its handshake failed.
    #[error(transparent)]
    Quic(#[from] crate::quic::QuicError),
    /// Authentication failed; the source says why.
    #[error("authentication failed")]
    Auth(#[from] crate::auth::AuthFailure),
    /// The peer sent an `Error` message (its text, made safe to print).
    #[error("the listener says: {0}")]
    Peer(String),
    /// Receiving a reply failed; the source says why.
    #[error("cannot receive the reply")]
    Reply(#[source] Box<Self>),
    /// The listener answered a message with one of another kind than a
    /// reply (`Data`), over a connection.
    #[error("the listener answered message {seq} with {kind:?}, which is no reply")]
    NotAReply {
        /// The message it answered.
        seq: u64,
        /// What it answered with.
        kind: Kind,
    },
    /// Closing the connection failed; the source says why.
    #[error("cannot close the connection")]
    Close(#[source] Box<Self>),
    /// The connection was reset after our last messages were written:
    /// the peer had gone, and they may not have arrived.
    #[error(
        "the connection was reset: the peer had closed it, and what was sent last may not have arrived"
    )]
    Reset(#[source] io::Error),
    /// The peer closed the connection before it replied.
    #[error("{peer} closed the connection without replying")]
    NoReply {
        /// The peer.
        peer: PeerAddr,
    },
    /// No reply to a message within the wait.
    #[error(
        "no reply to message {seq} from {peer} within {}{}",
        humantime::format_duration(*.wait),
        if *.lossy { ": the datagram or its reply was lost, or nobody answers there" } else { "" }
    )]
    NoReplyWithin {
        /// The message's number.
        seq: u64,
        /// Where it went.
        peer: PeerAddr,
        /// How long msg waited.
        wait: Duration,
        /// Over a transport that may lose the message or its reply.
        lossy: bool,
    },
    /// A file could not be sent, or the receiver refused it.
    #[error(transparent)]
    File(#[from] crate::file::FileError),
    /// A TCP peer sent nothing for the idle timeout.
    #[error("idle for {} (the idle timeout): closed", humantime::format_duration(*.after))]
    Idle {
        /// How long it was idle.
        after: Duration,
    },
    /// A TCP peer started a frame and did not finish it in time.
    #[error("a frame did not complete within {} (the frame timeout): closed", humantime::format_duration(*.after))]
    FrameTimeout {
        /// How long it had.
        after: Duration,
    },
    /// A peer asked the listener to stream to it
    /// ([`FLAG_SEND`](msg_proto::FLAG_SEND)) with a request it does not
    /// carry out: too short, for no time or over an hour, or messages
    /// larger than the connection carries.
    #[error("refused a request to stream: {0}")]
    SendRefused(msg_proto::Error),
    /// A peer that asked the listener to stream to it read nothing for
    /// this long.
    #[error("the peer took nothing of the stream it asked for in {}: closed", humantime::format_duration(*.after))]
    StreamStalled {
        /// How long every write waited.
        after: Duration,
    },
    /// The blocking engine was asked for something only the tokio engine
    /// does.
    #[error("the blocking engine does not do {0}: use the tokio engine")]
    NotInBlockingEngine(&'static str),
    /// An empty message to send raw on a stream: nothing at all on a byte
    /// stream, and on a seqpacket connection an empty packet, which its
    /// receiver reads as the connection's end (a zero-length read), as
    /// msg's and socat's do. Refused, not sent (it failed as `write
    /// zero`; audit, round eight).
    #[error(
        "an empty message has no bytes to send raw: on a seqpacket connection an empty \
         packet reads as the connection's end to its receiver; not sent"
    )]
    EmptyRaw,
    /// Writing the caller's own output failed (the output of a remote
    /// command, say): not the connection's fault.
    #[error("cannot write the output")]
    Output(#[source] io::Error),
    /// Any other socket error.
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// Whether `err` is the peer's leaving: it closed (`EPIPE` on a write),
/// reset the connection, or is no longer connected. The one place that
/// decides it, for a listener's answers, a client's close and a raw send's
/// drain here, and the CLI's hint above.
pub fn peer_left(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset | io::ErrorKind::NotConnected
    )
}

/// Whether `err`, or the first I/O error among its causes, is the peer's
/// leaving ([`peer_left`]).
pub(crate) fn peer_left_in(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(err);
    while let Some(err) = next {
        if let Some(io) = err.downcast_ref::<io::Error>() {
            return peer_left(io);
        }
        next = err.source();
    }
    false
}
