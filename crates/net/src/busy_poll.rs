//! Busy polling: a runtime that never sleeps.

/// While it lives, the current runtime never sleeps in `epoll_wait` but
/// polls its sockets without blocking, again and again, so that a message
/// is picked up the moment it arrives instead of after the thread is woken.
/// On a machine whose idle cores take tens of microseconds to wake, that is
/// most of a cross-core round trip; the price is a whole core kept busy,
/// and on a core shared with the peer it is a loss (the peer waits for the
/// spinner to be preempted).
///
/// It is a task that yields forever: a current-thread runtime with a
/// yielded task polls its drivers with a zero timeout instead of parking.
#[derive(Debug)]
pub struct BusyPoll(tokio::task::JoinHandle<()>);

impl BusyPoll {
    /// Starts spinning the current runtime.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime.
    pub fn start() -> Self {
        Self(tokio::spawn(async {
            loop {
                tokio::task::yield_now().await;
            }
        }))
    }
}

impl Drop for BusyPoll {
    fn drop(&mut self) {
        self.0.abort();
    }
}
