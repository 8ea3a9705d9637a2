//! Files that should be this user's alone (a secret, a TLS key or CA
//! file): who else could change or read one, opened without waiting for a
//! writer, and what a file that is not a regular one is.
//!
//! Whoever may write a secret chooses it, and with it who authenticates;
//! whoever may write a CA file chooses whom a peer is trusted for. So the
//! checks look at the file's owner and its write bits, on the descriptor
//! the caller then reads, not on a path that may change in between.

use std::fs::Metadata;
use std::io;
use std::path::Path;

/// `path` opened for reading without waiting for a writer (a FIFO's open
/// otherwise blocks until one comes).
pub(crate) fn open_nonblocking(path: &Path) -> io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NONBLOCK);
    }
    options.open(path)
}

/// Who besides this user could change a file: what [`who_else_writes`]
/// finds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OthersWrite {
    /// Another user owns it (neither this one nor root).
    Owner {
        /// Its owner.
        uid: u32,
        /// This process's effective user.
        us: u32,
    },
    /// Group or others may write it: its permission bits.
    Mode(u32),
}

/// Whether anyone but this user (and root) could change the file `meta`
/// describes: its owner, or a write bit for group or others. Whoever may
/// write a secret chooses it; whoever may write a CA file chooses whom a
/// peer is trusted for.
#[cfg(unix)]
pub(crate) fn who_else_writes(meta: &Metadata) -> Option<OthersWrite> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let us = rustix::process::geteuid().as_raw();
    if meta.uid() != us && meta.uid() != 0 {
        return Some(OthersWrite::Owner {
            uid: meta.uid(),
            us,
        });
    }
    let mode = meta.permissions().mode() & 0o777;
    (mode & 0o022 != 0).then_some(OthersWrite::Mode(mode))
}

#[cfg(not(unix))]
pub(crate) fn who_else_writes(_meta: &Metadata) -> Option<OthersWrite> {
    None
}

/// A directory on the way to a private file that someone besides this
/// user could change: whatever the file's own mode, they could put
/// another file in its place (a rename, or a link to one of theirs), a
/// CA bundle of their choosing as `--client-ca`, say (audit, round six).
/// As ssh's `StrictModes` checks a key's directories. A sticky directory
/// (`/tmp`, mode 1777) lets each user replace only what they own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OpenDir {
    /// The directory.
    pub(crate) dir: std::path::PathBuf,
    /// Who else could change it.
    pub(crate) why: OthersWrite,
}

impl std::fmt::Display for OpenDir {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let dir = crate::text::path_text(&self.dir);
        match self.why {
            OthersWrite::Owner { uid, .. } => write!(f, "{dir} belongs to uid {uid}"),
            OthersWrite::Mode(mode) => write!(f, "{dir} may be written by others (mode {mode:o})"),
        }
    }
}

/// The first directory on the way to `path` (as given, and as its links
/// resolve) that anyone but this user and root could change, unless it
/// is sticky.
#[cfg(unix)]
pub(crate) fn who_else_replaces(path: &Path) -> Option<OpenDir> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let us = rustix::process::geteuid().as_raw();
    let given = std::path::absolute(path).ok();
    let real = std::fs::canonicalize(path).ok();
    let dirs = [given, real].into_iter().flatten().flat_map(|path| {
        let dirs: Vec<_> = path.ancestors().skip(1).map(Path::to_path_buf).collect();
        dirs
    });
    for dir in dirs {
        let Ok(meta) = std::fs::metadata(&dir) else {
            continue;
        };
        let mode = meta.permissions().mode() & 0o7777;
        let why = if meta.uid() != us && meta.uid() != 0 {
            OthersWrite::Owner {
                uid: meta.uid(),
                us,
            }
        } else if mode & 0o022 != 0 && mode & 0o1000 == 0 {
            OthersWrite::Mode(mode)
        } else {
            continue;
        };
        return Some(OpenDir { dir, why });
    }
    None
}

#[cfg(not(unix))]
pub(crate) fn who_else_replaces(_path: &Path) -> Option<OpenDir> {
    None
}

/// The permission bits of the file `meta` describes when group or others
/// may read it.
pub(crate) fn readable_mode(meta: &Metadata) -> Option<u32> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode() & 0o777;
        (mode & 0o044 != 0).then_some(mode)
    }
    #[cfg(not(unix))]
    {
        let _ = meta;
        None
    }
}

/// What a file that is not a regular one is, for an error.
pub(crate) fn file_kind(meta: &Metadata) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        let kind = meta.file_type();
        if kind.is_char_device() {
            return "a character device";
        }
        if kind.is_block_device() {
            return "a block device";
        }
        if kind.is_socket() {
            return "a socket";
        }
        if kind.is_fifo() {
            return "a pipe";
        }
    }
    if meta.is_dir() {
        "a directory"
    } else {
        "neither a regular file nor a pipe"
    }
}
