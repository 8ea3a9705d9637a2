//! A folder's reading thread: every file opened below the folder opened
//! before the walk, read for exactly its walked size and hashed as it
//! goes, and handed to the socket side in batches ([`Queue`]).

use std::os::fd::{AsFd, OwnedFd};

use msg_proto::tree::EntryKind;
use rustix::fs::{Mode, OFlags};

use super::super::*;
use super::Skipped;

/// How much a folder's sender queues before it writes (see
/// [`Connection::set_write_batch`]): at most what `send.rs`'s `DIRECT` leaves to the
/// queue, so that memory stays as it was.
pub(super) const WRITE_BATCH: usize = 64 * 1024;

/// What the reading thread hands the socket.
pub(super) enum Item {
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

/// The reading thread's side of the queue to the socket: items go in
/// batches, so that the socket side is woken once per batch rather than
/// three times per small file (entry, content, end). A batch goes once it
/// carries [`WRITE_BATCH`] of content or [`BATCH_ITEMS`] items, so the
/// queue holds at most [`QUEUE_CHUNKS`] batches of a chunk or two each.
pub(super) struct Queue {
    tx: mpsc::Sender<Vec<Item>>,
    items: Vec<Item>,
    bytes: usize,
}

/// The most items a batch holds.
const BATCH_ITEMS: usize = 256;

impl Queue {
    pub(super) fn new(tx: mpsc::Sender<Vec<Item>>) -> Self {
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
    pub(super) fn send(&mut self) -> Option<()> {
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
pub(super) fn read_all(
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
                    failed: true,
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
pub(super) struct Folder {
    /// The folder being sent, open since before the walk.
    root: OwnedFd,
    /// The last folder a file was read from: its path in the tree, open.
    open: Option<(String, OwnedFd)>,
}

impl Folder {
    pub(super) fn new(root: OwnedFd) -> Self {
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
        // Entries come folder by folder, each folder's below the one
        // before as the walk went down: opened once each, from there.
        let dir = super::walk::open_after(self.root.as_fd(), &mut self.open, parent)?;
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
