//! [`Limits`]: what one listener grants its peers, in one place.
//!
//! Each limit bounds what a hostile or broken peer can cost: memory (frames
//! grow with the bytes that arrive, see msg-tcp's decoder), descriptors
//! (`max_conns`, `max_handshakes`), time (`idle_timeout`, `frame_timeout`, and the handshake
//! timeout of [`Auth`](crate::Auth)), and state (`max_udp_peers`). The
//! frame size itself is msg-tcp's `Options::max_frame`, the commands'
//! limits [`ExecConfig`](crate::exec::ExecConfig)'s.
//!
//! [`BodyLimit`]: the largest body one message can carry over a transport,
//! worked out here once for `msg send`, `msg listen` and `msg bench`.

use std::time::Duration;

use msg_proto::auth::{TAG_LEN, UDP_TRAILER_LEN};

use crate::{SocketType, Transport};

// The transports' own limits and options, for callers that name them (flag
// defaults, a table of what fits) without depending on the transports.
pub use msg_proto::HEADER_LEN;
pub use msg_tcp::{DEFAULT_MAX_FRAME, LENGTH_PREFIX_LEN, Options as TcpOptions};

/// A largest frame ([`TcpOptions::max_frame`]) that cannot be one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MaxFrameError {
    /// Not a number.
    #[error("expected a number of bytes, got '{0}'")]
    NotANumber(String),
    /// Smaller than a header, or larger than the length prefix can say.
    #[error("must be from {min} (one header) to {max} bytes, got {got}")]
    OutOfRange {
        /// [`HEADER_LEN`].
        min: u64,
        /// `u32::MAX`.
        max: u64,
        /// What was asked.
        got: u64,
    },
}

/// A largest frame as people write one, in bytes: it must hold at least a
/// header, and its length must fit the `u32` prefix.
///
/// # Errors
///
/// [`MaxFrameError`] for anything else.
pub fn parse_max_frame(s: &str) -> Result<usize, MaxFrameError> {
    let got: u64 = s
        .parse()
        .map_err(|_| MaxFrameError::NotANumber(s.to_owned()))?;
    let (min, max) = (HEADER_LEN as u64, u64::from(u32::MAX));
    if !(min..=max).contains(&got) {
        return Err(MaxFrameError::OutOfRange { min, max, got });
    }
    Ok(got as usize)
}

/// A Unix socket file's mode ([`TcpOptions::socket_mode`]) that is not
/// one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected a file mode in octal, 0 to 777 (600: owner only), got '{0}'")]
pub struct ModeError(pub String);

/// A Unix socket file's mode as people write one, in octal, 0 to 777.
///
/// # Errors
///
/// [`ModeError`] for anything else.
pub fn parse_socket_mode(s: &str) -> Result<u32, ModeError> {
    match u32::from_str_radix(s, 8) {
        Ok(mode) if mode <= 0o777 => Ok(mode),
        _ => Err(ModeError(s.to_owned())),
    }
}
pub use msg_udp::{Family, MAX_PAYLOAD_V4, MAX_PAYLOAD_V6, Overhead, check_size};

/// A listener's limits; [`Limits::default`] is what `msg listen` uses
/// unless told otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Connections served at once; the next one is told so and closed.
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

/// The largest body one message can carry, and what sets it: the numbers
/// an error that refuses a larger one names.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct BodyLimit {
    /// The body's limit.
    pub max: usize,
    /// What carries the message: "a UDP datagram", "a TCP frame".
    pub carrier: &'static str,
    /// The carrier's own limit, overhead included.
    pub total: usize,
    /// What sets `total`.
    pub set_by: SetBy,
    /// What the carrier holds besides the body: "a 28-byte header"; empty
    /// for a raw datagram.
    pub overhead: String,
}

/// What sets a [`BodyLimit`]'s carrier limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetBy {
    /// The IP family: a UDP datagram's 65,507 bytes on IPv4, 65,527 on
    /// IPv6.
    Family(Family),
    /// The connection's largest frame (msg-tcp's `Options::max_frame`),
    /// a setting of the user's.
    MaxFrame,
    /// A Unix datagram socket's send buffer (`SO_SNDBUF`, by default
    /// `net.core.wmem_default`), less the kernel's 32 bytes.
    SendBuffer,
}

impl SetBy {
    /// What sets the limit, in this crate's words, to follow "holds at
    /// most N bytes": ` on IPv4`; nothing for a frame, whose limit is a
    /// setting the caller names as its user knows it.
    pub fn words(self) -> String {
        match self {
            Self::Family(family) => format!(" on {family}"),
            Self::MaxFrame => String::new(),
            Self::SendBuffer => " here (the socket's send buffer, SO_SNDBUF, less 32 bytes; \
                                 sysctl net.core.wmem_default raises it)"
                .to_owned(),
        }
    }
}

impl BodyLimit {
    /// The limit over `transport`, framed (and tagged, when
    /// `authenticated`) or `raw`. A datagram's limit depends on the
    /// peer's IP `family`, known once its address is; a stream's on
    /// `max_frame`.
    ///
    /// `None` where there is no limit to check, or none yet: a raw stream
    /// has no messages to bound, and a datagram's limit waits for its
    /// `family`.
    pub fn of(
        transport: Transport,
        family: Option<Family>,
        max_frame: usize,
        authenticated: bool,
        raw: bool,
    ) -> Option<Self> {
        match transport.socket_type() {
            SocketType::Datagram if !transport.is_inet() => {
                let (overhead, text) = datagram_overhead(raw, authenticated);
                let total = unix_datagram_max();
                Some(Self {
                    max: total.saturating_sub(overhead.total()),
                    carrier: "a Unix datagram",
                    total,
                    set_by: SetBy::SendBuffer,
                    overhead: text,
                })
            }
            SocketType::Datagram => {
                let family = family?;
                let (overhead, text) = datagram_overhead(raw, authenticated);
                Some(Self {
                    max: overhead.max_body(family),
                    carrier: "a UDP datagram",
                    total: family.max_payload(),
                    set_by: SetBy::Family(family),
                    overhead: text,
                })
            }
            // A raw packet is one message: it must fit one, as a raw
            // datagram must (a longer write would go as several packets).
            SocketType::Stream if raw && transport.caps().keeps_boundaries => {
                let total = unix_datagram_max();
                Some(Self {
                    max: total,
                    carrier: "a Unix packet",
                    total,
                    set_by: SetBy::SendBuffer,
                    overhead: String::new(),
                })
            }
            SocketType::Stream if raw => None,
            SocketType::Stream => Some(Self::msg_framed(max_frame, authenticated)),
        }
    }
}

/// What a datagram carries besides the body, and its words.
fn datagram_overhead(raw: bool, authenticated: bool) -> (Overhead, String) {
    match (raw, authenticated) {
        (true, _) => (Overhead::RAW, String::new()),
        (false, false) => (Overhead::FRAMED, format!("a {HEADER_LEN}-byte header")),
        (false, true) => (
            Overhead::framed_with_tag(UDP_TRAILER_LEN),
            format!(
                "a {HEADER_LEN}-byte header and a {UDP_TRAILER_LEN}-byte authentication trailer"
            ),
        ),
    }
}

/// The largest Unix datagram a new socket sends: its send buffer, which
/// starts at `net.core.wmem_default` (212,992 bytes unless changed), less
/// the 32 bytes the kernel keeps for each datagram.
pub fn unix_datagram_max() -> usize {
    let default = std::fs::read_to_string("/proc/sys/net/core/wmem_default")
        .ok()
        .and_then(|text| text.trim().parse::<usize>().ok())
        .unwrap_or(212_992);
    default.saturating_sub(32)
}

impl BodyLimit {
    /// The limit of one of msg's frames on a stream: `max_frame` bytes, a
    /// header (and, `authenticated`, a tag) among them. For an error from
    /// the stream's codec, which knows its frame but not its transport.
    pub fn msg_framed(max_frame: usize, authenticated: bool) -> Self {
        // The tag sits inside the frame: it counts against the limit, as
        // msg-tcp's encoder counts it.
        let (tag, overhead) = if authenticated {
            (
                TAG_LEN,
                format!("a {HEADER_LEN}-byte header and a {TAG_LEN}-byte tag"),
            )
        } else {
            (0, format!("a {HEADER_LEN}-byte header"))
        };
        Self {
            max: max_frame.saturating_sub(HEADER_LEN + tag),
            carrier: "a TCP frame",
            total: max_frame,
            set_by: SetBy::MaxFrame,
            overhead,
        }
    }
}

impl BodyLimit {
    /// The limit of a bare length-prefixed frame (see [`crate::length`]):
    /// `max_frame` bytes, all of them body.
    pub fn length_framed(max_frame: usize) -> Self {
        Self {
            max: max_frame,
            carrier: "a length-prefixed frame",
            total: max_frame,
            set_by: SetBy::MaxFrame,
            overhead: String::new(),
        }
    }

    /// The refusal of a `len`-byte body: what it is, what holds at most
    /// what, what sets that (`source`: [`BodyLimit::source`], or the
    /// caller's own name for the setting), and how much of it the body
    /// gets: `message is 70000 bytes; a UDP datagram holds at most 65507
    /// bytes on IPv4 (65479 for the body after a 28-byte header)`.
    pub fn refusal(&self, len: usize, source: &str) -> String {
        let Self {
            max,
            carrier,
            total,
            overhead,
            ..
        } = self;
        let body = if overhead.is_empty() {
            String::new()
        } else {
            format!(" ({max} for the body after {overhead})")
        };
        format!("message is {len} bytes; {carrier} holds at most {total} bytes{source}{body}")
    }

    /// The refusal of stdin's line `n`, longer than the limit, with
    /// `source` as for [`BodyLimit::refusal`]: `line 3 is longer than
    /// 65479 bytes, the largest message a UDP datagram holds on IPv4
    /// (65507 bytes less a 28-byte header)`.
    pub fn line_refusal(&self, n: u64, source: &str) -> String {
        let Self {
            max,
            carrier,
            total,
            overhead,
            ..
        } = self;
        let less = if overhead.is_empty() {
            String::new()
        } else {
            format!(" ({total} bytes less {overhead})")
        };
        format!(
            "line {n} is longer than {max} bytes, the largest message {carrier} holds{source}{less}"
        )
    }

    /// What sets the limit, in this crate's words: ` on IPv4` for a
    /// datagram; nothing for a frame, whose limit is a setting the caller
    /// names as its user knows it.
    pub fn source(&self) -> String {
        self.set_by.words()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_max_frame_holds_a_header_and_fits_the_prefix() {
        assert_eq!(parse_max_frame("28"), Ok(HEADER_LEN));
        assert_eq!(
            parse_max_frame("27").unwrap_err().to_string(),
            "must be from 28 (one header) to 4294967295 bytes, got 27"
        );
        assert_eq!(
            parse_max_frame("1k").unwrap_err().to_string(),
            "expected a number of bytes, got '1k'"
        );
        assert_eq!(parse_socket_mode("600"), Ok(0o600));
        assert!(parse_socket_mode("800").is_err());
    }

    #[test]
    fn each_carrier_has_its_limit() {
        let udp = |family, auth, raw| BodyLimit::of(Transport::Udp, Some(family), 0, auth, raw);
        assert_eq!(udp(Family::V4, false, false).unwrap().max, 65_479);
        assert_eq!(udp(Family::V6, false, true).unwrap().max, 65_527);
        assert_eq!(udp(Family::V4, true, false).unwrap().max, 65_431);
        assert_eq!(BodyLimit::of(Transport::Udp, None, 0, false, false), None);
        let tcp = BodyLimit::of(Transport::Tcp, None, 100, true, false).unwrap();
        assert_eq!((tcp.max, tcp.total, tcp.set_by), (40, 100, SetBy::MaxFrame));
        assert_eq!(BodyLimit::of(Transport::Tcp, None, 100, false, true), None);
    }

    #[test]
    fn a_refusal_says_what_holds_what() {
        let udp = BodyLimit::of(Transport::Udp, Some(Family::V4), 0, false, false).unwrap();
        assert_eq!(
            udp.refusal(70_000, &udp.source()),
            "message is 70000 bytes; a UDP datagram holds at most 65507 bytes on IPv4 \
             (65479 for the body after a 28-byte header)"
        );
        let tcp = BodyLimit::of(Transport::Tcp, None, 100, false, false).unwrap();
        assert_eq!(
            tcp.refusal(73, &tcp.source()),
            "message is 73 bytes; a TCP frame holds at most 100 bytes \
             (72 for the body after a 28-byte header)"
        );
    }
}
