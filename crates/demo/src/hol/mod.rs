//! `msg demo hol`: head-of-line blocking. One lost packet delays every
//! later message on a TCP connection sent before its retransmission
//! came, but over QUIC only the stream it carried.
//!
//! The lesson runs in a private network namespace of its own (made for
//! one thread of this process, as root: `unshare(CLONE_NEWNET)`), its
//! loopback brought up, so that the one nftables rule it adds, and TCP's
//! selective acknowledgements turned off, touch nothing else; the
//! namespace goes with the thread. In each part a client sends [`N`] msg
//! messages, one every [`GAP`] (deadlines [`GAP`] apart, so that the gap
//! is the one stated; each part shows the gaps it measured), each in a
//! packet of its own, to a listener in the same process, which notes when
//! each arrives:
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
//! Head-of-line blocking is seen only when later messages are sent while
//! the lost one waits for its retransmission. On loopback, with SACK, the
//! kernel retransmits the moment the next message is acknowledged, some
//! microseconds after it is sent, and no other message would be seen
//! waiting (the audit's run: one held, 0.1 ms). So TCP runs without SACK
//! in the namespace and retransmits after three duplicate
//! acknowledgements, three messages later (RFC 5681), as it would on a
//! path whose round trip is longer than the gap. QUIC declares the packet
//! lost once a later one is acknowledged and 9/8 of a round trip, at
//! least 1 ms, has passed: one message later at this gap.
//!
//! What it shows, counted without any threshold of time: over TCP no
//! later message is delivered before the lost one, and those sent before
//! its retransmission came wait for it in the kernel (the byte stream is
//! in order: *held*); over QUIC the later messages' streams are delivered
//! while the lost one's waits (*overtook*), and none waits for it. Each
//! message's delay (arrival less sending, one clock) is shown too, and
//! what the closing sentences say is what the run's numbers show. Every
//! wait is bounded ([`DEADLINE`]).
//!
//! Linux only, as root (or with CAP_SYS_ADMIN), with `ip` and `nft`
//! installed; elsewhere [`run`](fn@run) says what is missing.

use std::io::{self, Write};
use std::time::Duration;

use serde::Serialize;

use crate::error::Result;
use crate::text;

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
/// Between two sends: long enough that QUIC's retransmission (one
/// message, and at least 1 ms, after the loss, all in one thread that
/// the machine may stall for some milliseconds) comes before the next
/// message goes, short enough that three of them, TCP's wait, stay well
/// under its retransmission timeout (200 ms at least).
pub const GAP: Duration = Duration::from_millis(10);
/// The longest a part may take.
pub const DEADLINE: Duration = Duration::from_secs(10);

/// Both parts.
#[derive(Debug, Clone, Serialize)]
pub struct Lesson {
    /// The message whose packet was dropped.
    pub lost: u64,
    /// Messages sent in each part.
    pub sent: u64,
    /// The gap the client aims at between two sends, in microseconds
    /// (each part has the gaps it measured).
    pub gap_us: u64,
    /// Whether TCP ran with selective acknowledgements (never: see the
    /// module's documentation).
    pub tcp_sack: bool,
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
    /// The median gap between two sends, measured, in microseconds.
    pub gap_us: u64,
    /// The shortest gap between two sends.
    pub gap_min_us: u64,
    /// The longest.
    pub gap_max_us: u64,
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
        let overtook = deliveries.iter().filter(|d| overtook(d, &lost)).count() as u64;
        let held = deliveries.iter().filter(|d| held(d, &lost)).count() as u64;
        let mut others: Vec<u64> = deliveries
            .iter()
            .filter(|d| d.seq != LOST)
            .map(|d| d.delay_us)
            .collect();
        others.sort_unstable();
        let mut gaps: Vec<u64> = deliveries
            .windows(2)
            .map(|w| w[1].sent_us.saturating_sub(w[0].sent_us))
            .collect();
        gaps.sort_unstable();
        Self {
            transport,
            how,
            dropped,
            lost_delay_us: lost.delay_us,
            overtook,
            held,
            others_p50_us: median(&others),
            others_max_us: others.last().copied().unwrap_or(0),
            gap_us: median(&gaps),
            gap_min_us: gaps.first().copied().unwrap_or(0),
            gap_max_us: gaps.last().copied().unwrap_or(0),
            deliveries,
        }
    }
}

/// The middle of `sorted` (the upper one of two), 0 when empty.
fn median(sorted: &[u64]) -> u64 {
    sorted.get(sorted.len() / 2).copied().unwrap_or(0)
}

/// Whether `d`, sent after the lost message, was delivered before it.
fn overtook(d: &Delivery, lost: &Delivery) -> bool {
    d.seq > lost.seq && d.arrived_us < lost.arrived_us
}

/// Whether `d`, sent after the lost message but before it arrived, was
/// delivered only after it: it waited for the retransmission.
fn held(d: &Delivery, lost: &Delivery) -> bool {
    d.seq > lost.seq && d.sent_us < lost.arrived_us && d.arrived_us >= lost.arrived_us
}

/// Runs both parts in a private network namespace.
///
/// # Errors
///
/// [`Error::Unsupported`](crate::Error::Unsupported) where no namespace
/// can be made, [`Error::Missing`](crate::Error::Missing) where `ip` or
/// `nft` is not installed; otherwise the part that failed and why.
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

/// `items` as English: "6", "6 and 7", "6, 7 and 8".
fn listed(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

impl Part {
    /// The messages `held` and `overtook` count, by sequence number.
    fn which(&self, lost: u64, pick: fn(&Delivery, &Delivery) -> bool) -> Vec<&Delivery> {
        let lost = &self.deliveries[lost as usize];
        self.deliveries.iter().filter(|d| pick(d, lost)).collect()
    }

    /// "messages 6, 7 and 8 (11.1, 5.8 and 0.3 ms late)", or "message 6
    /// (0.4 ms late)".
    fn named(messages: &[&Delivery]) -> String {
        let seqs: Vec<String> = messages.iter().map(|d| d.seq.to_string()).collect();
        let delays: Vec<String> = messages
            .iter()
            .map(|d| format!("{:.1}", d.delay_us as f64 / 1000.0))
            .collect();
        format!(
            "message{} {} ({} ms late)",
            text::plural(messages.len()),
            listed(&seqs),
            listed(&delays)
        )
    }
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
            "Head-of-line blocking: {} messages in each part, each in a packet of its own, \
             the client aiming at one every {}; message {} alone {LOST_BODY} bytes. In a \
             private network namespace, nftables drops its first packet and no other:\n  {}",
            self.sent,
            ms(self.gap_us),
            self.lost,
            self.rule
        )?;
        writeln!(
            out,
            "TCP runs there without selective acknowledgements (SACK), so its sender \
             retransmits after three duplicate acknowledgements, three messages later: with \
             them it would retransmit as soon as the next message is acknowledged, which on \
             loopback is microseconds later, and no other message would be seen waiting. \
             QUIC declares a packet lost once a later one is acknowledged and 9/8 of a round \
             trip, at least 1 ms, has passed (or three later ones are acknowledged).\n"
        )?;
        for part in [&self.tcp, &self.quic] {
            writeln!(
                out,
                "{}: {} ({} packet dropped); sent {} apart (median gap; {} to {})",
                part.transport.to_uppercase(),
                part.how,
                part.dropped,
                ms(part.gap_us),
                ms(part.gap_min_us),
                ms(part.gap_max_us)
            )?;
            writeln!(out, "  seq  sent      arrived   delay")?;
            let lost = &part.deliveries[self.lost as usize];
            for d in &part.deliveries {
                let mark = if d.seq == self.lost {
                    "  <- lost once".to_owned()
                } else if held(d, lost) {
                    format!("  <- held behind {}", self.lost)
                } else if overtook(d, lost) {
                    format!("  <- delivered before {}", self.lost)
                } else {
                    String::new()
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
        writeln!(out, "{}", self.conclusion())
    }

    /// What the run showed, in words made from its numbers: the lesson's
    /// claim only where they bear it out.
    fn conclusion(&self) -> String {
        let (tcp, quic) = (&self.tcp, &self.quic);
        let tcp_held = tcp.which(self.lost, held);
        let tcp_overtook = tcp.which(self.lost, overtook);
        let quic_held = quic.which(self.lost, held);
        let quic_overtook = quic.which(self.lost, overtook);
        let mut said = match (tcp_overtook.is_empty(), tcp_held.is_empty()) {
            (true, false) => format!(
                "Over TCP every byte is delivered in order: {} went after the lost one, \
                 before its retransmission came, and reached the listener's kernel, but \
                 waited there until the retransmission filled the gap; none was delivered \
                 before it.",
                Part::named(&tcp_held)
            ),
            (true, true) => "Over TCP every byte is delivered in order, but this time no \
                             later message went before the lost one's retransmission came, \
                             so none waited for it."
                .to_owned(),
            (false, _) => format!(
                "Over TCP, {} {} delivered before the lost one, which an in-order byte \
                 stream does not do, and {} after it.",
                Part::named(&tcp_overtook),
                if tcp_overtook.len() == 1 {
                    "was"
                } else {
                    "were"
                },
                tcp_held.len()
            ),
        };
        said.push(' ');
        said.push_str(&match (quic_overtook.is_empty(), quic_held.is_empty()) {
            (false, true) => format!(
                "Over QUIC each stream has its own order: only the lost message's stream \
                 waited, {}, on {} of {} own, {} delivered before it, and none waited \
                 for it.",
                Part::named(&quic_overtook),
                if quic_overtook.len() == 1 {
                    "a stream"
                } else {
                    "streams"
                },
                if quic_overtook.len() == 1 {
                    "its"
                } else {
                    "their"
                },
                if quic_overtook.len() == 1 {
                    "was"
                } else {
                    "were"
                }
            ),
            (true, true) => "Over QUIC each stream has its own order, but this time no \
                             later message arrived before the lost one's retransmission."
                .to_owned(),
            (_, false) => format!(
                "Over QUIC {} arrived only after the lost one, though sent before it came \
                 ({} before it).",
                Part::named(&quic_held),
                quic_overtook.len()
            ),
        });
        said.push(' ');
        if !tcp_held.is_empty()
            && tcp_overtook.is_empty()
            && quic_held.is_empty()
            && !quic_overtook.is_empty()
        {
            said.push_str(&format!(
                "One lost packet delayed every TCP message sent before its retransmission \
                 came ({} here), but only its own QUIC stream.",
                tcp_held.len()
            ));
        } else {
            said.push_str(
                "So this run did not show the whole lesson (TCP holding later messages \
                 back, QUIC none); run it again.",
            );
        }
        said
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `(sent, arrived)` for [`N`] messages [`GAP`] apart, each 100 µs on
    /// the way, but the lost one arriving at `lost_at` and those in `held`
    /// with it.
    fn times(lost_at: u64, held: &[u64]) -> Vec<(u64, u64)> {
        let gap = GAP.as_micros() as u64;
        (0..N)
            .map(|seq| {
                let sent = seq * gap;
                let arrived = if seq == LOST || held.contains(&seq) {
                    lost_at.max(sent + 100)
                } else {
                    sent + 100
                };
                (sent, arrived)
            })
            .collect()
    }

    fn lesson(tcp: &[(u64, u64)], quic: &[(u64, u64)]) -> String {
        let lesson = Lesson {
            lost: LOST,
            sent: N,
            gap_us: GAP.as_micros() as u64,
            tcp_sack: false,
            rule: "a rule".to_owned(),
            tcp: Part::new("tcp", "one connection", 1, tcp),
            quic: Part::new("quic", "streams", 1, quic),
        };
        let mut out = Vec::new();
        lesson.write(&mut out, false).unwrap();
        String::from_utf8(out).unwrap()
    }

    /// The closing sentences say what the numbers show: the messages held,
    /// by name, and the lesson only where TCP held some and QUIC none.
    #[test]
    fn the_conclusion_follows_the_numbers() {
        let gap = GAP.as_micros() as u64;
        let lost_at = (LOST + 3) * gap + 200;
        let quic = times((LOST + 1) * gap + 300, &[]);
        let shown = lesson(&times(lost_at, &[6, 7, 8]), &quic);
        assert!(
            shown.contains("messages 6, 7 and 8 (20.2, 10.2 and 0.2 ms late)"),
            "{shown}"
        );
        assert!(shown.contains("only its own QUIC stream"), "{shown}");
        assert!(
            shown.contains("sent 10.0 ms apart (median gap; 10.0 ms to 10.0 ms)"),
            "{shown}"
        );

        // Nothing held over TCP (the retransmission came before the next
        // message went): said so, and no lesson claimed.
        let shown = lesson(&times(LOST * gap + 300, &[]), &quic);
        assert!(shown.contains("no later message went before"), "{shown}");
        assert!(!shown.contains("only its own QUIC stream"), "{shown}");
        assert!(shown.contains("did not show the whole lesson"), "{shown}");

        // A QUIC message held: not the lesson either.
        let shown = lesson(&times(lost_at, &[6, 7, 8]), &times(lost_at, &[8]));
        assert!(shown.contains("Over QUIC message 8"), "{shown}");
        assert!(!shown.contains("only its own QUIC stream"), "{shown}");
    }
}
