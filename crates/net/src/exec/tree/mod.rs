//! A command's whole process tree, and killing it.
//!
//! A process group is not enough: a command's descendants may leave it
//! (`setsid`, `setpgid`), and on a normal exit nothing killed the group
//! anyway. On Linux, msg follows the tree itself:
//!
//! - the listener makes itself a *child subreaper*
//!   (`prctl(PR_SET_CHILD_SUBREAPER)`): a descendant whose parent exits
//!   (`nohup cmd &`, a double fork, `setsid`) is re-parented to the listener
//!   rather than to init, so it can still be found, killed and reaped;
//! - while a command runs, its descendants are read from `/proc` (each
//!   process's parent) every [`SCAN_EVERY`], and remembered by pid and
//!   start time (which tells a process from a later one that reuses its
//!   pid);
//! - when the command ends, however it ends (normal exit, timeout, output
//!   cap, client gone, the listener stopping), everything known to be its
//!   own is killed with SIGKILL, and so is every process re-parented to the
//!   listener that no running command is known to own; then the listener
//!   looks again, until nothing is left (a process that forks while it is
//!   being killed leaves a child that the next look finds), and reaps what
//!   was re-parented to it.
//!
//! What this does not catch: a process that leaves the tree *and* is not
//! re-parented to the listener, that is, one started when the subreaper
//! could not be set (the listener then warns; such a process, if it
//! double-forks before a scan sees it, goes to init), or one that another
//! program adopts (a process that asks a service manager or `at` to start
//! it); and a process stuck in the kernel, which SIGKILL ends only when it
//! leaves the kernel. A process re-parented to the listener before a scan
//! saw it cannot be told apart from another running command's: it dies
//! with whichever command ends first. There is no cgroup: cgroup v2
//! delegation is not something a listener can count on having.
//!
//! Elsewhere than Linux, the command's process group is killed, as before:
//! what leaves the group survives.

use std::sync::Arc;

#[cfg(target_os = "linux")]
pub(crate) use linux::{SCAN_EVERY, Tree, Trees};
#[cfg(not(target_os = "linux"))]
pub(crate) use other::{SCAN_EVERY, Tree, Trees};

#[cfg(target_os = "linux")]
mod linux;

#[cfg(not(target_os = "linux"))]
mod other;

/// A number for each listener, so that stopping one kills its own
/// commands only.
pub(crate) fn owner() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// Kills every command `owner` runs when dropped: a listener that stops
/// (its serve loop dropped) takes its commands' trees along at once, not
/// whenever their tasks are next polled.
#[derive(Debug)]
pub(crate) struct KillOnStop {
    pub(crate) trees: Arc<Trees>,
    pub(crate) owner: u64,
}

impl Drop for KillOnStop {
    fn drop(&mut self) {
        self.trees.kill_all(self.owner);
    }
}
