//! `msg demo hol`: head-of-line blocking. One lost packet delays every
//! later message on a TCP connection, but over QUIC only the stream it
//! carried.
//!
//! The lesson runs in a private network namespace of its own (made for
//! one thread of this process, as root: `unshare(CLONE_NEWNET)`), its
//! loopback brought up, so that the one nftables rule it adds touches
//! nothing else; the namespace goes with the thread. In each part a client
//! sends [`N`] msg messages, at least [`GAP`] apart, each in a packet of
//! its own, to a listener in the same
//! process, which notes when each arrives:
//!
//! 1. TCP: all on one connection, each behind its 4-byte length.
//! 2. QUIC: one unidirectional stream per message, on one connection.
//!
//! Message [`LOST`] alone is larger ([`LOST_BODY`] bytes, its packet
//! between 700 and 1,000 bytes long, where every other packet is smaller
//! or, for QUIC's handshake and MTU probes, larger); the rule is added
//! only once the connection is up, and drops the first such packet the
//! listener receives and no other (`limit rate 1/hour burst 1 packets`):
//! the retransmission passes. So each part loses exactly one packet, the
//! same message's.
//!
//! What it shows, counted without any threshold of time: over TCP no
//! later message is delivered before the lost one (the byte stream is in
//! order, so they wait in the kernel for the retransmission: *held*), and
//! over QUIC the later messages' streams are delivered while the lost
//! one's waits (*overtook*). Each message's delay (arrival less sending,
//! one clock) is shown too. Every wait is bounded ([`DEADLINE`]).
//!
//! Linux only, as root (or with CAP_SYS_ADMIN), with `ip` and `nft`
//! installed; elsewhere [`run`](fn@run) says what is missing.

use std::io::{self, Write};
use std::time::Duration;

use serde::Serialize;

use crate::error::Result;

#[cfg(target_os = "linux")]
mod run;

/// Messages sent in each part.
pub const N: u64 = 20;
/// The message whose packet the rule drops.
pub const LOST: u64 = 5;
/// Its body: larger than the others', so its packet alone matches.
pub const LOST_BODY: usize = 700;
/// Every other message's body.
pub const BODY: usize = 64;
/// Between two sends, at least.
pub const GAP: Duration = Duration::from_millis(1);
/// The longest a part may take.
pub const DEADLINE: Duration = Duration::from_secs(10);

/// Both parts.
#[derive(Debug, Clone, Serialize)]
pub struct Lesson {
    /// The message whose packet was dropped.
    pub lost: u64,
    /// Messages sent in each part.
    pub sent: u64,
    /// Between two sends, in microseconds.
    pub gap_us: u64,
    /// The nftables rule each part added.
    pub rule: String,
    /// Part 1.
    pub tcp: Part,
    /// Part 2.
    pub quic: Part,
}

/// One part: every message's delivery, and what the loss did to the
/// others.
#[derive(Debug, Clone, Serialize)]
pub struct Part {
    /// "tcp" or "quic".
    pub transport: &'static str,
    /// How the messages went.
    pub how: &'static str,
    /// Packets the rule dropped (1 when the lesson went as planned).
    pub dropped: u64,
    /// Each message, by sequence number.
    pub deliveries: Vec<Delivery>,
    /// The lost message's delay, in microseconds.
    pub lost_delay_us: u64,
    /// Messages sent after the lost one that were delivered before it.
    pub overtook: u64,
    /// Messages sent after the lost one, before it arrived, that were
    /// delivered only after it: they waited for its retransmission.
    pub held: u64,
    /// The median delay of the messages other than the lost one, in
    /// microseconds.
    pub others_p50_us: u64,
    /// The largest delay of the messages other than the lost one.
    pub others_max_us: u64,
}

/// One message's trip.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Delivery {
    /// Its sequence number, 0 first.
    pub seq: u64,
    /// When it was sent, in microseconds from the part's first send.
    pub sent_us: u64,
    /// When the listener had it whole.
    pub arrived_us: u64,
    /// The difference.
    pub delay_us: u64,
}

impl Part {
    /// The part's account from each message's `(sent, arrived)` times in
    /// microseconds, by sequence number.
    pub(crate) fn new(
        transport: &'static str,
        how: &'static str,
        dropped: u64,
        times: &[(u64, u64)],
    ) -> Self {
        let deliveries: Vec<Delivery> = times
            .iter()
            .enumerate()
            .map(|(seq, &(sent, arrived))| Delivery {
                seq: seq as u64,
                sent_us: sent,
                arrived_us: arrived,
                delay_us: arrived.saturating_sub(sent),
            })
            .collect();
        let lost = deliveries[LOST as usize];
        let later = || deliveries.iter().filter(|d| d.seq > LOST);
        let overtook = later().filter(|d| d.arrived_us < lost.arrived_us).count() as u64;
        let held = later()
            .filter(|d| d.sent_us < lost.arrived_us && d.arrived_us >= lost.arrived_us)
            .count() as u64;
        let mut others: Vec<u64> = deliveries
            .iter()
            .filter(|d| d.seq != LOST)
            .map(|d| d.delay_us)
            .collect();
        others.sort_unstable();
        Self {
            transport,
            how,
            dropped,
            lost_delay_us: lost.delay_us,
            overtook,
            held,
            others_p50_us: others.get(others.len() / 2).copied().unwrap_or(0),
            others_max_us: others.last().copied().unwrap_or(0),
            deliveries,
        }
    }
}

/// Runs both parts in a private network namespace.
///
/// # Errors
///
/// [`Error::Unsupported`](crate::Error::Unsupported) where no namespace
/// can be made or a program is missing; otherwise the part that failed
/// and why.
#[cfg(target_os = "linux")]
pub fn run() -> Result<Lesson> {
    run::run()
}

/// Not here: the lesson needs Linux's network namespaces and nftables.
///
/// # Errors
///
/// [`Error::Unsupported`](crate::Error::Unsupported), always.
#[cfg(not(target_os = "linux"))]
pub fn run() -> Result<Lesson> {
    Err(crate::Error::Unsupported {
        lesson: "hol",
        needs: "Linux (a private network namespace with an nftables rule)",
    })
}

fn ms(us: u64) -> String {
    format!("{:.1} ms", us as f64 / 1000.0)
}

impl Lesson {
    /// As text, or with `json` as one JSON document.
    ///
    /// # Errors
    ///
    /// The writer's.
    pub fn write(&self, out: &mut impl Write, json: bool) -> io::Result<()> {
        if json {
            serde_json::to_writer_pretty(&mut *out, self)?;
            return writeln!(out);
        }
        writeln!(
            out,
            "Head-of-line blocking: {} messages, one every {}, message {} alone \
             {LOST_BODY} bytes; in a private network namespace, nftables drops its \
             first packet and no other:\n  {}\n",
            self.sent,
            ms(self.gap_us),
            self.lost,
            self.rule
        )?;
        for part in [&self.tcp, &self.quic] {
            writeln!(
                out,
                "{}: {} ({} packet dropped)",
                part.transport.to_uppercase(),
                part.how,
                part.dropped
            )?;
            writeln!(out, "  seq  sent      arrived   delay")?;
            for d in &part.deliveries {
                let mark = if d.seq == self.lost {
                    "  <- lost once"
                } else {
                    ""
                };
                writeln!(
                    out,
                    "  {:>3}  {:>8}  {:>8}  {:>8}{mark}",
                    d.seq,
                    ms(d.sent_us),
                    ms(d.arrived_us),
                    ms(d.delay_us)
                )?;
            }
            writeln!(
                out,
                "  the lost message: {} late; the others: median {}, at most {}; \
                 {} later message(s) delivered before it, {} held back until it came\n",
                ms(part.lost_delay_us),
                ms(part.others_p50_us),
                ms(part.others_max_us),
                part.overtook,
                part.held
            )?;
        }
        writeln!(
            out,
            "Over TCP every byte is delivered in order: the messages sent after the lost \
             one reached the listener's kernel, but waited there until the retransmission \
             filled the gap ({} held, none delivered before it). Over QUIC each stream has \
             its own order: only the lost message's stream waited, and {} later message(s) \
             were delivered meanwhile. One lost packet delays every later TCP message, but \
             only its own QUIC stream.",
            self.tcp.held, self.quic.overtook
        )
    }
}
