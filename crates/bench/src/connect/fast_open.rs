//! TCP Fast Open in the connect mode: the kernel's switch read, and the
//! socket options of the client (`TCP_FASTOPEN_CONNECT`) and the listener
//! (`TCP_FASTOPEN`).

use std::io;

use msg_net::{TcpInfo, Transport};
use socket2::Socket;

use super::stream::is_tcp;
use crate::error::{Error, RunError};

/// The queue of TCP Fast Open requests the listener takes before it
/// falls back to the full handshake (the kernel's `TCP_FASTOPEN` value).
#[cfg(target_os = "linux")]
const FAST_OPEN_QUEUE: libc::c_int = 128;

/// Checks that TCP Fast Open can be measured: TCP among `transports`, and
/// the kernel's client side on. Returns `net.ipv4.tcp_fastopen`.
pub(super) fn check_fast_open(transports: &[Transport]) -> Result<u32, Error> {
    if !transports.iter().any(|&t| is_tcp(t)) {
        return Err(Error::FastOpen(
            "TCP Fast Open cuts TCP's handshake, and no TCP is measured".to_owned(),
        ));
    }
    if !cfg!(target_os = "linux") {
        return Err(Error::FastOpen(
            "TCP Fast Open is measured on Linux only".to_owned(),
        ));
    }
    let sysctl = std::fs::read_to_string("/proc/sys/net/ipv4/tcp_fastopen").map_err(|_| {
        Error::FastOpen(
            "this kernel has no TCP Fast Open (no /proc/sys/net/ipv4/tcp_fastopen)".to_owned(),
        )
    })?;
    let value: u32 = sysctl.trim().parse().map_err(|_| {
        Error::FastOpen(format!(
            "cannot read net.ipv4.tcp_fastopen: '{}'",
            sysctl.trim()
        ))
    })?;
    if value & 1 == 0 {
        return Err(Error::FastOpen(format!(
            "net.ipv4.tcp_fastopen is {value}, which leaves the client side off (bit 1); \
             `sysctl -w net.ipv4.tcp_fastopen=3` turns on both sides"
        )));
    }
    Ok(value)
}

/// `TCP_FASTOPEN_CONNECT`: `connect()` returns at once and the SYN leaves
/// with the first write, carrying it once a cookie is cached.
#[cfg(target_os = "linux")]
pub(super) fn fast_open_connect(socket: &Socket) -> Result<(), Error> {
    set_int(socket, libc::IPPROTO_TCP, libc::TCP_FASTOPEN_CONNECT, 1)
        .map_err(|err| Error::FastOpen(format!("the kernel refused TCP_FASTOPEN_CONNECT: {err}")))
}

/// `TCP_FASTOPEN` on a listener: take data in a SYN.
#[cfg(target_os = "linux")]
pub(super) fn fast_open_listener(socket: &Socket) -> Result<(), Error> {
    set_int(
        socket,
        libc::IPPROTO_TCP,
        libc::TCP_FASTOPEN,
        FAST_OPEN_QUEUE,
    )
    .map_err(|err| Error::FastOpen(format!("the kernel refused TCP_FASTOPEN: {err}")))
}

#[cfg(target_os = "linux")]
fn set_int(
    socket: &Socket,
    level: libc::c_int,
    name: libc::c_int,
    value: libc::c_int,
) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: a valid descriptor, and a c_int of the length passed.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            level,
            name,
            (&raw const value).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Whether the connection's SYN carried data the listener acknowledged.
pub(super) fn syn_data(socket: &Socket) -> Result<bool, Error> {
    let info = TcpInfo::of(socket).map_err(|err| RunError::TcpInfo(err.into()))?;
    Ok(info.is_some_and(|info| info.syn_data))
}

/// Elsewhere than Linux TCP Fast Open is not measured ([`check_fast_open`]
/// refuses it first).
#[cfg(not(target_os = "linux"))]
pub(super) fn fast_open_connect(_socket: &Socket) -> Result<(), Error> {
    Err(Error::FastOpen(
        "TCP Fast Open is measured on Linux only".to_owned(),
    ))
}

#[cfg(not(target_os = "linux"))]
pub(super) fn fast_open_listener(socket: &Socket) -> Result<(), Error> {
    fast_open_connect(socket)
}
