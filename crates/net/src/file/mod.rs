//! Files, both ends: `msg send --file` and `msg listen --save-dir`.
//!
//! The tutorial's answer to sticky packets, done so that nothing is lost
//! or left half-written:
//!
//! ```text
//! sender                                   receiver
//!   FileHeader (name, size, hash, mode) ──>  checks the name, makes a temporary file
//!                                       <──  FileResult: ready (or refused: why)
//!   FileChunk × n (≤ 1 MiB each)        ──>  hashes and writes each, refuses one past the size
//!   FileEnd (the BLAKE3 of the content) ──>  compares size and hash, renames into place
//!                                       <──  FileResult: saved as NAME (or refused: why)
//! ```
//!
//! Both sides hash while streaming, on a thread beside the socket (the
//! sender's reads the file and hashes, the receiver's hashes and writes),
//! so the hash never costs a second pass over the file, and a bounded
//! queue of chunks between thread and socket keeps memory flat whatever
//! the file's size. The receiver writes into a temporary file in the save
//! directory and renames it into place only once size and hash check out;
//! on every other path (a mismatch, a sender gone mid-way, a full disk, a
//! listener stopped with Ctrl-C) the temporary file is dropped, which
//! removes it; only a `kill -9` leaves one behind, which the next listener
//! on that directory removes once it is stale ([`remove_stale_partials`]).
//! The name is the receiver's choice too: a single validated
//! path component (msg-proto's `FileName`), never the sender's path.
//!
//! Both ends take a framed [`Connection<S>`](msg_tcp::Connection) over any
//! byte stream, not a TCP socket: the receiver reads and writes frames
//! only, and the sender also asks its [`Stream`] whether
//! an answer waits. So a file crosses a Unix socket or TLS the same way.

use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bytes::Bytes;
use msg_proto::file::{
    FileEnd, FileHeader, FileName, FileResult, HashAlgorithm, MAX_CHUNK, Receiving, chunk, hex,
};
use msg_proto::{Kind, Message};
use msg_tcp::{Connection, Stream};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;
use tracing::{info, warn};

use crate::{Error, Event, Events};

/// How many chunks may wait between the socket and the file's thread, on
/// either side: with 1 MiB chunks, at most 8 MiB per transfer.
const QUEUE_CHUNKS: usize = 8;

/// How long a receiver waits for the next chunk before it gives the
/// transfer up: a sender that stalls mid-file must not pin a temporary
/// file and a connection for ever.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// The name of a file being received, before it is renamed into place:
/// this prefix, then [`PARTIAL_RANDOM`] random letters and digits.
const PARTIAL_PREFIX: &str = ".msg-partial-";

/// How many random characters follow [`PARTIAL_PREFIX`].
const PARTIAL_RANDOM: usize = 6;

/// How long ago a partial file must last have been written for a starting
/// listener to remove it as stale ([`remove_stale_partials`]).
///
/// A listener removes its own partial files on every way out but one: a
/// `kill -9` (or a crash, or a power cut) leaves them behind. An hour is
/// far past [`IDLE_TIMEOUT`], after which a receiver gives up a transfer
/// whose sender sends nothing, so no transfer of a listener that stopped
/// is still going. It is long for the one case where a live transfer
/// could own such a file: a second listener saving into the same
/// directory, receiving so slowly that an hour passes without a single
/// buffered MiB reaching its file. Even then nothing is corrupted: that
/// transfer's rename fails and the sender is told it was refused.
pub const STALE_PARTIAL_AGE: Duration = Duration::from_secs(60 * 60);

/// Permission bits a received file never gets from its sender: setuid,
/// setgid, sticky, and write for group and others (as a umask of 022
/// would).
const MODE_MASK: u32 = 0o755;

/// Where a listener saves files.
#[derive(Debug, Clone)]
pub struct SaveConfig {
    /// The directory; nothing is written outside it.
    pub dir: PathBuf,
    /// Replace a file of the same name instead of refusing the transfer.
    pub overwrite: bool,
    /// Report [`Event::FileProgress`] after each chunk, for a progress bar.
    pub progress: bool,
}

impl SaveConfig {
    /// Readies `dir` for a listener that starts: made owner-only (0700)
    /// if missing, checked to be a directory, and rid of the partial files
    /// a listener killed mid-transfer left there over
    /// [`STALE_PARTIAL_AGE`] ago (a directory that cannot be listed costs
    /// space, not a start: logged).
    ///
    /// # Errors
    ///
    /// [`check_save_dir`]'s.
    pub fn prepare(dir: PathBuf, overwrite: bool, progress: bool) -> io::Result<Self> {
        if check_save_dir(&dir)? == SaveDir::Created {
            tracing::info!("created the save directory {} (mode 0700)", dir.display());
        }
        if let Err(err) = remove_stale_partials(&dir, STALE_PARTIAL_AGE) {
            tracing::warn!(
                "cannot look for stale partial files in {}: {err}",
                dir.display()
            );
        }
        Ok(Self {
            dir,
            overwrite,
            progress,
        })
    }
}

/// A file the receiver confirmed.
#[derive(Debug, Clone)]
pub struct Sent {
    /// The name the receiver says it saved it under, made safe to print
    /// ([`printable`](crate::text::printable)): the receiver chose it, and
    /// a hostile one could put terminal controls in it.
    pub name: String,
    /// Its size in bytes.
    pub size: u64,
    /// The BLAKE3 hash of its content, which the receiver computed too.
    pub digest: [u8; 32],
    /// From the header to the receiver's confirmation.
    pub elapsed: Duration,
}

impl Sent {
    /// The hash as `b3sum` prints it.
    pub fn hash(&self) -> String {
        hex(&self.digest)
    }
}

/// Why a file could not be sent or was not saved.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FileError {
    /// The local file cannot be read.
    #[error("cannot read {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The local path is not a regular file.
    #[error("{path} is not a regular file")]
    NotAFile {
        /// The path.
        path: PathBuf,
    },
    /// The file's name cannot be sent (not UTF-8, or refused by the
    /// rules every receiver applies).
    #[error("cannot send {path}")]
    Name {
        /// The path.
        path: PathBuf,
        /// Why.
        source: msg_proto::file::FileError,
    },
    /// The receiver refused the file; its reason, made safe to print.
    #[error("the receiver refused {name}: {reason}")]
    Refused {
        /// The file's name.
        name: String,
        /// The receiver's reason.
        reason: String,
    },
    /// The receiver answered something that is no file result.
    #[error(
        "the receiver answered {found:?} to a file transfer: is it a listener that saves files?"
    )]
    Unexpected {
        /// What came.
        found: Kind,
    },
    /// The receiver did not answer in time.
    #[error("no answer from the receiver within {}", humantime::format_duration(*.0))]
    NoAnswer(Duration),
    /// The receiver closed the connection without a verdict.
    #[error("the receiver closed the connection before confirming the file")]
    Closed,
    /// The receiver closed the connection at a folder's first message,
    /// as a listener older than folders does on a kind it does not know.
    #[error(
        "the receiver closed the connection at the start of the folder: \
         is it a msg listener older than folders (msg send --file DIR)?"
    )]
    NoFolders,
    /// Files go over TCP only.
    #[error("files need TCP: UDP does not promise delivery, and a file must arrive whole")]
    NeedsTcp,
}

mod receive;
mod send;
#[cfg(unix)]
pub mod tree;

pub(crate) use receive::receive;
pub use receive::{SaveDir, check_save_dir, remove_stale_partials};
pub(crate) use send::send;

#[cfg(test)]
mod tests {
    use super::receive::{is_partial_name, prepare};
    use super::send::verdict_wait;
    use super::*;

    #[test]
    fn the_verdict_wait_grows_with_what_the_receiver_may_still_have() {
        let wait = Duration::from_secs(2);
        assert_eq!(verdict_wait(wait, 0), wait);
        assert_eq!(verdict_wait(wait, 1 << 19), Duration::from_millis(2500));
        assert_eq!(verdict_wait(wait, 100 << 20), Duration::from_secs(66));
        assert_eq!(verdict_wait(wait, u64::MAX), Duration::from_secs(66));
    }

    #[test]
    fn only_our_own_partial_names_match() {
        assert!(is_partial_name(".msg-partial-aB3xY9"));
        for name in [
            ".msg-partial-",
            ".msg-partial-aB3xY",
            ".msg-partial-aB3xY90",
            ".msg-partial-aB3x.9",
            ".msg-partial-aB3xY9/",
            "msg-partial-aB3xY9",
            ".msg-check-aB3xY9",
            "report.pdf",
        ] {
            assert!(!is_partial_name(name), "{name}");
        }
    }

    #[test]
    fn prepare_names_its_temporary_files_as_the_cleanup_expects() {
        let dir = tempfile::tempdir().unwrap();
        let save = SaveConfig {
            dir: dir.path().to_owned(),
            overwrite: false,
            progress: false,
        };
        let header = FileHeader {
            name: FileName::new("x").unwrap(),
            size: 1,
            algorithm: HashAlgorithm::Blake3,
            mode: 0o644,
        };
        let prepared = prepare(&header.to_message(), Some(&save)).unwrap();
        let name = prepared.temp.path().file_name().unwrap().to_str().unwrap();
        assert!(is_partial_name(name), "{name}");
    }
}
