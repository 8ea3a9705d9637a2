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

use crate::private_file::{
    OthersWrite, file_kind, open_nonblocking, readable_mode, who_else_writes,
};

mod new;

pub use new::{NEW_SECRET_BYTES, create_secret_file, new_secret};

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
    #[error("cannot read the secret file {}: {source}", crate::text::path_text(.path))]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// It is larger than [`MAX_SECRET_FILE`].
    #[error(
        "the secret file {} is {len} bytes; a secret file holds at most {max} bytes",
        crate::text::path_text(.path)
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
        crate::text::path_text(.path)
    )]
    Grew {
        /// The file.
        path: PathBuf,
        /// [`MAX_SECRET_FILE`].
        max: u64,
    },
    /// It is a pipe, and the caller did not ask to read one.
    #[error("the secret file {} is a pipe", crate::text::path_text(.path))]
    Pipe {
        /// The file.
        path: PathBuf,
    },
    /// It is neither a regular file nor a pipe.
    #[error("the secret file {} is not a regular file ({kind})", crate::text::path_text(.path))]
    NotRegular {
        /// The file.
        path: PathBuf,
        /// What it is: "a character device", "a directory".
        kind: &'static str,
    },
    /// Nothing came from the pipe, or it was not closed, in time.
    #[error(
        "no secret arrived from the pipe {} within {}: a secret is read to the pipe's end, and \
         its writer did not close it (or nothing opened it to write)",
        crate::text::path_text(.path),
        humantime::format_duration(*.after)
    )]
    PipeTimeout {
        /// The pipe.
        path: PathBuf,
        /// [`SECRET_PIPE_TIMEOUT`].
        after: Duration,
    },
    /// It holds nothing (but perhaps a newline).
    #[error("the secret file {} is empty", crate::text::path_text(.path))]
    Empty {
        /// The file.
        path: PathBuf,
    },
    /// A new secret was not written: the file is already there.
    #[error("the secret file {} already exists; a new secret never overwrites one", crate::text::path_text(.path))]
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
        crate::text::path_text(.path)
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
        crate::text::path_text(.path)
    )]
    Writable {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// A directory on its way that others could change: they could put
    /// another secret in its place.
    #[error(
        "the secret file {} is in a folder others could change: {dir}, who could put another \
         secret in its place; chmod go-w that folder (or keep the file elsewhere)",
        crate::text::path_text(.path)
    )]
    OpenDir {
        /// The file.
        path: PathBuf,
        /// The directory, and who else could change it (`/srv/keys may
        /// be written by others (mode 777)`).
        dir: String,
    },
    /// A new secret could not be written.
    #[error("cannot write the secret file {}: {source}", crate::text::path_text(.path))]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
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
    if let Some(dir) = crate::private_file::who_else_replaces(path) {
        return Err(SecretFileError::OpenDir {
            path: path.to_owned(),
            dir: dir.to_string(),
        });
    }
    if let Some(mode) = readable_mode(meta) {
        warn!(
            "the secret file {} is readable by others (mode {mode:03o}); chmod 600 it",
            crate::text::path_text(path)
        );
    }
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

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
