//! A folder's receiving side: the entries checked as they come (msg-proto's
//! `TreeReceiving`), and every file operation on a thread of its own
//! (`write/`).

use std::collections::VecDeque;
use std::os::fd::OwnedFd;

use msg_proto::tree::{TreeReceiving, TreeStart, TreeStep};
use rustix::fs::{AtFlags, Mode};
use rustix::io::Errno;

use super::super::receive::{for_peer, refuse};
use super::super::*;
use super::write::{Op, Verdict, Writer, dir_flags, errno_text};

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
    transfer: Transfer<'_>,
) -> Result<(), Error> {
    let started = Instant::now();
    let peer = conn.peer_addr();
    let start = match TreeStart::from_message(start) {
        Ok(start) => start,
        Err(err) => return refuse(conn, err.to_string(), transfer).await,
    };
    let Some(save) = save else {
        return refuse(conn, crate::refusal::SAVES_NO_FILES.to_owned(), transfer).await;
    };
    // The directory opened at start, never its path looked up again.
    let opened = save.handle.get().and_then(|dir| open_root(&dir, &start));
    let (root, made) = match opened {
        Ok(root) => root,
        Err(reason) => return refuse(conn, reason, transfer).await,
    };
    // Batches of operations, so that the thread is woken once per read
    // of the socket rather than once per message (three per small file):
    // a batch goes when no whole message is left in the read buffer (the
    // next read would wait), or when it holds a chunk's worth of content
    // or BATCH_OPS operations.
    let (ops, ops_rx) = mpsc::channel::<Vec<Op>>(QUEUE_CHUNKS);
    // Unbounded, yet bounded by the entries: the thread answers only what
    // it took from `ops` (at most QUEUE_CHUNKS batches ahead), and every
    // batch handed over below first sends on what has been answered.
    let (verdicts_tx, mut verdicts) = mpsc::unbounded_channel::<Verdict>();
    let overwrite = save.overwrite;
    let root_mode = made.then_some(start.mode);
    let writing = crate::off_thread::spawn("msg-tree-write", move || {
        Writer::new(root, made, overwrite, verdicts_tx).run(ops_rx, root_mode);
    });
    // A thread the system refuses (its limit on threads reached) refuses
    // the folder before anything is sent, and the folder made for it goes
    // again; tokio's pool panicked there (audit, round seven).
    let writer = match writing {
        Ok(writer) => writer,
        Err(err) => {
            let name = start.name.as_str();
            if let (true, Ok(dir)) = (made, save.handle.get()) {
                let _ = rustix::fs::unlinkat(&*dir, name, AtFlags::REMOVEDIR);
            }
            let shown = crate::text::printable(name.as_bytes());
            return refuse(
                conn,
                format!("cannot write the folder {shown}: {}", for_peer(&err)),
                transfer,
            )
            .await;
        }
    };
    conn.write_message(&FileResult::Ready.to_message()).await?;
    // Small files' messages come back to back: a read takes what the
    // socket holds, not one message.
    conn.set_read_room(READ_ROOM);
    info!(%peer, files = start.files, bytes = start.bytes, "receiving the folder {}", start.name.as_str());

    let mut tree = TreeReceiving::new();
    // The current file's hash, here rather than on the writing thread.
    let mut hasher = blake3::Hasher::new();
    let mut waiting = VecDeque::new();
    let mut batch = Batch::default();
    let mut flushed = Instant::now();
    let outcome = loop {
        let more = conn.has_frame();
        if batch.due(more) {
            if ops.send(batch.take()).await.is_err() {
                break Err("the writing thread stopped".to_owned());
            }
            // What the thread has answered meanwhile, once per batch: the
            // listener's output is woken once per batch, not per file.
            while let Ok(verdict) = verdicts.try_recv() {
                waiting.push_back(verdict);
            }
            answer(conn, &mut waiting, &peer, events, (&start, started)).await?;
            // The sender reads verdicts as they come but waits for none
            // before the end: they go out when the write buffer fills
            // (8 KiB) or, with nothing left to read, every VERDICT_FLUSH,
            // not a write per file.
            if !more && flushed.elapsed() >= VERDICT_FLUSH {
                conn.flush().await?;
                flushed = Instant::now();
            }
        }
        let read = tokio::time::timeout(save.idle, conn.read_message()).await;
        let msg = match read {
            Err(_) => {
                break Err(format!(
                    "nothing for {} in the folder",
                    humantime::format_duration(save.idle)
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
            Ok(TreeStep::File(entry)) => {
                hasher.reset();
                Op::File(entry)
            }
            Ok(TreeStep::Refused { reason, .. }) => Op::Refuse(reason.to_string()),
            Ok(TreeStep::Content(_)) => {
                hasher.update(&msg.body);
                Op::Data(msg.body.clone())
            }
            Ok(TreeStep::FileEnd(end)) => Op::End(end, *hasher.finalize().as_bytes()),
            Ok(_) => break Err(format!("unexpected {:?} in a folder", msg.kind)),
        };
        batch.push(op);
    };
    // What was read before the end (or the refusal) is written first.
    if !batch.ops.is_empty() {
        let _ = ops.send(batch.take()).await;
    }
    drop(ops);
    // Every verdict, the last ones once the thread has written them.
    let _ = writer.await;
    conn.set_read_room(0);
    while let Ok(verdict) = verdicts.try_recv() {
        waiting.push_back(verdict);
    }
    answer(conn, &mut waiting, &peer, events, (&start, started)).await?;
    match outcome {
        Ok(()) => {
            let name = start.name.into_string();
            conn.write_message(&FileResult::Saved { name }.to_message())
                .await?;
            Ok(())
        }
        Err(reason) => refuse(conn, reason, transfer).await,
    }
}

/// How often, at most, a folder's receiver flushes its verdicts while
/// the content streams in (they also go whenever 8 KiB of them wait).
const VERDICT_FLUSH: Duration = Duration::from_millis(20);

/// The room each read of a folder's messages gets (see
/// `Connection::set_read_room`): four of the sender's writes.
const READ_ROOM: usize = 256 * 1024;

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

    /// Whether to hand it over now: when no more messages are at hand
    /// (`more` is false), or it is large enough.
    fn due(&self, more: bool) -> bool {
        !self.ops.is_empty() && (!more || self.bytes >= MAX_CHUNK || self.ops.len() >= BATCH_OPS)
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
    (start, started): (&TreeStart, Instant),
) -> Result<(), Error> {
    while let Some(verdict) = waiting.pop_front() {
        conn.feed(&verdict.result.to_message()).await?;
        if let Some((path, size, digest)) = verdict.saved {
            let event = Event::File {
                peer: peer.clone(),
                // Where it is in the save directory, as a single file's
                // name is: `b3sum -c` there checks the listener's lines,
                // and two folders' `a.txt` are told apart.
                name: format!("{}/{path}", start.name.as_str()),
                size,
                hash: hex(&digest),
                elapsed: started.elapsed(),
            };
            events.deliver(event).await;
        }
    }
    Ok(())
}

/// Opens the folder named by `start` in the save directory `save`, making
/// it (0700, until the end) if it is not there: the folder's descriptor,
/// and whether it was made. Anything but a folder of that name refuses the
/// transfer; so does a folder that cannot be opened (out of descriptors,
/// say), which is removed again if this made it.
fn open_root(save: &OwnedFd, start: &TreeStart) -> Result<(OwnedFd, bool), String> {
    let name = start.name.as_str();
    let made = match rustix::fs::mkdirat(save, name, Mode::RWXU) {
        Ok(()) => true,
        Err(Errno::EXIST) => false,
        Err(err) => {
            return Err(format!(
                "cannot make the folder {name}: {}",
                errno_text(err)
            ));
        }
    };
    rustix::fs::openat(save, name, dir_flags(), Mode::empty())
        .map(|root| (root, made))
        .map_err(|err| {
            if made {
                // Nothing was done in it yet. REMOVEDIR takes only an
                // empty folder, whatever took this one's place meanwhile.
                let _ = rustix::fs::unlinkat(save, name, AtFlags::REMOVEDIR);
            }
            let shown = crate::text::printable(name.as_bytes());
            match err {
                // A link (never followed) or a file. Only these: every
                // error was once called so, out of descriptors included.
                Errno::LOOP | Errno::NOTDIR => crate::refusal::NOT_A_FOLDER.format(shown),
                err => format!("cannot open the folder {shown}: {}", errno_text(err)),
            }
        })
}
