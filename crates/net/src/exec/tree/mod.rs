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
//! Everywhere, the command's process group (it is made a group leader
//! when spawned) is killed too, with the tree and by its number, which is
//! remembered: the group outlives its first process, and a process in it
//! is killed even once that first process has been reaped. That is all
//! there is elsewhere than Linux, and all there is on Linux where `/proc`
//! cannot be read (a sandbox that hides it): then what leaves the group
//! survives, and the listener warns.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
#[cfg(unix)]
use std::time::{Duration, Instant};

#[cfg(target_os = "linux")]
pub(crate) use linux::{SCAN_EVERY, Tree, Trees};
#[cfg(not(target_os = "linux"))]
pub(crate) use other::{SCAN_EVERY, Tree, Trees};

#[cfg(target_os = "linux")]
mod linux;

#[cfg(not(target_os = "linux"))]
mod other;

/// A command's process group: its first process's pid, since that
/// process is made the leader of a new group when spawned.
///
/// While the leader is not reaped, the number is the group's alone. Once
/// it is, the number may be given again, but only when no process is
/// left in the group (the kernel does not reuse a pid that is still some
/// group's id): so a process whose pid is that number is not the
/// group's, and the group is then killed only if no process has it.
#[derive(Debug)]
pub(crate) struct Group {
    id: i32,
    reaped: AtomicBool,
}

impl Group {
    pub(crate) fn new(id: i32) -> Self {
        Self {
            id,
            reaped: AtomicBool::new(false),
        }
    }

    /// The leader has been reaped (its `Child` waited for).
    pub(crate) fn leader_reaped(&self) {
        self.reaped.store(true, Ordering::Release);
    }

    /// Kills every process in the group, and once its leader is reaped,
    /// reaps what of the group was re-parented to the listener.
    #[cfg(unix)]
    pub(crate) fn kill(&self) {
        use nix::sys::signal::{Signal, killpg};
        use nix::unistd::{Pid, getpgid};
        let group = Pid::from_raw(self.id);
        let reaped = self.reaped.load(Ordering::Acquire);
        if reaped && getpgid(Some(group)).is_ok() {
            // The number is another process's now: the group is empty.
            return;
        }
        let _ = killpg(group, Signal::SIGKILL);
        if reaped {
            self.reap();
        }
    }

    #[cfg(not(unix))]
    pub(crate) fn kill(&self) {}

    /// Reaps the group's processes that are this process's children
    /// (orphans it adopted as their subreaper): without `/proc` nothing
    /// else finds them. Only once the leader is reaped, since reaping it
    /// is its `Child`'s. Bounded: a process that SIGKILL has not ended
    /// within [`REAP_GROUP_FOR`] (stuck in the kernel) is left.
    #[cfg(unix)]
    fn reap(&self) {
        use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
        use nix::unistd::Pid;
        let until = Instant::now() + REAP_GROUP_FOR;
        while Instant::now() < until {
            match waitpid(Pid::from_raw(-self.id), Some(WaitPidFlag::WNOHANG)) {
                // Children of ours in the group, not dead yet.
                Ok(WaitStatus::StillAlive) => std::thread::sleep(Duration::from_millis(1)),
                // One reaped: look for the next at once.
                Ok(_) => {}
                // None left (ECHILD).
                Err(_) => return,
            }
        }
    }
}

/// How long killing a group waits for its killed members to be reaped.
#[cfg(unix)]
const REAP_GROUP_FOR: Duration = Duration::from_millis(200);

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

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    /// Whether `pid` is gone or dead (a zombie: `kill -0` still finds it,
    /// so `ps` tells).
    fn dead(pid: &str) -> bool {
        std::process::Command::new("ps")
            .args(["-o", "stat=", "-p", pid])
            .output()
            .map_or(true, |out| {
                let stat = String::from_utf8_lossy(&out.stdout);
                stat.trim().is_empty() || stat.trim_start().starts_with('Z')
            })
    }

    /// The group's number, remembered, kills what is left in it after its
    /// leader has been reaped (`child.id()` is gone by then).
    #[test]
    fn a_group_is_killed_after_its_leader_is_reaped() {
        use std::os::unix::process::CommandExt;
        let out = std::process::Command::new("sh")
            .args(["-c", "sleep 3965 >/dev/null 2>&1 & echo $!"])
            .process_group(0)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let leader = i32::try_from(out.id()).unwrap();
        // Waits for the leader and reaps it.
        let out = out.wait_with_output().unwrap();
        let member = String::from_utf8(out.stdout).unwrap();
        let member = member.trim();
        assert!(!dead(member), "the sleep did not start");
        let group = Group::new(leader);
        group.leader_reaped();
        group.kill();
        let until = Instant::now() + Duration::from_secs(5);
        while !dead(member) {
            assert!(
                Instant::now() < until,
                "the group's sleep outlived the kill"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}
