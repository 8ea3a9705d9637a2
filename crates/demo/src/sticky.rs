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

/// A large read shows this many of its first bytes.
const SHOWN: usize = 8;
/// A step with more reads than this shows the first and the last few.
const LISTED: usize = 12;
/// Where the text is wrapped.
const WIDTH: usize = 78;

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
        write_text(out, self.nodelay, &self.parts)
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

// ---- part 1 and part 4: raw TCP, std sockets ------------------------------

fn raw_tcp(nodelay: bool) -> Result<Part> {
    Ok(Part {
        number: 1,
        transport: "tcp",
        title: "Raw TCP: a stream of bytes, not of messages",
        lesson: "TCP carries a stream of bytes, not messages. Bytes that arrive wait in \
                 the socket's receive buffer (memory the kernel keeps for it), and a read \
                 returns whatever is there, up to the size it asks for. So two quick \
                 writes can come back as one read (\"sticky packets\"), and one large \
                 write as many reads, each of whatever had arrived.",
        steps: vec![two_small_writes(nodelay)?, one_large_write(nodelay)?],
    })
}

fn two_small_writes(nodelay: bool) -> Result<Step> {
    let (mut writer, mut reader) = tcp_pair(nodelay)?;
    for bytes in SMALL {
        writer.write_all(bytes).what("cannot write")?;
    }
    let waited = wait_for(&reader, SMALL_LEN)?;
    let mut buf = vec![0; READ_BUF];
    let n = reader.read(&mut buf).what("cannot read")?;
    Ok(Step {
        name: TWO_SMALL,
        did: format!("write {}, then write {}", shown(SMALL[0]), shown(SMALL[1])),
        how: format!(
            "{}, then read once with a {READ_BUF}-byte buffer.",
            waited.describe()
        ),
        unit: Unit::Read,
        got: vec![Got {
            bytes: buf[..n].to_vec(),
            queued: waited.queued,
        }],
        refused: None,
    })
}

fn one_large_write(nodelay: bool) -> Result<Step> {
    let (mut writer, mut reader) = tcp_pair(nodelay)?;
    let payload = pattern(LARGE);
    let (calls, got) = thread::scope(|scope| {
        let writing = scope.spawn(|| write_counting(&mut writer, &payload));
        let got = read_all(&mut reader, LARGE);
        let calls = writing
            .join()
            .map_err(|_| Error::Broken("the writing thread panicked".to_owned()))?;
        Ok::<_, Error>((calls?, got?))
    })?;
    Ok(Step {
        name: ONE_LARGE,
        did: format!("write {LARGE} bytes at once"),
        how: format!(
            "The writer's write took {calls} call{} to the kernel. The reader read at \
             the same time, on another thread, with a {READ_BUF}-byte buffer: each read \
             returned what had arrived by then, at most {READ_BUF} bytes.",
            plural(calls)
        ),
        unit: Unit::Read,
        got,
        refused: None,
    })
}

fn short_read(nodelay: bool) -> Result<Part> {
    let (mut writer, mut reader) = tcp_pair(nodelay)?;
    for bytes in SMALL {
        writer.write_all(bytes).what("cannot write")?;
    }
    let waited = wait_for(&reader, SMALL_LEN)?;
    let mut first = [0; SHORT_READ];
    let n = reader.read(&mut first).what("cannot read")?;
    let left = queued(&reader).what(FIONREAD_FAILED)?;
    let mut buf = vec![0; READ_BUF];
    let m = reader.read(&mut buf).what("cannot read")?;
    let step = Step {
        name: TOO_LITTLE,
        did: format!("write {}, then write {}", shown(SMALL[0]), shown(SMALL[1])),
        how: format!(
            "{}, then read with a {SHORT_READ}-byte buffer, then again with a \
             {READ_BUF}-byte one.",
            waited.describe()
        ),
        unit: Unit::Read,
        got: vec![
            Got {
                bytes: first[..n].to_vec(),
                queued: waited.queued,
            },
            Got {
                bytes: buf[..m].to_vec(),
                queued: left,
            },
        ],
        refused: None,
    };
    Ok(Part {
        number: 4,
        transport: "tcp",
        title: "A reader that asks for too little",
        lesson: "How much a read returns is the reader's choice as much as the sender's: \
                 ask for 2 bytes and you get 2, and the rest stays in the buffer for the \
                 next read. Nothing is lost, but nothing marks where \"hello\" ended \
                 either. (A UDP receive that asks for too little is different: the rest \
                 of that datagram is thrown away.)",
        steps: vec![step],
    })
}

/// A connected pair on 127.0.0.1: the writer (with TCP_NODELAY as asked)
/// and the reader, each of their calls bounded by [`DEADLINE`].
fn tcp_pair(nodelay: bool) -> Result<(TcpStream, TcpStream)> {
    let listener =
        TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).what("cannot listen on 127.0.0.1")?;
    let addr = listener.local_addr()?;
    let writer = TcpStream::connect_timeout(&addr, DEADLINE)
        .with_what(|| format!("cannot connect to {addr}"))?;
    // Already connected: the accept only takes it from the queue.
    let (reader, _) = listener.accept().what("cannot accept")?;
    writer.set_nodelay(nodelay)?;
    writer.set_write_timeout(Some(DEADLINE))?;
    reader.set_read_timeout(Some(DEADLINE))?;
    Ok((writer, reader))
}

/// Writes all of `bytes` and counts the write calls it took: one, on a
/// blocking socket, unless a signal or the deadline cuts it short.
fn write_counting(writer: &mut TcpStream, bytes: &[u8]) -> Result<usize> {
    let (mut sent, mut calls) = (0, 0);
    while sent < bytes.len() {
        match writer.write(&bytes[sent..]) {
            Ok(0) => {
                return Err(Error::Broken(format!(
                    "the connection closed after {sent} bytes"
                )));
            }
            Ok(n) => {
                sent += n;
                calls += 1;
            }
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err).what("cannot write"),
        }
    }
    Ok(calls)
}

/// Reads `total` bytes with a [`READ_BUF`]-byte buffer, one [`Got`] per
/// read.
fn read_all(reader: &mut TcpStream, total: usize) -> Result<Vec<Got>> {
    let mut buf = vec![0; READ_BUF];
    let (mut got, mut sum) = (Vec::new(), 0);
    while sum < total {
        let n = match reader.read(&mut buf) {
            Ok(0) => {
                return Err(Error::Broken(format!(
                    "the writer closed the connection after {sum} bytes"
                )));
            }
            Ok(n) => n,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => return Err(err).what("cannot read"),
        };
        sum += n;
        got.push(Got {
            bytes: buf[..n].to_vec(),
            queued: None,
        });
    }
    Ok(got)
}

// ---- part 2: framed TCP (msg-tcp) -----------------------------------------

async fn framed_tcp(nodelay: bool) -> Result<Part> {
    let options = msg_tcp::Options {
        max_frame: DEFAULT_MAX_FRAME,
        nodelay,
    };
    let listener = Listener::bind(localhost(), options).await?;
    let addr = listener.local_addr()?;
    let mut writer = bounded(Connection::connect(addr, options)).await?;
    let mut reader = bounded(listener.accept()).await?;
    Ok(Part {
        number: 2,
        transport: "tcp",
        title: "Framed TCP: msg's 4-byte length prefix",
        lesson: "msg frames each message: a 4-byte length (big-endian), then msg's 28-byte \
                 header and the body. Underneath, reads still return glued or partial \
                 bytes as in part 1; the codec (the code that turns bytes into messages \
                 and back) keeps them in a buffer and cuts them where the lengths say, so \
                 the messages come back as they were sent.",
        steps: vec![
            two_small_messages(&mut writer, &mut reader).await?,
            one_large_message(&mut writer, &mut reader).await?,
        ],
    })
}

async fn two_small_messages(writer: &mut Connection, reader: &mut Connection) -> Result<Step> {
    let small: Vec<Message> = SMALL
        .iter()
        .zip(1..)
        .map(|(body, seq)| Message::new(Kind::Data, seq, *body))
        .collect();
    for msg in &small {
        bounded(writer.write_message(msg))
            .await
            .what("cannot send")?;
    }
    let frames: Vec<usize> = small
        .iter()
        .map(|msg| LENGTH_PREFIX_LEN + msg.encoded_len())
        .collect();
    let waited = wait_for_async(reader.get_ref(), frames.iter().sum()).await?;
    let mut got = Vec::new();
    for _ in &small {
        let before = queued(reader.get_ref()).what(FIONREAD_FAILED)?;
        got.push(Got {
            bytes: receive(reader).await?.body.to_vec(),
            queued: before,
        });
    }
    Ok(Step {
        name: TWO_SMALL,
        did: format!(
            "send {} and {} as two frames of {} and {} bytes (a {LENGTH_PREFIX_LEN}-byte \
             length, a {HEADER_LEN}-byte header, the body)",
            shown(SMALL[0]),
            shown(SMALL[1]),
            frames[0],
            frames[1]
        ),
        how: format!(
            "{}, glued as in part 1, then asked the codec for two messages.",
            waited.describe()
        ),
        unit: Unit::Message,
        got,
        refused: None,
    })
}

async fn one_large_message(writer: &mut Connection, reader: &mut Connection) -> Result<Step> {
    let large = Message::new(Kind::Data, 3, pattern(LARGE));
    let (sent, received) = bounded(async {
        Ok::<_, Error>(tokio::join!(writer.write_message(&large), receive(reader)))
    })
    .await?;
    sent.what("cannot send")?;
    Ok(Step {
        name: ONE_LARGE,
        did: format!(
            "send {LARGE} bytes as one frame of {} bytes",
            LENGTH_PREFIX_LEN + large.encoded_len()
        ),
        how: "The reader asked the codec for one message; under it, the codec read as \
              often as it took, and waited for the whole frame."
            .to_owned(),
        unit: Unit::Message,
        got: vec![Got {
            bytes: received?.body.to_vec(),
            queued: None,
        }],
        refused: None,
    })
}

/// The next message, within [`DEADLINE`].
async fn receive(reader: &mut Connection) -> Result<Message> {
    bounded(reader.read_message())
        .await
        .what("cannot receive")?
        .what("the writer closed the connection")
}

// ---- part 3: UDP (msg-udp) ------------------------------------------------

async fn udp() -> Result<Part> {
    let mut receiver = msg_udp::Socket::bind(localhost()).await?;
    let to = receiver.local_addr()?;
    let mut sender = msg_udp::Socket::bind(localhost()).await?;
    Ok(Part {
        number: 3,
        transport: "udp",
        title: "UDP: one datagram per receive",
        lesson: "UDP sends datagrams: each send is one packet, and each receive returns \
                 exactly one, whole: never glued to the next, never in pieces, so no \
                 length is needed. The price: a datagram holds at most 65,507 bytes over \
                 IPv4 (65,535 less a 20-byte IP header and an 8-byte UDP header), and it \
                 may be lost. msg refuses a larger one before sending.",
        steps: vec![
            two_datagrams(&mut sender, &mut receiver, to).await?,
            one_oversize_datagram(&mut sender, to).await?,
        ],
    })
}

async fn two_datagrams(
    sender: &mut msg_udp::Socket,
    receiver: &mut msg_udp::Socket,
    to: SocketAddr,
) -> Result<Step> {
    for bytes in SMALL {
        sender.send_raw_to(bytes, to).await.what("cannot send")?;
    }
    let mut got = Vec::new();
    for _ in SMALL {
        let (datagram, _) = bounded(receiver.recv_raw_from())
            .await
            .what("cannot receive")?;
        got.push(Got {
            bytes: datagram.to_vec(),
            queued: None,
        });
    }
    Ok(Step {
        name: TWO_SMALL,
        did: format!(
            "send {} and {} as two datagrams",
            shown(SMALL[0]),
            shown(SMALL[1])
        ),
        how: format!(
            "Both were sent before the receiver's first receive, and each receive asked \
             for up to {} bytes. Whether or not the second had arrived by then, a \
             receive returns one datagram.",
            msg_udp::RECV_BUF_LEN
        ),
        unit: Unit::Datagram,
        got,
        refused: None,
    })
}

async fn one_oversize_datagram(sender: &mut msg_udp::Socket, to: SocketAddr) -> Result<Step> {
    let oversize = vec![0; UDP_OVERSIZE];
    let error = match sender.send_raw_to(&oversize, to).await {
        Err(err @ msg_udp::Error::TooLarge { .. }) => err.to_string(),
        Err(err) => return Err(err).what("cannot send"),
        Ok(()) => {
            return Err(Error::Broken(format!(
                "a {UDP_OVERSIZE}-byte datagram was sent, not refused"
            )));
        }
    };
    Ok(Step {
        name: ONE_LARGE,
        did: format!("send {UDP_OVERSIZE} bytes as one datagram"),
        how: "msg checks the size before the send call.".to_owned(),
        unit: Unit::Datagram,
        got: Vec::new(),
        refused: Some(Refused {
            len: UDP_OVERSIZE,
            error,
            kernel: kernel_refusal(&oversize, to),
        }),
    })
}

/// What the kernel says when asked to send `payload` as one datagram
/// anyway, past msg's check.
fn kernel_refusal(payload: &[u8], to: SocketAddr) -> String {
    let sent = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).and_then(|s| s.send_to(payload, to));
    match sent {
        Ok(n) => format!("it accepted {n} bytes"),
        Err(err) => err.to_string(),
    }
}

// ---- waiting, bounded -----------------------------------------------------

const FIONREAD_FAILED: &str = "cannot ask how many bytes wait unread (FIONREAD)";

/// How many bytes wait unread in `socket`'s receive buffer: the FIONREAD
/// ioctl (Linux also calls it SIOCINQ), through rustix's safe wrapper.
#[cfg(unix)]
fn queued(socket: &impl std::os::fd::AsFd) -> io::Result<Option<u64>> {
    Ok(Some(rustix::io::ioctl_fionread(socket)?))
}

/// Not asked on this platform: the caller pauses instead and says so.
#[cfg(not(unix))]
fn queued<T>(_socket: &T) -> io::Result<Option<u64>> {
    Ok(None)
}

/// How the reader waited for the writer's bytes.
#[derive(Debug, Clone, Copy)]
struct Waited {
    /// What FIONREAD said at the end: `None` where it was not asked.
    queued: Option<u64>,
    after: Duration,
}

impl Waited {
    fn describe(self) -> String {
        let after = if self.after < Duration::from_millis(1) {
            format!("{} µs", self.after.as_micros())
        } else {
            format!("{:.1} ms", self.after.as_secs_f64() * 1e3)
        };
        match self.queued {
            Some(n) => format!(
                "The reader waited until FIONREAD said all {n} bytes were in its socket \
                 buffer ({after} after the writes)"
            ),
            None => format!(
                "The reader paused {after} (this build does not ask FIONREAD, so the \
                 glue is likely but not certain)"
            ),
        }
    }
}

/// Waits until `want` bytes wait unread in `socket`: polls FIONREAD every
/// [`POLL`], at most [`POLLS`] times.
fn wait_for(socket: &TcpStream, want: usize) -> Result<Waited> {
    let start = Instant::now();
    for _ in 0..POLLS {
        match queued(socket).what(FIONREAD_FAILED)? {
            Some(n) if n >= want as u64 => return Ok(Waited::done(Some(n), start)),
            Some(_) => thread::sleep(POLL),
            None => {
                thread::sleep(PAUSE);
                return Ok(Waited::done(None, start));
            }
        }
    }
    Err(too_slow(want))
}

/// [`wait_for`] for a tokio socket, sleeping without blocking the runtime.
async fn wait_for_async(socket: &tokio::net::TcpStream, want: usize) -> Result<Waited> {
    let start = Instant::now();
    for _ in 0..POLLS {
        match queued(socket).what(FIONREAD_FAILED)? {
            Some(n) if n >= want as u64 => return Ok(Waited::done(Some(n), start)),
            Some(_) => tokio::time::sleep(POLL).await,
            None => {
                tokio::time::sleep(PAUSE).await;
                return Ok(Waited::done(None, start));
            }
        }
    }
    Err(too_slow(want))
}

impl Waited {
    fn done(queued: Option<u64>, start: Instant) -> Self {
        Self {
            queued,
            after: start.elapsed(),
        }
    }
}

fn too_slow(want: usize) -> Error {
    Error::Broken(format!(
        "the writer's {want} bytes did not all arrive within {} s",
        DEADLINE.as_secs()
    ))
}

/// `fut`, or an error once [`DEADLINE`] has passed.
async fn bounded<T, E>(fut: impl Future<Output = std::result::Result<T, E>>) -> Result<T>
where
    E: Into<Error>,
{
    tokio::time::timeout(DEADLINE, fut)
        .await
        .map_err(|_| Error::Broken(format!("nothing happened within {} s", DEADLINE.as_secs())))?
        .map_err(Into::into)
}

fn localhost() -> SocketAddr {
    (Ipv4Addr::LOCALHOST, 0).into()
}

/// `len` bytes of the alphabet over and over: readable where a read starts.
fn pattern(len: usize) -> Vec<u8> {
    (b'a'..=b'z').cycle().take(len).collect()
}

// ---- rendering ------------------------------------------------------------

/// `bytes` in quotes, every byte that is not printable ASCII escaped
/// (`\n`, `\x00`), so that nothing a socket returns reaches the terminal as
/// a control character.
fn shown(bytes: &[u8]) -> String {
    if bytes.len() <= 4 * SHOWN {
        format!("\"{}\"", bytes.escape_ascii())
    } else {
        format!("\"{}\"...", bytes[..SHOWN].escape_ascii())
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

fn write_text(out: &mut impl Write, nodelay: bool, parts: &[Part]) -> io::Result<()> {
    writeln!(
        out,
        "msg demo sticky: what each read returns, over TCP and UDP, on 127.0.0.1"
    )?;
    writeln!(out)?;
    wrap(out, "", ARRANGEMENT)?;
    writeln!(out)?;
    wrap(out, "", if nodelay { NAGLE_OFF } else { NAGLE_ON })?;
    for part in parts {
        writeln!(out)?;
        writeln!(out, "Part {}. {}", part.number, part.title)?;
        wrap(out, "  ", part.lesson)?;
        for step in &part.steps {
            writeln!(out)?;
            wrap(out, "  ", &format!("{}: {}", step.name, step.did))?;
            wrap(out, "    ", &step.how)?;
            write_got(out, step)?;
            if let Some(refused) = &step.refused {
                wrap(out, "    ", &format!("refused: {}", refused.error))?;
                wrap(
                    out,
                    "    ",
                    &format!("(the kernel, asked anyway: {})", refused.kernel),
                )?;
            }
        }
    }
    Ok(())
}

fn write_got(out: &mut impl Write, step: &Step) -> io::Result<()> {
    let n = step.got.len();
    for (i, got) in step.got.iter().enumerate() {
        if n > LISTED && i == LISTED - 2 {
            writeln!(out, "    ... {} more ...", n - LISTED)?;
        }
        if n > LISTED && (LISTED - 2..n - 2).contains(&i) {
            continue;
        }
        let len = got.bytes.len();
        let waiting = match (got.queued, step.unit) {
            (Some(0), Unit::Message) => {
                " (0 bytes waited in the socket: the codec had read it already)".to_owned()
            }
            (Some(q), _) => format!(" ({q} bytes waited in the socket)"),
            (None, _) => String::new(),
        };
        writeln!(
            out,
            "    {} {}: {len} byte{} {}{waiting}",
            step.unit.name(),
            i + 1,
            plural(len),
            shown(&got.bytes)
        )?;
    }
    if n > 2 {
        let lens = step.got.iter().map(|got| got.bytes.len());
        let (min, max) = (lens.clone().min(), lens.clone().max());
        let total: usize = lens.sum();
        writeln!(
            out,
            "    {n} {}s of {} to {} bytes, {total} in all",
            step.unit.name(),
            min.unwrap_or(0),
            max.unwrap_or(0)
        )?;
    }
    Ok(())
}

/// Writes `text` as lines of at most [`WIDTH`] columns, each after
/// `indent`.
fn wrap(out: &mut impl Write, indent: &str, text: &str) -> io::Result<()> {
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

#[cfg(unix)]
const ARRANGEMENT: &str = "How the timing is arranged, so that what you see is cause and \
    effect, not luck: after the small writes, the reader asks the kernel how many bytes \
    wait unread in its socket (FIONREAD, an ioctl: a question to the kernel about a file \
    or socket) every millisecond, for at most 5 s, and reads only once all of the \
    writer's bytes are there. For the large write, writer and reader run at the same \
    time on two threads, and the reader's buffer (64 KiB) is smaller than the write \
    (1 MiB). Over UDP, both datagrams are sent before the first receive.";

#[cfg(not(unix))]
const ARRANGEMENT: &str = "How the timing is arranged: on this platform the reader does \
    not ask the kernel how many bytes wait unread in its socket (FIONREAD); it pauses \
    100 ms after the small writes instead, which makes the glue likely but not certain. \
    For the large write, writer and reader run at the same time on two threads, and the \
    reader's buffer (64 KiB) is smaller than the write (1 MiB). Over UDP, both datagrams \
    are sent before the first receive.";

const NAGLE_OFF: &str = "Nagle's algorithm is off (TCP_NODELAY, the default): each write \
    leaves at once, in a segment (a TCP packet) of its own. The two small writes still \
    come back as one read, because the reader waits until both are in its buffer. \
    --nodelay=false turns Nagle on.";

const NAGLE_ON: &str = "Nagle's algorithm is on (--nodelay=false): while data it sent is \
    still unacknowledged (the receiver has not yet confirmed it with an ACK), TCP holds \
    a small write back and later sends it together with the next ones. So \"egg\" may \
    wait for the ACK of \"hello\", and quick small writes are glued even more often, \
    before they reach the network. The reader's wait makes them one read either way; \
    only the wait may be longer.";

// ---- JSON -----------------------------------------------------------------

#[derive(Serialize)]
struct Report<'a> {
    nodelay: bool,
    /// How the reader waited for the small writes: "FIONREAD" or "pause".
    arrangement: &'static str,
    reads: Vec<ReadRecord>,
    refused: Vec<RefusedRecord<'a>>,
}

#[derive(Serialize)]
struct ReadRecord {
    part: u8,
    transport: &'static str,
    step: &'static str,
    unit: Unit,
    read: usize,
    len: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    queued: Option<u64>,
    bytes_b64: String,
}

#[derive(Serialize)]
struct RefusedRecord<'a> {
    part: u8,
    transport: &'static str,
    step: &'static str,
    len: usize,
    error: &'a str,
}

fn write_json(out: &mut impl Write, nodelay: bool, parts: &[Part]) -> io::Result<()> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut report = Report {
        nodelay,
        arrangement: if cfg!(unix) { "FIONREAD" } else { "pause" },
        reads: Vec::new(),
        refused: Vec::new(),
    };
    for part in parts {
        for step in &part.steps {
            for (i, got) in step.got.iter().enumerate() {
                report.reads.push(ReadRecord {
                    part: part.number,
                    transport: part.transport,
                    step: step.name,
                    unit: step.unit,
                    read: i + 1,
                    len: got.bytes.len(),
                    queued: got.queued,
                    bytes_b64: b64.encode(&got.bytes),
                });
            }
            if let Some(refused) = &step.refused {
                report.refused.push(RefusedRecord {
                    part: part.number,
                    transport: part.transport,
                    step: step.name,
                    len: refused.len,
                    error: &refused.error,
                });
            }
        }
    }
    serde_json::to_writer(&mut *out, &report)?;
    writeln!(out)
}
