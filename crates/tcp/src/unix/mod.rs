//! Unix domain stream sockets (`AF_UNIX`, `SOCK_STREAM`): the same byte
//! stream as TCP, between two processes on one machine, addressed by a
//! file's path (or, on Linux, a name in the abstract namespace) instead of
//! an IP address and port; the [`Stream`](crate::Stream) ([`UnixStream`])
//! and [`Accept`] a framed
//! [`Connection`](crate::Connection) needs of it, and the listener's
//! socket file.
//!
//! The file is the access control: whoever may open it for writing may
//! connect. So the listener creates it owner-only unless told otherwise,
//! with the mode set on the socket before `bind` (Linux gives the new file
//! the socket's mode less the umask), never widened by a race between
//! `bind` and a `chmod`. A file left by a listener that died is replaced;
//! one a live listener still answers on is not ([`bind`]). The file is
//! removed when the listener goes ([`SocketFile`]), unless someone else
//! has put another file there since.
//!
//! The kernel says who the peer is: `SO_PEERCRED` gives the pid, uid and
//! gid of the process that connected ([`Cred`]), which a listener can log
//! and check.

use std::fmt;
use std::io;
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::task::{Context, Poll, ready};

use socket2::{Domain, SockAddr, Socket, Type};
use tokio::net::UnixListener;

use crate::{Accept, PeerAddr};

mod socket_file;
mod stream;

pub use socket_file::{BindError, SocketFile, bind, bind_socket};
pub use stream::{UnixReader, UnixStream, UnixWriter};

/// The bytes of `sun_path` in a `sockaddr_un` on Linux: a path holds one
/// less (it ends in a NUL), and so does an abstract name (it starts with
/// one).
pub const SUN_PATH_LEN: usize = 108;

/// The send buffer (`SO_SNDBUF`) each Unix stream asks for: 1 MiB, which
/// Linux doubles for its bookkeeping and caps at `net.core.wmem_max` (4 MiB
/// by default). A Unix stream has no window: what it holds in flight is
/// the sender's send buffer, 208 KiB by default, so a file's 1 MiB chunk
/// left in five writes with a wait for the receiver between each (about
/// 5,000 context switches a GiB a side, TCP's loopback 700). A limit, not
/// an allocation: an idle or chatty connection costs no more.
pub const SEND_BUFFER: usize = 1 << 20;

/// The mode a listener's socket file gets unless asked otherwise:
/// read and write for its owner alone, since the file is what decides who
/// may connect.
pub const DEFAULT_MODE: u32 = 0o600;

/// Where a Unix socket is.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum UnixPath {
    /// A file in the file system.
    File(PathBuf),
    /// A name in Linux's abstract namespace (`@name`): no file, gone with
    /// the last socket bound to it, and open to every process in the same
    /// network namespace (no file mode guards it).
    Abstract(Vec<u8>),
}

/// Why a Unix socket address cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnixPathError {
    /// Nothing given.
    #[error("a Unix socket needs a path (or @name for the abstract namespace)")]
    Empty,
    /// More than `sun_path` holds.
    #[error(
        "the Unix socket address {shown} is {len} bytes; a socket address holds at most {max} \
         (sun_path is {SUN_PATH_LEN} bytes, one of them a NUL): use a shorter path, or a \
         relative one from a nearer directory"
    )]
    TooLong {
        /// The address as given.
        shown: String,
        /// Its length in bytes (an abstract name's without the `@`).
        len: usize,
        /// The most it may have.
        max: usize,
    },
}

impl UnixPath {
    /// The address a user wrote: `@name` for the abstract namespace, else
    /// a path.
    ///
    /// # Errors
    ///
    /// [`UnixPathError`] for an empty or too long address.
    pub fn parse(s: &str) -> Result<Self, UnixPathError> {
        let path = match s.strip_prefix('@') {
            Some(name) => Self::Abstract(name.as_bytes().to_vec()),
            None if s.is_empty() => return Err(UnixPathError::Empty),
            None => Self::File(PathBuf::from(s)),
        };
        let len = match &path {
            Self::File(file) => file.as_os_str().len(),
            Self::Abstract(name) => name.len(),
        };
        if len > SUN_PATH_LEN - 1 {
            return Err(UnixPathError::TooLong {
                shown: s.to_owned(),
                len,
                max: SUN_PATH_LEN - 1,
            });
        }
        Ok(path)
    }

    /// The socket address to bind or connect to.
    ///
    /// # Errors
    ///
    /// `InvalidInput` for an address `sun_path` cannot hold.
    pub fn sock_addr(&self) -> io::Result<SockAddr> {
        match self {
            Self::File(path) => SockAddr::unix(path),
            Self::Abstract(name) => {
                let mut bytes = Vec::with_capacity(name.len() + 1);
                bytes.push(0);
                bytes.extend_from_slice(name);
                SockAddr::unix(std::ffi::OsStr::from_bytes(&bytes))
            }
        }
    }

    /// The file, for an address in the file system.
    pub fn file(&self) -> Option<&Path> {
        match self {
            Self::File(path) => Some(path),
            Self::Abstract(_) => None,
        }
    }
}

impl fmt::Display for UnixPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // A relative path as `./PATH`: a peer's address is any name
            // it bound, and bare it could read as an abstract name
            // (`@x`) or as another peer's `pid 1 uid 0` (audit, round
            // five).
            Self::File(path) if path.is_relative() => {
                f.write_str("./")?;
                write_path(f, path.as_os_str().as_bytes())
            }
            Self::File(path) => write_path(f, path.as_os_str().as_bytes()),
            Self::Abstract(name) => write!(f, "@{}", name.escape_ascii()),
        }
    }
}

/// A file's path as text for one line of a log or a terminal: a peer's
/// address is the path it bound its own socket to, any bytes but `/` and
/// NUL, so control characters (an escape sequence, a line break) and the
/// characters that reorder a line unseen (the bidirectional overrides and
/// isolates, the line and paragraph separators, as msg-net's `text`
/// escapes them in bodies) are shown as `\xNN`, as bytes that are not
/// UTF-8 are; the rest as it is.
fn write_path(f: &mut fmt::Formatter<'_>, bytes: &[u8]) -> fmt::Result {
    let reorders = |c| matches!(c, '\u{2028}'..='\u{202e}' | '\u{2066}'..='\u{2069}');
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            if c.is_control() || reorders(c) {
                for b in c.encode_utf8(&mut [0; 4]).bytes() {
                    write!(f, "\\x{b:02x}")?;
                }
            } else {
                write!(f, "{c}")?;
            }
        }
        for b in chunk.invalid() {
            write!(f, "\\x{b:02x}")?;
        }
    }
    Ok(())
}

/// Who the process at the other end of a Unix socket is, as the kernel
/// recorded it when it connected (`SO_PEERCRED`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cred {
    /// Its process id, where the system gives it.
    pub pid: Option<i32>,
    /// Its effective user id.
    pub uid: u32,
    /// Its effective group id.
    pub gid: u32,
}

/// The peer of a Unix stream: the address it is bound to, if any (a
/// client usually is not), and who it is.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UnixPeer {
    /// Its address: for a client, the listener's; for a listener, the
    /// client's, which is usually unnamed.
    pub path: Option<UnixPath>,
    /// Who it is.
    pub cred: Option<Cred>,
}

impl fmt::Display for UnixPeer {
    /// The path where there is one; else the process, `pid 42 uid 1000`,
    /// which tells two clients apart as a port does over TCP.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.path, &self.cred) {
            (Some(path), _) => write!(f, "{path}"),
            (None, Some(Cred { pid, uid, .. })) => match pid {
                Some(pid) => write!(f, "pid {pid} uid {uid}"),
                None => write!(f, "uid {uid}"),
            },
            (None, None) => f.write_str("unnamed"),
        }
    }
}

/// Who is at the other end of a connected Unix socket, tokio's or std's
/// (`SO_PEERCRED`).
pub fn peer_cred(socket: &impl AsFd) -> Option<Cred> {
    use nix::sys::socket::{getsockopt, sockopt::PeerCredentials};
    let cred = getsockopt(socket, PeerCredentials).ok()?;
    Some(Cred {
        pid: Some(cred.pid()),
        uid: cred.uid(),
        gid: cred.gid(),
    })
}

impl Accept for UnixListener {
    type Stream = UnixStream;

    fn poll_accept(&self, cx: &mut Context<'_>) -> Poll<io::Result<(UnixStream, PeerAddr)>> {
        let (accepted, _) = ready!(Self::poll_accept(self, cx))?;
        // Off tokio's registration (both events) and onto msg's own.
        let stream = UnixStream::from_std(accepted.into_std()?)?;
        let peer = PeerAddr::Unix(stream.peer());
        Poll::Ready(Ok((stream, peer)))
    }
}

/// Connects to `path`, blocking: for the blocking engine.
///
/// # Errors
///
/// The operating system's.
pub fn connect_std(path: &UnixPath) -> io::Result<std::os::unix::net::UnixStream> {
    let socket = Socket::new(Domain::UNIX, Type::STREAM, None)?;
    socket.connect(&path.sock_addr()?)?;
    Ok(socket.into())
}

/// Connects to `path`.
///
/// # Errors
///
/// The operating system's.
pub async fn connect(path: &UnixPath) -> io::Result<UnixStream> {
    // A local connect never waits for the listener: the kernel queues it
    // at once, or refuses it at once (EAGAIN with a full backlog, as
    // tokio's own connect does), so nothing here needs to be async.
    let socket = Socket::new(Domain::UNIX, Type::STREAM, None)?;
    socket.set_nonblocking(true)?;
    socket.connect(&path.sock_addr()?)?;
    UnixStream::from_std(socket.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A peer's path is whatever it bound its socket to: its control
    /// characters reach no terminal, its other characters show as they are.
    #[test]
    fn a_path_shows_its_control_characters_escaped() {
        let bytes = b"/tmp/\xc3\xbc\x1b[2J\nx\xff.sock";
        let path = UnixPath::File(std::ffi::OsStr::from_bytes(bytes).into());
        assert_eq!(path.to_string(), r"/tmp/ü\x1b[2J\x0ax\xff.sock");
        let peer = UnixPeer {
            path: Some(path),
            cred: None,
        };
        assert_eq!(peer.to_string(), r"/tmp/ü\x1b[2J\x0ax\xff.sock");
        assert_eq!(
            UnixPath::File("/tmp/plain.sock".into()).to_string(),
            "/tmp/plain.sock"
        );
        // What reorders the line unseen, too (audit, round four).
        let hidden = UnixPath::File("/tmp/Z\u{202e}kcos.\u{2066}x\u{2028}".into());
        assert_eq!(
            hidden.to_string(),
            r"/tmp/Z\xe2\x80\xaekcos.\xe2\x81\xa6x\xe2\x80\xa8"
        );
    }

    /// Audit, round five: a client bound its socket to a file named `pid 1
    /// uid 12345` (or `@x`), and the listener's log and JSON showed it as
    /// a process (or an abstract name). A relative path shows as one.
    #[test]
    fn a_relative_path_cannot_pass_for_a_process_or_an_abstract_name() {
        let shown = |name: &str| UnixPath::File(name.into()).to_string();
        assert_eq!(shown("pid 1 uid 12345"), "./pid 1 uid 12345");
        assert_eq!(shown("@x"), "./@x");
        assert_eq!(shown("dir/x.sock"), "./dir/x.sock");
        assert_eq!(shown("/tmp/x.sock"), "/tmp/x.sock");
    }

    #[test]
    fn addresses_are_paths_or_abstract_names_within_sun_path() {
        assert_eq!(
            UnixPath::parse("/tmp/x.sock"),
            Ok(UnixPath::File("/tmp/x.sock".into()))
        );
        assert_eq!(
            UnixPath::parse("@msg"),
            Ok(UnixPath::Abstract(b"msg".to_vec()))
        );
        assert_eq!(UnixPath::parse("@msg").unwrap().to_string(), "@msg");
        assert_eq!(UnixPath::parse(""), Err(UnixPathError::Empty));
        assert!(UnixPath::parse(&"a".repeat(107)).is_ok());
        let err = UnixPath::parse(&"a".repeat(108)).unwrap_err();
        assert!(err.to_string().contains("is 108 bytes"), "{err}");
        assert!(err.to_string().contains("at most 107"), "{err}");
        assert!(UnixPath::parse(&format!("@{}", "a".repeat(108))).is_err());
    }

    #[tokio::test]
    async fn the_listener_sees_who_connected() {
        let name = format!("@msg-test-{}", std::process::id());
        let path = UnixPath::parse(&name).unwrap();
        let (listener, guard) = bind(&path, DEFAULT_MODE).unwrap();
        assert!(guard.is_none(), "an abstract name has no file");
        listener.set_nonblocking(true).unwrap();
        let listener = UnixListener::from_std(listener).unwrap();
        let client = connect(&path).await.unwrap();
        let (_stream, peer) = std::future::poll_fn(|cx| Accept::poll_accept(&listener, cx))
            .await
            .unwrap();
        let cred = peer.unix().and_then(|peer| peer.cred).unwrap();
        assert_eq!(cred.pid, Some(i32::try_from(std::process::id()).unwrap()));
        assert_eq!(
            peer.to_string(),
            format!("pid {} uid {}", std::process::id(), cred.uid)
        );
        drop(client);
    }
}
