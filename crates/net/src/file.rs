//! Files, both ends: `msg send --file` and `msg listen --save-dir`.
//!
//! The tutorial's answer to sticky packets, done so that nothing is lost
//! or left half-written:
//!
//! ```text
//! sender                                   receiver
//!   FileHeader (name, size, hash, mode) ──>  checks the name, makes a temporary file
//!                                       <──  FileResult: ready (or refused: why)
//!   FileChunk × n (≤ 1 MiB each)        ──>  hashes and writes each, refuses one past the size
//!   FileEnd (the BLAKE3 of the content) ──>  compares size and hash, renames into place
//!                                       <──  FileResult: saved as NAME (or refused: why)
//! ```
//!
//! Both sides hash while streaming, on a thread beside the socket (the
//! sender's reads the file and hashes, the receiver's hashes and writes),
//! so the hash never costs a second pass over the file, and a bounded
//! queue of chunks between thread and socket keeps memory flat whatever
//! the file's size. The receiver writes into a temporary file in the save
//! directory and renames it into place only once size and hash check out;
//! on every other path (a mismatch, a sender gone mid-way, a full disk, a
//! listener stopped with Ctrl-C) the temporary file is dropped, which
//! removes it; only a `kill -9` leaves one behind, which the next listener
//! on that directory removes once it is stale ([`remove_stale_partials`]).
//! The name is the receiver's choice too: a single validated
//! path component (msg-proto's `FileName`), never the sender's path.
//!
//! Both ends take a framed [`Connection<S>`](msg_tcp::Connection) over any
//! byte stream, not a TCP socket: the receiver reads and writes frames
//! only, and the sender also asks its [`Stream`] whether
//! an answer waits. So a file crosses a Unix socket or TLS the same way.

use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bytes::Bytes;
use msg_proto::file::{
    FileEnd, FileHeader, FileName, FileResult, HashAlgorithm, MAX_CHUNK, Receiving, chunk, hex,
};
use msg_proto::{Kind, Message};
use msg_tcp::{Connection, Stream};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;
use tracing::{info, warn};

use crate::{Error, Event, Events};

/// How many chunks may wait between the socket and the file's thread, on
/// either side: with 1 MiB chunks, at most 8 MiB per transfer.
const QUEUE_CHUNKS: usize = 8;

/// How long a receiver waits for the next chunk before it gives the
/// transfer up: a sender that stalls mid-file must not pin a temporary
/// file and a connection for ever.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// The name of a file being received, before it is renamed into place:
/// this prefix, then [`PARTIAL_RANDOM`] random letters and digits.
const PARTIAL_PREFIX: &str = ".msg-partial-";

/// How many random characters follow [`PARTIAL_PREFIX`].
const PARTIAL_RANDOM: usize = 6;

/// How long ago a partial file must last have been written for a starting
/// listener to remove it as stale ([`remove_stale_partials`]).
///
/// A listener removes its own partial files on every way out but one: a
/// `kill -9` (or a crash, or a power cut) leaves them behind. An hour is
/// far past [`IDLE_TIMEOUT`], after which a receiver gives up a transfer
/// whose sender sends nothing, so no transfer of a listener that stopped
/// is still going. It is long for the one case where a live transfer
/// could own such a file: a second listener saving into the same
/// directory, receiving so slowly that an hour passes without a single
/// buffered MiB reaching its file. Even then nothing is corrupted: that
/// transfer's rename fails and the sender is told it was refused.
pub const STALE_PARTIAL_AGE: Duration = Duration::from_secs(60 * 60);

/// Permission bits a received file never gets from its sender: setuid,
/// setgid, sticky, and write for group and others (as a umask of 022
/// would).
const MODE_MASK: u32 = 0o755;

/// Where a listener saves files.
#[derive(Debug, Clone)]
pub struct SaveConfig {
    /// The directory; nothing is written outside it.
    pub dir: PathBuf,
    /// Replace a file of the same name instead of refusing the transfer.
    pub overwrite: bool,
    /// Report [`Event::FileProgress`] after each chunk, for a progress bar.
    pub progress: bool,
}

/// A file the receiver confirmed.
#[derive(Debug, Clone)]
pub struct Sent {
    /// The name the receiver says it saved it under, made safe to print
    /// ([`printable`](crate::text::printable)): the receiver chose it, and
    /// a hostile one could put terminal controls in it.
    pub name: String,
    /// Its size in bytes.
    pub size: u64,
    /// The BLAKE3 hash of its content, which the receiver computed too.
    pub digest: [u8; 32],
    /// From the header to the receiver's confirmation.
    pub elapsed: Duration,
}

impl Sent {
    /// The hash as `b3sum` prints it.
    pub fn hash(&self) -> String {
        hex(&self.digest)
    }
}

/// Why a file could not be sent or was not saved.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FileError {
    /// The local file cannot be read.
    #[error("cannot read {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The local path is not a regular file.
    #[error("{path} is not a regular file")]
    NotAFile {
        /// The path.
        path: PathBuf,
    },
    /// The file's name cannot be sent (not UTF-8, or refused by the
    /// rules every receiver applies).
    #[error("cannot send {path}")]
    Name {
        /// The path.
        path: PathBuf,
        /// Why.
        source: msg_proto::file::FileError,
    },
    /// The receiver refused the file; its reason, made safe to print.
    #[error("the receiver refused {name}: {reason}")]
    Refused {
        /// The file's name.
        name: String,
        /// The receiver's reason.
        reason: String,
    },
    /// The receiver answered something that is no file result.
    #[error("the receiver answered {found:?} to a file transfer: is it msg listen --save-dir?")]
    Unexpected {
        /// What came.
        found: Kind,
    },
    /// The receiver did not answer in time.
    #[error("no answer from the receiver within {}", humantime::format_duration(*.0))]
    NoAnswer(Duration),
    /// The receiver closed the connection without a verdict.
    #[error("the receiver closed the connection before confirming the file")]
    Closed,
    /// Files go over TCP only.
    #[error("files need --tcp: UDP does not promise delivery, and a file must arrive whole")]
    NeedsTcp,
}

/// Sends the file at `path` on `conn` and waits (at most `wait` for the
/// first answer, [`verdict_wait`] for the last) for the receiver to
/// confirm its hash. `progress` is called with
/// the bytes sent so far after each chunk.
///
/// # Errors
///
/// [`Error::File`] with the reason (the receiver's, when it refused), or
/// the transport's error.
pub(crate) async fn send<S: Stream>(
    conn: &mut Connection<S>,
    path: &Path,
    wait: Duration,
    progress: &mut dyn FnMut(u64),
) -> Result<Sent, Error> {
    let started = Instant::now();
    let (file, header) = open(path)?;
    let name = header.name.as_str().to_owned();
    conn.write_message(&header.to_message()).await?;
    match answer(conn, wait, &name).await? {
        FileResult::Ready => {}
        other => return Err(unexpected(other, &name)),
    }

    // The file is read and hashed on a thread of its own, a bounded queue
    // ahead of the socket.
    let (tx, mut rx) = mpsc::channel::<Bytes>(QUEUE_CHUNKS);
    let reader = tokio::task::spawn_blocking(move || read_and_hash(file, &tx));
    let mut sent = 0u64;
    let mut seq = 0u64;
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
        if let Err(err) = conn.write_message_direct(&chunk(seq, bytes)).await {
            return Err(last_word(conn, &name, err.into()).await);
        }
        seq += 1;
        progress(sent);
    }
    let digest = reader
        .await
        .map_err(|err| io::Error::other(err.to_string()))?
        .map_err(|source| FileError::Read {
            path: path.to_owned(),
            source,
        })?;
    if let Err(err) = conn.write_message(&FileEnd { digest }.to_message()).await {
        // The receiver may have refused the file and closed just as the
        // last chunk left: its reason is what matters, not the reset.
        return Err(last_word(conn, &name, err.into()).await);
    }
    match answer(conn, verdict_wait(wait, sent), &name).await? {
        FileResult::Saved { name } => Ok(Sent {
            name: crate::text::printable(name.as_bytes()),
            size: sent,
            digest,
            elapsed: started.elapsed(),
        }),
        other => Err(unexpected(other, &name)),
    }
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
fn verdict_wait(wait: Duration, size: u64) -> Duration {
    let behind = size.min(FINISH_BYTES_MAX);
    wait + Duration::from_secs_f64(behind as f64 / FINISH_FLOOR_RATE as f64)
}

/// How long a sender whose write failed waits for the receiver's reason.
const LAST_WORD_WAIT: Duration = Duration::from_millis(500);

/// Whether the receiver has said something (or closed) while the sender
/// streams content: during the content it only ever speaks to refuse.
/// One non-blocking peek per chunk (over TCP), a system call per MiB.
fn answer_waiting<S: Stream>(conn: &Connection<S>) -> bool {
    conn.buffered() > 0 || conn.get_ref().input_waiting()
}

/// After a write failed with `err`: the receiver's refusal, if it sent one
/// before it closed (a receiver that refuses mid-way says why first, and
/// a reset does not discard what had already arrived), else `err`.
async fn last_word<S: AsyncRead + AsyncWrite + Unpin>(
    conn: &mut Connection<S>,
    name: &str,
    err: Error,
) -> Error {
    match answer(conn, LAST_WORD_WAIT, name).await {
        Ok(FileResult::Refused { reason }) => refused(name, &reason),
        Err(peer @ Error::Peer(_)) => peer,
        _ => err,
    }
}

/// Opens `path` and describes it.
fn open(path: &Path) -> Result<(fs::File, FileHeader), FileError> {
    let read = |source| FileError::Read {
        path: path.to_owned(),
        source,
    };
    let file = fs::File::open(path).map_err(read)?;
    let meta = file.metadata().map_err(read)?;
    if !meta.is_file() {
        return Err(FileError::NotAFile {
            path: path.to_owned(),
        });
    }
    let name = path
        .file_name()
        .and_then(|name| name.to_str())
        .unwrap_or_default();
    let name = FileName::new(name).map_err(|source| FileError::Name {
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
fn mode(meta: &fs::Metadata) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    meta.permissions().mode() & 0o777
}

#[cfg(not(unix))]
fn mode(meta: &fs::Metadata) -> u32 {
    if meta.permissions().readonly() {
        0o444
    } else {
        0o644
    }
}

/// Reads `file` to its end in chunks, hashing each, and queues them.
fn read_and_hash(mut file: fs::File, tx: &mpsc::Sender<Bytes>) -> io::Result<[u8; 32]> {
    let mut hasher = blake3::Hasher::new();
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
async fn answer<S: AsyncRead + AsyncWrite + Unpin>(
    conn: &mut Connection<S>,
    wait: Duration,
    name: &str,
) -> Result<FileResult, Error> {
    let msg = tokio::time::timeout(wait, conn.read_message())
        .await
        .map_err(|_| FileError::NoAnswer(wait))??
        .ok_or(FileError::Closed)?;
    match msg.kind {
        Kind::FileResult => {
            Ok(FileResult::from_message(&msg).map_err(|err| refused(name, &err.to_string()))?)
        }
        Kind::Error => Err(Error::Peer(crate::auth::printable(&msg.body))),
        found => Err(FileError::Unexpected { found }.into()),
    }
}

fn unexpected(result: FileResult, name: &str) -> Error {
    match result {
        FileResult::Refused { reason } => refused(name, &reason),
        _ => FileError::Unexpected {
            found: Kind::FileResult,
        }
        .into(),
    }
}

fn refused(name: &str, reason: &str) -> Error {
    FileError::Refused {
        name: name.to_owned(),
        reason: crate::auth::printable(reason.as_bytes()),
    }
    .into()
}

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
struct Prepared {
    header: FileHeader,
    temp: tempfile::NamedTempFile,
    target: PathBuf,
    overwrite: bool,
}

/// Checks a header and makes the temporary file; the reason to give the
/// sender otherwise.
fn prepare(header: &Message, save: Option<&SaveConfig>) -> Result<Prepared, String> {
    let header = FileHeader::from_message(header).map_err(|err| err.to_string())?;
    let save = save.ok_or_else(|| {
        "this listener saves no files; start msg listen with --save-dir DIR".to_owned()
    })?;
    // A validated single component: joined to the directory it cannot
    // leave it.
    let target = save.dir.join(header.name.as_str());
    if !save.overwrite && fs::symlink_metadata(&target).is_ok() {
        return Err(format!(
            "{} already exists there, and the listener does not --overwrite",
            header.name.as_str()
        ));
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
fn for_peer(err: &io::Error) -> String {
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
async fn refuse<S: AsyncRead + AsyncWrite + Unpin>(
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

/// Checks at start that `dir` is a directory this process can write, so
/// that `msg listen --save-dir` fails at once and not at the first file.
///
/// # Errors
///
/// The operating system's, for example when the directory does not exist
/// or is read-only.
pub fn check_save_dir(dir: &Path) -> io::Result<()> {
    let meta = fs::metadata(dir)?;
    if !meta.is_dir() {
        return Err(io::Error::new(
            io::ErrorKind::NotADirectory,
            "not a directory",
        ));
    }
    tempfile::Builder::new()
        .prefix(".msg-check-")
        .tempfile_in(dir)
        .map(drop)
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
fn is_partial_name(name: &str) -> bool {
    name.strip_prefix(PARTIAL_PREFIX).is_some_and(|random| {
        random.len() == PARTIAL_RANDOM && random.bytes().all(|b| b.is_ascii_alphanumeric())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_verdict_wait_grows_with_what_the_receiver_may_still_have() {
        let wait = Duration::from_secs(2);
        assert_eq!(verdict_wait(wait, 0), wait);
        assert_eq!(verdict_wait(wait, 1 << 19), Duration::from_millis(2500));
        assert_eq!(verdict_wait(wait, 100 << 20), Duration::from_secs(66));
        assert_eq!(verdict_wait(wait, u64::MAX), Duration::from_secs(66));
    }

    #[test]
    fn only_our_own_partial_names_match() {
        assert!(is_partial_name(".msg-partial-aB3xY9"));
        for name in [
            ".msg-partial-",
            ".msg-partial-aB3xY",
            ".msg-partial-aB3xY90",
            ".msg-partial-aB3x.9",
            ".msg-partial-aB3xY9/",
            "msg-partial-aB3xY9",
            ".msg-check-aB3xY9",
            "report.pdf",
        ] {
            assert!(!is_partial_name(name), "{name}");
        }
    }

    #[test]
    fn prepare_names_its_temporary_files_as_the_cleanup_expects() {
        let dir = tempfile::tempdir().unwrap();
        let save = SaveConfig {
            dir: dir.path().to_owned(),
            overwrite: false,
            progress: false,
        };
        let header = FileHeader {
            name: FileName::new("x").unwrap(),
            size: 1,
            algorithm: HashAlgorithm::Blake3,
            mode: 0o644,
        };
        let prepared = prepare(&header.to_message(), Some(&save)).unwrap();
        let name = prepared.temp.path().file_name().unwrap().to_str().unwrap();
        assert!(is_partial_name(name), "{name}");
    }
}
