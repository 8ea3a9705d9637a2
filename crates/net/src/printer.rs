//! [`spawn`]: a listener's printing on a thread of its own, fed by the
//! byte-bounded event queue, so that an output that stops draining (a
//! pager left unscrolled, a terminal paused with Ctrl-S) blocks only that
//! thread while the serve loop goes on answering, replying and accepting.

use std::io::{self, Write};
use std::sync::Arc;
use std::thread::{self, JoinHandle};

use tokio::sync::watch;

use crate::EventReceiver;
use crate::show::{FileProgress, Format, Tally, print_events};

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
