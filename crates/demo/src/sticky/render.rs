//! Rendering what happened: wrapped text with a short lesson per part, or
//! one JSON document of every read.

use super::*;
use crate::text::wrap;

// ---- rendering ------------------------------------------------------------

/// `nagle_on` names what turns Nagle's algorithm on (the caller's own
/// setting, say).
pub(super) fn write_text(
    out: &mut impl Write,
    nodelay: bool,
    nagle_on: &str,
    parts: &[Part],
) -> io::Result<()> {
    writeln!(
        out,
        "msg demo sticky: what each read returns, over TCP and UDP, on 127.0.0.1"
    )?;
    writeln!(out)?;
    wrap(out, "", ARRANGEMENT)?;
    writeln!(out)?;
    let nagle = if nodelay {
        format!("{NAGLE_OFF}{nagle_on} turns Nagle on.")
    } else {
        format!("{}{nagle_on}{}", NAGLE_ON[0], NAGLE_ON[1])
    };
    wrap(out, "", &nagle)?;
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

pub(super) fn write_got(out: &mut impl Write, step: &Step) -> io::Result<()> {
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

#[cfg(unix)]
pub(super) const ARRANGEMENT: &str = "How the timing is arranged, so that what you see is cause and \
    effect, not luck: after the small writes, the reader asks the kernel how many bytes \
    wait unread in its socket (FIONREAD, an ioctl: a question to the kernel about a file \
    or socket) every millisecond, for at most 5 s, and reads only once all of the \
    writer's bytes are there. For the large write, writer and reader run at the same \
    time on two threads, and the reader's buffer (64 KiB) is smaller than the write \
    (1 MiB). Over UDP, both datagrams are sent before the first receive.";

#[cfg(not(unix))]
pub(super) const ARRANGEMENT: &str = "How the timing is arranged: on this platform the reader does \
    not ask the kernel how many bytes wait unread in its socket (FIONREAD); it pauses \
    100 ms after the small writes instead, which makes the glue likely but not certain. \
    For the large write, writer and reader run at the same time on two threads, and the \
    reader's buffer (64 KiB) is smaller than the write (1 MiB). Over UDP, both datagrams \
    are sent before the first receive.";

pub(super) const NAGLE_OFF: &str = "Nagle's algorithm is off (TCP_NODELAY, the default): each write \
    leaves at once, in a segment (a TCP packet) of its own. The two small writes still \
    come back as one read, because the reader waits until both are in its buffer. ";

/// Around what turns Nagle on.
pub(super) const NAGLE_ON: [&str; 2] = [
    "Nagle's algorithm is on (",
    "): while data it sent is \
    still unacknowledged (the receiver has not yet confirmed it with an ACK), TCP holds \
    a small write back and later sends it together with the next ones. So \"egg\" may \
    wait for the ACK of \"hello\", and quick small writes are glued even more often, \
    before they reach the network. The reader's wait makes them one read either way; \
    only the wait may be longer.",
];

// ---- JSON -----------------------------------------------------------------

#[derive(Serialize)]
pub(super) struct Report<'a> {
    nodelay: bool,
    /// How the reader waited for the small writes: "FIONREAD" or "pause".
    arrangement: &'static str,
    reads: Vec<ReadRecord>,
    refused: Vec<RefusedRecord<'a>>,
}

#[derive(Serialize)]
pub(super) struct ReadRecord {
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
pub(super) struct RefusedRecord<'a> {
    part: u8,
    transport: &'static str,
    step: &'static str,
    len: usize,
    error: &'a str,
}

pub(super) fn write_json(out: &mut impl Write, nodelay: bool, parts: &[Part]) -> io::Result<()> {
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
