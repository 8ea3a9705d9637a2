//! What one run is told: where to measure ([`Target`]), how ([`Settings`],
//! its [`Mode`], its [`Batching`]), and what cannot go at all
//! ([`Oversize`]). The plan makes them; the engines only read them.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use msg_net::limits::{BodyLimit, Family};
use msg_net::{Auth, CallCounts, ConnectOptions, Counters, PeerAddr, Transport};

/// What is measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// One message in flight: round-trip time (or, with a rate, open loop).
    Pingpong,
    /// A one-way stream: messages per second at the receiver, loss.
    Throughput,
}

impl Mode {
    /// `pingpong` or `throughput`, as the JSON names it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Pingpong => "pingpong",
            Self::Throughput => "throughput",
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Which way a throughput stream goes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Direction {
    /// The client sends, the listener counts (and is asked what it
    /// counted).
    #[default]
    Forward,
    /// The listener sends, asked to by the client, which counts: iperf3's
    /// `-R`. Over connections only.
    Reverse,
    /// Both at once, iperf3's `--bidir`: each flow a forward connection
    /// and a reverse one, run together. (Both ways on one connection would
    /// deadlock once each side's buffers filled with the other unread.)
    Bidir,
}

impl Direction {
    /// `forward` or `reverse`, as the JSON names it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Forward => "forward",
            Self::Reverse => "reverse",
            Self::Bidir => "bidir",
        }
    }
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Where to measure.
#[derive(Debug)]
pub(crate) struct Target {
    pub(crate) transport: Transport,
    /// Of the transport's kind: an IP address and port, or a path.
    pub(crate) addr: PeerAddr,
    pub(crate) nodelay: bool,
    /// Authenticate with this secret.
    pub(crate) auth: Option<Auth>,
    /// The listener's kernel drops, where it is a built-in UDP listener:
    /// what its socket could not queue (a remote one's are not readable
    /// here).
    pub(crate) drops: Option<Arc<msg_net::KernelDrops>>,
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
            tls: (self.transport.caps().encrypted).then(|| crate::servers::builtin_tls().1.clone()),
            ..ConnectOptions::default()
        };
        options.tcp.nodelay = self.nodelay;
        options
    }

    /// Whether `size`-byte messages can be sent at all: msg-net's one
    /// body limit, as `msg send` checks it (a datagram's from the peer's IP
    /// family, a frame's from the connection's largest frame).
    pub(crate) fn check_size(&self, size: usize) -> Result<(), Oversize> {
        let max_frame = self.connect_options().tcp.max_frame;
        let family = self.addr.inet().map(|addr| Family::of(&addr));
        match BodyLimit::of(
            self.transport,
            family,
            max_frame,
            self.auth.is_some(),
            false,
        ) {
            Some(limit) if size > limit.max => Err(Oversize {
                limit: limit.total,
                message: limit.refusal(size, &limit.source()),
            }),
            _ => Ok(()),
        }
    }
}

/// How to measure one run.
#[derive(Debug)]
pub(crate) struct Settings {
    pub(crate) mode: Mode,
    /// Which way a throughput stream goes.
    pub(crate) direction: Direction,
    pub(crate) warmup: Duration,
    pub(crate) duration: Duration,
    /// How long a reply may take before it counts as lost, where a
    /// message can be lost (UDP).
    pub(crate) timeout: Duration,
    /// How long a reply may take before the run fails, where none is lost
    /// (TCP, a Unix socket): see [`Settings::reply_timeout`].
    pub(crate) tcp_timeout: Duration,
    pub(crate) rate: Option<u64>,
    /// Under an impairment: read what the kernel saw
    /// ([`Kernel`](crate::Kernel)).
    pub(crate) impaired: bool,
    /// UDP throughput sent many datagrams per call.
    pub(crate) batch: Option<Batching>,
    /// Intervals to report each run in.
    pub(crate) interval: Option<Duration>,
}

impl Settings {
    /// How long a reply over `transport` may take: where a message may be
    /// lost, a late reply counts as lost after [`Settings::timeout`];
    /// where none is, it is only late, and the run fails after the longer
    /// [`Settings::tcp_timeout`].
    pub(crate) fn reply_timeout(&self, transport: Transport) -> Duration {
        if transport.caps().reliable {
            self.tcp_timeout
        } else {
            self.timeout
        }
    }
}

/// How a throughput run is batched.
#[derive(Debug)]
pub(crate) struct Batching {
    /// Datagrams per send call.
    pub(crate) size: usize,
    /// Send each batch as one GSO run where the kernel offers it.
    pub(crate) gso: bool,
    /// The built-in listeners' counters, by address.
    pub(crate) listeners: Vec<(PeerAddr, Arc<Counters>)>,
}

impl Batching {
    /// The receive-side counts of the built-in listener at `addr` now;
    /// `None` for a remote listener.
    pub(crate) fn recv_counts(&self, addr: &PeerAddr) -> Option<CallCounts> {
        self.listeners
            .iter()
            .find(|(at, _)| at == addr)
            .map(|(_, counters)| counters.udp_recv_calls())
    }
}

/// A size that does not fit one message of the transport: a UDP datagram,
/// or a TCP frame.
#[derive(Debug)]
pub struct Oversize {
    /// The limit it exceeds (the datagram's or the frame's, overhead
    /// included), for the table cell.
    pub limit: usize,
    /// The transport's own error message, for the note under the table and
    /// the JSON.
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(transport: Transport, auth: bool) -> Target {
        let secret = msg_proto::auth::Secret::new(b"s3cret".to_vec()).unwrap();
        Target {
            transport,
            addr: std::net::SocketAddr::from(([127, 0, 0, 1], 9)).into(),
            nodelay: true,
            auth: auth.then(|| Auth::new(secret)),
            drops: None,
        }
    }

    /// The bench refuses what `msg send` refuses, with the same words: a
    /// datagram past its family's limit, and a frame past the largest one.
    #[test]
    fn a_size_is_refused_where_msg_send_refuses_it() {
        let udp = target(Transport::Udp, false);
        assert!(udp.check_size(65_479).is_ok());
        let oversize = udp.check_size(65_480).unwrap_err();
        assert_eq!(oversize.limit, 65_507);
        assert_eq!(
            oversize.message,
            "message is 65480 bytes; a UDP datagram holds at most 65507 bytes on IPv4 \
             (65479 for the body after a 28-byte header)"
        );
        let tagged = target(Transport::Udp, true);
        assert!(tagged.check_size(65_479).is_err(), "the trailer counts");

        let tcp = target(Transport::Tcp, false);
        assert!(tcp.check_size(70_000).is_ok());
        let max_frame = msg_net::limits::DEFAULT_MAX_FRAME;
        let oversize = tcp.check_size(max_frame).unwrap_err();
        assert_eq!(oversize.limit, max_frame);
        assert!(
            oversize.message.contains("a TCP frame holds at most"),
            "{}",
            oversize.message
        );
    }
}
