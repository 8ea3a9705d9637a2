//! [`Event`]s: what the serve loop reports, and the bounded queue that
//! carries them to whoever prints them.
//!
//! The serve loop never writes to stdout itself. A terminal paused with
//! Ctrl-S, or `msg listen | less` left unscrolled, blocks every write to
//! stdout; a listener that printed inline would stop answering pings,
//! replying and accepting on that same thread. So the loop hands each
//! received message to a queue, and the renderer drains it on a thread of
//! its own. The queue is bounded by *bytes* (a semaphore of
//! [`QUEUE_BYTES`] permits, one per byte plus a fixed charge per message),
//! not by a count, so its memory follows what was received however large
//! the messages are. When it is full:
//!
//! - a TCP connection waits ([`Events::deliver`]): its sender feels
//!   backpressure through TCP's own flow control, and nothing is lost;
//! - the UDP loop does not wait ([`Events::offer`]): it drops the message
//!   and counts it ([`Events::dropped`]), as a full socket buffer would,
//!   and goes on answering everyone else.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use msg_tcp::PeerAddr;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, TryAcquireError, mpsc};

/// How many bytes of received messages may wait to be printed.
pub const QUEUE_BYTES: usize = 1024 * 1024;

/// What each queued message costs beyond its body, so that a flood of
/// empty messages is bounded too.
const PER_EVENT: usize = 64;

/// Something the serve loop reports.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A message to show: a `Data` message's body, or in raw mode the bytes
    /// of one datagram or one TCP read.
    Message {
        /// Who sent it.
        peer: PeerAddr,
        /// Its sequence number; `None` in raw mode, which has no header.
        seq: Option<u64>,
        /// Its body.
        body: Bytes,
    },
    /// How far a file has come (only with
    /// [`SaveConfig::progress`](crate::file::SaveConfig::progress); offered,
    /// so some may be dropped).
    FileProgress {
        /// Who sends it.
        peer: PeerAddr,
        /// Its name.
        name: String,
        /// Bytes received so far.
        received: u64,
        /// Bytes announced.
        size: u64,
    },
    /// A file was received whole, its hash checked, and saved.
    File {
        /// Who sent it.
        peer: PeerAddr,
        /// The name it was saved under, in the save directory.
        name: String,
        /// Its size in bytes.
        size: u64,
        /// Its BLAKE3 hash, as `b3sum` prints it.
        hash: String,
        /// From its header to its verdict.
        elapsed: std::time::Duration,
    },
}

impl Event {
    fn cost(&self) -> usize {
        match self {
            Self::Message { body, .. } => (body.len() + PER_EVENT).min(QUEUE_BYTES),
            Self::File { name, hash, .. } => name.len() + hash.len() + PER_EVENT,
            Self::FileProgress { name, .. } => name.len() + PER_EVENT,
        }
    }
}

/// The sending end: cheap to clone, one per connection task.
#[derive(Debug, Clone, Default)]
pub struct Events {
    shared: Option<Arc<Shared>>,
}

#[derive(Debug)]
struct Shared {
    tx: mpsc::UnboundedSender<Delivery>,
    budget: Arc<Semaphore>,
    dropped: AtomicU64,
    /// Messages and files queued, for the summary: what the renderer had
    /// not taken when msg stopped is this less what it took.
    queued: AtomicU64,
}

impl Shared {
    /// Sends `delivery`, counting it if it is a message or a file.
    fn send(&self, delivery: Delivery) -> bool {
        let counts = matches!(delivery.event, Event::Message { .. } | Event::File { .. });
        if self.tx.send(delivery).is_err() {
            return false;
        }
        if counts {
            self.queued.fetch_add(1, Ordering::Relaxed);
        }
        true
    }
}

/// What happened to an offered event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offer {
    /// Queued (or nobody listens to events: nothing to do).
    Queued,
    /// The queue was full; the event was dropped and counted.
    Dropped,
    /// The receiving end is gone: the serve loop may stop.
    Closed,
}

impl Events {
    /// No receiver: every event is discarded at once, at no cost. For
    /// listeners whose messages nobody prints (`msg bench`'s).
    pub fn discard() -> Self {
        Self { shared: None }
    }

    /// A queue of at most [`QUEUE_BYTES`] and its receiving end.
    pub fn channel() -> (Self, EventReceiver) {
        let (tx, rx) = mpsc::unbounded_channel();
        let shared = Shared {
            tx,
            budget: Arc::new(Semaphore::new(QUEUE_BYTES)),
            dropped: AtomicU64::new(0),
            queued: AtomicU64::new(0),
        };
        (
            Self {
                shared: Some(Arc::new(shared)),
            },
            EventReceiver { rx },
        )
    }

    /// Whether anyone receives events; when not, the caller can skip
    /// building them.
    pub fn wanted(&self) -> bool {
        self.shared.is_some()
    }

    /// Queues `event`, waiting for room: for a TCP connection, whose
    /// sender then waits too.
    ///
    /// Returns `false` when the receiving end is gone.
    pub async fn deliver(&self, event: Event) -> bool {
        let Some(shared) = &self.shared else {
            return true;
        };
        let cost = u32::try_from(event.cost()).expect("QUEUE_BYTES fits a u32");
        let Ok(permit) = shared.budget.clone().acquire_many_owned(cost).await else {
            return false;
        };
        shared.send(Delivery {
            event,
            _permit: permit,
        })
    }

    /// Queues `event` if there is room, else drops and counts it: for the
    /// UDP loop, which must not wait on one peer's behalf.
    pub fn offer(&self, event: Event) -> Offer {
        let Some(shared) = &self.shared else {
            return Offer::Queued;
        };
        let cost = u32::try_from(event.cost()).expect("QUEUE_BYTES fits a u32");
        match shared.budget.clone().try_acquire_many_owned(cost) {
            Ok(permit) => {
                if shared.send(Delivery {
                    event,
                    _permit: permit,
                }) {
                    Offer::Queued
                } else {
                    Offer::Closed
                }
            }
            Err(TryAcquireError::NoPermits) => {
                shared.dropped.fetch_add(1, Ordering::Relaxed);
                Offer::Dropped
            }
            Err(TryAcquireError::Closed) => Offer::Closed,
        }
    }

    /// How many messages and files were queued (and not dropped): the
    /// renderer's own count of those it took tells, at the end, how many
    /// it never took.
    pub fn queued(&self) -> u64 {
        self.shared
            .as_ref()
            .map_or(0, |shared| shared.queued.load(Ordering::Relaxed))
    }

    /// How many events [`Events::offer`] dropped because the queue was
    /// full.
    pub fn dropped(&self) -> u64 {
        self.shared
            .as_ref()
            .map_or(0, |shared| shared.dropped.load(Ordering::Relaxed))
    }
}

/// The receiving end, for a thread of its own (its receive blocks).
#[derive(Debug)]
pub struct EventReceiver {
    rx: mpsc::UnboundedReceiver<Delivery>,
}

impl EventReceiver {
    /// Waits for the next event; `None` once every [`Events`] is dropped.
    /// Blocks the thread: call it outside the runtime.
    pub fn blocking_recv(&mut self) -> Option<Delivery> {
        self.rx.blocking_recv()
    }

    /// The next event if one is queued.
    pub fn try_recv(&mut self) -> Option<Delivery> {
        self.rx.try_recv().ok()
    }
}

/// A received event. Its bytes count against the queue until it is
/// dropped, so drop it once it has been written.
#[derive(Debug)]
pub struct Delivery {
    /// The event.
    pub event: Event,
    _permit: OwnedSemaphorePermit,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(len: usize) -> Event {
        Event::Message {
            peer: std::net::SocketAddr::from(([127, 0, 0, 1], 1)).into(),
            seq: None,
            body: Bytes::from(vec![0; len]),
        }
    }

    #[tokio::test]
    async fn a_full_queue_drops_offers_and_counts_them() {
        let (events, mut rx) = Events::channel();
        let half = QUEUE_BYTES / 2 - PER_EVENT;
        assert_eq!(events.offer(message(half)), Offer::Queued);
        assert_eq!(events.offer(message(half)), Offer::Queued);
        assert_eq!(events.offer(message(1)), Offer::Dropped);
        assert_eq!(events.dropped(), 1);
        // Written and dropped: its bytes are free again.
        drop(rx.try_recv().unwrap());
        assert_eq!(events.offer(message(1)), Offer::Queued);
    }

    #[tokio::test]
    async fn deliver_waits_for_room() {
        let (events, mut rx) = Events::channel();
        assert!(events.deliver(message(QUEUE_BYTES)).await);
        let waiting = events.deliver(message(10));
        tokio::pin!(waiting);
        assert!(
            tokio::time::timeout(std::time::Duration::from_millis(20), &mut waiting)
                .await
                .is_err(),
            "no room: the delivery waits"
        );
        drop(rx.try_recv().unwrap());
        assert!(waiting.await);
    }

    #[tokio::test]
    async fn a_gone_receiver_closes_the_queue() {
        let (events, rx) = Events::channel();
        drop(rx);
        assert_eq!(events.offer(message(1)), Offer::Closed);
        assert!(!events.deliver(message(1)).await);
        assert_eq!(Events::discard().offer(message(1)), Offer::Queued);
    }
}
