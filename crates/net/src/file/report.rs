//! What a sender says of a transfer once the receiver has answered: a
//! line for a person (stderr) and a JSON object for a program (stdout,
//! `msg send --file --json`), for one file, a folder's entry and a whole
//! folder. The names in them are the receiver's, already made safe to
//! print.

use serde_json::{Value, json};

use super::tree::{EntryReport, Skipped, TreeSent};
use super::{Resumed, Sent};
use crate::summary::count;

/// Bytes over seconds in MB/s, never dividing by zero.
fn rate(bytes: u64, secs: f64) -> f64 {
    bytes as f64 / secs.max(1e-9) / 1e6
}

impl Sent {
    /// `path` (the file as the sender named it: a script that sent
    /// several tells them apart by it), `saved_as` (the name the receiver
    /// says it saved it under), `size`, `hash`, `status` and `secs`; with
    /// `resume`, what the receiver `offered`, where the content went
    /// `from`, and the bytes `sent`.
    #[must_use]
    pub fn json(&self, path: &str, resume: bool) -> Value {
        let mut line = json!({
            "path": path,
            "saved_as": self.name,
            "size": self.size,
            "hash": self.hash(),
            "status": "saved",
            "secs": self.elapsed.as_secs_f64(),
        });
        if resume {
            let (offered, from) = match self.resumed {
                Resumed::From(offset) => (offset, offset),
                Resumed::Mismatch(offset) => (offset, 0),
                Resumed::No => (0, 0),
            };
            line["resume"] = json!({ "offered": offered, "from": from, "sent": self.bytes_sent() });
        }
        line
    }

    /// `sent NAME: N bytes in S s (R MB/s), blake3 HASH verified by the
    /// receiver`, with where a resumed transfer began.
    #[must_use]
    pub fn line(&self) -> String {
        let secs = self.elapsed.as_secs_f64();
        let resumed = match self.resumed {
            Resumed::From(offset) => format!(
                ", resumed at byte {offset} ({} sent)",
                count(self.bytes_sent(), "byte")
            ),
            Resumed::Mismatch(offset) => format!(
                ", whole: the receiver's {} differed from the file's (changed since, or damaged \
                 there)",
                count(offset, "byte")
            ),
            Resumed::No => String::new(),
        };
        format!(
            "sent {}: {} bytes in {secs:.2} s ({:.1} MB/s){resumed}, blake3 {} verified by the \
             receiver",
            self.name,
            self.size,
            rate(self.bytes_sent(), secs),
            self.hash()
        )
    }
}

impl EntryReport {
    /// An entry's `path`, `kind` (file or folder), `size`, `hash`,
    /// `status` (saved or refused) and `reason`.
    #[must_use]
    pub fn json(&self) -> Value {
        json!({
            "path": self.path,
            "kind": if self.folder { "folder" } else { "file" },
            "size": self.size,
            "hash": self.hash,
            "status": if self.refused.is_some() { "refused" } else { "saved" },
            "reason": self.refused,
        })
    }
}

impl Skipped {
    /// An entry that should have gone and could not
    /// ([`Skipped::failed`]): `path` (local, escaped), `status`
    /// (`skipped`) and `reason`.
    #[must_use]
    pub fn json(&self) -> Value {
        json!({
            "path": crate::text::path_text(&self.path),
            "status": "skipped",
            "reason": self.why,
        })
    }
}

impl TreeSent {
    /// The folder's totals: `folder`, `files`, `folders`, `bytes`,
    /// `refused`, `skipped` (and of those, `failed`), `secs`.
    #[must_use]
    pub fn json(&self) -> Value {
        json!({
            "folder": self.name,
            "files": self.files,
            "folders": self.folders,
            "bytes": self.bytes,
            "refused": self.refused,
            "skipped": self.skipped,
            "failed": self.failed,
            "secs": self.elapsed.as_secs_f64(),
        })
    }

    /// `sent NAME: F files, D folders, N bytes in S s (R MB/s), each
    /// verified by the receiver; X refused, Y skipped`.
    #[must_use]
    pub fn line(&self) -> String {
        let secs = self.elapsed.as_secs_f64();
        // No file to vouch for when none went (audit, round twelve: a
        // folder whose every entry was refused was "each verified").
        let verified = if self.files > 0 {
            ", each verified by the receiver"
        } else {
            ""
        };
        format!(
            "sent {}: {}, {}, {} in {secs:.2} s ({:.1} MB/s){verified}; {} refused, {} skipped",
            self.name,
            count(self.files, "file"),
            count(self.folders, "folder"),
            count(self.bytes, "byte"),
            rate(self.bytes, secs),
            self.refused,
            self.skipped,
        )
    }
}

/// What the paths of one send of files and folders came to, for the
/// sender's last words: paths that failed whole, and what the folders'
/// verdicts counted.
#[derive(Debug, Default)]
pub struct Tally {
    /// Paths that failed as a whole.
    pub unsent: usize,
    /// Folders' entries the receiver refused.
    pub refused: u64,
    /// Folders' entries that could not be sent (unreadable, unnameable).
    pub failed: u64,
    /// Folders' files saved.
    pub files: u64,
    /// Folders' folders saved.
    pub folders: u64,
}

impl Tally {
    /// Counts a folder's verdicts in.
    pub fn add(&mut self, sent: &TreeSent) {
        self.refused += sent.refused;
        self.failed += sent.failed;
        self.files += sent.files;
        self.folders += sent.folders;
    }

    /// `N of the P paths were not sent (said above)`.
    #[must_use]
    pub fn unsent_line(&self, paths: usize) -> String {
        let were = if self.unsent == 1 { "was" } else { "were" };
        format!(
            "{} of the {paths} paths {were} not sent (said above)",
            self.unsent
        )
    }

    /// `None` when everything of the `paths` arrived; else what did not:
    /// paths, then the folders' refused and unsent entries, with what was
    /// saved of them.
    #[must_use]
    pub fn failure(&self, paths: usize) -> Option<String> {
        // What was saved, counted: "the rest was saved" said so of a
        // folder whose every file was refused and one subfolder made.
        let saved = match self.files + self.folders {
            0 => "saved none".to_owned(),
            _ => format!(
                "saved {} and {}",
                count(self.files, "file"),
                count(self.folders, "folder")
            ),
        };
        // An entry that could not be read (or named) is a failure, as
        // tar's and rsync's are: said as it was met, counted here.
        let entries = match (self.refused, self.failed) {
            (0, 0) => None,
            (0, failed) => Some(format!(
                "{failed} of the folder's entries could not be sent (said above); the receiver \
                 {saved}"
            )),
            (refused, 0) => Some(format!(
                "the receiver refused {refused} of the folder's entries and {saved}"
            )),
            (refused, failed) => Some(format!(
                "the receiver refused {refused} of the folder's entries and {saved}; {failed} \
                 more could not be sent (said above)"
            )),
        };
        match (self.unsent, entries) {
            (0, entries) => entries,
            (_, None) => Some(self.unsent_line(paths)),
            (_, Some(entries)) => Some(format!("{}; {entries}", self.unsent_line(paths))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_tally_says_what_did_not_arrive_and_what_was_saved() {
        let mut tally = Tally::default();
        assert_eq!(tally.failure(2), None);
        tally.unsent = 1;
        assert_eq!(
            tally.failure(3).as_deref(),
            Some("1 of the 3 paths was not sent (said above)")
        );
        tally.unsent = 0;
        tally.failed = 2;
        tally.files = 1;
        assert_eq!(
            tally.failure(1).as_deref(),
            Some(
                "2 of the folder's entries could not be sent (said above); the receiver saved \
                 1 file and 0 folders"
            )
        );
        tally.refused = 3;
        tally.unsent = 2;
        assert_eq!(
            tally.failure(4).as_deref(),
            Some(
                "2 of the 4 paths were not sent (said above); the receiver refused 3 of the \
                 folder's entries and saved 1 file and 0 folders; 2 more could not be sent \
                 (said above)"
            )
        );
    }

    #[test]
    fn a_folder_with_no_file_sent_vouches_for_none() {
        let mut sent = TreeSent {
            name: "nm".to_owned(),
            files: 0,
            folders: 0,
            bytes: 0,
            refused: 2,
            skipped: 1,
            failed: 0,
            elapsed: Duration::from_millis(10),
        };
        assert_eq!(
            sent.line(),
            "sent nm: 0 files, 0 folders, 0 bytes in 0.01 s (0.0 MB/s); 2 refused, 1 skipped"
        );
        sent.files = 1;
        assert!(
            sent.line()
                .contains("(0.0 MB/s), each verified by the receiver; 2 refused"),
            "{}",
            sent.line()
        );
    }

    #[test]
    fn a_resumed_file_says_what_went_in_its_line_and_its_json() {
        let sent = Sent {
            name: "a.bin".to_owned(),
            size: 1_000_000,
            digest: [0; 32],
            elapsed: Duration::from_secs(1),
            resumed: Resumed::From(400_000),
        };
        let line = sent.line();
        assert!(
            line.starts_with("sent a.bin: 1000000 bytes in 1.00 s (0.6 MB/s)"),
            "{line}"
        );
        assert!(line.contains(", resumed at byte 400000 (600000 bytes sent), blake3 0000"));
        let json = sent.json("a.bin", true);
        assert_eq!(
            json["resume"],
            json!({"offered": 400_000, "from": 400_000, "sent": 600_000})
        );
        assert!(sent.json("a.bin", false).get("resume").is_none());
        let whole = Sent {
            resumed: Resumed::Mismatch(5),
            ..sent
        };
        assert_eq!(whole.json("a.bin", true)["resume"]["from"], 0);
        assert!(whole.line().contains("the receiver's 5 bytes differed"));
    }
}
