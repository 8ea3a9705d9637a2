//! [`Framing`]: what makes a datagram a msg message, with no socket and no
//! runtime. On the way out: the size check against the datagram limit, the
//! header, and the authentication trailer once [`Framing::authenticate`]
//! was called. On the way in: decoding, then (with a secret) the tag and
//! the replay window, and the counting and rate-limited logging of every
//! datagram dropped.
//!
//! The tokio [`Socket`](crate::Socket) owns one, and so does msg-net's
//! blocking engine, which moves the bytes with std sockets: both then
//! frame, authenticate and count alike, whoever moves the bytes.

use std::fmt;
use std::hash::Hash;
use std::net::SocketAddr;

use bytes::{Bytes, BytesMut};
use msg_proto::Message;
use msg_proto::auth::{Role, SESSION_ID_LEN, Secret, UDP_TRAILER_LEN};

use crate::auth::{AuthRejections, Authenticated};
use crate::{Error, Overhead, check_size, flood};

/// The framing state of one datagram socket: its keys and replay windows,
/// when authenticated, and its counts of what it dropped, by peer `P` (a
/// UDP socket's are IP addresses and ports; a Unix datagram socket's,
/// paths).
#[derive(Debug)]
pub struct Framing<P = SocketAddr> {
    invalid: u64,
    invalid_log: flood::DropLog<P>,
    /// Set by [`Framing::authenticate`]: every datagram tagged and checked.
    auth: Option<Box<Authenticated>>,
}

impl<P> Default for Framing<P> {
    fn default() -> Self {
        Self {
            invalid: 0,
            invalid_log: flood::DropLog::default(),
            auth: None,
        }
    }
}

impl<P: Clone + Eq + Hash + fmt::Display> Framing<P> {
    /// Plain framing: a header, no tag.
    pub fn new() -> Self {
        Self::default()
    }

    /// From now on, tags every message it encodes (as `us`, with
    /// `session_id`, which must be random and fresh for each socket) and
    /// accepts only datagrams tagged by the other role with the same
    /// secret and not seen before.
    pub fn authenticate(&mut self, secret: &Secret, us: Role, session_id: [u8; SESSION_ID_LEN]) {
        self.auth = Some(Box::new(Authenticated::new(secret, us, session_id)));
    }

    /// The same keys and sending state, with no replay windows and no
    /// counts yet: for a second handle on the socket, of which only one
    /// should send.
    pub fn for_clone(&self) -> Self {
        Self {
            auth: self.auth.as_ref().map(|auth| Box::new(auth.for_clone())),
            ..Self::default()
        }
    }

    /// Whether [`Framing::authenticate`] was called.
    pub fn is_authenticated(&self) -> bool {
        self.auth.is_some()
    }

    /// What authentication dropped, by reason (all zero without a secret).
    pub fn auth_rejections(&self) -> AuthRejections {
        self.auth
            .as_ref()
            .map_or_else(AuthRejections::default, |auth| auth.rejections)
    }

    /// How many datagrams were dropped because they were not valid msg
    /// messages.
    pub fn invalid_datagrams(&self) -> u64 {
        self.invalid
    }

    /// Appends `msg`, as the one datagram that carries it to `addr`, to
    /// `dst`.
    ///
    /// # Errors
    ///
    /// [`Error::TooLarge`] before anything is written, when the message
    /// (with its trailer, when authenticated) exceeds the datagram limit
    /// of `addr`'s family.
    pub fn encode(
        &mut self,
        msg: &Message,
        addr: &SocketAddr,
        dst: &mut BytesMut,
    ) -> Result<(), Error> {
        self.encode_within(msg, dst, |len, overhead| check_size(len, overhead, addr))
    }

    /// [`Framing::encode`] for a datagram whose limit is another kind's (a
    /// Unix datagram's): `check` gets the body's length and what the
    /// datagram adds to it, and refuses what is too large.
    ///
    /// # Errors
    ///
    /// `check`'s, before anything is written, or a failed seal.
    pub fn encode_within(
        &mut self,
        msg: &Message,
        dst: &mut BytesMut,
        check: impl FnOnce(usize, Overhead) -> Result<(), Error>,
    ) -> Result<(), Error> {
        match &mut self.auth {
            None => {
                check(msg.body.len(), Overhead::FRAMED)?;
                msg_proto::encode(msg, dst)
                    .expect("a body under the datagram limit fits the format");
            }
            Some(auth) => {
                // The trailer counts against the datagram limit too.
                check(msg.body.len(), Overhead::framed_with_tag(UDP_TRAILER_LEN))?;
                auth.seal(msg, dst)?;
            }
        }
        Ok(())
    }

    /// The message `datagram` from `peer` carries; `None`, counted and
    /// logged (at most a line a second), when it is no valid msg message
    /// or fails authentication.
    pub fn decode(&mut self, datagram: Bytes, peer: P) -> Option<Message> {
        let len = datagram.len();
        let decoded = match &mut self.auth {
            Some(auth) => match auth.open(datagram, &peer) {
                Ok(Some(msg)) => Ok(msg),
                Ok(None) => return None, // counted and warned about
                Err(err) => Err(err),
            },
            None => msg_proto::decode(datagram),
        };
        match decoded {
            Ok(msg) => Some(msg),
            Err(err) => {
                self.invalid += 1;
                self.invalid_log.note(
                    peer,
                    "invalid datagram",
                    &format_args!("{err} ({len} bytes)"),
                );
                None
            }
        }
    }
}
