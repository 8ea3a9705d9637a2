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
//! A sender that asks to resume (`resume.rs`) makes the receiver write
//! into a partial file of the receiver's own naming instead, kept when the
//! transfer is cut off; the next transfer of the file is offered what it
//! holds, checked by hash on both sides, and sends only the rest.
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
    FLAG_RESUME, FileEnd, FileHeader, FileName, FileResult, HashAlgorithm, MAX_CHUNK, Receiving,
    chunk, hex,
};
use msg_proto::{Kind, Message};
use msg_tcp::{Connection, Stream};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;
use tracing::{info, warn};

use crate::counters::Transfer;
use crate::{Error, Event, Events};

/// How many chunks may wait between the socket and the file's thread, on
/// either side: with 1 MiB chunks, at most 8 MiB per transfer.
const QUEUE_CHUNKS: usize = 8;

/// Room for one whole chunk's frame: the largest body, and more than its
/// message header (msg-proto's, under a kilobyte with any tag).
const CHUNK_FRAME: usize = MAX_CHUNK + 1024;

/// Asks glibc's allocator to keep the chunks a transfer frees for the next
/// ones (once per process; elsewhere, nothing).
///
/// By default glibc serves an allocation of a chunk's size with a fresh
/// `mmap` and gives it back to the kernel when it is freed (or trims the
/// heap once 2 chunks' worth are free at its top), so every MiB that
/// crosses is first-touch memory again: about 72,000 page faults, and as
/// many pages zeroed, per GiB received. With chunks served from the heap
/// and the heap trimmed only past 32 MiB free, the 8 chunks queued on
/// each side are the same memory over and over (about 6,000 faults per
/// GiB). The process's peak memory is unchanged: it is bounded by the
/// queues, as before; what it keeps after a transfer is at most the trim
/// threshold. A QUIC stream asks the same (`quic.rs`): quinn copies each
/// write into an allocation held until the peer acknowledges it.
pub(crate) fn keep_freed_chunks() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| {
            // SAFETY: mallopt only sets glibc's tuning parameters; both
            // values are within the ranges it accepts (the mmap threshold
            // at most 32 MiB on 64-bit), and it returns 0, leaving them as
            // they were, for any it refuses.
            unsafe {
                libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
                libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD);
            }
        });
    }
}

/// Allocations this large or larger get an `mmap` of their own (glibc's
/// default starts at 128 KiB and moves up to the largest freed): above a
/// chunk with its frame and the receiver's read buffer.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MMAP_THRESHOLD: libc::c_int = 4 << 20;

/// Free memory at the top of the heap past this goes back to the kernel:
/// more than the chunks both queues hold at once.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const TRIM_THRESHOLD: libc::c_int = 32 << 20;

/// How long a receiver waits for the next chunk before it gives the
/// transfer up: a sender that stalls mid-file must not pin a temporary
/// file and a connection for ever.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// The name of a file being received, before it is renamed into place:
/// this prefix, then [`PARTIAL_RANDOM`] random letters and digits. A
/// peer's file may not be named so (msg-proto's `FileName` refuses every
/// one of `RESERVED_PREFIXES`).
use msg_proto::file::PARTIAL_PREFIX;

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

/// How long a partial file kept for resuming (`msg send --resume`) stays
/// after its last write, unless the listener says otherwise
/// (`--partial-max-age`): a day, for a sender to come back after a
/// night's outage.
pub const PARTIAL_MAX_AGE: Duration = Duration::from_secs(24 * 60 * 60);

/// How often a listener looks for kept partial files past their age, at
/// most (more often when the age is shorter).
pub const SWEEP_EVERY: Duration = Duration::from_secs(10 * 60);

/// The slowest either side is assumed to read and hash a file it holds,
/// in bytes per second, before it answers about a resumed transfer:
/// 32 MiB/s, well below a disk.
const HASH_FLOOR_RATE: u64 = 32 << 20;

/// How long to wait for a peer that first reads and hashes `bytes` of a
/// file: `wait`, and the time that takes at [`HASH_FLOOR_RATE`].
pub(super) fn hash_wait(wait: Duration, bytes: u64) -> Duration {
    wait + Duration::from_secs_f64(bytes as f64 / HASH_FLOOR_RATE as f64)
}

/// The permission bits a received file or folder may get from its
/// sender: never setuid, setgid, sticky, or write for group and others,
/// and none the listener's umask takes away, as tar (not as root), scp
/// and rsync without `-p` leave them (audit, round sixteen: a listener
/// started with umask 077 saved files 0755).
fn mode_mask() -> u32 {
    static MASK: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    *MASK.get_or_init(|| 0o755 & !umask())
}

/// This process's umask, as Linux shows it (`Umask:` in
/// `/proc/self/status`, since 4.7): reading it with `umask(2)` sets it
/// too, which other threads creating files meanwhile would see. 022
/// where it cannot be read, the mask msg always applied.
fn umask() -> u32 {
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            let line = status.lines().find(|l| l.starts_with("Umask:"))?;
            u32::from_str_radix(line["Umask:".len()..].trim(), 8).ok()
        })
        .unwrap_or(0o022)
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
    /// Whether the receiver held part of it already.
    pub resumed: Resumed,
}

impl Sent {
    /// The hash as `b3sum` prints it.
    pub fn hash(&self) -> String {
        hex(&self.digest)
    }

    /// The bytes of content this transfer carried: all of them, less
    /// those the receiver held.
    pub fn bytes_sent(&self) -> u64 {
        match self.resumed {
            Resumed::From(offset) => self.size.saturating_sub(offset),
            Resumed::No | Resumed::Mismatch(_) => self.size,
        }
    }
}

/// What became of a file's earlier, cut-off transfer
/// (`msg send --resume`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Resumed {
    /// The whole file went: resuming was not asked for, or the receiver
    /// held none of it.
    No,
    /// The receiver held the file's first N bytes, the same by their
    /// BLAKE3 on both sides: the rest went.
    From(u64),
    /// The receiver held N bytes that are not the file's first (the file
    /// changed since, or the receiver's copy did): the whole file went,
    /// and replaced them.
    Mismatch(u64),
}

#[cfg(all(test, unix))]
mod cleanup_tests;
mod receive;
#[cfg(unix)]
mod report;
#[cfg(unix)]
mod resume;
mod send;
#[cfg(unix)]
pub mod tree;

pub(crate) use receive::receive;
mod error;
mod partial;
mod save_dir;
mod stale;
pub use error::FileError;
pub use report::Tally;
pub use save_dir::{SaveConfig, SaveDir, SaveDirHandle, check_save_dir};
pub(crate) use send::send;
pub use stale::remove_stale_partials;

#[cfg(test)]
pub(super) mod tests {
    use super::partial::prepare;
    use super::send::verdict_wait;
    use super::stale::is_partial_name;
    use super::*;

    /// A wait worked out from a file's size is said to the millisecond.
    #[test]
    fn no_answer_says_its_wait_to_the_millisecond() {
        let err = FileError::NoAnswer(Duration::from_nanos(2_095_367_432));
        assert_eq!(
            err.to_string(),
            "no answer from the receiver within 2s 95ms"
        );
    }

    /// The header of a file of this name and size, mode 0644.
    pub(super) fn header(name: &str, size: u64) -> FileHeader {
        FileHeader {
            name: FileName::new(name).unwrap(),
            size,
            algorithm: HashAlgorithm::Blake3,
            mode: 0o644,
        }
    }

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
        let save = SaveConfig::new(dir.path().to_owned(), false, false, PARTIAL_MAX_AGE);
        let local = crate::PeerAddr::Inet("127.0.0.1:1".parse().unwrap());
        let prepared = prepare(&header("x", 1).to_message(), Some(&save), &local).unwrap();
        let partial::Partial::Temp(temp) = &prepared.partial else {
            panic!("a temporary file without the resume flag")
        };
        let name = temp.name();
        assert!(is_partial_name(name), "{name}");
    }
}
