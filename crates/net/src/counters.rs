//! [`Counters`]: what a listener counts while it serves, for the summary a
//! user sees when it stops.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Counted by [`serve`](fn@crate::serve) as it goes; shared with the caller
/// (an `Arc` in [`ServeConfig`](crate::ServeConfig)), read when it stops.
#[derive(Debug, Default)]
pub struct Counters {
    connections: AtomicU64,
    invalid: AtomicU64,
    unauthenticated: AtomicU64,
    transfers: AtomicU64,
    recv_calls: AtomicU64,
    recv_datagrams: AtomicU64,
    recv_segmented: AtomicU64,
    /// Told each time a connection served (not refused) ends.
    served: tokio::sync::Notify,
    /// Whether a connection served ended in an error (reset, cut, idle).
    served_failed: AtomicBool,
    /// Connections admitted and not yet ended. One a stop cut short is
    /// never taken off: still counted, it says a connection was open.
    open: AtomicU64,
}

/// A snapshot of [`Counters`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counted {
    /// TCP connections accepted (refused ones included).
    pub connections: u64,
    /// Datagrams that were not msg messages; over a stream, connections
    /// dropped for what they sent (a frame over the limit, bytes that do
    /// not decode, a frame cut off).
    pub invalid: u64,
    /// Datagrams that failed authentication (bad tag, replay, untagged).
    pub unauthenticated: u64,
    /// File transfers under way right now.
    pub transfers: u64,
}

impl Counters {
    /// Their values now.
    pub fn get(&self) -> Counted {
        Counted {
            connections: self.connections.load(Ordering::Relaxed),
            invalid: self.invalid.load(Ordering::Relaxed),
            unauthenticated: self.unauthenticated.load(Ordering::Relaxed),
            transfers: self.transfers.load(Ordering::Relaxed),
        }
    }

    pub(crate) fn connected(&self) {
        self.connections.fetch_add(1, Ordering::Relaxed);
    }

    /// A connection was admitted (not refused), on either engine.
    pub(crate) fn opened(&self) {
        self.open.fetch_add(1, Ordering::Relaxed);
    }

    /// A connection admitted has ended, however (its handshake failed
    /// included); never called for one a stop cut short.
    pub(crate) fn closed(&self) {
        self.open.fetch_sub(1, Ordering::Relaxed);
    }

    /// Connections admitted and not ended: after serving stopped, those it
    /// cut short (`msg listen --once` stopped by a signal mid-transfer
    /// exits as nc's listener does then, not 0: audit, round thirteen).
    pub fn open(&self) -> u64 {
        self.open.load(Ordering::Relaxed)
    }

    /// A connection that was served (not refused) has ended, on either
    /// engine; `failed` when it ended in an error.
    pub(crate) fn served(&self, failed: bool) {
        if failed {
            self.served_failed.store(true, Ordering::Relaxed);
        }
        // A permit kept when nobody waits yet: the first end is not missed.
        self.served.notify_one();
    }

    /// Whether a connection that was served ended in an error: for `msg
    /// listen --once`, whose one connection's end is its own (nc's
    /// listener exits 0 after a reset, ncat's 1: a file cut off must not
    /// look received).
    pub fn served_failed(&self) -> bool {
        self.served_failed.load(Ordering::Relaxed)
    }

    /// Completes when a connection that was served has ended (`msg listen
    /// --once`, as nc's listener ends with its one connection).
    pub async fn connection_served(&self) {
        self.served.notified().await;
    }

    /// A stream connection dropped for what it sent (not msg's frames).
    pub(crate) fn invalid_connection(&self) {
        self.invalid.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn set_udp(&self, invalid: u64, unauthenticated: u64) {
        self.invalid.store(invalid, Ordering::Relaxed);
        self.unauthenticated
            .store(unauthenticated, Ordering::Relaxed);
    }

    /// How many receive calls a batched UDP listener
    /// ([`ServeConfig::udp_batch`](crate::ServeConfig::udp_batch)) made,
    /// how many datagrams they took, and how many of those arrived
    /// coalesced by GRO; zero for one without batching.
    pub fn udp_recv_calls(&self) -> crate::CallCounts {
        crate::CallCounts {
            calls: self.recv_calls.load(Ordering::Relaxed),
            datagrams: self.recv_datagrams.load(Ordering::Relaxed),
            segmented: self.recv_segmented.load(Ordering::Relaxed),
        }
    }

    pub(crate) fn set_udp_recv_calls(&self, counts: crate::CallCounts) {
        self.recv_calls.store(counts.calls, Ordering::Relaxed);
        self.recv_datagrams
            .store(counts.datagrams, Ordering::Relaxed);
        self.recv_segmented
            .store(counts.segmented, Ordering::Relaxed);
    }

    /// Counts a transfer until the guard is dropped.
    pub(crate) fn transfer(&self) -> Transfer<'_> {
        self.transfers.fetch_add(1, Ordering::Relaxed);
        Transfer(self)
    }
}

/// A file transfer under way; see [`Counters::transfer`].
#[derive(Debug)]
pub(crate) struct Transfer<'a>(&'a Counters);

impl Drop for Transfer<'_> {
    fn drop(&mut self) {
        self.0.transfers.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The most datagrams [`KernelDrops::unread`] takes: more than any receive
/// buffer holds, yet a bound on the loop should a sender keep going.
pub(crate) const MAX_UNREAD_COUNTED: u64 = 1 << 20;

/// A way to read how many datagrams the kernel dropped for a UDP
/// listener, while it serves (a benchmark's count over a run) and after it
/// has stopped (a summary's): it holds a second handle on the socket, a
/// std one that needs no runtime.
#[derive(Debug)]
pub struct KernelDrops {
    socket: std::net::UdpSocket,
}

impl KernelDrops {
    pub(crate) fn new(socket: std::net::UdpSocket) -> Self {
        Self { socket }
    }

    /// The count now, where the kernel tells it.
    pub fn get(&self) -> Option<u64> {
        kernel_udp_drops(&self.socket)
    }

    /// Once the listener has stopped: takes the datagrams still waiting in
    /// the socket's receive buffer, which nobody will read now, and counts
    /// them (at most 2^20), so that a summary accounts for
    /// every datagram that arrived.
    pub fn unread(&self) -> u64 {
        msg_udp::sync::discard_waiting(&socket2::SockRef::from(&self.socket), MAX_UNREAD_COUNTED)
    }
}

/// A way to read how many datagrams arrived at a QUIC datagram listener
/// and were never read: quinn keeps each connection's datagrams until
/// they are read, up to its receive buffer, and drops the oldest past it,
/// telling nobody. Read while the listener serves and after it stopped.
#[derive(Debug, Clone)]
pub struct BufferDrops(pub(crate) std::sync::Arc<crate::quic_dgram::Unread>);

impl BufferDrops {
    /// The count now: what the connections received, less what was read.
    pub fn get(&self) -> u64 {
        self.0.total()
    }
}

/// How many datagrams the kernel dropped for the UDP socket `socket`
/// because its receive buffer was full (`SO_MEMINFO`, as
/// [`msg_udp::sync::kernel_drops`]), read once instead of on every
/// receive. `None` where the kernel does not tell.
pub fn kernel_udp_drops(socket: &impl std::os::fd::AsFd) -> Option<u64> {
    msg_udp::sync::kernel_drops(&socket2::SockRef::from(socket))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bound_socket_has_dropped_nothing() {
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        if cfg!(target_os = "linux") {
            assert_eq!(kernel_udp_drops(&socket), Some(0));
        }
    }

    #[test]
    fn a_transfer_counts_while_it_lasts() {
        let counters = Counters::default();
        let transfer = counters.transfer();
        assert_eq!(counters.get().transfers, 1);
        drop(transfer);
        assert_eq!(counters.get().transfers, 0);
    }
}
