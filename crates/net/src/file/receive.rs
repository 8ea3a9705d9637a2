//! The receiving side: the header checked, the content written to a
//! partial file and hashed as it arrives, saved atomically or removed, and
//! the sender told either way; the save directory looked after.

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
    let started = Instant::now();
    let peer = conn.peer_addr();
    let prepared = match prepare(header, save) {
        Ok(prepared) => prepared,
        Err(reason) => return refuse(conn, reason).await,
    };
    let header = prepared.header.clone();
    conn.write_message(&FileResult::Ready.to_message()).await?;
    info!(%peer, size = header.size, "receiving {}", header.name.as_str());
    // The temporary file lives inside `save_content`: when it returns with
    // a refusal, the file is already removed.
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
    let digest = match save_content(conn, prepared, progress).await {
        Ok(digest) => digest,
        Err(Failure::Refuse(reason)) => return refuse(conn, reason).await,
        Err(Failure::Fatal(err)) => return Err(err),
    };
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

/// How receiving the content went wrong.
enum Failure {
    /// Tell the sender this, then close.
    Refuse(String),
    /// The connection itself failed: nobody to tell.
    Fatal(Error),
}

impl<E: Into<Error>> From<E> for Failure {
    fn from(err: E) -> Self {
        Self::Fatal(err.into())
    }
}

/// Streams the content into the temporary file, checks it, and renames it
/// into place; the digest of what was saved.
async fn save_content<S: AsyncRead + AsyncWrite + Unpin>(
    conn: &mut Connection<S>,
    prepared: Prepared,
    progress: impl Fn(u64),
) -> Result<[u8; 32], Failure> {
    let Prepared {
        header,
        temp,
        target,
        overwrite,
    } = prepared;
    // The file is hashed and written on a thread of its own, a bounded
    // queue behind the socket; the temporary file itself stays here, so
    // that leaving this function any other way than by the rename (an
    // error, a refusal, Ctrl-C dropping the future) removes it.
    let writer_file = temp.as_file().try_clone()?;
    let (tx, rx) = mpsc::channel::<Bytes>(QUEUE_CHUNKS);
    let writer = tokio::task::spawn_blocking(move || hash_and_write(writer_file, rx));
    let mut receiving = Receiving::new(header.clone());
    let end = loop {
        let msg = tokio::time::timeout(IDLE_TIMEOUT, conn.read_message())
            .await
            .map_err(|_| {
                Failure::Refuse(format!(
                    "nothing for {} after {} of {} bytes",
                    humantime::format_duration(IDLE_TIMEOUT),
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
                // Checked before it is written: a chunk past the announced
                // size never reaches the disk.
                receiving
                    .on_chunk(&msg)
                    .map_err(|err| Failure::Refuse(err.to_string()))?;
                // The whole body is the chunk: a slice of the read buffer,
                // handed on without a copy.
                if tx.send(msg.body).await.is_err() {
                    break None; // the writer failed; it says why below
                }
                progress(receiving.received());
            }
            Kind::FileEnd => break Some(msg),
            other => {
                return Err(Failure::Refuse(format!(
                    "expected a file chunk, got {other:?}"
                )));
            }
        }
    };
    drop(tx);
    let digest = match writer.await {
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
    set_mode(temp.as_file(), header.mode)?;
    let persisted = if overwrite {
        temp.persist(&target).map(drop)
    } else {
        temp.persist_noclobber(&target).map(drop)
    };
    persisted.map_err(|err| {
        Failure::Refuse(format!(
            "cannot save {}: {}",
            header.name.as_str(),
            for_peer(&err.error)
        ))
    })?;
    Ok(digest)
}

/// What is ready once a header was accepted.
pub(super) struct Prepared {
    header: FileHeader,
    pub(super) temp: tempfile::NamedTempFile,
    target: PathBuf,
    overwrite: bool,
}

/// Checks a header and makes the temporary file; the reason to give the
/// sender otherwise.
pub(super) fn prepare(header: &Message, save: Option<&SaveConfig>) -> Result<Prepared, String> {
    let header = FileHeader::from_message(header).map_err(|err| err.to_string())?;
    let save = save.ok_or_else(|| crate::refusal::SAVES_NO_FILES.to_owned())?;
    // A validated single component: joined to the directory it cannot
    // leave it.
    let target = save.dir.join(header.name.as_str());
    if !save.overwrite && fs::symlink_metadata(&target).is_ok() {
        return Err(crate::refusal::FILE_EXISTS.format(header.name.as_str()));
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
        temp,
        target,
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

/// Hashes and writes what the socket side queues, until it stops.
fn hash_and_write(file: fs::File, mut rx: mpsc::Receiver<Bytes>) -> io::Result<[u8; 32]> {
    let mut hasher = blake3::Hasher::new();
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
/// (a listener passes [`STALE_PARTIAL_AGE`]). Each removal is logged; how
/// many were removed is returned.
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
pub fn remove_stale_partials(dir: &Path, older_than: Duration) -> io::Result<usize> {
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
        let Some(name) = name.to_str().filter(|name| is_partial_name(name)) else {
            continue;
        };
        let path = entry.path();
        // symlink_metadata: the entry itself, never what a link points to.
        let stale = fs::symlink_metadata(&path).and_then(|meta| {
            let age = meta
                .modified()
                .map(|modified| now.duration_since(modified).unwrap_or_default())?;
            Ok((meta.file_type().is_file() && age > older_than).then_some((meta.len(), age)))
        });
        match stale {
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

/// Whether `name` is one of [`prepare`]'s temporary file names.
pub(super) fn is_partial_name(name: &str) -> bool {
    name.strip_prefix(PARTIAL_PREFIX).is_some_and(|random| {
        random.len() == PARTIAL_RANDOM && random.bytes().all(|b| b.is_ascii_alphanumeric())
    })
}
