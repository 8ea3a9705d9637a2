//! Room for a stream listener's connections among the files it may open.
//!
//! Each connection is a descriptor, and the usual soft limit (`ulimit -n`,
//! 1,024) is no more than `--max-conns`' default: past it `accept` fails
//! (`EMFILE`), the kernel keeps the next clients in its backlog, and they
//! wait unanswered, never told the listener is full (1,030 idle
//! connections locked every other client out; audit, round eight). So a
//! listener raises its soft limit towards the hard one, as far as its
//! connections need, and says so when the hard limit is short; past that,
//! one descriptor kept in reserve ([`Spare`]) tells each next client so.

use std::sync::OnceLock;

use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};

/// The open-file limit as this process found it, kept by the first
/// [`make_room`] that raised it: what a command it starts gets back
/// ([`inherited`]).
static FOUND: OnceLock<Rlimit> = OnceLock::new();

/// Descriptors a stream listener needs besides its connections: those
/// being told they are refused (64 at most), the runtime's, the log's,
/// a save directory, the files being received, and a margin.
pub const OVERHEAD: u64 = 192;

/// What [`make_room`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenFiles {
    /// The limit was enough already.
    Enough,
    /// The soft limit was raised.
    Raised {
        /// The soft limit before.
        from: u64,
        /// And now.
        to: u64,
    },
    /// The limit is less than `needed`, and cannot be raised so far: the
    /// hard limit is lower.
    Short {
        /// What the process may open now.
        limit: u64,
        /// What was asked for.
        needed: u64,
    },
}

/// Raises the soft open-file limit to `needed`, within the hard limit: a
/// listener's `--max-conns` connections and [`OVERHEAD`], or `msg bench
/// --clients`' sockets. Never above what is needed, so an unlimited hard
/// limit (more than the kernel takes, `fs.nr_open`) is no problem.
#[must_use]
pub fn make_room(needed: u64) -> OpenFiles {
    let limit = getrlimit(Resource::Nofile);
    // No soft limit: nothing to raise.
    let Some(soft) = limit.current else {
        return OpenFiles::Enough;
    };
    if soft >= needed {
        return OpenFiles::Enough;
    }
    let to = limit.maximum.map_or(needed, |hard| hard.min(needed));
    let _ = FOUND.set(limit);
    let raised = to > soft
        && setrlimit(
            Resource::Nofile,
            Rlimit {
                current: Some(to),
                maximum: limit.maximum,
            },
        )
        .is_ok();
    match (raised, to >= needed) {
        (true, true) => OpenFiles::Raised { from: soft, to },
        (true, false) => OpenFiles::Short { limit: to, needed },
        (false, _) => OpenFiles::Short {
            limit: soft,
            needed,
        },
    }
}

/// The open-file limit this process started with, when [`make_room`] has
/// raised it since: for a program it starts (`--exec`), which is not msg,
/// to get back between fork and exec, as if started anywhere else. Many
/// programs still use `select`, whose sets hold descriptors below 1,024
/// only (audit, round eight).
#[must_use]
pub fn inherited() -> Option<Rlimit> {
    FOUND.get().copied()
}

/// Sets the open-file limit to `limit`: [`inherited`]'s, in a child
/// between fork and exec. One system call, async-signal-safe.
///
/// # Errors
///
/// The system's, when the limit cannot be set.
pub fn restore(limit: Rlimit) -> std::io::Result<()> {
    setrlimit(Resource::Nofile, limit).map_err(std::io::Error::from)
}

/// One descriptor held in reserve (on `/dev/null`) by a stream listener,
/// for when it runs out of them. Out of descriptors, `accept` fails with
/// `EMFILE` and leaves the connection in the kernel's backlog, where its
/// client waits unanswered (a send without `--reply` even "succeeds").
/// Giving the spare up makes room to take the connection that has waited
/// longest and tell it the listener is full, as a listener past
/// `--max-conns` does; the spare is taken back once a descriptor is free
/// again. (libuv and nginx do the same.)
#[derive(Debug)]
pub struct Spare(Option<std::fs::File>);

impl Spare {
    /// Holds one descriptor, when one can be opened.
    #[must_use]
    pub fn new() -> Self {
        Self(Self::open())
    }

    fn open() -> Option<std::fs::File> {
        std::fs::File::open("/dev/null").ok()
    }

    /// Takes the spare back, when it was given up and a descriptor is
    /// free again (a system call only then).
    pub fn keep(&mut self) {
        if self.0.is_none() {
            self.0 = Self::open();
        }
    }

    /// Gives the spare up, when `err` says this process is out of
    /// descriptors and the spare is held: `true` when one descriptor is
    /// now free for the connection waiting in the backlog.
    pub fn give_up_for(&mut self, err: &std::io::Error) -> bool {
        let exhausted = matches!(err.raw_os_error(), Some(libc::EMFILE | libc::ENFILE));
        exhausted && self.0.take().is_some()
    }
}

impl Default for Spare {
    fn default() -> Self {
        Self::new()
    }
}

/// Whether a connection waits on `listener` to be accepted now: a look,
/// no wait. Linux's `accept` takes a descriptor before it looks for a
/// connection, so out of descriptors it fails whether one waits or not,
/// and [`Spare`] is given up only for one that does: given up for none,
/// a task elsewhere could take its descriptor first.
#[must_use]
pub fn waiting(listener: &impl std::os::fd::AsFd) -> bool {
    use rustix::event::{PollFd, PollFlags, Timespec, poll};
    let mut fds = [PollFd::new(listener, PollFlags::IN)];
    let now = Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    matches!(poll(&mut fds, Some(&now)), Ok(ready) if ready > 0)
}
