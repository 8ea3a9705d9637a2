//! `--io`: which engine measures, and the blocking engine's two ends.
//!
//! - The client: one closed-loop ping-pong on the calling thread over a
//!   `msg_net::blocking::Link` (std sockets, a blocking `recv`, or with
//!   `--busy-poll` a `recv` with `MSG_DONTWAIT` in a loop), timed and
//!   checked as the tokio client's closed loop is; or a throughput stream,
//!   one blocking `send` per message as sockperf's throughput mode makes,
//!   counted by the listener as the tokio client's stream is.
//! - The built-in listeners: `msg_net::blocking::serve`, a thread for UDP
//!   and one to accept TCP (plus one per connection), pinned where the
//!   tokio listeners would be.
//!
//! The open loop (`--rate`) and `--batch` stay on tokio: with `--io
//! blocking` they are refused, and without `--io` they pick tokio.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::{self, JoinHandle};
use std::time::Instant;

use anyhow::{Context, bail};
use bytes::Bytes;
use clap::ValueEnum;
use core_affinity::CoreId;
use msg_net::auth::printable;
use msg_net::blocking::{self, LinkOptions, Received};
use msg_net::limits::TcpOptions;
use msg_net::ping::{self, PongMatch};
use msg_net::{Events, ServeConfig, Transport};
use msg_proto::{Kind, Message};
use tracing::warn;

use super::Mode;
use super::client::{
    Clock, LISTENER_CLOSED, Outcome, STATS_ATTEMPTS, Settings, Target, UDP_DRAIN, stats_wait,
};
use super::pin::pin_current;

/// `--io`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Io {
    /// std sockets and blocking system calls on dedicated threads
    Blocking,
    /// The tokio runtime (msg listen's serve loop and msg send's link)
    Tokio,
    /// Each cell under both, interleaved, with what tokio costs per round trip
    Both,
}

/// One engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Engine {
    Blocking,
    Tokio,
}

impl Engine {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Blocking => "blocking",
            Self::Tokio => "tokio",
        }
    }
}

impl Io {
    /// The engines to measure with: `io` as asked, or by default blocking
    /// for what it can measure (a closed-loop ping-pong or an unpaced,
    /// unbatched stream, without a secret) and tokio for the rest.
    ///
    /// # Errors
    ///
    /// The reason, when the blocking engine is asked for what it does not
    /// do.
    pub(crate) fn engines(
        io: Option<Self>,
        closed_loop: bool,
        secret: bool,
        impaired: bool,
    ) -> Result<Vec<Engine>, String> {
        let blocking_can = closed_loop && !secret && !impaired;
        match io {
            None if blocking_can => Ok(vec![Engine::Blocking]),
            None | Some(Self::Tokio) => Ok(vec![Engine::Tokio]),
            Some(io) if !blocking_can => {
                let what = if secret {
                    "authentication"
                } else if impaired {
                    "no --impair runs (their TCP retransmissions come from the tokio link)"
                } else {
                    "only the closed loop, as fast as the socket takes it, not --rate or --batch"
                };
                Err(format!(
                    "--io {}: the blocking engine does {what}; use --io tokio (the default there)",
                    io.to_possible_value().expect("not skipped").get_name()
                ))
            }
            Some(Self::Blocking) => Ok(vec![Engine::Blocking]),
            Some(Self::Both) => Ok(vec![Engine::Blocking, Engine::Tokio]),
        }
    }
}

/// Measures one run of `size`-byte messages against `target` on this
/// thread: a closed-loop ping-pong, or a throughput stream.
///
/// # Errors
///
/// As the tokio client's: the target cannot be reached, closes the
/// connection, answers what was not asked, or (over TCP) does not answer
/// within the timeout.
pub(crate) fn measure(
    target: &Target,
    size: usize,
    settings: &Settings,
    busy_poll: bool,
) -> anyhow::Result<Outcome> {
    let options = LinkOptions {
        tcp: TcpOptions {
            nodelay: target.nodelay,
            ..TcpOptions::default()
        },
        timeout: settings.timeout,
        busy_poll,
    };
    let link = blocking::Link::connect(target.transport, target.addr, &options)?;
    let mut peer = Peer {
        link,
        transport: target.transport,
        settings,
    };
    let body = Bytes::from(vec![b'm'; size]);
    if settings.mode == Mode::Throughput {
        return throughput(&mut peer, body);
    }
    let clock = Clock::new();
    let mut ping = Message::new(Kind::Ping, 0, body);
    let warm_until = Instant::now() + settings.warmup;
    loop {
        let now = Instant::now();
        if now >= warm_until {
            break;
        }
        peer.exchange(&mut ping, clock, now)?;
    }
    let mut outcome = Outcome::new();
    let start = Instant::now();
    let end = start + settings.duration;
    loop {
        let now = Instant::now();
        if now >= end {
            outcome.elapsed = now - start;
            return Ok(outcome);
        }
        outcome.sent += 1;
        if let Some(rtt) = peer.exchange(&mut ping, clock, now)? {
            outcome.record(rtt);
        }
    }
}

/// One throughput run: `Discard`s for the duration, each one `send` that
/// blocks while the send buffer is full (as sockperf's throughput client
/// does), between two statistics pings that ask the listener what it
/// counted. Loss is what was sent and not counted, as on tokio.
fn throughput(peer: &mut Peer, body: Bytes) -> anyhow::Result<Outcome> {
    let settings = peer.settings;
    let mut discard = Message::new(Kind::Discard, 0, body);
    let mut stats_seq = 0;
    peer.stream(&mut discard, settings.warmup)?;
    let before = peer.stats(&mut stats_seq)?;
    let start = Instant::now();
    let sent = peer.stream(&mut discard, settings.duration)?;
    // As on tokio: over UDP the rate at the receiver is what arrived over
    // the time of sending (what it has not taken by then is lost); over
    // TCP, which loses nothing, it counts until the listener has answered
    // the statistics ping queued behind the stream.
    let udp_elapsed = (peer.transport == Transport::Udp).then(|| {
        let elapsed = start.elapsed();
        thread::sleep(UDP_DRAIN);
        elapsed
    });
    let after = peer.stats(&mut stats_seq)?;
    let elapsed = udp_elapsed.unwrap_or_else(|| start.elapsed());
    Ok(Outcome::streamed(sent, &before, &after, elapsed))
}

struct Peer<'a> {
    link: blocking::Link,
    transport: Transport,
    settings: &'a Settings,
}

impl Peer<'_> {
    /// Sends `Discard`s for `duration`, as fast as the socket takes them;
    /// returns how many.
    fn stream(
        &mut self,
        discard: &mut Message,
        duration: std::time::Duration,
    ) -> anyhow::Result<u64> {
        let end = Instant::now() + duration;
        let mut sent = 0;
        // The clock is read once per up to 64 small sends (64 KiB at
        // most): a read costs about as much as encoding a small message,
        // and 64 sends of one take microseconds.
        let stride = (65_536 / (discard.body.len() + msg_proto::HEADER_LEN)).clamp(1, 64);
        loop {
            for _ in 0..stride {
                discard.seq += 1;
                self.link.send(discard)?;
                sent += 1;
            }
            if Instant::now() >= end {
                return Ok(sent);
            }
        }
    }

    /// What the listener has counted: a statistics ping, sent again (up to
    /// a bound) while its answer does not come, as it can be lost over UDP
    /// behind the stream it asks about.
    fn stats(&mut self, seq: &mut u64) -> anyhow::Result<msg_net::Stats> {
        for _ in 0..STATS_ATTEMPTS {
            *seq += 1;
            self.link.send(&ping::stats_request(*seq))?;
            let wait = stats_wait(self.transport, self.settings.timeout);
            if let Some((reply, _)) = self.pong(*seq, Instant::now() + wait)? {
                return Ok(ping::parse_stats(&reply)?);
            }
        }
        bail!(
            "no answer to {STATS_ATTEMPTS} statistics requests, {} apart",
            humantime::format_duration(self.settings.timeout)
        )
    }

    /// Waits for the pong to ping `seq` until `deadline`, skipping late
    /// pongs (ones given up on): the pong and when it arrived, or `None`
    /// when it did not come in time over UDP (lost).
    fn pong(&mut self, seq: u64, deadline: Instant) -> anyhow::Result<Option<(Message, Instant)>> {
        loop {
            let reply = match self.link.recv(deadline)? {
                Received::Message(reply) => reply,
                Received::Closed => bail!(LISTENER_CLOSED),
                Received::Nothing if self.transport == Transport::Udp => return Ok(None),
                Received::Nothing => bail!(
                    "no answer to ping {seq} within {}",
                    humantime::format_duration(self.settings.timeout)
                ),
            };
            let arrived = Instant::now();
            if reply.kind == Kind::Error {
                return Err(msg_net::Error::Peer(printable(&reply.body)).into());
            }
            match ping::check_pong(&reply, seq)? {
                PongMatch::Current => return Ok(Some((reply, arrived))),
                PongMatch::Late if arrived < deadline => {}
                PongMatch::Late if self.transport == Transport::Udp => return Ok(None),
                PongMatch::Late => bail!("no answer to ping {seq} in time"),
            }
        }
    }

    /// One round trip, the ping leaving at `sent`: its time in
    /// nanoseconds, or `None` if lost (UDP).
    fn exchange(
        &mut self,
        ping: &mut Message,
        clock: Clock,
        sent: Instant,
    ) -> anyhow::Result<Option<u64>> {
        ping.seq += 1;
        ping.timestamp_ns = clock.ns(sent);
        self.link.send(ping)?;
        Ok(self
            .pong(ping.seq, sent + self.settings.timeout)?
            .map(|(reply, arrived)| clock.ns(arrived).saturating_sub(reply.timestamp_ns)))
    }
}

/// The blocking engine's built-in listeners; dropping this stops them and
/// joins their threads.
#[derive(Debug)]
pub(crate) struct Servers {
    addrs: Vec<(Transport, SocketAddr)>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl Servers {
    /// Binds a listener for each of `transports` on 127.0.0.1 port 0 and
    /// serves each on a thread of its own, pinned to `core`.
    ///
    /// # Errors
    ///
    /// When a socket or a thread cannot be made.
    pub(crate) fn start(
        transports: &[Transport],
        core: Option<CoreId>,
        nodelay: bool,
        busy_poll: bool,
    ) -> anyhow::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let mut servers = Self {
            addrs: Vec::new(),
            stop: Arc::clone(&stop),
            threads: Vec::new(),
        };
        for &transport in transports {
            let tcp = TcpOptions {
                nodelay,
                ..TcpOptions::default()
            };
            let local = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
            let listener = blocking::Listener::bind(transport, local, tcp)?;
            servers.addrs.push((transport, listener.local_addr()?));
            let stop = Arc::clone(&stop);
            let thread = thread::Builder::new()
                .name(format!("msg-bench-{transport}-blocking"))
                .spawn(move || {
                    // TCP connections' threads inherit the placement.
                    pin_current(core, "listener");
                    let config = ServeConfig {
                        busy_poll,
                        ..ServeConfig::default()
                    };
                    if let Err(err) = blocking::serve(&listener, &config, &Events::discard(), &stop)
                    {
                        warn!("built-in blocking {transport} listener: {err}");
                    }
                })
                .context("cannot start a listener's thread")?;
            servers.threads.push(thread);
        }
        Ok(servers)
    }

    /// The address of the listener for `transport`.
    pub(crate) fn addr(&self, transport: Transport) -> SocketAddr {
        self.addrs
            .iter()
            .find(|(t, _)| *t == transport)
            .map(|(_, addr)| *addr)
            .expect("a listener was started for every transport measured")
    }
}

impl Drop for Servers {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocking_is_the_default_only_where_it_measures() {
        assert_eq!(
            Io::engines(None, true, false, false),
            Ok(vec![Engine::Blocking])
        );
        assert_eq!(
            Io::engines(None, false, false, false),
            Ok(vec![Engine::Tokio])
        );
        assert_eq!(
            Io::engines(None, true, true, false),
            Ok(vec![Engine::Tokio])
        );
        assert_eq!(
            Io::engines(Some(Io::Both), true, false, false),
            Ok(vec![Engine::Blocking, Engine::Tokio])
        );
        let refused = Io::engines(Some(Io::Blocking), false, false, false).unwrap_err();
        assert!(refused.contains("--io blocking") && refused.contains("--io tokio"));
        assert!(Io::engines(Some(Io::Both), true, true, false).is_err());
        assert_eq!(
            Io::engines(None, true, false, true),
            Ok(vec![Engine::Tokio])
        );
        assert!(Io::engines(Some(Io::Blocking), true, false, true).is_err());
        assert_eq!(
            Io::engines(Some(Io::Tokio), false, true, false),
            Ok(vec![Engine::Tokio])
        );
    }
}
