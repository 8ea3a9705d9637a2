//! The save directory: made owner-only if missing, and cleared of the
//! partial files transfers left behind (a kept one for `--resume` once it
//! is too old, an abandoned one at once).

use super::*;

/// What [`check_save_dir`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub enum SaveDir {
    /// The directory was there already.
    Existed,
    /// It was not, and was made (with any missing parents), owner-only
    /// (mode 0700): files sent by peers are nobody else's business.
    Created,
}

/// Checks at start that `dir` is a directory this process can write, so
/// that `msg listen --save-dir` fails at once and not at the first file.
/// A missing one is made, with its parents, rather than refused: a new
/// user's first `--save-dir ~/inbox` names a folder that is not there yet.
///
/// # Errors
///
/// The operating system's, for example when `dir` is read-only or cannot
/// be made; [`io::ErrorKind::NotADirectory`] when something else is there.
pub fn check_save_dir(dir: &Path) -> io::Result<SaveDir> {
    let found = match fs::metadata(dir) {
        Ok(meta) if meta.is_dir() => SaveDir::Existed,
        Ok(_) => {
            return Err(io::Error::new(
                io::ErrorKind::NotADirectory,
                "not a directory",
            ));
        }
        Err(err) if err.kind() == io::ErrorKind::NotFound => {
            create_owner_only(dir)?;
            SaveDir::Created
        }
        Err(err) => return Err(err),
    };
    tempfile::Builder::new()
        .prefix(msg_proto::file::CHECK_PREFIX)
        .tempfile_in(dir)
        .map(drop)?;
    Ok(found)
}

/// Makes `dir` and its missing parents, mode 0700.
fn create_owner_only(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
        // The umask may have taken the owner's bits too; it needs all three.
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))?;
    }
    #[cfg(not(unix))]
    fs::create_dir_all(dir)?;
    Ok(())
}

/// Removes the partial files that a listener killed mid-transfer left in
/// `dir`: regular files named as this module names them (`.msg-partial-`
/// and six letters or digits) and last written more than `older_than` ago
/// (a listener passes [`STALE_PARTIAL_AGE`]), and the partial files kept
/// for resuming (`.msg-resume-` and 32 hex digits) last written more than
/// `kept_for` ago, unless a transfer holds one. Each removal is logged;
/// how many were removed is returned.
///
/// Nothing else is touched: no other name, no directory, no symbolic link
/// (and no link is followed: the age and type are the entry's own), and
/// nothing below `dir`. A file that cannot be examined or removed is
/// logged and skipped: stale files cost space, not correctness, and must
/// not keep a listener from starting.
///
/// # Errors
///
/// When `dir` cannot be listed.
pub fn remove_stale_partials(
    dir: &Path,
    older_than: Duration,
    kept_for: Duration,
) -> io::Result<usize> {
    let now = std::time::SystemTime::now();
    let mut removed = 0;
    for entry in fs::read_dir(dir)? {
        let entry = match entry {
            Ok(entry) => entry,
            Err(err) => {
                warn!("cannot list {}: {err}", dir.display());
                continue;
            }
        };
        let name = entry.file_name();
        let Some((name, max_age)) = name.to_str().and_then(|name| {
            if is_partial_name(name) {
                Some((name, older_than))
            } else if is_kept_name(name) {
                Some((name, kept_for))
            } else {
                None
            }
        }) else {
            continue;
        };
        let path = entry.path();
        // symlink_metadata: the entry itself, never what a link points to.
        let stale = fs::symlink_metadata(&path).and_then(|meta| {
            let age = meta
                .modified()
                .map(|modified| now.duration_since(modified).unwrap_or_default())?;
            Ok((meta.file_type().is_file() && age > max_age).then_some((meta.len(), age)))
        });
        match stale {
            Ok(Some(_)) if in_use(&path) => {}
            Ok(Some((size, age))) => match fs::remove_file(&path) {
                Ok(()) => {
                    removed += 1;
                    info!(
                        size,
                        "removed {name}, a partial file last written {} ago",
                        humantime::format_duration(Duration::from_secs(age.as_secs()))
                    );
                }
                Err(err) => warn!("cannot remove the stale partial file {name}: {err}"),
            },
            Ok(None) => {}
            Err(err) => warn!("cannot examine {name}: {err}"),
        }
    }
    Ok(removed)
}

#[cfg(unix)]
use super::resume::{in_use, is_kept_name};

#[cfg(not(unix))]
fn is_kept_name(_name: &str) -> bool {
    false
}

#[cfg(not(unix))]
fn in_use(_path: &Path) -> bool {
    false
}

/// Whether `name` is one of [`partial::prepare`]'s temporary file names.
pub(super) fn is_partial_name(name: &str) -> bool {
    name.strip_prefix(PARTIAL_PREFIX).is_some_and(|random| {
        random.len() == PARTIAL_RANDOM && random.bytes().all(|b| b.is_ascii_alphanumeric())
    })
}
