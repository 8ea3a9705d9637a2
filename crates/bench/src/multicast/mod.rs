//! One sender, N receivers of a multicast group: the latency and the loss
//! of each receiver, measured in one run, and how far apart they are.
//!
//! - **Receivers.** Built-in ones ([`Receivers::BuiltIn`]) are N threads
//!   of this process, each with its own socket on the group's port (the
//!   kernel gives every joined socket its own copy of each datagram) and
//!   its own unicast socket to answer from, so that the sender tells them
//!   apart by the address an answer comes from. Remote ones
//!   ([`Receivers::Remote`]) are `msg listen --udp GROUP:PORT` processes
//!   elsewhere (other hosts, other network namespaces, or this host),
//!   told apart by their address too (each answers from a port of its
//!   own, several on one host included); N is how many are expected, so that one that
//!   never answers is a receiver that lost everything, not one missing
//!   from the report.
//! - **Ping-pong** (`sender/pings.rs`): each ping goes to the group once
//!   and every receiver answers it; each receiver's round trips go into a
//!   histogram of their own. Closed loop: the next ping leaves when every
//!   receiver heard from so far has answered, or the timeout has passed
//!   (its missing answers are lost, as is an answer later than that).
//!   With a rate: open loop, pings at that rate whatever the answers do,
//!   each round trip counted from the ping's intended send time.
//! - **Throughput** (`sender/stream.rs`): a stream of `Discard`s to the
//!   group, as fast as the socket takes them or at the rate, between two
//!   statistics requests to the group that every receiver answers with
//!   what it counted (msg's statistics ping, the same for built-in and
//!   remote receivers): what each one received, lost and at what rate.
//!
//! Its report is [`report::multicast`](crate::report::multicast).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use hdrhistogram::Histogram;
use msg_net::group::{GroupOptions, Iface};
use msg_net::limits::{MAX_PAYLOAD_V4, MAX_PAYLOAD_V6};
use tracing::info;

use crate::engine::MAX_LATENCY_NS;
use crate::error::Error;
use crate::plan::{DEFAULT_TIMEOUT, Mode};

mod receivers;
mod sender;

/// The most receivers one run measures: built-in, a thread each.
pub const MAX_RECEIVERS: u32 = 256;

/// The group built-in receivers join when none is given: in the
/// organisation-local scope (239.255.0.0/16, RFC 2365), which no router
/// forwards beyond a site.
pub const DEFAULT_GROUP: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(239, 255, 0, 1)), 0);

/// Who answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Receivers {
    /// N threads of this process, each its own socket.
    BuiltIn(u32),
    /// N `msg listen` processes expected to have joined the group.
    Remote(u32),
}

impl Receivers {
    /// How many receivers: started, or expected.
    pub fn count(self) -> u32 {
        match self {
            Self::BuiltIn(n) | Self::Remote(n) => n,
        }
    }

    /// Whether they are this process's.
    pub fn builtin(self) -> bool {
        matches!(self, Self::BuiltIn(_))
    }
}

/// What to run: one sender, the receivers of one group.
#[derive(Debug, Clone)]
pub struct Fanout {
    /// The group, with its port; port 0 (built-in receivers only) picks a
    /// free one.
    pub group: SocketAddr,
    /// Who answers.
    pub receivers: Receivers,
    /// The interface to send the group on, and to join it on for
    /// built-in receivers; `None`: with built-in receivers loopback
    /// ([`Fanout::iface`]), with remote ones the one the routing table
    /// picks.
    pub iface: Option<Iface>,
    /// The datagrams' TTL (default 1, the link).
    pub ttl: Option<u32>,
    /// Round trips per receiver, or a stream counted by each.
    pub mode: Mode,
    /// The payload size.
    pub size: usize,
    /// Pings (or discards) per second; `None`: closed loop (or as fast as
    /// the socket takes them).
    pub rate: Option<u64>,
    /// How long the sender sends before it measures.
    pub warmup: Duration,
    /// How long it measures.
    pub duration: Duration,
    /// How long an answer may take before it counts as lost; `None`:
    /// [`DEFAULT_TIMEOUT`].
    pub timeout: Option<Duration>,
}

/// A multicast group as a user writes it: `IP` (port 0) or `IP:PORT`
/// (`[IPv6]:PORT`), the address a group (224.0.0.0/4, ff00::/8).
///
/// # Errors
///
/// [`Error::NotAGroup`] for anything else.
pub fn parse_group(s: &str) -> Result<SocketAddr, Error> {
    let s = s.trim();
    // An IPv6 group in brackets without a port too, as it is written with
    // one (audit, round eleven: `[ff15::9]` was "not a multicast group").
    let bare = s
        .strip_prefix('[')
        .and_then(|inner| inner.strip_suffix(']'))
        .unwrap_or(s);
    let addr = s
        .parse::<SocketAddr>()
        .ok()
        .or_else(|| bare.parse::<IpAddr>().ok().map(|ip| SocketAddr::new(ip, 0)))
        .filter(|addr| addr.ip().is_multicast());
    addr.ok_or_else(|| Error::NotAGroup(s.to_owned()))
}

impl Fanout {
    /// Whether it can be carried out as it stands.
    ///
    /// # Errors
    ///
    /// [`Error::Receivers`] for none or more than [`MAX_RECEIVERS`];
    /// [`Error::NotAGroup`] for a unicast address; [`Error::GroupNeedsPort`]
    /// for remote receivers without a port; [`Error::GroupOversize`] for a
    /// message that does not fit a datagram.
    pub fn check(&self) -> Result<(), Error> {
        let count = self.receivers.count();
        if !(1..=MAX_RECEIVERS).contains(&count) {
            return Err(Error::Receivers(count));
        }
        if !self.group.ip().is_multicast() {
            return Err(Error::NotAGroup(self.group.to_string()));
        }
        if !self.receivers.builtin() && self.group.port() == 0 {
            return Err(Error::GroupNeedsPort(self.group.ip()));
        }
        let max = match self.group {
            SocketAddr::V4(_) => MAX_PAYLOAD_V4,
            SocketAddr::V6(_) => MAX_PAYLOAD_V6,
        } - msg_proto::HEADER_LEN;
        if self.size > max {
            return Err(Error::GroupOversize {
                size: self.size,
                max,
            });
        }
        Ok(())
    }

    /// The interface the run uses: the one given, or for built-in
    /// receivers loopback (127.0.0.1, or `lo` for an IPv6 group), so that
    /// nothing leaves the host unless asked to.
    ///
    /// # Errors
    ///
    /// When an IPv6 group's loopback has no interface called `lo`.
    pub fn iface(&self) -> Result<Option<Iface>, Error> {
        if self.iface.is_some() || !self.receivers.builtin() {
            return Ok(self.iface.clone());
        }
        Ok(Some(match self.group {
            SocketAddr::V4(_) => Iface::Addr(Ipv4Addr::LOCALHOST.into()),
            SocketAddr::V6(_) => "lo".parse()?,
        }))
    }

    pub(crate) fn timeout(&self) -> Duration {
        self.timeout.unwrap_or(DEFAULT_TIMEOUT)
    }
}

/// What one receiver got.
#[derive(Debug)]
pub struct Receiver {
    /// From 1: built-in ones in the order they were started, remote ones
    /// in the order they first answered (and those never heard from
    /// last).
    pub id: u32,
    /// Where it answers from; `None` for a remote receiver never heard
    /// from.
    pub addr: Option<SocketAddr>,
    /// Ping-pong: its round-trip times in nanoseconds, of the pings sent
    /// while measuring that it answered in time.
    pub latency: Histogram<u64>,
    /// Ping-pong: pings it answered in time; throughput: discards it
    /// counted.
    pub received: u64,
    /// Ping-pong: answers that came after the timeout (counted lost).
    pub late: u64,
    /// Throughput: discards that arrived after a later one.
    pub reordered: u64,
    /// Throughput: whether it answered both statistics requests (a
    /// receiver that did not has an unknown count, shown as 0).
    pub counted: bool,
}

impl Receiver {
    pub(crate) fn new(id: u32, addr: Option<SocketAddr>) -> Self {
        Self {
            id,
            addr,
            latency: Histogram::new_with_bounds(1, MAX_LATENCY_NS, 3)
                .expect("valid histogram bounds"),
            received: 0,
            late: 0,
            reordered: 0,
            counted: false,
        }
    }
}

/// What a run measured.
#[derive(Debug)]
pub struct Results {
    /// The group, with the port used.
    pub group: SocketAddr,
    /// The interface it was sent on, as given (`None`: the routing
    /// table's).
    pub iface: Option<Iface>,
    /// Pings (or discards) sent while measuring.
    pub sent: u64,
    /// How long the measurement took.
    pub elapsed: Duration,
    /// Every receiver, built-in or expected, and any other that answered.
    pub receivers: Vec<Receiver>,
    /// Answers from an address no receiver of this run has (a built-in
    /// run's group shared with another program's receivers), ignored.
    pub strangers: u64,
    /// Answers the kernel dropped at the sender while measuring, its
    /// receive buffer full (`SO_MEMINFO`): counted as the receivers'
    /// loss, but the sender's. `None` where the kernel does not tell.
    pub sender_overflow: Option<u64>,
}

/// Starts the receivers (built-in ones) and measures.
///
/// # Errors
///
/// [`Fanout::check`]'s refusals; a group that cannot be joined or sent to
/// ([`Error::Group`], [`Error::GroupSend`]: no route to it, no interface);
/// a receiver that stops or a thread that cannot start.
pub fn run(fanout: &Fanout) -> Result<Results, Error> {
    fanout.check()?;
    let iface = fanout.iface()?;
    let options = GroupOptions {
        iface: iface.clone(),
        ttl: fanout.ttl,
        ..GroupOptions::default()
    };
    let (group, builtin) = match fanout.receivers {
        Receivers::BuiltIn(n) => {
            let started = receivers::BuiltIn::start(fanout.group, n, &options)?;
            (started.group(), Some(started))
        }
        Receivers::Remote(_) => (fanout.group, None),
    };
    let known = builtin.as_ref().map(receivers::BuiltIn::addrs);
    for (id, addr) in (1..).zip(known.iter().flatten()) {
        info!(
            "receiver {id} of {} of {group} answers from {addr}",
            fanout.receivers.count()
        );
    }
    let mut sender = sender::Sender::new(group, &options, fanout, known)?;
    let measured = match fanout.mode {
        Mode::Pingpong => sender.pingpong(),
        Mode::Throughput => sender.throughput(),
    };
    if let Some(builtin) = builtin {
        builtin.stop()?;
    }
    let measured = measured?;
    Ok(Results {
        group,
        iface,
        sent: measured.sent,
        elapsed: measured.elapsed,
        receivers: sender.into_receivers(),
        strangers: measured.strangers,
        sender_overflow: measured.sender_overflow,
    })
}

/// Whether a blocking receive (or send) should just be tried again: its
/// timeout ran out (`SO_RCVTIMEO` reports `EAGAIN`) or a signal
/// interrupted it.
fn retry(err: &std::io::Error) -> bool {
    use std::io::ErrorKind;
    matches!(
        err.kind(),
        ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_group_is_a_multicast_address_with_or_without_a_port() {
        assert_eq!(
            parse_group("239.1.2.3").unwrap(),
            "239.1.2.3:0".parse().unwrap()
        );
        assert_eq!(
            parse_group("239.1.2.3:9000").unwrap(),
            "239.1.2.3:9000".parse().unwrap()
        );
        assert_eq!(
            parse_group("[ff15::1]:9").unwrap(),
            "[ff15::1]:9".parse().unwrap()
        );
        // In brackets without a port, as with one (audit, round eleven).
        assert_eq!(
            parse_group("[ff15::1]").unwrap(),
            "[ff15::1]:0".parse().unwrap()
        );
        for unicast in [
            "127.0.0.1",
            "10.0.0.1:9000",
            "::1",
            "[::1]",
            "nonsense",
            "",
            "[]",
        ] {
            let err = parse_group(unicast).unwrap_err();
            assert!(matches!(err, Error::NotAGroup(_)), "{unicast}: {err}");
        }
        assert_eq!(
            parse_group("127.0.0.1").unwrap_err().to_string(),
            "127.0.0.1 is not a multicast group (224.0.0.0/4, ff00::/8)"
        );
    }

    fn fanout(receivers: Receivers) -> Fanout {
        Fanout {
            group: DEFAULT_GROUP,
            receivers,
            iface: None,
            ttl: None,
            mode: Mode::Pingpong,
            size: 64,
            rate: None,
            warmup: Duration::from_millis(10),
            duration: Duration::from_millis(50),
            timeout: None,
        }
    }

    #[test]
    fn what_makes_no_sense_is_refused_naming_the_limit() {
        assert!(fanout(Receivers::BuiltIn(3)).check().is_ok());
        let none = fanout(Receivers::BuiltIn(0)).check().unwrap_err();
        assert_eq!(
            none.to_string(),
            "a group is measured with 1 to 256 receivers, not 0"
        );
        assert!(matches!(
            fanout(Receivers::Remote(MAX_RECEIVERS + 1)).check(),
            Err(Error::Receivers(257))
        ));
        assert!(matches!(
            fanout(Receivers::Remote(2)).check(),
            Err(Error::GroupNeedsPort(_))
        ));
        let big = Fanout {
            size: 65_500,
            ..fanout(Receivers::BuiltIn(1))
        };
        assert!(matches!(
            big.check(),
            Err(Error::GroupOversize { max: 65_479, .. })
        ));
        let unicast = Fanout {
            group: "127.0.0.1:9".parse().unwrap(),
            ..fanout(Receivers::BuiltIn(1))
        };
        assert!(matches!(unicast.check(), Err(Error::NotAGroup(_))));
    }

    #[test]
    fn built_in_receivers_stay_on_loopback_unless_told() {
        let builtin = fanout(Receivers::BuiltIn(2));
        assert_eq!(
            builtin.iface().unwrap(),
            Some(Iface::Addr(Ipv4Addr::LOCALHOST.into()))
        );
        let remote = Fanout {
            group: "239.1.2.3:9000".parse().unwrap(),
            ..fanout(Receivers::Remote(2))
        };
        assert_eq!(remote.iface().unwrap(), None);
    }
}
