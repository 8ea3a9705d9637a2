//! How a peer's bytes are shown: a body as a line (escaped or as it is),
//! as a read behind its length, as a JSON object or as a hex dump, and a
//! saved file as `b3sum` prints it; and the tally of what was shown.
//!
//! A body is a peer's bytes. Shown escaped ([`write_escaped`]), an ESC or a
//! CR from the network cannot move a terminal's cursor, retitle its window
//! or forge the lines around it, and a newline inside a body cannot split
//! one message into two lines; the caller decides when (msg: on a
//! terminal, not into a pipe, where the bytes are data). Everything here
//! writes into any [`Write`], so it is tested without a terminal.

use std::io::{self, Write};

use base64::Engine;
use serde::Serialize;

use crate::PeerAddr;
use crate::text::write_escaped;

/// How a peer's messages are shown.
#[derive(Debug, Clone, Copy)]
pub struct Format {
    /// One JSON object per line instead of the bare body.
    pub json: bool,
    /// The byte after each body: a newline, or NUL (`-0`). `None` for raw
    /// TCP, whose chunks are printed as they arrived, nothing added: the
    /// stream's bytes, exactly. JSON lines always end in a newline.
    pub end: Option<u8>,
    /// Show control characters and bytes that are not UTF-8 as escapes
    /// ([`write_escaped`]); in JSON, which escapes C0 itself, DEL and C1
    /// too.
    pub escape: bool,
    /// Each body as a hex dump ([`write_hex`]) instead: `end` and `escape`
    /// mean nothing then, and JSON is refused with it.
    pub hex: bool,
    /// Each body on a line of its own behind its length, `[5 bytes] hello`
    /// (`msg listen --raw --reads`): where one raw TCP read ended and the
    /// next began, which the bytes alone, glued, do not show.
    pub reads: bool,
}

#[derive(Serialize)]
struct Record<'a> {
    #[serde(serialize_with = "as_text")]
    peer: &'a PeerAddr,
    #[serde(flatten)]
    cred: Option<Cred>,
    #[serde(skip_serializing_if = "Option::is_none")]
    seq: Option<u64>,
    /// The body's length in bytes (raw mode: the datagram's or the read's).
    len: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    body: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    body_b64: Option<String>,
}

/// Who a Unix socket's peer is, beside its text in JSON: `"pid"` (where
/// the system gives it), `"uid"`, `"gid"`.
#[derive(Serialize)]
struct Cred {
    #[serde(skip_serializing_if = "Option::is_none")]
    pid: Option<i32>,
    uid: u32,
    gid: u32,
}

impl Cred {
    fn of(peer: &PeerAddr) -> Option<Self> {
        let cred = peer.unix()?.cred?;
        Some(Self {
            pid: cred.pid,
            uid: cred.uid,
            gid: cred.gid,
        })
    }
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
    pub fn write(
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
                cred: Cred::of(peer),
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
        } else if self.hex {
            write_hex(out, body)
        } else {
            if self.reads {
                // The length makes the line exact even unescaped: a reader
                // takes that many bytes, newlines and all.
                write!(out, "[{} bytes] ", body.len())?;
            }
            if self.escape {
                write_escaped(out, body)?;
            } else {
                out.write_all(body)?;
            }
            if let Some(end) = self.end {
                out.write_all(&[end])?;
            } else if self.reads {
                out.write_all(b"\n")?;
            }
            Ok(())
        }
    }

    /// Whether writing `body` leaves stdout in the middle of a line: only
    /// raw TCP adds nothing after a body, so only its bytes can. `None`
    /// when it changes nothing (an empty body).
    pub fn leaves_line_open(self, body: &[u8]) -> Option<bool> {
        if self.json || self.hex || self.reads || self.end.is_some() {
            return Some(false);
        }
        // Escaped, a newline is shown as `\n`: the line stays open.
        body.last().map(|&last| self.escape || last != b'\n')
    }

    /// Writes one saved file: as `b3sum` prints it (`HASH  NAME`, so that
    /// `b3sum -c` in the save directory checks the lines), or as JSON.
    pub fn write_file(
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
                #[serde(flatten)]
                cred: Option<Cred>,
                name: &'a str,
                size: u64,
                hash: &'a str,
                secs: f64,
            }
            let record = FileRecord {
                peer,
                cred: Cred::of(peer),
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
}

/// Writes serde_json's output with DEL, the C1 controls (U+0080 to
/// U+009F) and the characters that reorder a line unseen (U+2028 to
/// U+202E, U+2066 to U+2069: the line separators and the bidirectional
/// overrides and isolates, which `text` escapes in plain output) as `\u`
/// escapes: serde_json escapes only C0, a terminal may take U+009B for
/// CSI, and `E` U+202E `FGH` shows as `EHGF`. The JSON decodes to the same
/// string. In valid UTF-8 JSON, byte 0x7F is DEL, 0xC2 followed by
/// 0x80..=0x9F is a C1 control, and 0xE2 0x80 0xA8..=0xAE or 0xE2 0x81
/// 0xA6..=0xA9 one of the others, all only ever inside strings.
fn write_json_escaped(out: &mut impl Write, json: &[u8]) -> io::Result<()> {
    let mut plain = 0;
    let mut at = 0;
    while at < json.len() {
        let (code, len) = match json[at..] {
            [0x7f, ..] => (0x7f, 1),
            [0xc2, b @ 0x80..=0x9f, ..] => (u32::from(b), 2),
            [0xe2, b1 @ 0x80, b2 @ 0xa8..=0xae, ..] | [0xe2, b1 @ 0x81, b2 @ 0xa6..=0xa9, ..] => (
                0x2000 | (u32::from(b1 & 0x3f) << 6) | u32::from(b2 & 0x3f),
                3,
            ),
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

/// Writes `bytes` as `hexdump -C` (and `ncat --hex-dump`) do: 16 bytes a
/// line behind their offset, in two groups of 8, then the same bytes as
/// ASCII between bars, and last a line with the length alone, which marks
/// where one body ends (and shows an empty one). The ASCII column shows
/// printable ASCII only, `.` for any other byte: a peer's bytes never
/// reach the terminal as they are, however it is configured.
///
/// ```text
/// 00000000  68 65 6c 6c 6f 0a                                 |hello.|
/// 00000006
/// ```
pub fn write_hex(out: &mut impl Write, bytes: &[u8]) -> io::Result<()> {
    for (n, line) in bytes.chunks(16).enumerate() {
        write!(out, "{:08x} ", n * 16)?;
        for i in 0..16 {
            if i == 8 {
                out.write_all(b" ")?;
            }
            match line.get(i) {
                Some(byte) => write!(out, " {byte:02x}")?,
                None => out.write_all(b"   ")?,
            }
        }
        out.write_all(b"  |")?;
        for &byte in line {
            let shown = if byte.is_ascii_graphic() || byte == b' ' {
                byte
            } else {
                b'.'
            };
            out.write_all(&[shown])?;
        }
        out.write_all(b"|\n")?;
    }
    writeln!(out, "{:08x}", bytes.len())
}

/// What a listener printed: messages (files count as one each), their
/// bytes, and from how many peers. Shared between the thread that prints
/// and whoever reads it for the summary, even while the printing blocks.
#[derive(Debug, Default)]
pub struct Tally {
    messages: std::sync::atomic::AtomicU64,
    bytes: std::sync::atomic::AtomicU64,
    peers: std::sync::Mutex<std::collections::HashSet<PeerAddr>>,
    /// The last bytes printed did not end a line (raw TCP): the summary
    /// starts on a line of its own, not glued to the data on a terminal.
    open_line: std::sync::atomic::AtomicBool,
}

/// Past this many, the summary says "at least".
const MAX_PEERS_COUNTED: usize = 65_536;

impl Tally {
    /// Counts one message (or file) of `bytes` as printed: its last byte
    /// taken by the output.
    pub fn printed(&self, bytes: u64) {
        use std::sync::atomic::Ordering::Relaxed;
        self.messages.fetch_add(1, Relaxed);
        self.bytes.fetch_add(bytes, Relaxed);
    }

    /// Counts `peer` among those heard from.
    pub fn seen(&self, peer: &PeerAddr) {
        let mut peers = self
            .peers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if peers.len() < MAX_PEERS_COUNTED {
            peers.insert(peer.clone());
        }
    }

    /// Notes whether what was just written left the output in the middle
    /// of a line.
    pub fn set_open_line(&self, open: bool) {
        self.open_line
            .store(open, std::sync::atomic::Ordering::Relaxed);
    }

    /// Whether the output was left in the middle of a line.
    pub fn open_line(&self) -> bool {
        self.open_line.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Messages, bytes, peers, and whether the peers hit the cap.
    pub fn get(&self) -> (u64, u64, usize, bool) {
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

/// What a printer does with a file's progress, which is no message: msg
/// draws progress bars on a terminal.
pub trait FileProgress {
    /// `received` of `size` bytes of `name` from `peer` have arrived.
    fn update(&mut self, peer: &PeerAddr, name: &str, received: u64, size: u64);
    /// `name` from `peer` was saved.
    fn done(&mut self, peer: &PeerAddr, name: &str);
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use super::*;

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

    /// Audit, round four: `--json` on a terminal showed what reorders a
    /// line unseen as it is, where the plain output escapes it.
    #[test]
    fn json_escapes_what_reorders_the_line_and_still_decodes() {
        let body = "E\u{202e}FGH\u{2066}I\u{2028}J\u{202a}\u{2069}\u{2027}\u{2030}\u{200f}";
        let mut out = Vec::new();
        write_json_escaped(&mut out, &serde_json::to_vec(body).unwrap()).unwrap();
        let text = String::from_utf8(out).unwrap();
        // The neighbours (U+2027, U+2030) and the RLM mark stay, as in
        // plain output.
        assert_eq!(
            text,
            "\"E\\u202eFGH\\u2066I\\u2028J\\u202a\\u2069\u{2027}\u{2030}\u{200f}\""
        );
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
            hex: false,
            reads: false,
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

    #[test]
    fn hex_is_hexdump_c_with_only_printable_ascii_beside() {
        let hex = |bytes: &[u8]| {
            let mut out = Vec::new();
            write_hex(&mut out, bytes).unwrap();
            String::from_utf8(out).unwrap()
        };
        // As `hexdump -C` prints it, byte for byte.
        assert_eq!(
            hex(b"hello world, this is more than 16 bytes\0\x1b\xff"),
            "00000000  68 65 6c 6c 6f 20 77 6f  72 6c 64 2c 20 74 68 69  |hello world, thi|\n\
             00000010  73 20 69 73 20 6d 6f 72  65 20 74 68 61 6e 20 31  |s is more than 1|\n\
             00000020  36 20 62 79 74 65 73 00  1b ff                    |6 bytes...|\n\
             0000002a\n"
        );
        assert_eq!(
            hex(b"0123456789abcdef"),
            "00000000  30 31 32 33 34 35 36 37  38 39 61 62 63 64 65 66  |0123456789abcdef|\n\
             00000010\n",
            "a full line, then the length"
        );
        assert_eq!(hex(b""), "00000000\n", "an empty body shows as its length");
        // DEL, C1, a CR: never in the ASCII column.
        assert!(hex("\x7f\u{9b}\r".as_bytes()).contains("|....|"));
    }

    #[test]
    fn reads_are_one_a_line_behind_their_length() {
        let peer = SocketAddr::from(([127, 0, 0, 1], 1));
        let reads = Format {
            json: false,
            end: None,
            escape: false,
            hex: false,
            reads: true,
        };
        let print = |format: Format, body: &[u8]| {
            let mut out = Vec::new();
            format.write(&mut out, &peer.into(), None, body).unwrap();
            (out, format.leaves_line_open(body))
        };
        assert_eq!(
            print(reads, b"egg\nhi"),
            (b"[6 bytes] egg\nhi\n".to_vec(), Some(false))
        );
        let escaped = Format {
            escape: true,
            ..reads
        };
        assert_eq!(print(escaped, b"egg\nhi").0, b"[6 bytes] egg\\nhi\n");
        // Without --reads raw TCP adds nothing, and the line stays open
        // unless the bytes close it (escaped, they never do).
        let stream = Format {
            reads: false,
            ..reads
        };
        assert_eq!(print(stream, b"hello"), (b"hello".to_vec(), Some(true)));
        assert_eq!(print(stream, b"hello\n").1, Some(false));
        assert_eq!(print(stream, b"").1, None);
        let escaped_stream = Format {
            escape: true,
            ..stream
        };
        assert_eq!(print(escaped_stream, b"hello\n").1, Some(true));
    }
}
