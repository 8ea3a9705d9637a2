//! The stale partial files in a save directory, found and removed: an
//! abandoned one (a listener killed mid-transfer) at once, one kept for
//! `--resume` once it is too old. Everything is done relative to the
//! directory opened once (`save_dir.rs`), nothing followed, nothing
//! below it touched.

#[cfg(unix)]
use std::os::fd::AsFd;
use std::sync::Arc;

#[cfg(unix)]
use rustix::fs::{AtFlags, FileType};

use super::save_dir::OpenDir;
#[cfg(unix)]
use super::save_dir::open_dir;
use super::*;

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
/// When `dir` cannot be opened or listed.
pub fn remove_stale_partials(
    dir: &Path,
    older_than: Duration,
    kept_for: Duration,
) -> io::Result<usize> {
    #[cfg(unix)]
    let dir = Arc::new(open_dir(dir)?);
    #[cfg(not(unix))]
    let dir = Arc::new(dir.to_owned());
    remove_stale_in(&dir, older_than, kept_for)
}

/// [`remove_stale_partials`] in the directory open as `dir`: each entry
/// listed, examined and removed relative to it.
pub(super) fn remove_stale_in(
    dir: &OpenDir,
    older_than: Duration,
    kept_for: Duration,
) -> io::Result<usize> {
    let now = std::time::SystemTime::now();
    let mut removed = 0;
    // Bounded by the directory's entries, each seen once.
    for name in list(dir)? {
        let name = match name {
            Ok(name) => name,
            Err(err) => {
                warn!("cannot list the save directory: {err}");
                continue;
            }
        };
        let max_age = if is_partial_name(&name) {
            older_than
        } else if is_kept_name(&name) {
            kept_for
        } else {
            continue;
        };
        // The entry itself, never what a link points to.
        let stale = examine(dir, &name).and_then(|(is_file, size, modified)| {
            let age = now.duration_since(modified?).unwrap_or_default();
            Ok((is_file && age > max_age).then_some((size, age)))
        });
        match stale {
            Ok(Some(_)) if in_use(dir, &name) => {}
            Ok(Some((size, age))) => match remove(dir, &name) {
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

/// The names in `dir` (those that are UTF-8: no partial file's is not).
#[cfg(unix)]
fn list(dir: &OpenDir) -> io::Result<impl Iterator<Item = io::Result<String>>> {
    let entries = rustix::fs::Dir::read_from(dir.as_fd())?;
    Ok(entries.filter_map(|entry| match entry {
        Ok(entry) => entry
            .file_name()
            .to_str()
            .ok()
            .map(|name| Ok(name.to_owned())),
        Err(err) => Some(Err(err.into())),
    }))
}

#[cfg(not(unix))]
fn list(dir: &OpenDir) -> io::Result<impl Iterator<Item = io::Result<String>>> {
    Ok(fs::read_dir(&**dir)?.filter_map(|entry| match entry {
        Ok(entry) => entry.file_name().into_string().ok().map(Ok),
        Err(err) => Some(Err(err)),
    }))
}

/// Whether the entry `name` in `dir` is a regular file (not following a
/// link), its size, and when it was last written.
#[cfg(unix)]
fn examine(
    dir: &OpenDir,
    name: &str,
) -> io::Result<(bool, u64, io::Result<std::time::SystemTime>)> {
    let stat = rustix::fs::statat(dir.as_fd(), name, AtFlags::SYMLINK_NOFOLLOW)?;
    let is_file = FileType::from_raw_mode(stat.st_mode) == FileType::RegularFile;
    let modified = u64::try_from(stat.st_mtime)
        .map(|secs| std::time::UNIX_EPOCH + Duration::new(secs, 0))
        .map_err(|_| io::Error::other("last written before 1970"));
    Ok((is_file, u64::try_from(stat.st_size).unwrap_or(0), modified))
}

#[cfg(not(unix))]
fn examine(
    dir: &OpenDir,
    name: &str,
) -> io::Result<(bool, u64, io::Result<std::time::SystemTime>)> {
    let meta = fs::symlink_metadata(dir.join(name))?;
    Ok((meta.file_type().is_file(), meta.len(), meta.modified()))
}

/// Removes the file `name` in `dir`.
#[cfg(unix)]
fn remove(dir: &OpenDir, name: &str) -> io::Result<()> {
    Ok(rustix::fs::unlinkat(dir.as_fd(), name, AtFlags::empty())?)
}

#[cfg(not(unix))]
fn remove(dir: &OpenDir, name: &str) -> io::Result<()> {
    fs::remove_file(dir.join(name))
}

#[cfg(unix)]
fn in_use(dir: &OpenDir, name: &str) -> bool {
    resume::in_use(dir.as_fd(), name)
}

#[cfg(unix)]
use super::resume::is_kept_name;

#[cfg(not(unix))]
fn is_kept_name(_name: &str) -> bool {
    false
}

#[cfg(not(unix))]
fn in_use(_dir: &OpenDir, _name: &str) -> bool {
    false
}

/// Whether `name` is one of [`partial::prepare`]'s temporary file names.
pub(super) fn is_partial_name(name: &str) -> bool {
    name.strip_prefix(PARTIAL_PREFIX).is_some_and(|random| {
        random.len() == PARTIAL_RANDOM && random.bytes().all(|b| b.is_ascii_alphanumeric())
    })
}
