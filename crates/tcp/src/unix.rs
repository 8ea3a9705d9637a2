//! Unix domain stream sockets (`AF_UNIX`, `SOCK_STREAM`): the same byte
//! stream as TCP, between two processes on one machine, addressed by a
//! file's path (or, on Linux, a name in the abstract namespace) instead of
//! an IP address and port; the [`Stream`] and [`Accept`] a framed
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
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::task::{Context, Poll};

use socket2::{Domain, SockAddr, SockRef, Socket, Type};
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{UnixListener, UnixStream};
use tracing::{debug, warn};

use crate::{Accept, Options, PeerAddr, Stream, tcp::LISTEN_BACKLOG};

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
            Self::File(path) => write!(f, "{}", path.display()),
            Self::Abstract(name) => write!(f, "@{}", name.escape_ascii()),
        }
    }
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

/// The peer of `stream`, as the kernel reports it.
fn peer_of(stream: &UnixStream) -> UnixPeer {
    let path = stream
        .peer_addr()
        .ok()
        .and_then(|addr| addr.as_pathname().map(|p| UnixPath::File(p.to_owned())));
    UnixPeer {
        path,
        cred: peer_cred(stream),
    }
}

impl Stream for UnixStream {
    type Reader = OwnedReadHalf;
    type Writer = OwnedWriteHalf;

    /// A Unix stream has neither Nagle's algorithm nor keepalive: every
    /// write is handed to the peer's queue at once, and a peer that dies
    /// is seen at once.
    fn apply(&self, _options: &Options) -> io::Result<()> {
        // Best effort: a system that caps it lower keeps its own size.
        let _ = SockRef::from(self).set_send_buffer_size(SEND_BUFFER);
        Ok(())
    }

    fn peer_addr(&self) -> io::Result<PeerAddr> {
        Ok(PeerAddr::Unix(peer_of(self)))
    }

    fn into_split(self) -> (OwnedReadHalf, OwnedWriteHalf) {
        Self::into_split(self)
    }

    fn input_waiting(&self) -> bool {
        crate::stream::input_waiting(SockRef::from(self))
    }
}

impl Accept for UnixListener {
    type Stream = UnixStream;

    fn poll_accept(&self, cx: &mut Context<'_>) -> Poll<io::Result<(UnixStream, PeerAddr)>> {
        Self::poll_accept(self, cx).map_ok(|(stream, _)| {
            let peer = PeerAddr::Unix(peer_of(&stream));
            (stream, peer)
        })
    }
}

/// A listener's socket file, removed when this is dropped, unless another
/// file has taken its place (a second listener that replaced it as
/// stale, say): its device and inode are checked first.
#[derive(Debug)]
pub struct SocketFile {
    path: PathBuf,
    dev: u64,
    ino: u64,
}

impl SocketFile {
    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for SocketFile {
    fn drop(&mut self) {
        let ours = std::fs::symlink_metadata(&self.path)
            .is_ok_and(|meta| meta.dev() == self.dev && meta.ino() == self.ino);
        if ours {
            if let Err(err) = std::fs::remove_file(&self.path) {
                warn!(
                    "cannot remove the socket file {}: {err}",
                    self.path.display()
                );
            }
        }
    }
}

/// Why a Unix listener cannot start.
#[derive(Debug, thiserror::Error)]
pub enum BindError {
    /// A live listener answers on the file.
    #[error(
        "{} is in use: another process listens on it (remove it only once that process is gone)",
        .0.display()
    )]
    InUse(PathBuf),
    /// Something that is not a socket is there.
    #[error("{} exists and is not a socket: not replacing it", .0.display())]
    NotASocket(PathBuf),
    /// The operating system refused.
    #[error("cannot listen on {path}")]
    Io {
        /// The address.
        path: UnixPath,
        /// Why.
        source: io::Error,
    },
}

/// Binds and listens on `path` with a backlog of [`LISTEN_BACKLOG`]; a
/// file in the file system gets exactly `mode` (see the module's docs)
/// and is removed when the returned [`SocketFile`] is dropped. The socket
/// is in blocking mode, as std's is; the caller makes it non-blocking for
/// tokio.
///
/// A socket file already there is replaced when nobody answers on it (a
/// listener that died without removing it), and refused when somebody
/// does; anything else there is never touched.
///
/// # Errors
///
/// [`BindError`].
pub fn bind(
    path: &UnixPath,
    mode: u32,
) -> Result<(std::os::unix::net::UnixListener, Option<SocketFile>), BindError> {
    let (socket, file) = bind_socket(path, mode, Type::STREAM)?;
    Ok((socket.into(), file))
}

/// [`bind`] for a socket of any type (`SOCK_SEQPACKET` too): the socket,
/// listening, and its file.
///
/// # Errors
///
/// [`BindError`].
pub fn bind_socket(
    path: &UnixPath,
    mode: u32,
    ty: Type,
) -> Result<(Socket, Option<SocketFile>), BindError> {
    let io = |source| BindError::Io {
        path: path.clone(),
        source,
    };
    let socket = Socket::new(Domain::UNIX, ty, None).map_err(io)?;
    let Some(file) = path.file() else {
        let listen = || {
            socket.bind(&path.sock_addr()?)?;
            listen_if_connected(&socket, ty)
        };
        listen().map_err(io)?;
        return Ok((socket, None));
    };
    clear_stale(file, ty)?;
    // Linux creates the file with the socket's own mode less the umask:
    // set it before bind, so that the file never exists with a wider one
    // (fchmod, through a File, which is just the descriptor).
    let fd = std::fs::File::from(OwnedFd::from(socket));
    fd.set_permissions(std::fs::Permissions::from_mode(mode))
        .map_err(io)?;
    let socket = Socket::from(OwnedFd::from(fd));
    let listen = || {
        socket.bind(&path.sock_addr()?)?;
        let meta = std::fs::symlink_metadata(file)?;
        let guard = SocketFile {
            path: file.to_owned(),
            dev: meta.dev(),
            ino: meta.ino(),
        };
        // The umask may have taken bits that were asked for: give them
        // back (only ever what was asked).
        if meta.permissions().mode() & 0o7777 != mode {
            std::fs::set_permissions(file, std::fs::Permissions::from_mode(mode))?;
        }
        listen_if_connected(&socket, ty)?;
        Ok(guard)
    };
    let guard = listen().map_err(io)?;
    Ok((socket, Some(guard)))
}

/// Listens, for a type with connections (a datagram socket is only bound).
fn listen_if_connected(socket: &Socket, ty: Type) -> io::Result<()> {
    if ty == Type::DGRAM {
        return Ok(());
    }
    socket.listen(LISTEN_BACKLOG)
}

/// Removes a socket file nobody listens on; refuses a live one and
/// anything that is not a socket.
fn clear_stale(file: &Path, ty: Type) -> Result<(), BindError> {
    let meta = match std::fs::symlink_metadata(file) {
        Ok(meta) => meta,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(source) => {
            return Err(BindError::Io {
                path: UnixPath::File(file.to_owned()),
                source,
            });
        }
    };
    if !meta.file_type().is_socket() {
        return Err(BindError::NotASocket(file.to_owned()));
    }
    // A connect of the listener's own type: one of another type is refused
    // (EPROTOTYPE) whether or not anyone listens.
    let probe =
        Socket::new(Domain::UNIX, ty, None).and_then(|probe| probe.connect(&SockAddr::unix(file)?));
    match probe {
        Ok(_) => Err(BindError::InUse(file.to_owned())),
        Err(err) if err.kind() == io::ErrorKind::ConnectionRefused => {
            debug!("replacing the stale socket file {}", file.display());
            match std::fs::remove_file(file) {
                Err(err) if err.kind() != io::ErrorKind::NotFound => Err(BindError::Io {
                    path: UnixPath::File(file.to_owned()),
                    source: err,
                }),
                _ => Ok(()),
            }
        }
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(BindError::Io {
            path: UnixPath::File(file.to_owned()),
            source,
        }),
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

    #[test]
    fn the_socket_file_is_owner_only_and_goes_with_the_listener() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("s");
        let path = UnixPath::File(file.clone());
        let (listener, guard) = bind(&path, DEFAULT_MODE).unwrap();
        let meta = std::fs::symlink_metadata(&file).unwrap();
        assert!(meta.file_type().is_socket());
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        // A live listener is not replaced.
        assert!(matches!(
            bind(&path, DEFAULT_MODE),
            Err(BindError::InUse(_))
        ));
        drop(guard);
        assert!(!file.exists());
        drop(listener);
        // A mode wider than the umask lets through is given exactly.
        let (_listener, _guard) = bind(&path, 0o666).unwrap();
        let mode = std::fs::symlink_metadata(&file)
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o666);
    }

    #[test]
    fn a_stale_file_is_replaced_and_anything_else_is_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("s");
        let path = UnixPath::File(file.clone());
        // A listener that died without removing its file.
        let (listener, guard) = bind(&path, DEFAULT_MODE).unwrap();
        std::mem::forget(guard);
        drop(listener);
        let (_listener, _guard) = bind(&path, DEFAULT_MODE).unwrap();
        let plain = dir.path().join("plain");
        std::fs::write(&plain, "data").unwrap();
        let refused = bind(&UnixPath::File(plain.clone()), DEFAULT_MODE);
        assert!(matches!(refused, Err(BindError::NotASocket(_))));
        assert_eq!(std::fs::read(&plain).unwrap(), b"data");
    }

    #[test]
    fn a_removed_guard_leaves_a_newer_file_alone() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("s");
        let path = UnixPath::File(file.clone());
        let (_first, guard) = bind(&path, DEFAULT_MODE).unwrap();
        // Someone moved the first listener's file away (keeping its inode
        // alive, so that the second cannot get the same number), and a
        // second listener took the path.
        std::fs::rename(&file, dir.path().join("moved")).unwrap();
        let (_second, _second_guard) = bind(&path, DEFAULT_MODE).unwrap();
        drop(guard);
        assert!(file.exists(), "the second listener's file was removed");
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
