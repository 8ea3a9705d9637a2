//! [`Error`]: everything the TCP transport can report.

use std::io;
use std::net::SocketAddr;

use msg_proto::HEADER_LEN;

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
    /// The caller asked to send a message whose frame would exceed the
    /// maximum frame length; nothing was sent.
    ///
    /// The text names the body, not the frame, because the body is what the
    /// caller chose; it then says how much body fits, so nobody has to know
    /// that the frame also holds a header.
    #[error(
        "message is {body} bytes; a TCP frame holds at most {max_frame} bytes, set by \
         --max-frame ({} for the body after a {HEADER_LEN}-byte header)",
        .max_frame.saturating_sub(HEADER_LEN)
    )]
    TooLarge {
        /// The body's length: the msg header and the length prefix are not
        /// counted.
        body: usize,
        /// The maximum frame length in force: the msg header and the body,
        /// without the 4-byte length prefix.
        max_frame: usize,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn too_large_names_the_body_and_what_fits() {
        let err = Error::TooLarge {
            body: 100,
            max_frame: 100,
        };
        assert_eq!(
            err.to_string(),
            "message is 100 bytes; a TCP frame holds at most 100 bytes, set by --max-frame \
             (72 for the body after a 28-byte header)"
        );
    }
}
