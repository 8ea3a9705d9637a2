//! [`spawn`]: a blocking listener served on a thread of its own, for a
//! caller that goes on with other work (printing, waiting for a signal)
//! and stops it when it chooses.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

use tokio::sync::oneshot;

use super::{Listener, serve};
use crate::{Error, Events, KernelDrops, ServeConfig};

/// What a listener's thread leaves when it ends.
#[derive(Debug)]
pub struct Served {
    /// How serving ended: `Ok` when stopped, or once nobody read the
    /// events any more.
    pub result: Result<(), Error>,
    /// Datagrams the kernel dropped, its receive buffer full (UDP).
    pub kernel_drops: Option<u64>,
    /// Datagrams still waiting, unread, when it stopped (a datagram
    /// socket).
    pub unread: Option<u64>,
}

/// A listener being served on its thread.
#[derive(Debug)]
pub struct Serving {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<Served>,
    ended: oneshot::Receiver<()>,
}

/// Serves `listener` on a thread of its own (see [`serve`](fn@super::serve)) until
/// [`Serving::stop`], or until it ends by itself.
///
/// # Errors
///
/// When no thread can be started.
pub fn spawn(listener: Listener, config: ServeConfig, events: Events) -> std::io::Result<Serving> {
    let stop = Arc::new(AtomicBool::new(false));
    let (ended, serve_ended) = oneshot::channel();
    let stopped = Arc::clone(&stop);
    let thread = std::thread::Builder::new()
        .name("msg-listen".to_owned())
        .spawn(move || {
            let result = serve(&listener, &config, &events, &stopped);
            // Read while the socket is still open: what the kernel
            // dropped, then what waits unread (a UDP listener's only).
            let drops = listener.kernel_drops().ok().flatten();
            let kernel_drops = drops.as_ref().and_then(KernelDrops::get);
            let unread = drops.as_ref().map(KernelDrops::unread);
            drop(events);
            let _ = ended.send(());
            Served {
                result,
                kernel_drops,
                unread,
            }
        })?;
    Ok(Serving {
        stop,
        thread,
        ended: serve_ended,
    })
}

impl Serving {
    /// Resolves once serving has ended by itself (an error, or nobody
    /// reading the events); cancel-safe.
    pub async fn ended(&mut self) {
        let _ = (&mut self.ended).await;
    }

    /// Stops serving, within about [`STOP_CHECK`](super::STOP_CHECK), and
    /// what it left.
    ///
    /// # Errors
    ///
    /// When the thread panicked.
    pub async fn stop(self) -> Result<Served, Error> {
        self.stop.store(true, Ordering::Relaxed);
        let thread = self.thread;
        tokio::task::spawn_blocking(move || thread.join())
            .await
            .map_err(std::io::Error::other)?
            .map_err(|_| Error::Io(std::io::Error::other("the listener's thread panicked")))
    }
}
