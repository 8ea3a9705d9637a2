//! One to many: multicast groups and broadcast.
//!
//! A unicast datagram goes to one socket. A datagram to a *multicast group*
//! (IPv4 224.0.0.0/4, IPv6 ff00::/8) goes to every socket that joined the
//! group on the interface it arrives at, on every host that joined; one to a
//! *broadcast* address goes to every host on the link. Three things make
//! that work, and each is a socket option the tutorial's one-to-one code
//! never sets:
//!
//! - **The receiver joins** (`IP_ADD_MEMBERSHIP`, `IPV6_JOIN_GROUP`), on one
//!   interface. Without an interface the kernel takes the one its routing
//!   table sends the group to; a host (or a network namespace) with no
//!   default route and no route for 224.0.0.0/4 has none, and the join
//!   fails with `ENODEV`. Naming the interface, or adding the route, fixes
//!   it. A *source-specific* join (`MCAST_JOIN_SOURCE_GROUP`, RFC 4607)
//!   takes only what one source sends to the group.
//! - **The receiver binds the group's port, and shares it.** Every receiver
//!   of a group on one host binds the same port; `SO_REUSEADDR` (and
//!   `SO_REUSEPORT`, where the others set it) lets them, and the kernel
//!   hands each one its own copy of every datagram to the group (a unicast
//!   datagram to a port shared with `SO_REUSEPORT` goes to one of them:
//!   that shares load, not data). It binds the group address itself, not
//!   the wildcard, so that traffic to other groups on the same port, and
//!   unicast, stay out; `IP_MULTICAST_ALL` is turned off for the same
//!   reason (Linux otherwise delivers every group any socket joined).
//! - **The sender chooses the interface and the reach.** The TTL (IPv6:
//!   hop limit) defaults to 1 (the link, no router forwards it); 0 keeps the
//!   datagram on this host. `IP_MULTICAST_LOOP` (on by default) decides
//!   whether the sender's own host gets a copy. A broadcast needs
//!   `SO_BROADCAST`, or the kernel refuses the send with `EACCES`, so that
//!   a program cannot broadcast by mistake.
//!
//! The sender's socket is not connected: each receiver answers from its own
//! unicast address, and a socket connected to the group would drop those
//! answers, since none comes from the group.
//!
//! A receiver answers from a second socket of its own ([`answering`]: the
//! wildcard address, a port the kernel picks), not from the joined one: the
//! receivers of a group on one host share its port, so answers from the
//! joined sockets would all come from one address, and a sender telling
//! receivers apart by where their answers come from would count them as
//! one. A shared port hides which receiver answered.

use std::io;
use std::net::{IpAddr, SocketAddr};

/// The TTL a multicast datagram leaves with unless told otherwise: the
/// kernel's default, 1, which no router forwards.
pub const DEFAULT_TTL: u32 = 1;

/// The largest TTL (and IPv6 hop limit): one byte.
pub const MAX_TTL: u32 = 255;

/// Why a group could not be joined or sent to.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GroupError {
    /// The interface name is not one of this host's.
    #[error("no network interface named {name:?} here (ip link lists them)")]
    NoSuchInterface {
        /// The name given.
        name: String,
    },
    /// Group options for an address that is not a group.
    #[error("{addr} is not a multicast group (IPv4 224.0.0.0/4, IPv6 ff00::/8)")]
    NotAGroup {
        /// The address given.
        addr: SocketAddr,
    },
    /// Broadcast permission asked for a group, which does not use it.
    #[error(
        "{addr} is a multicast group, which needs no broadcast permission (SO_BROADCAST is \
         for a broadcast address, such as 255.255.255.255 or a subnet's last)"
    )]
    BroadcastToGroup {
        /// The group given.
        addr: SocketAddr,
    },
    /// Broadcast permission asked for an IPv6 address: IPv6 has none.
    #[error(
        "IPv6 has no broadcast, so {addr} cannot be one: every host on the link is the \
         group ff02::1"
    )]
    NoIpv6Broadcast {
        /// The address given.
        addr: SocketAddr,
    },
    /// A source-specific join's source is not one host's address.
    #[error(
        "the source of a source-specific group must be one host's unicast address; \
         {addr} is not"
    )]
    SourceNotUnicast {
        /// The address given.
        addr: IpAddr,
    },
    /// A source or an interface address of the other IP version.
    #[error("{what} {addr} and the group {group} are not the same IP version")]
    FamilyMismatch {
        /// "the source" or "the interface".
        what: &'static str,
        /// The address given.
        addr: IpAddr,
        /// The group.
        group: IpAddr,
    },
    /// IPv6 names an interface by name or index, never by address.
    #[error(
        "an IPv6 group's interface is named by its name or index (lo, eth0, 1), \
         not by an address such as {addr}"
    )]
    Ipv6InterfaceAddress {
        /// The address given.
        addr: IpAddr,
    },
    /// A link-local (or interface-local) IPv6 group with no interface: it
    /// exists once per link, and nothing says which.
    #[error("the group {group} is link-local: it needs an interface to say which link's")]
    NeedsInterface {
        /// The group.
        group: IpAddr,
    },
    /// A TTL that does not fit the byte the header has for it.
    #[error("TTL {ttl} is out of range: a TTL is 0 to {MAX_TTL}")]
    Ttl {
        /// The TTL given.
        ttl: u32,
    },
    /// The kernel refused the join.
    #[error("cannot join the group {group} on {on}")]
    Join {
        /// The group.
        group: IpAddr,
        /// The interface as given, or "the interface the routing table picks".
        on: String,
        /// Why (`ENODEV`: no interface for the group).
        source: io::Error,
    },
    /// The kernel refused a socket option or the bind.
    #[error("cannot {what}")]
    Socket {
        /// What was being done.
        what: String,
        /// Why.
        source: io::Error,
    },
}

mod iface;
mod sockets;

pub use iface::Iface;
pub use sockets::{answering, receiver, sender};

/// What a one-to-many socket is set up with; the defaults are the
/// kernel's.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GroupOptions {
    /// The interface to join on (receivers) or send from (senders).
    pub iface: Option<Iface>,
    /// Receivers: take only what this host sends to the group.
    pub source: Option<IpAddr>,
    /// Senders: the TTL or hop limit (default [`DEFAULT_TTL`]).
    pub ttl: Option<u32>,
    /// Senders: whether this host's own receivers get a copy (default on).
    pub loopback: Option<bool>,
    /// Senders: allow broadcast destinations (`SO_BROADCAST`).
    pub broadcast: bool,
}

impl GroupOptions {
    /// Checks, before any socket is made, that a receiver can join `group`
    /// with these options: a group, a unicast source of its IP version, an
    /// interface IPv6 can name, an interface for a link-local group.
    ///
    /// # Errors
    ///
    /// The [`GroupError`] that names what does not fit.
    pub fn check_receiver(&self, group: SocketAddr) -> Result<(), GroupError> {
        let ip = group.ip();
        if !ip.is_multicast() {
            return Err(GroupError::NotAGroup { addr: group });
        }
        if let Some(source) = self.source {
            if source.is_multicast() || source.is_unspecified() {
                return Err(GroupError::SourceNotUnicast { addr: source });
            }
            if source.is_ipv4() != ip.is_ipv4() {
                return Err(GroupError::FamilyMismatch {
                    what: "the source",
                    addr: source,
                    group: ip,
                });
            }
        }
        self.check_iface(ip)?;
        // An IPv6 group's scope is its address's fourth nibble: 1 the
        // interface, 2 the link. Either exists once per link, and nothing
        // but the interface says which.
        if let IpAddr::V6(v6) = ip {
            if self.iface.is_none() && matches!(v6.segments()[0] & 0x000f, 1 | 2) {
                return Err(GroupError::NeedsInterface { group: ip });
            }
        }
        Ok(())
    }

    /// Checks, before any socket is made, that a sender to `dest` can use
    /// these options: the TTL, the interface and loopback only for a group.
    ///
    /// # Errors
    ///
    /// The [`GroupError`] that names what does not fit.
    pub fn check_sender(&self, dest: SocketAddr) -> Result<(), GroupError> {
        let ip = dest.ip();
        let group_only = self.iface.is_some() || self.ttl.is_some() || self.loopback.is_some();
        if group_only && !ip.is_multicast() {
            return Err(GroupError::NotAGroup { addr: dest });
        }
        if let Some(ttl) = self.ttl.filter(|&ttl| ttl > MAX_TTL) {
            return Err(GroupError::Ttl { ttl });
        }
        // Broadcast permission where it means nothing is a mistaken idea
        // of where the datagram goes, said now (audit, round eleven: it
        // was accepted, and the send went on as if to a broadcast).
        if self.broadcast {
            if ip.is_multicast() {
                return Err(GroupError::BroadcastToGroup { addr: dest });
            }
            if ip.is_ipv6() {
                return Err(GroupError::NoIpv6Broadcast { addr: dest });
            }
        }
        self.check_iface(ip)
    }

    /// An interface given by address must be IPv4, as the group is.
    fn check_iface(&self, group: IpAddr) -> Result<(), GroupError> {
        match (&self.iface, group) {
            (Some(Iface::Addr(addr)), IpAddr::V4(_)) if addr.is_ipv6() => {
                Err(GroupError::FamilyMismatch {
                    what: "the interface",
                    addr: *addr,
                    group,
                })
            }
            (Some(Iface::Addr(addr)), IpAddr::V6(_)) => {
                Err(GroupError::Ipv6InterfaceAddress { addr: *addr })
            }
            _ => Ok(()),
        }
    }

    /// Whether a sender to `dest` needs an unconnected socket set up by
    /// [`sender`]: the destination is a group, or broadcast was asked for.
    pub fn one_to_many(&self, dest: &SocketAddr) -> bool {
        self.broadcast || dest.ip().is_multicast()
    }

    /// Whether any option only a group makes sense of was given.
    pub fn names_a_group_option(&self) -> bool {
        self.iface.is_some() || self.source.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_interface_is_an_address_a_name_or_an_index() {
        assert_eq!(
            "127.0.0.1".parse::<Iface>().unwrap(),
            Iface::Addr([127, 0, 0, 1].into())
        );
        let Iface::Index { index, .. } = "lo".parse::<Iface>().unwrap() else {
            panic!("lo is a name");
        };
        assert!(index > 0);
        assert!(matches!(
            "no-such-iface0".parse::<Iface>(),
            Err(GroupError::NoSuchInterface { .. })
        ));
        assert!(matches!(
            "0".parse::<Iface>(),
            Err(GroupError::NoSuchInterface { .. })
        ));
    }

    #[test]
    fn a_source_must_be_unicast_and_of_the_groups_version() {
        let group: SocketAddr = "239.1.2.3:0".parse().unwrap();
        let multicast = GroupOptions {
            source: Some("239.9.9.9".parse().unwrap()),
            ..GroupOptions::default()
        };
        assert!(matches!(
            receiver(group, &multicast),
            Err(GroupError::SourceNotUnicast { .. })
        ));
        let v6 = GroupOptions {
            source: Some("::1".parse().unwrap()),
            ..GroupOptions::default()
        };
        assert!(matches!(
            receiver(group, &v6),
            Err(GroupError::FamilyMismatch { .. })
        ));
    }

    #[test]
    fn a_ttl_over_255_is_refused_before_sending() {
        let options = GroupOptions {
            ttl: Some(256),
            ..GroupOptions::default()
        };
        let err = sender("239.1.2.3:9".parse().unwrap(), &options).unwrap_err();
        assert_eq!(
            err.to_string(),
            "TTL 256 is out of range: a TTL is 0 to 255"
        );
    }

    #[test]
    fn an_ipv6_group_takes_no_interface_address() {
        let options = GroupOptions {
            iface: Some(Iface::Addr("::1".parse().unwrap())),
            ..GroupOptions::default()
        };
        let err = sender("[ff02::1]:9".parse().unwrap(), &options).unwrap_err();
        assert!(matches!(err, GroupError::Ipv6InterfaceAddress { .. }));
    }

    /// Two receivers of one group on 127.0.0.1 share the port and each get
    /// a copy; a receiver of another group on the same port gets none.
    /// Runs on the host's loopback: naming 127.0.0.1 as the interface on
    /// both sides needs no route.
    #[test]
    fn every_joined_receiver_gets_a_copy_and_no_other_does() {
        let on_lo = GroupOptions {
            iface: Some(Iface::Addr([127, 0, 0, 1].into())),
            ..GroupOptions::default()
        };
        let first = receiver("239.255.77.1:0".parse().unwrap(), &on_lo).unwrap();
        let port = first.local_addr().unwrap().port();
        let group = SocketAddr::from(([239, 255, 77, 1], port));
        let second = receiver(group, &on_lo).unwrap();
        let other = receiver(SocketAddr::from(([239, 255, 77, 2], port)), &on_lo).unwrap();
        let send = sender(group, &on_lo).unwrap();
        send.send_to(b"to all", group).unwrap();
        let wait = Some(std::time::Duration::from_secs(5));
        for socket in [&first, &second] {
            socket.set_read_timeout(wait).unwrap();
            let mut buf = [0; 16];
            let (n, from) = socket.recv_from(&mut buf).unwrap();
            assert_eq!(&buf[..n], b"to all");
            assert_eq!(from.port(), send.local_addr().unwrap().port());
        }
        other.set_nonblocking(true).unwrap();
        assert_eq!(
            other.recv_from(&mut [0; 16]).unwrap_err().kind(),
            io::ErrorKind::WouldBlock
        );
    }
}
