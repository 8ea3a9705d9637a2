//! The writing side of a [`Framed`] stream: frames encoded once and
//! written again and again, and every write carried through short writes
//! and send timeouts for as long as its `go_on` allows.

use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use msg_proto::Message;
use tokio_util::codec::Encoder;

use super::{Framed, Stream, timed_out};

impl<S: Stream> Framed<S> {
    /// `msg` framed as [`Framed::write_message`] frames it, appended to
    /// `dst`, for bytes written again and again ([`Framed::write_frame`]):
    /// `false`, and nothing appended, once frames are sealed (a tag covers
    /// each one's header, which changes).
    ///
    /// # Errors
    ///
    /// [`msg_tcp::Error::TooLarge`].
    pub(crate) fn frame_plain(
        &mut self,
        msg: &Message,
        dst: &mut BytesMut,
    ) -> Result<bool, msg_tcp::Error> {
        if self.codec.seals() {
            return Ok(false);
        }
        self.codec.encode(msg, dst)?;
        Ok(true)
    }

    /// Writes `frame`, whole frames already encoded, as
    /// [`Framed::write_message`] writes one.
    ///
    /// # Errors
    ///
    /// [`msg_tcp::Error::WriteStalled`] once `go_on` says no, or the
    /// socket's.
    pub(crate) fn write_frame(
        &mut self,
        frame: &[u8],
        go_on: &dyn Fn(Duration) -> bool,
    ) -> Result<(), msg_tcp::Error> {
        write_all(&mut self.stream, &mut [io::IoSlice::new(frame)], go_on)
    }
}

/// Writes all of `parts`, in order, through short writes. A send timeout
/// (`SO_SNDTIMEO`) ends it unless `go_on`, given how long the write has
/// waited so far (from its first timeout), says to keep trying.
pub(super) fn write_all(
    stream: &mut impl Write,
    mut parts: &mut [io::IoSlice<'_>],
    go_on: &dyn Fn(Duration) -> bool,
) -> Result<(), msg_tcp::Error> {
    // When the first send timeout ran out: how long this write has waited
    // is asked only once it waits (no clock read on a write that goes).
    let mut waiting_since = None;
    // Each pass writes at least one byte, or waits at most the send
    // timeout until `go_on` says no: bounded by the bytes and by `go_on`.
    while !parts.is_empty() {
        let written = match parts {
            [one] => stream.write(one),
            _ => stream.write_vectored(parts),
        };
        match written {
            Ok(0) => return Err(io::Error::from(io::ErrorKind::WriteZero).into()),
            // The common case, a ping-pong's every write: the kernel took
            // the one buffer whole, and there is nothing to advance.
            Ok(n) if matches!(parts, [one] if one.len() == n) => return Ok(()),
            Ok(n) => io::IoSlice::advance_slices(&mut parts, n),
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) if timed_out(&err) => {
                let waited = waiting_since.get_or_insert_with(Instant::now).elapsed();
                if !go_on(waited) {
                    // Whole milliseconds: what the text shows.
                    let after =
                        Duration::from_millis(waited.as_millis().try_into().unwrap_or(u64::MAX));
                    return Err(msg_tcp::Error::WriteStalled { after });
                }
            }
            Err(err) => return Err(err.into()),
        }
    }
    Ok(())
}

/// A `go_on` for [`Framed::write_message`]: until `stop` is set, or the
/// write has waited `limit` for the peer to take what was written before
/// (a listener's frame timeout: a peer that sends and never reads is
/// dropped, not waited for).
pub(crate) fn until(stop: &AtomicBool, limit: Duration) -> impl Fn(Duration) -> bool + '_ {
    move |waited| waited < limit && !stop.load(Ordering::Relaxed)
}
