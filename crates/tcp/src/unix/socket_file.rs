//! A Unix stream listener's socket file: binding it with its mode set
//! before `bind`, a stale file replaced and a live one refused, and the
//! [`SocketFile`] guard that removes it. Apart from the addresses and the
//! streams in `mod.rs` because only a listener has a file to look after;
//! the seqpacket and datagram listeners bind through here too.

use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use socket2::{Domain, SockAddr, Socket, Type};
use tracing::{debug, warn};

use super::UnixPath;
use crate::tcp::LISTEN_BACKLOG;

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
        let made = SocketNode::open(file)?;
        let meta = made.metadata()?;
        let guard = SocketFile {
            path: file.to_owned(),
            dev: meta.dev(),
            ino: meta.ino(),
        };
        // The umask may have taken bits that were asked for: give them
        // back (only ever what was asked).
        if meta.permissions().mode() & 0o7777 != mode {
            made.set_mode(mode)?;
        }
        listen_if_connected(&socket, ty)?;
        Ok(guard)
    };
    let guard = listen().map_err(io)?;
    Ok((socket, Some(guard)))
}

/// The socket file `bind` just made, held by a descriptor of its own
/// (`O_PATH`, never following a link) so that its mode is set on it and
/// on nothing else.
///
/// # Why not by its path
///
/// The path is looked up again at every call. In a directory another user
/// may write to, that user can put a symbolic link in the socket's place
/// between `bind` and the call, and a `chmod` by path follows it: a
/// listener run as root made `/etc/shadow` mode 0666 that way (audit,
/// round four). A descriptor opened without following links is the
/// socket file, or the open fails; a link planted first is refused as not
/// a socket.
#[cfg(any(target_os = "linux", target_os = "android"))]
struct SocketNode(std::fs::File);

#[cfg(any(target_os = "linux", target_os = "android"))]
impl SocketNode {
    /// Opens the socket file at `file`, refusing anything else there.
    fn open(file: &Path) -> io::Result<Self> {
        use std::os::unix::fs::OpenOptionsExt;
        let opened = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(nix::libc::O_PATH | nix::libc::O_NOFOLLOW)
            .open(file)?;
        if !opened.metadata()?.file_type().is_socket() {
            return Err(io::Error::other(format!(
                "{} was replaced by something that is not a socket right after it was made",
                file.display()
            )));
        }
        Ok(Self(opened))
    }

    fn metadata(&self) -> io::Result<std::fs::Metadata> {
        self.0.metadata()
    }

    /// `chmod` of the file this holds: through `/proc/self/fd`, as glibc's
    /// `fchmodat` does for a descriptor that cannot `fchmod` (an `O_PATH`
    /// one).
    fn set_mode(&self, mode: u32) -> io::Result<()> {
        use std::os::fd::AsRawFd;
        let held = format!("/proc/self/fd/{}", self.0.as_raw_fd());
        std::fs::set_permissions(held, std::fs::Permissions::from_mode(mode))
    }
}

/// Elsewhere there is no `O_PATH` (and a socket file cannot be opened):
/// the path, looked up without following a link, and a `chmod` by path,
/// which has the race the Linux one closes.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
struct SocketNode(PathBuf);

#[cfg(not(any(target_os = "linux", target_os = "android")))]
impl SocketNode {
    fn open(file: &Path) -> io::Result<Self> {
        Ok(Self(file.to_owned()))
    }

    fn metadata(&self) -> io::Result<std::fs::Metadata> {
        std::fs::symlink_metadata(&self.0)
    }

    fn set_mode(&self, mode: u32) -> io::Result<()> {
        std::fs::set_permissions(&self.0, std::fs::Permissions::from_mode(mode))
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::unix::DEFAULT_MODE;

    #[test]
    fn a_link_in_the_socket_files_place_is_refused_and_its_target_left_alone() {
        // What another user who may write to the directory can put in the
        // socket file's place between bind and chmod: a link to a file of
        // the listener's user.
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "x").unwrap();
        std::fs::set_permissions(&victim, std::fs::Permissions::from_mode(0o640)).unwrap();
        let planted = dir.path().join("s");
        std::os::unix::fs::symlink(&victim, &planted).unwrap();
        assert!(SocketNode::open(&planted).is_err());
        let mode = std::fs::metadata(&victim).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode, 0o640);
        // A regular file there is no socket either.
        assert!(SocketNode::open(&victim).is_err());
        // The socket file itself takes its mode through the descriptor.
        let sock = dir.path().join("real");
        let _listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        let node = SocketNode::open(&sock).unwrap();
        node.set_mode(0o604).unwrap();
        let mode = std::fs::symlink_metadata(&sock)
            .unwrap()
            .permissions()
            .mode()
            & 0o7777;
        assert_eq!(mode, 0o604);
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
}
