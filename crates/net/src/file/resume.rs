//! Resuming, the receiver's side (`msg send --resume`): the partial file
//! it keeps when a transfer is cut off, and the offer of what it holds.
//!
//! ```text
//! sender                                   receiver
//!   FileHeader, flag RESUME             ──>  opens .msg-resume-<hex of name and size>
//!                                       <──  Ready (it holds nothing)
//!                                       <──  or FileOffer: N bytes, BLAKE3 of them
//!   FileFrom N (its own first N agree)  ──>
//!          or 0 (they differ)           ──>  empties the partial file
//!   FileChunk… bytes N.., FileEnd       ──>  hashing goes on from its prefix's
//! ```
//!
//! The partial file's name is the receiver's own, made from the file's
//! name and size (never the peer's bytes as a path), in the save directory
//! itself, opened without following a link and locked (`flock`) for as
//! long as a transfer writes it; its length is all the state there is.
//! What it holds was never checked while it arrived: the sender's own
//! hash of the same range is what vouches for it, and the `FileEnd`
//! digest still covers the whole file, the prefix included.

use std::io::Seek;
use std::os::fd::{BorrowedFd, OwnedFd};
use std::sync::Arc;

use msg_proto::file::{FileFrom, FileOffer};
use rustix::fs::{AtFlags, FileType, FlockOperation, Mode, OFlags};
use rustix::io::Errno;

use super::receive::{Failure, Start, for_peer};
use super::*;
use crate::PeerAddr;

/// The name of a partial file kept for resuming: this prefix, then
/// [`KEPT_HEX`] hex digits. No peer's file may be named so (msg-proto's
/// `FileName` refuses it): with `--overwrite` it would take the place of
/// the partial file while its transfer goes on.
use msg_proto::file::KEPT_PREFIX;

/// How many hex digits follow [`KEPT_PREFIX`]: 128 bits of the name's
/// hash, no two files' names alike in practice.
const KEPT_HEX: usize = 32;

/// How long a transfer waits for another to let go of its partial file
/// ([`Kept::lock`]): a sender killed and started again at once finds the
/// receiver still writing what the first one sent, for a moment.
const LOCK_WAIT: Duration = Duration::from_secs(2);

/// How often it tries the lock meanwhile.
const LOCK_POLL: Duration = Duration::from_millis(20);

/// The partial file's name for a file of this name and size from this
/// sender: the receiver's, derived (BLAKE3 in key-derivation mode) from
/// the three, so that the same file sent again from the same host finds
/// it, and a file of another size does not.
///
/// The sender is its host ([`sender_of`]): a peer elsewhere that sends a
/// file of the same name and size would otherwise be offered this
/// sender's bytes' hash (enough to confirm a guess of them) and could
/// start them over.
pub(super) fn kept_name(header: &FileHeader, sender: &str) -> String {
    let mut hasher = blake3::Hasher::new_derive_key("msg 2026 resume: the partial file's name");
    hasher.update(&(sender.len() as u64).to_be_bytes());
    hasher.update(sender.as_bytes());
    hasher.update(&header.size.to_be_bytes());
    hasher.update(header.name.as_str().as_bytes());
    let hex = hasher.finalize().to_hex();
    format!("{KEPT_PREFIX}{}", &hex[..KEPT_HEX])
}

/// Who sent a file, as far as resuming goes: the host, not the
/// connection, since a sender resumes from a new port. Its IP address, or
/// over a Unix socket the user id the kernel gives (SO_PEERCRED), or
/// nothing where there is neither.
pub(super) fn sender_of(peer: &PeerAddr) -> String {
    match peer {
        PeerAddr::Inet(addr) => format!("ip {}", addr.ip()),
        PeerAddr::Unix(unix) => match &unix.cred {
            Some(cred) => format!("uid {}", cred.uid),
            None => String::new(),
        },
        _ => String::new(),
    }
}

/// Whether `name` is one of [`kept_name`]'s.
pub(super) fn is_kept_name(name: &str) -> bool {
    name.strip_prefix(KEPT_PREFIX).is_some_and(|hex| {
        hex.len() == KEPT_HEX && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    })
}

/// Whether another transfer holds the partial file `name` in `dir` (its
/// lock): the stale clean-up leaves it alone, however old its last write.
pub(super) fn in_use(dir: BorrowedFd<'_>, name: &str) -> bool {
    let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
    rustix::fs::openat(dir, name, flags, Mode::empty()).is_ok_and(|fd| {
        rustix::fs::flock(&fd, FlockOperation::NonBlockingLockShared) == Err(Errno::WOULDBLOCK)
    })
}

/// A partial file kept for resuming, open and locked.
#[derive(Debug)]
pub(super) struct Kept {
    /// The save directory, open since the listener's start.
    dir: Arc<OwnedFd>,
    name: String,
    file: fs::File,
}

impl Kept {
    /// Opens (or makes, owner-only) the partial file for `header` in
    /// the save directory `dir`; the reason to give the sender otherwise.
    /// It is not read or written before [`Kept::lock`].
    pub(super) fn open(
        dir: Arc<OwnedFd>,
        header: &FileHeader,
        sender: &PeerAddr,
    ) -> Result<Self, String> {
        Self::open_named(dir, kept_name(header, &sender_of(sender)))
    }

    /// As [`Kept::open`], under its `name`.
    fn open_named(dir: Arc<OwnedFd>, name: String) -> Result<Self, String> {
        let cannot = |err: Errno| format!("cannot keep a partial file: {}", io::Error::from(err));
        // No link followed out of the directory, and no FIFO planted under
        // the name left to block the open.
        let flags =
            OFlags::RDWR | OFlags::CREATE | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
        let not_ours = || {
            format!(
                "cannot keep a partial file: {name} is not one (a link, a FIFO, a folder or a \
                 file with a second name is there)"
            )
        };
        let fd = match rustix::fs::openat(&*dir, name.as_str(), flags, Mode::RUSR | Mode::WUSR) {
            Ok(fd) => fd,
            Err(Errno::LOOP) => return Err(not_ours()),
            Err(err) => return Err(cannot(err)),
        };
        let stat = rustix::fs::fstat(&fd).map_err(cannot)?;
        // A regular file with no other name: not one linked here from
        // elsewhere to be written through.
        if FileType::from_raw_mode(stat.st_mode) != FileType::RegularFile || stat.st_nlink != 1 {
            return Err(not_ours());
        }
        // Made by this listener's user, and so by a listener: the name is
        // no secret (a hash of the sender's host, the name and the size),
        // and in a save directory another user may write to, that user
        // could make the file first, keep it open, and read the content
        // written into it, or change it after the hash was checked (audit,
        // round four).
        let ours = rustix::process::geteuid().as_raw();
        if stat.st_uid != ours {
            return Err(format!(
                "cannot keep a partial file: {name} belongs to uid {}, not to this listener's \
                 uid {ours}; is the save directory writable by others?",
                stat.st_uid
            ));
        }
        Ok(Self {
            dir,
            name,
            file: fs::File::from(fd),
        })
    }

    /// Locks it for this transfer, waiting up to [`LOCK_WAIT`] for
    /// another one to let go (one just cut off may still be writing what
    /// it had), and makes sure it is still the partial file once locked;
    /// the reason to give the sender otherwise.
    ///
    /// # Why the name is looked at again
    ///
    /// The file was opened before the wait, by its name. The transfer that
    /// held it meanwhile may have finished: renamed it into place as the
    /// file it saved, or removed it. Locked then, that is no partial file
    /// any more, and writing it rewrote a saved, verified file in place,
    /// unverified and without `--overwrite`, and offered its hash to
    /// another sender (audit, round fourteen). So the name must still
    /// name this very file; if not, the partial file is opened again (a
    /// new one, or another transfer's, waited for in turn), a few times at
    /// most.
    async fn lock(&mut self, name: &str) -> Result<(), String> {
        for _ in 0..3 {
            self.lock_opened(name).await?;
            if self.still_named()? {
                return Ok(());
            }
            *self = Self::open_named(Arc::clone(&self.dir), self.name.clone())?;
        }
        Err(crate::refusal::RESUME_BUSY.format(name))
    }

    /// Whether the partial file's name still names the file this holds,
    /// its only name.
    fn still_named(&self) -> Result<bool, String> {
        let cannot = |err: Errno| format!("cannot keep a partial file: {}", io::Error::from(err));
        let held = rustix::fs::fstat(&self.file).map_err(cannot)?;
        match rustix::fs::statat(&*self.dir, self.name.as_str(), AtFlags::SYMLINK_NOFOLLOW) {
            Ok(named) => Ok(named.st_dev == held.st_dev
                && named.st_ino == held.st_ino
                && held.st_nlink == 1),
            Err(Errno::NOENT) => Ok(false),
            Err(err) => Err(cannot(err)),
        }
    }

    /// [`Kept::lock`]'s wait for the file it opened.
    async fn lock_opened(&self, name: &str) -> Result<(), String> {
        let deadline = tokio::time::Instant::now() + LOCK_WAIT;
        loop {
            match rustix::fs::flock(&self.file, FlockOperation::NonBlockingLockExclusive) {
                Ok(()) => return Ok(()),
                Err(Errno::WOULDBLOCK) if tokio::time::Instant::now() < deadline => {
                    tokio::time::sleep(LOCK_POLL).await;
                }
                Err(Errno::WOULDBLOCK) => return Err(crate::refusal::RESUME_BUSY.format(name)),
                Err(err) => {
                    return Err(format!(
                        "cannot keep a partial file: {}",
                        io::Error::from(err)
                    ));
                }
            }
        }
    }

    /// The open file.
    pub(super) fn file(&self) -> &fs::File {
        &self.file
    }

    /// Renames it to `target` in the save directory (never over a file
    /// without `overwrite`); removed if that fails.
    pub(super) fn persist(self, target: &str, overwrite: bool) -> Result<(), String> {
        tree::rename_into_place(&self.dir, &self.name, target, overwrite).map_err(|err| {
            let _ = rustix::fs::unlinkat(&self.dir, &self.name, AtFlags::empty());
            match err {
                Errno::EXIST => crate::refusal::FILE_EXISTS.format(target),
                err => format!("cannot save {target}: {}", io::Error::from(err)),
            }
        })
    }

    /// After a failed transfer: kept when it was `cut` off (what arrived
    /// is as good as it was; the next offer's hash says), removed when the
    /// content was refused.
    pub(super) fn give_up(self, cut: bool, header: &FileHeader) {
        if cut {
            let held = self.file.metadata().map(|meta| meta.len()).unwrap_or(0);
            info!(
                held,
                size = header.size,
                "kept {held} bytes of {} in {} for the sender to resume",
                header.name.as_str().escape_debug(),
                self.name
            );
        } else {
            let _ = rustix::fs::unlinkat(&self.dir, &self.name, AtFlags::empty());
        }
    }
}

/// Offers the sender what `kept` holds of a file of `size` bytes and
/// reads where its content starts: [`Start`] at 0 when it holds nothing,
/// or when the sender's bytes differ (the file is emptied then, by the
/// writer), else after what it holds, its hash under way.
pub(super) async fn negotiate<S: AsyncRead + AsyncWrite + Unpin>(
    conn: &mut Connection<S>,
    kept: &mut Kept,
    header: &FileHeader,
    idle: Duration,
) -> Result<Start, Failure> {
    kept.lock(header.name.as_str())
        .await
        .map_err(Failure::Quiet)?;
    let size = header.size;
    // Out of descriptors (or any local failure) is said to the sender;
    // what the file holds is as good as it was.
    let file = kept.file.try_clone().map_err(|err| {
        Failure::Quiet(format!("cannot read its partial file: {}", for_peer(&err)))
    })?;
    let read_failed = |err: io::Error| {
        Failure::Quiet(format!("cannot read its partial file: {}", for_peer(&err)))
    };
    let held = crate::off_thread::spawn("msg-file-read", move || held(file, size))
        .map_err(read_failed)?
        .await
        .map_err(|err| io::Error::other(err.to_string()))?
        .map_err(|err| {
            Failure::Refuse(format!("cannot read its partial file: {}", for_peer(&err)))
        })?;
    let Some((offset, hasher)) = held else {
        conn.write_message(&FileResult::Ready.to_message()).await?;
        return Ok(Start::whole());
    };
    let offer = FileOffer {
        offset,
        digest: *hasher.finalize().as_bytes(),
    };
    conn.write_message(&offer.to_message()).await?;
    // The sender reads and hashes as many bytes of its own first.
    let wait = hash_wait(idle, offset);
    let msg = tokio::time::timeout(wait, conn.read_message())
        .await
        .map_err(|_| {
            Failure::Quiet(
                crate::refusal::RESUME_NO_ANSWER.format(humantime::format_duration(
                    Duration::from_secs(wait.as_secs()),
                )),
            )
        })??
        .ok_or_else(|| {
            Failure::Fatal(Error::Io(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the sender closed the connection after an offer to resume",
            )))
        })?;
    let from =
        FileFrom::from_message(&msg, offset).map_err(|err| Failure::Quiet(err.to_string()))?;
    Ok(if from.offset == offset {
        Start {
            offset,
            hasher,
            restart: false,
        }
    } else {
        Start {
            restart: true,
            ..Start::whole()
        }
    })
}

/// How much of a file of `size` bytes `file` holds, hashed, its position
/// after it: `None` when nothing, or more than `size` (which no cut-off
/// transfer of this file leaves: emptied).
fn held(mut file: fs::File, size: u64) -> io::Result<Option<(u64, blake3::Hasher)>> {
    let len = file.metadata()?.len();
    if len == 0 {
        return Ok(None);
    }
    if len > size {
        file.set_len(0)?;
        file.rewind()?;
        return Ok(None);
    }
    file.rewind()?;
    let mut hasher = blake3::Hasher::new();
    hasher.update_reader((&mut file).take(len))?;
    if file.stream_position()? != len {
        // Shorter than it was a moment ago: nobody else writes it (it is
        // locked), so something is wrong with it; start over.
        file.set_len(0)?;
        file.rewind()?;
        return Ok(None);
    }
    Ok(Some((len, hasher)))
}

#[cfg(test)]
mod tests {
    use std::os::fd::AsFd;

    use super::super::tests::header;
    use super::*;

    const LOCAL: &str = "ip 127.0.0.1";

    fn peer(addr: &str) -> PeerAddr {
        PeerAddr::Inet(addr.parse().unwrap())
    }

    /// The save directory `dir`, open as a listener holds it.
    fn opened(dir: &Path) -> Arc<OwnedFd> {
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
        Arc::new(rustix::fs::open(dir, flags, Mode::empty()).unwrap())
    }

    #[test]
    fn the_name_is_the_receivers_own_and_tells_files_apart() {
        let name = kept_name(&header("report (1).pdf", 5), LOCAL);
        assert!(is_kept_name(&name), "{name}");
        assert!(!name.contains('/'));
        assert_eq!(name, kept_name(&header("report (1).pdf", 5), LOCAL));
        assert_ne!(name, kept_name(&header("report (1).pdf", 6), LOCAL));
        assert_ne!(name, kept_name(&header("other", 5), LOCAL));
        for not in [
            ".msg-resume-",
            ".msg-partial-aB3xY9",
            &format!("{KEPT_PREFIX}{}", "A".repeat(KEPT_HEX)),
            &format!("{KEPT_PREFIX}{}", "a".repeat(KEPT_HEX + 1)),
        ] {
            assert!(!is_kept_name(not), "{not}");
        }
    }

    /// Audit, round three: any peer that sent a file of the same name and
    /// size was offered another's partial file (its length, and the hash
    /// of its bytes) and could start it over. A sender finds only its own
    /// host's, from any port.
    #[test]
    fn a_partial_file_is_its_senders_hosts() {
        let file = header("report.pdf", 5);
        let ours = kept_name(&file, &sender_of(&peer("192.0.2.1:40000")));
        assert_eq!(ours, kept_name(&file, &sender_of(&peer("192.0.2.1:40001"))));
        assert_ne!(ours, kept_name(&file, &sender_of(&peer("192.0.2.2:40000"))));
        assert_ne!(ours, kept_name(&file, &sender_of(&peer("[::1]:40000"))));
        // The sender's part is length-prefixed: it cannot run into the name.
        assert_ne!(
            kept_name(&header("bc", 5), "a"),
            kept_name(&header("c", 5), "ab")
        );
    }

    /// docs/wire.md gives the name of `hello.txt`'s partial file, 5
    /// bytes, so that a peer's author can check the derivation.
    #[test]
    fn the_wire_docs_carry_the_name_of_a_partial_file() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/wire.md");
        let docs = fs::read_to_string(path).expect("docs/wire.md");
        let name = kept_name(&header("hello.txt", 5), LOCAL);
        assert!(
            docs.contains(&format!("`{name}`")),
            "docs/wire.md lacks `{name}`"
        );
    }

    #[tokio::test]
    async fn a_partial_file_is_locked_while_in_use_and_never_a_link() {
        let dir = tempfile::tempdir().unwrap();
        let h = header("f", 10);
        let mut kept = Kept::open(opened(dir.path()), &h, &peer("127.0.0.1:1")).unwrap();
        let name = kept_name(&h, LOCAL);
        let path = dir.path().join(&name);
        let locked = || in_use(opened(dir.path()).as_fd(), &name);
        assert!(!locked());
        kept.lock("f").await.unwrap();
        assert!(locked());
        let started = Instant::now();
        assert_eq!(
            Kept::open(opened(dir.path()), &h, &peer("127.0.0.1:1"))
                .unwrap()
                .lock("f")
                .await
                .unwrap_err(),
            "f is being received on another connection; try again once that one ends"
        );
        assert!(started.elapsed() >= LOCK_WAIT);
        kept.give_up(true, &h);
        assert!(path.exists() && !locked());

        // A link, or a second name of a file elsewhere, is not written.
        let other = header("g", 10);
        let outside = dir.path().join("outside");
        fs::write(&outside, b"keep").unwrap();
        std::os::unix::fs::symlink(&outside, dir.path().join(kept_name(&other, LOCAL))).unwrap();
        assert!(
            Kept::open(opened(dir.path()), &other, &peer("127.0.0.1:1"))
                .unwrap_err()
                .contains(
                    "is not one (a link, a FIFO, a folder or a file with a second name is there)"
                )
        );
        let third = header("h", 10);
        fs::hard_link(&outside, dir.path().join(kept_name(&third, LOCAL))).unwrap();
        assert!(
            Kept::open(opened(dir.path()), &third, &peer("127.0.0.1:1"))
                .unwrap_err()
                .contains(
                    "is not one (a link, a FIFO, a folder or a file with a second name is there)"
                )
        );
        assert_eq!(fs::read(&outside).unwrap(), b"keep");
    }

    /// Audit, round fourteen: a transfer that waited for the lock while
    /// the one before it finished took its lock on the file that one had
    /// just saved, and rewrote it in place. It now starts a new partial
    /// file, whose saving then finds the saved file in its way.
    #[tokio::test]
    async fn a_partial_file_saved_while_another_transfer_waited_is_left_alone() {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let h = header("f", 10);
        let mut first = Kept::open(opened(dir.path()), &h, &peer("127.0.0.1:1")).unwrap();
        first.lock("f").await.unwrap();
        first.file().write_all(b"verified!!").unwrap();
        let mut second = Kept::open(opened(dir.path()), &h, &peer("127.0.0.1:2")).unwrap();
        let waiting = tokio::spawn(async move { second.lock("f").await.map(|()| second) });
        tokio::time::sleep(Duration::from_millis(100)).await;
        first.persist("f", false).unwrap();
        let second = waiting.await.unwrap().unwrap();
        assert_eq!(second.file().metadata().unwrap().len(), 0);
        second.file().write_all(b"other").unwrap();
        let refused = second.persist("f", false).unwrap_err();
        assert!(refused.contains("exists"), "{refused}");
        assert_eq!(fs::read(dir.path().join("f")).unwrap(), b"verified!!");
    }

    /// Audit, round four: another user who may write to the save
    /// directory made the partial file first (its name is no secret), kept
    /// it open, and read and changed what the listener wrote into it.
    /// Where the tests run as root, the file is given to `nobody`;
    /// elsewhere a file of another user cannot be made, and the test says
    /// so and checks nothing.
    #[test]
    fn a_partial_file_of_another_user_is_not_written() {
        if !rustix::process::geteuid().is_root() {
            eprintln!("SKIP: needs root to make a file of another user");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let h = header("secret.txt", 10);
        let planted = dir.path().join(kept_name(&h, LOCAL));
        fs::write(&planted, b"x").unwrap();
        std::os::unix::fs::chown(&planted, Some(65534), Some(65534)).unwrap();
        let refused = Kept::open(opened(dir.path()), &h, &peer("127.0.0.1:1")).unwrap_err();
        assert!(
            refused.contains("belongs to uid 65534, not to this listener's uid 0"),
            "{refused}"
        );
        assert_eq!(fs::read(&planted).unwrap(), b"x");
    }

    #[test]
    fn what_is_held_is_hashed_and_more_than_the_file_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p");
        fs::write(&path, b"hello").unwrap();
        let open = || {
            fs::File::options()
                .read(true)
                .write(true)
                .open(&path)
                .unwrap()
        };
        let (len, hasher) = held(open(), 10).unwrap().unwrap();
        assert_eq!(len, 5);
        assert_eq!(hasher.finalize(), blake3::hash(b"hello"));
        assert!(held(open(), 4).unwrap().is_none());
        assert_eq!(fs::metadata(&path).unwrap().len(), 0);
        assert!(held(open(), 4).unwrap().is_none());
    }
}
