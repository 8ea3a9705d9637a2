//! What both engines' Unix datagram sockets share: a peer's address
//! ([`UnixAddr`]), a datagram received whole or known to be too large,
//! who sent it ([`Senders`]), the largest one a socket sends, and an
//! answer that never follows a link.

use msg_tcp::unix::Cred;

use super::*;

/// The address of a Unix datagram socket's peer: a path, an abstract
/// name, or none (a sender that did not bind, which cannot be answered);
/// and who sent the datagram, where the socket asked ([`Senders`]).
///
/// Two datagrams from one address are from one peer whoever the kernel
/// says sent each (a socket may be shared by the processes it was handed
/// to), so the address alone is compared and hashed.
#[derive(Debug, Clone)]
pub(crate) struct UnixAddr(pub(super) SockAddr, pub(super) Option<Cred>);

impl PartialEq for UnixAddr {
    fn eq(&self, other: &Self) -> bool {
        self.0 == other.0
    }
}

impl Eq for UnixAddr {}

impl Hash for UnixAddr {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.hash(state);
    }
}

impl UnixAddr {
    /// An address with no sender known.
    pub(super) fn of(addr: SockAddr) -> Self {
        Self(addr, None)
    }

    /// The path or name, as msg's addresses say it.
    fn path(&self) -> Option<UnixPath> {
        if let Some(path) = self.0.as_pathname() {
            return Some(UnixPath::File(path.to_owned()));
        }
        self.0
            .as_abstract_namespace()
            .map(|name| UnixPath::Abstract(name.to_vec()))
    }
}

impl fmt::Display for UnixAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.path() {
            Some(path) => write!(f, "{path}"),
            None => f.write_str("unnamed"),
        }
    }
}

impl From<UnixAddr> for PeerAddr {
    fn from(addr: UnixAddr) -> Self {
        Self::Unix(UnixPeer {
            path: addr.path(),
            cred: addr.1,
        })
    }
}

/// The largest Unix datagram msg receives: more than a sender with
/// Linux's largest default send buffer (`net.core.wmem_max`, doubled)
/// sends.
pub(crate) const UNIX_RECV_LEN: usize = 512 * 1024;

/// One datagram into `spare` with `flags`: the bytes written, and the
/// datagram's real length (`MSG_TRUNC`: more than was written when it did
/// not fit, which the caller then drops) and sender; who sent it too,
/// where `senders` asks (the socket then has `SO_PASSCRED` set).
pub(super) fn recv_whole(
    socket: &SockRef<'_>,
    spare: &mut [std::mem::MaybeUninit<u8>],
    flags: i32,
    senders: Option<&Senders>,
) -> io::Result<(usize, (usize, UnixAddr))> {
    let room = spare.len();
    let (len, from) = match senders {
        None => {
            let (len, from) = socket.recv_from_with_flags(spare, flags | libc::MSG_TRUNC)?;
            (len, UnixAddr::of(from))
        }
        Some(_) => recv_with_sender(socket, spare, flags | libc::MSG_TRUNC)?,
    };
    Ok((len.min(room), (len, from)))
}

/// `recvmsg` of one datagram and the control message `SO_PASSCRED` adds
/// to it: `SCM_CREDENTIALS`, the pid, uid and gid of the process that
/// sent it, which the kernel fills in (a sender may name only its own,
/// unless privileged). A datagram has no connection to ask `SO_PEERCRED`
/// of; this is how a Unix datagram's sender is known.
fn recv_with_sender(
    socket: &SockRef<'_>,
    spare: &mut [std::mem::MaybeUninit<u8>],
    flags: i32,
) -> io::Result<(usize, UnixAddr)> {
    use std::os::fd::AsRawFd;
    // Room for one `SCM_CREDENTIALS` (a `ucred`, 12 bytes, after its
    // header), 8-byte aligned as the kernel writes control messages.
    let mut control = [0u64; 8];
    let mut iov = libc::iovec {
        iov_base: spare.as_mut_ptr().cast(),
        iov_len: spare.len(),
    };
    // SAFETY: `try_init` hands over zeroed storage for an address and its
    // size; `recvmsg` writes at most that much there, at most `iov_len`
    // bytes into `spare` and at most `msg_controllen` into `control`, and
    // says how much of each it wrote.
    let ((len, control_len), addr) = unsafe {
        SockAddr::try_init(|storage, storage_len| {
            // SAFETY: all-zero is a valid `msghdr`.
            let mut hdr: libc::msghdr = std::mem::zeroed();
            hdr.msg_name = storage.cast();
            hdr.msg_namelen = *storage_len;
            hdr.msg_iov = &raw mut iov;
            hdr.msg_iovlen = 1;
            hdr.msg_control = control.as_mut_ptr().cast();
            hdr.msg_controllen = size_of_val(&control) as _;
            let got = libc::recvmsg(socket.as_raw_fd(), &raw mut hdr, flags);
            if got < 0 {
                return Err(io::Error::last_os_error());
            }
            *storage_len = hdr.msg_namelen;
            Ok((got as usize, hdr.msg_controllen as usize))
        })?
    };
    // SAFETY: the kernel wrote the first `control_len` bytes of `control`.
    let cred = unsafe { credentials(control.as_ptr().cast(), control_len) };
    Ok((len, UnixAddr(addr, cred)))
}

/// The `SCM_CREDENTIALS` among the control messages at `control`, `len`
/// bytes the kernel wrote.
///
/// # Safety
///
/// `control` holds `len` initialised bytes, aligned for a `cmsghdr`.
unsafe fn credentials(control: *const u8, len: usize) -> Option<Cred> {
    // A header for the walk: the control bytes are all CMSG_* look at.
    // SAFETY: all-zero is a valid `msghdr`.
    let mut hdr: libc::msghdr = unsafe { std::mem::zeroed() };
    hdr.msg_control = control.cast_mut().cast();
    hdr.msg_controllen = len as _;
    // SAFETY: `hdr` describes `len` bytes at `control`, and each step
    // stays within them (CMSG_NXTHDR checks against msg_controllen).
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(&hdr);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_CREDENTIALS
            {
                let ucred = libc::CMSG_DATA(cmsg).cast::<libc::ucred>().read_unaligned();
                return Some(Cred {
                    pid: Some(ucred.pid),
                    uid: ucred.uid,
                    gid: ucred.gid,
                });
            }
            cmsg = libc::CMSG_NXTHDR(&hdr, cmsg);
        }
    }
    None
}

/// A Unix datagram socket that asks the kernel who sent each datagram
/// (`SO_PASSCRED`): a listener's, for its log and `--json`, and to take
/// datagrams from some users only. A Unix stream's peer is known once, at
/// `connect` (`SO_PEERCRED`); a datagram has no connection, so each one
/// carries its sender. The bench's listeners do without (a control message
/// a datagram costs).
#[derive(Debug)]
pub(crate) struct Senders {
    /// Take datagrams from these users only (empty: from everyone the
    /// socket file's mode lets send). A boxed slice, not a `Vec`: every
    /// Unix datagram socket holds a place for this, a client's too.
    allow_uids: Box<[u32]>,
}

impl Senders {
    /// Sets `SO_PASSCRED` on `socket`, and the users to take datagrams
    /// from.
    pub(super) fn ask(socket: &SockRef<'_>, allow_uids: &[u32]) -> io::Result<Self> {
        nix::sys::socket::setsockopt(&**socket, nix::sys::socket::sockopt::PassCred, &true)?;
        Ok(Self {
            allow_uids: allow_uids.into(),
        })
    }

    /// Whether a datagram from `peer` is taken: from an allowed user, or
    /// anyone where none are named. One refused is dropped unread and
    /// said (at most once a second): a datagram has no connection to
    /// refuse, and msg's datagram listeners answer nothing a peer could
    /// not have asked for.
    pub(super) fn admit(&self, peer: &UnixAddr) -> bool {
        let Some(refused) = crate::serve::UidRefused::by(&self.allow_uids, peer.1) else {
            return true;
        };
        static LIMIT: crate::log::RateLimited = crate::log::RateLimited::new();
        LIMIT.warn(|suppressed| {
            tracing::warn!(%peer, suppressed, "dropped a datagram: {refused}");
        });
        false
    }
}

/// The largest datagram `socket` sends: its send buffer less the 32 bytes
/// the kernel keeps for each.
pub(super) fn max_datagram(socket: &Socket) -> io::Result<usize> {
    Ok(socket.send_buffer_size()?.saturating_sub(32))
}

/// Sends an answer, `bytes`, to the peer `to` with `flags`.
///
/// # Why a path is not answered by its name
///
/// A peer's address is the path it bound, and a `sendto` to a path
/// follows links with the listener's rights. A local user could bind a
/// socket in a folder of its own, put a link to another socket (a system
/// logger's, say) in its place, and send: the answer went to a socket the
/// user itself may not write to, with the listener's words in it (audit,
/// round four). So the path is opened first without following a link
/// (`O_PATH`), must be a socket, and the answer goes to that very socket
/// through `/proc/self/fd`. An abstract name (as msg's own clients bind)
/// has no file and is answered as it is; so is one where there is no
/// `O_PATH`, after a look that it is no link.
pub(super) fn send_answer(
    socket: &SockRef<'_>,
    bytes: &[u8],
    to: &UnixAddr,
    flags: i32,
) -> io::Result<usize> {
    let Some(path) = to.0.as_pathname() else {
        return socket.send_to_with_flags(bytes, &to.0, flags);
    };
    // The peer's path as its address shows it: escaped, since the peer
    // chose its bytes.
    let not_a_socket = || {
        io::Error::other(format!(
            "{to} is not a socket (a link put in its place?): the answer was dropped"
        ))
    };
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        use std::os::fd::AsRawFd;
        use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
        let held = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_PATH | libc::O_NOFOLLOW)
            .open(path)?;
        if !held.metadata()?.file_type().is_socket() {
            return Err(not_a_socket());
        }
        let via = SockAddr::unix(format!("/proc/self/fd/{}", held.as_raw_fd()))?;
        socket.send_to_with_flags(bytes, &via, flags)
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    {
        use std::os::unix::fs::FileTypeExt;
        if !std::fs::symlink_metadata(path)?.file_type().is_socket() {
            return Err(not_a_socket());
        }
        socket.send_to_with_flags(bytes, &to.0, flags)
    }
}

/// An answer's send error, worded for a full queue.
pub(super) fn answer_dropped(err: io::Error) -> io::Error {
    if err.kind() == io::ErrorKind::WouldBlock {
        io::Error::new(
            io::ErrorKind::WouldBlock,
            "no room for it (its receive queue is full, or this socket's send buffer, held by \
             answers a peer has not read): the answer was dropped",
        )
    } else {
        err
    }
}

/// Says that a datagram of `len` bytes from `peer` was dropped: over the
/// largest msg receives.
pub(super) fn too_large(len: usize, peer: &impl fmt::Display) {
    // At most once a second, from every socket: a peer can send these as
    // fast as it likes.
    static LIMIT: crate::log::RateLimited = crate::log::RateLimited::new();
    LIMIT.warn(|suppressed| {
        tracing::warn!(%peer, suppressed, "dropped a {len}-byte datagram: msg receives Unix datagrams of at most {UNIX_RECV_LEN} bytes");
    });
}
