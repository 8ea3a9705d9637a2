//! The reverse stream: a client asks a listener to stream to it
//! ([`SendRequest`], the body of a [`Kind::Ping`](crate::Kind::Ping) with
//! [`FLAG_SEND`](crate::FLAG_SEND)), and the listener says, in the
//! [`Kind::Pong`](crate::Kind::Pong) that ends the stream, how many
//! [`Kind::Discard`](crate::Kind::Discard)s it sent ([`Streamed`]).
//!
//! Both halves live here, as the statistics pong's do (`stats.rs`): the
//! writer and the reader of each body cannot drift apart.
//!
//! ```text
//! request (16 bytes)
//!  0                              8               12              16
//! +-------------------------------+---------------+---------------+
//! |          duration_us          |     size      |   reserved    |
//! |            u64 BE             |    u32 BE     |   4 zeros     |
//! +-------------------------------+---------------+---------------+
//!
//! answer (16 bytes)
//!  0                              8                              16
//! +-------------------------------+-------------------------------+
//! |             sent              |           reserved            |
//! |            u64 BE             |            8 zeros            |
//! +-------------------------------+-------------------------------+
//! ```

use std::time::Duration;

use crate::Error;

/// A request to stream: `Discard`s of `size` body bytes for `duration`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SendRequest {
    /// How long the listener streams, more than zero and at most
    /// [`SendRequest::MAX_DURATION`]; on the wire in whole microseconds.
    pub duration: Duration,
    /// Each `Discard`'s body, in bytes.
    pub size: u32,
}

impl SendRequest {
    /// The length of the request's body.
    pub const BODY_LEN: usize = 16;

    /// The longest stream a listener is asked for: an hour. A request
    /// for longer is refused, so that one message cannot keep a
    /// listener writing for ever.
    pub const MAX_DURATION: Duration = Duration::from_secs(3600);

    /// The request's body: the duration in microseconds (rounded down),
    /// the size, four zero bytes, big-endian.
    pub fn to_body(&self) -> [u8; Self::BODY_LEN] {
        let micros = u64::try_from(self.duration.as_micros()).unwrap_or(u64::MAX);
        let mut body = [0; Self::BODY_LEN];
        body[..8].copy_from_slice(&micros.to_be_bytes());
        body[8..12].copy_from_slice(&self.size.to_be_bytes());
        body
    }

    /// Reads a request's body, refusing what a listener must not do:
    /// bytes after the first 16 are ignored (a later version may append
    /// fields), the reserved bytes are not checked.
    ///
    /// # Errors
    ///
    /// [`Error::SendRequestTooShort`] under 16 bytes,
    /// [`Error::SendDuration`] for a duration of zero or over
    /// [`SendRequest::MAX_DURATION`], [`Error::SendSize`] for a size over
    /// `max_size`, the largest body the connection carries.
    pub fn parse(body: &[u8], max_size: usize) -> Result<Self, Error> {
        let Some(fields) = body.get(..Self::BODY_LEN) else {
            return Err(Error::SendRequestTooShort { len: body.len() });
        };
        let micros = u64::from_be_bytes(fields[..8].try_into().expect("8 bytes"));
        let size = u32::from_be_bytes(fields[8..12].try_into().expect("4 bytes"));
        let duration = Duration::from_micros(micros);
        if duration.is_zero() || duration > Self::MAX_DURATION {
            return Err(Error::SendDuration { micros });
        }
        if size as usize > max_size {
            return Err(Error::SendSize {
                size,
                max: max_size,
            });
        }
        Ok(Self { duration, size })
    }
}

/// What the listener sent in answer to a [`SendRequest`]: the body of the
/// [`Kind::Pong`](crate::Kind::Pong) that ends its stream.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Streamed {
    /// How many `Discard`s it sent.
    pub sent: u64,
}

impl Streamed {
    /// The length of the answer's body.
    pub const BODY_LEN: usize = 16;

    /// The answer's body: `sent`, big-endian, then eight zero bytes.
    pub fn to_body(&self) -> [u8; Self::BODY_LEN] {
        let mut body = [0; Self::BODY_LEN];
        body[..8].copy_from_slice(&self.sent.to_be_bytes());
        body
    }

    /// Reads an answer's body; bytes after the first 8 are ignored.
    ///
    /// # Errors
    ///
    /// [`Error::StreamedTooShort`] under 8 bytes.
    pub fn parse(body: &[u8]) -> Result<Self, Error> {
        let sent = body
            .get(..8)
            .map(|b| u64::from_be_bytes(b.try_into().expect("8 bytes")))
            .ok_or(Error::StreamedTooShort { len: body.len() })?;
        Ok(Self { sent })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_request_round_trips_in_the_documented_bytes() {
        let request = SendRequest {
            duration: Duration::from_secs(2),
            size: 1024,
        };
        let body = request.to_body();
        assert_eq!(
            body,
            *b"\x00\x00\x00\x00\x00\x1e\x84\x80\x00\x00\x04\x00\x00\x00\x00\x00"
        );
        assert_eq!(SendRequest::parse(&body, 1024), Ok(request));
    }

    #[test]
    fn a_request_is_refused_short_empty_endless_or_too_large() {
        let body = |micros: u64, size: u32| {
            let mut b = micros.to_be_bytes().to_vec();
            b.extend(size.to_be_bytes());
            b.extend([0; 4]);
            b
        };
        assert_eq!(
            SendRequest::parse(&body(1, 1)[..15], 64),
            Err(Error::SendRequestTooShort { len: 15 })
        );
        assert_eq!(
            SendRequest::parse(&body(0, 1), 64),
            Err(Error::SendDuration { micros: 0 })
        );
        let hour = 3_600_000_000;
        assert!(SendRequest::parse(&body(hour, 1), 64).is_ok());
        assert_eq!(
            SendRequest::parse(&body(hour + 1, 1), 64),
            Err(Error::SendDuration { micros: hour + 1 })
        );
        assert_eq!(
            SendRequest::parse(&body(1, 65), 64),
            Err(Error::SendSize { size: 65, max: 64 })
        );
        assert_eq!(
            Error::SendDuration { micros: 0 }.to_string(),
            "a request to stream for 0 µs; the listener streams for 1 µs to 1 hour"
        );
    }

    #[test]
    fn the_answer_round_trips_and_ignores_a_longer_tail() {
        let streamed = Streamed { sent: 0x0102 };
        let mut body = streamed.to_body().to_vec();
        assert_eq!(&body[..8], b"\x00\x00\x00\x00\x00\x00\x01\x02");
        assert_eq!(&body[8..], [0; 8]);
        body.extend(b"later");
        assert_eq!(Streamed::parse(&body), Ok(streamed));
        assert_eq!(
            Streamed::parse(b"abc"),
            Err(Error::StreamedTooShort { len: 3 })
        );
    }

    proptest! {
        // A peer's request: refused exactly for the reasons above, and
        // otherwise read from where `to_body` writes.
        #[test]
        fn arbitrary_requests_never_panic(
            body in proptest::collection::vec(any::<u8>(), 0..40),
            max in 0usize..100_000,
        ) {
            match SendRequest::parse(&body, max) {
                Ok(request) => {
                    prop_assert!(!request.duration.is_zero());
                    prop_assert!(request.duration <= SendRequest::MAX_DURATION);
                    prop_assert!(request.size as usize <= max);
                    prop_assert_eq!(&request.to_body()[..12], &body[..12]);
                }
                Err(Error::SendRequestTooShort { len }) => prop_assert!(len < 16),
                Err(Error::SendDuration { .. } | Error::SendSize { .. }) => {
                    prop_assert!(body.len() >= 16);
                }
                Err(other) => prop_assert!(false, "{other}"),
            }
        }

        #[test]
        fn arbitrary_answers_never_panic(body in proptest::collection::vec(any::<u8>(), 0..24)) {
            match Streamed::parse(&body) {
                Ok(streamed) => prop_assert_eq!(&streamed.to_body()[..8], &body[..8]),
                Err(err) => prop_assert_eq!(err, Error::StreamedTooShort { len: body.len() }),
            }
        }
    }
}
