//! One measured run: a fresh connection, a warm-up, then the measurement.
//!
//! - Closed loop (`pingpong`): one `Ping` in flight; the round trip runs from
//!   its send timestamp to the `Pong`, which carries the timestamp back.
//! - Open loop (`pingpong --rate N`): pings leave on a fixed schedule
//!   whatever the replies do, each stamped with its *intended* send time,
//!   so a stall shows up in every message it delays instead of hiding in the
//!   one that was late (coordinated omission, as wrk2 and HdrHistogram
//!   describe it).
//! - `throughput`: a one-way stream of `Discard` messages; a statistics ping
//!   (`FLAG_STATS`) before and after asks the listener how many arrived and
//!   how many came out of order.
//!
//! Over UDP a reply that does not come within `--timeout` counts as lost
//! and the run goes on; over TCP nothing is lost, so a missing reply is an
//! error.

use std::cell::Cell;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::Bytes;
use hdrhistogram::Histogram;
use msg_net::auth::printable;
use msg_net::ping::{self, PongMatch};
use msg_net::{ConnectOptions, Link, Stats, TcpInfo, Transport};
use msg_proto::{Kind, Message};
use tokio::time::timeout_at;

use super::Mode;
use super::pace::{Pacer, scheduled};

/// How many times a statistics ping is sent before the run fails: over UDP
/// it can be lost behind the stream it asks about.
pub(crate) const STATS_ATTEMPTS: u32 = 5;

/// How long a statistics answer may take over TCP, behind the stream it
/// counts.
const TCP_STATS_WAIT: Duration = Duration::from_secs(10);

/// How long to wait for the answer to one statistics ping. Over TCP the
/// answer queues behind every discard still in flight, a backlog a busy
/// machine can take a while to work through; TCP loses nothing, so waiting
/// longer only waits.
pub(crate) fn stats_wait(transport: Transport, timeout: Duration) -> Duration {
    match transport {
        Transport::Udp => timeout,
        Transport::Tcp => timeout.max(TCP_STATS_WAIT),
    }
}

/// Over UDP, how long the listener gets to drain its queue after a
/// throughput stream before it is asked what arrived.
pub(crate) const UDP_DRAIN: Duration = Duration::from_millis(5);

/// The largest latency recorded: anything slower is recorded as this.
pub(crate) const MAX_LATENCY_NS: u64 = 60_000_000_000;

/// Where to measure.
#[derive(Debug)]
pub(crate) struct Target {
    pub(crate) transport: Transport,
    pub(crate) addr: std::net::SocketAddr,
    pub(crate) nodelay: bool,
    /// Authenticate with this secret.
    pub(crate) auth: Option<msg_net::Auth>,
}

impl Target {
    /// `udp`, `tcp`, or with the secret `udp+auth`, `tcp+auth`: for logs
    /// and the table.
    pub(crate) fn label(&self) -> String {
        let suffix = if self.auth.is_some() { "+auth" } else { "" };
        format!("{}{suffix}", self.transport)
    }

    pub(crate) fn connect_options(&self) -> ConnectOptions {
        let mut options = ConnectOptions {
            auth: self.auth.clone(),
            ..ConnectOptions::default()
        };
        options.tcp.nodelay = self.nodelay;
        options
    }
}

/// How to measure.
#[derive(Debug)]
pub(crate) struct Settings {
    pub(crate) mode: Mode,
    pub(crate) warmup: Duration,
    pub(crate) duration: Duration,
    /// How long a UDP reply may take before it counts as lost.
    pub(crate) timeout: Duration,
    /// How long a TCP reply may take before the run fails.
    pub(crate) tcp_timeout: Duration,
    pub(crate) rate: Option<u64>,
    /// Under `--impair`: read what the kernel saw ([`Kernel`]).
    pub(crate) impaired: bool,
    /// `--batch`: UDP throughput sent many datagrams per call.
    pub(crate) batch: Option<super::batch::Batching>,
}

/// What one run measured.
#[derive(Debug)]
pub(crate) struct Outcome {
    /// Round-trip times in nanoseconds (open loop: from the intended send
    /// time); empty in throughput mode.
    pub(crate) latency: Histogram<u64>,
    /// Messages sent while measuring.
    pub(crate) sent: u64,
    /// Of those, the ones answered (ping-pong) or that arrived (throughput).
    pub(crate) received: u64,
    /// Throughput over UDP: arrivals after a higher sequence number.
    pub(crate) reordered: u64,
    /// How long the measurement took.
    pub(crate) elapsed: Duration,
    /// Under `--impair`: what the kernel counted during the measurement.
    pub(crate) kernel: Option<Kernel>,
    /// With `--batch`: datagrams per system call.
    pub(crate) calls: Option<super::batch::Calls>,
}

/// What the kernel counted while a run measured (under `--impair`, where
/// the network namespace holds nothing but the benchmark, so that its
/// counters are the run's own).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Kernel {
    /// Over TCP, the client's socket (`TCP_INFO`): segments it
    /// retransmitted, and its smoothed RTT and retransmission timeout at
    /// the end.
    pub(crate) tcp: Option<TcpFigures>,
    /// The namespace's UDP datagrams dropped because a receive queue was
    /// full (`/proc/net/snmp` Udp `RcvbufErrors`): losses of a receiver too
    /// slow, not of the network.
    pub(crate) udp_overflow: u64,
    /// The namespace's TCP segments retransmitted by either side
    /// (`/proc/net/snmp` Tcp `RetransSegs`).
    pub(crate) tcp_retrans_segs: u64,
}

/// From `TCP_INFO`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TcpFigures {
    /// `tcpi_total_retrans` during the measurement.
    pub(crate) retrans: u32,
    /// `tcpi_rtt` at the end.
    pub(crate) rtt: Duration,
    /// `tcpi_rto` at the end.
    pub(crate) rto: Duration,
}

/// The kernel's counters at one moment.
#[derive(Debug, Clone, Copy)]
struct Snapshot {
    tcp: Option<TcpInfo>,
    udp_rcvbuf_errors: u64,
    tcp_retrans_segs: u64,
}

impl Snapshot {
    fn take(tcp: Result<Option<TcpInfo>, msg_net::Error>) -> anyhow::Result<Self> {
        let snmp = std::fs::read_to_string("/proc/self/net/snmp").unwrap_or_default();
        Ok(Self {
            tcp: tcp.context("cannot read TCP_INFO")?,
            udp_rcvbuf_errors: snmp_field(&snmp, "Udp", "RcvbufErrors").unwrap_or(0),
            tcp_retrans_segs: snmp_field(&snmp, "Tcp", "RetransSegs").unwrap_or(0),
        })
    }

    /// What happened between `self` and `after`.
    fn until(&self, after: &Self) -> Kernel {
        Kernel {
            tcp: after.tcp.map(|end| TcpFigures {
                retrans: end
                    .total_retrans
                    .saturating_sub(self.tcp.map_or(0, |t| t.total_retrans)),
                rtt: end.rtt,
                rto: end.rto,
            }),
            udp_overflow: after
                .udp_rcvbuf_errors
                .saturating_sub(self.udp_rcvbuf_errors),
            tcp_retrans_segs: after.tcp_retrans_segs.saturating_sub(self.tcp_retrans_segs),
        }
    }
}

/// One counter of `/proc/net/snmp`, whose sections come as two lines: the
/// names, then the values (`Udp: InDatagrams NoPorts ...` / `Udp: 12 0 ...`).
fn snmp_field(text: &str, section: &str, name: &str) -> Option<u64> {
    let prefix = format!("{section}:");
    let mut lines = text.lines().filter(|l| l.starts_with(&prefix));
    let names = lines.next()?;
    let values = lines.next()?;
    let index = names.split_whitespace().position(|n| n == name)?;
    values.split_whitespace().nth(index)?.parse().ok()
}

impl Outcome {
    pub(super) fn new() -> Self {
        Self {
            latency: Histogram::new_with_bounds(1, MAX_LATENCY_NS, 3)
                .expect("valid histogram bounds"),
            sent: 0,
            received: 0,
            reordered: 0,
            elapsed: Duration::ZERO,
            kernel: None,
            calls: None,
        }
    }

    /// A one-way stream's outcome: `sent` messages, of which the listener
    /// counted what its statistics say between `before` and `after`, over
    /// `elapsed`.
    pub(crate) fn streamed(sent: u64, before: &Stats, after: &Stats, elapsed: Duration) -> Self {
        let mut outcome = Self::new();
        outcome.sent = sent;
        outcome.received = after.received.saturating_sub(before.received);
        outcome.reordered = after.reordered.saturating_sub(before.reordered);
        outcome.elapsed = elapsed;
        outcome
    }

    pub(crate) fn lost(&self) -> u64 {
        self.sent.saturating_sub(self.received)
    }

    /// Messages per second at the receiver.
    pub(crate) fn msgs_per_s(&self) -> f64 {
        if self.elapsed.is_zero() {
            return 0.0;
        }
        self.received as f64 / self.elapsed.as_secs_f64()
    }

    pub(super) fn record(&mut self, latency_ns: u64) {
        self.received += 1;
        self.latency.saturating_record(latency_ns.max(1));
    }
}

/// Measures one run of `size`-byte messages against `target`.
///
/// # Errors
///
/// When the target cannot be reached, closes the connection, answers what
/// was not asked, or (over TCP) does not answer within the timeout.
pub(crate) async fn measure(
    target: &Target,
    size: usize,
    settings: &Settings,
) -> anyhow::Result<Outcome> {
    let link = Link::connect(target.transport, target.addr, &target.connect_options()).await?;
    let timeout = match target.transport {
        Transport::Udp => settings.timeout,
        Transport::Tcp => settings.tcp_timeout,
    };
    let mut peer = Peer::new(link, target.transport, timeout);
    let body = Bytes::from(vec![b'm'; size]);
    match (settings.mode, settings.rate) {
        (Mode::Pingpong, None) => closed_loop(&mut peer, body, settings).await,
        (Mode::Pingpong, Some(rate)) => open_loop(peer, body, settings, rate).await,
        (Mode::Throughput, _) if target.transport == Transport::Udp && settings.batch.is_some() => {
            throughput_batched(&mut peer, target.addr, body, settings).await
        }
        (Mode::Throughput, rate) => throughput(&mut peer, body, settings, rate).await,
    }
}

/// Nanoseconds since the start of a run: the timestamps on the wire.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Clock {
    base: Instant,
}

impl Clock {
    pub(crate) fn new() -> Self {
        Self {
            base: Instant::now(),
        }
    }

    pub(super) fn ns(self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.base).as_nanos()).unwrap_or(u64::MAX)
    }
}

/// The listener closed a TCP connection in the middle of a run.
pub(super) const LISTENER_CLOSED: &str = "the listener closed the connection";

/// The connection and how long to wait for an answer.
#[derive(Debug)]
pub(crate) struct Peer {
    link: Link,
    transport: Transport,
    timeout: Duration,
}

impl Peer {
    pub(crate) fn new(link: Link, transport: Transport, timeout: Duration) -> Self {
        Self {
            link,
            transport,
            timeout,
        }
    }

    /// Waits for the pong to ping `seq` until `deadline`; `None` when it
    /// did not come (lost, over UDP).
    async fn pong(
        &mut self,
        seq: u64,
        deadline: Instant,
    ) -> anyhow::Result<Option<(Message, Instant)>> {
        loop {
            let reply = match timeout_at(deadline.into(), self.link.recv()).await {
                Ok(reply) => reply?.context(LISTENER_CLOSED)?,
                Err(_) if self.transport == Transport::Udp => return Ok(None),
                Err(_) => bail!(
                    "no answer to ping {seq} within {}",
                    humantime::format_duration(self.timeout)
                ),
            };
            let arrived = Instant::now();
            if reply.kind == Kind::Error {
                // A listener that refuses us (one that needs a secret) says
                // why before it closes.
                return Err(msg_net::Error::Peer(printable(&reply.body)).into());
            }
            match ping::check_pong(&reply, seq)? {
                PongMatch::Current => return Ok(Some((reply, arrived))),
                PongMatch::Late => {}
            }
        }
    }

    /// One round trip, the ping leaving now (`sent`, read by the caller);
    /// its time in nanoseconds, or `None` if lost.
    pub(crate) async fn exchange(
        &mut self,
        ping: &mut Message,
        clock: Clock,
        sent: Instant,
    ) -> anyhow::Result<Option<u64>> {
        ping.seq += 1;
        ping.timestamp_ns = clock.ns(sent);
        self.link.send(ping).await?;
        Ok(self
            .pong(ping.seq, sent + self.timeout)
            .await?
            .map(|(reply, arrived)| clock.ns(arrived).saturating_sub(reply.timestamp_ns)))
    }

    /// The kernel's counters now, under `--impair`.
    fn snapshot(&self, settings: &Settings) -> anyhow::Result<Option<Snapshot>> {
        if !settings.impaired {
            return Ok(None);
        }
        Snapshot::take(self.link.tcp_info()).map(Some)
    }

    /// Asks the listener how many `Discard`s it has counted from us.
    async fn stats(&mut self, seq: &mut u64) -> anyhow::Result<Stats> {
        for _ in 0..STATS_ATTEMPTS {
            *seq += 1;
            self.link.send(&ping::stats_request(*seq)).await?;
            let deadline = Instant::now() + stats_wait(self.transport, self.timeout);
            if let Some((reply, _)) = self.pong(*seq, deadline).await? {
                return Ok(ping::parse_stats(&reply)?);
            }
        }
        bail!(
            "no answer to {STATS_ATTEMPTS} statistics requests, {} apart",
            humantime::format_duration(self.timeout)
        )
    }
}

async fn closed_loop(peer: &mut Peer, body: Bytes, settings: &Settings) -> anyhow::Result<Outcome> {
    let clock = Clock::new();
    let mut ping = Message::new(Kind::Ping, 0, body);
    let warm_until = Instant::now() + settings.warmup;
    loop {
        // One clock read per round trip serves as both the send time and
        // the loop's check.
        let now = Instant::now();
        if now >= warm_until {
            break;
        }
        peer.exchange(&mut ping, clock, now).await?;
    }
    let before = peer.snapshot(settings)?;
    let mut outcome = Outcome::new();
    let start = Instant::now();
    let end = start + settings.duration;
    loop {
        let now = Instant::now();
        if now >= end {
            outcome.elapsed = now - start;
            outcome.kernel = before
                .map(|b| Ok::<_, anyhow::Error>(b.until(&Snapshot::take(peer.link.tcp_info())?)))
                .transpose()?;
            return Ok(outcome);
        }
        outcome.sent += 1;
        if let Some(rtt) = peer.exchange(&mut ping, clock, now).await? {
            outcome.record(rtt);
        }
    }
}

async fn open_loop(
    peer: Peer,
    body: Bytes,
    settings: &Settings,
    rate: u64,
) -> anyhow::Result<Outcome> {
    let Peer {
        link,
        transport,
        timeout,
    } = peer;
    let (mut tx, mut rx) = link.split()?;
    let clock = Clock::new();
    let start = Instant::now();
    let measure_from = clock.ns(start + settings.warmup);
    let stop = start + settings.warmup + settings.duration;
    // Shared by the two futures below, which run in turn in this one task.
    let sent_total = Cell::new(0u64);
    let sent_measured = Cell::new(0u64);
    let received_total = Cell::new(0u64);
    let done = Cell::new(false);
    // The pacer may spin only while no reply is due.
    let idle = || received_total.get() == sent_total.get();
    let mut before = None;

    let send = async {
        let mut pacer = Pacer::new()?;
        let mut ping = Message::new(Kind::Ping, 0, body);
        for i in 0.. {
            let intended = scheduled(start, i, rate);
            if intended >= stop {
                break;
            }
            pacer.wait_until(intended, idle).await?;
            ping.seq = i;
            ping.timestamp_ns = clock.ns(intended);
            if settings.impaired && before.is_none() && ping.timestamp_ns >= measure_from {
                before = Some(Snapshot::take(tx.tcp_info())?);
            }
            tx.send(&ping).await?;
            sent_total.set(i + 1);
            if ping.timestamp_ns >= measure_from {
                sent_measured.set(sent_measured.get() + 1);
            }
        }
        done.set(true);
        anyhow::Ok(())
    };
    let receive = async {
        let mut outcome = Outcome::new();
        loop {
            if done.get() && idle() {
                break;
            }
            let reply = match tokio::time::timeout(timeout, rx.recv()).await {
                Ok(reply) => reply?.context(LISTENER_CLOSED)?,
                // Whatever has not come back by now is lost (over TCP, late).
                Err(_) if done.get() => break,
                Err(_) => continue,
            };
            let arrived = clock.ns(Instant::now());
            if reply.kind != Kind::Pong || reply.seq >= sent_total.get() {
                bail!(
                    "expected a pong to one of pings 0..{}, got {:?} {}: is the peer `msg listen`?",
                    sent_total.get(),
                    reply.kind,
                    reply.seq
                );
            }
            received_total.set(received_total.get() + 1);
            if reply.timestamp_ns >= measure_from {
                outcome.record(arrived.saturating_sub(reply.timestamp_ns));
            }
        }
        anyhow::Ok(outcome)
    };
    let ((), mut outcome) = tokio::try_join!(send, receive)?;
    if let Some(before) = before {
        outcome.kernel = Some(before.until(&Snapshot::take(tx.tcp_info())?));
    }
    outcome.sent = sent_measured.get();
    outcome.elapsed = settings.duration;
    if transport == Transport::Tcp && outcome.lost() > 0 {
        bail!(
            "{} of {} pings were not answered within {} of the last send",
            outcome.lost(),
            outcome.sent,
            humantime::format_duration(timeout)
        );
    }
    Ok(outcome)
}

async fn throughput(
    peer: &mut Peer,
    body: Bytes,
    settings: &Settings,
    rate: Option<u64>,
) -> anyhow::Result<Outcome> {
    let mut pacer = match rate {
        Some(rate) => Some((Pacer::new()?, rate)),
        None => None,
    };
    let mut discard = Message::new(Kind::Discard, 0, body);
    let mut stats_seq = 0;
    stream(peer, &mut discard, settings.warmup, pacer.as_mut()).await?;
    let before = peer.stats(&mut stats_seq).await?;
    let kernel_before = peer.snapshot(settings)?;

    let start = Instant::now();
    let sent = stream(peer, &mut discard, settings.duration, pacer.as_mut()).await?;
    let elapsed = match peer.transport {
        // What UDP's receiver has not taken by the end of the stream is
        // lost (its queue is full or it is about to be), so the rate at the
        // receiver is what arrived over the time of sending.
        Transport::Udp => {
            let elapsed = start.elapsed();
            tokio::time::sleep(UDP_DRAIN).await;
            elapsed
        }
        // TCP loses nothing: the receiver may lag behind by the socket
        // buffers, so its rate counts until it has answered the stats ping
        // queued behind the stream.
        Transport::Tcp => Duration::ZERO,
    };
    let after = peer.stats(&mut stats_seq).await?;
    let elapsed = if elapsed.is_zero() {
        start.elapsed()
    } else {
        elapsed
    };
    let mut outcome = Outcome::streamed(sent, &before, &after, elapsed);
    if let Some(kernel_before) = kernel_before {
        outcome.kernel = Some(kernel_before.until(&Snapshot::take(peer.link.tcp_info())?));
    }
    Ok(outcome)
}

/// [`throughput`] over UDP with `--batch`: the stream sent many datagrams
/// per call, and the calls counted on both sides where they can be.
async fn throughput_batched(
    peer: &mut Peer,
    addr: std::net::SocketAddr,
    body: Bytes,
    settings: &Settings,
) -> anyhow::Result<Outcome> {
    use super::batch::{self, Calls};
    let batching = settings.batch.as_ref().expect("called with --batch");
    let mut send_batch = msg_net::SendBatch::new().with_gso(batching.gso);
    let mut discard = Message::new(Kind::Discard, 0, body);
    let mut stats_seq = 0;
    let size = batching.size;
    let mut pacer = match settings.rate {
        Some(rate) => Some((Pacer::new()?, rate)),
        None => None,
    };
    batch::stream(
        &mut peer.link,
        &mut discard,
        settings.warmup,
        size,
        &mut send_batch,
        pacer.as_mut(),
    )
    .await?;
    let before = peer.stats(&mut stats_seq).await?;
    let sends_before = send_batch.counts();
    let recvs_before = batching.recv_counts(addr);

    let start = Instant::now();
    let sent = batch::stream(
        &mut peer.link,
        &mut discard,
        settings.duration,
        size,
        &mut send_batch,
        pacer.as_mut(),
    )
    .await?;
    // As without batching: what the receiver has not taken by the end of
    // the stream is lost.
    let elapsed = start.elapsed();
    tokio::time::sleep(UDP_DRAIN).await;
    let after = peer.stats(&mut stats_seq).await?;
    let mut outcome = Outcome::streamed(sent, &before, &after, elapsed);
    outcome.calls = Some(Calls {
        send: send_batch.counts().since(&sends_before),
        recv: batching
            .recv_counts(addr)
            .zip(recvs_before)
            .map(|(now, before)| now.since(&before)),
    });
    Ok(outcome)
}

/// Sends `Discard`s for `duration`, as fast as the transport takes them or
/// at the pacer's rate; returns how many were sent.
async fn stream(
    peer: &mut Peer,
    discard: &mut Message,
    duration: Duration,
    mut pacer: Option<&mut (Pacer, u64)>,
) -> anyhow::Result<u64> {
    let start = Instant::now();
    let end = start + duration;
    let mut sent = 0;
    loop {
        let next = match &mut pacer {
            Some((pacer, rate)) => {
                let intended = scheduled(start, sent, *rate);
                if intended >= end {
                    break;
                }
                // Nothing comes back on a one-way stream: spinning blocks no
                // reply.
                pacer.wait_until(intended, || true).await?;
                intended
            }
            None => Instant::now(),
        };
        if next >= end {
            break;
        }
        discard.seq += 1;
        peer.link.send(discard).await?;
        sent += 1;
    }
    Ok(sent)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snmp_counters_are_found_by_name() {
        let text = "Ip: Forwarding DefaultTTL\nIp: 1 64\n\
                    Tcp: RtoAlgorithm RtoMin MaxConn RetransSegs\nTcp: 1 200 -1 17\n\
                    Udp: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors\n\
                    Udp: 900 0 41 950 41\n\
                    UdpLite: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors\n\
                    UdpLite: 0 0 0 0 0\n";
        assert_eq!(snmp_field(text, "Udp", "RcvbufErrors"), Some(41));
        assert_eq!(snmp_field(text, "Tcp", "RetransSegs"), Some(17));
        assert_eq!(snmp_field(text, "Tcp", "MaxConn"), None);
        assert_eq!(snmp_field(text, "Icmp", "InMsgs"), None);
    }
}
