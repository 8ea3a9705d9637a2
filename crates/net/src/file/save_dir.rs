//! The save directory: where a listener saves ([`SaveConfig`]), made
//! owner-only if missing, warned of when others may write there, and
//! cleared of the partial files transfers left behind (a kept one for
//! `--resume` once it is too old, an abandoned one at once).

use super::*;

/// Where a listener saves files.
#[derive(Debug, Clone)]
pub struct SaveConfig {
    /// The directory; nothing is written outside it.
    pub dir: PathBuf,
    /// Replace a file of the same name instead of refusing the transfer.
    pub overwrite: bool,
    /// Report [`Event::FileProgress`] after each chunk, for a progress bar.
    pub progress: bool,
    /// How long a partial file kept for resuming stays after its last
    /// write ([`PARTIAL_MAX_AGE`] unless told otherwise).
    pub partial_max_age: Duration,
    /// How long a transfer's receiver waits for the sender's next message
    /// before it gives the transfer up ([`IDLE_TIMEOUT`]).
    pub idle: Duration,
    /// How often a running listener looks for partial files past their
    /// age ([`SaveConfig::new`] makes it [`SWEEP_EVERY`], or
    /// `partial_max_age` when shorter, but at least a second).
    pub sweep_every: Duration,
}

impl SaveConfig {
    /// Where a listener saves files, and how it waits and cleans up there,
    /// at the defaults; `dir` is neither checked nor cleaned (see
    /// [`SaveConfig::prepare`]).
    pub fn new(dir: PathBuf, overwrite: bool, progress: bool, partial_max_age: Duration) -> Self {
        Self {
            dir,
            overwrite,
            progress,
            partial_max_age,
            idle: IDLE_TIMEOUT,
            sweep_every: SWEEP_EVERY.min(partial_max_age).max(Duration::from_secs(1)),
        }
    }

    /// Readies `dir` for a listener that starts: made owner-only (0700)
    /// if missing, checked to be a directory, and rid of the partial files
    /// a listener killed mid-transfer left there over
    /// [`STALE_PARTIAL_AGE`] ago, and of those kept for resuming over
    /// `partial_max_age` ago (a directory that cannot be listed costs
    /// space, not a start: logged).
    ///
    /// # Errors
    ///
    /// [`check_save_dir`]'s.
    pub fn prepare(
        dir: PathBuf,
        overwrite: bool,
        progress: bool,
        partial_max_age: Duration,
    ) -> io::Result<Self> {
        if check_save_dir(&dir)? == SaveDir::Created {
            tracing::info!(
                "created the save directory {} (mode 0700)",
                crate::text::path_text(&dir)
            );
        }
        // A link given as the save directory is followed once, here: a
        // folder's receiver opens the directory without following links,
        // and refused every folder of a linked one.
        let dir = fs::canonicalize(&dir)?;
        warn_if_shared(&dir);
        let save = Self::new(dir, overwrite, progress, partial_max_age);
        save.remove_stale();
        Ok(save)
    }

    /// Removes the stale partial files ([`remove_stale_partials`]).
    fn remove_stale(&self) {
        if let Err(err) = remove_stale_partials(&self.dir, STALE_PARTIAL_AGE, self.partial_max_age)
        {
            warn!(
                "cannot look for stale partial files in {}: {err}",
                crate::text::path_text(&self.dir)
            );
        }
    }

    /// Removes the stale partial files every `sweep_every`, for as long
    /// as a listener runs: a partial file kept for resuming goes once it
    /// is `partial_max_age` old, restart or not.
    pub(crate) async fn sweep(self) {
        // Never a loop without a pause, whatever was asked.
        let every = self.sweep_every.max(Duration::from_millis(10));
        let save = std::sync::Arc::new(self);
        loop {
            tokio::time::sleep(every).await;
            let save = std::sync::Arc::clone(&save);
            let _ = tokio::task::spawn_blocking(move || save.remove_stale()).await;
        }
    }
}

/// Warns when users other than this one may write to `dir`: they could
/// make a name before a transfer does (a partial file kept for resuming
/// is refused when it is not this user's, but a sender's file name can
/// be taken), or put a link where a folder goes (never followed, but the
/// folder is then refused).
fn warn_if_shared(dir: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode_of = |path: &Path| {
            fs::metadata(path)
                .ok()
                .map(|meta| meta.permissions().mode() & 0o7777)
        };
        let Some(mode) = mode_of(dir) else { return };
        if mode & 0o022 != 0 {
            warn!(
                "the save directory {} may be written by other users (mode {mode:o}): they can \
                 take names before a transfer does; make it owner-only (chmod go-w)",
                crate::text::path_text(dir)
            );
        }
        // A folder above it that others may write to, without the sticky
        // bit (as /tmp has) that keeps them from renaming what is not
        // theirs, lets them put another directory, or a link, in its
        // place: files are saved by the save directory's path.
        let shared_above = dir.ancestors().skip(1).find(|above| {
            mode_of(above).is_some_and(|mode| mode & 0o022 != 0 && mode & 0o1000 == 0)
        });
        if let Some(above) = shared_above {
            warn!(
                "{} above the save directory may be written by other users: they can put \
                 another folder in the save directory's place; make it owner-only (chmod go-w)",
                crate::text::path_text(above)
            );
        }
    }
    #[cfg(not(unix))]
    let _ = dir;
}

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
    // A file made and removed at once: whether files can be made here.
    // tempfile's error names that file, which is ours, not the user's.
    tempfile::Builder::new()
        .prefix(msg_proto::file::CHECK_PREFIX)
        .tempfile_in(dir)
        .map(drop)
        .map_err(|err| {
            // tempfile says `{the OS's error} at path {the file}`.
            let text = err.to_string();
            let reason = text.split(" at path ").next().unwrap_or(&text);
            io::Error::new(err.kind(), format!("cannot make a file there: {reason}"))
        })?;
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
                warn!("cannot list {}: {err}", crate::text::path_text(dir));
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
