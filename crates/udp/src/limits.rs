//! What one datagram holds: the payload limits of each IP version
//! ([`Family`]), what msg adds to the caller's bytes ([`Overhead`]), and the
//! check against both ([`check_size`]).

use std::fmt;
use std::net::SocketAddr;

use msg_proto::HEADER_LEN;

use crate::Error;

/// The largest UDP payload over IPv4: 65,535 (the IPv4 total-length field's
/// maximum) less the 20-byte IPv4 header and the 8-byte UDP header.
pub const MAX_PAYLOAD_V4: usize = 65_535 - 20 - 8;

/// The largest UDP payload over IPv6: 65,535 (the IPv6 payload-length
/// field's maximum, which excludes the IPv6 header itself) less the 8-byte
/// UDP header. Jumbograms are out of scope.
pub const MAX_PAYLOAD_V6: usize = 65_535 - 8;

/// The receive buffer: one more byte than any datagram can hold, so a read
/// that fills it would reveal truncation (and none can).
pub const RECV_BUF_LEN: usize = 65_536;

/// Which IP version a datagram travels over; it decides the size limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// IPv4, including IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`), which
    /// leave the host as IPv4 packets.
    V4,
    /// IPv6.
    V6,
}

impl Family {
    /// The family a datagram to `addr` travels over.
    pub fn of(addr: &SocketAddr) -> Self {
        match addr {
            SocketAddr::V4(_) => Self::V4,
            SocketAddr::V6(v6) if v6.ip().to_ipv4_mapped().is_some() => Self::V4,
            SocketAddr::V6(_) => Self::V6,
        }
    }

    /// The largest datagram payload over this family.
    pub fn max_payload(self) -> usize {
        match self {
            Self::V4 => MAX_PAYLOAD_V4,
            Self::V6 => MAX_PAYLOAD_V6,
        }
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::V4 => "IPv4",
            Self::V6 => "IPv6",
        })
    }
}

/// What a datagram carries besides the caller's bytes.
///
/// All of it counts against the datagram limit, so the body's own limit is
/// the payload limit less the overhead: [`Overhead::max_body`]. An
/// authentication trailer is an overhead like the header; leaving it out of
/// the check would let a body that fits alone overflow the datagram once the
/// trailer is appended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Overhead {
    /// The msg header in front of the body: [`HEADER_LEN`] when framed, 0
    /// for a raw datagram.
    pub header: usize,
    /// An authentication trailer after the body, 0 when there is none.
    pub tag: usize,
}

impl Overhead {
    /// A raw datagram: the caller's bytes and nothing else.
    pub const RAW: Self = Self { header: 0, tag: 0 };

    /// A msg message: the 28-byte header, no trailer.
    pub const FRAMED: Self = Self {
        header: HEADER_LEN,
        tag: 0,
    };

    /// A msg message followed by a `tag`-byte authentication trailer.
    pub const fn framed_with_tag(tag: usize) -> Self {
        Self {
            header: HEADER_LEN,
            tag,
        }
    }

    /// The overhead's bytes in all.
    pub const fn total(self) -> usize {
        self.header + self.tag
    }

    /// The largest body that fits one datagram over `family` with this
    /// overhead (0 if the overhead alone does not fit).
    pub fn max_body(self, family: Family) -> usize {
        family.max_payload().saturating_sub(self.total())
    }
}

/// The end of [`Error::TooLarge`]'s text: how much of `max` is left for the
/// body, and what takes the rest. Empty for a raw datagram, where the body is
/// the whole payload and the limit already says it.
pub(crate) fn body_hint(overhead: Overhead, max: usize) -> String {
    let body = max.saturating_sub(overhead.total());
    let Overhead { header, tag } = overhead;
    match (header, tag) {
        (0, 0) => String::new(),
        (header, 0) => format!(" ({body} for the body after a {header}-byte header)"),
        (0, tag) => format!(" ({body} for the body before a {tag}-byte authentication trailer)"),
        (header, tag) => format!(
            " ({body} for the body after a {header}-byte header \
             and a {tag}-byte authentication trailer)"
        ),
    }
}

/// Checks that a payload of `len` bytes, plus `overhead`, fits one datagram
/// to `addr`.
///
/// # Errors
///
/// [`Error::TooLarge`] if it does not.
pub fn check_size(len: usize, overhead: Overhead, addr: &SocketAddr) -> Result<(), Error> {
    let family = Family::of(addr);
    let max = family.max_payload();
    if len.saturating_add(overhead.total()) > max {
        return Err(Error::TooLarge {
            len,
            max,
            family,
            overhead,
        });
    }
    Ok(())
}
