//! Batched I/O: many datagrams per system call.
//!
//! One `sendto` or `recvfrom` per datagram costs a system call each, and
//! for small datagrams the call, not the copy, is most of the work. Linux
//! offers `sendmmsg` and `recvmmsg`, which move up to a vector of datagrams
//! in one call (iperf3 and quinn-udp use them, with GSO and GRO on top).
//! Each datagram is still a datagram: its boundaries, its own header, its
//! own loss.
//!
//! - [`Socket::send_batch`] encodes every message of a slice into one
//!   buffer and sends them to the connected peer with as few `sendmmsg`
//!   calls as the kernel allows (one per [`MAX_BATCH`] messages when the
//!   send buffer has room).
//! - [`Socket::recv_batch`] waits until at least one datagram is there,
//!   then takes up to [`RecvBatch::len`] of them in one `recvmmsg`. Each
//!   slot is a 64 KiB buffer of its own, reclaimed once the messages cut
//!   from it are dropped, so nothing is ever truncated and nothing is
//!   copied; the price is 64 KiB of memory per slot.
//! - Both count their calls ([`CallCounts`]): how many datagrams each
//!   system call moved is what batching is for.
//!
//! # Segmentation offload: GSO and GRO
//!
//! `sendmmsg` saves system calls, but the kernel still builds, routes and
//! queues every datagram on its own, and on loopback the sender's core does
//! the receiver's network stack too. Linux can do better for a run of
//! datagrams of one size (UDP GSO, 4.18): one `sendmsg` hands the kernel a
//! buffer and a segment size in an `UDP_SEGMENT` control message, and the
//! kernel carries the whole run as one super-packet, cutting it into
//! datagrams only where it must: at a NIC without the offload, or at a
//! receiving socket that has not asked for `UDP_GRO` (5.0). A socket that
//! has, gets the run in one receive, with the segment size in a control
//! message, and cuts it itself. On the wire nothing changes: a peer without
//! either sees separate datagrams of the same sizes, and a lost one is lost
//! alone.
//!
//! - [`SendBatch::with_gso`] sends each run of equal-sized datagrams (the
//!   last of a run may be shorter, as GSO allows) as one segmented send, up
//!   to [`MAX_GSO_SEGMENTS`] and one datagram's worth of bytes per run, and
//!   still many runs per `sendmmsg`. If the kernel refuses (an old kernel,
//!   a device without checksum offload: `EIO`, `EINVAL`), it stops trying
//!   and sends the same datagrams without it.
//! - [`Socket::set_gro`] asks for coalesced receives; [`Socket::recv_batch`]
//!   cuts them at the segment size the kernel reports.
//! - [`CallCounts::segmented`] says how many datagrams went through either.
//!
//! Elsewhere than Linux both fall back to one call per datagram, counted
//! the same way, and neither offload is used.

use std::io;
use std::net::SocketAddr;

use msg_proto::Message;

use crate::{Error, Socket};

/// The most datagrams one call moves: Linux accepts up to 1024 (UIO_MAXIOV)
/// per `sendmmsg` or `recvmmsg`, and past a few dozen the call's cost is
/// already spread thin (quinn-udp uses 32).
pub const MAX_BATCH: usize = 64;

/// The most datagrams one GSO send carries: the kernel's `UDP_MAX_SEGMENTS`,
/// 64 when GSO came in (4.18) and raised to 128 since; the lower one works
/// on every kernel that has GSO. A segment must also fit the path's MTU
/// (on loopback, 64 KiB): one that does not is refused with `EINVAL`, and
/// the batch goes on without GSO.
pub const MAX_GSO_SEGMENTS: usize = 64;

/// How many system calls moved how many datagrams.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CallCounts {
    /// System calls made, including those that found nothing to receive
    /// (`EWOULDBLOCK`) or no room to send.
    pub calls: u64,
    /// Datagrams they moved.
    pub datagrams: u64,
    /// Of [`CallCounts::datagrams`], how many were carried as segments of
    /// a larger send or receive: sent with GSO (`UDP_SEGMENT`) in a run of
    /// two or more, or received coalesced by GRO (`UDP_GRO`).
    pub segmented: u64,
}

impl CallCounts {
    /// Datagrams per call, `None` before the first call.
    pub fn per_call(&self) -> Option<f64> {
        (self.calls > 0).then(|| self.datagrams as f64 / self.calls as f64)
    }

    /// What was counted since `earlier`.
    #[must_use]
    pub fn since(&self, earlier: &Self) -> Self {
        Self {
            calls: self.calls.saturating_sub(earlier.calls),
            datagrams: self.datagrams.saturating_sub(earlier.datagrams),
            segmented: self.segmented.saturating_sub(earlier.segmented),
        }
    }
}

mod recv;
mod send;

pub use recv::RecvBatch;
pub use send::SendBatch;
pub(crate) use send::send_encoded_std;

impl Socket {
    /// Asks the kernel to hand this socket runs of datagrams coalesced
    /// (`UDP_GRO`), which [`Socket::recv_batch`] cuts apart again; a plain
    /// [`Socket::recv_from`] would take a coalesced run as one datagram,
    /// so use only `recv_batch` on a socket with GRO on.
    ///
    /// # Errors
    ///
    /// The kernel's refusal (Linux before 5.0), or
    /// [`io::ErrorKind::Unsupported`]
    /// elsewhere than Linux; the socket works as before either way.
    pub fn set_gro(&self, on: bool) -> io::Result<()> {
        #[cfg(target_os = "linux")]
        {
            linux::set_gro(&self.io.sock_ref(), on)
        }
        #[cfg(not(target_os = "linux"))]
        {
            let _ = on;
            Err(std::io::ErrorKind::Unsupported.into())
        }
    }

    /// Sends each of `msgs` as one datagram to the connected peer, with
    /// as few system calls as the platform allows (see the module docs).
    ///
    /// # Errors
    ///
    /// [`Error::NotConnected`]; [`Error::TooLarge`] if a message does not
    /// fit a datagram (nothing of its group of up to [`MAX_BATCH`] is sent,
    /// the groups before it were); [`Error::Send`], in which case some of
    /// the messages before the failed one may have been sent.
    pub async fn send_batch(
        &mut self,
        msgs: &[Message],
        batch: &mut SendBatch,
    ) -> Result<(), Error> {
        let addr = self
            .peer
            .filter(|_| self.connected)
            .ok_or(Error::NotConnected)?;
        for chunk in msgs.chunks(MAX_BATCH) {
            batch.encode(chunk, &mut self.framing, &addr)?;
            self.send_encoded(batch)
                .await
                .map_err(|source| Error::Send { addr, source })?;
        }
        Ok(())
    }

    /// Receives at least one datagram, and as many as are waiting up to
    /// [`RecvBatch::len`], in one call where the platform allows; appends
    /// the valid messages and their senders to `out` (datagrams that are
    /// not valid msg messages are counted and skipped, as by
    /// [`Socket::recv_from`], so `out` may gain none).
    ///
    /// # Errors
    ///
    /// [`Error::Recv`].
    pub async fn recv_batch(
        &mut self,
        batch: &mut RecvBatch,
        out: &mut Vec<(Message, SocketAddr)>,
    ) -> Result<(), Error> {
        batch.got.clear();
        self.recv_datagrams(batch).await.map_err(Error::Recv)?;
        batch.take(&mut self.framing, out);
        Ok(())
    }

    #[cfg(target_os = "linux")]
    async fn send_encoded(&mut self, batch: &mut SendBatch) -> io::Result<()> {
        let max_run = self.peer.map_or(crate::MAX_PAYLOAD_V4, |peer| {
            crate::Family::of(&peer).max_payload()
        });
        while let Some(call) = batch.next_call(max_run) {
            let mut calls = 0;
            let moved = self
                .io
                .send_with(|socket| {
                    calls += 1;
                    batch.sendmmsg(socket, call)
                })
                .await;
            batch.counts.calls += calls;
            batch.on_call(moved)?;
        }
        Ok(())
    }

    #[cfg(not(target_os = "linux"))]
    async fn send_encoded(&mut self, batch: &mut SendBatch) -> io::Result<()> {
        let mut start = 0;
        for &end in &batch.ends {
            batch.counts.calls += 1;
            self.io.send(&batch.buf[start..end], None).await?;
            batch.counts.datagrams += 1;
            start = end;
        }
        Ok(())
    }

    #[cfg(target_os = "linux")]
    async fn recv_datagrams(&mut self, batch: &mut RecvBatch) -> io::Result<()> {
        batch.prepare();
        let RecvBatch { slots, got, counts } = batch;
        self.io
            .recv_with(|socket| {
                counts.calls += 1;
                linux::recvmmsg(socket, slots, got, 0)
            })
            .await?;
        // The datagrams are counted as `recv_batch` cuts the slots.
        Ok(())
    }

    #[cfg(not(target_os = "linux"))]
    async fn recv_datagrams(&mut self, batch: &mut RecvBatch) -> io::Result<()> {
        batch.prepare();
        let slot = &mut batch.slots[0];
        batch.counts.calls += 1;
        let (len, from) = self.io.recv_from(slot).await?;
        // `recv_from` appended the datagram to the empty slot.
        batch.got.push(Received {
            len,
            from,
            segment: None,
        });
        Ok(())
    }
}

/// The system calls and socket options, on buffers the kernel reads or
/// fills.
#[cfg(target_os = "linux")]
mod linux;

/// `UDP_GRO` on or off, for a socket of any engine's.
#[cfg(target_os = "linux")]
pub(crate) fn set_gro_on(socket: &socket2::SockRef<'_>, on: bool) -> io::Result<()> {
    linux::set_gro(socket, on)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Framing;
    use msg_proto::Kind;

    async fn pair() -> (Socket, Socket) {
        let server = Socket::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let client = Socket::connect(server.local_addr().unwrap()).await.unwrap();
        (server, client)
    }

    /// Receives until `n` messages arrived (bounded: every datagram sent
    /// on loopback arrives, and a stuck test times out).
    async fn recv_n(
        server: &mut Socket,
        batch: &mut RecvBatch,
        n: usize,
    ) -> Vec<(Message, SocketAddr)> {
        let mut out = Vec::new();
        tokio::time::timeout(std::time::Duration::from_secs(5), async {
            while out.len() < n {
                server.recv_batch(batch, &mut out).await.unwrap();
            }
        })
        .await
        .expect("every datagram arrives on loopback");
        out
    }

    #[tokio::test]
    async fn a_batch_arrives_as_separate_datagrams_in_order() {
        let (mut server, mut client) = pair().await;
        let msgs: Vec<Message> = (0..100u64)
            .map(|seq| Message::new(Kind::Discard, seq, vec![b'x'; seq as usize]))
            .collect();
        let mut send = SendBatch::new();
        client.send_batch(&msgs, &mut send).await.unwrap();
        let counts = send.counts();
        assert_eq!(counts.datagrams, 100);
        let mut recv = RecvBatch::new(32);
        let got = recv_n(&mut server, &mut recv, 100).await;
        let from = client.local_addr().unwrap();
        for (seq, (msg, peer)) in got.iter().enumerate() {
            assert_eq!((msg.seq, msg.body.len(), *peer), (seq as u64, seq, from));
        }
        if cfg!(target_os = "linux") {
            // 100 datagrams, at most 64 per call: two calls when the
            // send buffer has room, as on loopback.
            assert_eq!(counts.calls, 2, "{counts:?}");
            // All 100 were waiting: at most 32 per receive.
            assert!(
                recv.counts().per_call().unwrap() > 1.0,
                "{:?}",
                recv.counts()
            );
        }
    }

    #[tokio::test]
    async fn a_batch_receive_takes_the_largest_datagrams_whole() {
        let (mut server, mut client) = pair().await;
        let body = vec![7; crate::MAX_PAYLOAD_V4 - msg_proto::HEADER_LEN];
        let msgs = vec![Message::new(Kind::Data, 1, body.clone()); 3];
        client
            .send_batch(&msgs, &mut SendBatch::new())
            .await
            .unwrap();
        let got = recv_n(&mut server, &mut RecvBatch::new(4), 3).await;
        assert!(got.iter().all(|(msg, _)| msg.body == body));
    }

    #[tokio::test]
    async fn one_message_too_large_sends_none_of_its_chunk() {
        let (_server, mut client) = pair().await;
        let msgs = vec![
            Message::new(Kind::Data, 1, "fits"),
            Message::new(Kind::Data, 2, vec![0; crate::MAX_PAYLOAD_V4]),
        ];
        let mut send = SendBatch::new();
        let err = client.send_batch(&msgs, &mut send).await.unwrap_err();
        assert!(matches!(err, Error::TooLarge { .. }), "{err}");
        assert_eq!(send.counts(), CallCounts::default());
    }

    #[tokio::test]
    async fn invalid_datagrams_in_a_batch_are_counted_and_skipped() {
        let (mut server, mut client) = pair().await;
        let addr = server.local_addr().unwrap();
        client.send_raw_to(b"not msg", addr).await.unwrap();
        client
            .send_batch(&[Message::new(Kind::Data, 2, "ok")], &mut SendBatch::new())
            .await
            .unwrap();
        let got = recv_n(&mut server, &mut RecvBatch::new(8), 1).await;
        assert_eq!(got[0].0.seq, 2);
        assert_eq!(server.invalid_datagrams(), 1);
    }

    #[tokio::test]
    async fn authenticated_batches_are_tagged_and_checked() {
        let secret = msg_proto::auth::Secret::new(b"s3cret".to_vec()).unwrap();
        let (mut server, mut client) = pair().await;
        server.authenticate(&secret, msg_proto::auth::Role::Server, [1; 8]);
        client.authenticate(&secret, msg_proto::auth::Role::Client, [2; 8]);
        let msgs: Vec<Message> = (0..10)
            .map(|seq| Message::new(Kind::Data, seq, "t"))
            .collect();
        client
            .send_batch(&msgs, &mut SendBatch::new())
            .await
            .unwrap();
        let got = recv_n(&mut server, &mut RecvBatch::new(16), 10).await;
        assert_eq!(got.len(), 10);
        assert_eq!(server.auth_rejections().total(), 0);
    }

    /// The runtime-free send: a blocking std socket, the same encoding,
    /// runs and counts as the tokio socket's, authenticated here, and GSO
    /// where the kernel offers it; the datagrams arrive whole, in order.
    #[test]
    fn the_blocking_send_batches_as_the_tokio_one() {
        let secret = msg_proto::auth::Secret::new(b"s3cret".to_vec()).unwrap();
        let server = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        server
            .set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .unwrap();
        let peer = server.local_addr().unwrap();
        let client = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        client.connect(peer).unwrap();
        let mut framing = Framing::new();
        framing.authenticate(&secret, msg_proto::auth::Role::Client, [2; 8]);
        let msgs = discards(100, 32);
        let mut send = SendBatch::new().with_gso(true);
        crate::sync::send_batch(&client, &mut framing, peer, &msgs, &mut send).unwrap();
        let counts = send.counts();
        assert_eq!(counts.datagrams, 100);
        if cfg!(target_os = "linux") {
            assert_eq!(counts.calls, 2, "{counts:?}");
        }
        let mut opening = Framing::new();
        opening.authenticate(&secret, msg_proto::auth::Role::Server, [1; 8]);
        let (mut batch, mut got) = (RecvBatch::new(8), Vec::new());
        // Bounded: 100 datagrams, at least one per receive, each receive
        // within the socket's timeout.
        for _ in 0..100 {
            if got.len() == 100 {
                break;
            }
            let wait = crate::sync::Wait::Sleep;
            crate::sync::recv_batch(&server, &mut opening, &mut batch, &mut got, wait).unwrap();
        }
        let seqs: Vec<u64> = got.iter().map(|(msg, _)| msg.seq).collect();
        assert_eq!(seqs, (0..100).collect::<Vec<_>>());
        assert_eq!(opening.auth_rejections().total(), 0);
    }

    /// `n` discards of `len`-byte bodies.
    fn discards(n: u64, len: usize) -> Vec<Message> {
        (0..n)
            .map(|seq| Message::new(Kind::Discard, seq, vec![b'g'; len]))
            .collect()
    }

    #[tokio::test]
    async fn a_gso_batch_arrives_whole_and_in_order_at_a_gro_socket() {
        let (mut server, mut client) = pair().await;
        let gro = server.set_gro(true);
        let msgs = discards(100, 64);
        let mut send = SendBatch::new().with_gso(true);
        client.send_batch(&msgs, &mut send).await.unwrap();
        let mut recv = RecvBatch::new(8);
        let got = recv_n(&mut server, &mut recv, 100).await;
        for (seq, (msg, _)) in got.iter().enumerate() {
            assert_eq!((msg.seq, &msg.body[..]), (seq as u64, &[b'g'; 64][..]));
        }
        let (sent, received) = (send.counts(), recv.counts());
        assert_eq!(sent.datagrams, 100);
        assert_eq!(received.datagrams, 100, "{received:?}");
        if cfg!(target_os = "linux") {
            // Loopback offers both: 100 datagrams in runs of at most 64,
            // two send calls, and at least one receive that took a run.
            assert!(send.gso(), "loopback refused GSO");
            assert_eq!((sent.calls, sent.segmented), (2, 100), "{sent:?}");
            gro.expect("loopback refused GRO");
            assert!(received.segmented > 1, "{received:?}");
            assert!(received.calls < 50, "{received:?}");
        }
    }

    #[tokio::test]
    async fn a_gso_batch_arrives_as_datagrams_at_a_plain_socket() {
        // The kernel cuts the run for a socket that did not ask for GRO:
        // one `recv_from` per datagram, each whole.
        let (mut server, mut client) = pair().await;
        let mut msgs = discards(10, 100);
        // A shorter last datagram ends a run, as GSO allows.
        msgs.push(Message::new(Kind::Discard, 10, "short"));
        let mut send = SendBatch::new().with_gso(true);
        client.send_batch(&msgs, &mut send).await.unwrap();
        for sent in &msgs {
            let (msg, _) =
                tokio::time::timeout(std::time::Duration::from_secs(5), server.recv_from())
                    .await
                    .expect("every datagram arrives on loopback")
                    .unwrap();
            assert_eq!(&msg, sent);
        }
        if cfg!(target_os = "linux") {
            assert_eq!((send.counts().calls, send.counts().segmented), (1, 11));
        }
        assert_eq!(server.invalid_datagrams(), 0);
    }

    #[tokio::test]
    async fn authenticated_gso_batches_are_checked_datagram_by_datagram() {
        let secret = msg_proto::auth::Secret::new(b"s3cret".to_vec()).unwrap();
        let (mut server, mut client) = pair().await;
        server.authenticate(&secret, msg_proto::auth::Role::Server, [1; 8]);
        client.authenticate(&secret, msg_proto::auth::Role::Client, [2; 8]);
        let _ = server.set_gro(true);
        let msgs = discards(40, 16);
        client
            .send_batch(&msgs, &mut SendBatch::new().with_gso(true))
            .await
            .unwrap();
        let got = recv_n(&mut server, &mut RecvBatch::new(4), 40).await;
        assert!(got.iter().map(|(m, _)| m.seq).eq(0..40));
        assert_eq!(server.auth_rejections().total(), 0);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn runs_group_equal_sizes_and_end_at_a_shorter_one() {
        let plan = |start: usize, ends: &[usize], gso: Option<usize>| {
            let mut runs = [linux::Run::default(); MAX_BATCH];
            let n = linux::runs(start, ends, gso, &mut runs);
            // (first byte, end byte, datagrams, segment size)
            runs[..n]
                .iter()
                .map(|r| (r.from, r.end, r.datagrams, r.segment))
                .collect::<Vec<_>>()
        };
        // Without GSO every datagram is its own run.
        assert_eq!(
            plan(0, &[10, 20, 25], None),
            [(0, 10, 1, 10), (10, 20, 1, 10), (20, 25, 1, 5)]
        );
        // 10, 10, 5 | 10 | 30: a shorter one ends a run, a longer one
        // starts the next.
        assert_eq!(
            plan(0, &[10, 20, 25, 35, 65], Some(1000)),
            [(0, 25, 3, 10), (25, 35, 1, 10), (35, 65, 1, 30)]
        );
        // A run holds at most `max_run` bytes...
        assert_eq!(
            plan(5, &[15, 25, 35], Some(20)),
            [(5, 25, 2, 10), (25, 35, 1, 10)]
        );
        // ... and at most MAX_GSO_SEGMENTS datagrams.
        let ends: Vec<usize> = (1..=MAX_GSO_SEGMENTS + 1).collect();
        let runs = plan(0, &ends, Some(65_507));
        assert_eq!(
            runs,
            [
                (0, MAX_GSO_SEGMENTS, MAX_GSO_SEGMENTS, 1),
                (MAX_GSO_SEGMENTS, MAX_GSO_SEGMENTS + 1, 1, 1)
            ]
        );
        // At most MAX_BATCH runs per call; the rest wait for the next.
        let ends: Vec<usize> = (1..=MAX_BATCH + 3).map(|i| i * i).collect();
        assert_eq!(plan(0, &ends, Some(65_507)).len(), MAX_BATCH);
    }

    #[test]
    fn counts_per_call() {
        let counts = CallCounts {
            calls: 4,
            datagrams: 10,
            segmented: 6,
        };
        assert_eq!(counts.per_call(), Some(2.5));
        assert_eq!(CallCounts::default().per_call(), None);
        assert_eq!(
            counts.since(&CallCounts {
                calls: 1,
                datagrams: 2,
                segmented: 1,
            }),
            CallCounts {
                calls: 3,
                datagrams: 8,
                segmented: 5,
            }
        );
    }
}
