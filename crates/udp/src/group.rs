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

use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::str::FromStr;

use socket2::{Domain, InterfaceIndexOrAddress, Protocol, SockAddr, Socket, Type};

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

/// A network interface, as the user named it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Iface {
    /// An IPv4 address of the interface (IPv4 groups only).
    Addr(IpAddr),
    /// An interface by name (`lo`, `eth0`) or number, with its index.
    Index {
        /// What the user wrote.
        name: String,
        /// The kernel's index of it.
        index: u32,
    },
}

impl FromStr for Iface {
    type Err = GroupError;

    /// An address (`127.0.0.1`), a name (`lo`) or an index (`1`). A name
    /// is looked up now, so that a typo fails before anything is bound.
    fn from_str(s: &str) -> Result<Self, GroupError> {
        if let Ok(addr) = s.parse::<IpAddr>() {
            return Ok(Self::Addr(addr));
        }
        let index = match s.parse::<u32>() {
            Ok(index) => index,
            Err(_) => index_of(s).unwrap_or(0),
        };
        if index == 0 {
            return Err(GroupError::NoSuchInterface { name: s.to_owned() });
        }
        Ok(Self::Index {
            name: s.to_owned(),
            index,
        })
    }
}

impl fmt::Display for Iface {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Addr(addr) => write!(f, "{addr}"),
            Self::Index { name, .. } => f.write_str(name),
        }
    }
}

/// The kernel's index of the interface called `name`, if there is one.
#[cfg(unix)]
fn index_of(name: &str) -> Option<u32> {
    let name = std::ffi::CString::new(name).ok()?;
    // SAFETY: `name` is a NUL-terminated string that outlives the call.
    let index = unsafe { libc::if_nametoindex(name.as_ptr()) };
    (index != 0).then_some(index)
}

#[cfg(not(unix))]
fn index_of(_name: &str) -> Option<u32> {
    None
}

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

fn socket_error(what: impl Into<String>) -> impl FnOnce(io::Error) -> GroupError {
    let what = what.into();
    move |source| GroupError::Socket { what, source }
}

fn new_socket(addr: &SocketAddr) -> Result<Socket, GroupError> {
    Socket::new(Domain::for_address(*addr), Type::DGRAM, Some(Protocol::UDP))
        .map_err(socket_error("open a UDP socket"))
}

/// The interface's index for IPv6, which names interfaces by index only.
fn v6_index(iface: Option<&Iface>) -> Result<u32, GroupError> {
    match iface {
        None => Ok(0),
        Some(Iface::Index { index, .. }) => Ok(*index),
        Some(Iface::Addr(addr)) => Err(GroupError::Ipv6InterfaceAddress { addr: *addr }),
    }
}

/// An IPv4 interface address, or an error for an IPv6 one.
fn v4_addr(addr: IpAddr, group: IpAddr) -> Result<Ipv4Addr, GroupError> {
    match addr {
        IpAddr::V4(v4) => Ok(v4),
        IpAddr::V6(_) => Err(GroupError::FamilyMismatch {
            what: "the interface",
            addr,
            group,
        }),
    }
}

/// A socket bound to `group`'s port that has joined it: a receiver of the
/// group. `group` must be a multicast address.
///
/// # Errors
///
/// [`GroupError::Join`] (no interface for the group, an interface without
/// multicast), the option checks, or the bind's error (as
/// [`GroupError::Socket`]).
pub fn receiver(group: SocketAddr, options: &GroupOptions) -> Result<UdpSocket, GroupError> {
    options.check_receiver(group)?;
    let socket = new_socket(&group)?;
    // Several receivers of one group on one host each bind its port.
    socket
        .set_reuse_address(true)
        .map_err(socket_error("set SO_REUSEADDR"))?;
    #[cfg(all(unix, not(any(target_os = "solaris", target_os = "illumos"))))]
    socket
        .set_reuse_port(true)
        .map_err(socket_error("set SO_REUSEPORT"))?;
    let iface = options.iface.as_ref();
    let mut bind_to = group;
    match group {
        SocketAddr::V4(_) => {
            #[cfg(target_os = "linux")]
            socket
                .set_multicast_all_v4(false)
                .map_err(socket_error("turn IP_MULTICAST_ALL off"))?;
        }
        SocketAddr::V6(_) => {
            #[cfg(target_os = "linux")]
            socket
                .set_multicast_all_v6(false)
                .map_err(socket_error("turn IPV6_MULTICAST_ALL off"))?;
            socket
                .set_only_v6(true)
                .map_err(socket_error("set IPV6_V6ONLY"))?;
        }
    }
    // A link-local group (ff02::/16) exists once per link: the bind names
    // which, as the join does.
    if let SocketAddr::V6(v6) = &mut bind_to {
        v6.set_scope_id(v6_index(iface)?);
    }
    socket
        .bind(&SockAddr::from(bind_to))
        .map_err(socket_error(format!("bind the group's port {bind_to}")))?;
    join(&socket, group.ip(), options)?;
    Ok(socket.into())
}

/// Joins `group` on the interface `options` names, from its source only if
/// it names one.
fn join(socket: &Socket, group: IpAddr, options: &GroupOptions) -> Result<(), GroupError> {
    let iface = options.iface.as_ref();
    let on = iface.map_or_else(
        || "the interface the routing table picks".to_owned(),
        |iface| format!("interface {iface}"),
    );
    let joined = |source| GroupError::Join {
        group,
        on: on.clone(),
        source,
    };
    if let Some(source) = options.source {
        return match (group, source, iface) {
            (IpAddr::V4(g), IpAddr::V4(s), None) => {
                socket.join_ssm_v4(&s, &g, &Ipv4Addr::UNSPECIFIED)
            }
            (IpAddr::V4(g), IpAddr::V4(s), Some(Iface::Addr(addr))) => {
                socket.join_ssm_v4(&s, &g, &v4_addr(*addr, group)?)
            }
            (group, source, iface) => join_source_group(socket, group, source, v6_index(iface)?),
        }
        .map_err(joined);
    }
    match (group, iface) {
        (IpAddr::V4(g), None) => socket.join_multicast_v4(&g, &Ipv4Addr::UNSPECIFIED),
        (IpAddr::V4(g), Some(Iface::Addr(addr))) => {
            socket.join_multicast_v4(&g, &v4_addr(*addr, group)?)
        }
        (IpAddr::V4(g), Some(Iface::Index { index, .. })) => {
            socket.join_multicast_v4_n(&g, &InterfaceIndexOrAddress::Index(*index))
        }
        (IpAddr::V6(g), iface) => socket.join_multicast_v6(&g, v6_index(iface)?),
    }
    .map_err(joined)
}

/// `MCAST_JOIN_SOURCE_GROUP`, the protocol-independent source-specific
/// join that takes an interface index (IPv4 by index, and IPv6, which
/// socket2 does not wrap).
#[cfg(target_os = "linux")]
fn join_source_group(socket: &Socket, group: IpAddr, source: IpAddr, index: u32) -> io::Result<()> {
    fn storage(ip: IpAddr) -> libc::sockaddr_storage {
        let addr = SockAddr::from(SocketAddr::new(ip, 0));
        // SAFETY: a SockAddr's storage is a valid sockaddr_storage.
        unsafe { std::ptr::read(addr.as_ptr().cast::<libc::sockaddr_storage>()) }
    }
    let request = libc::group_source_req {
        gsr_interface: index,
        gsr_group: storage(group),
        gsr_source: storage(source),
    };
    let level = if group.is_ipv4() {
        libc::IPPROTO_IP
    } else {
        libc::IPPROTO_IPV6
    };
    set_option(socket, level, libc::MCAST_JOIN_SOURCE_GROUP, &request)
}

#[cfg(not(target_os = "linux"))]
fn join_source_group(_: &Socket, _: IpAddr, _: IpAddr, _: u32) -> io::Result<()> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "a source-specific join by interface index needs Linux",
    ))
}

/// An unconnected socket that sends to `dest` (a group, or a broadcast
/// address when `options.broadcast`) with `options`' TTL, interface and
/// loopback, and receives the answers of every receiver.
///
/// # Errors
///
/// [`GroupError::Ttl`], an interface of the wrong kind, or the kernel's
/// refusal of an option or of the bind.
pub fn sender(dest: SocketAddr, options: &GroupOptions) -> Result<UdpSocket, GroupError> {
    options.check_sender(dest)?;
    let socket = new_socket(&dest)?;
    let local: SocketAddr = match dest {
        SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    socket
        .bind(&SockAddr::from(local))
        .map_err(socket_error(format!("bind {local}")))?;
    if options.broadcast {
        socket
            .set_broadcast(true)
            .map_err(socket_error("set SO_BROADCAST"))?;
    }
    let ttl = options.ttl.unwrap_or(DEFAULT_TTL);
    let group = dest.ip();
    match group {
        IpAddr::V4(_) => {
            socket
                .set_multicast_ttl_v4(ttl)
                .map_err(socket_error("set IP_MULTICAST_TTL"))?;
            if let Some(on) = options.loopback {
                socket
                    .set_multicast_loop_v4(on)
                    .map_err(socket_error("set IP_MULTICAST_LOOP"))?;
            }
            match &options.iface {
                None => {}
                Some(Iface::Addr(addr)) => socket
                    .set_multicast_if_v4(&v4_addr(*addr, group)?)
                    .map_err(socket_error(format!("send from the interface {addr}")))?,
                Some(Iface::Index { name, index }) => multicast_if_index_v4(&socket, *index)
                    .map_err(socket_error(format!("send from the interface {name}")))?,
            }
        }
        IpAddr::V6(_) => {
            socket
                .set_multicast_hops_v6(ttl)
                .map_err(socket_error("set IPV6_MULTICAST_HOPS"))?;
            if let Some(on) = options.loopback {
                socket
                    .set_multicast_loop_v6(on)
                    .map_err(socket_error("set IPV6_MULTICAST_LOOP"))?;
            }
            if let Some(iface) = &options.iface {
                socket
                    .set_multicast_if_v6(v6_index(Some(iface))?)
                    .map_err(socket_error(format!("send from the interface {iface}")))?;
            }
        }
    }
    Ok(socket.into())
}

/// `IP_MULTICAST_IF` by index (`struct ip_mreqn`), which socket2 sets by
/// address only.
#[cfg(target_os = "linux")]
fn multicast_if_index_v4(socket: &Socket, index: u32) -> io::Result<()> {
    let request = libc::ip_mreqn {
        imr_multiaddr: libc::in_addr { s_addr: 0 },
        imr_address: libc::in_addr { s_addr: 0 },
        imr_ifindex: i32::try_from(index).map_err(io::Error::other)?,
    };
    set_option(socket, libc::IPPROTO_IP, libc::IP_MULTICAST_IF, &request)
}

/// `setsockopt` with a value socket2 has no setter for.
#[cfg(target_os = "linux")]
fn set_option<T>(socket: &Socket, level: i32, name: i32, value: &T) -> io::Result<()> {
    use std::os::fd::AsRawFd;

    let len = libc::socklen_t::try_from(size_of::<T>()).map_err(io::Error::other)?;
    // SAFETY: `value` is a live `T` of `len` bytes, the option's type.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            level,
            name,
            std::ptr::from_ref(value).cast(),
            len,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(not(target_os = "linux"))]
fn multicast_if_index_v4(_: &Socket, _: u32) -> io::Result<()> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "an IPv4 interface by name needs Linux here; give its address",
    ))
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
