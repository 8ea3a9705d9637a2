//! stderr from a thread of its own, for whatever writes there: the logs
//! (`tracing`) and msg's own lines ([`line`]), in order.
//!
//! Written from the thread that serves, the first warning into a stderr
//! nobody reads (a full pipe) stopped a listener answering anyone, and
//! SIGTERM with it (audit, round seven). Here every line goes into a
//! queue that one thread writes out. A writer whose line finds the queue
//! full waits while stderr drains, however slowly: no line is lost to a
//! reader that reads. Once one write has not returned for [`STUCK`],
//! stderr counts as stuck, and lines are dropped until it moves again. At the end ([`Guard`]) what is queued gets [`STUCK`] at
//! most.
//!
//! Only into a pipe or a file: on a terminal, which blocks only while the
//! user pauses it (Ctrl-S), lines are written at once, so that a progress
//! bar and the lines around it stay in order ([`start`] says `None`).
//!
//! (tracing-appender does the first half, but at its end it reports a
//! full queue with `println!`, into stdout, which carries only data, and
//! panics on a closed one; it drops lines whenever its queue is full,
//! a stderr that drains included; and it panics when its thread cannot
//! start.)

use std::io::{self, IsTerminal, Write};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::thread;
use std::time::{Duration, Instant};

/// Lines queued before a writer waits.
const QUEUED: usize = 1024;

/// How long one write may go unreturned before stderr counts
/// as stuck; and what the queue gets at the end.
const STUCK: Duration = Duration::from_secs(1);

/// What the writing thread is sent.
enum Item {
    Line(Vec<u8>),
    End,
}

/// The queue, once [`start`] has started its thread.
static QUEUE: OnceLock<SyncSender<Item>> = OnceLock::new();

/// What the writing thread's writes are timed from.
static SINCE: OnceLock<Instant> = OnceLock::new();

/// When the write under way began, in ms since [`SINCE`] (at least 1);
/// 0 while the writing thread is not in a write. A thread idle, or just
/// woken to a full queue, is no stuck stderr: only a write that has not
/// returned for [`STUCK`] is.
static WRITING: AtomicU64 = AtomicU64::new(0);

fn now_ms() -> u64 {
    let since = SINCE.get_or_init(Instant::now);
    u64::try_from(since.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// Whether the writing thread has been in one write for [`STUCK`].
fn stuck() -> bool {
    let stuck_ms = u64::try_from(STUCK.as_millis()).unwrap_or(u64::MAX);
    match WRITING.load(Ordering::Relaxed) {
        0 => false,
        since => now_ms().saturating_sub(since) > stuck_ms,
    }
}

/// Queues `item`, waiting while stderr drains: `Ok` once queued or
/// dropped (stderr stuck), `Err` with the item when the thread is gone.
fn send(tx: &SyncSender<Item>, mut item: Item) -> Result<(), Item> {
    // Bounded: each pass sleeps, and a stderr that does not move for
    // STUCK ends the wait.
    loop {
        match tx.try_send(item) {
            Ok(()) => return Ok(()),
            Err(TrySendError::Disconnected(back)) => return Err(back),
            Err(TrySendError::Full(back)) => {
                if stuck() {
                    return Ok(());
                }
                item = back;
                thread::sleep(Duration::from_millis(1));
            }
        }
    }
}

/// The end of the queue: dropped at the end of `main`, it gives what is
/// queued [`STUCK`] at most to be written.
#[derive(Debug)]
pub(crate) struct Guard {
    written: Receiver<()>,
}

impl Drop for Guard {
    fn drop(&mut self) {
        let Some(tx) = QUEUE.get() else { return };
        let deadline = Instant::now() + STUCK;
        if send(tx, Item::End).is_ok() {
            let _ = self
                .written
                .recv_timeout(deadline.saturating_duration_since(Instant::now()));
        }
    }
}

/// Starts the writing thread where stderr is no terminal; `None` on a
/// terminal, or where the thread cannot start (the user's limit on
/// threads reached): then lines are written at once. The thread starts
/// with the signals that stop msg blocked, so that it never takes one.
pub(crate) fn start() -> Option<Guard> {
    if io::stderr().is_terminal() {
        return None;
    }
    let (tx, rx) = mpsc::sync_channel::<Item>(QUEUED);
    let (written, done) = mpsc::channel();
    let spawned = msg_net::shutdown::without_stop_signals(|| {
        thread::Builder::new()
            .name("msg-stderr".to_owned())
            .spawn(move || {
                let mut stderr = msg_net::printer::Patient(io::stderr());
                while let Ok(Item::Line(line)) = rx.recv() {
                    WRITING.store(now_ms().max(1), Ordering::Relaxed);
                    // A failed write (stderr closed) loses the line, as
                    // a write at once would.
                    let _ = stderr.write_all(&line);
                    WRITING.store(0, Ordering::Relaxed);
                }
                let _ = written.send(());
            })
    });
    spawned.ok()?;
    QUEUE.set(tx).ok()?;
    Some(Guard { written: done })
}

/// Writes `bytes` (whole lines) to stderr: through the queue where there
/// is one, else at once. A failure is ignored: stderr closed leaves
/// nobody to tell.
pub(crate) fn write(bytes: Vec<u8>) {
    let bytes = match QUEUE.get() {
        None => bytes,
        Some(tx) => match send(tx, Item::Line(bytes)) {
            Ok(()) | Err(Item::End) => return,
            // The thread is gone (it panicked): at once.
            Err(Item::Line(bytes)) => bytes,
        },
    };
    let _ = msg_net::printer::Patient(io::stderr()).write_all(&bytes);
}

/// A log line's writer for `tracing`: the formatted event, collected and
/// written as one item when dropped.
#[derive(Debug, Default)]
pub(crate) struct Event(Vec<u8>);

impl Write for Event {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for Event {
    fn drop(&mut self) {
        if !self.0.is_empty() {
            write(std::mem::take(&mut self.0));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writing thread idle for however long is no stuck stderr (a burst
    /// after a quiet minute found the queue full before the thread woke,
    /// and was dropped); a write that has not returned for [`STUCK`] is.
    #[test]
    fn only_a_write_that_does_not_return_is_stuck() {
        let began = now_ms().max(1);
        thread::sleep(STUCK + Duration::from_millis(50));
        WRITING.store(0, Ordering::Relaxed);
        assert!(!stuck(), "idle");
        WRITING.store(now_ms().max(1), Ordering::Relaxed);
        assert!(!stuck(), "a write just begun");
        WRITING.store(began, Ordering::Relaxed);
        assert!(stuck(), "a write begun over a second ago");
        WRITING.store(0, Ordering::Relaxed);
    }
}
