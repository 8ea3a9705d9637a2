//! `msg demo unix`: a Unix datagram socket keeps boundaries as UDP does,
//! but a full receiver pushes back on its sender instead of losing
//! datagrams, and the largest datagram is set by the sender's send buffer,
//! not by 65,507. Shown in one process, with the numbers.
//!
//! 1. UDP: 2,000 numbered datagrams of 1,000 bytes, sent as fast as
//!    possible to a receiver with a small receive buffer that does not
//!    read. Every send succeeds; then the receiver reads, and most are
//!    gone, silently (the kernel counts them: `/proc/net/udp`).
//! 2. A Unix datagram socket, the same: the sender's non-blocking send
//!    returns EAGAIN once the receiver's queue is full; a blocking send
//!    waits (for at most its SO_SNDTIMEO); then the receiver reads every
//!    datagram that was sent, whole and in order.
//! 3. Sizes: the largest Unix datagram, found by sending, for three send
//!    buffers, beside UDP's 65,507.
//! 4. SOCK_SEQPACKET: boundaries kept on a connection.
//!
//! What each part shows is arranged, not hoped for: a receiver reads
//! nothing until its sender has finished, so its queue is full because
//! nobody read it. Every loop is bounded in count and every wait in time.
//! The Unix receiver of part 2 is bound to a path in a private temporary
//! directory, removed at the end; the other Unix sockets are connected
//! pairs, with no name at all.
//!
//! Linux only: the limits and errors shown are Linux's (the queue length
//! `net.unix.max_dgram_qlen`, the size limit SO_SNDBUF less 32 bytes);
//! elsewhere [`run`] returns [`Error::Unsupported`](crate::Error::Unsupported).
//!
//! The parts run first and are rendered after, as text with a short
//! explanation each or as one JSON document of their numbers.

// Elsewhere than Linux nothing is run, so nothing is built to render.
#![cfg_attr(not(target_os = "linux"), allow(dead_code))]

use std::io::{self, Write};
#[cfg(target_os = "linux")]
use std::time::Duration;

use serde::Serialize;

use crate::error::Result;

/// How many datagrams parts 1 and 2 send at most, and the bytes in each:
/// far more than any receive buffer here holds.
const COUNT: usize = 2_000;
const LEN: usize = 1_000;
/// The UDP receiver's SO_RCVBUF, as asked (Linux doubles it).
const RCVBUF: usize = 32 * 1024;
/// The UDP receiver reads until no datagram has come for this long.
#[cfg(target_os = "linux")]
const QUIET: Duration = Duration::from_millis(100);
/// The blocking Unix sender's SO_SNDTIMEO: how long its send may wait.
#[cfg(target_os = "linux")]
const SEND_TIMEOUT: Duration = Duration::from_millis(100);
/// The longest any part may take, and any other one wait.
#[cfg(target_os = "linux")]
const DEADLINE: Duration = Duration::from_secs(5);
/// Part 3's send buffers, as asked: below Linux's default (212,992), then
/// above UDP's limit. Both are under the default cap, net.core.wmem_max.
const SNDBUFS: [usize; 2] = [16 * 1024, 64 * 1024];
/// What the sender of part 4 sends, as in `msg demo sticky`.
const RECORDS: [&[u8]; 2] = [b"hello", b"egg"];

/// Runs the four parts, in this process, and returns what each sender was
/// told and each receiver got.
///
/// # Errors
///
/// [`Error`](crate::Error), naming the part that failed and why; every
/// wait is bounded.
#[cfg(target_os = "linux")]
pub fn run() -> Result<Lesson> {
    use crate::error::Context as _;
    Ok(Lesson {
        udp: udp::lose().part("part 1 (UDP)")?,
        unix: dgram::push_back().part("part 2 (Unix datagram)")?,
        sizes: size::sizes().part("part 3 (sizes)")?,
        seqpacket: seqpacket::records().part("part 4 (SOCK_SEQPACKET)")?,
    })
}

/// Runs the four parts: not here, since what they show is Linux's.
///
/// # Errors
///
/// [`Error::Unsupported`](crate::Error::Unsupported), always.
#[cfg(not(target_os = "linux"))]
pub fn run() -> Result<Lesson> {
    Err(crate::Error::Unsupported {
        lesson: "unix",
        needs: "Linux (the limits and errors it shows are Linux's)",
    })
}

/// What the four parts brought, to render as text or JSON.
#[derive(Debug, Serialize)]
pub struct Lesson {
    udp: Lost,
    unix: PushedBack,
    sizes: Sizes,
    seqpacket: Records,
}

impl Lesson {
    /// The four parts, each with a short explanation, wrapped for a
    /// terminal.
    ///
    /// # Errors
    ///
    /// `out`'s.
    pub fn write_text(&self, out: &mut impl Write) -> io::Result<()> {
        render::write_text(out, self)
    }

    /// Each part's numbers as one JSON document (`udp`, `unix`, `sizes`,
    /// `seqpacket`).
    ///
    /// # Errors
    ///
    /// `out`'s.
    pub fn write_json(&self, out: &mut impl Write) -> io::Result<()> {
        crate::text::write_json_line(out, self)
    }

    /// [`Lesson::write_json`] if `json`, else [`Lesson::write_text`].
    ///
    /// # Errors
    ///
    /// `out`'s.
    pub fn write(&self, out: &mut impl Write, json: bool) -> io::Result<()> {
        if json {
            self.write_json(out)
        } else {
            self.write_text(out)
        }
    }
}

// ---- what happened --------------------------------------------------------

/// Part 1: UDP into a receiver that did not read.
#[derive(Debug, Serialize)]
struct Lost {
    /// Bytes in each datagram.
    len: usize,
    /// The receiver's SO_RCVBUF, as asked and as the kernel set it.
    rcvbuf_asked: usize,
    rcvbuf: usize,
    /// Sends that succeeded: all of them.
    sent: usize,
    /// Datagrams the receiver read once the sender was done.
    received: usize,
    /// `sent - received`: nobody was told.
    lost: usize,
    /// Whether every datagram received was one sent, whole.
    whole: bool,
    /// The sequence numbers received, as runs `[first, last]`.
    received_runs: Vec<[usize; 2]>,
    /// Datagrams the kernel counted as dropped for the receiver's socket
    /// (`/proc/net/udp`'s drops column), where it said.
    kernel_drops: Option<u64>,
    /// The last datagram received.
    #[serde(skip)]
    last: Vec<u8>,
}

/// Part 2: Unix datagrams into a receiver that did not read.
#[derive(Debug, Serialize)]
struct PushedBack {
    len: usize,
    /// The sender's SO_SNDBUF, as the kernel reports it.
    sndbuf: usize,
    /// `net.unix.max_dgram_qlen`, where it could be read: a sender is
    /// stopped once the receiver's queue is longer.
    max_dgram_qlen: Option<usize>,
    /// Sends that succeeded before the first refusal, and their bytes.
    accepted: usize,
    accepted_bytes: usize,
    /// The refusal: EAGAIN, in the operating system's words.
    refused: String,
    /// Which limit stopped the sender.
    full: Full,
    /// One more send, from a blocking sender with a send timeout.
    blocked: Blocked,
    /// What the receiver read afterwards.
    received: usize,
    lost: usize,
    /// Whether every datagram received was the next one sent, whole.
    in_order: bool,
    whole: bool,
    #[serde(skip)]
    last: Vec<u8>,
}

/// What stopped the Unix sender: the receiver's queue length or the
/// sender's send buffer (where every datagram still queued is counted).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
enum Full {
    Queue,
    SendBuffer,
}

#[derive(Debug, Serialize)]
struct Blocked {
    /// SO_SNDTIMEO.
    timeout_ms: u64,
    /// How long the send waited before it returned.
    waited_ms: f64,
    error: String,
}

/// Part 3.
#[derive(Debug, Serialize)]
struct Sizes {
    udp: UdpSize,
    /// The default send buffer first, then each of [`SNDBUFS`].
    unix: Vec<UnixSize>,
}

#[derive(Debug, Serialize)]
struct UdpSize {
    /// The sender's SO_SNDBUF, as the kernel set it: larger than the
    /// datagram, and no help.
    sndbuf: usize,
    /// Sent and received whole.
    largest: usize,
    /// One byte more, refused by the kernel: its words.
    refused: String,
}

#[derive(Debug, Serialize)]
struct UnixSize {
    /// SO_SNDBUF as asked (none: the default) and as the kernel set it.
    sndbuf_asked: Option<usize>,
    sndbuf: usize,
    /// The largest datagram sent and received whole; one byte more was
    /// refused, in the kernel's words.
    largest: usize,
    refused: String,
    /// How many sends the search took.
    probes: u32,
}

/// Part 4: what each receive on a SOCK_SEQPACKET connection returned.
#[derive(Debug, Serialize)]
struct Records {
    #[serde(serialize_with = "render::base64s")]
    sent_b64: Vec<Vec<u8>>,
    #[serde(serialize_with = "render::base64s")]
    received_b64: Vec<Vec<u8>>,
}

/// Datagram `seq` (from 1) of parts 1 and 2: its number, readable where
/// a receive starts, then the alphabet, [`LEN`] bytes in all.
fn numbered(seq: usize) -> Vec<u8> {
    let mut bytes = format!("{seq:05} ").into_bytes();
    bytes.extend((b'a'..=b'z').cycle().take(LEN - bytes.len()));
    bytes
}

/// The number of `bytes` if it is a datagram [`numbered`] made, whole.
fn number_of(bytes: &[u8]) -> Option<usize> {
    let seq = std::str::from_utf8(bytes.get(..5)?).ok()?.parse().ok()?;
    (bytes == numbered(seq)).then_some(seq)
}

#[cfg(target_os = "linux")]
mod dgram;
mod render;
#[cfg(target_os = "linux")]
mod seqpacket;
#[cfg(target_os = "linux")]
mod size;
#[cfg(target_os = "linux")]
mod udp;

#[cfg(all(test, target_os = "linux"))]
mod tests;
