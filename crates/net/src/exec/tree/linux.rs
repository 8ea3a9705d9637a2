//! The tree on Linux: a child subreaper, descendants read from `/proc`,
//! and killed until none is left (see the parent module).

use std::collections::{HashMap, HashSet};
use std::io;
use std::sync::{Arc, Mutex, MutexGuard, Once};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::sys::wait::{WaitPidFlag, waitpid};
use nix::unistd::Pid;
use tokio::process::{Child, Command};
use tracing::{debug, warn};

use super::Group;
use crate::log::RateLimited;

/// How often a running command's descendants are read from `/proc`.
pub(crate) const SCAN_EVERY: Duration = Duration::from_millis(250);

/// A command id that is never a command's: [`Trees::kill`] then kills
/// the orphans alone.
const NO_COMMAND: u64 = u64::MAX;

/// How long killing a tree may keep looking for what is left: a tree
/// that forks faster than it can be killed is given up on past this.
const KILL_FOR: Duration = Duration::from_secs(2);

/// A process, told apart from a later one with the same pid by its
/// start time (clock ticks after boot).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Proc {
    pid: i32,
    start: u64,
}

/// What `/proc/PID/stat` says of a process that matters here.
#[derive(Debug, Clone, Copy)]
struct Stat {
    ppid: i32,
    start: u64,
    zombie: bool,
}

/// `/proc/PID/stat`: the fields after the command name, which is in
/// parentheses and may hold anything, spaces and parentheses too.
fn parse_stat(text: &str) -> Option<Stat> {
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_ascii_whitespace().collect();
    // Field 3 is the state, 4 the parent, 22 the start time.
    Some(Stat {
        zombie: matches!(*fields.first()?, "Z" | "X"),
        ppid: fields.get(1)?.parse().ok()?,
        start: fields.get(19)?.parse().ok()?,
    })
}

fn stat(pid: i32) -> Option<Stat> {
    parse_stat(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// Every process in `/proc` now.
fn snapshot() -> HashMap<i32, Stat> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return HashMap::new();
    };
    entries
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(|pid| Some((pid, stat(pid)?)))
        .collect()
}

/// One command: its first process, and what it is known to have
/// started.
#[derive(Debug)]
struct Known {
    /// The listener that runs it.
    owner: u64,
    root: Proc,
    members: HashSet<Proc>,
    /// Its process group, killed by number even after `root` is reaped.
    group: Arc<Group>,
}

#[derive(Debug, Default)]
struct Inner {
    next: u64,
    running: HashMap<u64, Known>,
}

/// The commands this process runs, and what each started. One for
/// the process: the processes re-parented to it are the process's,
/// whichever listener in it started them.
#[derive(Debug, Default)]
pub(crate) struct Trees {
    inner: Mutex<Inner>,
}

impl Trees {
    /// The process's.
    pub(crate) fn get() -> Arc<Self> {
        static TREES: std::sync::LazyLock<Arc<Trees>> =
            std::sync::LazyLock::new(|| Arc::new(Trees::default()));
        Arc::clone(&TREES)
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic elsewhere leaves the sets as they were: still usable.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Spawns `command` for `owner` (a listener) and follows its tree.
    pub(crate) fn spawn(
        self: &Arc<Self>,
        owner: u64,
        command: &mut Command,
    ) -> io::Result<(Child, Tree)> {
        become_subreaper();
        // Spawned under the lock, so that a sweep never takes the new
        // command (a child of this process) for an orphan.
        let mut inner = self.lock();
        let child = command.spawn()?;
        let pid = child
            .id()
            .and_then(|pid| i32::try_from(pid).ok())
            .ok_or_else(|| io::Error::other("the command has no process id"))?;
        // Not reaped yet (only its Child can), so /proc still has it,
        // unless /proc cannot be read at all.
        let start = stat(pid).map_or_else(
            || {
                no_proc(pid);
                0
            },
            |stat| stat.start,
        );
        let group = Arc::new(Group::new(pid));
        let id = inner.next;
        inner.next += 1;
        inner.running.insert(
            id,
            Known {
                owner,
                root: Proc { pid, start },
                members: HashSet::new(),
                group: Arc::clone(&group),
            },
        );
        Ok((
            child,
            Tree {
                trees: Arc::clone(self),
                id,
                group,
            },
        ))
    }

    /// Kills the trees of every command `owner` runs (a listener that
    /// stops), and every orphan no other command is known to own.
    pub(crate) fn kill_all(&self, owner: u64) {
        let ids: Vec<u64> = {
            let inner = self.lock();
            inner
                .running
                .iter()
                .filter(|(_, known)| known.owner == owner)
                .map(|(id, _)| *id)
                .collect()
        };
        for id in &ids {
            self.kill(*id);
        }
        if ids.is_empty() {
            // No command of its own running, but perhaps orphans that
            // outlived an earlier kill (stuck in the kernel then, say).
            self.kill(NO_COMMAND);
        }
    }

    /// Reads command `id`'s descendants into what it is known to own,
    /// and reaps the orphans that have exited.
    fn scan(&self, id: u64) {
        let procs = snapshot();
        let mut inner = self.lock();
        follow(&mut inner, id, &procs);
        reap_orphans(&inner, &procs);
    }

    /// Kills command `id`'s whole tree, and the orphans nobody is known
    /// to own; looks again until none is left (or [`KILL_FOR`] passes).
    fn kill(&self, id: u64) {
        // The group first: the one part of the tree found without /proc.
        let group = self
            .lock()
            .running
            .get(&id)
            .map(|known| Arc::clone(&known.group));
        if let Some(group) = &group {
            group.kill();
        }
        let until = Instant::now() + KILL_FOR;
        let mut killed = 0usize;
        loop {
            let procs = snapshot();
            let mut inner = self.lock();
            follow(&mut inner, id, &procs);
            let mut victims: Vec<Proc> = inner
                .running
                .get(&id)
                .map(|known| {
                    let mut all: Vec<Proc> = known.members.iter().copied().collect();
                    all.push(known.root);
                    all
                })
                .unwrap_or_default();
            victims.extend(orphans(&inner, &procs));
            victims.retain(|proc| {
                procs
                    .get(&proc.pid)
                    .is_some_and(|stat| stat.start == proc.start && !stat.zombie)
            });
            for proc in &victims {
                // The start time again, at the last moment: a pid
                // reused since the snapshot is someone else's.
                if stat(proc.pid).is_some_and(|stat| stat.start == proc.start) {
                    let _ = kill(Pid::from_raw(proc.pid), Signal::SIGKILL);
                }
            }
            killed += victims.len();
            reap_orphans(&inner, &procs);
            drop(inner);
            if victims.is_empty() {
                break;
            }
            if Instant::now() > until {
                warn!(
                    "a command's processes were still running after {}; given up on",
                    humantime::format_duration(KILL_FOR)
                );
                break;
            }
            // SIGKILL is not instant: give the processes a moment to die.
            std::thread::sleep(Duration::from_millis(1));
        }
        if killed > 0 {
            debug!(killed, "killed a command's tree");
        }
        // The orphans just killed, now dead.
        let procs = snapshot();
        reap_orphans(&self.lock(), &procs);
    }
}

/// Warns (at most once a second) that `/proc` does not show the command
/// just spawned, `pid`: its descendants cannot be followed, only its
/// process group killed.
fn no_proc(pid: i32) {
    static NO_PROC: RateLimited = RateLimited::new();
    NO_PROC.warn(|suppressed| {
        warn!(
            suppressed,
            "cannot read /proc/{pid}/stat (is /proc mounted?): a command's processes that \
             leave its process group (setsid) cannot be found, and may outlive it"
        );
    });
}

/// Sets this process as the child subreaper of what it starts, once.
fn become_subreaper() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        if let Err(err) = nix::sys::prctl::set_child_subreaper(true) {
            warn!(
                "cannot become a subreaper ({err}): a command's process that leaves its \
                 tree may survive it"
            );
        }
    });
}

/// Adds to what command `id` is known to own everything now below its
/// first process or below what it already owns (an orphan the listener
/// adopted keeps its owner), and forgets what is gone.
fn follow(inner: &mut Inner, id: u64, procs: &HashMap<i32, Stat>) {
    let Some(known) = inner.running.get_mut(&id) else {
        return;
    };
    let alive = |proc: &Proc| procs.get(&proc.pid).is_some_and(|s| s.start == proc.start);
    known.members.retain(alive);
    let mut children: HashMap<i32, Vec<Proc>> = HashMap::new();
    for (&pid, stat) in procs {
        let proc = Proc {
            pid,
            start: stat.start,
        };
        children.entry(stat.ppid).or_default().push(proc);
    }
    let mut queue: Vec<i32> = known.members.iter().map(|proc| proc.pid).collect();
    if alive(&known.root) {
        queue.push(known.root.pid);
    }
    while let Some(pid) = queue.pop() {
        for child in children.get(&pid).into_iter().flatten() {
            if known.members.insert(*child) {
                queue.push(child.pid);
            }
        }
    }
}

/// The processes re-parented to this one that no running command is
/// known to own.
fn orphans(inner: &Inner, procs: &HashMap<i32, Stat>) -> Vec<Proc> {
    let us = i32::try_from(std::process::id()).unwrap_or(i32::MAX);
    procs
        .iter()
        .filter(|(_, stat)| stat.ppid == us)
        .map(|(&pid, stat)| Proc {
            pid,
            start: stat.start,
        })
        .filter(|proc| {
            !inner
                .running
                .values()
                .any(|known| known.root == *proc || known.members.contains(proc))
        })
        .collect()
}

/// Reaps the dead among the children of this process that are not a
/// command's first process (those are their `Child`'s to reap).
fn reap_orphans(inner: &Inner, procs: &HashMap<i32, Stat>) {
    let us = i32::try_from(std::process::id()).unwrap_or(i32::MAX);
    for (&pid, stat) in procs {
        if stat.ppid != us || !stat.zombie {
            continue;
        }
        if inner.running.values().any(|known| known.root.pid == pid) {
            continue;
        }
        let _ = waitpid(Pid::from_raw(pid), Some(WaitPidFlag::WNOHANG));
    }
}

/// One running command's tree: killed whole when dropped, whatever
/// ended the command.
#[derive(Debug)]
pub(crate) struct Tree {
    trees: Arc<Trees>,
    id: u64,
    group: Arc<Group>,
}

impl Tree {
    /// The command's first process has been reaped: its pid, the
    /// group's number, may be another process's from now on.
    pub(crate) fn leader_reaped(&self) {
        self.group.leader_reaped();
    }

    /// Reads what the command has started since the last look.
    pub(crate) fn scan(&self) {
        self.trees.scan(self.id);
    }

    /// Kills the command's whole tree (its first process too).
    pub(crate) fn kill(&self) {
        self.trees.kill(self.id);
    }
}

impl Drop for Tree {
    fn drop(&mut self) {
        self.trees.kill(self.id);
        self.trees.lock().running.remove(&self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stat_line_parses_whatever_the_name_holds() {
        let line = "4242 (a (b) c) S 17 4242 4242 0 -1 4194560 96 0 0 0 0 0 0 0 20 0 1 0 \
                    123456 2342912 224 18446744073709551615";
        let stat = parse_stat(line).unwrap();
        assert_eq!((stat.ppid, stat.start, stat.zombie), (17, 123_456, false));
        let zombie = "7 (sh) Z 1 7 7 0 -1 4194560 96 0 0 0 0 0 0 0 20 0 1 0 99 0 0";
        assert!(parse_stat(zombie).unwrap().zombie);
        assert!(parse_stat("7 (sh) S 1").is_none());
        assert!(parse_stat("garbage").is_none());
    }
}
