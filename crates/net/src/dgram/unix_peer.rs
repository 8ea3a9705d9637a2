//! What both engines' Unix datagram sockets share: a peer's address
//! ([`UnixAddr`]), a datagram received whole or known to be too large, the
//! largest one a socket sends, and an answer that never follows a link.

use super::*;

/// The address of a Unix datagram socket's peer: a path, an abstract
/// name, or none (a sender that did not bind, which cannot be answered).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct UnixAddr(pub(super) SockAddr);

impl UnixAddr {
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
            cred: None,
        })
    }
}

/// The largest Unix datagram msg receives: more than a sender with
/// Linux's largest default send buffer (`net.core.wmem_max`, doubled)
/// sends.
pub(crate) const UNIX_RECV_LEN: usize = 512 * 1024;

/// One datagram into `spare` with `flags`: the bytes written, and the
/// datagram's real length (`MSG_TRUNC`: more than was written when it did
/// not fit, which the caller then drops) and sender.
pub(super) fn recv_whole(
    socket: &SockRef<'_>,
    spare: &mut [std::mem::MaybeUninit<u8>],
    flags: i32,
) -> io::Result<(usize, (usize, SockAddr))> {
    let room = spare.len();
    let (len, from) = socket.recv_from_with_flags(spare, flags | libc::MSG_TRUNC)?;
    Ok((len.min(room), (len, from)))
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
