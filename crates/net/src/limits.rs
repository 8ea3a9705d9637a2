//! [`Limits`]: what one listener grants its peers, in one place.
//!
//! Each limit bounds what a hostile or broken peer can cost: memory (frames
//! grow with the bytes that arrive, see msg-tcp's decoder), descriptors
//! (`max_conns`, `max_handshakes`), time (`idle_timeout`, `frame_timeout`, and the handshake
//! timeout of [`Auth`](crate::Auth)), and state (`max_udp_peers`). The
//! frame size itself is msg-tcp's `Options::max_frame`, the commands'
//! limits [`ExecConfig`](crate::exec::ExecConfig)'s.

use std::time::Duration;

// The transports' own limits and options, for callers that name them (flag
// defaults, a table of what fits) without depending on the transports.
pub use msg_proto::HEADER_LEN;
pub use msg_tcp::{DEFAULT_MAX_FRAME, LENGTH_PREFIX_LEN, Options as TcpOptions};
pub use msg_udp::{Family, MAX_PAYLOAD_V4, MAX_PAYLOAD_V6, Overhead, check_size};

/// A listener's limits; [`Limits::default`] is what `msg listen` uses
/// unless told otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// TCP connections served at once; the next one is told so and closed.
    pub max_conns: usize,
    /// Of those, how many may be in the authentication handshake at once
    /// (with a secret). The next one waits its turn, reading nothing, within
    /// the handshake timeout: peers that have not proved they hold the
    /// secret share this many slots, whatever `max_conns` is.
    pub max_handshakes: usize,
    /// A TCP connection that sends nothing for this long is closed; `None`
    /// never closes an idle one.
    pub idle_timeout: Option<Duration>,
    /// Once a frame's first byte has arrived, the rest must arrive within
    /// this long: a peer that trickles a byte a second (slowloris) cannot
    /// hold a connection open for ever.
    pub frame_timeout: Duration,
    /// TCP keepalive probes after this long without traffic, so that a peer
    /// that vanished (unplugged, rebooted) is noticed; `None` leaves the
    /// operating system's default (off).
    pub keepalive: Option<Duration>,
    /// UDP peers whose discard statistics a listener keeps; a flood of
    /// spoofed source addresses cannot grow the table past it.
    pub max_udp_peers: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_conns: 1024,
            max_handshakes: 64,
            idle_timeout: Some(Duration::from_secs(5 * 60)),
            frame_timeout: Duration::from_secs(30),
            keepalive: Some(Duration::from_secs(60)),
            max_udp_peers: 4096,
        }
    }
}
