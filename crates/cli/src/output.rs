//! What goes to stdout: message bodies, one per line, or JSON objects.
//!
//! Only data goes here; logs go to stderr through `tracing`.
//!
//! A listener prints from a thread of its own ([`spawn_writer`]), fed by
//! msg-net's byte-bounded event queue: a stdout that stops draining (a
//! pager left unscrolled, a terminal paused with Ctrl-S) then blocks only
//! that thread, while the runtime goes on answering pings, replying and
//! accepting.

use std::fmt;
use std::io::{self, BufWriter, Write};
use std::net::SocketAddr;
use std::thread::{self, JoinHandle};

use base64::Engine;
use msg_net::{Event, EventReceiver};
use serde::Serialize;
use tokio::sync::watch;

/// How messages are printed.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Format {
    /// One JSON object per line instead of the bare body.
    pub(crate) json: bool,
    /// A newline after each body. Raw TCP chunks are printed as they
    /// arrived, with no newline added: the stream's bytes, exactly.
    pub(crate) newline: bool,
}

#[derive(Serialize)]
struct Record<'a> {
    peer: SocketAddr,
    #[serde(skip_serializing_if = "Option::is_none")]
    seq: Option<u64>,
    /// The body's length in bytes (raw mode: the datagram's or the read's).
    len: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    body: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    body_b64: Option<String>,
}

impl Format {
    /// Writes one message; `seq` is `None` in raw mode, which has no
    /// header. Does not flush.
    fn write(
        self,
        out: &mut impl Write,
        peer: SocketAddr,
        seq: Option<u64>,
        body: &[u8],
    ) -> io::Result<()> {
        if self.json {
            let text = std::str::from_utf8(body).ok();
            let record = Record {
                peer,
                seq,
                len: body.len(),
                body: text,
                body_b64: text
                    .is_none()
                    .then(|| base64::engine::general_purpose::STANDARD.encode(body)),
            };
            serde_json::to_writer(&mut *out, &record)?;
            out.write_all(b"\n")
        } else {
            out.write_all(body)?;
            if self.newline {
                out.write_all(b"\n")?;
            }
            Ok(())
        }
    }

    /// Writes one saved file: as `b3sum` prints it (`HASH  NAME`, so that
    /// `b3sum -c` in the save directory checks the lines), or as JSON.
    fn write_file(
        self,
        out: &mut impl Write,
        peer: SocketAddr,
        name: &str,
        size: u64,
        hash: &str,
        elapsed: std::time::Duration,
    ) -> io::Result<()> {
        if self.json {
            #[derive(Serialize)]
            struct FileRecord<'a> {
                peer: SocketAddr,
                name: &'a str,
                size: u64,
                hash: &'a str,
                secs: f64,
            }
            let record = FileRecord {
                peer,
                name,
                size,
                hash,
                secs: elapsed.as_secs_f64(),
            };
            serde_json::to_writer(&mut *out, &record)?;
            out.write_all(b"\n")
        } else {
            // The name passed msg-proto's checks: no control characters.
            writeln!(out, "{hash}  {name}")
        }
    }

    /// Writes one message straight to stdout and flushes it: for a client
    /// printing the replies it waited for.
    pub(crate) fn print(self, peer: SocketAddr, seq: Option<u64>, body: &[u8]) -> io::Result<()> {
        let mut out = io::stdout().lock();
        self.write(&mut out, peer, seq, body)?;
        out.flush()
    }
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
) -> io::Result<Writer> {
    let (done_tx, done) = watch::channel(false);
    let thread = thread::Builder::new()
        .name("msg-output".to_owned())
        .spawn(move || {
            let result = write_all(&mut events, format, count);
            // Whatever ended it: --count reached, stdout gone, queue closed.
            done_tx.send_replace(true);
            result
        })?;
    Ok(Writer { thread, done })
}

fn write_all(events: &mut EventReceiver, format: Format, count: Option<u64>) -> io::Result<()> {
    let mut out = BufWriter::new(io::stdout().lock());
    let mut bars = Bars::default();
    let mut printed = 0u64;
    while let Some(first) = events.blocking_recv() {
        // Write what is queued, then flush once: a burst costs one write
        // call, and a lone message still leaves at once.
        let mut next = Some(first);
        while let Some(delivery) = next.take() {
            match &delivery.event {
                Event::Message { peer, seq, body } => format.write(&mut out, *peer, *seq, body)?,
                Event::File {
                    peer,
                    name,
                    size,
                    hash,
                    elapsed,
                } => {
                    bars.done(*peer, name);
                    format.write_file(&mut out, *peer, name, *size, hash, *elapsed)?;
                }
                Event::FileProgress {
                    peer,
                    name,
                    received,
                    size,
                } => {
                    bars.update(*peer, name, *received, *size);
                    continue; // not a message: it neither prints nor counts
                }
                _ => {}
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

/// The progress bars of the files being received (the listener sends
/// progress events only when stderr is a terminal).
#[derive(Default)]
struct Bars {
    all: indicatif::MultiProgress,
    bars: std::collections::HashMap<(SocketAddr, String), indicatif::ProgressBar>,
}

impl Bars {
    fn update(&mut self, peer: SocketAddr, name: &str, received: u64, size: u64) {
        let bar = self.bars.entry((peer, name.to_owned())).or_insert_with(|| {
            let style = indicatif::ProgressStyle::with_template(
                "{msg} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec}, ~{eta} left",
            )
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

    fn done(&mut self, peer: SocketAddr, name: &str) {
        if let Some(bar) = self.bars.remove(&(peer, name.to_owned())) {
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
