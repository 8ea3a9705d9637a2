//! [`Unread`]: what a QUIC datagram endpoint's connections received and
//! its readers never took, for a listener's summary.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// The datagrams that arrived on an endpoint's connections and were never
/// read: quinn keeps a connection's datagrams until they are read, up to
/// its receive buffer ([`DATAGRAM_BUFFER`](crate::quic::DATAGRAM_BUFFER)),
/// and drops the oldest past it, telling nobody. A flood on loopback
/// arrives faster than one thread reads it (200,000 small datagrams sent
/// at once: 64,566 read, the rest dropped there), so the listener's
/// summary counts them: what each connection received (quinn's
/// statistics) less what its reader took.
#[derive(Debug, Default)]
pub(crate) struct Unread {
    /// Of the connections that have closed.
    closed: AtomicU64,
    /// Each connection still read, and how many datagrams of it were
    /// read.
    pub(super) open: Mutex<Vec<(quinn::Connection, Arc<AtomicU64>)>>,
}

impl Unread {
    /// Starts counting what is read of `conn`; the reader adds to the
    /// count it is given, and calls [`Unread::closed`] once it stops.
    pub(super) fn open(&self, conn: &quinn::Connection) -> Arc<AtomicU64> {
        let read = Arc::new(AtomicU64::new(0));
        let mut open = self.open.lock().expect("never poisoned");
        open.push((conn.clone(), Arc::clone(&read)));
        read
    }

    /// `conn`'s reader has stopped: what it did not read is kept in the
    /// total, and the connection let go.
    pub(super) fn closed(&self, conn: &quinn::Connection) {
        let mut open = self.open.lock().expect("never poisoned");
        if let Some(at) = open
            .iter()
            .position(|(kept, _)| kept.stable_id() == conn.stable_id())
        {
            let (conn, read) = open.swap_remove(at);
            self.closed
                .fetch_add(never_read(&conn, &read), Ordering::Relaxed);
        }
    }

    /// The datagrams that arrived and were not read, so far: dropped, or
    /// still in quinn's buffer (never read, once the listener stopped).
    pub(crate) fn total(&self) -> u64 {
        let open = self.open.lock().expect("never poisoned");
        let open: u64 = open.iter().map(|(conn, read)| never_read(conn, read)).sum();
        self.closed.load(Ordering::Relaxed) + open
    }
}

/// What `conn` received in datagrams less what its reader took (`read`).
fn never_read(conn: &quinn::Connection, read: &AtomicU64) -> u64 {
    conn.stats()
        .frame_rx
        .datagram
        .saturating_sub(read.load(Ordering::Relaxed))
}
