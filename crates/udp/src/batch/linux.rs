//! The system calls and socket options, on buffers the kernel reads or
//! fills.

use std::io;
use std::mem::{size_of, zeroed};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6, UdpSocket};
use std::os::fd::AsRawFd;

use bytes::{BufMut, BytesMut};

use super::recv::Received;
use super::{MAX_BATCH, MAX_GSO_SEGMENTS};

/// Room for the control messages of one datagram: a `UDP_SEGMENT`
/// (a `u16`) going out, a `UDP_GRO` (an `int`) coming in, with space to
/// spare so that the kernel never has to truncate them (`MSG_CTRUNC`).
const CMSG_ROOM: usize = 64;

/// A control-message buffer, aligned as `cmsghdr` needs (`size_t`).
#[derive(Clone, Copy)]
#[repr(C, align(8))]
struct Cmsg([u8; CMSG_ROOM]);

/// What one `sendmmsg` moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Moved {
    /// Datagrams the kernel took.
    pub(super) datagrams: usize,
    /// Of them, those sent as segments of a GSO run of two or more.
    pub(super) segmented: usize,
}

/// `UDP_GRO` on or off.
pub(super) fn set_gro(socket: &socket2::SockRef<'_>, on: bool) -> io::Result<()> {
    let value = libc::c_int::from(on);
    // SAFETY: the option value is an `int` that outlives the call, and
    // its length is given.
    let done = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_UDP,
            libc::UDP_GRO,
            std::ptr::from_ref(&value).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if done < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The errors with which a kernel or a device refuses a segmented send
/// it cannot do: `EIO` (no checksum offload), `EINVAL` (more segments
/// than `UDP_MAX_SEGMENTS`, or a kernel that does not know the option),
/// `ENOPROTOOPT`, `EOPNOTSUPP`. quinn-udp treats `EIO` the same way.
pub(super) fn gso_refused(err: &io::Error) -> bool {
    matches!(
        err.raw_os_error(),
        Some(libc::EIO | libc::EINVAL | libc::ENOPROTOOPT | libc::EOPNOTSUPP)
    )
}

/// One message of a `sendmmsg`: datagrams that lie back to back in the
/// send buffer, sent as one GSO run when there are two or more.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Run {
    /// Where its first datagram starts in the buffer.
    pub(super) from: usize,
    /// Where its last one ends.
    pub(super) end: usize,
    /// How many datagrams it holds.
    pub(super) datagrams: usize,
    /// The size of each but the last, which may be shorter.
    pub(super) segment: usize,
}

/// Cuts the datagrams that end at `ends` (the first starting at
/// `start`) into the runs of one `sendmmsg`, at most [`MAX_BATCH`]
/// runs: with `gso_run` (the most bytes a run may hold), each run is as
/// many datagrams of the first one's size as fit, plus at most one
/// shorter one to end it, as GSO requires; without it, each datagram
/// is a run of its own. Returns how many runs were written to `runs`.
pub(super) fn runs(
    start: usize,
    ends: &[usize],
    gso_run: Option<usize>,
    runs: &mut [Run; MAX_BATCH],
) -> usize {
    let mut n = 0;
    let mut from = start;
    let mut i = 0;
    while i < ends.len() && n < MAX_BATCH {
        let segment = ends[i] - from;
        let mut end = ends[i];
        let mut count = 1;
        i += 1;
        if let Some(max_run) = gso_run {
            while i < ends.len() && count < MAX_GSO_SEGMENTS {
                let len = ends[i] - end;
                if len > segment || ends[i] - from > max_run || len == 0 {
                    break;
                }
                end = ends[i];
                count += 1;
                i += 1;
                if len < segment {
                    // A shorter datagram can only end a run.
                    break;
                }
            }
        }
        runs[n] = Run {
            from,
            end,
            datagrams: count,
            segment,
        };
        from = end;
        n += 1;
    }
    n
}

/// Sends the datagrams that end at `ends` in `buf` (the first starts at
/// `start`, each next one where the one before ended) on a connected
/// socket in one `sendmmsg`, runs of equal-sized ones segmented by the
/// kernel when `gso_run` is given (see [`runs`]); returns what the
/// kernel took (at least one datagram), or `EWOULDBLOCK` when there
/// was room for none.
pub(super) fn sendmmsg(
    socket: &UdpSocket,
    buf: &[u8],
    start: usize,
    ends: &[usize],
    gso_run: Option<usize>,
) -> io::Result<Moved> {
    let mut plan = [Run::default(); MAX_BATCH];
    let n = runs(start, ends, gso_run, &mut plan);
    // SAFETY: all-zero `iovec`s, `mmsghdr`s and control buffers are
    // valid values (null pointers, zero lengths).
    let mut iovs: [libc::iovec; MAX_BATCH] = unsafe { zeroed() };
    let mut hdrs: [libc::mmsghdr; MAX_BATCH] = unsafe { zeroed() };
    let mut cmsgs = [Cmsg([0; CMSG_ROOM]); MAX_BATCH];
    for (((iov, hdr), cmsg), run) in iovs
        .iter_mut()
        .zip(hdrs.iter_mut())
        .zip(cmsgs.iter_mut())
        .zip(&plan[..n])
    {
        let bytes = &buf[run.from..run.end];
        // The kernel only reads through this pointer.
        iov.iov_base = bytes.as_ptr().cast_mut().cast();
        iov.iov_len = bytes.len();
        // A connected socket: no address.
        hdr.msg_hdr.msg_iov = iov;
        hdr.msg_hdr.msg_iovlen = 1;
        if run.datagrams > 1 {
            // SAFETY: the buffer is aligned for `cmsghdr` and holds
            // CMSG_SPACE(2) bytes; FIRSTHDR returns its start, and the
            // header and the `u16` after it are written within it.
            unsafe {
                hdr.msg_hdr.msg_control = cmsg.0.as_mut_ptr().cast();
                hdr.msg_hdr.msg_controllen = libc::CMSG_SPACE(size_of::<u16>() as _) as _;
                let c = libc::CMSG_FIRSTHDR(&hdr.msg_hdr);
                (*c).cmsg_level = libc::SOL_UDP;
                (*c).cmsg_type = libc::UDP_SEGMENT;
                (*c).cmsg_len = libc::CMSG_LEN(size_of::<u16>() as _) as _;
                // A segment is at most one datagram: under 64 KiB.
                libc::CMSG_DATA(c)
                    .cast::<u16>()
                    .write_unaligned(run.segment as u16);
            }
        }
    }
    // SAFETY: each header points at one iovec, which points into
    // `buf`, and at most at one control buffer; all of them outlive
    // the call, and `n` headers are initialised.
    let sent =
        unsafe { libc::sendmmsg(socket.as_raw_fd(), hdrs.as_mut_ptr(), n as libc::c_uint, 0) };
    if sent < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut moved = Moved {
        datagrams: 0,
        segmented: 0,
    };
    for run in &plan[..sent as usize] {
        moved.datagrams += run.datagrams;
        if run.datagrams > 1 {
            moved.segmented += run.datagrams;
        }
    }
    Ok(moved)
}

/// Receives up to `slots.len()` datagrams (or GRO runs of them) in one
/// `recvmmsg`, each into the spare capacity of its slot (which must
/// hold at least [`RECV_BUF_LEN`](crate::RECV_BUF_LEN) bytes, more than
/// any datagram or run), advancing the slot over what arrived; their
/// lengths, senders and segment sizes go to `got`. `EWOULDBLOCK` when
/// none was waiting.
pub(super) fn recvmmsg(
    socket: &UdpSocket,
    slots: &mut [BytesMut],
    got: &mut Vec<Received>,
    flags: libc::c_int,
) -> io::Result<()> {
    let n = slots.len().min(MAX_BATCH);
    // SAFETY: all-zero `iovec`s, `mmsghdr`s, `sockaddr_storage`s and
    // control buffers are valid values.
    let mut iovs: [libc::iovec; MAX_BATCH] = unsafe { zeroed() };
    let mut hdrs: [libc::mmsghdr; MAX_BATCH] = unsafe { zeroed() };
    let mut names: [libc::sockaddr_storage; MAX_BATCH] = unsafe { zeroed() };
    let mut cmsgs = [Cmsg([0; CMSG_ROOM]); MAX_BATCH];
    for ((((iov, hdr), name), cmsg), slot) in iovs
        .iter_mut()
        .zip(hdrs.iter_mut())
        .zip(names.iter_mut())
        .zip(cmsgs.iter_mut())
        .zip(slots.iter_mut())
    {
        debug_assert!(slot.capacity() - slot.len() >= crate::RECV_BUF_LEN);
        let spare = slot.spare_capacity_mut();
        iov.iov_base = spare.as_mut_ptr().cast();
        iov.iov_len = spare.len();
        hdr.msg_hdr.msg_iov = iov;
        hdr.msg_hdr.msg_iovlen = 1;
        hdr.msg_hdr.msg_name = std::ptr::from_mut(name).cast();
        hdr.msg_hdr.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        hdr.msg_hdr.msg_control = cmsg.0.as_mut_ptr().cast();
        hdr.msg_hdr.msg_controllen = CMSG_ROOM as _;
    }
    // SAFETY: each header points at one iovec over its slot's spare
    // capacity, at one address buffer and at one control buffer, all
    // of which outlive the call; the kernel writes at most `iov_len`
    // bytes, `msg_namelen` address bytes and `msg_controllen` control
    // bytes. A null timeout: a non-blocking socket returns at once, and a
    // blocking one (the blocking engine's) is given MSG_WAITFORONE, so it
    // waits for the first datagram only (bounded by SO_RCVTIMEO).
    let received = unsafe {
        libc::recvmmsg(
            socket.as_raw_fd(),
            hdrs.as_mut_ptr(),
            n as libc::c_uint,
            flags,
            std::ptr::null_mut(),
        )
    };
    if received < 0 {
        return Err(io::Error::last_os_error());
    }
    for ((hdr, name), slot) in hdrs
        .iter()
        .zip(&names)
        .zip(slots.iter_mut())
        .take(received as usize)
    {
        let len = hdr.msg_len as usize;
        // SAFETY: the kernel wrote `len` bytes at the start of the
        // spare capacity this slot's iovec covered, so they are
        // initialised.
        unsafe { slot.advance_mut(len) };
        let from = socket_addr(name, hdr.msg_hdr.msg_namelen)
            .ok_or_else(|| io::Error::other("a datagram from a non-IP address"))?;
        got.push(Received {
            len,
            from,
            segment: gro_segment(&hdr.msg_hdr).filter(|&segment| segment < len),
        });
    }
    Ok(())
}

/// The segment size of a coalesced receive: the `UDP_GRO` control
/// message, when the kernel wrote one.
fn gro_segment(msg: &libc::msghdr) -> Option<usize> {
    // SAFETY: `msg` is a header the kernel filled: its control pointer
    // and the length it wrote back describe initialised control
    // messages within our buffer, which FIRSTHDR and NXTHDR walk
    // without leaving it; the data of a `UDP_GRO` message is an `int`.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(msg);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_UDP && (*c).cmsg_type == libc::UDP_GRO {
                let segment = libc::CMSG_DATA(c).cast::<libc::c_int>().read_unaligned();
                return usize::try_from(segment).ok().filter(|&s| s > 0);
            }
            c = libc::CMSG_NXTHDR(msg, c);
        }
    }
    None
}

/// The IP address and port in a `sockaddr_storage` the kernel filled.
fn socket_addr(name: &libc::sockaddr_storage, len: libc::socklen_t) -> Option<SocketAddr> {
    let len = len as usize;
    match libc::c_int::from(name.ss_family) {
        libc::AF_INET if len >= size_of::<libc::sockaddr_in>() => {
            // SAFETY: `sockaddr_storage` is large and aligned enough for
            // every address type, and the family says this is one.
            let sin = unsafe { &*std::ptr::from_ref(name).cast::<libc::sockaddr_in>() };
            Some(SocketAddr::V4(SocketAddrV4::new(
                Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr)),
                u16::from_be(sin.sin_port),
            )))
        }
        libc::AF_INET6 if len >= size_of::<libc::sockaddr_in6>() => {
            // SAFETY: as above.
            let sin6 = unsafe { &*std::ptr::from_ref(name).cast::<libc::sockaddr_in6>() };
            Some(SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::from(sin6.sin6_addr.s6_addr),
                u16::from_be(sin6.sin6_port),
                sin6.sin6_flowinfo,
                sin6.sin6_scope_id,
            )))
        }
        _ => None,
    }
}
