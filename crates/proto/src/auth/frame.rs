//! Tagged TCP frames: [`FrameSealer`] and [`FrameOpener`], each counting
//! the frames of its direction.

use super::*;

/// Tags the frames one side of a TCP connection writes.
///
/// The tag covers a counter of the frames sealed so far, which never goes on
/// the wire: both ends count, so a frame that is dropped, repeated, moved or
/// injected shifts the receiver's count and fails verification, at the cost
/// of no byte.
///
/// A clone continues from the same counter, so two clones sealing onto one
/// connection would repeat counters and the peer would refuse the second
/// frame of each pair: clone to hand the state on (say, into a codec that
/// is rebuilt), not to seal from two places.
#[derive(Clone)]
pub struct FrameSealer {
    mac: HmacSha256,
    counter: u64,
}

impl FrameSealer {
    /// A sealer with `key` (one of [`SessionKeys`]'), starting at counter 0.
    pub fn new(key: &[u8; KEY_LEN]) -> Self {
        Self {
            mac: keyed(key),
            counter: 0,
        }
    }

    /// Appends `header || body || tag` to `dst`: the frame's bytes, without
    /// the TCP length prefix (which counts all three).
    ///
    /// # Errors
    ///
    /// [`AuthError::Decode`] if the body is too large for the format, or
    /// [`AuthError::CounterExhausted`]; `dst` is then unchanged.
    pub fn seal(&mut self, msg: &Message, dst: &mut BytesMut) -> Result<(), AuthError> {
        let header = tagged_header(msg)?;
        let following = next(self.counter)?;
        let mut mac = self.mac.clone();
        mac.update(&self.counter.to_be_bytes());
        mac.update(&header);
        mac.update(&msg.body);
        dst.reserve(HEADER_LEN + msg.body.len() + TAG_LEN);
        dst.put_slice(&header);
        dst.put_slice(&msg.body);
        dst.put_slice(&mac.finalize().into_bytes());
        self.counter = following;
        Ok(())
    }
}

impl fmt::Debug for FrameSealer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FrameSealer")
            .field("counter", &self.counter)
            .finish_non_exhaustive()
    }
}

/// Verifies the frames one side of a TCP connection reads.
///
/// A clone expects the same next counter, so only one of them can follow a
/// connection's frames; as with [`FrameSealer`], clone to hand the state on.
#[derive(Clone)]
pub struct FrameOpener {
    mac: HmacSha256,
    counter: u64,
}

impl FrameOpener {
    /// An opener with `key` (the peer's sealing key), expecting counter 0.
    pub fn new(key: &[u8; KEY_LEN]) -> Self {
        Self {
            mac: keyed(key),
            counter: 0,
        }
    }

    /// Verifies one frame (`header || body || tag`, the TCP length prefix
    /// already stripped) and returns its message, [`FLAG_AUTH`] cleared and
    /// the body a slice of `frame`.
    ///
    /// # Errors
    ///
    /// [`AuthError::Decode`], [`AuthError::NotTagged`],
    /// [`AuthError::BadLength`] or [`AuthError::BadTag`]. The connection must
    /// then be closed: the expected counter did not advance, but the peer's
    /// did.
    pub fn open(&mut self, frame: Bytes) -> Result<Message, AuthError> {
        let (header, body_len) = check_tagged(&frame, TAG_LEN, "tagged frame")?;
        let following = next(self.counter)?;
        let (signed, tag) = frame.split_at(HEADER_LEN + body_len);
        let mut mac = self.mac.clone();
        mac.update(&self.counter.to_be_bytes());
        mac.update(signed);
        mac.verify_slice(tag).map_err(|_| AuthError::BadTag)?;
        self.counter = following;
        Ok(opened(
            &header,
            frame.slice(HEADER_LEN..HEADER_LEN + body_len),
        ))
    }
}

impl fmt::Debug for FrameOpener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FrameOpener")
            .field("counter", &self.counter)
            .finish_non_exhaustive()
    }
}
