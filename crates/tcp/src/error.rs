//! [`Error`]: everything the TCP transport can report.

use crate::PeerAddr;
use std::io;

use msg_proto::HEADER_LEN;
use msg_proto::auth::AuthError;

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
    /// Where a frame's length was expected, the header of a TLS record:
    /// the peer speaks TLS (a TLS client at a plain listener, or a TLS
    /// listener's alert to a plain client). Nothing was allocated; the
    /// connection should be closed.
    #[error("the peer speaks TLS (its first bytes are {0}), and this end does not")]
    Tls(crate::tls::TlsRecord),
    /// The caller asked to send a message whose frame would exceed the
    /// maximum frame length; nothing was sent.
    ///
    /// The text names the body, not the frame, because the body is what the
    /// caller chose; it then says how much body fits, so nobody has to know
    /// that the frame also holds a header (and, once authenticated, a tag).
    #[error(
        "message is {body} bytes; a TCP frame holds at most {max_frame} bytes ({})",
        body_hint(*.max_frame, *.tag)
    )]
    TooLarge {
        /// The body's length: the msg header, the tag and the length prefix
        /// are not counted.
        body: usize,
        /// The maximum frame length in force: the msg header, the body and
        /// the tag, without the 4-byte length prefix.
        max_frame: usize,
        /// The authentication tag the frame would carry after the body:
        /// [`msg_proto::auth::TAG_LEN`] on an authenticated connection, else
        /// 0.
        tag: usize,
    },
    /// The caller asked to send a body over the maximum of a bare
    /// length-prefixed frame ([`LengthCodec`](crate::LengthCodec)), which
    /// holds the body alone; nothing was sent.
    #[error("message is {body} bytes; a length-prefixed frame holds at most {max_frame} bytes")]
    BodyTooLarge {
        /// The body's length.
        body: usize,
        /// The maximum in force.
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
    /// On an authenticated connection, a frame failed verification (or a
    /// frame could not be tagged). The connection must be closed: the two
    /// ends' frame counts are out of step for good.
    #[error("authentication failed on the connection")]
    Auth(#[from] AuthError),
    /// Binding the listening socket failed.
    #[error("cannot listen on {addr}")]
    Bind {
        /// The address asked for.
        addr: PeerAddr,
        /// Why.
        source: io::Error,
    },
    /// Connecting to the peer failed.
    #[error("cannot connect to {addr}")]
    Connect {
        /// The peer.
        addr: PeerAddr,
        /// Why.
        source: io::Error,
    },
    /// Reading or writing the stream failed.
    #[error("i/o error on the connection")]
    Io(#[from] io::Error),
    /// A write waited this long for the peer to take what was written
    /// before, and gave up ([`Connection::set_write_timeout`](crate::Connection::set_write_timeout)):
    /// a peer that sends and never reads the answers. Part of a frame may
    /// have gone: the connection should be closed.
    #[error("the peer took nothing written to it for {} s: closed", .after.as_secs_f64())]
    WriteStalled {
        /// The write timeout in force.
        after: std::time::Duration,
    },
}

/// The parenthesis of [`Error::TooLarge`]'s text: how much of `max_frame` is
/// left for the body, and what takes the rest.
fn body_hint(max_frame: usize, tag: usize) -> String {
    // A frame too small for the header (and tag) holds no message at all.
    if max_frame < HEADER_LEN + tag {
        return match tag {
            0 => format!("too small for any message: its header alone is {HEADER_LEN} bytes"),
            tag => format!(
                "too small for any message: its header and tag alone are {} bytes",
                HEADER_LEN + tag
            ),
        };
    }
    let body = max_frame - (HEADER_LEN + tag);
    match tag {
        0 => format!("{body} for the body after a {HEADER_LEN}-byte header"),
        tag => format!("{body} for the body after a {HEADER_LEN}-byte header and a {tag}-byte tag"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn too_large_names_the_body_and_what_fits() {
        let err = Error::TooLarge {
            body: 100,
            max_frame: 100,
            tag: 0,
        };
        assert_eq!(
            err.to_string(),
            "message is 100 bytes; a TCP frame holds at most 100 bytes \
             (72 for the body after a 28-byte header)"
        );
    }

    #[test]
    fn too_large_counts_and_names_a_tag() {
        let err = Error::TooLarge {
            body: 100,
            max_frame: 100,
            tag: 32,
        };
        assert_eq!(
            err.to_string(),
            "message is 100 bytes; a TCP frame holds at most 100 bytes \
             (40 for the body after a 28-byte header and a 32-byte tag)"
        );
    }

    /// Audit, round five: a frame smaller than the header and the tag
    /// was said to leave "0 for the body"; it holds no message at all.
    #[test]
    fn a_frame_too_small_for_any_message_says_so() {
        let err = Error::TooLarge {
            body: 10,
            max_frame: 28,
            tag: 32,
        };
        assert_eq!(
            err.to_string(),
            "message is 10 bytes; a TCP frame holds at most 28 bytes \
             (too small for any message: its header and tag alone are 60 bytes)"
        );
    }

    #[test]
    fn an_auth_failure_keeps_its_cause() {
        let err = Error::from(AuthError::BadTag);
        assert_eq!(err.to_string(), "authentication failed on the connection");
        let source = std::error::Error::source(&err)
            .expect("a cause")
            .to_string();
        assert!(
            source.starts_with("authentication tag mismatch"),
            "{source}"
        );
    }
}
