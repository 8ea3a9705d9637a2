//! A folder's writing thread: every file operation of one folder,
//! relative to the folder's descriptor, one part of a path at a time and
//! never through a symbolic link.
//!
//! A file's content goes into a file without a name (`O_TMPFILE`, on
//! Linux) that is linked under its final name once its size and hash check
//! out, and never over an existing one (`linkat` fails on a name taken):
//! at no moment is a partial file under a final name, and a file given up
//! (or a listener killed) leaves nothing behind, since a file without a
//! name goes when it is closed. Where that is not possible (another
//! system, a file system without `O_TMPFILE`, `--overwrite`, which must
//! replace), the content goes into a partial file beside the final name,
//! renamed into place at the end.
//!
//! This file holds the thread's loop and the folders, each opened part by
//! part from the root; `file.rs` one file, from its staging to its name.

use std::os::fd::OwnedFd;
use std::rc::Rc;

use msg_proto::file::FileEnd;
use msg_proto::tree::TreeEntry;
use rustix::fs::{AtFlags, Mode, OFlags};
use rustix::io::Errno;

use super::super::*;

mod file;

use file::{Incoming, Staging};

/// What the socket side hands the writing thread, in the order of the
/// entries.
pub(super) enum Op {
    Folder(TreeEntry),
    File(TreeEntry),
    /// An entry refused by its own bytes (its path, its type).
    Refuse(String),
    /// The next piece of the current file.
    Data(Bytes),
    /// The current file's end, its size checked by msg-proto, and the
    /// BLAKE3 of the content as it came (hashed on the socket's side, off
    /// this thread, which the file system keeps busy enough).
    End(Result<FileEnd, msg_proto::file::FileError>, [u8; 32]),
}

/// The thread's answer to one entry, in order.
pub(super) struct Verdict {
    pub(super) result: FileResult,
    /// A saved file: its path, size and digest, for the listener's output.
    pub(super) saved: Option<(String, u64, [u8; 32])>,
}

/// The thread that does every file operation of one folder.
pub(super) struct Writer {
    root: OwnedFd,
    overwrite: bool,
    /// Whether a file may already be at an entry's name: not in a folder
    /// this transfer made, so no look before the content is written (the
    /// link or rename at the end still refuses a name taken meanwhile).
    look_first: bool,
    /// How files are staged until they check out.
    staging: Staging,
    verdicts: mpsc::UnboundedSender<Verdict>,
    /// The current file, if one is arriving.
    current: Current,
    /// The last folder a file was opened in, by its path: entries come
    /// folder by folder.
    parent: Option<(String, Rc<OwnedFd>)>,
    /// The folders this transfer made whose modes would keep it out of
    /// them (no read, write or search for the owner): given their modes at
    /// the end, once filled. Every other folder gets its mode when made,
    /// so what is held here follows what such modes ask, at most
    /// [`MAX_DEFERRED`] paths.
    made: Vec<(String, u32)>,
    /// The process's umask, when known: a file without a name made with
    /// a mode it takes nothing from needs no `fchmod` at the end.
    umask: Option<u32>,
    /// The last folder asked whether it has a default ACL (which stands in
    /// for the umask), and whether it is free of one.
    acl_free: Option<(Rc<OwnedFd>, bool)>,
}

enum Current {
    None,
    /// A refused file whose content still comes: dropped.
    Discard,
    Writing(Box<Incoming>),
}

impl Writer {
    /// A writer into `root`, which this transfer made (`made`) or found.
    pub(super) fn new(
        root: OwnedFd,
        made: bool,
        overwrite: bool,
        verdicts: mpsc::UnboundedSender<Verdict>,
    ) -> Self {
        // A file without a name is Linux's; with `--overwrite` it is
        // linked under a partial name at its end and renamed over the old
        // file (a link cannot replace one).
        let staging = if !cfg!(any(target_os = "linux", target_os = "android")) {
            Staging::Partial
        } else {
            Staging::Unnamed
        };
        Self {
            root,
            overwrite,
            look_first: !made && !overwrite,
            staging,
            verdicts,
            current: Current::None,
            parent: None,
            made: Vec::new(),
            umask: super::place::process_umask(),
            acl_free: None,
        }
    }

    pub(super) fn run(mut self, mut ops: mpsc::Receiver<Vec<Op>>, root_mode: Option<u32>) {
        while let Some(batch) = ops.blocking_recv() {
            for op in batch {
                self.on(op);
            }
        }
        // Cut off mid-file: the partial file goes.
        self.drop_current();
        // The modes last, deepest first, so that a folder without write
        // permission is still filled.
        for (path, mode) in self.made.iter().rev() {
            let parts: Vec<&str> = path.split('/').collect();
            if let Ok(fd) = walk(&self.root, &parts) {
                let _ = rustix::fs::fchmod(&fd, Mode::from_raw_mode(mode & mode_mask()));
            }
        }
        if let Some(mode) = root_mode {
            let _ = rustix::fs::fchmod(&self.root, Mode::from_raw_mode(mode & mode_mask()));
        }
    }

    fn on(&mut self, op: Op) {
        match op {
            Op::Folder(entry) => {
                self.drop_current();
                let result = self.folder(&entry);
                self.verdict(entry, result, None);
            }
            Op::File(entry) => {
                self.drop_current();
                match self.open_file(&entry) {
                    Ok(incoming) => self.current = Current::Writing(Box::new(incoming)),
                    Err(reason) => {
                        self.current = Current::Discard;
                        self.verdict(entry, Err(reason), None);
                    }
                }
            }
            Op::Refuse(reason) => {
                self.drop_current();
                // A refused file's content still comes.
                self.current = Current::Discard;
                self.send(Verdict {
                    result: FileResult::Refused { reason },
                    saved: None,
                });
            }
            Op::Data(bytes) => {
                if let Current::Writing(incoming) = &mut self.current {
                    if incoming.failed.is_none() {
                        if let Err(err) = incoming.out.write_all(&bytes) {
                            incoming.failed = Some(err);
                        }
                    }
                }
            }
            Op::End(end, digest) => {
                let current = std::mem::replace(&mut self.current, Current::None);
                if let Current::Writing(mut incoming) = current {
                    let result = self.finish(&mut incoming, end, &digest);
                    let saved = result.is_ok().then_some(digest);
                    let Incoming { entry, .. } = *incoming;
                    self.verdict(entry, result, saved);
                }
            }
        }
    }

    fn verdict(&self, entry: TreeEntry, result: Result<(), String>, digest: Option<[u8; 32]>) {
        self.send(match result {
            Ok(()) => {
                let path = entry.path.as_str().to_owned();
                Verdict {
                    saved: digest.map(|digest| (path.clone(), entry.size, digest)),
                    result: FileResult::Saved { name: path },
                }
            }
            Err(reason) => Verdict {
                result: FileResult::Refused { reason },
                saved: None,
            },
        });
    }

    fn send(&self, verdict: Verdict) {
        // The socket side gone: nobody to tell.
        let _ = self.verdicts.send(verdict);
    }

    /// Removes the partial file of a file that will not be finished.
    fn drop_current(&mut self) {
        if let Current::Writing(incoming) = std::mem::replace(&mut self.current, Current::None) {
            incoming.discard();
        }
    }

    /// The folder that holds `entry`, opened part by part (kept for the
    /// entries that follow in the same folder): from the folder kept, when
    /// it is one above, else from the root.
    ///
    /// A sender's entries come folder by folder, each folder below the one
    /// before as its walk goes down. From the root each time, a chain of
    /// folders N deep cost N²/2 opens (1,900 deep: seconds, and a sender
    /// that gave up waiting; audit, round four); from the one before, one
    /// each.
    fn parent_of(&mut self, entry: &TreeEntry) -> Result<Rc<OwnedFd>, String> {
        let path = entry.path.as_str();
        let above = path.rfind('/').map_or("", |slash| &path[..slash]);
        let mut from = (&self.root, above);
        if let Some((cached, fd)) = &self.parent {
            if cached == above {
                return Ok(Rc::clone(fd));
            }
            let rest = match cached.as_str() {
                "" => Some(above),
                cached => above
                    .strip_prefix(cached)
                    .and_then(|rest| rest.strip_prefix('/')),
            };
            if let Some(rest) = rest {
                from = (&**fd, rest);
            }
        }
        let parts: Vec<&str> = from.1.split('/').filter(|part| !part.is_empty()).collect();
        let fd = Rc::new(walk(from.0, &parts)?);
        self.parent = Some((above.to_owned(), Rc::clone(&fd)));
        Ok(fd)
    }

    fn folder(&mut self, entry: &TreeEntry) -> Result<(), String> {
        let parent = self.parent_of(entry)?;
        let name = entry.path.file_name();
        match rustix::fs::mkdirat(&*parent, name.as_str(), Mode::RWXU) {
            Ok(()) => {
                let owner_in = entry.mode & 0o700 == 0o700;
                if owner_in || self.made.len() >= MAX_DEFERRED {
                    // Past the cap, a folder that keeps its owner out gets
                    // its mode now: what it should hold is then refused,
                    // entry by entry, as it would be there.
                    let moded =
                        rustix::fs::openat(&*parent, name.as_str(), dir_flags(), Mode::empty())
                            .map_err(|err| {
                                format!("cannot open the folder made for it: {}", errno_text(err))
                            })
                            .and_then(|fd| {
                                rustix::fs::fchmod(
                                    &fd,
                                    Mode::from_raw_mode(entry.mode & mode_mask()),
                                )
                                .map_err(|err| {
                                    format!("cannot set the folder's mode: {}", errno_text(err))
                                })
                            });
                    if let Err(why) = moded {
                        // Refused, so not left behind at 0700, empty
                        // (out of descriptors, it said only "Too many open
                        // files"; audit, round seven).
                        let _ = rustix::fs::unlinkat(&*parent, name.as_str(), AtFlags::REMOVEDIR);
                        return Err(why);
                    }
                } else {
                    self.made.push((entry.path.as_str().to_owned(), entry.mode));
                }
                Ok(())
            }
            Err(Errno::EXIST) => {
                let stat = rustix::fs::statat(&*parent, name.as_str(), AtFlags::SYMLINK_NOFOLLOW)
                    .map_err(errno_text)?;
                if rustix::fs::FileType::from_raw_mode(stat.st_mode)
                    == rustix::fs::FileType::Directory
                {
                    Ok(())
                } else {
                    Err(crate::refusal::NOT_A_FOLDER.format(shown(entry)))
                }
            }
            Err(err) => Err(format!("cannot make the folder: {}", errno_text(err))),
        }
    }
}

/// The most folders of one transfer whose modes wait for its end (those
/// that keep their owner out): each holds its path, up to 4 KiB.
const MAX_DEFERRED: usize = 4096;

/// A folder, opened to work relative to it, never through a link.
pub(super) fn dir_flags() -> OFlags {
    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC
}

/// What the peer is told of a system error: its description alone.
pub(super) fn errno_text(err: Errno) -> String {
    io::Error::from(err).to_string()
}

/// An entry's path, made safe to show.
fn shown(entry: &TreeEntry) -> String {
    crate::text::printable(entry.path.as_str().as_bytes())
}

/// Opens `parts` below `root`, one at a time, none of them a link.
fn walk(root: &OwnedFd, parts: &[&str]) -> Result<OwnedFd, String> {
    let mut fd = root
        .try_clone()
        .map_err(|err| format!("cannot open its folder: {err}"))?;
    for part in parts {
        fd = rustix::fs::openat(&fd, *part, dir_flags(), Mode::empty()).map_err(
            |err| match err {
                Errno::LOOP | Errno::NOTDIR => crate::refusal::NOT_A_FOLDER_PART.to_owned(),
                Errno::NOENT => crate::refusal::NO_FOLDER.to_owned(),
                err => format!("cannot open its folder: {}", errno_text(err)),
            },
        )?;
    }
    Ok(fd)
}
