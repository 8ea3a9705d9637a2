//! [`Error`]: everything the TCP transport can report.

use std::io;
use std::net::SocketAddr;

/// Errors of the TCP transport.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The peer announced a frame over the maximum; nothing was allocated
    /// for it and the connection should be closed.
    #[error("frame of {len} bytes exceeds the maximum of {max} bytes")]
    FrameTooLarge {
        /// The announced frame length.
        len: usize,
        /// The maximum in force.
        max: usize,
    },
    /// The caller asked to send a message over the maximum frame length;
    /// nothing was sent.
    #[error(
        "message is {len} bytes; a TCP frame holds at most {max} bytes (the maximum frame length)"
    )]
    TooLarge {
        /// The message's size, header included.
        len: usize,
        /// The maximum in force.
        max: usize,
    },
    /// The peer closed the connection inside a frame.
    #[error("connection closed mid-frame: {buffered} bytes of an unfinished frame")]
    ClosedMidFrame {
        /// How many bytes of the unfinished frame had arrived.
        buffered: usize,
    },
    /// A frame arrived whole but is not a valid msg message.
    #[error("invalid message")]
    Decode(#[from] msg_proto::Error),
    /// Binding the listening socket failed.
    #[error("cannot listen on {addr}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// Why.
        source: io::Error,
    },
    /// Connecting to the peer failed.
    #[error("cannot connect to {addr}")]
    Connect {
        /// The peer.
        addr: SocketAddr,
        /// Why.
        source: io::Error,
    },
    /// Reading or writing the stream failed.
    #[error("i/o error on the connection")]
    Io(#[from] io::Error),
}
