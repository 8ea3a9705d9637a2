//! The receiving side: the header checked, the content written to a
//! partial file and hashed as it arrives, saved atomically or removed, and
//! the sender told either way; the save directory looked after.

use std::io::Seek;

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
) -> Result<(), Error> {
    keep_freed_chunks();
    let started = Instant::now();
    let peer = conn.peer_addr();
    let idle = save.map_or(IDLE_TIMEOUT, |save| save.idle);
    let Prepared {
        header,
        partial,
        overwrite,
    } = match prepare(header, save) {
        Ok(prepared) => prepared,
        Err(reason) => return refuse(conn, reason).await,
    };
    // From here the partial file is in `partial`: a temporary one is
    // removed when it is dropped (a refusal, Ctrl-C dropping the future),
    // a kept one stays unless the content is refused.
    let start = match partial.start(conn, &header, idle).await {
        Ok(start) => start,
        Err(failure) => return fail(conn, failure).await,
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
            return fail(conn, failure).await;
        }
    };
    if let Err(reason) = partial.persist(&header, overwrite) {
        return refuse(conn, reason).await;
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
) -> Result<(), Error> {
    match failure {
        Failure::Refuse(reason) | Failure::Quiet(reason) => refuse(conn, reason).await,
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
    let writer_file = file.try_clone()?;
    let (tx, rx) = mpsc::channel::<Bytes>(QUEUE_CHUNKS);
    let Start {
        offset,
        hasher,
        restart,
    } = start;
    let writer = tokio::task::spawn_blocking(move || {
        if restart {
            writer_file.set_len(0)?;
            (&writer_file).seek(io::SeekFrom::Start(0))?;
        }
        hash_and_write(writer_file, hasher, rx)
    });
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

/// The file being received, before it is renamed into place.
#[derive(Debug)]
pub(super) enum Partial {
    /// `.msg-partial-` and six characters: removed unless saved.
    Temp(tempfile::NamedTempFile),
    /// The sender asked to resume: kept if the transfer is cut off.
    #[cfg(unix)]
    Kept(resume::Kept),
}

impl Partial {
    /// The open file.
    pub(super) fn file(&self) -> &fs::File {
        match self {
            Self::Temp(temp) => temp.as_file(),
            #[cfg(unix)]
            Self::Kept(kept) => kept.file(),
        }
    }

    /// Tells the sender where to start: ready, or (kept) an offer first.
    async fn start<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        conn: &mut Connection<S>,
        header: &FileHeader,
        idle: Duration,
    ) -> Result<Start, Failure> {
        match self {
            Self::Temp(_) => {
                conn.write_message(&FileResult::Ready.to_message()).await?;
                Ok(Start::whole())
            }
            #[cfg(unix)]
            Self::Kept(kept) => resume::negotiate(conn, kept, header, idle).await,
        }
    }

    /// Renames it into place under the header's name; the refusal
    /// otherwise (it is removed then).
    fn persist(self, header: &FileHeader, overwrite: bool) -> Result<(), String> {
        let name = header.name.as_str();
        match self {
            Self::Temp(temp) => {
                let target = temp
                    .path()
                    .parent()
                    .expect("a file in the save directory")
                    .join(name);
                let persisted = if overwrite {
                    temp.persist(&target).map(drop)
                } else {
                    temp.persist_noclobber(&target).map(drop)
                };
                persisted.map_err(|err| format!("cannot save {name}: {}", for_peer(&err.error)))
            }
            #[cfg(unix)]
            Self::Kept(kept) => kept.persist(name, overwrite),
        }
    }

    /// After a failure: a temporary file removed; a kept one kept if the
    /// transfer was `cut` off, else removed.
    fn give_up(self, cut: bool, header: &FileHeader) {
        match self {
            Self::Temp(temp) => drop(temp),
            #[cfg(unix)]
            Self::Kept(kept) => kept.give_up(cut, header),
        }
        let _ = (cut, header);
    }
}

/// What is ready once a header was accepted.
#[derive(Debug)]
pub(super) struct Prepared {
    header: FileHeader,
    pub(super) partial: Partial,
    overwrite: bool,
}

/// Checks a header and opens the partial file: a temporary one, or with
/// the [`FLAG_RESUME`] flag the one kept for this file; the reason to give
/// the sender otherwise.
pub(super) fn prepare(msg: &Message, save: Option<&SaveConfig>) -> Result<Prepared, String> {
    let header = FileHeader::from_message(msg).map_err(|err| err.to_string())?;
    let save = save.ok_or_else(|| crate::refusal::SAVES_NO_FILES.to_owned())?;
    // A validated single component: joined to the directory it cannot
    // leave it.
    let target = save.dir.join(header.name.as_str());
    if !save.overwrite && fs::symlink_metadata(&target).is_ok() {
        return Err(crate::refusal::FILE_EXISTS.format(header.name.as_str()));
    }
    #[cfg(unix)]
    if msg.flags & FLAG_RESUME != 0 {
        let kept = resume::Kept::open(&save.dir, &header)?;
        return Ok(Prepared {
            header,
            partial: Partial::Kept(kept),
            overwrite: save.overwrite,
        });
    }
    let temp = tempfile::Builder::new()
        .prefix(PARTIAL_PREFIX)
        .rand_bytes(PARTIAL_RANDOM)
        .tempfile_in(&save.dir)
        .map_err(|err| {
            format!(
                "cannot make a file in the save directory: {}",
                for_peer(&err)
            )
        })?;
    Ok(Prepared {
        header,
        partial: Partial::Temp(temp),
        overwrite: save.overwrite,
    })
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

/// How many bytes it discards, at most: more than loopback's largest
/// socket buffers (4 MiB to send, 6 MiB to receive, by default) and a
/// chunk hold, which is all a sender can have on its way when it hears.
const LINGER_BYTES: usize = 16 << 20;

/// Closes the sending side (the peer reads the refusal, then the end) and
/// reads and discards what the sender still sends, until it closes too or
/// [`LINGER_TIME`] or [`LINGER_BYTES`] runs out.
///
/// A socket closed with unread bytes in its receive buffer is reset, not
/// closed, and a refusal mid-file leaves the chunks in flight unread: a
/// sender still writing would see "connection reset by peer" where the
/// reason (a full disk, say) was due. Drained, it reads the reason.
///
/// Through the connection, not the socket, so that it works on any stream
/// (over TLS a shutdown is a message too).
async fn linger<S: AsyncRead + AsyncWrite + Unpin>(conn: &mut Connection<S>) {
    if conn.shutdown().await.is_err() {
        return;
    }
    // One fixed buffer, whatever the sender sends (`discard`'s); what the
    // connection had already read counts among the bytes.
    let _ = tokio::time::timeout(LINGER_TIME, conn.discard(LINGER_BYTES)).await;
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
    file.set_permissions(fs::Permissions::from_mode(mode & MODE_MASK))
}

#[cfg(not(unix))]
fn set_mode(_file: &fs::File, _mode: u32) -> io::Result<()> {
    Ok(())
}

/// What [`check_save_dir`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub enum SaveDir {
    /// The directory was there already.
    Existed,
    /// It was not, and was made (with any missing parents), owner-only
    /// (mode 0700): files sent by peers are nobody else's business.
    Created,
}

/// Checks at start that `dir` is a directory this process can write, so
/// that `msg listen --save-dir` fails at once and not at the first file.
/// A missing one is made, with its parents, rather than refused: a new
/// user's first `--save-dir ~/inbox` names a folder that is not there yet.
///
/// # Errors
///
/// The operating system's, for example when `dir` is read-only or cannot
/// be made; [`io::ErrorKind::NotADirectory`] when something else is there.
pub fn check_save_dir(dir: &Path) -> io::Result<SaveDir> {
    let found = match fs::metadata(dir) {
        Ok(meta) if meta.is_dir() => SaveDir::Existed,
        Ok(_) => {
            return Err(io::Error::new(
                io::ErrorKind::NotADirectory,
                "not a directory",
            ));
        }
        Err(err) if err.kind() == io::ErrorKind::NotFound => {
            create_owner_only(dir)?;
            SaveDir::Created
        }
        Err(err) => return Err(err),
    };
    tempfile::Builder::new()
        .prefix(".msg-check-")
        .tempfile_in(dir)
        .map(drop)?;
    Ok(found)
}

/// Makes `dir` and its missing parents, mode 0700.
fn create_owner_only(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
        // The umask may have taken the owner's bits too; it needs all three.
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))?;
    }
    #[cfg(not(unix))]
    fs::create_dir_all(dir)?;
    Ok(())
}

/// Removes the partial files that a listener killed mid-transfer left in
/// `dir`: regular files named as this module names them (`.msg-partial-`
/// and six letters or digits) and last written more than `older_than` ago
/// (a listener passes [`STALE_PARTIAL_AGE`]), and the partial files kept
/// for resuming (`.msg-resume-` and 32 hex digits) last written more than
/// `kept_for` ago, unless a transfer holds one. Each removal is logged;
/// how many were removed is returned.
///
/// Nothing else is touched: no other name, no directory, no symbolic link
/// (and no link is followed: the age and type are the entry's own), and
/// nothing below `dir`. A file that cannot be examined or removed is
/// logged and skipped: stale files cost space, not correctness, and must
/// not keep a listener from starting.
///
/// # Errors
///
/// When `dir` cannot be listed.
pub fn remove_stale_partials(
    dir: &Path,
    older_than: Duration,
    kept_for: Duration,
) -> io::Result<usize> {
    let now = std::time::SystemTime::now();
    let mut removed = 0;
    for entry in fs::read_dir(dir)? {
        let entry = match entry {
            Ok(entry) => entry,
            Err(err) => {
                warn!("cannot list {}: {err}", dir.display());
                continue;
            }
        };
        let name = entry.file_name();
        let Some((name, max_age)) = name.to_str().and_then(|name| {
            if is_partial_name(name) {
                Some((name, older_than))
            } else if is_kept_name(name) {
                Some((name, kept_for))
            } else {
                None
            }
        }) else {
            continue;
        };
        let path = entry.path();
        // symlink_metadata: the entry itself, never what a link points to.
        let stale = fs::symlink_metadata(&path).and_then(|meta| {
            let age = meta
                .modified()
                .map(|modified| now.duration_since(modified).unwrap_or_default())?;
            Ok((meta.file_type().is_file() && age > max_age).then_some((meta.len(), age)))
        });
        match stale {
            Ok(Some(_)) if in_use(&path) => {}
            Ok(Some((size, age))) => match fs::remove_file(&path) {
                Ok(()) => {
                    removed += 1;
                    info!(
                        size,
                        "removed {name}, a partial file last written {} ago",
                        humantime::format_duration(Duration::from_secs(age.as_secs()))
                    );
                }
                Err(err) => warn!("cannot remove the stale partial file {name}: {err}"),
            },
            Ok(None) => {}
            Err(err) => warn!("cannot examine {name}: {err}"),
        }
    }
    Ok(removed)
}

#[cfg(unix)]
use super::resume::{in_use, is_kept_name};

#[cfg(not(unix))]
fn is_kept_name(_name: &str) -> bool {
    false
}

#[cfg(not(unix))]
fn in_use(_path: &Path) -> bool {
    false
}

/// Whether `name` is one of [`prepare`]'s temporary file names.
pub(super) fn is_partial_name(name: &str) -> bool {
    name.strip_prefix(PARTIAL_PREFIX).is_some_and(|random| {
        random.len() == PARTIAL_RANDOM && random.bytes().all(|b| b.is_ascii_alphanumeric())
    })
}
