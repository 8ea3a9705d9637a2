//! Folders, both ends: `msg send --file DIR` and what `msg listen
//! --save-dir` does with one.
//!
//! ```text
//! sender                                   receiver
//!   TreeStart (name, mode, counts)      ──>  makes or opens the folder
//!                                       <──  FileResult: ready (or refused)
//!   TreeEntry, [FileChunk…, FileEnd]    ──>  per entry, on a writing thread:
//!   … every entry, without waiting …    ──>  opened part by part, no link followed,
//!   TreeEnd                             ──>  each file unnamed, then linked
//!                                       <──  FileResult per entry, in order
//!                                       <──  FileResult: saved (the folder)
//! ```
//!
//! The sender streams every entry without waiting for its verdict, so a
//! folder of ten thousand small files costs no round trip per file; it
//! reads the verdicts that have arrived before each entry. A refused entry
//! (a hostile path, a name taken, a link where a folder should be) is
//! answered and skipped, and the rest goes on, unless the sender asked to
//! stop at the first (`strict`).
//!
//! What the sender sends: folders and regular files. Symbolic links are
//! skipped, never followed, and so are devices, FIFOs and sockets; each is
//! reported as skipped.

mod place;
mod read;
mod receive;
mod send;
mod walk;
mod write;

pub(super) use place::{create_partial, rename_into_place};
pub(crate) use receive::receive_tree;
pub(crate) use send::send_tree;

use std::path::PathBuf;
use std::time::Duration;

/// How a folder is sent.
#[derive(Debug, Clone, Copy)]
pub struct TreeOptions {
    /// How long to wait for the receiver to accept the folder, and for
    /// each verdict at the end (longer the more bytes may still be on
    /// their way to the receiver's disk).
    pub wait: Duration,
    /// Stop at the first refused entry.
    pub strict: bool,
}

/// What the sender could not send, and why.
#[derive(Debug, Clone)]
pub struct Skipped {
    /// The local path.
    pub path: PathBuf,
    /// Why, for a human.
    pub why: String,
    /// A file or folder that should have gone and could not: unreadable,
    /// changed since the walk, or a name msg cannot carry. The send fails
    /// for it, as tar's and rsync's do (audit, round sixteen: exit 0).
    /// Links and special files are never sent, by design: not failures.
    pub failed: bool,
}

/// One entry as the receiver answered it.
#[derive(Debug, Clone)]
pub struct EntryReport {
    /// Its path inside the folder, safe to print.
    pub path: String,
    /// A folder, not a file.
    pub folder: bool,
    /// A file's size.
    pub size: u64,
    /// A file's BLAKE3, in hex, as the sender computed it.
    pub hash: Option<String>,
    /// The receiver's reason when it refused the entry, safe to print.
    pub refused: Option<String>,
}

/// What happens while a folder is sent, for the caller to show.
pub trait TreeReport {
    /// The folder was walked: its files and their bytes.
    fn started(&mut self, files: u64, bytes: u64);
    /// Content bytes sent so far.
    fn progress(&mut self, sent: u64);
    /// The receiver's verdict on an entry.
    fn entry(&mut self, entry: &EntryReport);
    /// Something the sender did not send.
    fn skipped(&mut self, skipped: &Skipped);
}

/// A folder the receiver answered for.
#[derive(Debug, Clone)]
pub struct TreeSent {
    /// Its name.
    pub name: String,
    /// Files saved.
    pub files: u64,
    /// Folders made or found.
    pub folders: u64,
    /// Bytes of the files saved.
    pub bytes: u64,
    /// Entries refused.
    pub refused: u64,
    /// What was not sent.
    pub skipped: u64,
    /// Of those, what should have gone and could not ([`Skipped::failed`]).
    pub failed: u64,
    /// From the start to the last verdict.
    pub elapsed: Duration,
}
