//! The save directory: where a listener saves ([`SaveConfig`]), made
//! owner-only if missing, opened once ([`SaveDirHandle`]), warned of when
//! others may write there, and swept, at start and then every so often,
//! of the partial files transfers left behind (`stale.rs` finds and
//! removes them).

#[cfg(unix)]
use std::os::fd::OwnedFd;
use std::sync::Arc;

#[cfg(unix)]
use rustix::fs::{Mode, OFlags};
#[cfg(unix)]
use rustix::io::Errno;

use super::stale::remove_stale_in;
use super::*;

/// Where a listener saves files.
#[derive(Debug, Clone)]
pub struct SaveConfig {
    /// The directory as named (a link given as it resolved): what
    /// messages show. Nothing is opened by this path after start: files
    /// go where [`SaveConfig::handle`] says.
    pub dir: PathBuf,
    /// The directory itself, opened once from `dir`.
    pub handle: SaveDirHandle,
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
    /// at the defaults; `dir` is opened ([`SaveDirHandle::open`]: a
    /// directory that cannot be opened refuses every transfer, saying
    /// why), neither checked nor cleaned (see [`SaveConfig::prepare`]).
    pub fn new(dir: PathBuf, overwrite: bool, progress: bool, partial_max_age: Duration) -> Self {
        let handle = SaveDirHandle::open(&dir);
        Self::with_handle(dir, handle, overwrite, progress, partial_max_age)
    }

    fn with_handle(
        dir: PathBuf,
        handle: SaveDirHandle,
        overwrite: bool,
        progress: bool,
        partial_max_age: Duration,
    ) -> Self {
        Self {
            dir,
            handle,
            overwrite,
            progress,
            partial_max_age,
            idle: IDLE_TIMEOUT,
            sweep_every: SWEEP_EVERY.min(partial_max_age).max(Duration::from_secs(1)),
        }
    }

    /// Readies `dir` for a listener that starts: made owner-only (0700)
    /// if missing, checked to be a directory, opened (a link followed,
    /// this once), and rid of the partial files a listener killed
    /// mid-transfer left there over [`STALE_PARTIAL_AGE`] ago, and of
    /// those kept for resuming over `partial_max_age` ago (a directory
    /// that cannot be listed costs space, not a start: logged).
    ///
    /// # Errors
    ///
    /// [`check_save_dir`]'s, or why it could not be opened.
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
        // A link given as the save directory is followed once, here, and
        // the directory it leads to is held open: every transfer works
        // relative to it. Looked up by its path for each transfer, it
        // was whatever stood there then: another user who may write to
        // a folder above could move it away and put a directory of theirs,
        // or a link to any other, in its place, and a root listener saved
        // into it (robustness audit).
        let handle = SaveDirHandle::try_open(&dir)
            .map_err(|err| io::Error::new(err.kind(), format!("cannot open it: {err}")))?;
        let dir = fs::canonicalize(&dir)?;
        warn_if_shared(&dir);
        let save = Self::with_handle(dir, handle, overwrite, progress, partial_max_age);
        save.remove_stale();
        Ok(save)
    }

    /// Removes the stale partial files ([`remove_stale_partials`]), in the
    /// directory opened at start.
    fn remove_stale(&self) {
        let swept = self
            .handle
            .get()
            .map_err(io::Error::other)
            .and_then(|dir| remove_stale_in(&dir, STALE_PARTIAL_AGE, self.partial_max_age));
        if let Err(err) = swept {
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
        let save = Arc::new(self);
        loop {
            tokio::time::sleep(every).await;
            let save = Arc::clone(&save);
            // A thread the system refuses now is tried at the next sweep.
            if let Ok(swept) = crate::off_thread::spawn("msg-sweep", move || save.remove_stale()) {
                let _ = swept.await;
            }
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
        // place. This listener goes on saving into the directory it
        // opened at start, wherever that was moved, but the next one
        // started on the path, and whoever looks there, finds theirs.
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

/// The save directory, held open from a listener's start: every file a
/// transfer makes, renames or removes there is named relative to it, and
/// the directory's path is never looked up again. A directory moved away
/// while the listener runs is still where files go; whatever is put at its
/// path (another directory, a link) is never written.
#[derive(Debug, Clone)]
pub struct SaveDirHandle {
    /// The open directory, or why it could not be opened: said to each
    /// sender then, as refusing every transfer is all there is to do.
    #[cfg(unix)]
    opened: Result<Arc<OwnedFd>, Errno>,
    /// Elsewhere there is no opening a directory to work relative to: the
    /// path, looked up for each transfer.
    #[cfg(not(unix))]
    opened: Arc<PathBuf>,
}

/// What a transfer works relative to: the save directory's descriptor,
/// or (without one) its path.
#[cfg(unix)]
pub(super) type OpenDir = Arc<OwnedFd>;
#[cfg(not(unix))]
pub(super) type OpenDir = Arc<PathBuf>;

impl SaveDirHandle {
    /// Opens `dir`, following a link there (this once); an error is kept,
    /// and told to each sender.
    pub fn open(dir: &Path) -> Self {
        #[cfg(unix)]
        return Self {
            opened: open_dir(dir).map(Arc::new),
        };
        #[cfg(not(unix))]
        return Self {
            opened: Arc::new(dir.to_owned()),
        };
    }

    /// Opens `dir`, following a link there (this once).
    ///
    /// # Errors
    ///
    /// The operating system's, when `dir` cannot be opened as a directory.
    pub fn try_open(dir: &Path) -> io::Result<Self> {
        let handle = Self::open(dir);
        #[cfg(unix)]
        if let Err(err) = handle.opened {
            return Err(err.into());
        }
        Ok(handle)
    }

    /// The open directory; the reason to give a sender otherwise.
    pub(super) fn get(&self) -> Result<OpenDir, String> {
        #[cfg(unix)]
        return match &self.opened {
            Err(err) => Err(format!(
                "cannot open the save directory: {}",
                io::Error::from(*err)
            )),
            // Removed since (no link to it is left): one made again at
            // its path is another directory, never used, and each
            // transfer was refused as `No such file or directory` without
            // saying why (audit, round seven, second look).
            Ok(dir) if rustix::fs::fstat(&**dir).is_ok_and(|stat| stat.st_nlink == 0) => {
                Err(crate::refusal::SAVE_DIR_REMOVED.to_owned())
            }
            Ok(dir) => Ok(Arc::clone(dir)),
        };
        #[cfg(not(unix))]
        return Ok(Arc::clone(&self.opened));
    }
}

/// Opens the directory at `dir` to work relative to, following a link.
#[cfg(unix)]
pub(super) fn open_dir(dir: &Path) -> Result<OwnedFd, Errno> {
    rustix::fs::open(
        dir,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
}
