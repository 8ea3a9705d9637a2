//! Room for a stream listener's connections among the files it may open.
//!
//! Each connection is a descriptor, and the usual soft limit (`ulimit -n`,
//! 1,024) is no more than `--max-conns`' default: past it `accept` fails
//! (`EMFILE`), the kernel keeps the next clients in its backlog, and they
//! wait unanswered, never told the listener is full (1,030 idle
//! connections locked every other client out; audit, round eight). So a
//! listener raises its soft limit towards the hard one, as far as its
//! connections need, and says so when the hard limit is short.

use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};

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
