//! Where parallel flows (`Plan::parallel`, the `flows` module) meet
//! before they measure: each warms up until one shared instant, takes its
//! first statistics, and streams only once every flow has its own. Over
//! UDP a flow that went on at once filled the listener's receive buffer
//! while the others were still asking, and their requests were dropped
//! with the stream until they gave up (128 flows failed every run).

use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::error::{Error, RunError};

/// How the blocking engine's flows start measuring together: each warms
/// up until `warm_until`, takes its first statistics, then waits here
/// until every flow has taken its own (or one has failed).
#[derive(Debug)]
pub(crate) struct Start {
    /// The end of the shared warm-up.
    pub(crate) warm_until: Instant,
    flows: u32,
    within: Duration,
    arrivals: Mutex<Arrivals>,
    changed: Condvar,
}

/// Who has come to [`Start`]: how many flows have their first
/// statistics, and whether one failed.
#[derive(Debug, Default)]
struct Arrivals {
    counted: u32,
    failed: bool,
}

impl Start {
    /// `flows` flows, warmed up until `warm_until`, each waiting for the
    /// others' first statistics at most `within`.
    pub(crate) fn new(warm_until: Instant, flows: u32, within: Duration) -> Self {
        Self {
            warm_until,
            flows,
            within,
            arrivals: Mutex::default(),
            changed: Condvar::new(),
        }
    }

    /// This flow has its first statistics: waits until every flow has,
    /// for at most `within` (each flow's own requests are bounded the same
    /// way, and one that gives up says so through [`Start::failed`]).
    ///
    /// # Errors
    ///
    /// Another flow failed first, or not every flow came in time.
    pub(crate) fn counted(&self) -> Result<(), Error> {
        let lock = |arrivals: std::sync::LockResult<_>| {
            arrivals.unwrap_or_else(std::sync::PoisonError::into_inner)
        };
        let mut arrivals = lock(self.arrivals.lock());
        arrivals.counted += 1;
        self.changed.notify_all();
        let (arrivals, wait) = self
            .changed
            .wait_timeout_while(arrivals, self.within, |a| {
                a.counted < self.flows && !a.failed
            })
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match (arrivals.failed, wait.timed_out()) {
            (true, _) => Err(RunError::OtherFlowFailed.into()),
            (false, true) => Err(RunError::FlowsNotCounted {
                within: self.within,
            }
            .into()),
            (false, false) => Ok(()),
        }
    }

    /// A flow failed: the others stop waiting for it.
    pub(crate) fn failed(&self) {
        let mut arrivals = self
            .arrivals
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        arrivals.failed = true;
        self.changed.notify_all();
    }
}

/// As [`Start`], for the tokio engine's flows, futures of one task: a flow
/// that fails ends the others with it (`try_join_all`), so none waits for
/// a flow that will not come.
#[derive(Debug)]
pub(crate) struct AsyncStart {
    /// The end of the shared warm-up.
    pub(crate) warm_until: Instant,
    counted: tokio::sync::Barrier,
    within: Duration,
}

impl AsyncStart {
    /// As [`Start::new`].
    pub(crate) fn new(warm_until: Instant, flows: usize, within: Duration) -> Self {
        Self {
            warm_until,
            counted: tokio::sync::Barrier::new(flows),
            within,
        }
    }

    /// As [`Start::counted`].
    ///
    /// # Errors
    ///
    /// Not every flow came within its time.
    pub(crate) async fn counted(&self) -> Result<(), Error> {
        match tokio::time::timeout(self.within, self.counted.wait()).await {
            Ok(_) => Ok(()),
            Err(_) => Err(RunError::FlowsNotCounted {
                within: self.within,
            }
            .into()),
        }
    }
}
