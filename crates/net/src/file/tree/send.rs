//! A folder's sending side: the tree walked (`walk.rs`, no link
//! followed), then every entry streamed from a reading thread, the
//! verdicts read as they come.

use std::collections::VecDeque;
use std::os::fd::{AsFd, OwnedFd};

use msg_proto::tree::{EntryKind, TreeEntry, tree_end};
use rustix::fs::{Mode, OFlags};

use super::super::send::{answer, answer_waiting, last_word, refused, unexpected, verdict_wait};
use super::super::*;
use super::walk::walk;
use super::{EntryReport, Skipped, TreeOptions, TreeReport, TreeSent};

/// A chunk at least this large is written from its own buffer; smaller
/// messages are queued, so that many small files share system calls.
const DIRECT: usize = 64 * 1024;

/// How much a folder's sender queues before it writes (see
/// [`Connection::set_write_batch`]): at most what [`DIRECT`] leaves to the
/// queue, so that memory stays as it was.
const WRITE_BATCH: usize = 64 * 1024;

/// What the reading thread hands the socket.
enum Item {
    /// An entry's message; `index` into the walk's entries.
    Entry { index: usize, msg: Message },
    /// A piece of the current file.
    Chunk(Message),
    /// The current file's end, and its digest.
    End { index: usize, digest: [u8; 32] },
    /// A file that could not be read after all.
    Skipped(Skipped),
    /// The file being sent grew while it was read: the transfer stops.
    Grew { index: usize },
}

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
        tokio::task::spawn_blocking(move || walk(&dir))
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
    let reader = tokio::task::spawn_blocking(move || {
        let mut queue = Queue::new(tx);
        if read_all(&messages, &files, Folder::new(root), &mut queue).is_some() {
            queue.send();
        }
    });
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
                verdicts.report.skipped(&skipped);
                Ok(())
            }
            // Its entry and content are sent, and its end never will be:
            // the receiver, cut off mid-file, keeps nothing of it.
            Item::Grew { index } => {
                let path = crate::text::printable(entries[index].0.path.as_str().as_bytes());
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
        let path = crate::text::printable(entry.path.as_str().as_bytes());
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

/// The reading thread's side of the queue to the socket: items go in
/// batches, so that the socket side is woken once per batch rather than
/// three times per small file (entry, content, end). A batch goes once it
/// carries [`WRITE_BATCH`] of content or [`BATCH_ITEMS`] items, so the
/// queue holds at most [`QUEUE_CHUNKS`] batches of a chunk or two each.
struct Queue {
    tx: mpsc::Sender<Vec<Item>>,
    items: Vec<Item>,
    bytes: usize,
}

/// The most items a batch holds.
const BATCH_ITEMS: usize = 256;

impl Queue {
    fn new(tx: mpsc::Sender<Vec<Item>>) -> Self {
        Self {
            tx,
            items: Vec::new(),
            bytes: 0,
        }
    }

    /// Queues `item`; `None` when the socket side stopped taking.
    fn push(&mut self, item: Item) -> Option<()> {
        if let Item::Chunk(msg) = &item {
            self.bytes += msg.body.len();
        }
        self.items.push(item);
        if self.bytes >= WRITE_BATCH || self.items.len() >= BATCH_ITEMS {
            return self.send();
        }
        Some(())
    }

    /// Hands over what is queued; `None` when the socket side stopped
    /// taking.
    fn send(&mut self) -> Option<()> {
        self.bytes = 0;
        let items = std::mem::take(&mut self.items);
        if items.is_empty() {
            return Some(());
        }
        self.tx.blocking_send(items).ok()
    }
}

/// Reads every file in turn (exactly its walked size, hashed as it goes)
/// and queues each entry's messages; `None` once the socket side stops
/// taking.
fn read_all(
    messages: &[Message],
    files: &[(PathBuf, String, u64)],
    mut folder: Folder,
    tx: &mut Queue,
) -> Option<()> {
    for (index, (msg, (path, rel, size))) in messages.iter().zip(files).enumerate() {
        if msg.body.first() != Some(&u8::from(EntryKind::File)) {
            let item = Item::Entry {
                index,
                msg: msg.clone(),
            };
            tx.push(item)?;
            continue;
        }
        let file = match folder.open(rel, *size) {
            Ok(file) => file,
            Err(err) => {
                let skipped = Skipped {
                    path: path.clone(),
                    why: format!("cannot read it: {err}"),
                };
                tx.push(Item::Skipped(skipped))?;
                continue;
            }
        };
        let entry = Item::Entry {
            index,
            msg: msg.clone(),
        };
        tx.push(entry)?;
        // A read error or a file that shrank ends the content short: the
        // receiver refuses that file alone.
        match stream_file(file, *size, tx)? {
            Some(digest) => tx.push(Item::End { index, digest })?,
            None => {
                tx.push(Item::Grew { index })?;
                // The socket side stops at it; nothing after it is read.
                return tx.send();
            }
        }
    }
    Some(())
}

/// The folder of the files being read, open: each file is opened relative
/// to it, a look-up of one name rather than a walk of its whole path (a
/// fifth of the reading thread's time for 4 KiB files).
struct Folder {
    /// The folder being sent, open since before the walk.
    root: OwnedFd,
    /// The last folder a file was read from: its path in the tree, open.
    open: Option<(String, OwnedFd)>,
}

impl Folder {
    fn new(root: OwnedFd) -> Self {
        Self { root, open: None }
    }

    /// Opens the file `rel` (its path in the tree) to read, from the
    /// folder opened before the walk, part by part, never following a
    /// link (`open_below`): a link put in the place of the file, of a
    /// folder above it or of the folder itself since the walk is refused.
    /// Without waiting (a FIFO put in its place would block the open
    /// until a writer came), and only a regular file of the `size` the
    /// walk found: one that changed since is not sent as something it
    /// never was.
    fn open(&mut self, rel: &str, size: u64) -> io::Result<fs::File> {
        let (parent, name) = rel.rsplit_once('/').unwrap_or(("", rel));
        let dir = match &self.open {
            Some((open, dir)) if open == parent => dir,
            // Entries come folder by folder: this is once a folder, or
            // once a return to it after one below.
            _ => {
                let dir = super::walk::open_below(self.root.as_fd(), parent)?;
                &self.open.insert((parent.to_owned(), dir)).1
            }
        };
        let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
        let fd = rustix::fs::openat(dir, name, flags, Mode::empty())?;
        let stat = rustix::fs::fstat(&fd)?;
        if rustix::fs::FileType::from_raw_mode(stat.st_mode) != rustix::fs::FileType::RegularFile {
            return Err(io::Error::other("it is no longer a regular file"));
        }
        let now = u64::try_from(stat.st_size).unwrap_or(0);
        if now != size {
            return Err(io::Error::other(format!(
                "it changed since the walk ({size} bytes, now {now})"
            )));
        }
        Ok(fd.into())
    }
}

/// Queues the first `size` bytes of `file` as chunks: `Some` of their
/// digest, or `Some(None)` when the file held more than `size` bytes by
/// the end (it grew while being read: the first `size` of them are a file
/// that never was, and must not be saved as one); `None` when the socket
/// side stopped taking.
fn stream_file(file: fs::File, size: u64, tx: &mut Queue) -> Option<Option<[u8; 32]>> {
    let mut hasher = blake3::Hasher::new();
    let mut file = file.take(size);
    let mut seq = 0;
    loop {
        let mut buf = Vec::with_capacity(MAX_CHUNK.min(size as usize));
        match (&mut file).take(MAX_CHUNK as u64).read_to_end(&mut buf) {
            Ok(0) | Err(_) => {
                let grew =
                    file.limit() == 0 && file.into_inner().read(&mut [0]).is_ok_and(|n| n > 0);
                return Some((!grew).then(|| *hasher.finalize().as_bytes()));
            }
            Ok(_) => {}
        }
        hasher.update(&buf);
        tx.push(Item::Chunk(chunk(seq, Bytes::from(buf))))?;
        seq += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::super::walk::walk;
    use super::*;

    /// Audit, round four: between the walk and the reading, a user who
    /// may write to the folder put a link where a subfolder was, or where
    /// the folder itself was, and root's `msg send --file DIR` sent what
    /// the link led to (`/etc/shadow`). A FIFO put in a file's place hung
    /// the reading for ever. Each is now refused, and the folder read is
    /// the one walked.
    #[test]
    fn what_replaces_a_walked_entry_is_never_read() {
        let top = tempfile::tempdir().unwrap();
        let outside = top.path().join("outside");
        fs::create_dir_all(&outside).unwrap();
        fs::write(outside.join("secret.txt"), b"SECRET").unwrap();
        fs::write(outside.join("plain.txt"), b"SECRET").unwrap();
        let dir = top.path().join("shared");
        fs::create_dir_all(dir.join("sub")).unwrap();
        fs::write(dir.join("sub/secret.txt"), b"public").unwrap();
        fs::write(dir.join("plain.txt"), b"public").unwrap();
        fs::write(dir.join("grows.txt"), b"short").unwrap();
        fs::write(dir.join("pipe"), b"file").unwrap();

        let walked = walk(&dir).unwrap();
        let mut folder = Folder::new(walked.root);
        // A subfolder swapped for a link to a folder outside.
        fs::rename(dir.join("sub"), top.path().join("sub.old")).unwrap();
        std::os::unix::fs::symlink(&outside, dir.join("sub")).unwrap();
        assert!(folder.open("sub/secret.txt", 6).is_err());
        // A file swapped for a FIFO: refused at once, not waited on.
        fs::remove_file(dir.join("pipe")).unwrap();
        rustix::fs::mknodat(
            rustix::fs::CWD,
            dir.join("pipe"),
            rustix::fs::FileType::Fifo,
            Mode::from_raw_mode(0o600),
            0,
        )
        .unwrap();
        let started = Instant::now();
        let fifo = folder.open("pipe", 4).unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(1));
        assert!(
            fifo.to_string().contains("no longer a regular file"),
            "{fifo}"
        );
        // A file that grew since the walk.
        fs::write(dir.join("grows.txt"), b"much longer now").unwrap();
        let grown = folder.open("grows.txt", 5).unwrap_err();
        assert!(grown.to_string().contains("5 bytes, now 15"), "{grown}");
        // The folder itself swapped for a link: what is read is still the
        // folder walked.
        fs::rename(&dir, top.path().join("shared.old")).unwrap();
        std::os::unix::fs::symlink(&outside, &dir).unwrap();
        let mut read = String::new();
        let mut file = Folder::new(folder.root.try_clone().unwrap())
            .open("plain.txt", 6)
            .unwrap();
        file.read_to_string(&mut read).unwrap();
        assert_eq!(read, "public", "read through the link to the outside");
    }

    /// Audit, round four: a file that grew while it was read (after the
    /// size check at its open) was sent as its first walked bytes, a file
    /// that never was, and saved as verified. Its reading now says so.
    #[test]
    fn a_file_that_grew_while_read_has_no_digest() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        fs::write(&path, b"0123456789").unwrap();
        // The socket side's end, kept open so that the queue takes.
        let (tx, _rx) = mpsc::channel(64);
        let mut queue = Queue::new(tx);
        let mut read = |size| stream_file(fs::File::open(&path).unwrap(), size, &mut queue);
        // Walked at 5 bytes, 10 there by the end of the reading.
        assert_eq!(read(5), Some(None));
        assert_eq!(
            read(10),
            Some(Some(*blake3::hash(b"0123456789").as_bytes()))
        );
        // One that shrank ends short, as before: the receiver refuses it.
        assert!(matches!(read(20), Some(Some(_))));
    }
}
