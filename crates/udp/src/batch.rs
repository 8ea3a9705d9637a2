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
//! Elsewhere than Linux both fall back to one call per datagram, counted
//! the same way.

use std::net::SocketAddr;

use bytes::BytesMut;
use msg_proto::Message;

use crate::{Error, Socket};

/// The most datagrams one call moves: Linux accepts up to 1024 (UIO_MAXIOV)
/// per `sendmmsg` or `recvmmsg`, and past a few dozen the call's cost is
/// already spread thin (quinn-udp uses 32).
pub const MAX_BATCH: usize = 64;

/// How many system calls moved how many datagrams.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CallCounts {
    /// System calls made, including those that found nothing to receive
    /// (`EWOULDBLOCK`) or no room to send.
    pub calls: u64,
    /// Datagrams they moved.
    pub datagrams: u64,
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
        }
    }
}

/// The buffer of [`Socket::send_batch`], kept between calls so that
/// sending allocates nothing once warm.
#[derive(Debug, Default)]
pub struct SendBatch {
    buf: BytesMut,
    /// Where each encoded datagram ends in `buf`.
    ends: Vec<usize>,
    counts: CallCounts,
}

impl SendBatch {
    /// An empty batch buffer.
    pub fn new() -> Self {
        Self::default()
    }

    /// The calls made through this buffer so far.
    pub fn counts(&self) -> CallCounts {
        self.counts
    }
}

/// The receive slots of [`Socket::recv_batch`]: one 64 KiB buffer per
/// datagram a call may take.
#[derive(Debug)]
pub struct RecvBatch {
    slots: Vec<BytesMut>,
    /// Filled by the receive: each datagram's length and sender.
    got: Vec<(usize, SocketAddr)>,
    counts: CallCounts,
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
}

impl Socket {
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
        let addr = self.peer.ok_or(Error::NotConnected)?;
        for chunk in msgs.chunks(MAX_BATCH) {
            batch.buf.clear();
            batch.ends.clear();
            for msg in chunk {
                self.encode(msg, &addr)?;
                batch.buf.extend_from_slice(&self.send_buf);
                batch.ends.push(batch.buf.len());
            }
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
        for (slot, &(len, peer)) in batch.slots.iter_mut().zip(&batch.got) {
            let datagram = slot.split_to(len).freeze();
            if let Some(msg) = self.open(datagram, peer) {
                out.push((msg, peer));
            }
        }
        Ok(())
    }

    /// Decodes (and with a secret, checks) one datagram; `None`, counted
    /// and logged, when it is no valid msg message or fails
    /// authentication.
    fn open(&mut self, datagram: bytes::Bytes, peer: SocketAddr) -> Option<Message> {
        let len = datagram.len();
        let decoded = match &mut self.auth {
            Some(auth) => match auth.open(datagram, peer) {
                Ok(Some(msg)) => Ok(msg),
                Ok(None) => return None, // counted and warned about
                Err(err) => Err(err),
            },
            None => msg_proto::decode(datagram),
        };
        match decoded {
            Ok(msg) => Some(msg),
            Err(err) => {
                self.invalid += 1;
                self.invalid_log.note(
                    peer,
                    "invalid datagram",
                    &format_args!("{err} ({len} bytes)"),
                );
                None
            }
        }
    }

    #[cfg(target_os = "linux")]
    async fn send_encoded(&mut self, batch: &mut SendBatch) -> std::io::Result<()> {
        let SendBatch { buf, ends, counts } = batch;
        let mut sent = 0;
        while sent < ends.len() {
            let start = if sent == 0 { 0 } else { ends[sent - 1] };
            let n = self
                .io
                .send_with(|socket| {
                    counts.calls += 1;
                    linux::sendmmsg(socket, &buf[..], start, &ends[sent..])
                })
                .await?;
            counts.datagrams += n as u64;
            sent += n;
        }
        Ok(())
    }

    #[cfg(not(target_os = "linux"))]
    async fn send_encoded(&mut self, batch: &mut SendBatch) -> std::io::Result<()> {
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
    async fn recv_datagrams(&mut self, batch: &mut RecvBatch) -> std::io::Result<()> {
        let RecvBatch { slots, got, counts } = batch;
        for slot in slots.iter_mut() {
            // Reclaims the slot once the messages cut from it last time
            // are dropped; a slot not used last time is ready as it is.
            slot.clear();
            slot.reserve(crate::RECV_BUF_LEN);
        }
        self.io
            .recv_with(|socket| {
                counts.calls += 1;
                linux::recvmmsg(socket, slots, got)
            })
            .await?;
        counts.datagrams += got.len() as u64;
        Ok(())
    }

    #[cfg(not(target_os = "linux"))]
    async fn recv_datagrams(&mut self, batch: &mut RecvBatch) -> std::io::Result<()> {
        let slot = &mut batch.slots[0];
        slot.clear();
        slot.reserve(crate::RECV_BUF_LEN);
        batch.counts.calls += 1;
        let (len, peer) = self.io.recv_from(slot).await?;
        batch.counts.datagrams += 1;
        // `recv_from` appended the datagram to the empty slot.
        batch.got.push((len, peer));
        Ok(())
    }
}

/// The two system calls, on buffers the kernel reads or fills.
#[cfg(target_os = "linux")]
mod linux {
    use std::io;
    use std::mem::{size_of, zeroed};
    use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6, UdpSocket};
    use std::os::fd::AsRawFd;

    use bytes::{BufMut, BytesMut};

    use super::MAX_BATCH;

    /// Sends the datagrams that end at `ends` in `buf` (the first starts at
    /// `start`, each next one where the one before ended) on a connected
    /// socket in one `sendmmsg`; returns how many the kernel took (at
    /// least one), or `EWOULDBLOCK` when there was room for none.
    pub(super) fn sendmmsg(
        socket: &UdpSocket,
        buf: &[u8],
        start: usize,
        ends: &[usize],
    ) -> io::Result<usize> {
        let n = ends.len().min(MAX_BATCH);
        // SAFETY: all-zero `iovec`s and `mmsghdr`s are valid values (null
        // pointers, zero lengths).
        let mut iovs: [libc::iovec; MAX_BATCH] = unsafe { zeroed() };
        let mut hdrs: [libc::mmsghdr; MAX_BATCH] = unsafe { zeroed() };
        let mut from = start;
        for ((iov, hdr), &end) in iovs.iter_mut().zip(hdrs.iter_mut()).zip(&ends[..n]) {
            let datagram = &buf[from..end];
            // The kernel only reads through this pointer.
            iov.iov_base = datagram.as_ptr().cast_mut().cast();
            iov.iov_len = datagram.len();
            // A connected socket: no address.
            hdr.msg_hdr.msg_iov = iov;
            hdr.msg_hdr.msg_iovlen = 1;
            from = end;
        }
        // SAFETY: each header points at one iovec, which points into
        // `buf`; all of them outlive the call, and `n` headers are
        // initialised.
        let sent =
            unsafe { libc::sendmmsg(socket.as_raw_fd(), hdrs.as_mut_ptr(), n as libc::c_uint, 0) };
        if sent < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(sent as usize)
    }

    /// Receives up to `slots.len()` datagrams in one `recvmmsg`, each into
    /// the spare capacity of its slot (which must hold at least
    /// [`RECV_BUF_LEN`](crate::RECV_BUF_LEN) bytes, more than any
    /// datagram), advancing the slot over what arrived; their lengths and
    /// senders go to `got`. `EWOULDBLOCK` when none was waiting.
    pub(super) fn recvmmsg(
        socket: &UdpSocket,
        slots: &mut [BytesMut],
        got: &mut Vec<(usize, SocketAddr)>,
    ) -> io::Result<()> {
        let n = slots.len().min(MAX_BATCH);
        // SAFETY: all-zero `iovec`s, `mmsghdr`s and `sockaddr_storage`s
        // are valid values.
        let mut iovs: [libc::iovec; MAX_BATCH] = unsafe { zeroed() };
        let mut hdrs: [libc::mmsghdr; MAX_BATCH] = unsafe { zeroed() };
        let mut names: [libc::sockaddr_storage; MAX_BATCH] = unsafe { zeroed() };
        for (((iov, hdr), name), slot) in iovs
            .iter_mut()
            .zip(hdrs.iter_mut())
            .zip(names.iter_mut())
            .zip(slots.iter_mut())
        {
            debug_assert!(slot.capacity() - slot.len() >= crate::RECV_BUF_LEN);
            let spare = slot.spare_capacity_mut();
            iov.iov_base = spare.as_mut_ptr().cast();
            iov.iov_len = spare.len();
            hdr.msg_hdr.msg_iov = iov;
            hdr.msg_hdr.msg_iovlen = 1;
            hdr.msg_hdr.msg_name = std::ptr::from_mut(name).cast();
            hdr.msg_hdr.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        }
        // SAFETY: each header points at one iovec over its slot's spare
        // capacity and at one address buffer, all of which outlive the
        // call; the kernel writes at most `iov_len` bytes and `msg_namelen`
        // address bytes. A null timeout: the socket is non-blocking.
        let received = unsafe {
            libc::recvmmsg(
                socket.as_raw_fd(),
                hdrs.as_mut_ptr(),
                n as libc::c_uint,
                0,
                std::ptr::null_mut(),
            )
        };
        if received < 0 {
            return Err(io::Error::last_os_error());
        }
        for ((hdr, name), slot) in hdrs
            .iter()
            .zip(&names)
            .zip(slots.iter_mut())
            .take(received as usize)
        {
            let len = hdr.msg_len as usize;
            // SAFETY: the kernel wrote `len` bytes at the start of the
            // spare capacity this slot's iovec covered, so they are
            // initialised.
            unsafe { slot.advance_mut(len) };
            let from = socket_addr(name, hdr.msg_hdr.msg_namelen)
                .ok_or_else(|| io::Error::other("a datagram from a non-IP address"))?;
            got.push((len, from));
        }
        Ok(())
    }

    /// The IP address and port in a `sockaddr_storage` the kernel filled.
    fn socket_addr(name: &libc::sockaddr_storage, len: libc::socklen_t) -> Option<SocketAddr> {
        let len = len as usize;
        match libc::c_int::from(name.ss_family) {
            libc::AF_INET if len >= size_of::<libc::sockaddr_in>() => {
                // SAFETY: `sockaddr_storage` is large and aligned enough for
                // every address type, and the family says this is one.
                let sin = unsafe { &*std::ptr::from_ref(name).cast::<libc::sockaddr_in>() };
                Some(SocketAddr::V4(SocketAddrV4::new(
                    Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr)),
                    u16::from_be(sin.sin_port),
                )))
            }
            libc::AF_INET6 if len >= size_of::<libc::sockaddr_in6>() => {
                // SAFETY: as above.
                let sin6 = unsafe { &*std::ptr::from_ref(name).cast::<libc::sockaddr_in6>() };
                Some(SocketAddr::V6(SocketAddrV6::new(
                    Ipv6Addr::from(sin6.sin6_addr.s6_addr),
                    u16::from_be(sin6.sin6_port),
                    sin6.sin6_flowinfo,
                    sin6.sin6_scope_id,
                )))
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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

    #[test]
    fn counts_per_call() {
        let counts = CallCounts {
            calls: 4,
            datagrams: 10,
        };
        assert_eq!(counts.per_call(), Some(2.5));
        assert_eq!(CallCounts::default().per_call(), None);
        assert_eq!(
            counts.since(&CallCounts {
                calls: 1,
                datagrams: 2
            }),
            CallCounts {
                calls: 3,
                datagrams: 8
            }
        );
    }
}
