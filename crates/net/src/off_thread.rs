//! Blocking work (a file's reads and writes, a folder's walk) on a
//! thread of its own that a task awaits, as `spawn_blocking` does, but a
//! thread that cannot start is an error to answer with, not a panic.
//!
//! tokio's blocking pool panics (`OS can't spawn worker thread`) when the
//! system refuses it a thread and none of its own is idle: a listener at
//! its user's limit on threads (`RLIMIT_NPROC`) died in the receiving task
//! of every file, its sender hearing a reset (audit, round seven). A file
//! transfer starts one thread, against the thousands of system calls it
//! makes, so a pool saves nothing worth the panic.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::sync::oneshot;

/// The work's thread panicked: what it was to return never came.
#[derive(Debug, thiserror::Error)]
#[error("its thread panicked")]
pub(crate) struct Panicked;

/// The result of work on its own thread, to await.
#[derive(Debug)]
pub(crate) struct OffThread<T>(oneshot::Receiver<T>);

/// Runs `work` on a new thread named `name`.
///
/// # Errors
///
/// When the thread cannot start: the system's limit on threads reached,
/// say (`Resource temporarily unavailable`).
pub(crate) fn spawn<T: Send + 'static>(
    name: &str,
    work: impl FnOnce() -> T + Send + 'static,
) -> io::Result<OffThread<T>> {
    let (done, result) = oneshot::channel();
    std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(move || {
            // The awaiting task may be gone (its connection dropped).
            let _ = done.send(work());
        })?;
    Ok(OffThread(result))
}

impl<T> Future for OffThread<T> {
    type Output = Result<T, Panicked>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.0).poll(cx).map_err(|_| Panicked)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_work_is_awaited_and_a_panic_is_an_error() {
        assert_eq!(spawn("t", || 42).unwrap().await.unwrap(), 42);
        let panicked = spawn("t", || -> u8 { panic!("on purpose") }).unwrap().await;
        assert!(panicked.is_err());
    }
}
