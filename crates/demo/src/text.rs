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
