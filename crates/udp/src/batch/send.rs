//! [`SendBatch`]: many datagrams encoded into one buffer and sent with as
//! few system calls as the kernel allows (`sendmmsg`, one GSO send per
//! run of equal sizes).

use std::io;
use std::net::SocketAddr;

use bytes::BytesMut;
use msg_proto::Message;

use super::CallCounts;
#[cfg(target_os = "linux")]
use super::linux;
use crate::{Error, Framing};

/// The buffer of [`Socket::send_batch`](crate::Socket::send_batch), kept between calls so that
/// sending allocates nothing once warm.
#[derive(Debug, Default)]
pub struct SendBatch {
    buf: BytesMut,
    /// Where each encoded datagram ends in `buf`.
    ends: Vec<usize>,
    /// How many of them the kernel has taken.
    sent: usize,
    pub(super) counts: CallCounts,
    /// Send runs of equal-sized datagrams with GSO; cleared for good the
    /// first time the kernel refuses it.
    gso: bool,
}

impl SendBatch {
    /// An empty batch buffer that sends with `sendmmsg` alone.
    pub fn new() -> Self {
        Self::default()
    }

    /// Also segments runs of equal-sized datagrams in the kernel (GSO, see
    /// the module docs) where the platform offers it; off elsewhere.
    #[must_use]
    pub fn with_gso(mut self, on: bool) -> Self {
        self.gso = on && cfg!(target_os = "linux");
        self
    }

    /// Whether sends still try GSO: false when it was never asked for, or
    /// after the kernel refused it.
    pub fn gso(&self) -> bool {
        self.gso
    }

    /// The calls made through this buffer so far.
    pub fn counts(&self) -> CallCounts {
        self.counts
    }

    /// Encodes `chunk` (at most [`MAX_BATCH`](super::MAX_BATCH) messages), each as the one
    /// datagram that carries it to `addr`, in place of what the buffer
    /// held: both engines' batched sends start here.
    ///
    /// # Errors
    ///
    /// [`Error::TooLarge`], before anything of `chunk` is sent.
    pub(crate) fn encode(
        &mut self,
        chunk: &[Message],
        framing: &mut Framing,
        addr: &SocketAddr,
    ) -> Result<(), Error> {
        self.buf.clear();
        self.ends.clear();
        self.sent = 0;
        for msg in chunk {
            // Appended: nothing is written for a message that is refused.
            framing.encode(msg, addr, &mut self.buf)?;
            self.ends.push(self.buf.len());
        }
        Ok(())
    }
}

/// One `sendmmsg` of what a [`SendBatch`] holds and the kernel has not
/// taken yet.
#[cfg(target_os = "linux")]
#[derive(Debug, Clone, Copy)]
pub(super) struct SendCall {
    /// The first datagram not taken.
    from: usize,
    /// Runs of equal-sized datagrams as one GSO send of at most this many
    /// bytes, or none.
    gso_run: Option<usize>,
}

/// The sending loop, without the waiting: what to send next, and what a
/// send did. The tokio socket waits for writability between calls, the
/// blocking engine's sleeps in the call.
#[cfg(target_os = "linux")]
impl SendBatch {
    /// The next call, until the kernel has taken every datagram; a GSO
    /// run holds at most `max_run` bytes, one datagram's worth, since it
    /// travels as one packet until it is cut.
    pub(super) fn next_call(&self, max_run: usize) -> Option<SendCall> {
        (self.sent < self.ends.len()).then(|| SendCall {
            from: self.sent,
            gso_run: self.gso.then_some(max_run),
        })
    }

    /// Makes `call` on `socket`.
    pub(super) fn sendmmsg(
        &self,
        socket: &std::net::UdpSocket,
        call: SendCall,
    ) -> io::Result<linux::Moved> {
        let start = match call.from {
            0 => 0,
            from => self.ends[from - 1],
        };
        linux::sendmmsg(
            socket,
            &self.buf,
            start,
            &self.ends[call.from..],
            call.gso_run,
        )
    }

    /// Counts what a call moved.
    ///
    /// # Errors
    ///
    /// The call's, unless the kernel or the device refused GSO: then it is
    /// said once, and the same datagrams go out without it from now on.
    pub(super) fn on_call(&mut self, moved: io::Result<linux::Moved>) -> io::Result<()> {
        match moved {
            Ok(moved) => {
                self.counts.datagrams += moved.datagrams as u64;
                self.counts.segmented += moved.segmented as u64;
                self.sent += moved.datagrams;
                Ok(())
            }
            Err(err) if self.gso && linux::gso_refused(&err) => {
                tracing::debug!("UDP GSO refused ({err}); sending without it");
                self.gso = false;
                Ok(())
            }
            Err(err) => Err(err),
        }
    }
}

/// Sends what `batch` holds on a blocking std socket connected to `peer`,
/// each call blocking while the send buffer is full: for
/// [`sync::send_batch`](crate::sync::send_batch).
#[cfg(target_os = "linux")]
pub(crate) fn send_encoded_std(
    socket: &std::net::UdpSocket,
    batch: &mut SendBatch,
    peer: &SocketAddr,
) -> io::Result<()> {
    let max_run = crate::Family::of(peer).max_payload();
    while let Some(call) = batch.next_call(max_run) {
        batch.counts.calls += 1;
        let moved = batch.sendmmsg(socket, call);
        batch.on_call(moved)?;
    }
    Ok(())
}

/// Elsewhere than Linux: one `send` per datagram.
#[cfg(not(target_os = "linux"))]
pub(crate) fn send_encoded_std(
    socket: &std::net::UdpSocket,
    batch: &mut SendBatch,
    _peer: &SocketAddr,
) -> io::Result<()> {
    let mut start = 0;
    for &end in &batch.ends {
        batch.counts.calls += 1;
        socket.send(&batch.buf[start..end])?;
        batch.counts.datagrams += 1;
        start = end;
    }
    Ok(())
}
