//! `--io`: which engine measures, and the blocking engine's two ends.
//!
//! - The client: one closed-loop ping-pong on the calling thread over a
//!   `msg_net::blocking::Link` (std sockets, a blocking `recv`, or with
//!   `--busy-poll` a `recv` with `MSG_DONTWAIT` in a loop), timed and
//!   checked as the tokio client's closed loop is.
//! - The built-in listeners: `msg_net::blocking::serve`, a thread for UDP
//!   and one to accept TCP (plus one per connection), pinned where the
//!   tokio listeners would be.
//!
//! The open loop (`--rate`) and throughput stay on tokio: with `--io
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

use super::client::{Clock, LISTENER_CLOSED, Outcome, Settings, Target};
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
    /// for what it can measure (a closed-loop ping-pong without a secret)
    /// and tokio for the rest.
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
                    "only the closed-loop ping-pong, not --rate or --mode throughput"
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

/// Measures one closed-loop run of `size`-byte pings against `target` on
/// this thread.
///
/// # Errors
///
/// As the tokio client's closed loop: the target cannot be reached,
/// closes the connection, answers what was not asked, or (over TCP) does
/// not answer within the timeout.
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
    let clock = Clock::new();
    let mut ping = Message::new(Kind::Ping, 0, Bytes::from(vec![b'm'; size]));
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

struct Peer<'a> {
    link: blocking::Link,
    transport: Transport,
    settings: &'a Settings,
}

impl Peer<'_> {
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
        let deadline = sent + self.settings.timeout;
        loop {
            let reply = match self.link.recv(deadline)? {
                Received::Message(reply) => reply,
                Received::Closed => bail!(LISTENER_CLOSED),
                Received::Nothing if self.transport == Transport::Udp => return Ok(None),
                Received::Nothing => bail!(
                    "no answer to ping {} within {}",
                    ping.seq,
                    humantime::format_duration(self.settings.timeout)
                ),
            };
            let arrived = Instant::now();
            if reply.kind == Kind::Error {
                return Err(msg_net::Error::Peer(printable(&reply.body)).into());
            }
            match ping::check_pong(&reply, ping.seq)? {
                PongMatch::Current => {
                    return Ok(Some(clock.ns(arrived).saturating_sub(reply.timestamp_ns)));
                }
                // A late pong (one given up on): wait on for ours, as long
                // as the deadline allows.
                PongMatch::Late if arrived < deadline => {}
                PongMatch::Late if self.transport == Transport::Udp => return Ok(None),
                PongMatch::Late => bail!("no answer to ping {} in time", ping.seq),
            }
        }
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
