//! [`spawn`]: a listener's printing on a thread of its own, fed by the
//! byte-bounded event queue, so that an output that stops draining (a
//! pager left unscrolled, a terminal paused with Ctrl-S) blocks only that
//! thread while the serve loop goes on answering, replying and accepting.
//!
//! [`Printing`] is a listener's whole printing side around that thread,
//! for either engine: the tally, the serve loop's counters, the queue's
//! drops, and at the end the [`Summary`] of it all.

use std::collections::VecDeque;
use std::io::{self, Write};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use tokio::sync::watch;

use crate::show::{FileProgress, Format, Tally};
use crate::{Counters, Event, EventReceiver, Events, Summary};

/// After the listener stops (Ctrl-C), how long the printing thread gets to
/// write what is queued; an output that is blocked does not hold the exit
/// up longer.
pub const DRAIN: Duration = Duration::from_secs(1);

/// A listener's printing thread.
#[derive(Debug)]
pub struct Printer {
    thread: JoinHandle<io::Result<()>>,
    done: watch::Receiver<bool>,
}

/// Starts a thread that prints every event `events` receives into the
/// writer `out` makes (on the thread: a locked stdout is not `Send`),
/// shown as `format`, files' progress to `progress`, until `count`
/// messages were printed (then it stops and says so through
/// [`Printer::done`]), the output fails, or the queue closes.
///
/// # Errors
///
/// When no thread can be started.
pub fn spawn<W: Write>(
    mut events: EventReceiver,
    format: Format,
    count: Option<u64>,
    tally: Arc<Tally>,
    out: impl FnOnce() -> W + Send + 'static,
    mut progress: impl FileProgress + Send + 'static,
) -> io::Result<Printer> {
    let (done_tx, done) = watch::channel(false);
    let thread = thread::Builder::new()
        .name("msg-output".to_owned())
        .spawn(move || {
            let result = print_events(
                &mut events,
                format,
                count,
                &tally,
                &mut out(),
                &mut progress,
            );
            // Whatever ended it: the count reached, the output gone, the
            // queue closed.
            done_tx.send_replace(true);
            result
        })?;
    Ok(Printer { thread, done })
}

impl Printer {
    /// Completes when the thread has stopped printing.
    pub async fn done(&mut self) {
        // An error means the thread is gone, which is done too.
        let _ = self.done.wait_for(|done| *done).await;
    }

    /// Whether the thread has stopped.
    pub fn is_done(&self) -> bool {
        *self.done.borrow()
    }

    /// Waits for the (stopped) thread; how printing went.
    ///
    /// # Errors
    ///
    /// The output's, or a panic of the thread's.
    pub fn join(self) -> io::Result<()> {
        self.thread
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("the output thread panicked")))
    }
}

/// A listener's printing side: the thread that prints, what it printed,
/// what the serve loop counted, and a handle on the event queue to read
/// its drops at the end. Both engines print through it.
#[derive(Debug)]
pub struct Printing {
    printer: Printer,
    tally: Arc<Tally>,
    counters: Arc<Counters>,
    counting: Events,
}

impl Printing {
    /// Starts the printing thread ([`spawn`], with the same arguments);
    /// the events to serve into.
    ///
    /// # Errors
    ///
    /// When no thread can be started.
    pub fn start<W: Write>(
        format: Format,
        count: Option<u64>,
        out: impl FnOnce() -> W + Send + 'static,
        progress: impl FileProgress + Send + 'static,
    ) -> io::Result<(Self, Events)> {
        let (events, received) = Events::channel();
        let tally = Arc::new(Tally::default());
        let printer = spawn(received, format, count, Arc::clone(&tally), out, progress)?;
        let printing = Self {
            printer,
            tally,
            counters: Arc::new(Counters::default()),
            counting: events.clone(),
        };
        Ok((printing, events))
    }

    /// What the serve loop counts into, for its
    /// [`ServeConfig`](crate::ServeConfig).
    pub fn counters(&self) -> Arc<Counters> {
        Arc::clone(&self.counters)
    }

    /// Completes when the thread has stopped printing.
    pub async fn done(&mut self) {
        self.printer.done().await;
    }

    /// Once serving has ended: the queue's drops read, and its last sender
    /// dropped, so that the thread sees the queue close.
    pub fn close(self) -> Ended {
        let Self {
            printer,
            tally,
            counters,
            counting,
        } = self;
        Ended {
            printer: Some(printer),
            tally,
            counters,
            dropped: counting.dropped(),
            queued: counting.queued(),
        }
    }
}

/// A listener's printing once serving has ended ([`Printing::close`]).
#[derive(Debug)]
pub struct Ended {
    printer: Option<Printer>,
    tally: Arc<Tally>,
    counters: Arc<Counters>,
    dropped: u64,
    queued: u64,
}

impl Ended {
    /// Gives the thread up to [`DRAIN`] to write what is queued (a blocked
    /// output does not hold the exit up): whether it wrote it all.
    ///
    /// # Errors
    ///
    /// The output's, as [`Printer::join`] says.
    pub async fn drain(&mut self) -> io::Result<bool> {
        let Some(mut printer) = self.printer.take() else {
            return Ok(false);
        };
        if printer.is_done() || tokio::time::timeout(DRAIN, printer.done()).await.is_ok() {
            printer.join()?;
            return Ok(true);
        }
        Ok(false)
    }

    /// The closing account, counted once the thread has written what it
    /// could: with the kernel's drops and what was left unread where the
    /// socket says, and the receive calls' counts when they were batched.
    pub fn summary(
        &self,
        kernel_drops: Option<u64>,
        unread: Option<u64>,
        batched: bool,
    ) -> Summary {
        Summary {
            tally: self.tally.get(),
            counted: self.counters.get(),
            kernel_drops,
            buffer_drops: None,
            output_drops: self.dropped,
            not_printed: self.queued.saturating_sub(self.tally.get().0),
            unread,
            recv_calls: batched.then(|| self.counters.udp_recv_calls()),
        }
    }

    /// Whether the last thing printed did not end its line (raw data).
    pub fn open_line(&self) -> bool {
        self.tally.open_line()
    }
}

/// Prints every event `events` receives into `out` in `format`, counted
/// in `tally`, until `count` messages were printed (files count as one
/// each), `out` fails, or the queue closes. What is queued is written
/// before each flush: a burst costs one write call, and a lone message
/// still leaves at once.
///
/// # Errors
///
/// `out`'s.
fn print_events(
    events: &mut EventReceiver,
    format: Format,
    count: Option<u64>,
    tally: &Tally,
    out: &mut impl Write,
    progress: &mut impl FileProgress,
) -> io::Result<()> {
    let mut out = Counted::new(out, tally);
    let mut printed = 0u64;
    while let Some(first) = events.blocking_recv() {
        let mut next = Some(first);
        while let Some(delivery) = next.take() {
            match &delivery.event {
                Event::Message { peer, seq, body } => {
                    tally.seen(peer);
                    format.write(&mut out, peer, *seq, body)?;
                    out.ended(body.len() as u64);
                    if let Some(open) = format.leaves_line_open(body) {
                        tally.set_open_line(open);
                    }
                }
                Event::File {
                    peer,
                    name,
                    size,
                    hash,
                    elapsed,
                } => {
                    tally.seen(peer);
                    progress.done(peer, name);
                    format.write_file(&mut out, peer, name, *size, hash, *elapsed)?;
                    out.ended(*size);
                }
                Event::FileProgress {
                    peer,
                    name,
                    received,
                    size,
                } => {
                    progress.update(peer, name, *received, *size);
                    continue; // not a message: it neither prints nor counts
                }
            }
            printed += 1;
            if count.is_some_and(|count| printed >= count) {
                return out.flush();
            }
            drop(delivery); // its bytes leave the queue's budget
            next = events.try_recv();
        }
        out.flush()?;
    }
    out.flush()
}

/// The most bytes the printing thread holds before it writes them: a
/// burst of small messages costs one write call per this much. No more
/// than `PIPE_BUF` (4 KiB on Linux), so that into a pipe each write is
/// whole or nothing: a write blocked by a reader that stopped has taken
/// none of its bytes, and the count of what was printed is exact. (A
/// larger write to a pipe may be blocked with part of it taken, and the
/// messages in that part would count as not printed.)
const PRINT_BUFFER: usize = 4096;

/// What the printing thread writes through: a buffer, as `BufWriter`'s,
/// that counts a message printed only once its last byte has been taken
/// by the output. Counted when it entered the buffer, what was still
/// there when a blocked stdout held the exit up was lost and yet counted
/// printed (about 8 KiB of messages, on both engines; audit, round
/// seven); now it counts among those queued but not printed.
struct Counted<'a, W: Write> {
    out: &'a mut W,
    buf: Vec<u8>,
    /// The bytes `out` has taken, all told.
    taken: u64,
    /// Where each message that `out` has not taken whole ends (in bytes,
    /// all told), and its size, in order.
    ends: VecDeque<(u64, u64)>,
    tally: &'a Tally,
}

impl<'a, W: Write> Counted<'a, W> {
    fn new(out: &'a mut W, tally: &'a Tally) -> Self {
        Self {
            out,
            buf: Vec::with_capacity(PRINT_BUFFER),
            taken: 0,
            ends: VecDeque::new(),
            tally,
        }
    }

    /// The message just written, of `bytes`, ends here.
    fn ended(&mut self, bytes: u64) {
        self.ends
            .push_back((self.taken + self.buf.len() as u64, bytes));
        self.took(0);
    }

    /// `out` took `n` bytes more: what they complete is printed.
    fn took(&mut self, n: usize) {
        self.taken += n as u64;
        while let Some(&(end, bytes)) = self.ends.front()
            && end <= self.taken
        {
            self.tally.printed(bytes);
            self.ends.pop_front();
        }
    }

    fn write_through(&mut self, mut data: &[u8]) -> io::Result<()> {
        while !data.is_empty() {
            match self.out.write(data) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    data = &data[n..];
                    self.took(n);
                }
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => return Err(err),
            }
        }
        Ok(())
    }

    fn drain(&mut self) -> io::Result<()> {
        let buf = std::mem::take(&mut self.buf);
        let result = self.write_through(&buf);
        self.buf = buf;
        self.buf.clear();
        result
    }
}

impl<W: Write> Write for Counted<'_, W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.buf.len() + data.len() > PRINT_BUFFER {
            self.drain()?;
        }
        // A large body goes as it is, not through the buffer.
        if data.len() >= PRINT_BUFFER {
            self.write_through(data)?;
        } else {
            self.buf.extend_from_slice(data);
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.drain()?;
        self.out.flush()
    }
}

/// A writer that waits, as a blocking descriptor does, when its descriptor
/// says `EAGAIN`: stdout may be non-blocking without msg asking for it.
/// `O_NONBLOCK` belongs to the open file, shared by every process that
/// holds it, so a program that set it on a terminal or a pipe it shares
/// with msg (node does, on its terminal) set it for msg too, and msg's
/// first full write failed with `Resource temporarily unavailable`: a
/// listener exited 1 at its first burst (audit, round eight). The flag is
/// not cleared, which would change it under the other process too: each
/// write that would block waits in `poll` until the descriptor takes
/// bytes, as long as a blocking write would (the exit's bounded drain,
/// [`DRAIN`], still holds for the printing thread).
#[derive(Debug)]
pub struct Patient<W>(pub W);

#[cfg(unix)]
impl<W: Write + std::os::fd::AsFd> Write for Patient<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        loop {
            match self.0.write(data) {
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => self.writable()?,
                done => return done,
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        loop {
            match self.0.flush() {
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => self.writable()?,
                done => return done,
            }
        }
    }
}

#[cfg(unix)]
impl<W: std::os::fd::AsFd> Patient<W> {
    /// Waits until the descriptor takes bytes again (or fails: the write
    /// that follows says how).
    fn writable(&self) -> io::Result<()> {
        use rustix::event::{PollFd, PollFlags, poll};
        let mut fds = [PollFd::new(&self.0, PollFlags::OUT)];
        match poll(&mut fds, None) {
            Ok(_) | Err(rustix::io::Errno::INTR) => Ok(()),
            Err(err) => Err(err.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use super::*;
    use crate::{Event, PeerAddr};

    /// Prints what is queued, counts it, stops at `count`, and leaves file
    /// progress to the caller.
    #[test]
    fn events_are_printed_counted_and_stopped_at_the_count() {
        #[derive(Default)]
        struct Seen(Vec<u64>);
        impl FileProgress for Seen {
            fn update(&mut self, _: &PeerAddr, _: &str, received: u64, _: u64) {
                self.0.push(received);
            }
            fn done(&mut self, _: &PeerAddr, _: &str) {}
        }
        let peer: PeerAddr = SocketAddr::from(([127, 0, 0, 1], 1)).into();
        let (events, mut receiver) = Events::channel();
        let message = |body: &'static str| Event::Message {
            peer: peer.clone(),
            seq: Some(1),
            body: bytes::Bytes::from_static(body.as_bytes()),
        };
        events.offer(message("a"));
        events.offer(Event::FileProgress {
            peer: peer.clone(),
            name: "f".to_owned(),
            received: 5,
            size: 9,
        });
        events.offer(message("bc"));
        events.offer(message("never"));
        let lines = Format {
            json: false,
            end: Some(b'\n'),
            escape: false,
            hex: false,
            reads: false,
        };
        let tally = Tally::default();
        let (mut out, mut seen) = (Vec::new(), Seen::default());
        print_events(&mut receiver, lines, Some(2), &tally, &mut out, &mut seen).unwrap();
        assert_eq!(out, b"a\nbc\n");
        assert_eq!(seen.0, [5]);
        assert_eq!(tally.get(), (2, 3, 1, false));
    }
}
