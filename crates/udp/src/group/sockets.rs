//! The sockets: a receiver that joins a group and shares its port, and a
//! sender with its TTL, interface, loopback and broadcast set.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};

use socket2::{Domain, InterfaceIndexOrAddress, Protocol, SockAddr, Socket, Type};

use super::{DEFAULT_TTL, GroupError, GroupOptions, Iface};

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

/// An unconnected socket bound to the wildcard address of `group`'s IP
/// version, port 0: where a receiver of `group` sends its answers from.
///
/// Every receiver of a group on one host binds the group's port, so an
/// answer sent from the joined socket would leave from the same address
/// (the host's, and that port) whichever receiver sent it: a sender that
/// tells its answers apart by their source (`msg send --reply`, `msg bench
/// --receivers`) would see one receiver where there are several. A port
/// of its own per receiver names it; the kernel still picks the source IP
/// by route, as for the joined socket.
///
/// Nothing is read from it: its receive buffer is the smallest the kernel
/// grants, so that what strangers send to it takes no memory to speak of.
///
/// # Errors
///
/// The kernel's refusal to open or bind it (as [`GroupError::Socket`]).
pub fn answering(group: SocketAddr) -> Result<UdpSocket, GroupError> {
    let socket = new_socket(&group)?;
    let local: SocketAddr = match group {
        SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    if group.is_ipv6() {
        socket
            .set_only_v6(true)
            .map_err(socket_error("set IPV6_V6ONLY"))?;
    }
    socket
        .bind(&SockAddr::from(local))
        .map_err(socket_error(format!("bind {local} to answer from")))?;
    socket
        .set_recv_buffer_size(0)
        .map_err(socket_error("set SO_RCVBUF"))?;
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
