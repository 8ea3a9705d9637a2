//! What goes to stdout: message bodies, one per line, or JSON objects.
//!
//! Only data goes here; logs go to stderr through `tracing`. How a body
//! looks is msg-net's [`Format`] (`show.rs`); which format is msg's choice
//! (`args.rs`): escaped on a terminal, where a peer's ESC or CR must not
//! move the cursor, and unchanged into a pipe or a file, where the bytes
//! are data and the reader decides.
//!
//! A listener prints from a thread of its own ([`spawn_writer`]), fed by
//! msg-net's byte-bounded event queue: a stdout that stops draining (a
//! pager left unscrolled, a terminal paused with Ctrl-S) then blocks only
//! that thread, while the runtime goes on answering pings, replying and
//! accepting.

use std::fmt;
use std::io::{self, BufWriter, Write};
use std::thread::{self, JoinHandle};

pub(crate) use msg_net::count;
use msg_net::show::FileProgress;
pub(crate) use msg_net::show::{Format, Tally};
use msg_net::{EventReceiver, PeerAddr};
use tokio::sync::watch;

/// Writes one message straight to stdout and flushes it: for a client
/// printing the replies it waited for.
pub(crate) fn print(
    format: Format,
    peer: &PeerAddr,
    seq: Option<u64>,
    body: &[u8],
) -> io::Result<()> {
    let mut out = io::stdout().lock();
    format.write(&mut out, peer, seq, body)?;
    out.flush()
}

/// Writes one line to stderr, for the messages that are not logs (the final
/// error, what a transfer achieved). A failure is ignored: stderr closed
/// (`msg ... 2>&1 | head -1`) leaves nobody to tell, and must not turn an
/// exit code into a panic as `eprintln!` would.
pub(crate) fn stderr_line(line: fmt::Arguments<'_>) {
    let _ = writeln!(io::stderr(), "{line}");
}

/// The printing thread of a listener.
#[derive(Debug)]
pub(crate) struct Writer {
    thread: JoinHandle<io::Result<()>>,
    done: watch::Receiver<bool>,
}

/// Starts a thread that prints every event `events` receives, until
/// `count` messages were printed (then it stops and says so through
/// [`Writer::done`]), stdout fails, or the queue closes.
pub(crate) fn spawn_writer(
    mut events: EventReceiver,
    format: Format,
    count: Option<u64>,
    tally: std::sync::Arc<Tally>,
) -> io::Result<Writer> {
    let (done_tx, done) = watch::channel(false);
    let thread = thread::Builder::new()
        .name("msg-output".to_owned())
        .spawn(move || {
            let result = write_all(&mut events, format, count, &tally);
            // Whatever ended it: --count reached, stdout gone, queue closed.
            done_tx.send_replace(true);
            result
        })?;
    Ok(Writer { thread, done })
}

fn write_all(
    events: &mut EventReceiver,
    format: Format,
    count: Option<u64>,
    tally: &Tally,
) -> io::Result<()> {
    let mut out = BufWriter::new(io::stdout().lock());
    msg_net::show::print_events(events, format, count, tally, &mut out, &mut Bars::default())
}

/// A file's progress: sizes and rate in decimal units (kB, MB, MB/s), as
/// the line after a transfer reports them, so the two agree.
pub(crate) const FILE_PROGRESS: &str =
    "{msg} [{bar:30}] {decimal_bytes}/{decimal_total_bytes} {decimal_bytes_per_sec}, ~{eta} left";

/// The progress bars of the files being received (the listener sends
/// progress events only when stderr is a terminal).
#[derive(Default)]
struct Bars {
    all: indicatif::MultiProgress,
    bars: std::collections::HashMap<(PeerAddr, String), indicatif::ProgressBar>,
}

impl FileProgress for Bars {
    fn update(&mut self, peer: &PeerAddr, name: &str, received: u64, size: u64) {
        let bar = self
            .bars
            .entry((peer.clone(), name.to_owned()))
            .or_insert_with(|| {
                let style = indicatif::ProgressStyle::with_template(FILE_PROGRESS)
                    .expect("a valid template")
                    .progress_chars("=> ");
                let bar = self
                    .all
                    .add(indicatif::ProgressBar::new(size).with_style(style));
                bar.set_message(format!("{name} from {peer}"));
                bar
            });
        bar.set_position(received);
    }

    fn done(&mut self, peer: &PeerAddr, name: &str) {
        if let Some(bar) = self.bars.remove(&(peer.clone(), name.to_owned())) {
            bar.finish_and_clear();
        }
    }
}

impl Writer {
    /// Completes when the thread has stopped printing.
    pub(crate) async fn done(&mut self) {
        // An error means the thread is gone, which is done too.
        let _ = self.done.wait_for(|done| *done).await;
    }

    /// Whether the thread has stopped.
    pub(crate) fn is_done(&self) -> bool {
        *self.done.borrow()
    }

    /// Waits for the (stopped) thread and returns how printing went.
    pub(crate) fn join(self) -> io::Result<()> {
        self.thread
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("the output thread panicked")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_of_a_thing_is_singular() {
        assert_eq!(count(1, "datagram"), "1 datagram");
        assert_eq!(count(0, "peer"), "0 peers");
        assert_eq!(count(2, "receive call"), "2 receive calls");
    }
}
