//! [`FileError`]: why a file could not be sent or was not saved.

use std::io;
use std::path::PathBuf;
use std::time::Duration;

use msg_proto::Kind;

/// Why a file could not be sent or was not saved.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FileError {
    /// The local file cannot be read.
    #[error("cannot read {}", crate::text::path_text(.path))]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The local path is not a regular file.
    #[error("{} is not a regular file", crate::text::path_text(.path))]
    NotAFile {
        /// The path.
        path: PathBuf,
    },
    /// The file's name cannot be sent (not UTF-8, or refused by the
    /// rules every receiver applies).
    #[error("cannot send {}", crate::text::path_text(.path))]
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
    /// The receiver offered to resume from an offset that does not fit the
    /// file.
    #[error("the receiver's offer to resume {name} is wrong: {reason}")]
    BadOffer {
        /// The file's name.
        name: String,
        /// What is wrong with it.
        reason: msg_proto::file::FileError,
    },
    /// The receiver answered something that is no file result.
    #[error(
        "the receiver answered {found:?} to a file transfer: is it a listener that saves files?"
    )]
    Unexpected {
        /// What came.
        found: Kind,
    },
    /// The receiver answered about a file with a file result msg cannot
    /// read (a status it does not know, a text over the limit).
    #[error("the receiver's answer about {name} is no file result msg reads: {reason}")]
    BadAnswer {
        /// The file (its path in a folder).
        name: String,
        /// What is wrong with the answer.
        reason: msg_proto::file::FileError,
    },
    /// The receiver gave a file result where the transfer was at another
    /// step (saved before it was sent, ready twice): nothing was refused,
    /// it does not follow the transfer.
    #[error(
        "the receiver answered '{answer}' about {name} out of turn: it does not follow msg's \
         file transfer"
    )]
    OutOfTurn {
        /// The file (its path in a folder).
        name: String,
        /// What it answered: `saved` or `ready`.
        answer: &'static str,
    },
    /// The receiver said it saved a file before the file's end (its size
    /// and hash) was sent: it cannot have checked it, so nothing it says
    /// of that file is taken as a confirmation.
    #[error(
        "the receiver said it saved {name} before its end (size and BLAKE3) was sent: it cannot \
         have checked it, so the transfer is not taken as confirmed"
    )]
    SavedUnsent {
        /// The file (its path in a folder), made safe to print.
        name: String,
    },
    /// A file's size changed while it was sent (it shrank, or grew past
    /// the size its header announced): the transfer stops before its end,
    /// so the receiver keeps nothing of it.
    #[error(
        "{} changed while it was being sent ({announced} bytes when it was opened, {read} \
         read): the transfer stops there, and the receiver keeps nothing of it; send it again \
         once it is quiet",
        crate::text::path_text(.path)
    )]
    Changed {
        /// The local path.
        path: PathBuf,
        /// The size its header announced.
        announced: u64,
        /// The bytes read of it (past the size, at least one more).
        read: u64,
    },
    /// A folder's file grew while it was sent: the transfer stopped, and
    /// the receiver keeps nothing of that file.
    #[error(
        "{path} grew while it was being sent (past the size the walk found): the transfer \
         stops there, and the receiver keeps nothing of it; send the folder again once it is \
         quiet"
    )]
    Grew {
        /// The file's path in the folder, made safe to print.
        path: String,
    },
    /// The receiver did not answer in time.
    #[error("no answer from the receiver within {}", humantime::format_duration(to_ms(*.0)))]
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

/// `d` to the millisecond, for a message: a wait worked out from a size
/// (`2s 95ms 367us 432ns`) reads as `2s 95ms`.
fn to_ms(d: Duration) -> Duration {
    Duration::from_millis(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
