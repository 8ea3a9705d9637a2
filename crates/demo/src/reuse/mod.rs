//! `msg demo reuseaddr`: why a restarted server needs SO_REUSEADDR, and
//! what SO_REUSEPORT does instead. Shown in one process, on 127.0.0.1,
//! on ports the kernel picks.
//!
//! 1. TCP: a listener (msg-tcp's [`listen`](msg_tcp::tcp::listen), which
//!    sets SO_REUSEADDR) accepts a client, and the *server* closes first,
//!    so its end of the connection waits in TIME_WAIT on the listening
//!    port; the listener is closed too. The TIME_WAIT entry is shown as
//!    `ss -tan` would, read from `/proc/net/tcp`. Then a new socket binds
//!    that port without SO_REUSEADDR (EADDRINUSE), and with it (bound and
//!    listening).
//! 2. UDP: two receivers bind one port, both with SO_REUSEPORT; senders
//!    from several source ports share their datagrams between them, each
//!    datagram to one receiver, each source port always to the same one. A
//!    third socket without SO_REUSEPORT is refused the port.
//!
//! Every loop is bounded in count and every wait in time; every socket is
//! closed when its part ends. Where the kernel kept no TIME_WAIT entry
//! (its table full: `net.ipv4.tcp_max_tw_buckets`), part 1 says so rather
//! than fail.
//!
//! Linux only: `/proc/net/tcp`, and SO_REUSEPORT's sharing, are Linux's;
//! elsewhere [`run`] returns [`Error::Unsupported`](crate::Error::Unsupported).

// Elsewhere than Linux nothing is run, so nothing is built to render.
#![cfg_attr(not(target_os = "linux"), allow(dead_code))]

use std::io::{self, Write};
#[cfg(target_os = "linux")]
use std::time::Duration;

use serde::Serialize;

use crate::error::Result;

/// Part 2's senders are made this many at a time, each with a source port
/// of its own, and each sends [`PER_SENDER`] datagrams.
const SENDERS: usize = 8;
const PER_SENDER: usize = 4;
/// Another round of [`SENDERS`] goes only while one receiver has had
/// nothing (each time, a chance in 128 with two receivers), at most this
/// many rounds in all.
const ROUNDS: usize = 8;
/// How often a wait looks again.
#[cfg(target_os = "linux")]
const POLL: Duration = Duration::from_millis(1);
/// The longest any part may take, and any one wait.
#[cfg(target_os = "linux")]
const DEADLINE: Duration = Duration::from_secs(5);

/// Runs both parts, in this process, and returns what each bind was told
/// and each receiver got.
///
/// # Errors
///
/// [`Error`](crate::Error), naming the part that failed and why; every
/// wait is bounded. A bind refused (or allowed) where the lesson expects
/// otherwise is not an error: the lesson shows it.
#[cfg(target_os = "linux")]
pub fn run() -> Result<Lesson> {
    use crate::error::Context as _;
    Ok(Lesson {
        time_wait: time_wait::restart().part("part 1 (TIME_WAIT and SO_REUSEADDR)")?,
        reuseport: reuseport::share().part("part 2 (SO_REUSEPORT)")?,
    })
}

/// Runs both parts: not here, since what they show is Linux's.
///
/// # Errors
///
/// [`Error::Unsupported`](crate::Error::Unsupported), always.
#[cfg(not(target_os = "linux"))]
pub fn run() -> Result<Lesson> {
    Err(crate::Error::Unsupported {
        lesson: "reuseaddr",
        needs: "Linux (it reads /proc/net/tcp, and SO_REUSEPORT's sharing is Linux's)",
    })
}

/// What both parts brought, to render as text or JSON.
#[derive(Debug, Serialize)]
pub struct Lesson {
    time_wait: Restart,
    reuseport: Shared,
}

impl Lesson {
    /// Both parts, each with a short explanation, wrapped for a terminal.
    ///
    /// # Errors
    ///
    /// `out`'s.
    pub fn write_text(&self, out: &mut impl Write) -> io::Result<()> {
        render::write_text(out, self)
    }

    /// Each part's numbers and the errors' text as one JSON document
    /// (`time_wait`, `reuseport`).
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

/// Part 1: a server that closed first, and binding its port again.
#[derive(Debug, Serialize)]
struct Restart {
    /// The listening port, and the client's.
    port: u16,
    client_port: u16,
    /// The entries of `/proc/net/tcp` on the port once both ends had
    /// closed (the server's, in TIME_WAIT), as `ss -tan` shows them.
    entries: Vec<Entry>,
    /// Whether the server's end was seen in TIME_WAIT; how many reads of
    /// `/proc/net/tcp` it took (each takes milliseconds: the kernel walks
    /// its tables), and how long after the client's close.
    time_wait: bool,
    reads: usize,
    waited_ms: f64,
    /// Whether, instead, the server's end had left no entry at all: no
    /// TIME_WAIT was coming (the kernel keeps none when its table is full,
    /// net.ipv4.tcp_max_tw_buckets), so the wait stopped there.
    gone: bool,
    /// A new socket on the port, without SO_REUSEADDR and then with it.
    without_reuseaddr: Bind,
    with_reuseaddr: Bind,
}

/// A line of `/proc/net/tcp`, as `ss -tan` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
struct Entry {
    /// The kernel's state number (`06`) and `ss`'s name (`TIME-WAIT`).
    st: String,
    state: String,
    /// Bytes queued to read and to send (`ss`'s Recv-Q and Send-Q).
    recv_q: u64,
    send_q: u64,
    local: String,
    remote: String,
    /// How long until the kernel forgets it, where a timer runs (TIME_WAIT's).
    timer_ms: Option<u64>,
}

/// What became of a bind (and, for a TCP socket bound, its listen).
#[derive(Debug, Serialize)]
struct Bind {
    ok: bool,
    /// The refusal, in the operating system's words.
    error: Option<String>,
    /// Whether it was EADDRINUSE.
    in_use: bool,
}

impl Bind {
    fn of<T>(result: &io::Result<T>) -> Self {
        match result {
            Ok(_) => Self {
                ok: true,
                error: None,
                in_use: false,
            },
            Err(err) => Self {
                ok: false,
                error: Some(err.to_string()),
                in_use: err.kind() == io::ErrorKind::AddrInUse,
            },
        }
    }
}

/// Part 2: two receivers on one UDP port.
#[derive(Debug, Serialize)]
struct Shared {
    port: u16,
    /// Sender sockets, each from its own port, and what each sent.
    senders: usize,
    per_sender: usize,
    rounds: usize,
    sent: usize,
    /// What each receiver got, whole; their sum is what arrived.
    received: [usize; 2],
    /// Datagrams received twice (by both, or by one), or not as sent.
    duplicates: usize,
    garbled: usize,
    /// Senders whose datagrams went to both receivers.
    split_flows: usize,
    /// Each sender's port, and how many of its datagrams each receiver got.
    flows: Vec<Flow>,
    /// A third socket, without SO_REUSEPORT, on the same port.
    without_reuseport: Bind,
}

#[derive(Debug, Serialize)]
struct Flow {
    port: u16,
    received: [usize; 2],
}

/// Datagram `seq` of the sender on `port`.
fn datagram(port: u16, seq: usize) -> Vec<u8> {
    format!("from {port} #{seq}").into_bytes()
}

mod render;
#[cfg(target_os = "linux")]
mod reuseport;
#[cfg(target_os = "linux")]
mod time_wait;

#[cfg(all(test, target_os = "linux"))]
mod tests;
