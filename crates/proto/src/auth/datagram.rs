//! Tagged UDP datagrams: [`DatagramSealer`] and [`DatagramOpener`], the
//! 48-byte trailer (session id, counter, tag).

use super::*;

/// The UDP key for datagrams that `sender` sends.
///
/// No nonce to salt it with (there is no handshake), so it is the same for
/// every socket with this secret and role; freshness comes from the session
/// id and counter instead. One key per role so that a client's datagram
/// reflected back to it fails: the client opens with the server's key.
pub(super) fn udp_key(secret: &Secret, sender: Role) -> [u8; KEY_LEN] {
    let info = match sender {
        Role::Client => UDP_CLIENT,
        Role::Server => UDP_SERVER,
    };
    secret.derive(&[], info)
}

/// Tags the datagrams one socket sends.
///
/// The trailer carries a session id and a counter of its own rather than
/// reusing the header's `seq`: applications choose `seq` freely and reuse it
/// (a benchmark's stats pings and its discards share a socket with
/// independent sequences), while a replay window needs a number that never
/// repeats.
///
/// A clone continues the same session from the same counter: if both
/// clones send, their datagrams repeat counters and receivers drop the
/// repeats as replays. Clone to give the sending to another owner, not to
/// send from two.
#[derive(Clone)]
pub struct DatagramSealer {
    mac: HmacSha256,
    session_id: [u8; SESSION_ID_LEN],
    counter: u64,
}

impl DatagramSealer {
    /// A sealer for a socket that plays `us`, with a `session_id` of fresh
    /// random bytes, starting at counter 0.
    ///
    /// The session id must differ per socket: the receiver keys its replay
    /// window by (address, session id), so a restarted sender with a new id
    /// starts a new window instead of being refused as a replay of its
    /// previous run.
    pub fn new(secret: &Secret, us: Role, session_id: [u8; SESSION_ID_LEN]) -> Self {
        Self {
            mac: keyed(&udp_key(secret, us)),
            session_id,
            counter: 0,
        }
    }

    /// Appends `header || body || session_id || counter || tag` to `dst`:
    /// one datagram's payload, [`UDP_TRAILER_LEN`] bytes longer than the
    /// plain message.
    ///
    /// # Errors
    ///
    /// [`AuthError::Decode`] if the body is too large for the format, or
    /// [`AuthError::CounterExhausted`]; `dst` is then unchanged.
    pub fn seal(&mut self, msg: &Message, dst: &mut BytesMut) -> Result<(), AuthError> {
        let header = tagged_header(msg)?;
        let following = next(self.counter)?;
        let counter = self.counter.to_be_bytes();
        let mut mac = self.mac.clone();
        mac.update(&header);
        mac.update(&msg.body);
        mac.update(&self.session_id);
        mac.update(&counter);
        dst.reserve(HEADER_LEN + msg.body.len() + UDP_TRAILER_LEN);
        dst.put_slice(&header);
        dst.put_slice(&msg.body);
        dst.put_slice(&self.session_id);
        dst.put_slice(&counter);
        dst.put_slice(&mac.finalize().into_bytes());
        self.counter = following;
        Ok(())
    }
}

impl fmt::Debug for DatagramSealer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DatagramSealer")
            .field("session_id", &self.session_id)
            .field("counter", &self.counter)
            .finish_non_exhaustive()
    }
}

/// A datagram that verified: its message and where it stands in its
/// sender's sequence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opened {
    /// The message, [`FLAG_AUTH`] cleared, body a slice of the datagram.
    pub message: Message,
    /// The sending socket's session id.
    pub session_id: [u8; SESSION_ID_LEN],
    /// The datagram's counter within that session: check it with the
    /// [`ReplayWindow`] of `session_id`, whatever the source address (which
    /// the tag does not cover, so a window per address would let a replay
    /// from a new port through).
    pub counter: u64,
}

/// Verifies datagrams sent by peers of one role.
///
/// It keeps no state: replay is the business of the [`ReplayWindow`]s the
/// caller keeps, one per session id, since how many to keep and which to
/// forget is a policy of the caller's.
#[derive(Clone)]
pub struct DatagramOpener {
    mac: HmacSha256,
}

impl DatagramOpener {
    /// An opener for datagrams sent by peers playing `peer`: a listener
    /// passes [`Role::Client`], a client [`Role::Server`].
    pub fn new(secret: &Secret, peer: Role) -> Self {
        Self {
            mac: keyed(&udp_key(secret, peer)),
        }
    }

    /// Verifies one datagram and returns its message, session id and counter.
    ///
    /// The tag is checked here, before the caller's replay window sees the
    /// counter, so that forged datagrams can never move a window.
    ///
    /// # Errors
    ///
    /// [`AuthError::Decode`], [`AuthError::NotTagged`],
    /// [`AuthError::BadLength`] or [`AuthError::BadTag`].
    pub fn open(&self, datagram: Bytes) -> Result<Opened, AuthError> {
        let (header, body_len) = check_tagged(&datagram, UDP_TRAILER_LEN, "tagged datagram")?;
        let (signed, tag) = datagram.split_at(datagram.len() - TAG_LEN);
        let mut mac = self.mac.clone();
        mac.update(signed);
        mac.verify_slice(tag).map_err(|_| AuthError::BadTag)?;
        let trailer = &signed[HEADER_LEN + body_len..];
        let (session_id, counter) = trailer.split_at(SESSION_ID_LEN);
        Ok(Opened {
            message: opened(&header, datagram.slice(HEADER_LEN..HEADER_LEN + body_len)),
            session_id: session_id.try_into().expect("trailer length checked"),
            counter: u64::from_be_bytes(counter.try_into().expect("trailer length checked")),
        })
    }
}

impl fmt::Debug for DatagramOpener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DatagramOpener").finish_non_exhaustive()
    }
}
