//! One file of a folder, from its entry to its name: staged as a file
//! without a name or a partial one, written as its chunks come, checked
//! at its end (size, hash) and linked or renamed into place, or removed.
//! Apart from the writing thread's loop in `mod.rs`, which only says
//! which entry comes next, because this is the one place a file's
//! content is kept, and where a partial file could be left behind.

use std::os::fd::{AsFd, OwnedFd};
use std::rc::Rc;

use msg_proto::file::FileEnd;
use msg_proto::tree::TreeEntry;
use rustix::fs::{AtFlags, Mode};
use rustix::io::Errno;

use super::super::super::receive::for_peer;
use super::super::super::*;
use super::super::place::{
    create_partial, create_unnamed, no_default_acl, partial_name, rename_into_place,
};
use super::{Writer, errno_text, shown};

/// Where a file's content waits for its end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Staging {
    /// A file without a name, linked by its descriptor (`AT_EMPTY_PATH`).
    Unnamed,
    /// A file without a name, linked through `/proc/self/fd` (where the
    /// kernel allows `AT_EMPTY_PATH` only to privileged callers).
    #[cfg_attr(not(any(target_os = "linux", target_os = "android")), allow(dead_code))]
    UnnamedProc,
    /// A partial file, renamed into place.
    Partial,
}

/// A file being written.
pub(super) struct Incoming {
    pub(super) entry: TreeEntry,
    parent: Rc<OwnedFd>,
    /// The partial file's name; `None` for a file without a name.
    partial: Option<String>,
    /// Written straight: chunks come whole (up to 1 MiB), and a buffer of
    /// a chunk's size per file cost ten thousand small files an mmap each.
    pub(super) out: fs::File,
    /// The first write error: the rest of the content is dropped.
    pub(super) failed: Option<io::Error>,
    /// Made with its entry's mode exactly: no `fchmod` at the end.
    mode_set: bool,
}

impl Incoming {
    /// Removes what was written (a file without a name goes on close).
    pub(super) fn discard(&self) {
        if let Some(partial) = &self.partial {
            let _ = rustix::fs::unlinkat(&*self.parent, partial, AtFlags::empty());
        }
    }
}

impl Writer {
    pub(super) fn open_file(&mut self, entry: &TreeEntry) -> Result<Incoming, String> {
        let parent = self.parent_of(entry)?;
        if self.look_first {
            let name = entry.path.file_name();
            if rustix::fs::statat(&*parent, name.as_str(), AtFlags::SYMLINK_NOFOLLOW).is_ok() {
                return Err(crate::refusal::FILE_EXISTS.format(shown(entry)));
            }
        }
        let cannot = |err| format!("cannot make a file in its folder: {}", errno_text(err));
        let mut mode_set = false;
        let (partial, fd) = if self.staging == Staging::Partial {
            let (name, fd) = create_partial(parent.as_fd()).map_err(cannot)?;
            (Some(name), fd)
        } else {
            match create_unnamed(parent.as_fd(), entry.mode) {
                Ok(fd) => {
                    mode_set = self.made_exact(&parent, entry.mode);
                    (None, fd)
                }
                // A file system without files without names: partial files
                // from now on.
                Err(Errno::OPNOTSUPP | Errno::ISDIR | Errno::INVAL) => {
                    self.staging = Staging::Partial;
                    let (name, fd) = create_partial(parent.as_fd()).map_err(cannot)?;
                    (Some(name), fd)
                }
                Err(err) => return Err(cannot(err)),
            }
        };
        Ok(Incoming {
            entry: entry.clone(),
            parent,
            partial,
            out: fs::File::from(fd),
            failed: None,
            mode_set,
        })
    }

    /// Whether a file made in `parent` with `mode` (and the owner's read
    /// and write, see [`create_unnamed`]) got exactly `mode`: the owner
    /// had both already, the umask takes none of its bits, and no default
    /// ACL on the folder took the umask's place. Asked once a folder.
    fn made_exact(&mut self, parent: &Rc<OwnedFd>, mode: u32) -> bool {
        let mode = mode & mode_mask();
        let Some(umask) = self.umask else {
            return false;
        };
        if mode & 0o600 != 0o600 || mode & umask != 0 {
            return false;
        }
        match &self.acl_free {
            Some((fd, free)) if Rc::ptr_eq(fd, parent) => *free,
            _ => {
                let free = no_default_acl(parent);
                self.acl_free = Some((Rc::clone(parent), free));
                free
            }
        }
    }

    /// Checks a file at its end and puts it in place, or removes it.
    pub(super) fn finish(
        &mut self,
        incoming: &mut Incoming,
        end: Result<FileEnd, msg_proto::file::FileError>,
        digest: &[u8; 32],
    ) -> Result<(), String> {
        let failed = incoming.failed.take();
        let incoming = &*incoming;
        let entry = &incoming.entry;
        let checked = (|| {
            let end = end.map_err(|err| err.to_string())?;
            if let Some(err) = failed {
                return Err(format!("cannot write the file: {}", for_peer(&err)));
            }
            end.check(digest).map_err(|err| err.to_string())?;
            if !incoming.mode_set {
                rustix::fs::fchmod(&incoming.out, Mode::from_raw_mode(entry.mode & mode_mask()))
                    .map_err(errno_text)?;
            }
            let name = entry.path.file_name();
            let placed = match &incoming.partial {
                Some(partial) => {
                    rename_into_place(&incoming.parent, partial, name.as_str(), self.overwrite)
                }
                None if self.overwrite => self.link_over(incoming, name.as_str()),
                None => self.link(incoming, name.as_str()),
            };
            placed.map_err(|err| match err {
                Errno::EXIST => crate::refusal::FILE_EXISTS.format(shown(entry)),
                err => format!("cannot save it: {}", errno_text(err)),
            })
        })();
        if checked.is_err() {
            incoming.discard();
        }
        checked
    }

    /// Gives the file without a name its name over whatever has it
    /// (`--overwrite`): a link never replaces a name, so the file is
    /// linked under a fresh partial name and that is renamed over the old
    /// file. The partial name exists for one rename, not for the whole
    /// transfer as a partial file's does, so a listener killed mid-file
    /// leaves nothing behind in the folder, where the clean-up at start
    /// does not look.
    fn link_over(&mut self, incoming: &Incoming, name: &str) -> Result<(), Errno> {
        // A taken partial name is tried again, a bounded number of times.
        for _ in 0..64 {
            let partial = partial_name();
            match self.link(incoming, &partial) {
                Ok(()) => {}
                Err(Errno::EXIST) => continue,
                Err(err) => return Err(err),
            }
            let dir = &*incoming.parent;
            let renamed = rustix::fs::renameat(dir, partial.as_str(), dir, name);
            if renamed.is_err() {
                let _ = rustix::fs::unlinkat(dir, partial.as_str(), AtFlags::empty());
            }
            return renamed;
        }
        Err(Errno::EXIST)
    }

    /// Gives the file without a name its name, never over another file.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    fn link(&mut self, incoming: &Incoming, name: &str) -> Result<(), Errno> {
        let dir = &*incoming.parent;
        if self.staging == Staging::Unnamed {
            match rustix::fs::linkat(&incoming.out, "", dir, name, AtFlags::EMPTY_PATH) {
                // Refused to an unprivileged caller before Linux 6.10.
                Err(Errno::NOENT | Errno::PERM) => self.staging = Staging::UnnamedProc,
                linked => return linked,
            }
        }
        use std::os::fd::AsRawFd;
        let path = format!("/proc/self/fd/{}", incoming.out.as_raw_fd());
        rustix::fs::linkat(
            rustix::fs::CWD,
            path.as_str(),
            dir,
            name,
            AtFlags::SYMLINK_FOLLOW,
        )
    }

    /// Files without a name are Linux's: never staged elsewhere.
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    fn link(&mut self, _incoming: &Incoming, _name: &str) -> Result<(), Errno> {
        Err(Errno::OPNOTSUPP)
    }
}
