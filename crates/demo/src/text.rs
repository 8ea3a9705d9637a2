//! Text the lessons share: bytes shown escaped, plurals, and paragraphs
//! wrapped for a terminal.

use std::io::{self, Write};

/// A large read shows this many of its first bytes.
const SHOWN: usize = 8;
/// Where the text is wrapped.
const WIDTH: usize = 78;

/// `bytes` in quotes, every byte that is not printable ASCII escaped
/// (`\n`, `\x00`), so that nothing a socket returns reaches the terminal as
/// a control character.
pub(crate) fn shown(bytes: &[u8]) -> String {
    if bytes.len() <= 4 * SHOWN {
        format!("\"{}\"", bytes.escape_ascii())
    } else {
        format!("\"{}\"...", bytes[..SHOWN].escape_ascii())
    }
}

pub(crate) fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// Writes `text` as lines of at most [`WIDTH`] columns, each after
/// `indent`.
pub(crate) fn wrap(out: &mut impl Write, indent: &str, text: &str) -> io::Result<()> {
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && indent.len() + line.len() + 1 + word.len() > WIDTH {
            writeln!(out, "{indent}{line}")?;
            line.clear();
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        writeln!(out, "{indent}{line}")?;
    }
    Ok(())
}

/// A lesson's part: its number and title, then what it teaches, wrapped.
pub(crate) fn part(out: &mut impl Write, number: u8, title: &str, lesson: &str) -> io::Result<()> {
    writeln!(out)?;
    writeln!(out, "Part {number}. {title}")?;
    wrap(out, "  ", lesson)
}

/// A step of a part: what was done, then what came of it, one line each.
pub(crate) fn step(out: &mut impl Write, did: &str, results: &[String]) -> io::Result<()> {
    writeln!(out)?;
    wrap(out, "  ", did)?;
    for result in results {
        wrap(out, "    ", result)?;
    }
    Ok(())
}

/// `value` as one JSON document on a line of its own: a lesson's
/// `--json`.
pub(crate) fn write_json_line(
    out: &mut impl Write,
    value: &impl serde::Serialize,
) -> io::Result<()> {
    serde_json::to_writer(&mut *out, value)?;
    writeln!(out)
}
