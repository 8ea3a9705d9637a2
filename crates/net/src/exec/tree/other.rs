//! The tree elsewhere than Linux: the command's process group is all
//! there is.

use std::io;
use std::sync::Arc;

use tokio::process::{Child, Command};

use super::Group;

/// Nothing is scanned here; the value only paces a no-op.
pub(crate) const SCAN_EVERY: std::time::Duration = std::time::Duration::from_secs(3600);

/// Nothing to keep: the process group is all there is to kill.
#[derive(Debug, Default)]
pub(crate) struct Trees;

impl Trees {
    pub(crate) fn get() -> Arc<Self> {
        Arc::new(Self)
    }

    pub(crate) fn spawn(
        self: &Arc<Self>,
        _owner: u64,
        command: &mut Command,
    ) -> io::Result<(Child, Tree)> {
        let child = command.spawn()?;
        let pid = child
            .id()
            .and_then(|pid| i32::try_from(pid).ok())
            .ok_or_else(|| io::Error::other("the command has no process id"))?;
        Ok((child, Tree(Group::new(pid))))
    }

    pub(crate) fn kill_all(&self, _owner: u64) {}
}

/// The command's process group.
#[derive(Debug)]
pub(crate) struct Tree(Group);

impl Tree {
    pub(crate) fn scan(&self) {}

    pub(crate) fn leader_reaped(&self) {
        self.0.leader_reaped();
    }

    pub(crate) fn kill(&self) {
        self.0.kill();
    }
}

impl Drop for Tree {
    fn drop(&mut self) {
        self.0.kill();
    }
}
