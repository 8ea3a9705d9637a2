//! The receiving side: the header checked, the content written to a
//! partial file and hashed as it arrives, saved atomically or removed, and
//! the sender told either way (the save directory is `save_dir.rs`'s).

use std::io::Seek;

use super::partial::{Prepared, prepare};
use super::*;

/// Receives the file whose header is `header` on `conn`, saving it per
/// `save`, and reports it on `events`. The sender is told the verdict
/// either way, and a refused file is gone before the sender hears so.
///
/// # Errors
///
/// Why the file was refused (the connection is then closed: what follows
/// on it cannot be trusted to be in step), or the transport's error.
pub(crate) async fn receive<S: AsyncRead + AsyncWrite + Unpin>(
    conn: &mut Connection<S>,
    header: &Message,
    save: Option<&SaveConfig>,
    events: &Events,
    transfer: Transfer<'_>,
) -> Result<(), Error> {
    keep_freed_chunks();
    let started = Instant::now();
    let peer = conn.peer_addr();
    let idle = save.map_or(IDLE_TIMEOUT, |save| save.idle);
    let Prepared {
        header,
        mut partial,
        overwrite,
    } = match prepare(header, save, &peer) {
        Ok(prepared) => prepared,
        Err(reason) => return refuse(conn, reason, transfer).await,
    };
    // From here the partial file is in `partial`: a temporary one is
    // removed when it is dropped (a refusal, Ctrl-C dropping the future),
    // a kept one stays unless the content is refused.
    let start = match partial.start(conn, &header, idle).await {
        Ok(start) => start,
        Err(failure) => return fail(conn, failure, transfer).await,
    };
    info!(%peer, size = header.size, from = start.offset, "receiving {}", header.name.as_str());
    let progress = |received| {
        if save.is_some_and(|save| save.progress) {
            // Offered, never waited for: a progress bar is not worth
            // slowing the transfer down.
            events.offer(Event::FileProgress {
                peer: peer.clone(),
                name: header.name.as_str().to_owned(),
                received,
                size: header.size,
            });
        }
    };
    let digest = match save_content(conn, &header, partial.file(), start, idle, progress).await {
        Ok(digest) => digest,
        Err(failure) => {
            partial.give_up(failure.cut(), &header);
            return fail(conn, failure, transfer).await;
        }
    };
    if let Err(reason) = partial.persist(&header, overwrite) {
        return refuse(conn, reason, transfer).await;
    }
    let name = header.name.into_string();
    conn.write_message(&FileResult::Saved { name: name.clone() }.to_message())
        .await?;
    let event = Event::File {
        peer,
        name,
        size: header.size,
        hash: hex(&digest),
        elapsed: started.elapsed(),
    };
    events.deliver(event).await;
    Ok(())
}

/// How receiving a file went wrong.
pub(super) enum Failure {
    /// Tell the sender this, then close; what arrived is of no use.
    Refuse(String),
    /// Tell the sender this, then close; the transfer was cut off (the
    /// sender went quiet) and what arrived is as good as it was.
    Quiet(String),
    /// The connection itself failed: nobody to tell, and the transfer
    /// was cut off.
    Fatal(Error),
}

impl Failure {
    /// Whether the transfer was cut off rather than refused: a partial
    /// file kept for resuming stays.
    fn cut(&self) -> bool {
        !matches!(self, Self::Refuse(_))
    }
}

impl<E: Into<Error>> From<E> for Failure {
    fn from(err: E) -> Self {
        Self::Fatal(err.into())
    }
}

/// Tells the sender why, if there is anyone to tell, and ends.
async fn fail<S: AsyncRead + AsyncWrite + Unpin>(
    conn: &mut Connection<S>,
    failure: Failure,
    transfer: Transfer<'_>,
) -> Result<(), Error> {
    match failure {
        Failure::Refuse(reason) | Failure::Quiet(reason) => refuse(conn, reason, transfer).await,
        Failure::Fatal(err) => Err(err),
    }
}

/// Where the content starts, and the hash of what came before it.
pub(super) struct Start {
    /// The first byte the chunks carry.
    pub(super) offset: u64,
    /// The hash of bytes `0..offset`, to go on with.
    pub(super) hasher: blake3::Hasher,
    /// Empty the partial file first: what it held was not the sender's.
    pub(super) restart: bool,
}

impl Start {
    /// From the first byte.
    pub(super) fn whole() -> Self {
        Self {
            offset: 0,
            hasher: blake3::Hasher::new(),
            restart: false,
        }
    }
}

/// Streams the content into `file` from `start`, and checks it; the digest
/// of the whole file.
async fn save_content<S: AsyncRead + AsyncWrite + Unpin>(
    conn: &mut Connection<S>,
    header: &FileHeader,
    file: &fs::File,
    start: Start,
    idle: Duration,
    progress: impl Fn(u64),
) -> Result<[u8; 32], Failure> {
    // The file is hashed and written on a thread of its own, a bounded
    // queue behind the socket; the partial file itself stays with the
    // caller, which removes (or keeps) it whatever happens here.
    // A local failure, out of file descriptors say, is said to the
    // sender, as a full disk is: as `?` made it, the connection was
    // dropped and the sender heard only that it closed. What a partial
    // file kept for resuming holds is as good as it was.
    let writer_file = file
        .try_clone()
        .map_err(|err| Failure::Quiet(format!("cannot write the file: {}", for_peer(&err))))?;
    let (tx, rx) = mpsc::channel::<Bytes>(QUEUE_CHUNKS);
    let Start {
        offset,
        hasher,
        restart,
    } = start;
    let writer = crate::off_thread::spawn("msg-file-write", move || {
        if restart {
            writer_file.set_len(0)?;
            (&writer_file).seek(io::SeekFrom::Start(0))?;
        }
        hash_and_write(writer_file, hasher, rx)
    })
    .map_err(|err| Failure::Quiet(format!("cannot write the file: {}", for_peer(&err))))?;
    let mut receiving = Receiving::resumed(header.clone(), offset);
    // Chunks are up to 1 MiB: room for a whole one at a time, so that
    // none is copied again as the read buffer grows (the header was
    // accepted; what this holds is this side's constant, not the peer's).
    conn.set_read_ahead(CHUNK_FRAME);
    let ended = async {
        loop {
            let msg = tokio::time::timeout(idle, conn.read_message())
                .await
                .map_err(|_| {
                    Failure::Quiet(format!(
                        "nothing for {} after {} of {} bytes",
                        humantime::format_duration(idle),
                        receiving.received(),
                        header.size
                    ))
                })??;
            let Some(msg) = msg else {
                return Err(Failure::Fatal(Error::Io(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!(
                        "the sender closed the connection mid-file: {} of {} bytes of {}",
                        receiving.received(),
                        header.size,
                        header.name.as_str()
                    ),
                ))));
            };
            match msg.kind {
                Kind::FileChunk => {
                    // Checked before it is written: a chunk past the
                    // announced size never reaches the disk.
                    receiving
                        .on_chunk(&msg)
                        .map_err(|err| Failure::Refuse(err.to_string()))?;
                    // The whole body is the chunk: a slice of the read
                    // buffer, handed on without a copy.
                    if tx.send(msg.body).await.is_err() {
                        return Ok(None); // the writer failed; it says why below
                    }
                    progress(receiving.received());
                }
                Kind::FileEnd => return Ok(Some(msg)),
                other => {
                    return Err(Failure::Refuse(format!(
                        "expected a file chunk, got {other:?}"
                    )));
                }
            }
        }
    }
    .await;
    conn.set_read_ahead(msg_tcp::READ_STEP);
    drop(tx);
    // Whatever ended the content, the writer writes what it was handed
    // first: a partial file kept for resuming holds all that arrived.
    let written = writer.await;
    let end = ended?;
    let digest = match written {
        Ok(Ok(digest)) => digest,
        Ok(Err(err)) => {
            return Err(Failure::Refuse(format!(
                "cannot write the file: {}",
                for_peer(&err)
            )));
        }
        Err(err) => return Err(Failure::Refuse(format!("cannot write the file: {err}"))),
    };
    let end = end.ok_or_else(|| Failure::Refuse("cannot write the file".to_owned()))?;
    receiving
        .on_end(&end, &digest)
        .map_err(|err| Failure::Refuse(err.to_string()))?;
    set_mode(file, header.mode)?;
    Ok(digest)
}

/// What the peer is told of a local I/O error: the operating system's
/// description alone. tempfile's errors carry the path they concern (`...
/// at path "/srv/inbox/.msg-partial-x"`), and the listener's absolute save
/// directory is none of the sender's business: a refusal names the file
/// only by the name the sender gave it.
pub(super) fn for_peer(err: &io::Error) -> String {
    // tempfile's wrapper keeps the kind but hides the operating system's
    // code (its source chain skips the inner error), so its errors read as
    // the kind ("entity not found"); the file writes' errors are the
    // system's own ("No space left on device (os error 28)").
    match err.raw_os_error() {
        Some(code) => io::Error::from_raw_os_error(code).to_string(),
        None => err.kind().to_string(),
    }
}

/// Tells the sender why, and ends the transfer (and the connection),
/// without resetting it: see [`linger`].
pub(super) async fn refuse<S: AsyncRead + AsyncWrite + Unpin>(
    conn: &mut Connection<S>,
    reason: String,
    transfer: Transfer<'_>,
) -> Result<(), Error> {
    let peer = conn.peer_addr();
    let told = conn
        .write_message(
            &FileResult::Refused {
                reason: reason.clone(),
            }
            .to_message(),
        )
        .await;
    // Told, the transfer is over: a stop while what the sender still
    // sends is drained cuts nothing short (a QUIC listener stopped within
    // two seconds of a refusal exited 143, as if a file had been cut off).
    drop(transfer);
    if told.is_ok() {
        linger(conn).await;
    }
    Err(Error::Io(io::Error::other(format!(
        "refused a file from {peer}: {reason}"
    ))))
}

/// How long a receiver that refused a file goes on discarding what the
/// sender still sends, at most ([`linger`]).
const LINGER_TIME: Duration = Duration::from_secs(2);

/// Closes the sending side (the peer reads the refusal, then the end) and
/// reads and discards what the sender still sends, until it closes too or
/// [`LINGER_TIME`] or [`crate::raw::DRAIN_BYTES`] runs out.
///
/// A socket closed with unread bytes in its receive buffer is reset, not
/// closed, and a refusal mid-file leaves the chunks in flight unread: a
/// sender still writing would see "connection reset by peer" where the
/// reason (a full disk, say) was due. Drained, it reads the reason.
///
/// Through the connection, not the socket, so that it works on any stream
/// (over TLS a shutdown is a message too).
async fn linger<S: AsyncRead + AsyncWrite + Unpin>(conn: &mut Connection<S>) {
    // The shutdown inside the time too: QUIC's waits for the peer to
    // acknowledge the stream's end, which a sender that exited on the
    // refusal never does (it held the connection to QUIC's idle timeout).
    let drain = async {
        if conn.shutdown().await.is_ok() {
            // One fixed buffer, whatever the sender sends (`discard`'s);
            // what the connection had already read counts among the bytes.
            let _ = conn.discard(crate::raw::DRAIN_BYTES).await;
        }
    };
    let _ = tokio::time::timeout(LINGER_TIME, drain).await;
}

/// Hashes (on from `hasher`) and writes what the socket side queues, until
/// it stops.
fn hash_and_write(
    file: fs::File,
    mut hasher: blake3::Hasher,
    mut rx: mpsc::Receiver<Bytes>,
) -> io::Result<[u8; 32]> {
    let mut out = io::BufWriter::with_capacity(MAX_CHUNK, file);
    while let Some(bytes) = rx.blocking_recv() {
        hasher.update(&bytes);
        out.write_all(&bytes)?;
    }
    out.flush()?;
    Ok(*hasher.finalize().as_bytes())
}

#[cfg(unix)]
fn set_mode(file: &fs::File, mode: u32) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    file.set_permissions(fs::Permissions::from_mode(mode & mode_mask()))
}

#[cfg(not(unix))]
fn set_mode(_file: &fs::File, _mode: u32) -> io::Result<()> {
    Ok(())
}
