//! The lines around the table: the title (what was measured, where,
//! how), and under an impaired table what was applied.

use super::Report;
use crate::plan::{Direction, Engine, Mode};
use msg_net::MAX_BATCH;

impl Report<'_> {
    /// Under the impaired table: what was applied, and how to read the
    /// columns that only impaired runs have.
    pub(super) fn impairment_notes(&self) -> Vec<String> {
        let mut lines = vec![
            "applied, in turn, by the kernel on the namespace's lo (each packet, each direction):"
                .to_owned(),
        ];
        for imp in self.impairments {
            lines.push(format!("  {imp}: {}", imp.applied().join("; ")));
        }
        let transports = self.transports();
        if transports.iter().any(|t| !t.caps().reliable) {
            lines.push(match self.mode {
                Mode::Pingpong => "UDP: lost %: round trips unanswered; per pkt %: the share of \
                 packets the network dropped, measured, beside the configured loss (a round \
                 trip crosses it twice: 1 - sqrt(answered share))"
                    .to_owned(),
                Mode::Throughput => "UDP: per pkt %: the share of datagrams the network dropped, \
                 measured, beside the configured loss; overflow: datagrams dropped by a full \
                 receive queue, the receiver's loss and not the network's"
                    .to_owned(),
            });
        }
        if transports.iter().any(|t| t.caps().tcp_info) {
            lines.push(
                "TCP: loses nothing; retrans: segments the client sent again (TCP_INFO \
                 tcpi_total_retrans; the JSON's retrans_both_ways adds the listener's); rtt: its \
                 smoothed round-trip time in µs; rto: its retransmission timeout in ms"
                    .to_owned(),
            );
        }
        lines
    }

    pub(super) fn title(&self) -> [String; 2] {
        let what = match (self.mode, self.rate) {
            (Mode::Pingpong, None) => format!(
                "ping-pong, one message in flight, {}",
                match self.engines()[..] {
                    [Engine::Blocking] => "blocking engine",
                    [Engine::Tokio] => "tokio engine",
                    _ => "blocking and tokio engines interleaved",
                }
            ),
            (Mode::Pingpong, Some(rate)) => {
                format!("open loop at {rate} msg/s, latency from each intended send time")
            }
            // Both ways at once: how many go each way, which "N parallel
            // bidirectional streams" left to guess (2 for -P 1; audit,
            // round nine).
            // A reverse stream takes no --rate: both go as fast as they go.
            (Mode::Throughput, _) if self.direction == Direction::Bidir => format!(
                "throughput both ways at once, {} streams: {} forward (the client sends) and {} \
                 reverse (the listener sends) as fast as they go, each its own connection; a \
                 size's row is their sum, SIZE #N each flow's",
                self.flows(),
                self.parallel,
                self.parallel,
            ),
            (Mode::Throughput, _) if self.parallel > 1 => {
                format!(
                    "throughput, {} parallel {}streams{}, each its own connection or socket; \
                 a size's row is their sum, SIZE #N each flow's",
                    self.flows(),
                    match self.direction {
                        Direction::Reverse => "reverse (the listener sends) ",
                        Direction::Forward | Direction::Bidir => "one-way ",
                    },
                    self.rate
                        .map_or(" as fast as they go".to_owned(), |r| format!(
                            " at {r} msg/s each"
                        )),
                )
            }
            (Mode::Throughput, _) if self.direction == Direction::Reverse => {
                "throughput, reverse: the listener streams as fast as it goes, the client counts"
                    .to_owned()
            }
            (Mode::Throughput, None) => "throughput, one-way stream as fast as it goes".to_owned(),
            (Mode::Throughput, Some(rate)) => format!("throughput, one-way stream at {rate} msg/s"),
        };
        let lossy = self.transports().iter().any(|t| !t.caps().reliable);
        let figures = match self.mode {
            Mode::Pingpong => "round-trip times in µs",
            Mode::Throughput if lossy && self.builtin => {
                "rates at the receiver; drops: datagrams the listener's socket dropped, its \
                 receive queue full (part of lost)"
            }
            Mode::Throughput if lossy => {
                "rates at the receiver; drops: the remote listener's socket is not read here (n/a)"
            }
            Mode::Throughput => "rates at the receiver",
        };
        [
            format!(
                "msg bench: {what}; {}; {}{}{}",
                self.where_,
                self.placement,
                if self.busy_poll { ", busy-poll" } else { "" },
                match self.variants()[..] {
                    [true] => ", authenticated (every message tagged)",
                    [false, true] => ", with and without authentication",
                    _ => "",
                }
            ),
            format!(
                "median of {} run(s) of {} after {} warm-up each, {}; {figures}{}{}",
                self.runs,
                humantime::format_duration(self.duration),
                humantime::format_duration(self.warmup),
                self.interleaved(),
                self.batch_note(),
                self.unix_note(),
            ),
        ]
    }

    /// What alternates within each run: `UDP and TCP interleaved`, `UDP,
    /// TCP and UNIX interleaved`; one transport alone, `TCP alone`.
    fn interleaved(&self) -> String {
        super::interleaved(&self.transports())
    }

    /// With a transport addressed by a path, in throughput mode: why it
    /// loses nothing.
    fn unix_note(&self) -> &'static str {
        let unix = self.transports().iter().any(|t| !t.is_inet());
        if unix && self.mode == Mode::Throughput {
            "\na Unix socket loses nothing: it never leaves the kernel, which makes the sender \
             wait while the receiver's queue is full, so its rate is the receiver's"
        } else {
            ""
        }
    }

    /// With `--batch`, what was batched, for the title.
    fn batch_note(&self) -> String {
        let Some(size) = self.batch else {
            return String::new();
        };
        let receive = if self.builtin {
            format!(
                "the built-in listener receives up to {} per call (recvmmsg)",
                MAX_BATCH
            )
        } else {
            "the remote listener's calls are not known here (n/a)".to_owned()
        };
        format!(
            "\nUDP sent {size} datagrams per call (sendmmsg, with GSO where offered); {receive}; \
             dgram/send and dgram/recv: datagrams moved per system call; \
             offload: GSO if they went to the kernel as segmented runs, GRO if they arrived coalesced; \
             drops: - with GSO, whose runs the kernel drops and counts whole (lost counts every \
             datagram)"
        )
    }
}
