//! A folder walked for sending: every folder before what it holds, names
//! in byte order, no link followed, and what is not sent (links, special
//! files, names a receiver would refuse) set aside with why. Apart from
//! `send.rs` because the walk only reads the local tree, on a blocking
//! thread, before the socket is touched.

use std::ffi::OsStr;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;

use msg_proto::tree::{EntryKind, TreeEntry, TreePath, TreeStart};
use rustix::fs::{AtFlags, FileType, Mode, OFlags, Stat};

use super::super::*;
use super::Skipped;

/// The folder as walked: what to send, and what not.
pub(super) struct Walk {
    pub(super) start: TreeStart,
    /// Each entry, with its local path (for what is said of it).
    pub(super) entries: Vec<(TreeEntry, PathBuf)>,
    pub(super) skipped: Vec<Skipped>,
    /// The folder itself, open since before the walk: everything in it is
    /// listed and read from here down ([`open_below`]).
    pub(super) root: OwnedFd,
}

/// Opens the folder `rel` (its parts joined by `/`; "" for `root` itself)
/// below `root`, one part at a time, never following a link.
///
/// # Why not by its path
///
/// The folder being sent may be one that others can write to. Between
/// the walk and the reading, a user could put a link where a subfolder
/// was (`sub -> /etc`), or where the folder itself was, and a path would
/// follow it: `msg send --file DIR` run as root sent `/etc/shadow`
/// (audit, round four). From the folder opened before the walk, part by
/// part with `O_NOFOLLOW`, a link is refused wherever it appears.
pub(super) fn open_below(root: BorrowedFd<'_>, rel: &str) -> io::Result<OwnedFd> {
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let mut dir = rustix::fs::openat(root, ".", flags, Mode::empty())?;
    for part in rel.split('/').filter(|part| !part.is_empty()) {
        dir = rustix::fs::openat(&dir, part, flags, Mode::empty())?;
    }
    Ok(dir)
}

/// The folder `rel` below `root`, opened as [`open_below`] opens it, and
/// kept in `last` for the next call: from `last` itself when it is that
/// folder or one above it, else from `root`.
///
/// Folders come one after another as a walk goes down, each below the one
/// before. Opened from `root` each time, a chain of folders N deep cost
/// N²/2 opens: 1,900 deep, some 1.8 million, seconds of system time on
/// both ends, and a sender that gave up waiting for an answer (audit,
/// round four). From the one before, it costs one open each; going back
/// up, or across, costs the depth of the folder opened.
pub(super) fn open_after<'a>(
    root: BorrowedFd<'_>,
    last: &'a mut Option<(String, OwnedFd)>,
    rel: &str,
) -> io::Result<BorrowedFd<'a>> {
    let reuse = matches!(&*last, Some((open, _)) if open == rel);
    if !reuse {
        let below = last.as_ref().and_then(|(open, dir)| {
            let rest = match open.as_str() {
                "" => rel,
                open => rel.strip_prefix(open)?.strip_prefix('/')?,
            };
            Some((dir.as_fd(), rest))
        });
        let dir = match below {
            Some((from, rest)) => open_below(from, rest)?,
            None => open_below(root, rel)?,
        };
        *last = Some((rel.to_owned(), dir));
    }
    Ok(last.as_ref().expect("set above").1.as_fd())
}

/// Walks `dir`: folders before what they hold, names in byte order, no
/// link followed; links and special files skipped, with why.
pub(super) fn walk(dir: &Path) -> Result<Walk, FileError> {
    let read = |source| FileError::Read {
        path: dir.to_owned(),
        source,
    };
    // The name the user gave is followed (a link to a folder is that
    // folder), once, here; nothing below it is.
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
    let root = rustix::fs::open(dir, flags, Mode::empty()).map_err(|err| read(err.into()))?;
    let meta = rustix::fs::fstat(&root).map_err(|err| read(err.into()))?;
    // Saved under the name the user gave it, as `cp -r` and tar name it:
    // a link to a folder is its own name, not its target's (audit, round
    // sixteen). Only `.`, `..` or `/`, which name no folder by
    // themselves, take the name the folder has.
    let given = dir
        .file_name()
        .map(ToOwned::to_owned)
        .or_else(|| dir.canonicalize().ok()?.file_name().map(ToOwned::to_owned))
        .unwrap_or_default();
    let name =
        FileName::from_bytes(given.as_encoded_bytes()).map_err(|source| FileError::Name {
            path: dir.to_owned(),
            source,
        })?;
    let mut walk = Walk {
        start: TreeStart {
            name,
            mode: mode(&meta),
            files: 0,
            folders: 0,
            bytes: 0,
        },
        entries: Vec::new(),
        skipped: Vec::new(),
        root,
    };
    let root = walk.root.try_clone().map_err(read)?;
    let root = root.as_fd();
    let mut children = list(root, &mut None, "").map_err(read)?;
    // Nothing goes before the walk ends (the `TreeStart` carries its
    // totals): the second half of the top folder is walked on a thread of
    // its own meanwhile, then put after the first, as one walk would.
    let tail = children.split_off(children.len().div_ceil(2));
    let mut rest = Walk {
        start: walk.start.clone(),
        entries: Vec::new(),
        skipped: Vec::new(),
        root: walk.root.try_clone().map_err(read)?,
    };
    std::thread::scope(|scope| {
        let helper = (!tail.is_empty()).then(|| {
            std::thread::Builder::new().spawn_scoped(scope, || {
                visit_all(root, &mut None, &tail, dir, "", &mut rest)
            })
        });
        let mut last = None;
        visit_all(root, &mut last, &children, dir, "", &mut walk)?;
        match helper {
            Some(Ok(helper)) => helper
                .join()
                // Cannot panic; the walk fails rather than send a part.
                .unwrap_or_else(|_| Err(io::Error::other("the walk's second thread failed"))),
            // No second thread: the second half here, after the first.
            Some(Err(_)) => visit_all(root, &mut last, &tail, dir, "", &mut walk),
            None => Ok(()),
        }
    })
    .map_err(read)?;
    walk.start.files += rest.start.files;
    walk.start.folders += rest.start.folders;
    walk.start.bytes += rest.start.bytes;
    walk.entries.append(&mut rest.entries);
    walk.skipped.append(&mut rest.skipped);
    Ok(walk)
}

/// One entry of a folder as the walk found it: its name, and what it is
/// itself (a link is a link, never what it points to).
struct Child {
    name: std::ffi::OsString,
    stat: Stat,
}

/// The permission bits a folder or file is sent with.
fn mode(stat: &Stat) -> u32 {
    stat.st_mode & 0o777
}

/// The entries of the folder `rel` below `root` ([`open_after`] the
/// folder listed before, `last`), by name.
fn list(
    root: BorrowedFd<'_>,
    last: &mut Option<(String, OwnedFd)>,
    rel: &str,
) -> io::Result<Vec<Child>> {
    let dir = open_after(root, last, rel)?;
    let mut children = Vec::new();
    for entry in rustix::fs::Dir::read_from(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        if matches!(name.to_bytes(), b"." | b"..") {
            continue;
        }
        let stat = rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW)?;
        children.push(Child {
            name: OsStr::from_bytes(name.to_bytes()).to_owned(),
            stat,
        });
    }
    children.sort_unstable_by(|a, b| a.name.cmp(&b.name));
    Ok(children)
}

/// A folder the walk is inside: what of it is still to visit, its local
/// path and its path in the tree, with a `/` after it.
struct Level {
    children: std::vec::IntoIter<Child>,
    local: PathBuf,
    prefix: String,
}

/// Walks `children`, the entries of the local folder `local` (the tree's
/// `prefix`), into `walk`: each folder's entries right after it, as a
/// recursion would, from a stack of [`Level`]s on the heap. A tree may be
/// as deep as a path allows (2,048 folders of one letter), and a frame a
/// folder overflowed a thread's stack (audit, round four).
fn visit_all(
    root: BorrowedFd<'_>,
    last: &mut Option<(String, OwnedFd)>,
    children: &[Child],
    local: &Path,
    prefix: &str,
    walk: &mut Walk,
) -> io::Result<()> {
    let mut stack: Vec<Level> = Vec::new();
    for child in children {
        let mut inside = visit(root, last, child, local, prefix, walk)?;
        // Bounded by the tree: each pass visits an entry or leaves a
        // folder.
        loop {
            stack.extend(inside.take());
            let Some(top) = stack.last_mut() else { break };
            match top.children.next() {
                Some(child) => {
                    inside = visit(root, last, &child, &top.local, &top.prefix, walk)?;
                }
                None => {
                    stack.pop();
                }
            }
        }
    }
    Ok(())
}

/// Visits `child`, an entry of the local folder `local` (the tree's
/// `prefix`): a file is counted, a folder counted and listed (`Some`, for
/// the caller to go into), anything else set aside with why.
fn visit(
    root: BorrowedFd<'_>,
    last: &mut Option<(String, OwnedFd)>,
    child: &Child,
    local: &Path,
    prefix: &str,
    walk: &mut Walk,
) -> io::Result<Option<Level>> {
    let local = local.join(&child.name);
    let skip = |walk: &mut Walk, why: String, failed: bool| {
        walk.skipped.push(Skipped {
            path: local.clone(),
            why,
            failed,
        });
    };
    let Some(part) = child.name.to_str().map(str::to_owned) else {
        skip(walk, "its name is not UTF-8".to_owned(), true);
        return Ok(None);
    };
    let path = match TreePath::new(&format!("{prefix}{part}")) {
        Ok(path) => path,
        Err(err) => {
            skip(walk, err.to_string(), true);
            return Ok(None);
        }
    };
    match FileType::from_raw_mode(child.stat.st_mode) {
        FileType::Symlink => skip(
            walk,
            "a symbolic link: links are not sent".to_owned(),
            false,
        ),
        FileType::Directory => {
            // A folder that cannot be listed (unreadable) is skipped with
            // what it holds, and the rest goes: it failed the whole folder
            // before, under the top folder's name (audit, round sixteen).
            let children = match list(root, last, path.as_str()) {
                Ok(children) => children.into_iter(),
                Err(err) => {
                    skip(walk, format!("cannot read it: {err}"), true);
                    return Ok(None);
                }
            };
            walk.start.folders += 1;
            walk.entries.push((
                TreeEntry {
                    kind: EntryKind::Folder,
                    mode: mode(&child.stat),
                    size: 0,
                    path: path.clone(),
                },
                local.clone(),
            ));
            return Ok(Some(Level {
                children,
                local,
                prefix: format!("{path}/"),
            }));
        }
        FileType::RegularFile => {
            let size = u64::try_from(child.stat.st_size).unwrap_or(0);
            walk.start.files += 1;
            walk.start.bytes += size;
            walk.entries.push((
                TreeEntry {
                    kind: EntryKind::File,
                    mode: mode(&child.stat),
                    size,
                    path,
                },
                local,
            ));
        }
        kind => {
            let what = match kind {
                FileType::Fifo => "a FIFO",
                FileType::Socket => "a socket",
                _ => "a device",
            };
            skip(walk, format!("{what}: special files are not sent"), false);
        }
    }
    Ok(None)
}
