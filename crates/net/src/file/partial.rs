//! The file a transfer writes into before it is saved: a temporary one,
//! or the one kept for `--resume`; and what a header is checked for before
//! anything is written ([`prepare`]).

#[cfg(unix)]
use std::os::fd::{AsFd, OwnedFd};

#[cfg(unix)]
use rustix::fs::AtFlags;

#[cfg(not(unix))]
use super::receive::for_peer;
use super::receive::{Failure, Start};
use super::save_dir::OpenDir;
use super::*;
use crate::PeerAddr;

/// The file being received, before it is renamed into place.
#[derive(Debug)]
pub(super) enum Partial {
    /// `.msg-partial-` and six characters: removed unless saved.
    Temp(Temp),
    /// The sender asked to resume: kept if the transfer is cut off.
    #[cfg(unix)]
    Kept(resume::Kept),
}

impl Partial {
    /// The open file.
    pub(super) fn file(&self) -> &fs::File {
        match self {
            Self::Temp(temp) => temp.file(),
            #[cfg(unix)]
            Self::Kept(kept) => kept.file(),
        }
    }

    /// Tells the sender where to start: ready, or (kept) an offer first.
    pub(super) async fn start<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        conn: &mut Connection<S>,
        header: &FileHeader,
        idle: Duration,
    ) -> Result<Start, Failure> {
        match self {
            Self::Temp(_) => {
                conn.write_message(&FileResult::Ready.to_message()).await?;
                Ok(Start::whole())
            }
            #[cfg(unix)]
            Self::Kept(kept) => resume::negotiate(conn, kept, header, idle).await,
        }
    }

    /// Renames it into place under the header's name; the refusal
    /// otherwise (it is removed then).
    pub(super) fn persist(self, header: &FileHeader, overwrite: bool) -> Result<(), String> {
        let name = header.name.as_str();
        match self {
            Self::Temp(temp) => temp.persist(name, overwrite),
            #[cfg(unix)]
            Self::Kept(kept) => kept.persist(name, overwrite),
        }
    }

    /// After a failure: a temporary file removed; a kept one kept if the
    /// transfer was `cut` off, else removed.
    pub(super) fn give_up(self, cut: bool, header: &FileHeader) {
        match self {
            Self::Temp(temp) => drop(temp),
            #[cfg(unix)]
            Self::Kept(kept) => kept.give_up(cut, header),
        }
        let _ = (cut, header);
    }
}

/// What is ready once a header was accepted.
#[derive(Debug)]
pub(super) struct Prepared {
    pub(super) header: FileHeader,
    pub(super) partial: Partial,
    pub(super) overwrite: bool,
}

/// Checks a header and opens the partial file: a temporary one, or with
/// the [`FLAG_RESUME`] flag the one kept for this file; the reason to give
/// the sender otherwise.
pub(super) fn prepare(
    msg: &Message,
    save: Option<&SaveConfig>,
    sender: &PeerAddr,
) -> Result<Prepared, String> {
    let header = FileHeader::from_message(msg).map_err(|err| err.to_string())?;
    let save = save.ok_or_else(|| crate::refusal::SAVES_NO_FILES.to_owned())?;
    // The directory opened at start, never its path looked up again.
    let dir = save.handle.get()?;
    // A validated single component: relative to the directory it cannot
    // leave it.
    if !save.overwrite && exists(&dir, header.name.as_str()) {
        return Err(crate::refusal::FILE_EXISTS.format(header.name.as_str()));
    }
    #[cfg(unix)]
    if msg.flags & FLAG_RESUME != 0 {
        let kept = resume::Kept::open(dir, &header, sender)?;
        return Ok(Prepared {
            header,
            partial: Partial::Kept(kept),
            overwrite: save.overwrite,
        });
    }
    #[cfg(not(unix))]
    let _ = sender;
    Ok(Prepared {
        header,
        partial: Partial::Temp(Temp::create(dir)?),
        overwrite: save.overwrite,
    })
}

/// Whether anything (a link included, not followed) is named `name` in
/// `dir`.
#[cfg(unix)]
fn exists(dir: &OwnedFd, name: &str) -> bool {
    rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW).is_ok()
}

#[cfg(not(unix))]
fn exists(dir: &Path, name: &str) -> bool {
    fs::symlink_metadata(dir.join(name)).is_ok()
}

/// A temporary file in the save directory, `.msg-partial-` and
/// [`PARTIAL_RANDOM`] characters, made, renamed and removed relative to
/// the directory opened at start: removed when dropped unless saved.
#[cfg(unix)]
#[derive(Debug)]
pub(super) struct Temp {
    dir: OpenDir,
    name: String,
    file: fs::File,
    /// Renamed into place: nothing left to remove.
    saved: bool,
}

#[cfg(unix)]
impl Temp {
    /// Makes one (owner-only) in `dir`; the reason to give the sender
    /// otherwise.
    fn create(dir: OpenDir) -> Result<Self, String> {
        let (name, fd) = tree::create_partial(dir.as_fd()).map_err(|err| {
            format!(
                "cannot make a file in the save directory: {}",
                io::Error::from(err)
            )
        })?;
        Ok(Self {
            dir,
            name,
            file: fs::File::from(fd),
            saved: false,
        })
    }

    /// Its name in the save directory.
    #[cfg(test)]
    pub(super) fn name(&self) -> &str {
        &self.name
    }

    fn file(&self) -> &fs::File {
        &self.file
    }

    /// Renames it to `target` (never over a file without `overwrite`);
    /// removed if that fails.
    fn persist(mut self, target: &str, overwrite: bool) -> Result<(), String> {
        tree::rename_into_place(&self.dir, &self.name, target, overwrite)
            .map_err(|err| format!("cannot save {target}: {}", io::Error::from(err)))?;
        self.saved = true;
        Ok(())
    }
}

#[cfg(unix)]
impl Drop for Temp {
    fn drop(&mut self) {
        if !self.saved {
            let _ = rustix::fs::unlinkat(&*self.dir, self.name.as_str(), AtFlags::empty());
        }
    }
}

/// Where there is no working relative to a directory's descriptor:
/// tempfile's, by the save directory's path.
#[cfg(not(unix))]
#[derive(Debug)]
pub(super) struct Temp(tempfile::NamedTempFile);

#[cfg(not(unix))]
impl Temp {
    fn create(dir: OpenDir) -> Result<Self, String> {
        tempfile::Builder::new()
            .prefix(PARTIAL_PREFIX)
            .rand_bytes(PARTIAL_RANDOM)
            .tempfile_in(&*dir)
            .map(Self)
            .map_err(|err| {
                format!(
                    "cannot make a file in the save directory: {}",
                    for_peer(&err)
                )
            })
    }

    #[cfg(test)]
    pub(super) fn name(&self) -> &str {
        self.0
            .path()
            .file_name()
            .and_then(|name| name.to_str())
            .unwrap_or_default()
    }

    fn file(&self) -> &fs::File {
        self.0.as_file()
    }

    fn persist(self, target: &str, overwrite: bool) -> Result<(), String> {
        let path = self
            .0
            .path()
            .parent()
            .expect("a file in the save directory")
            .join(target);
        let persisted = if overwrite {
            self.0.persist(&path).map(drop)
        } else {
            self.0.persist_noclobber(&path).map(drop)
        };
        persisted.map_err(|err| format!("cannot save {target}: {}", for_peer(&err.error)))
    }
}
