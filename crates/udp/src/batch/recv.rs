//! [`RecvBatch`]: the slots many datagrams are received into by one call
//! (`recvmmsg`), and the runs GRO coalesced cut apart again.

use std::io;
use std::net::SocketAddr;

use bytes::BytesMut;
use msg_proto::Message;

#[cfg(target_os = "linux")]
use super::linux;
use super::{CallCounts, MAX_BATCH};
use crate::Framing;

/// The receive slots of [`Socket::recv_batch`](crate::Socket::recv_batch): one 64 KiB buffer per
/// datagram a call may take (or, with GRO, per run of datagrams).
#[derive(Debug)]
pub struct RecvBatch {
    pub(super) slots: Vec<BytesMut>,
    /// Filled by the receive: what each slot got.
    pub(super) got: Vec<Received>,
    pub(super) counts: CallCounts,
}

/// What one receive slot got from the kernel.
#[derive(Debug, Clone, Copy)]
pub(super) struct Received {
    /// Bytes written into the slot.
    pub(super) len: usize,
    pub(super) from: SocketAddr,
    /// With GRO, the size of each datagram coalesced into those bytes
    /// (the last may be shorter); `None` when they are one datagram.
    pub(super) segment: Option<usize>,
}

impl RecvBatch {
    /// Slots for up to `n` datagrams per call (at least 1, at most
    /// [`MAX_BATCH`]).
    pub fn new(n: usize) -> Self {
        let n = n.clamp(1, MAX_BATCH);
        Self {
            slots: (0..n).map(|_| BytesMut::new()).collect(),
            got: Vec::with_capacity(n),
            counts: CallCounts::default(),
        }
    }

    /// How many datagrams one call may take.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Never: a batch has at least one slot.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// The calls made through these slots so far.
    pub fn counts(&self) -> CallCounts {
        self.counts
    }

    /// Makes every slot ready for a receive of up to a datagram: reclaims
    /// it once the messages cut from it last time are dropped (a slot not
    /// used last time is ready as it is), and forgets the last receive.
    pub(crate) fn prepare(&mut self) {
        self.got.clear();
        for slot in &mut self.slots {
            slot.clear();
            slot.reserve(crate::RECV_BUF_LEN);
        }
    }

    /// Cuts what the last receive brought into datagrams, decodes each
    /// with `framing` (counting and skipping the invalid ones) and appends
    /// the messages and their senders to `out`.
    pub(crate) fn take(&mut self, framing: &mut Framing, out: &mut Vec<(Message, SocketAddr)>) {
        for (slot, got) in self.slots.iter_mut().zip(&self.got) {
            let mut run = slot.split_to(got.len).freeze();
            // A coalesced run is cut where the sender's datagrams ended:
            // every segment is `segment` bytes but the last. Each is a
            // view of the slot, not a copy. The kernel coalesces at most
            // 64 segments (`UDP_GRO_CNT_MAX`) into one slot of 64 KiB, and
            // a message needs its 28-byte header, so what one receive
            // yields follows the bytes that arrived.
            let segment = got.segment.unwrap_or(got.len).max(1);
            let mut datagrams = 0;
            loop {
                let datagram = run.split_to(segment.min(run.len()));
                datagrams += 1;
                if let Some(msg) = framing.decode(datagram, got.from) {
                    out.push((msg, got.from));
                }
                if run.is_empty() {
                    break;
                }
            }
            self.counts.datagrams += datagrams;
            if got.segment.is_some() {
                self.counts.segmented += datagrams;
            }
        }
    }

    /// One receive of up to [`RecvBatch::len`] datagrams on a socket of
    /// the blocking engine's (see [`sync::recv_batch`](crate::sync::recv_batch)),
    /// with `flags` for how it waits.
    #[cfg(target_os = "linux")]
    pub(crate) fn recv_std(&mut self, socket: &std::net::UdpSocket, flags: i32) -> io::Result<()> {
        let Self { slots, got, counts } = self;
        linux::recvmmsg(socket, slots, got, flags)?;
        counts.calls += 1;
        Ok(())
    }

    /// Elsewhere than Linux: one datagram per call, into the first slot.
    #[cfg(not(target_os = "linux"))]
    pub(crate) fn recv_std(&mut self, socket: &std::net::UdpSocket, flags: i32) -> io::Result<()> {
        let sock = socket2::SockRef::from(socket);
        let (len, from) = crate::buf::recv_into(&mut self.slots[0], |spare| {
            sock.recv_from_with_flags(spare, flags)
        })?;
        let from = from
            .as_socket()
            .ok_or_else(|| io::Error::other("a datagram from a non-IP address"))?;
        self.got.push(Received {
            len,
            from,
            segment: None,
        });
        self.counts.calls += 1;
        Ok(())
    }
}
