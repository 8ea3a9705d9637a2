//! Rendering what happened: wrapped text with a short lesson per part.
//! (The JSON is the parts' own fields.)

use std::io::{self, Write};

use base64::Engine as _;
use serde::Serializer;

use super::{Full, Lesson, Lost, PushedBack, Records, Sizes, UnixSize};
use crate::text::{part, plural, shown, step, wrap};

pub(super) fn write_text(out: &mut impl Write, lesson: &Lesson) -> io::Result<()> {
    writeln!(
        out,
        "msg demo unix: a full receiver; UDP loses, a Unix datagram socket pushes back"
    )?;
    writeln!(out)?;
    wrap(out, "", ARRANGEMENT)?;
    udp(out, &lesson.udp)?;
    unix(out, &lesson.unix, &lesson.udp)?;
    sizes(out, &lesson.sizes)?;
    seqpacket(out, &lesson.seqpacket)
}

/// Where each socket is, part 2's receiver as `dgram::named_pair` binds it
/// on this system: an abstract name on Linux (the text said "a path in a
/// private temporary directory" there too), a file elsewhere.
#[cfg(any(target_os = "linux", target_os = "android"))]
const ARRANGEMENT: &str = "Everything runs in this process: UDP on 127.0.0.1; the Unix \
    datagram receiver of part 2 at an abstract name (Linux's: no file, so nothing is left \
    behind however the demo ends); the other Unix sockets as connected pairs, with no \
    name. Each receiver reads nothing until its sender has finished, so a full queue is \
    arranged, not hoped for.";
#[cfg(not(any(target_os = "linux", target_os = "android")))]
const ARRANGEMENT: &str = "Everything runs in this process: UDP on 127.0.0.1; the Unix \
    datagram receiver of part 2 at a path in a private temporary directory, removed at \
    the end; the other Unix sockets as connected pairs, with no name. Each receiver \
    reads nothing until its sender has finished, so a full queue is arranged, not \
    hoped for.";

fn udp(out: &mut impl Write, udp: &Lost) -> io::Result<()> {
    part(
        out,
        1,
        "UDP: a full receiver loses, silently",
        "A UDP receiver's datagrams wait in its receive buffer (SO_RCVBUF: memory the \
         kernel keeps for the socket) until it reads them. Once the buffer is full, the \
         kernel drops each new datagram as it arrives. The sender is not told: its send \
         had already succeeded, and UDP sends nothing again. Only the kernel keeps count.",
    )?;
    let runs: Vec<String> = udp
        .received_runs
        .iter()
        .take(RUNS)
        .map(|[first, last]| {
            if first == last {
                format!("#{first}")
            } else {
                format!("#{first} to #{last}")
            }
        })
        .collect();
    let more = udp.received_runs.len().saturating_sub(RUNS);
    let mut results = vec![
        format!("every send succeeded: {} sent", udp.sent),
        format!(
            "then the receiver read until none had come for 100 ms: {} received{}",
            udp.received,
            if udp.whole {
                ", each whole"
            } else {
                ", not all whole"
            }
        ),
        match udp.kernel_drops {
            Some(drops) => format!(
                "lost: {}, and nobody was told; the kernel counted {drops} dropped for \
                 the receiver's socket (the drops column of /proc/net/udp)",
                udp.lost
            ),
            None => format!("lost: {}, and nobody was told", udp.lost),
        },
    ];
    if !runs.is_empty() {
        results.push(format!(
            "received: {}{}; the last: {}",
            runs.join(", "),
            if more > 0 {
                format!(" and {more} more runs")
            } else {
                String::new()
            },
            datagram(&udp.last)
        ));
    }
    step(
        out,
        &format!(
            "send {} datagrams of {} bytes, numbered (\"00001 abc...\"), as fast as \
             possible, to a receiver that does not read, its SO_RCVBUF asked for {} \
             bytes (the kernel set {}: Linux doubles it, for its bookkeeping)",
            udp.sent, udp.len, udp.rcvbuf_asked, udp.rcvbuf
        ),
        &results,
    )?;
    writeln!(out)?;
    wrap(
        out,
        "  ",
        &format!(
            "The {}-byte buffer held {} datagram{} ({} bytes): it counts what each costs \
             the kernel, its bookkeeping included ({}), not only the bytes sent.",
            udp.rcvbuf,
            udp.received,
            plural(udp.received),
            udp.received * udp.len,
            each(udp.rcvbuf, udp.received)
        ),
    )
}

/// How many runs of sequence numbers the text lists.
const RUNS: usize = 4;

fn unix(out: &mut impl Write, unix: &PushedBack, udp: &Lost) -> io::Result<()> {
    part(
        out,
        2,
        "Unix datagram: a full receiver pushes back",
        "A Unix datagram socket (AF_UNIX, SOCK_DGRAM) keeps boundaries as UDP does: one \
         send, one receive, whole. But it loses nothing: sender and receiver are in the \
         same kernel, so when the receiver's queue is full the kernel does not drop the \
         datagram, it refuses the send (EAGAIN, on a non-blocking socket) or makes the \
         sender wait (a blocking one). On Linux two limits fill: the receiver's queue \
         length (net.unix.max_dgram_qlen datagrams), and the sender's send buffer \
         (SO_SNDBUF), since a datagram still queued counts against it. Whichever fills \
         first stops the sender.",
    )?;
    let qlen = unix
        .max_dgram_qlen
        .map_or_else(|| "unknown".to_owned(), |q| q.to_string());
    let full = match unix.full {
        Full::Queue => format!(
            "what filled: the receiver's queue, {} datagrams, more than \
             net.unix.max_dgram_qlen ({qlen}); the sender's SO_SNDBUF ({}) had room",
            unix.accepted, unix.sndbuf
        ),
        Full::SendBuffer => format!(
            "what filled: the sender's send buffer, SO_SNDBUF {} bytes, which counts \
             what each queued datagram costs the kernel ({}), not only its {} bytes; \
             the queue length limit (net.unix.max_dgram_qlen: {qlen}) was not reached",
            unix.sndbuf,
            each(unix.sndbuf, unix.accepted),
            unix.len
        ),
    };
    step(
        out,
        &format!(
            "send the same numbered {}-byte datagrams, non-blocking, to a receiver that \
             does not read",
            unix.len
        ),
        &[
            format!(
                "after {} datagram{} ({} bytes), send {} was refused with EAGAIN: {}",
                unix.accepted,
                plural(unix.accepted),
                unix.accepted_bytes,
                unix.accepted + 1,
                unix.refused
            ),
            full,
        ],
    )?;
    step(
        out,
        &format!(
            "send one more from a blocking sender, with a send timeout (SO_SNDTIMEO) of \
             {} ms",
            unix.blocked.timeout_ms
        ),
        &[format!(
            "it waited {:.1} ms for room, then: {}. Without the timeout it would wait \
             until the receiver read.",
            unix.blocked.waited_ms, unix.blocked.error
        )],
    )?;
    let order = match (unix.whole, unix.in_order) {
        (true, true) => format!("every one whole ({} bytes), in order", unix.len),
        (true, false) => "every one whole, but NOT in order".to_owned(),
        (false, _) => "NOT every one whole".to_owned(),
    };
    step(
        out,
        "then the receiver reads",
        &[
            format!(
                "{} received, {} lost: {order}; the last: {}",
                unix.received,
                unix.lost,
                datagram(&unix.last)
            ),
            format!(
                "Every datagram the kernel accepted arrived, and of every one it could \
                 not take the sender was told. Over UDP (part 1), all {} sends \
                 succeeded and {} datagrams vanished.",
                udp.sent, udp.lost
            ),
        ],
    )
}

fn sizes(out: &mut impl Write, sizes: &Sizes) -> io::Result<()> {
    part(
        out,
        3,
        "How large a datagram can be",
        "A UDP datagram holds at most 65,507 bytes over IPv4: the IP header's 16-bit \
         length (65,535) less the 20-byte IP and 8-byte UDP headers, whatever the \
         socket's buffers. A Unix datagram never leaves the kernel and has no header to \
         fit in: on Linux its limit is the sender's send buffer, SO_SNDBUF less 32 bytes, \
         so raising SO_SNDBUF raises it. (Linux doubles the SO_SNDBUF asked for, for its \
         bookkeeping, and caps it at net.core.wmem_max.) Each largest size below was \
         sent and received whole, found by a binary search of sends; one byte more was \
         refused (EMSGSIZE).",
    )?;
    let udp = &sizes.udp;
    let mut results = vec![format!(
        "UDP, SO_SNDBUF {}: {} bytes, however large the buffer; {}: {}",
        udp.sndbuf,
        udp.largest,
        udp.largest + 1,
        udp.refused
    )];
    results.extend(sizes.unix.iter().map(unix_size));
    step(out, "send the largest datagram each socket takes", &results)
}

fn unix_size(size: &UnixSize) -> String {
    let asked = match size.sndbuf_asked {
        Some(asked) => format!("asked for {asked}"),
        None => "the default".to_owned(),
    };
    let rule = if size.sndbuf.checked_sub(32) == Some(size.largest) {
        " (SO_SNDBUF - 32)"
    } else {
        ""
    };
    format!(
        "Unix, SO_SNDBUF {} ({asked}): {} bytes{rule}, found in {} sends; {}: {}",
        size.sndbuf,
        size.largest,
        size.probes,
        size.largest + 1,
        size.refused
    )
}

fn seqpacket(out: &mut impl Write, records: &Records) -> io::Result<()> {
    part(
        out,
        4,
        "SOCK_SEQPACKET: boundaries on a connection",
        "A Unix SOCK_SEQPACKET socket is a connection, reliable and in order like a \
         stream, that keeps each send's boundaries like a datagram socket.",
    )?;
    let list = |records: &[Vec<u8>]| {
        records
            .iter()
            .map(|r| shown(r))
            .collect::<Vec<_>>()
            .join(", then ")
    };
    step(
        out,
        &format!(
            "send {}, on a connected pair, before the first receive",
            list(&records.sent_b64)
        ),
        &[format!(
            "{} receive{}, each asking for 65536 bytes: {}",
            records.received_b64.len(),
            plural(records.received_b64.len()),
            list(&records.received_b64)
        )],
    )
}

/// What each of `count` datagrams cost a buffer of `size` bytes that
/// they filled, roughly.
fn each(size: usize, count: usize) -> String {
    match size.checked_div(count) {
        Some(each) => format!("about {each} bytes each here"),
        None => "nothing fitted here".to_owned(),
    }
}

/// A datagram's length and its first bytes.
fn datagram(bytes: &[u8]) -> String {
    format!(
        "{} byte{} {}",
        bytes.len(),
        plural(bytes.len()),
        shown(bytes)
    )
}

/// Byte strings as a JSON array of base64 strings.
pub(super) fn base64s<S: Serializer>(records: &[Vec<u8>], s: S) -> Result<S::Ok, S::Error> {
    let b64 = base64::engine::general_purpose::STANDARD;
    s.collect_seq(records.iter().map(|r| b64.encode(r)))
}
