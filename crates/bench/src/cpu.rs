//! CPU time per side: what the client's threads and the built-in
//! listeners spent, user and system, over a run's measurement.
//!
//! Each client thread reads its own time (`getrusage(RUSAGE_THREAD)`,
//! Linux) when its measurement starts and when it ends, and the whole
//! process's (`RUSAGE_SELF`) at the same moments. The built-in listeners
//! run in this process, on threads of their own that the client cannot
//! ask (`RUSAGE_THREAD` reads only the calling thread), so their share is
//! the process's less the client's: everything else in the process
//! sleeps while a run measures (the other engine's listeners wait in the
//! kernel, the progress bar draws between runs). Against a remote
//! listener that difference is nothing worth reporting, and the report
//! gives the client's side alone. Elsewhere than Linux there is no
//! per-thread figure, and none is reported.

use std::ops::{Add, Sub};
use std::time::Duration;

/// User and system CPU time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// In user space.
    pub user: Duration,
    /// In the kernel, on the process's behalf (system calls, and the
    /// network stack's work done in them).
    pub system: Duration,
}

impl Add for Usage {
    type Output = Self;
    fn add(self, other: Self) -> Self {
        Self {
            user: self.user + other.user,
            system: self.system + other.system,
        }
    }
}

impl Sub for Usage {
    type Output = Self;
    /// Saturating: two clocks read a moment apart.
    fn sub(self, other: Self) -> Self {
        Self {
            user: self.user.saturating_sub(other.user),
            system: self.system.saturating_sub(other.system),
        }
    }
}

impl Usage {
    /// µs of user and of system time per `count` messages; `None` for
    /// none.
    pub fn per_message_us(&self, count: u64) -> Option<(f64, f64)> {
        if count == 0 {
            return None;
        }
        let per = |d: Duration| d.as_secs_f64() * 1e6 / count as f64;
        Some((per(self.user), per(self.system)))
    }
}

/// What a run's measurement cost in CPU time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Cpu {
    /// The client's thread (or, for parallel flows on the blocking
    /// engine, its threads together).
    pub client: Usage,
    /// The whole process over the same time: the client and the built-in
    /// listeners.
    pub process: Usage,
}

impl Cpu {
    /// The built-in listeners' share: the process's less the client's.
    pub fn listener(&self) -> Usage {
        self.process - self.client
    }
}

/// The clocks at the start of a measurement.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sample {
    thread: Usage,
    process: Usage,
}

impl Sample {
    /// The calling thread's and the process's CPU time now; `None` where
    /// the thread's cannot be read.
    pub(crate) fn now() -> Option<Self> {
        Some(Self {
            thread: read(Who::Thread)?,
            process: read(Who::Process)?,
        })
    }

    /// What the calling thread (the one that took `self`) and the
    /// process spent since.
    pub(crate) fn elapsed(&self) -> Option<Cpu> {
        let now = Self::now()?;
        Some(Cpu {
            client: now.thread - self.thread,
            process: now.process - self.process,
        })
    }
}

/// Whose time [`read`] reads.
#[derive(Clone, Copy)]
enum Who {
    Thread,
    Process,
}

#[cfg(target_os = "linux")]
fn read(who: Who) -> Option<Usage> {
    use nix::sys::resource::{UsageWho, getrusage};
    let usage = getrusage(match who {
        Who::Thread => UsageWho::RUSAGE_THREAD,
        Who::Process => UsageWho::RUSAGE_SELF,
    })
    .ok()?;
    let duration = |tv: nix::sys::time::TimeVal| {
        let micros = i128::from(tv.tv_sec()) * 1_000_000 + i128::from(tv.tv_usec());
        Duration::from_micros(u64::try_from(micros).unwrap_or(0))
    };
    Some(Usage {
        user: duration(usage.user_time()),
        system: duration(usage.system_time()),
    })
}

#[cfg(not(target_os = "linux"))]
fn read(_who: Who) -> Option<Usage> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_busy_thread_is_counted_and_the_process_holds_it() {
        let Some(start) = Sample::now() else {
            return;
        };
        // Spin until this thread has run 10 ms, however long a busy
        // machine takes to give it them (bounded: 10 s of wall time).
        let give_up = std::time::Instant::now() + Duration::from_secs(10);
        let mut x = 0u64;
        let cpu = loop {
            for _ in 0..100_000 {
                x = std::hint::black_box(x.wrapping_add(1));
            }
            let cpu = start.elapsed().unwrap();
            let client = cpu.client.user + cpu.client.system;
            if client >= Duration::from_millis(10) || std::time::Instant::now() > give_up {
                break cpu;
            }
        };
        let client = cpu.client.user + cpu.client.system;
        assert!(client >= Duration::from_millis(10), "{cpu:?}");
        assert!(cpu.process.user + cpu.process.system >= client, "{cpu:?}");
        let (user, _) = cpu.client.per_message_us(1000).unwrap();
        assert!(user > 0.0, "{cpu:?}");
        assert_eq!(cpu.client.per_message_us(0), None);
    }
}
