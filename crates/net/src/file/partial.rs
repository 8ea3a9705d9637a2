//! The file a transfer writes into before it is saved: a temporary one,
//! or the one kept for `--resume`; and what a header is checked for before
//! anything is written ([`prepare`]).

use super::receive::{Failure, Start, for_peer};
use super::*;
use crate::PeerAddr;

/// The file being received, before it is renamed into place.
#[derive(Debug)]
pub(super) enum Partial {
    /// `.msg-partial-` and six characters: removed unless saved.
    Temp(tempfile::NamedTempFile),
    /// The sender asked to resume: kept if the transfer is cut off.
    #[cfg(unix)]
    Kept(resume::Kept),
}

impl Partial {
    /// The open file.
    pub(super) fn file(&self) -> &fs::File {
        match self {
            Self::Temp(temp) => temp.as_file(),
            #[cfg(unix)]
            Self::Kept(kept) => kept.file(),
        }
    }

    /// Tells the sender where to start: ready, or (kept) an offer first.
    pub(super) async fn start<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
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
            Self::Temp(temp) => {
                let target = temp
                    .path()
                    .parent()
                    .expect("a file in the save directory")
                    .join(name);
                let persisted = if overwrite {
                    temp.persist(&target).map(drop)
                } else {
                    temp.persist_noclobber(&target).map(drop)
                };
                persisted.map_err(|err| format!("cannot save {name}: {}", for_peer(&err.error)))
            }
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
    // A validated single component: joined to the directory it cannot
    // leave it.
    let target = save.dir.join(header.name.as_str());
    if !save.overwrite && fs::symlink_metadata(&target).is_ok() {
        return Err(crate::refusal::FILE_EXISTS.format(header.name.as_str()));
    }
    #[cfg(unix)]
    if msg.flags & FLAG_RESUME != 0 {
        let kept = resume::Kept::open(&save.dir, &header, sender)?;
        return Ok(Prepared {
            header,
            partial: Partial::Kept(kept),
            overwrite: save.overwrite,
        });
    }
    let temp = tempfile::Builder::new()
        .prefix(PARTIAL_PREFIX)
        .rand_bytes(PARTIAL_RANDOM)
        .tempfile_in(&save.dir)
        .map_err(|err| {
            format!(
                "cannot make a file in the save directory: {}",
                for_peer(&err)
            )
        })?;
    Ok(Prepared {
        header,
        partial: Partial::Temp(temp),
        overwrite: save.overwrite,
    })
}
