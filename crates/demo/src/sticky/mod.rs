//! `msg demo sticky`: why TCP needs framing, shown with the bytes each read
//! returns, on loopback, in one process.
//!
//! 1. Raw TCP: two small writes come back as one read; one large write as
//!    many reads.
//! 2. The same over msg's framed TCP (msg-tcp's codec): two messages, and
//!    one large message.
//! 3. The same over UDP (msg-udp): two datagrams, two receives; a datagram
//!    over 65,507 bytes is refused.
//! 4. A reader that asks for 2 bytes gets 2, and the rest in the next read.
//!
//! The lesson must be cause and effect, not luck, so the timing is arranged
//! rather than hoped for: after the small writes the reader polls FIONREAD
//! (how many bytes wait unread in its socket) until all of them are there,
//! and only then reads, so one read returns them all whatever Nagle's
//! algorithm or the scheduler did. The large write is read with a buffer
//! smaller than the write while the writer is still writing, so it takes
//! many reads. Every wait is bounded (5 s). Where FIONREAD is not
//! asked (Windows), the reader pauses instead, and the output says so.
//!
//! The parts run first and are rendered after, as text with a short
//! explanation each or as one JSON document.

use std::io::{self, Read as _, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::thread;
use std::time::{Duration, Instant};

use base64::Engine;
use msg_proto::{HEADER_LEN, Kind, Message};
use msg_tcp::{Connection, DEFAULT_MAX_FRAME, LENGTH_PREFIX_LEN, Listener};
use serde::Serialize;

use crate::error::{Context, Error, Result};

/// The two small writes, as in the classic sticky-packet tutorial.
const SMALL: [&[u8]; 2] = [b"hello", b"egg"];
const SMALL_LEN: usize = SMALL[0].len() + SMALL[1].len();
/// The large write: much larger than one read's buffer.
const LARGE: usize = 1024 * 1024;
/// What each ordinary read asks for.
const READ_BUF: usize = 64 * 1024;
/// A datagram too large for UDP over IPv4.
const UDP_OVERSIZE: usize = 70_000;
/// What the reader of part 4 asks for: too little.
const SHORT_READ: usize = 2;

/// The longest any one wait may take: each read, write, connect and poll.
const DEADLINE: Duration = Duration::from_secs(5);
/// How often the reader asks FIONREAD, and how many times at most.
const POLL: Duration = Duration::from_millis(1);
const POLLS: u32 = 5_000;
/// Where FIONREAD is not asked: how long the reader pauses instead.
const PAUSE: Duration = Duration::from_millis(100);

/// A step with more reads than this shows the first and the last few.
const LISTED: usize = 12;

const TWO_SMALL: &str = "two small writes";
const ONE_LARGE: &str = "one large write";
const TOO_LITTLE: &str = "a read too small";

/// Runs the four parts on loopback, in this process, and returns what
/// each read, message and datagram brought.
///
/// `nodelay` sets TCP_NODELAY on the demo's TCP sockets (false turns
/// Nagle's algorithm on: a small write then waits for the previous one's
/// acknowledgement).
///
/// # Errors
///
/// [`Error`], naming the part that failed and why; every wait is bounded.
pub fn run(nodelay: bool) -> Result<Lesson> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .what("cannot start a runtime")?;
    let parts = vec![
        raw_tcp(nodelay).part("part 1 (raw TCP)")?,
        runtime
            .block_on(framed_tcp(nodelay))
            .part("part 2 (framed TCP)")?,
        runtime.block_on(udp()).part("part 3 (UDP)")?,
        short_read(nodelay).part("part 4 (a read too small)")?,
    ];
    Ok(Lesson { nodelay, parts })
}

/// What the four parts brought, to render as text or JSON.
#[derive(Debug)]
pub struct Lesson {
    nodelay: bool,
    parts: Vec<Part>,
}

impl Lesson {
    /// The four parts, each with a short explanation, wrapped for a
    /// terminal.
    ///
    /// # Errors
    ///
    /// `out`'s.
    pub fn write_text(&self, out: &mut impl Write) -> io::Result<()> {
        self.write_text_naming(out, "TCP_NODELAY off")
    }

    /// [`Lesson::write_text`], naming what turns Nagle's algorithm on as
    /// the caller knows it (a flag of its own, say) rather than as
    /// `TCP_NODELAY off`.
    ///
    /// # Errors
    ///
    /// `out`'s.
    pub fn write_text_naming(&self, out: &mut impl Write, nagle_on: &str) -> io::Result<()> {
        write_text(out, self.nodelay, nagle_on, &self.parts)
    }

    /// Every read as one JSON document (part, transport, step, read
    /// number, length, bytes in base64).
    ///
    /// # Errors
    ///
    /// `out`'s.
    pub fn write_json(&self, out: &mut impl Write) -> io::Result<()> {
        write_json(out, self.nodelay, &self.parts)
    }
}

// ---- what happened --------------------------------------------------------

/// One of the four parts: its explanation and its steps.
#[derive(Debug)]
struct Part {
    number: u8,
    transport: &'static str,
    title: &'static str,
    /// A few plain sentences: what to look at, and why it happens.
    lesson: &'static str,
    steps: Vec<Step>,
}

/// What the sender did and what the receiver got.
#[derive(Debug)]
struct Step {
    name: &'static str,
    /// What the sender did.
    did: String,
    /// How the timing was arranged, and what the reader asked for.
    how: String,
    unit: Unit,
    got: Vec<Got>,
    /// A send refused before it was made.
    refused: Option<Refused>,
}

/// What a receive returns in a part: a read of bytes, a framed message, or
/// a datagram.
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(rename_all = "lowercase")]
enum Unit {
    Read,
    Message,
    Datagram,
}

impl Unit {
    fn name(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Message => "message",
            Self::Datagram => "datagram",
        }
    }
}

/// What one receive returned.
#[derive(Debug)]
struct Got {
    bytes: Vec<u8>,
    /// How many bytes waited unread in the socket just before, where the
    /// demo asked (FIONREAD).
    queued: Option<u64>,
}

#[derive(Debug)]
struct Refused {
    len: usize,
    /// msg's error, given before the send call.
    error: String,
    /// What the kernel says when asked to send it anyway.
    kernel: String,
}

mod render;
mod tcp;
mod udp;
mod wait;

use crate::text::{plural, shown};
use render::{write_json, write_text};
use tcp::{framed_tcp, raw_tcp, short_read};
use udp::udp;
use wait::{FIONREAD_FAILED, bounded, localhost, own, pattern, queued, wait_for, wait_for_async};
