//! Where the client and the listeners run.
//!
//! On this project's 2-vCPU machines a 64-byte loopback round trip takes
//! 11–14 µs when both ends share a core and 52–66 µs when they sit on
//! different cores (the wake-up crosses CPUs); left to the scheduler, a run
//! lands in either mode at random. So the benchmark pins its threads and
//! says where in its report.

use std::fmt;

use core_affinity::CoreId;
use tracing::{debug, warn};

use crate::error::Error;

/// Where the client and the built-in listeners run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pin {
    /// Client and listeners on one core.
    Same,
    /// Client on one core, listeners on another.
    Cross,
    /// No pinning: the scheduler decides.
    Off,
}

/// The cores chosen for a [`Pin`] mode.
#[derive(Debug, Clone)]
pub struct Placement {
    pin: Pin,
    client: Option<CoreId>,
    listeners: Option<CoreId>,
}

impl Placement {
    /// Chooses cores among those this process may run on.
    ///
    /// # Errors
    ///
    /// [`Error::TooFewCpus`] when `Cross` is asked for with fewer than two
    /// cores, [`Error::NoCpuList`] when pinning is asked for where the
    /// cores cannot be listed.
    pub fn new(pin: Pin) -> Result<Self, Error> {
        if pin == Pin::Off {
            return Ok(Self {
                pin,
                client: None,
                listeners: None,
            });
        }
        let cores = core_affinity::get_core_ids()
            .filter(|cores| !cores.is_empty())
            .ok_or(Error::NoCpuList)?;
        let (client, listeners) = match pin {
            Pin::Same => (cores[0], cores[0]),
            Pin::Cross => {
                let [first, second, ..] = cores[..] else {
                    return Err(Error::TooFewCpus {
                        available: cores.len(),
                    });
                };
                (first, second)
            }
            Pin::Off => unreachable!("handled above"),
        };
        Ok(Self {
            pin,
            client: Some(client),
            listeners: Some(listeners),
        })
    }

    /// No pinning: the scheduler decides.
    pub fn off() -> Self {
        Self {
            pin: Pin::Off,
            client: None,
            listeners: None,
        }
    }

    /// The same, for a remote listener: only the client is pinned here,
    /// and the placement does not name a core for the listener (audit,
    /// round fifteen: "listeners on cpu 1" of one pinned elsewhere).
    #[must_use]
    pub fn for_remote(mut self) -> Self {
        self.listeners = None;
        self
    }

    /// The mode these cores were chosen for.
    pub fn pin(&self) -> Pin {
        self.pin
    }

    /// Pins the calling thread, which runs the client.
    pub(crate) fn pin_client(&self) {
        pin_current(self.client, "client");
    }

    /// The core for the built-in listeners' threads.
    pub(crate) fn listener_core(&self) -> Option<CoreId> {
        self.listeners
    }
}

/// Pins the calling thread to `core`, if any; a failure is a warning, not
/// an error: the run is still valid, only less repeatable.
pub(crate) fn pin_current(core: Option<CoreId>, who: &str) {
    let Some(core) = core else { return };
    if core_affinity::set_for_current(core) {
        debug!(who, cpu = core.id, "pinned");
    } else {
        warn!(
            "cannot pin the {who} to cpu {}; its numbers may wander",
            core.id
        );
    }
}

impl fmt::Display for Placement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.pin, self.client, self.listeners) {
            (Pin::Same, Some(core), Some(_)) => write!(f, "pin same (cpu {})", core.id),
            (Pin::Cross, Some(client), Some(listeners)) => write!(
                f,
                "pin cross (client on cpu {}, listeners on cpu {})",
                client.id, listeners.id
            ),
            (pin @ (Pin::Same | Pin::Cross), Some(client), None) => write!(
                f,
                "pin {} (client on cpu {}; the listener is remote, not pinned here)",
                if pin == Pin::Same { "same" } else { "cross" },
                client.id
            ),
            _ => f.write_str("pin off"),
        }
    }
}
