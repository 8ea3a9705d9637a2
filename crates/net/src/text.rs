//! A peer's text on a terminal: one escaping for everything a peer sends
//! that msg shows, a message's body, a file name, a refusal's reason or
//! an error's text.
//!
//! An ESC or a CR from the network must not move the cursor, retitle the
//! window or forge the lines around it, and a newline inside a string must
//! not split it into two lines. So `\n` and `\r` are shown as those two
//! characters and every other control character (C0, DEL, C1) and every
//! byte that is not UTF-8 as `\xNN`, one per byte. So are the characters
//! that reorder the text around them without being seen, the
//! bidirectional embeddings, overrides and isolates (U+202A to U+202E,
//! U+2066 to U+2069: "Trojan Source"), and the line and paragraph
//! separators (U+2028, U+2029): a peer's text must read as what it is. A
//! tab stays a tab, and printable text, ASCII or not, right-to-left
//! included, stays as it is. A backslash stays too: this is for eyes, not
//! for decoding.

use std::io::{self, Write};

use bytes::Bytes;
use msg_proto::{Kind, Message};

/// A local path for a message on a terminal: escaped as a body is
/// ([`write_escaped`]), and whole (a path is not cut as a peer's text is).
/// The path is the user's, but the names in a folder are whoever made
/// them: a file named with an escape sequence reached the terminal raw in
/// `cannot send PATH` (audit, round four).
#[must_use]
pub fn path_text(path: &std::path::Path) -> String {
    let mut out = Vec::new();
    // Writing to a Vec cannot fail.
    let _ = write_escaped(&mut out, path.as_os_str().as_encoded_bytes());
    // Escaped, what is left is whole UTF-8 characters.
    String::from_utf8_lossy(&out).into_owned()
}

/// Writes `bytes` escaped (see the module's docs).
///
/// # Errors
///
/// `out`'s.
pub fn write_escaped(out: &mut impl Write, bytes: &[u8]) -> io::Result<()> {
    if !bytes.iter().any(|&b| needs_a_look(b)) {
        return out.write_all(bytes);
    }
    for chunk in bytes.utf8_chunks() {
        let text = chunk.valid();
        let mut plain = 0;
        for (at, c) in text.char_indices() {
            if c == '\t' || !(c.is_control() || reorders(c)) {
                continue;
            }
            out.write_all(&text.as_bytes()[plain..at])?;
            plain = at + c.len_utf8();
            match c {
                '\n' => out.write_all(b"\\n")?,
                '\r' => out.write_all(b"\\r")?,
                // C1 controls are two bytes in UTF-8, the reordering
                // characters three: each byte is shown.
                c => {
                    for b in c.encode_utf8(&mut [0; 4]).bytes() {
                        write!(out, "\\x{b:02x}")?;
                    }
                }
            }
        }
        out.write_all(&text.as_bytes()[plain..])?;
        for b in chunk.invalid() {
            write!(out, "\\x{b:02x}")?;
        }
    }
    Ok(())
}

/// Whether `c` changes the order or the lines of the text around it
/// without being seen (see the module's docs).
fn reorders(c: char) -> bool {
    matches!(c, '\u{2028}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// Whether `b` may need escaping: a control byte other than tab, DEL, or
/// any byte of a multi-byte (or broken) UTF-8 sequence.
fn needs_a_look(b: u8) -> bool {
    (b < 0x20 && b != b'\t') || b >= 0x7f
}

/// The longest text of a peer's that [`printable`] keeps, in bytes: an
/// error or a name is a line, not a document.
pub const MAX_PRINTABLE: usize = 200;

/// A peer's text made safe for a terminal, for a log line or an error:
/// escaped as [`write_escaped`] does, and cut to [`MAX_PRINTABLE`] bytes
/// of what the peer sent (at a character's boundary), with `…` after a
/// cut.
pub fn printable(bytes: &[u8]) -> String {
    printable_up_to(bytes, MAX_PRINTABLE)
}

/// The longest path [`printable_path`] keeps, in bytes: Linux's
/// `PATH_MAX`, and the most a folder's path on the wire may be.
pub const MAX_PRINTABLE_PATH: usize = 4096;

/// A peer's name for a file made safe for a terminal as [`printable`]
/// makes its text, but whole up to [`MAX_PRINTABLE_PATH`] bytes: a script
/// finds the file by it (audit, round sixteen: a 255-byte name's
/// `saved_as` cut at 200 bytes named no file). Local paths are
/// [`path_text`]'s.
pub fn printable_path(bytes: &[u8]) -> String {
    printable_up_to(bytes, MAX_PRINTABLE_PATH)
}

/// `bytes` escaped, cut to `max` of them with `…` after a cut.
fn printable_up_to(bytes: &[u8], max: usize) -> String {
    let mut end = bytes.len().min(max);
    // Cut at a UTF-8 boundary where there is one nearby, so that a cut
    // does not show the first bytes of a character as escapes.
    if end < bytes.len() {
        while end > max - 3 && (bytes[end] & 0xc0) == 0x80 {
            end -= 1;
        }
    }
    let mut out = Vec::with_capacity(end + 8);
    write_escaped(&mut out, &bytes[..end]).expect("a Vec takes every write");
    let mut text = String::from_utf8(out).expect("escaped text is UTF-8");
    if end < bytes.len() {
        text.push('…');
    }
    text
}

/// An `Error` message carrying `text`: what a listener tells a peer it
/// drops, or a side tells the other when it gives up.
pub(crate) fn error_message(text: &str) -> Message {
    Message::new(Kind::Error, 0, Bytes::copy_from_slice(text.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn escaped(bytes: &[u8]) -> String {
        let mut out = Vec::new();
        write_escaped(&mut out, bytes).unwrap();
        String::from_utf8(out).expect("escaped output is UTF-8")
    }

    #[test]
    fn a_terminal_title_sequence_becomes_one_line_of_text() {
        assert_eq!(escaped(b"a\x1b]0;title\x07b\nc"), r"a\x1b]0;title\x07b\nc");
    }

    #[test]
    fn each_control_has_its_escape() {
        assert_eq!(escaped(b"\r\n"), r"\r\n");
        assert_eq!(escaped(b"\0\x01\x1f\x7f"), r"\x00\x01\x1f\x7f");
        assert_eq!(escaped(b"tab\tstays"), "tab\tstays");
        // C1 controls, U+0085 (NEL) and U+009B (CSI), byte by byte.
        assert_eq!(
            escaped("\u{85}\u{9b}[2J".as_bytes()),
            r"\xc2\x85\xc2\x9b[2J"
        );
    }

    #[test]
    fn characters_that_reorder_the_line_are_shown_byte_by_byte() {
        // "invoice", RIGHT-TO-LEFT OVERRIDE, "fdp.exe": on a terminal,
        // "invoiceexe.pdf".
        assert_eq!(
            escaped("invoice\u{202e}fdp.exe".as_bytes()),
            r"invoice\xe2\x80\xaefdp.exe"
        );
        assert_eq!(
            escaped("a\u{2066}b\u{2069}".as_bytes()),
            r"a\xe2\x81\xa6b\xe2\x81\xa9"
        );
        assert_eq!(escaped("a\u{2028}b".as_bytes()), r"a\xe2\x80\xa8b");
        // Right-to-left text itself, and the marks it uses, stay.
        assert_eq!(escaped("שלום \u{200f}!".as_bytes()), "שלום \u{200f}!");
    }

    #[test]
    fn text_stays_and_broken_utf8_is_shown_byte_by_byte() {
        assert_eq!(escaped("plain héllo ✓ \\".as_bytes()), "plain héllo ✓ \\");
        assert_eq!(escaped(b"\xff\xfeok"), r"\xff\xfeok");
        // A check mark cut short, as a raw TCP read may end.
        assert_eq!(escaped(b"ok\xe2\x9c"), r"ok\xe2\x9c");
        assert_eq!(escaped(b"\xe2\x9c\x93\xc2"), "✓\\xc2");
        assert_eq!(escaped(b""), "");
    }

    #[test]
    fn no_escaped_output_holds_a_control_byte_other_than_tab() {
        let every_byte: Vec<u8> = (0..=255).collect();
        let out = escaped(&every_byte);
        assert!(out.chars().all(|c| c == '\t' || !c.is_control()), "{out:?}");
        let mut pairs = Vec::new();
        for b in 0x80..=0xbf {
            pairs.extend_from_slice(&[0xc2, b]);
        }
        let out = escaped(&pairs);
        assert!(out.chars().all(|c| !c.is_control()), "{out:?}");
    }

    #[test]
    fn peer_text_cannot_reach_the_terminal() {
        assert_eq!(printable(b"ok \x1b[2J\x07"), r"ok \x1b[2J\x07");
        assert_eq!(printable(b"\xff"), r"\xff");
        assert_eq!(printable("\u{9b}31m".as_bytes()), r"\xc2\x9b31m");
        assert_eq!(printable(&[b'a'; 300]).chars().count(), 201);
        // A cut never splits a character.
        let text = "é".repeat(150);
        let shown = printable(text.as_bytes());
        assert!(shown.ends_with("é…"), "{shown}");
        assert!(!shown.contains('\\'), "{shown}");
    }
}
