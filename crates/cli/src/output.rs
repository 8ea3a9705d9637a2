//! What goes to stdout: message bodies, one per line, or JSON objects.
//!
//! Only data goes here; logs go to stderr through `tracing`.
//!
//! A body is a peer's bytes. On a terminal they are shown escaped
//! ([`write_escaped`]): an ESC or a CR from the network must not move the
//! cursor, retitle the window or forge the lines around it, and a newline
//! inside a body must not split one message into two lines. Into a pipe or
//! a file they go unchanged: there they are data, and the reader decides.
//!
//! A listener prints from a thread of its own ([`spawn_writer`]), fed by
//! msg-net's byte-bounded event queue: a stdout that stops draining (a
//! pager left unscrolled, a terminal paused with Ctrl-S) then blocks only
//! that thread, while the runtime goes on answering pings, replying and
//! accepting.

use std::fmt;
use std::io::{self, BufWriter, Write};
use std::thread::{self, JoinHandle};

use base64::Engine;
use msg_net::text::write_escaped;
use msg_net::{Event, EventReceiver, PeerAddr};
use serde::Serialize;
use tokio::sync::watch;

/// How messages are printed.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Format {
    /// One JSON object per line instead of the bare body.
    pub(crate) json: bool,
    /// The byte after each body: a newline, or NUL (`-0`). `None` for raw
    /// TCP, whose chunks are printed as they arrived, nothing added: the
    /// stream's bytes, exactly. JSON lines always end in a newline.
    pub(crate) end: Option<u8>,
    /// Show control characters and bytes that are not UTF-8 as escapes
    /// ([`write_escaped`]); in JSON, which escapes C0 itself, DEL and C1
    /// too.
    pub(crate) escape: bool,
}

#[derive(Serialize)]
struct Record<'a> {
    #[serde(serialize_with = "as_text")]
    peer: &'a PeerAddr,
    #[serde(skip_serializing_if = "Option::is_none")]
    seq: Option<u64>,
    /// The body's length in bytes (raw mode: the datagram's or the read's).
    len: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    body: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    body_b64: Option<String>,
}

/// A peer in JSON: the text it displays as, which for an IP peer is what
/// serde writes for a `SocketAddr` (`"127.0.0.1:5000"`, `"[::1]:5000"`),
/// the form `--json` has always had. Written straight into the output, no
/// string made for it.
fn as_text<S: serde::Serializer>(peer: &&PeerAddr, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_str(peer)
}

impl Format {
    /// Writes one message; `seq` is `None` in raw mode, which has no
    /// header. Does not flush.
    fn write(
        self,
        out: &mut impl Write,
        peer: &PeerAddr,
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
            if self.escape {
                let json = serde_json::to_vec(&record)?;
                write_json_escaped(out, &json)?;
            } else {
                serde_json::to_writer(&mut *out, &record)?;
            }
            out.write_all(b"\n")
        } else {
            if self.escape {
                write_escaped(out, body)?;
            } else {
                out.write_all(body)?;
            }
            if let Some(end) = self.end {
                out.write_all(&[end])?;
            }
            Ok(())
        }
    }

    /// Writes one saved file: as `b3sum` prints it (`HASH  NAME`, so that
    /// `b3sum -c` in the save directory checks the lines), or as JSON.
    fn write_file(
        self,
        out: &mut impl Write,
        peer: &PeerAddr,
        name: &str,
        size: u64,
        hash: &str,
        elapsed: std::time::Duration,
    ) -> io::Result<()> {
        if self.json {
            #[derive(Serialize)]
            struct FileRecord<'a> {
                #[serde(serialize_with = "as_text")]
                peer: &'a PeerAddr,
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
    pub(crate) fn print(self, peer: &PeerAddr, seq: Option<u64>, body: &[u8]) -> io::Result<()> {
        let mut out = io::stdout().lock();
        self.write(&mut out, peer, seq, body)?;
        out.flush()
    }
}

/// Writes serde_json's output with DEL and the C1 controls (U+0080 to
/// U+009F) as `\u` escapes: serde_json escapes only C0, and a terminal may
/// take U+009B for CSI. The JSON decodes to the same string. In valid UTF-8
/// JSON, byte 0x7F is DEL and 0xC2 followed by 0x80..=0x9F is a C1
/// control, both only ever inside strings.
fn write_json_escaped(out: &mut impl Write, json: &[u8]) -> io::Result<()> {
    let mut plain = 0;
    let mut at = 0;
    while at < json.len() {
        let (code, len) = match json[at..] {
            [0x7f, ..] => (0x7f, 1),
            [0xc2, b @ 0x80..=0x9f, ..] => (b, 2),
            _ => {
                at += 1;
                continue;
            }
        };
        out.write_all(&json[plain..at])?;
        write!(out, "\\u{code:04x}")?;
        at += len;
        plain = at;
    }
    out.write_all(&json[plain..])
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
    let mut bars = Bars::default();
    let mut printed = 0u64;
    while let Some(first) = events.blocking_recv() {
        // Write what is queued, then flush once: a burst costs one write
        // call, and a lone message still leaves at once.
        let mut next = Some(first);
        while let Some(delivery) = next.take() {
            match &delivery.event {
                Event::Message { peer, seq, body } => {
                    tally.add(peer, body.len() as u64);
                    format.write(&mut out, peer, *seq, body)?;
                }
                Event::File {
                    peer,
                    name,
                    size,
                    hash,
                    elapsed,
                } => {
                    tally.add(peer, *size);
                    bars.done(peer, name);
                    format.write_file(&mut out, peer, name, *size, hash, *elapsed)?;
                }
                Event::FileProgress {
                    peer,
                    name,
                    received,
                    size,
                } => {
                    bars.update(peer, name, *received, *size);
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

/// What the listener printed: messages (files count as one each), their
/// bytes, and from how many peers. Shared with the caller, which reads it
/// for the summary even while the printing thread is blocked.
#[derive(Debug, Default)]
pub(crate) struct Tally {
    messages: std::sync::atomic::AtomicU64,
    bytes: std::sync::atomic::AtomicU64,
    peers: std::sync::Mutex<std::collections::HashSet<PeerAddr>>,
}

/// Past this many, the summary says "at least".
const MAX_PEERS_COUNTED: usize = 65_536;

impl Tally {
    fn add(&self, peer: &PeerAddr, bytes: u64) {
        use std::sync::atomic::Ordering::Relaxed;
        self.messages.fetch_add(1, Relaxed);
        self.bytes.fetch_add(bytes, Relaxed);
        let mut peers = self
            .peers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if peers.len() < MAX_PEERS_COUNTED {
            peers.insert(peer.clone());
        }
    }

    /// Messages, bytes, peers, and whether the peers hit the cap.
    pub(crate) fn get(&self) -> (u64, u64, usize, bool) {
        use std::sync::atomic::Ordering::Relaxed;
        let peers = self
            .peers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .len();
        (
            self.messages.load(Relaxed),
            self.bytes.load(Relaxed),
            peers,
            peers >= MAX_PEERS_COUNTED,
        )
    }
}

/// The progress bars of the files being received (the listener sends
/// progress events only when stderr is a terminal).
/// A file's progress: sizes and rate in decimal units (kB, MB, MB/s), as
/// the line after a transfer reports them, so the two agree.
pub(crate) const FILE_PROGRESS: &str =
    "{msg} [{bar:30}] {decimal_bytes}/{decimal_total_bytes} {decimal_bytes_per_sec}, ~{eta} left";

/// `n` and the noun, singular for one: `1 datagram`, `2 datagrams`.
pub(crate) fn count(n: u64, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

#[derive(Default)]
struct Bars {
    all: indicatif::MultiProgress,
    bars: std::collections::HashMap<(PeerAddr, String), indicatif::ProgressBar>,
}

impl Bars {
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
    use std::net::SocketAddr;

    use super::*;

    #[test]
    fn one_of_a_thing_is_singular() {
        assert_eq!(count(1, "datagram"), "1 datagram");
        assert_eq!(count(0, "peer"), "0 peers");
        assert_eq!(count(2, "receive call"), "2 receive calls");
    }

    #[test]
    fn json_escapes_del_and_c1_and_still_decodes() {
        let body = "a\u{7f}b\u{9b}c\u{a0}é\x1b";
        let mut out = Vec::new();
        write_json_escaped(&mut out, &serde_json::to_vec(body).unwrap()).unwrap();
        let text = String::from_utf8(out).unwrap();
        // NBSP (U+00A0) is no control: it stays.
        assert_eq!(text, "\"a\\u007fb\\u009bc\u{a0}é\\u001b\"");
        assert_eq!(serde_json::from_str::<String>(&text).unwrap(), body);
    }

    #[test]
    fn records_end_as_asked() {
        let peer = SocketAddr::from(([127, 0, 0, 1], 1));
        let print = |format: Format, body: &[u8]| {
            let mut out = Vec::new();
            format.write(&mut out, &peer.into(), Some(1), body).unwrap();
            out
        };
        let lines = Format {
            json: false,
            end: Some(b'\n'),
            escape: false,
        };
        assert_eq!(print(lines, b"a\nb"), b"a\nb\n");
        let nul = Format {
            end: Some(0),
            ..lines
        };
        assert_eq!(print(nul, b"a\nb"), b"a\nb\0");
        let escaped_nul = Format {
            escape: true,
            ..nul
        };
        assert_eq!(print(escaped_nul, b"a\0b"), b"a\\x00b\0");
        let stream = Format { end: None, ..lines };
        assert_eq!(print(stream, b"chunk\r\n"), b"chunk\r\n");
        let escaped_stream = Format {
            escape: true,
            ..stream
        };
        assert_eq!(print(escaped_stream, b"chunk\r\n"), b"chunk\\r\\n");
        let json = Format {
            json: true,
            escape: true,
            ..nul
        };
        assert_eq!(
            print(json, "\u{9b}".as_bytes()),
            concat!(
                r#"{"peer":"127.0.0.1:1","seq":1,"len":2,"body":"\u009b"}"#,
                "\n"
            )
            .as_bytes(),
            "JSON ends in a newline, whatever -0 says"
        );
    }
}
