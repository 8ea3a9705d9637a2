//! How a serving thread of the blocking engine waits: never longer than
//! [`STOP_CHECK`] before it looks at its `stop` flag, spinning instead of
//! sleeping while busy-polling ([`Spinner`]), and a future (the event
//! queue's wait for room) run without a runtime ([`block_on`]).

use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Wake, Waker};
use std::thread::{self, Thread};
use std::time::{Duration, Instant};

use super::io::Wait;

/// The longest any wait of a serving thread lasts before it looks at the
/// `stop` flag (and, over TCP, at the idle and frame timeouts).
pub const STOP_CHECK: Duration = Duration::from_millis(100);

/// Busy-polling, how long a thread keeps spinning after the last message
/// before it sleeps in the kernel again: a benchmark's run keeps its
/// listener spinning, and a listener between runs, or one of several
/// sharing a core, gives the core back.
pub const SPIN_IDLE: Duration = Duration::from_millis(20);

/// When the next wait spins and when it sleeps.
#[derive(Debug)]
pub(super) struct Spinner {
    enabled: bool,
    /// Spin until then: [`SPIN_IDLE`] after the last message.
    until: Option<Instant>,
}

impl Spinner {
    pub(super) fn new(enabled: bool) -> Self {
        Self {
            enabled,
            until: None,
        }
    }

    pub(super) fn wait(&mut self) -> Wait {
        match self.until {
            Some(until) if Instant::now() < until => Wait::Spin(until),
            _ => {
                self.until = None;
                Wait::Sleep
            }
        }
    }

    pub(super) fn got_one(&mut self) {
        if self.enabled {
            self.until = Some(Instant::now() + SPIN_IDLE);
        }
    }
}

/// Wakes the thread that waits in [`block_on`].
#[derive(Debug)]
struct Unpark(Mutex<Thread>);

impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .unpark();
    }
}

/// Runs `future` on this thread, parked between polls; `None` once `stop`
/// is set first. For the event queue's wait for room, which needs no
/// runtime, only a waker.
pub(super) fn block_on<F: Future>(future: F, stop: &AtomicBool) -> Option<F::Output> {
    let waker = Waker::from(Arc::new(Unpark(Mutex::new(thread::current()))));
    let mut context = Context::from_waker(&waker);
    let mut future = pin!(future);
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut context) {
            return Some(output);
        }
        if stop.load(Ordering::Relaxed) {
            return None;
        }
        thread::park_timeout(STOP_CHECK);
    }
}
