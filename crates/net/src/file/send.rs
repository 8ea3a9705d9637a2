//! The sending side: a header, the content streamed and hashed, the
//! receiver's verdict waited for as long as its work may take.

use std::io::Seek;

use msg_proto::file::{FileFrom, FileOffer};

use super::*;

/// Sends the file at `path` on `conn` and waits (at most `wait` for the
/// first answer, [`verdict_wait`] for the last) for the receiver to
/// confirm its hash. With `resume`, the receiver is asked to keep what
/// arrives should the transfer be cut off, and only the rest goes when it
/// holds part of the file already ([`Resumed`]). `progress` is called with
/// the bytes of the file the receiver has or was sent, after each chunk.
///
/// # Errors
///
/// [`Error::File`] with the reason (the receiver's, when it refused), or
/// the transport's error.
pub(crate) async fn send<S: Stream>(
    conn: &mut Connection<S>,
    path: &Path,
    wait: Duration,
    resume: bool,
    progress: &mut dyn FnMut(u64),
) -> Result<Sent, Error> {
    keep_freed_chunks();
    let started = Instant::now();
    let (file, header) = open(path)?;
    let name = header.name.as_str().to_owned();
    let mut msg = header.to_message();
    if resume {
        msg.flags |= FLAG_RESUME;
    }
    conn.write_message(&msg).await?;
    let (file, hasher, resumed) = if resume {
        start_resumed(conn, file, &header, wait, path).await?
    } else {
        match answer(conn, wait, &name).await? {
            FileResult::Ready => (file, blake3::Hasher::new(), Resumed::No),
            other => return Err(unexpected(other, &name)),
        }
    };
    let offset = match resumed {
        Resumed::From(offset) => offset,
        Resumed::No | Resumed::Mismatch(_) => 0,
    };

    // The file is read and hashed on a thread of its own, a bounded queue
    // ahead of the socket.
    let (tx, mut rx) = mpsc::channel::<Bytes>(QUEUE_CHUNKS);
    let reader =
        crate::off_thread::spawn("msg-file-read", move || read_and_hash(file, hasher, &tx));
    let mut sent = 0u64;
    let mut seq = 0u64;
    progress(offset);
    while let Some(bytes) = rx.recv().await {
        // A receiver that refuses mid-way (a full disk, say) says why and
        // stops taking content: read its reason rather than send on.
        if answer_waiting(conn) {
            return Err(match answer(conn, wait, &name).await {
                Ok(other) => unexpected(other, &name),
                Err(err) => err,
            });
        }
        sent += bytes.len() as u64;
        // Grown past its header's size: said as the sender's, before the
        // receiver refuses the extra bytes as a content that "runs past
        // its announced size" (audit, round sixteen), and with no end, so
        // that the receiver keeps nothing.
        if offset + sent > header.size {
            return Err(changed(path, header.size, offset + sent));
        }
        if let Err(err) = conn.write_message_direct(&chunk(seq, bytes)).await {
            return Err(last_word(conn, &name, err.into()).await);
        }
        seq += 1;
        progress(offset + sent);
    }
    let digest = read_on(reader, path).await?;
    // Shrunk: its end would be refused as "content ended short", the
    // receiver's words for the sender's file.
    if offset + sent != header.size {
        return Err(changed(path, header.size, offset + sent));
    }
    // An answer already here, before the end is sent, can only be a
    // refusal (the loop above sees one between chunks; a file with no
    // chunks is seen only here): a receiver cannot have checked a hash it
    // has not been sent.
    if answer_waiting(conn) {
        return Err(match answer(conn, wait, &name).await {
            Ok(FileResult::Saved { .. }) => FileError::SavedUnsent {
                name: crate::text::printable(name.as_bytes()),
            }
            .into(),
            Ok(other) => unexpected(other, &name),
            Err(err) => err,
        });
    }
    if let Err(err) = conn.write_message(&FileEnd { digest }.to_message()).await {
        // The receiver may have refused the file and closed just as the
        // last chunk left: its reason is what matters, not the reset.
        return Err(last_word(conn, &name, err.into()).await);
    }
    match answer(conn, verdict_wait(wait, sent), &name).await? {
        FileResult::Saved { name } => Ok(Sent {
            name: crate::text::printable_path(name.as_bytes()),
            size: offset + sent,
            digest,
            elapsed: started.elapsed(),
            resumed,
        }),
        other => Err(unexpected(other, &name)),
    }
}

/// After a header with [`FLAG_RESUME`]: the receiver's answer, `Ready` or
/// an offer, which is checked against the file's own first bytes and
/// answered with a [`FileFrom`]. The file positioned where the content
/// starts, the hash of what comes before, and what became of the offer.
async fn start_resumed<S: AsyncRead + AsyncWrite + Unpin>(
    conn: &mut Connection<S>,
    file: fs::File,
    header: &FileHeader,
    wait: Duration,
    path: &Path,
) -> Result<(fs::File, blake3::Hasher, Resumed), Error> {
    let name = header.name.as_str();
    // The receiver reads and hashes what it holds first, up to the size.
    let msg = next_answer(conn, hash_wait(wait, header.size)).await?;
    if msg.kind != Kind::FileOffer {
        return match result(&msg, name)? {
            FileResult::Ready => Ok((file, blake3::Hasher::new(), Resumed::No)),
            other => Err(unexpected(other, name)),
        };
    }
    let offer =
        FileOffer::from_message(&msg, header.size).map_err(|reason| FileError::BadOffer {
            name: name.to_owned(),
            reason,
        })?;
    let checking = crate::off_thread::spawn("msg-file-read", move || same_prefix(file, &offer));
    let (file, hasher, same) = read_on(checking, path).await?;
    let (from, resumed) = if same {
        (offer.offset, Resumed::From(offer.offset))
    } else {
        (0, Resumed::Mismatch(offer.offset))
    };
    conn.write_message(&FileFrom { offset: from }.to_message())
        .await?;
    Ok((file, hasher, resumed))
}

/// What the thread reading the file at `path` came to; its error as the
/// file's.
async fn read_on<T>(
    thread: io::Result<crate::off_thread::OffThread<io::Result<T>>>,
    path: &Path,
) -> Result<T, Error> {
    let failed = |source| FileError::Read {
        path: path.to_owned(),
        source,
    };
    let read = thread
        .map_err(failed)?
        .await
        .map_err(|err| io::Error::other(err.to_string()))?;
    Ok(read.map_err(failed)?)
}

/// Whether the file's first bytes are the ones `offer` describes: hashes
/// as many, and compares the digests in constant time (blake3's `Hash`
/// does), so that nothing about the receiver's bytes leaks by timing. The
/// file then stands after them and the hasher has seen them; or, when
/// they differ, back at the start with a fresh hasher.
fn same_prefix(
    mut file: fs::File,
    offer: &FileOffer,
) -> io::Result<(fs::File, blake3::Hasher, bool)> {
    let mut hasher = blake3::Hasher::new();
    hasher.update_reader((&mut file).take(offer.offset))?;
    let whole = file.stream_position()? == offer.offset;
    if whole && hasher.finalize() == blake3::Hash::from_bytes(offer.digest) {
        return Ok((file, hasher, true));
    }
    file.rewind()?;
    Ok((file, blake3::Hasher::new(), false))
}

/// The slowest a receiver is assumed to finish what it still has of a file
/// once the sender has sent it all, in bytes per second: 1 MiB/s, far
/// below any disk, for a listener saving many files at once on a busy
/// machine.
const FINISH_FLOOR_RATE: u64 = 1 << 20;

/// The most a receiver can still have of a file when the sender's last
/// write returns: what the socket buffers of both ends hold (by default
/// on Linux at most 4 MiB to send and 6 MiB to receive), its queue of
/// chunks and its write buffer, with room for buffers tuned larger.
const FINISH_BYTES_MAX: u64 = 64 << 20;

/// How long the sender waits for the verdict on a file of `size` bytes:
/// `wait`, plus the time the receiver may need to write, hash and rename
/// what it had not yet taken when the last byte left, at
/// [`FINISH_FLOOR_RATE`] (at most [`FINISH_BYTES_MAX`] of it: 64 s).
///
/// The sender's writes return once the bytes are in its socket buffer,
/// so the verdict's clock starts while megabytes are still on their way
/// to the receiver's disk; a fixed wait failed transfers that were saved
/// whenever many ran at once (50 × 100 MiB: 5 to 9 "no answer within 2s",
/// every file saved).
pub(super) fn verdict_wait(wait: Duration, size: u64) -> Duration {
    let behind = size.min(FINISH_BYTES_MAX);
    wait + Duration::from_secs_f64(behind as f64 / FINISH_FLOOR_RATE as f64)
}

/// How long a sender whose write failed waits for the receiver's reason.
const LAST_WORD_WAIT: Duration = Duration::from_millis(500);

/// Whether the receiver has said something (or closed) while the sender
/// streams content: during the content it only ever speaks to refuse.
/// One non-blocking peek per chunk (over TCP), a system call per MiB.
pub(super) fn answer_waiting<S: Stream>(conn: &Connection<S>) -> bool {
    conn.buffered() > 0 || conn.get_ref().input_waiting()
}

/// After a write failed with `err`: the receiver's refusal, if it sent one
/// before it closed (a receiver that refuses mid-way says why first, and
/// a reset does not discard what had already arrived); a receiver gone
/// without one as [`FileError::Closed`], as when the close is read rather
/// than written into (audit, round sixteen: a listener stopped mid-file
/// was a bare `Connection reset by peer`); else `err`.
pub(super) async fn last_word<S: AsyncRead + AsyncWrite + Unpin>(
    conn: &mut Connection<S>,
    name: &str,
    err: Error,
) -> Error {
    match answer(conn, LAST_WORD_WAIT, name).await {
        Ok(FileResult::Refused { reason }) => refused(name, &reason),
        Err(peer @ Error::Peer(_)) => peer,
        _ => gone(err),
    }
}

/// The file at `path` changed while it was sent.
fn changed(path: &Path, announced: u64, read: u64) -> Error {
    FileError::Changed {
        path: path.to_owned(),
        announced,
        read,
    }
    .into()
}

/// `err`, or [`FileError::Closed`] when it is the receiver's leaving: its
/// reset, met by a write or by the read for its answer, is said as its
/// close is (audit, round sixteen: a listener stopped mid-file was a bare
/// `Connection reset by peer`).
fn gone(err: Error) -> Error {
    if crate::error::peer_left_in(&err) {
        FileError::Closed.into()
    } else {
        err
    }
}

/// Opens `path` and describes it.
fn open(path: &Path) -> Result<(fs::File, FileHeader), FileError> {
    let read = |source| FileError::Read {
        path: path.to_owned(),
        source,
    };
    // Without waiting: a FIFO's open blocks until a writer comes, and on
    // the runtime's thread no timeout could end it (audit, round four).
    // What was opened is then looked at, and only a regular file sent.
    let file = crate::private_file::open_nonblocking(path).map_err(read)?;
    let meta = file.metadata().map_err(read)?;
    if !meta.is_file() {
        return Err(FileError::NotAFile {
            path: path.to_owned(),
        });
    }
    // A name that is not UTF-8 is said to be so (audit, round sixteen: it
    // was "refused file name \"\": it is empty").
    let os_name = path.file_name().unwrap_or_default();
    let name =
        FileName::from_bytes(os_name.as_encoded_bytes()).map_err(|source| FileError::Name {
            path: path.to_owned(),
            source,
        })?;
    Ok((
        file,
        FileHeader {
            name,
            size: meta.len(),
            algorithm: HashAlgorithm::Blake3,
            mode: mode(&meta),
        },
    ))
}

#[cfg(unix)]
pub(super) fn mode(meta: &fs::Metadata) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    meta.permissions().mode() & 0o777
}

#[cfg(not(unix))]
pub(super) fn mode(meta: &fs::Metadata) -> u32 {
    if meta.permissions().readonly() {
        0o444
    } else {
        0o644
    }
}

/// Reads `file` from where it stands to its end in chunks, hashing each
/// (on from `hasher`), and queues them.
fn read_and_hash(
    mut file: fs::File,
    mut hasher: blake3::Hasher,
    tx: &mpsc::Sender<Bytes>,
) -> io::Result<[u8; 32]> {
    loop {
        // Whole chunks (a read may return less), so that the per-message
        // costs are paid per MiB; `read_to_end` fills fresh capacity
        // without zeroing it first.
        let mut buf = Vec::with_capacity(MAX_CHUNK);
        (&mut file).take(MAX_CHUNK as u64).read_to_end(&mut buf)?;
        if buf.is_empty() {
            return Ok(*hasher.finalize().as_bytes());
        }
        hasher.update(&buf);
        if tx.blocking_send(Bytes::from(buf)).is_err() {
            // The socket side gave up; it reports why.
            return Ok(*hasher.finalize().as_bytes());
        }
    }
}

/// The receiver's next answer about `name`.
pub(super) async fn answer<S: AsyncRead + AsyncWrite + Unpin>(
    conn: &mut Connection<S>,
    wait: Duration,
    name: &str,
) -> Result<FileResult, Error> {
    let msg = next_answer(conn, wait).await?;
    result(&msg, name)
}

/// The receiver's next message, within `wait`; its `Error`, as an error.
async fn next_answer<S: AsyncRead + AsyncWrite + Unpin>(
    conn: &mut Connection<S>,
    wait: Duration,
) -> Result<Message, Error> {
    let msg = tokio::time::timeout(wait, conn.read_message())
        .await
        .map_err(|_| FileError::NoAnswer(wait))?
        .map_err(|err| gone(err.into()))?
        .ok_or(FileError::Closed)?;
    if msg.kind == Kind::Error {
        return Err(Error::Peer(crate::auth::printable(&msg.body)));
    }
    Ok(msg)
}

/// `msg` as a file result about `name`.
fn result(msg: &Message, name: &str) -> Result<FileResult, Error> {
    match msg.kind {
        Kind::FileResult => FileResult::from_message(msg).map_err(|reason| {
            FileError::BadAnswer {
                name: name.to_owned(),
                reason,
            }
            .into()
        }),
        found => Err(FileError::Unexpected { found }.into()),
    }
}

/// A file result that is not the one awaited: a refusal says why; saved
/// or ready, out of turn, is a receiver that does not follow the transfer
/// (not a refusal: it said it saved the file, or would take it).
pub(super) fn unexpected(result: FileResult, name: &str) -> Error {
    let answer = match result {
        FileResult::Refused { reason } => return refused(name, &reason),
        FileResult::Saved { .. } => "saved",
        FileResult::Ready => "ready",
        // FileResult is non-exhaustive: a result of a later version.
        _ => "a result this msg does not know",
    };
    FileError::OutOfTurn {
        name: name.to_owned(),
        answer,
    }
    .into()
}

pub(super) fn refused(name: &str, reason: &str) -> Error {
    FileError::Refused {
        name: name.to_owned(),
        reason: crate::auth::printable(reason.as_bytes()),
    }
    .into()
}
