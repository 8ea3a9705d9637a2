//! A folder walked for sending: every folder before what it holds, names
//! in byte order, no link followed, and what is not sent (links, special
//! files, names a receiver would refuse) set aside with why. Apart from
//! `send.rs` because the walk only reads the local tree, on a blocking
//! thread, before the socket is touched.

use std::os::unix::fs::FileTypeExt;

use msg_proto::tree::{EntryKind, TreeEntry, TreePath, TreeStart};

use super::super::send::mode;
use super::super::*;
use super::Skipped;

/// The folder as walked: what to send, and what not.
pub(super) struct Walk {
    pub(super) start: TreeStart,
    /// Each entry, with the local path of a file.
    pub(super) entries: Vec<(TreeEntry, PathBuf)>,
    pub(super) skipped: Vec<Skipped>,
}

/// Walks `dir`: folders before what they hold, names in byte order, no
/// link followed; links and special files skipped, with why.
pub(super) fn walk(dir: &Path) -> Result<Walk, FileError> {
    let read = |source| FileError::Read {
        path: dir.to_owned(),
        source,
    };
    let meta = fs::metadata(dir).map_err(read)?;
    let name = dir
        .canonicalize()
        .ok()
        .and_then(|path| path.file_name().and_then(|n| n.to_str()).map(str::to_owned))
        .unwrap_or_default();
    let name = FileName::new(&name).map_err(|source| FileError::Name {
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
    };
    let mut children = list(dir).map_err(read)?;
    // Nothing goes before the walk ends (the `TreeStart` carries its
    // totals): the second half of the top folder is walked on a thread of
    // its own meanwhile, then put after the first, as one walk would.
    let tail = children.split_off(children.len().div_ceil(2));
    let mut rest = Walk {
        start: walk.start.clone(),
        entries: Vec::new(),
        skipped: Vec::new(),
    };
    std::thread::scope(|scope| {
        let helper = (!tail.is_empty()).then(|| {
            std::thread::Builder::new().spawn_scoped(scope, || visit_all(&tail, "", &mut rest))
        });
        visit_all(&children, "", &mut walk)?;
        match helper {
            Some(Ok(helper)) => helper
                .join()
                // Cannot panic; the walk fails rather than send a part.
                .unwrap_or_else(|_| Err(io::Error::other("the walk's second thread failed"))),
            // No second thread: the second half here, after the first.
            Some(Err(_)) => visit_all(&tail, "", &mut walk),
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

/// The entries of `dir`, by name.
fn list(dir: &Path) -> io::Result<Vec<fs::DirEntry>> {
    let mut children: Vec<fs::DirEntry> = fs::read_dir(dir)?.collect::<io::Result<_>>()?;
    // Each name fetched once, not twice a comparison.
    children.sort_by_cached_key(fs::DirEntry::file_name);
    Ok(children)
}

fn visit(dir: &Path, prefix: &str, walk: &mut Walk) -> io::Result<()> {
    visit_all(&list(dir)?, prefix, walk)
}

fn visit_all(children: &[fs::DirEntry], prefix: &str, walk: &mut Walk) -> io::Result<()> {
    for child in children {
        let local = child.path();
        let skip = |walk: &mut Walk, why: String| {
            walk.skipped.push(Skipped {
                path: local.clone(),
                why,
            });
        };
        let Some(part) = child.file_name().to_str().map(str::to_owned) else {
            skip(walk, "its name is not UTF-8".to_owned());
            continue;
        };
        let path = match TreePath::new(&format!("{prefix}{part}")) {
            Ok(path) => path,
            Err(err) => {
                skip(walk, err.to_string());
                continue;
            }
        };
        // The entry itself: a link is a link, never what it points to.
        let meta = child.metadata()?;
        let kind = meta.file_type();
        if kind.is_symlink() {
            skip(walk, "a symbolic link: links are not sent".to_owned());
        } else if kind.is_dir() {
            walk.start.folders += 1;
            walk.entries.push((
                TreeEntry {
                    kind: EntryKind::Folder,
                    mode: mode(&meta),
                    size: 0,
                    path: path.clone(),
                },
                local.clone(),
            ));
            visit(&local, &format!("{path}/"), walk)?;
        } else if kind.is_file() {
            walk.start.files += 1;
            walk.start.bytes += meta.len();
            walk.entries.push((
                TreeEntry {
                    kind: EntryKind::File,
                    mode: mode(&meta),
                    size: meta.len(),
                    path,
                },
                local,
            ));
        } else {
            let what = if kind.is_fifo() {
                "a FIFO"
            } else if kind.is_socket() {
                "a socket"
            } else {
                "a device"
            };
            skip(walk, format!("{what}: special files are not sent"));
        }
    }
    Ok(())
}
