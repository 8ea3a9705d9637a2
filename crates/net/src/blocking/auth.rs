//! The TCP handshake on the blocking engine: [`crate::auth`]'s sans-IO
//! [`Handshake`], its messages moved over a [`Framed`] stream with plain
//! system calls, within the same frame limit and timeout as the tokio
//! driver, and the listener's handshake slots as a counter a thread waits
//! on.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use msg_proto::auth::{MAX_HANDSHAKE_FRAME, Role};

use super::io::{Framed, Read, Wait};
use super::stream::Stream;
use crate::Error;
use crate::auth::{Auth, AuthFailure, Failed, Handshake, Step, Then, refused_frame};

/// How a handshake ended, when it did not fail.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Shaken {
    /// Both sides proved themselves: the keys are installed.
    Done,
    /// The `stop` flag was set first.
    Stopped,
}

/// Runs `us`'s side of the TCP handshake on `conn` within
/// `auth.handshake_timeout` (and until `stop`), each wait at most `tick`,
/// the stream's usual read timeout, which it has again afterwards. The
/// peer gets [`MAX_HANDSHAKE_FRAME`] until then, its own limit after.
///
/// # Errors
///
/// [`Error::Auth`] with the reason, as the tokio driver reports it.
pub(super) fn handshake<S: Stream>(
    conn: &mut Framed<S>,
    auth: &Auth,
    (us, deadline): (Role, Instant),
    tick: Duration,
    stop: &AtomicBool,
) -> Result<Shaken, Error> {
    let (handshake, first) = match us {
        Role::Client => Handshake::client(&auth.secret),
        Role::Server => Handshake::server(&auth.secret),
    };
    let max_frame = conn.max_frame();
    conn.set_max_frame(MAX_HANDSHAKE_FRAME);
    let shaken = drive(
        conn,
        handshake,
        first,
        us,
        (deadline, auth.handshake_timeout),
        tick,
        stop,
    );
    conn.restore_read_timeout(tick)?;
    if shaken.as_ref().is_ok_and(|shaken| *shaken == Shaken::Done) {
        conn.set_max_frame(max_frame);
    }
    shaken
}

/// After [`handshake`] failed on a listener's side with a frame too large
/// for a handshake: lets that frame arrive, into one fixed buffer, for at
/// most the handshake timeout, as the tokio listener does. Closed with its
/// bytes unread, the connection would be reset, and the reset can reach
/// the client before the answer that says it needs a secret. Called
/// without a handshake slot: this costs time, not memory or handshakes.
pub(super) fn drain_refused<S: Stream>(
    conn: &mut Framed<S>,
    failure: &Error,
    auth: &Auth,
    tick: Duration,
    stop: &AtomicBool,
) {
    if let Some(len) = refused_frame(failure) {
        conn.discard(len, Instant::now() + auth.handshake_timeout, tick, stop);
    }
}

/// Tells a client that waited in vain for a handshake turn why it is
/// closed, as the tokio listener does: `text`, then its first frame read
/// and dropped, all within a second (or until `stop`), so that it reads
/// the refusal and an end, not a reset.
pub(super) fn refuse_busy<S: Stream>(
    conn: &mut Framed<S>,
    text: &str,
    tick: Duration,
    stop: &AtomicBool,
) {
    // Read as a handshake is: no more than a handshake frame's room.
    conn.set_max_frame(MAX_HANDSHAKE_FRAME);
    let until = Instant::now() + Duration::from_secs(1);
    let go_on = |_| Instant::now() < until && !stop.load(Ordering::Relaxed);
    if conn
        .write_message(&crate::text::error_message(text), &go_on)
        .is_err()
    {
        return;
    }
    while go_on(Duration::ZERO) {
        if !conn.read_by(until, tick).unwrap_or(false) {
            return;
        }
        match conn.read_message(Wait::Sleep) {
            Ok(Read::Nothing) => {}
            _ => return,
        }
    }
}

fn drive<S: Stream>(
    conn: &mut Framed<S>,
    mut handshake: Handshake,
    mut step: Step,
    us: Role,
    (deadline, timeout): (Instant, Duration),
    tick: Duration,
    stop: &AtomicBool,
) -> Result<Shaken, Error> {
    let go_on = |_| Instant::now() < deadline && !stop.load(Ordering::Relaxed);
    loop {
        if let Some(msg) = &step.send {
            conn.write_message(msg, &go_on)?;
        }
        if let Then::Done(keys) = &step.then {
            conn.authenticate(keys, us);
            return Ok(Shaken::Done);
        }
        let read = loop {
            if stop.load(Ordering::Relaxed) {
                return Ok(Shaken::Stopped);
            }
            if !conn.read_by(deadline, tick)? {
                return Err(Error::Auth(AuthFailure::Timeout(timeout)));
            }
            match conn.read_message(Wait::Sleep) {
                Ok(Read::Message(msg)) => break Ok(Some(msg)),
                Ok(Read::Closed) => break Ok(None),
                Ok(Read::Nothing) => {}
                Err(err) => break Err(err),
            }
        };
        step = match handshake.on_read(read) {
            Ok(step) => step,
            Err(failed) => {
                let Failed { tell, error } = *failed;
                if let Some(tell) = tell {
                    let _ = conn.write_message(&tell, &go_on);
                }
                return Err(error);
            }
        };
    }
}

/// The listener's handshake slots: at most `limits.max_handshakes` under
/// way at once, as the tokio listener's semaphore allows; a connection
/// waits for its turn within the handshake timeout, reading nothing.
#[derive(Debug)]
pub(super) struct Slots {
    free: Mutex<usize>,
    freed: Condvar,
}

/// A slot, given back when dropped.
#[derive(Debug)]
pub(super) struct Slot<'a>(&'a Slots);

impl Slots {
    pub(super) fn new(max: usize) -> Self {
        Self {
            free: Mutex::new(max),
            freed: Condvar::new(),
        }
    }

    /// A slot once one is free, or `None` at `deadline` (or `stop`); each
    /// wait lasts at most `tick`.
    pub(super) fn take(
        &self,
        deadline: Instant,
        tick: Duration,
        stop: &AtomicBool,
    ) -> Option<Slot<'_>> {
        let mut free = self.free.lock().unwrap_or_else(PoisonError::into_inner);
        while *free == 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || stop.load(Ordering::Relaxed) {
                return None;
            }
            free = self
                .freed
                .wait_timeout(free, left.min(tick))
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        *free -= 1;
        Some(Slot(self))
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        *self.0.free.lock().unwrap_or_else(PoisonError::into_inner) += 1;
        self.0.freed.notify_one();
    }
}
