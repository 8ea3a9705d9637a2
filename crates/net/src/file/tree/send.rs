//! A folder's sending side: the tree walked (`walk.rs`, no link
//! followed), then every entry streamed from a reading thread
//! (`read.rs`), the verdicts read as they come.

use std::collections::VecDeque;

use msg_proto::tree::{EntryKind, TreeEntry, tree_end};

use super::super::send::{answer, answer_waiting, last_word, refused, unexpected, verdict_wait};
use super::super::*;
use super::read::{Folder, Item, Queue, WRITE_BATCH, read_all};
use super::walk::walk;
use super::{EntryReport, TreeOptions, TreeReport, TreeSent};

/// A chunk at least this large is written from its own buffer; smaller
/// messages are queued, so that many small files share system calls.
const DIRECT: usize = 64 * 1024;

/// Sends the folder `dir` on `conn`, telling `report` what happens.
///
/// # Errors
///
/// [`Error::File`] when the folder cannot be read or is refused whole,
/// or (with `strict`) at the first refused entry; the transport's error.
pub(crate) async fn send_tree<S: Stream>(
    conn: &mut Connection<S>,
    dir: &Path,
    options: TreeOptions,
    report: &mut dyn TreeReport,
) -> Result<TreeSent, Error> {
    let started = Instant::now();
    let walk = {
        let dir = dir.to_owned();
        crate::off_thread::spawn("msg-walk", move || walk(&dir))?
            .await
            .map_err(|err| io::Error::other(err.to_string()))??
    };
    let name = walk.start.name.as_str().to_owned();
    report.started(walk.start.files, walk.start.bytes);
    for skipped in &walk.skipped {
        report.skipped(skipped);
    }
    conn.write_message(&walk.start.to_message()).await?;
    match answer(conn, options.wait, &name).await {
        Ok(FileResult::Ready) => {}
        Ok(FileResult::Refused { reason }) => return Err(refused(&name, &reason)),
        Ok(_) => {
            return Err(FileError::Unexpected {
                found: Kind::FileResult,
            }
            .into());
        }
        // An older listener knows no folders: it closes on the kind.
        Err(Error::File(FileError::Closed)) => return Err(FileError::NoFolders.into()),
        Err(err) => return Err(err),
    }
    let mut sent = TreeSent {
        name: name.clone(),
        files: 0,
        folders: 0,
        bytes: 0,
        refused: 0,
        skipped: walk.skipped.len() as u64,
        failed: walk.skipped.iter().filter(|s| s.failed).count() as u64,
        elapsed: Duration::ZERO,
    };
    let entries = walk.entries;
    // Each file by its path in the tree, read from the folder opened
    // before the walk (`open_below`), and its local path for what is said.
    let files: Vec<(PathBuf, String, u64)> = entries
        .iter()
        .map(|(entry, path)| (path.clone(), entry.path.as_str().to_owned(), entry.size))
        .collect();
    let root = walk.root;
    let messages: Vec<Message> = entries
        .iter()
        .map(|(entry, _)| entry.to_message())
        .collect();
    // Small files' entries, content and ends go out in writes of this
    // much rather than of 8 KiB: a tenth of the writes for 4 KiB files,
    // and of the receiver's wake-ups.
    conn.set_write_batch(WRITE_BATCH);
    let (tx, mut rx) = mpsc::channel::<Vec<Item>>(QUEUE_CHUNKS);
    let reader = crate::off_thread::spawn("msg-tree-read", move || {
        let mut queue = Queue::new(tx);
        if read_all(&messages, &files, Folder::new(root), &mut queue).is_some() {
            queue.send();
        }
    })?;
    // The entries sent and not yet answered, in order, with a file's digest
    // once read.
    let mut waiting: VecDeque<(usize, Option<[u8; 32]>)> = VecDeque::new();
    let mut bytes_sent = 0u64;
    let mut verdicts = Verdicts {
        entries: &entries,
        sent: &mut sent,
        report,
        strict: options.strict,
    };
    let mut items = Vec::new().into_iter();
    loop {
        let Some(item) = items.next() else {
            let Some(batch) = rx.recv().await else { break };
            items = batch.into_iter();
            // What the receiver has said so far, before more is sent: once
            // a batch, not once an entry (a look at the socket each, which
            // for small files found nothing nearly every time).
            while answer_waiting(conn) {
                let result = answer(conn, options.wait, &name).await?;
                verdicts.take(&mut waiting, result)?;
            }
            continue;
        };
        let written = match item {
            Item::Entry { index, msg } => {
                waiting.push_back((index, None));
                conn.feed(&msg).await
            }
            Item::Chunk(msg) => {
                bytes_sent += msg.body.len() as u64;
                verdicts.report.progress(bytes_sent);
                if msg.body.len() >= DIRECT {
                    conn.write_message(&msg).await
                } else {
                    conn.feed(&msg).await
                }
            }
            Item::End { index, digest } => {
                if let Some(slot) = waiting.iter_mut().rev().find(|(i, _)| *i == index) {
                    slot.1 = Some(digest);
                }
                conn.feed(&FileEnd { digest }.to_message()).await
            }
            Item::Skipped(skipped) => {
                verdicts.sent.skipped += 1;
                verdicts.sent.failed += u64::from(skipped.failed);
                verdicts.report.skipped(&skipped);
                Ok(())
            }
            // Its entry and content are sent, and its end never will be:
            // the receiver, cut off mid-file, keeps nothing of it.
            Item::Grew { index } => {
                let path = crate::text::path_text(entries[index].0.path.as_str().as_ref());
                return Err(FileError::Grew { path }.into());
            }
        };
        if let Err(err) = written {
            return Err(last_word(conn, &name, err.into()).await);
        }
    }
    drop(rx);
    let _ = reader.await;
    if let Err(err) = conn.write_message(&tree_end()).await {
        return Err(last_word(conn, &name, err.into()).await);
    }
    // The receiver may still be writing what the socket buffers held.
    let wait = verdict_wait(options.wait, bytes_sent);
    while !waiting.is_empty() {
        let result = answer(conn, wait, &name).await?;
        verdicts.take(&mut waiting, result)?;
    }
    match answer(conn, wait, &name).await? {
        FileResult::Saved { .. } => {}
        other => return Err(unexpected(other, &name)),
    }
    sent.elapsed = started.elapsed();
    Ok(sent)
}

/// Matches the verdicts to the entries, in order, and counts them.
struct Verdicts<'a> {
    entries: &'a [(TreeEntry, PathBuf)],
    sent: &'a mut TreeSent,
    report: &'a mut dyn TreeReport,
    strict: bool,
}

impl Verdicts<'_> {
    fn take(
        &mut self,
        waiting: &mut VecDeque<(usize, Option<[u8; 32]>)>,
        result: FileResult,
    ) -> Result<(), Error> {
        let Some((index, digest)) = waiting.pop_front() else {
            return Err(FileError::Unexpected {
                found: Kind::FileResult,
            }
            .into());
        };
        let entry = &self.entries[index].0;
        let folder = entry.kind == EntryKind::Folder;
        let path = crate::text::path_text(entry.path.as_str().as_ref());
        let refusal = match result {
            // A file's digest is here once its end is sent: a verdict
            // before that is a refusal, or a receiver claiming to have
            // checked what it has not been sent.
            FileResult::Saved { .. } if !folder && digest.is_none() => {
                return Err(FileError::SavedUnsent { name: path }.into());
            }
            FileResult::Saved { .. } => None,
            FileResult::Refused { reason } => Some(crate::text::printable(reason.as_bytes())),
            _ => {
                return Err(FileError::Unexpected {
                    found: Kind::FileResult,
                }
                .into());
            }
        };
        match (&refusal, folder) {
            (Some(_), _) => self.sent.refused += 1,
            (None, true) => self.sent.folders += 1,
            (None, false) => {
                self.sent.files += 1;
                self.sent.bytes += entry.size;
            }
        }
        self.report.entry(&EntryReport {
            path: path.clone(),
            folder,
            size: entry.size,
            hash: digest.map(|digest| hex(&digest)),
            refused: refusal.clone(),
        });
        match refusal {
            Some(reason) if self.strict => Err(FileError::Refused { name: path, reason }.into()),
            _ => Ok(()),
        }
    }
}
