//! What goes to stdout: message bodies, one per line, or JSON objects.
//!
//! Only data goes here; logs go to stderr through `tracing`. How a body
//! looks is msg-net's [`Format`] (`show.rs`); which format is msg's choice
//! (`args.rs`): escaped on a terminal, where a peer's ESC or CR must not
//! move the cursor, and unchanged into a pipe or a file, where the bytes
//! are data and the reader decides.
//!
//! A listener, and `msg connect`, print from a thread of their own
//! ([`start_printing`]), fed by msg-net's byte-bounded event queue: a
//! stdout that stops draining (a pager left unscrolled, a terminal paused
//! with Ctrl-S) then blocks only that thread, while the runtime goes on
//! answering pings, replying and accepting, and a session's `--wait`
//! still ends it.

use std::fmt;
use std::io;

pub(crate) use msg_net::printer::{Patient, Printing};
use msg_net::show::FileProgress;
pub(crate) use msg_net::show::Format;
use msg_net::{Events, PeerAddr};

/// Writes one line to stderr, for the messages that are not logs (the final
/// error, what a transfer achieved): in one write, through stderr's queue
/// where there is one. A failure is ignored: stderr closed
/// (`msg ... 2>&1 | head -1`) leaves nobody to tell, and must not turn an
/// exit code into a panic as `eprintln!` would.
pub(crate) fn stderr_line(line: fmt::Arguments<'_>) {
    crate::stderr::write(format!("{line}\n").into_bytes());
}

/// Starts a listener's printing (msg-net's [`Printing`]): into stdout,
/// with progress bars for the files; the events to serve into.
///
/// Into stdout's descriptor itself (a duplicate), not through Rust's
/// `Stdout`, whose own line buffer would hold a raw read's last bytes
/// after msg-net's printer had counted them printed. Nothing else writes
/// to stdout until the printing has ended (the JSON summary comes after).
pub(crate) fn start_printing(
    format: Format,
    count: Option<u64>,
) -> anyhow::Result<(Printing, Events)> {
    use anyhow::Context as _;
    use std::os::fd::AsFd as _;
    let stdout = io::stdout()
        .as_fd()
        .try_clone_to_owned()
        .map(std::fs::File::from)
        .context("cannot start the output thread")?;
    Printing::start(format, count, move || Patient(stdout), Bars::default())
        .context("cannot start the output thread")
}

/// Stdout, locked, for what is written outside a listener's printing
/// thread (replies, reports, a summary): a non-blocking stdout waited on
/// as a blocking one would be ([`Patient`]).
pub(crate) fn stdout() -> Patient<io::StdoutLock<'static>> {
    Patient(io::stdout().lock())
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
