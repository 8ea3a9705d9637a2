//! A folder's receiving side: the entries checked as they come (msg-proto's
//! `TreeReceiving`), and every file operation on a thread of its own,
//! relative to the folder's descriptor, one part of a path at a time and
//! never through a symbolic link.

use std::collections::VecDeque;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use msg_proto::file::FileEnd;
use msg_proto::tree::{TreeEntry, TreeReceiving, TreeStart, TreeStep};
use rustix::fs::{AtFlags, Mode, OFlags};
use rustix::io::Errno;

use super::super::receive::{for_peer, refuse};
use super::super::*;

/// What the socket side hands the writing thread, in the order of the
/// entries.
enum Op {
    Folder(TreeEntry),
    File(TreeEntry),
    /// An entry refused by its own bytes (its path, its type).
    Refuse(String),
    /// The next piece of the current file.
    Data(Bytes),
    /// The current file's end, its size checked by msg-proto.
    End(Result<FileEnd, msg_proto::file::FileError>),
}

/// The thread's answer to one entry, in order.
struct Verdict {
    result: FileResult,
    /// A saved file: its path, size and digest, for the listener's output.
    saved: Option<(String, u64, [u8; 32])>,
}

/// Receives the folder whose [`TreeStart`] is `start` on `conn`, saving it
/// under `save`; reports each saved file on `events`.
///
/// # Errors
///
/// What ended the connection: a refused folder, bytes that break the
/// stream, the transport's error.
pub(crate) async fn receive_tree<S: AsyncRead + AsyncWrite + Unpin>(
    conn: &mut Connection<S>,
    start: &Message,
    save: Option<&SaveConfig>,
    events: &Events,
) -> Result<(), Error> {
    let started = Instant::now();
    let peer = conn.peer_addr();
    let start = match TreeStart::from_message(start) {
        Ok(start) => start,
        Err(err) => return refuse(conn, err.to_string()).await,
    };
    let Some(save) = save else {
        return refuse(conn, crate::refusal::SAVES_NO_FILES.to_owned()).await;
    };
    let (root, made) = match open_root(&save.dir, &start) {
        Ok(root) => root,
        Err(reason) => return refuse(conn, reason).await,
    };
    conn.write_message(&FileResult::Ready.to_message()).await?;
    info!(%peer, files = start.files, bytes = start.bytes, "receiving the folder {}", start.name.as_str());

    // Batches of operations, so that the thread is woken once per read
    // of the socket rather than once per message (three per small file):
    // a batch goes when no whole message is left in the read buffer, or
    // when it holds a chunk's worth of content or BATCH_OPS operations.
    let (ops, ops_rx) = mpsc::channel::<Vec<Op>>(QUEUE_CHUNKS);
    // Unbounded, yet bounded by the entries: the thread answers only what
    // it took from `ops` (at most QUEUE_CHUNKS batches ahead), and every
    // message read below first sends on what has been answered.
    let (verdicts_tx, mut verdicts) = mpsc::unbounded_channel::<Verdict>();
    let overwrite = save.overwrite;
    let root_mode = made.then_some(start.mode);
    let writer = tokio::task::spawn_blocking(move || {
        Writer::new(root, overwrite, verdicts_tx).run(ops_rx, root_mode);
    });
    let mut tree = TreeReceiving::new();
    let mut waiting = VecDeque::new();
    let mut batch = Batch::default();
    let mut flushed = Instant::now();
    let outcome = loop {
        if batch.due(conn.buffered()) && ops.send(batch.take()).await.is_err() {
            break Err("the writing thread stopped".to_owned());
        }
        let read = tokio::time::timeout(IDLE_TIMEOUT, conn.read_message()).await;
        let msg = match read {
            Err(_) => {
                break Err(format!(
                    "nothing for {} in the folder",
                    humantime::format_duration(IDLE_TIMEOUT)
                ));
            }
            Ok(Err(err)) => return Err(err.into()),
            Ok(Ok(None)) => {
                return Err(Error::Io(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the sender closed the connection mid-folder",
                )));
            }
            Ok(Ok(Some(msg))) => msg,
        };
        let op = match tree.on_message(&msg) {
            Err(err) => break Err(err.to_string()),
            Ok(TreeStep::End) => break Ok(()),
            Ok(TreeStep::Folder(entry)) => Op::Folder(entry),
            Ok(TreeStep::File(entry)) => Op::File(entry),
            Ok(TreeStep::Refused { reason, .. }) => Op::Refuse(reason.to_string()),
            Ok(TreeStep::Content(_)) => Op::Data(msg.body.clone()),
            Ok(TreeStep::FileEnd(end)) => Op::End(end),
            Ok(_) => break Err(format!("unexpected {:?} in a folder", msg.kind)),
        };
        batch.push(op);
        while let Ok(verdict) = verdicts.try_recv() {
            waiting.push_back(verdict);
        }
        answer(conn, &mut waiting, &peer, events, started).await?;
        // The sender reads verdicts as they come but waits for none before
        // the end: they go out when the write buffer fills (8 KiB) or, with
        // nothing left to read, every VERDICT_FLUSH, not a write per file.
        if conn.buffered() == 0 && flushed.elapsed() >= VERDICT_FLUSH {
            conn.flush().await?;
            flushed = Instant::now();
        }
    };
    // What was read before the end (or the refusal) is written first.
    if !batch.ops.is_empty() {
        let _ = ops.send(batch.take()).await;
    }
    drop(ops);
    // Every verdict, the last ones once the thread has written them.
    let _ = writer.await;
    while let Ok(verdict) = verdicts.try_recv() {
        waiting.push_back(verdict);
    }
    answer(conn, &mut waiting, &peer, events, started).await?;
    match outcome {
        Ok(()) => {
            let name = start.name.into_string();
            conn.write_message(&FileResult::Saved { name }.to_message())
                .await?;
            Ok(())
        }
        Err(reason) => refuse(conn, reason).await,
    }
}

/// How often, at most, a folder's receiver flushes its verdicts while
/// the content streams in (they also go whenever 8 KiB of them wait).
const VERDICT_FLUSH: Duration = Duration::from_millis(20);

/// The most operations a batch for the writing thread holds.
const BATCH_OPS: usize = 256;

/// Operations read from the socket, not yet handed to the writing thread.
#[derive(Default)]
struct Batch {
    ops: Vec<Op>,
    /// The content they carry.
    bytes: usize,
}

impl Batch {
    fn push(&mut self, op: Op) {
        if let Op::Data(bytes) = &op {
            self.bytes += bytes.len();
        }
        self.ops.push(op);
    }

    /// Whether to hand it over now, with `buffered` bytes still unread:
    /// when no more messages are at hand, or it is large enough.
    fn due(&self, buffered: usize) -> bool {
        !self.ops.is_empty()
            && (buffered == 0 || self.bytes >= MAX_CHUNK || self.ops.len() >= BATCH_OPS)
    }

    fn take(&mut self) -> Vec<Op> {
        self.bytes = 0;
        std::mem::take(&mut self.ops)
    }
}

/// Sends the verdicts that are ready, and reports each saved file.
async fn answer<S: AsyncRead + AsyncWrite + Unpin>(
    conn: &mut Connection<S>,
    waiting: &mut VecDeque<Verdict>,
    peer: &crate::PeerAddr,
    events: &Events,
    started: Instant,
) -> Result<(), Error> {
    while let Some(verdict) = waiting.pop_front() {
        conn.feed(&verdict.result.to_message()).await?;
        if let Some((name, size, digest)) = verdict.saved {
            let event = Event::File {
                peer: peer.clone(),
                name,
                size,
                hash: hex(&digest),
                elapsed: started.elapsed(),
            };
            events.deliver(event).await;
        }
    }
    Ok(())
}

/// Opens the save directory's folder named by `start`, making it (0700,
/// until the end) if it is not there: the folder's descriptor, and whether
/// it was made. Anything but a folder of that name refuses the transfer.
fn open_root(dir: &Path, start: &TreeStart) -> Result<(OwnedFd, bool), String> {
    let save = rustix::fs::open(dir, dir_flags(), Mode::empty())
        .map_err(|err| format!("cannot open the save directory: {}", errno_text(err)))?;
    let name = start.name.as_str();
    let made = match rustix::fs::mkdirat(&save, name, Mode::RWXU) {
        Ok(()) => true,
        Err(Errno::EXIST) => false,
        Err(err) => {
            return Err(format!(
                "cannot make the folder {name}: {}",
                errno_text(err)
            ));
        }
    };
    let root = rustix::fs::openat(&save, name, dir_flags(), Mode::empty()).map_err(|_| {
        crate::refusal::NOT_A_FOLDER.format(crate::text::printable(name.as_bytes()))
    })?;
    Ok((root, made))
}

/// A folder, opened to work relative to it, never through a link.
fn dir_flags() -> OFlags {
    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC
}

/// What the peer is told of a system error: its description alone.
fn errno_text(err: Errno) -> String {
    io::Error::from(err).to_string()
}

/// The thread that does every file operation of one folder.
struct Writer {
    root: OwnedFd,
    overwrite: bool,
    verdicts: mpsc::UnboundedSender<Verdict>,
    /// The current file, if one is arriving.
    current: Current,
    /// The last folder a file was opened in: entries come folder by folder.
    parent: Option<(String, OwnedFd)>,
    /// The folders this transfer made, to get their modes at the end.
    made: Vec<(TreeEntry, u32)>,
}

enum Current {
    None,
    /// A refused file whose content still comes: dropped.
    Discard,
    Writing(Box<Incoming>),
}

/// A file being written: its partial file, beside its final name.
struct Incoming {
    entry: TreeEntry,
    parent: OwnedFd,
    partial: String,
    /// Written straight: chunks come whole (up to 1 MiB), and a buffer of
    /// a chunk's size per file cost ten thousand small files an mmap each.
    out: fs::File,
    hasher: blake3::Hasher,
    /// The first write error: the rest of the content is dropped.
    failed: Option<io::Error>,
}

impl Writer {
    fn new(root: OwnedFd, overwrite: bool, verdicts: mpsc::UnboundedSender<Verdict>) -> Self {
        Self {
            root,
            overwrite,
            verdicts,
            current: Current::None,
            parent: None,
            made: Vec::new(),
        }
    }

    fn run(mut self, mut ops: mpsc::Receiver<Vec<Op>>, root_mode: Option<u32>) {
        while let Some(batch) = ops.blocking_recv() {
            for op in batch {
                self.on(op);
            }
        }
        // Cut off mid-file: the partial file goes.
        self.drop_current();
        // The modes last, deepest first, so that a folder without write
        // permission is still filled.
        for (entry, mode) in self.made.iter().rev() {
            let parts: Vec<&str> = entry.path.parts().collect();
            if let Ok(fd) = walk(&self.root, &parts) {
                let _ = rustix::fs::fchmod(&fd, Mode::from_raw_mode(mode & MODE_MASK));
            }
        }
        if let Some(mode) = root_mode {
            let _ = rustix::fs::fchmod(&self.root, Mode::from_raw_mode(mode & MODE_MASK));
        }
    }

    fn on(&mut self, op: Op) {
        match op {
            Op::Folder(entry) => {
                self.drop_current();
                let result = self.folder(&entry);
                self.verdict(&entry, result, None);
            }
            Op::File(entry) => {
                self.drop_current();
                match self.open_file(&entry) {
                    Ok(incoming) => self.current = Current::Writing(Box::new(incoming)),
                    Err(reason) => {
                        self.current = Current::Discard;
                        self.verdict(&entry, Err(reason), None);
                    }
                }
            }
            Op::Refuse(reason) => {
                self.drop_current();
                // A refused file's content still comes.
                self.current = Current::Discard;
                self.send(Verdict {
                    result: FileResult::Refused { reason },
                    saved: None,
                });
            }
            Op::Data(bytes) => {
                if let Current::Writing(incoming) = &mut self.current {
                    if incoming.failed.is_none() {
                        incoming.hasher.update(&bytes);
                        if let Err(err) = incoming.out.write_all(&bytes) {
                            incoming.failed = Some(err);
                        }
                    }
                }
            }
            Op::End(end) => {
                let current = std::mem::replace(&mut self.current, Current::None);
                if let Current::Writing(incoming) = current {
                    let entry = incoming.entry.clone();
                    let digest = *incoming.hasher.finalize().as_bytes();
                    let result = self.finish(*incoming, end, &digest);
                    let saved = result.is_ok().then_some(digest);
                    self.verdict(&entry, result, saved);
                }
            }
        }
    }

    fn verdict(&self, entry: &TreeEntry, result: Result<(), String>, digest: Option<[u8; 32]>) {
        let path = entry.path.as_str().to_owned();
        self.send(match result {
            Ok(()) => Verdict {
                result: FileResult::Saved { name: path.clone() },
                saved: digest.map(|digest| (path, entry.size, digest)),
            },
            Err(reason) => Verdict {
                result: FileResult::Refused { reason },
                saved: None,
            },
        });
    }

    fn send(&self, verdict: Verdict) {
        // The socket side gone: nobody to tell.
        let _ = self.verdicts.send(verdict);
    }

    /// Removes the partial file of a file that will not be finished.
    fn drop_current(&mut self) {
        if let Current::Writing(incoming) = std::mem::replace(&mut self.current, Current::None) {
            let _ = rustix::fs::unlinkat(&incoming.parent, &incoming.partial, AtFlags::empty());
        }
    }

    /// The folder that holds `entry`, opened part by part from the root.
    fn parent_of(&mut self, entry: &TreeEntry) -> Result<OwnedFd, String> {
        let parts: Vec<&str> = entry.path.parts().collect();
        let above = &parts[..parts.len() - 1];
        let key = above.join("/");
        if let Some((cached, fd)) = &self.parent {
            if *cached == key {
                return fd.try_clone().map_err(|err| err.to_string());
            }
        }
        let fd = walk(&self.root, above)?;
        let copy = fd.try_clone().map_err(|err| err.to_string())?;
        self.parent = Some((key, fd));
        Ok(copy)
    }

    fn folder(&mut self, entry: &TreeEntry) -> Result<(), String> {
        let parent = self.parent_of(entry)?;
        let name = entry.path.file_name();
        match rustix::fs::mkdirat(&parent, name.as_str(), Mode::RWXU) {
            Ok(()) => {
                self.made.push((entry.clone(), entry.mode));
                Ok(())
            }
            Err(Errno::EXIST) => {
                let stat = rustix::fs::statat(&parent, name.as_str(), AtFlags::SYMLINK_NOFOLLOW)
                    .map_err(errno_text)?;
                if rustix::fs::FileType::from_raw_mode(stat.st_mode)
                    == rustix::fs::FileType::Directory
                {
                    Ok(())
                } else {
                    Err(crate::refusal::NOT_A_FOLDER.format(shown(entry)))
                }
            }
            Err(err) => Err(format!("cannot make the folder: {}", errno_text(err))),
        }
    }

    fn open_file(&mut self, entry: &TreeEntry) -> Result<Incoming, String> {
        let parent = self.parent_of(entry)?;
        let name = entry.path.file_name();
        if !self.overwrite
            && rustix::fs::statat(&parent, name.as_str(), AtFlags::SYMLINK_NOFOLLOW).is_ok()
        {
            return Err(crate::refusal::FILE_EXISTS.format(shown(entry)));
        }
        let (partial, fd) = create_partial(parent.as_fd())
            .map_err(|err| format!("cannot make a file in its folder: {}", errno_text(err)))?;
        Ok(Incoming {
            entry: entry.clone(),
            parent,
            partial,
            out: fs::File::from(fd),
            hasher: blake3::Hasher::new(),
            failed: None,
        })
    }

    /// Checks a file at its end and renames it into place, or removes it.
    fn finish(
        &self,
        mut incoming: Incoming,
        end: Result<FileEnd, msg_proto::file::FileError>,
        digest: &[u8; 32],
    ) -> Result<(), String> {
        let checked = (|| {
            let end = end.map_err(|err| err.to_string())?;
            if let Some(err) = incoming.failed.take() {
                return Err(format!("cannot write the file: {}", for_peer(&err)));
            }
            incoming
                .out
                .flush()
                .map_err(|err| format!("cannot write the file: {}", for_peer(&err)))?;
            end.check(digest).map_err(|err| err.to_string())?;
            let file = &incoming.out;
            rustix::fs::fchmod(file, Mode::from_raw_mode(incoming.entry.mode & MODE_MASK))
                .map_err(errno_text)?;
            let name = incoming.entry.path.file_name();
            rename_into_place(
                &incoming.parent,
                &incoming.partial,
                name.as_str(),
                self.overwrite,
            )
            .map_err(|err| match err {
                Errno::EXIST => crate::refusal::FILE_EXISTS.format(shown(&incoming.entry)),
                err => format!("cannot save it: {}", errno_text(err)),
            })
        })();
        if checked.is_err() {
            let _ = rustix::fs::unlinkat(&incoming.parent, &incoming.partial, AtFlags::empty());
        }
        checked
    }
}

/// An entry's path, made safe to show.
fn shown(entry: &TreeEntry) -> String {
    crate::text::printable(entry.path.as_str().as_bytes())
}

/// Opens `parts` below `root`, one at a time, none of them a link.
fn walk(root: &OwnedFd, parts: &[&str]) -> Result<OwnedFd, String> {
    let mut fd = root.try_clone().map_err(|err| err.to_string())?;
    for part in parts {
        fd = rustix::fs::openat(&fd, *part, dir_flags(), Mode::empty()).map_err(
            |err| match err {
                Errno::LOOP | Errno::NOTDIR => crate::refusal::NOT_A_FOLDER_PART.to_owned(),
                Errno::NOENT => crate::refusal::NO_FOLDER.to_owned(),
                err => format!("cannot open its folder: {}", errno_text(err)),
            },
        )?;
    }
    Ok(fd)
}

/// Makes a partial file in `dir` under a fresh name of the form the stale
/// cleanup knows: the name, and the open file.
fn create_partial(dir: BorrowedFd<'_>) -> Result<(String, OwnedFd), Errno> {
    loop {
        let name = partial_name();
        let flags =
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        match rustix::fs::openat(dir, name.as_str(), flags, Mode::RUSR | Mode::WUSR) {
            Ok(fd) => return Ok((name, fd)),
            Err(Errno::EXIST) => continue,
            Err(err) => return Err(err),
        }
    }
}

/// `.msg-partial-` and six random letters or digits.
fn partial_name() -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let mut random = [0u8; PARTIAL_RANDOM];
    // Without randomness the name is still tried until it is free.
    let _ = getrandom::fill(&mut random);
    let suffix: String = random
        .iter()
        .map(|b| char::from(ALPHABET[usize::from(*b) % ALPHABET.len()]))
        .collect();
    format!("{PARTIAL_PREFIX}{suffix}")
}

/// Renames the partial file to its final name in the same folder; without
/// `overwrite`, never over a file that appeared meanwhile.
pub(in crate::file) fn rename_into_place(
    dir: &OwnedFd,
    partial: &str,
    name: &str,
    overwrite: bool,
) -> Result<(), Errno> {
    if overwrite {
        return rustix::fs::renameat(dir, partial, dir, name);
    }
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        rustix::fs::renameat_with(dir, partial, dir, name, rustix::fs::RenameFlags::NOREPLACE)
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    {
        // A link fails on an existing name, as RENAME_NOREPLACE does.
        rustix::fs::linkat(dir, partial, dir, name, AtFlags::empty())?;
        rustix::fs::unlinkat(dir, partial, AtFlags::empty())
    }
}
