//! What goes to stdout: message bodies, one per line, or JSON objects.
//!
//! Only data goes here; logs go to stderr through `tracing`.

use std::io::{self, Write};
use std::net::SocketAddr;

use base64::Engine;
use serde::Serialize;

/// Prints received messages in the format the user chose.
#[derive(Debug)]
pub(crate) struct Printer {
    json: bool,
    /// Raw TCP chunks are printed as they arrived, with no newline added:
    /// the stream's bytes, exactly.
    newline: bool,
    out: io::Stdout,
}

#[derive(Serialize)]
struct Record<'a> {
    peer: SocketAddr,
    #[serde(skip_serializing_if = "Option::is_none")]
    seq: Option<u64>,
    len: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    body: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    body_b64: Option<String>,
}

impl Printer {
    pub(crate) fn new(json: bool, newline: bool) -> Self {
        Self {
            json,
            newline,
            out: io::stdout(),
        }
    }

    /// Prints one message; `seq` is `None` in raw mode, which has no header.
    pub(crate) fn print(&self, peer: SocketAddr, seq: Option<u64>, body: &[u8]) -> io::Result<()> {
        let mut out = self.out.lock();
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
            serde_json::to_writer(&mut out, &record)?;
            out.write_all(b"\n")?;
        } else {
            out.write_all(body)?;
            if self.newline {
                out.write_all(b"\n")?;
            }
        }
        out.flush()
    }
}
