//! Reading a secret from a file: a regular file of at most
//! [`MAX_SECRET_FILE`] bytes, or a pipe only when the caller asks, within
//! [`SECRET_PIPE_TIMEOUT`]. And making a new one: [`new_secret`],
//! [`create_secret_file`].
//!
//! Read whole whatever it was, `/dev/zero` grew until memory ran out, a
//! FIFO nobody writes to hung silently, and a 1 GB file cost 2 GB and made
//! every handshake slow. A file that others can read gets a warning, as
//! ssh gives for a private key.

use std::fs::Metadata;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::time::Duration;

use tracing::warn;

/// The largest secret file msg reads. A secret is a key, not a document:
/// 32 random bytes are plenty, and 4 KiB leaves room for any encoding of
/// one.
pub const MAX_SECRET_FILE: u64 = 4096;

/// How long msg waits for a secret from a pipe before it gives up: a pipe
/// nobody writes to would otherwise hang it silently.
pub const SECRET_PIPE_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a secret file could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SecretFileError {
    /// It could not be opened or read.
    #[error("cannot read the secret file {}: {source}", .path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// It is larger than [`MAX_SECRET_FILE`].
    #[error(
        "the secret file {} is {len} bytes; a secret file holds at most {max} bytes",
        .path.display()
    )]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// Its size.
        len: u64,
        /// [`MAX_SECRET_FILE`].
        max: u64,
    },
    /// It grew past [`MAX_SECRET_FILE`] between the look and the read.
    #[error(
        "the secret file {} holds more than {max} bytes; a secret file holds at most {max} bytes",
        .path.display()
    )]
    Grew {
        /// The file.
        path: PathBuf,
        /// [`MAX_SECRET_FILE`].
        max: u64,
    },
    /// It is a pipe, and the caller did not ask to read one.
    #[error("the secret file {} is a pipe", .path.display())]
    Pipe {
        /// The file.
        path: PathBuf,
    },
    /// It is neither a regular file nor a pipe.
    #[error("the secret file {} is not a regular file ({kind})", .path.display())]
    NotRegular {
        /// The file.
        path: PathBuf,
        /// What it is: "a character device", "a directory".
        kind: &'static str,
    },
    /// Nothing came from the pipe, or it was not closed, in time.
    #[error(
        "no secret arrived from the pipe {} within {}: nothing wrote to it and closed it",
        .path.display(),
        humantime::format_duration(*.after)
    )]
    PipeTimeout {
        /// The pipe.
        path: PathBuf,
        /// [`SECRET_PIPE_TIMEOUT`].
        after: Duration,
    },
    /// It holds nothing (but perhaps a newline).
    #[error("the secret file {} is empty", .path.display())]
    Empty {
        /// The file.
        path: PathBuf,
    },
    /// A new secret was not written: the file is already there.
    #[error("the secret file {} already exists; a new secret never overwrites one", .path.display())]
    Exists {
        /// The file.
        path: PathBuf,
    },
    /// The environment variable holding the secret is set, to nothing.
    #[error("{name} is set but empty")]
    EmptyVariable {
        /// The variable.
        name: String,
    },
    /// It belongs to another user (neither this one nor root).
    #[error(
        "the secret file {} belongs to uid {uid}: a secret file must be this user's (uid {us}) or \
         root's, since whoever owns it chooses the secret",
        .path.display()
    )]
    Owner {
        /// The file.
        path: PathBuf,
        /// Its owner.
        uid: u32,
        /// This process's effective user.
        us: u32,
    },
    /// Group or others may write it.
    #[error(
        "the secret file {} may be written by others (mode {mode:03o}), who could choose the \
         secret; chmod 600 it",
        .path.display()
    )]
    Writable {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// A new secret could not be written.
    #[error("cannot write the secret file {}: {source}", .path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
}

/// How many random bytes a new secret holds: as many as the keys HKDF
/// derives from it.
pub const NEW_SECRET_BYTES: usize = 32;

/// A new secret: [`NEW_SECRET_BYTES`] random bytes from the operating
/// system's generator, as lower-case hex, and a newline.
///
/// Text, because raw bytes do not survive a shell: `$(cat file)` drops
/// NUL bytes and trailing newlines, so one random key in eight came out
/// shorter than the file. The hex text itself is the secret, not decoded,
/// as every secret is its bytes: a file read with [`read_secret_file`] or
/// an environment variable then gives the same 64 bytes.
#[must_use]
pub fn new_secret() -> String {
    use std::fmt::Write;
    let bytes: [u8; NEW_SECRET_BYTES] = crate::auth::random();
    let mut text = String::with_capacity(2 * NEW_SECRET_BYTES + 1);
    for byte in bytes {
        let _ = write!(text, "{byte:02x}");
    }
    text.push('\n');
    text
}

/// Writes `secret` to a new file at `path`, readable and writable by its
/// owner only (mode 0600, whatever the umask); an existing file is left
/// as it is.
///
/// # Errors
///
/// [`SecretFileError::Exists`] when `path` exists (even as a dangling
/// symlink), [`SecretFileError::Write`] when it cannot be written (a
/// partly written file is removed).
pub fn create_secret_file(path: &Path, secret: &str) -> Result<(), SecretFileError> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        // Never readable by others, not even between create and chmod.
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(|source| {
        if source.kind() == io::ErrorKind::AlreadyExists {
            SecretFileError::Exists {
                path: path.to_owned(),
            }
        } else {
            SecretFileError::Write {
                path: path.to_owned(),
                source,
            }
        }
    })?;
    let written = (|| {
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            // The umask may have taken bits from 0600; the owner needs both.
            file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        }
        file.write_all(secret.as_bytes())?;
        file.sync_all()
    })();
    written.map_err(|source| {
        let _ = std::fs::remove_file(path);
        SecretFileError::Write {
            path: path.to_owned(),
            source,
        }
    })
}

/// A secret's bytes: from the file at `path` as [`read_secret_file`]
/// reads it, or else from the environment variable `var`, byte for byte;
/// `None` when neither is given.
///
/// # Errors
///
/// [`SecretFileError`], for the file, or for a variable set to nothing.
pub fn read_secret(
    path: Option<&Path>,
    pipe: bool,
    var: &str,
) -> Result<Option<Vec<u8>>, SecretFileError> {
    let bytes = match (path, std::env::var_os(var)) {
        (Some(path), _) => read_secret_file(path, pipe)?,
        (None, Some(value)) => value.into_encoded_bytes(),
        (None, None) => return Ok(None),
    };
    if bytes.is_empty() && path.is_none() {
        return Err(SecretFileError::EmptyVariable {
            name: var.to_owned(),
        });
    }
    Ok(Some(bytes))
}

/// The secret in `path`, one trailing newline (`\n` or `\r\n`) removed: a
/// regular file of at most [`MAX_SECRET_FILE`] bytes, or, when `pipe`, a
/// pipe (a FIFO, or bash's `<(command)`) read within
/// [`SECRET_PIPE_TIMEOUT`].
///
/// # Errors
///
/// [`SecretFileError`], naming the file and the limit it broke.
pub fn read_secret_file(path: &Path, pipe: bool) -> Result<Vec<u8>, SecretFileError> {
    let read = |source| SecretFileError::Read {
        path: path.to_owned(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(read)?;
    let mut bytes = if meta.is_file() {
        // Opened once and examined through the descriptor: a pipe put in
        // the file's place after the look above neither blocks the open
        // (O_NONBLOCK) nor gets read, and the owner and mode checked are
        // those of the file read.
        let file = open_nonblocking(path).map_err(read)?;
        let meta = file.metadata().map_err(read)?;
        if !meta.is_file() {
            return Err(SecretFileError::NotRegular {
                path: path.to_owned(),
                kind: file_kind(&meta),
            });
        }
        if meta.len() > MAX_SECRET_FILE {
            return Err(SecretFileError::TooLarge {
                path: path.to_owned(),
                len: meta.len(),
                max: MAX_SECRET_FILE,
            });
        }
        check_owner_and_mode(path, &meta)?;
        let mut bytes = Vec::new();
        file.take(MAX_SECRET_FILE + 1)
            .read_to_end(&mut bytes)
            .map_err(read)?;
        bytes
    } else if is_pipe(&meta) && pipe {
        read_pipe(path)?
    } else if is_pipe(&meta) {
        return Err(SecretFileError::Pipe {
            path: path.to_owned(),
        });
    } else {
        return Err(SecretFileError::NotRegular {
            path: path.to_owned(),
            kind: file_kind(&meta),
        });
    };
    if bytes.len() as u64 > MAX_SECRET_FILE {
        return Err(SecretFileError::Grew {
            path: path.to_owned(),
            max: MAX_SECRET_FILE,
        });
    }
    if bytes.last() == Some(&b'\n') {
        bytes.pop();
        if bytes.last() == Some(&b'\r') {
            bytes.pop();
        }
    }
    if bytes.is_empty() {
        return Err(SecretFileError::Empty {
            path: path.to_owned(),
        });
    }
    Ok(bytes)
}

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

/// Whose the secret file is, and who may write or read it.
///
/// - Another user's (neither this one nor root), or writable by others:
///   refused. Whoever may write the file chooses the secret, and with it
///   who authenticates; a listener with `--exec` would run their commands.
/// - Readable by others: said, as ssh says it of a key (the caller
///   refuses it where the secret guards commands, `--exec`).
fn check_owner_and_mode(path: &Path, meta: &Metadata) -> Result<(), SecretFileError> {
    match who_else_writes(meta) {
        Some(OthersWrite::Owner { uid, us }) => {
            return Err(SecretFileError::Owner {
                path: path.to_owned(),
                uid,
                us,
            });
        }
        Some(OthersWrite::Mode(mode)) => {
            return Err(SecretFileError::Writable {
                path: path.to_owned(),
                mode,
            });
        }
        None => {}
    }
    if let Some(mode) = readable_mode(meta) {
        warn!(
            "the secret file {} is readable by others (mode {mode:03o}); chmod 600 it",
            path.display()
        );
    }
    Ok(())
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

/// Whether the secret file at `path` may be read by users other than its
/// owner (group or others may read it): `Some` of its permission bits if so. For a
/// caller whose secret guards more than messages (`msg listen --exec`),
/// which refuses such a file.
#[must_use]
pub fn readable_by_others(path: &Path) -> Option<u32> {
    readable_mode(&std::fs::metadata(path).ok()?)
}

/// Reads `path` whole, but never more than `max` + 1 bytes (so that the
/// caller can tell a file that grew past `max`).
fn read_at_most(path: &Path, max: u64) -> io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    std::fs::File::open(path)?
        .take(max + 1)
        .read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// Reads a secret from a pipe on a thread of its own, and gives up after
/// [`SECRET_PIPE_TIMEOUT`]: opening a FIFO waits for a writer, and reading
/// it waits for the writer to close, either of which may never come. The
/// thread is left blocked then; the caller is about to exit with the
/// error.
fn read_pipe(path: &Path) -> Result<Vec<u8>, SecretFileError> {
    let owned = path.to_owned();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(read_at_most(&owned, MAX_SECRET_FILE));
    });
    match rx.recv_timeout(SECRET_PIPE_TIMEOUT) {
        Ok(read) => read.map_err(|source| SecretFileError::Read {
            path: path.to_owned(),
            source,
        }),
        Err(_) => Err(SecretFileError::PipeTimeout {
            path: path.to_owned(),
            after: SECRET_PIPE_TIMEOUT,
        }),
    }
}

#[cfg(unix)]
fn is_pipe(meta: &Metadata) -> bool {
    use std::os::unix::fs::FileTypeExt;
    meta.file_type().is_fifo()
}

#[cfg(not(unix))]
fn is_pipe(_meta: &Metadata) -> bool {
    false
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
    }
    if meta.is_dir() {
        "a directory"
    } else {
        "neither a regular file nor a pipe"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_secret_is_64_lower_case_hex_digits_and_a_newline() {
        let secret = new_secret();
        let hex = secret.strip_suffix('\n').unwrap();
        assert_eq!(hex.len(), 2 * NEW_SECRET_BYTES, "{secret:?}");
        assert!(
            hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')),
            "{secret:?}"
        );
        assert_ne!(new_secret(), secret);
    }

    #[test]
    fn a_new_secret_file_reads_back_as_its_hex_text_and_is_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        let secret = new_secret();
        create_secret_file(&path, &secret).unwrap();
        let read = read_secret_file(&path, false).unwrap();
        assert_eq!(read, secret.trim_end().as_bytes());
        let again = create_secret_file(&path, &new_secret()).unwrap_err();
        assert!(matches!(again, SecretFileError::Exists { .. }), "{again}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), secret);
    }
}
