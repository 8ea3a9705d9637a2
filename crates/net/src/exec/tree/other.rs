//! The tree elsewhere than Linux: the command's process group, killed
//! through its `Child`, is all there is.

use std::io;
use std::sync::Arc;

use tokio::process::{Child, Command};

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
        Ok((command.spawn()?, Tree))
    }

    pub(crate) fn kill_all(&self, _owner: u64) {}
}

/// The group is killed through the command's `Child`.
#[derive(Debug)]
pub(crate) struct Tree;

impl Tree {
    pub(crate) fn scan(&self) {}

    pub(crate) fn kill(&self) {}
}
