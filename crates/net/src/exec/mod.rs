//! Remote commands, both ends: `msg exec` and `msg listen --exec`.
//!
//! The tutorial's remote command server runs whatever arrives through a
//! shell, for anyone who connects. msg keeps the useful part and removes the
//! danger:
//!
//! - a command runs only for a peer that completed the authentication
//!   handshake ([`serve`](fn@crate::serve) never reaches this module
//!   otherwise, and the CLI refuses `--exec` without a secret);
//! - it is an argv handed to the program as it is, with no shell in
//!   between, and may be restricted to a list of programs;
//! - its stdout and stderr come back as bytes, as they are produced, never
//!   decoded, so output in any encoding arrives unchanged;
//! - it is bounded: a timeout (wall time, whatever its output does), a cap
//!   on its output, a cap on how many run at once;
//! - whatever ends it (its own exit, a limit, its client leaving), the
//!   whole tree of processes it started is killed, including those that
//!   left its process group or were orphaned (on Linux; elsewhere its
//!   process group): `exec/tree/` says how, and what escapes.
//!
//! The conversation with the client is frames on a
//! [`Connection<S>`](msg_tcp::Connection) over any byte stream: nothing
//! here is TCP's.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use crate::Transport;

/// What a command goes over when the caller names no transport: the first
/// that carries one (every byte in order, on a connection of its own, so
/// that a handshake can authenticate it), TCP so far.
pub fn transport() -> Transport {
    Transport::ALL
        .into_iter()
        .find(|t| t.caps().carries_files())
        .unwrap_or(Transport::Tcp)
}

mod client;
mod env;
mod runner;
mod spawn;
mod tree;

pub use client::{command, run, stdin_pieces};
pub(crate) use runner::Runner;

pub use env::{BASE_ENV, EnvError, environment, work_dir};

/// How much output is read (and sent) at a time.
const READ_LEN: usize = 64 * 1024;

/// How many pieces of stdin may wait for the command to read them; while
/// they wait, the listener stops reading from the client, so a client
/// that sends faster than the command reads is slowed down instead of
/// filling the listener's memory.
const STDIN_QUEUE: usize = 16;

/// After a command ends, how long the client has to take how it ended
/// (and any output still queued for it) before its connection is dropped:
/// a client that reads nothing must not hold the listener's task forever.
const EXIT_GRACE: Duration = Duration::from_secs(5);

/// How long `msg exec` waits for the listener to say anything (output,
/// the beat it sends every [`msg_proto::exec::BEAT`] of silence, how the
/// command ended) before it gives the listener up as stopped: three beats
/// missed, so that a busy listener is not mistaken for one.
pub const SILENCE: Duration = Duration::from_secs(3 * msg_proto::exec::BEAT.as_secs());

/// After a command's first process has exited (and what it started was
/// killed), how long its output may stay open and quiet before the
/// command is taken as ended all the same: what still holds it open is a
/// process the listener could not find to kill (see `tree`).
const OUTPUT_AFTER_EXIT: Duration = Duration::from_secs(1);

/// After a command is killed, how long the listener waits for it to be
/// reaped; past that (a process stuck in the kernel) tokio reaps it later.
const REAP_WAIT: Duration = Duration::from_secs(5);

/// The limits of `msg listen --exec`.
#[derive(Debug, Clone)]
pub struct ExecConfig {
    /// How long a command may run before its process group is killed.
    pub timeout: Duration,
    /// How many bytes of stdout and stderr together a command may write
    /// before it is killed.
    pub max_output: u64,
    /// How many commands may run at once; one more is refused.
    pub max_running: usize,
    /// When not empty, the only programs that may run (compared with the
    /// program as the client sent it).
    pub allow: Vec<String>,
    /// The whole environment a command starts with: the listener's own is
    /// not passed on, since it may hold secrets (the shared one included).
    pub env: Vec<(OsString, OsString)>,
    /// The directory a command starts in.
    pub dir: PathBuf,
}
