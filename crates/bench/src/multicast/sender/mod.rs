//! The sender: pings to the group and every receiver's answers, or a
//! stream to the group between two statistics requests, on the calling
//! thread with one blocking socket.
//!
//! Here the socket, how an answer's address names its receiver, and what
//! a run measured; `pings` the ping-pong and its flights, `stream` the
//! one-way stream and the statistics requests around it.

use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use bytes::Bytes;
use msg_net::group::{self, GroupOptions};
use msg_net::ping::Clock;
use msg_proto::Message;

use super::{Fanout, MAX_RECEIVERS, Receiver, retry};
use crate::error::Error;

mod pings;
mod stream;

/// The receive buffer the sender asks for: every receiver's answer to a
/// ping arrives at once, and 256 answers overflow the kernel's default
/// (about 208 KiB, at some 800 bytes of accounting per small datagram),
/// which would count as the receivers' loss what is the sender's.
const SENDER_RCVBUF: usize = 8 << 20;

/// The longest a read of a readable socket may block (never, unless the
/// datagram was dropped in between).
const READ_TIMEOUT: Duration = Duration::from_secs(1);

/// What a run measured, beside the receivers' own figures.
#[derive(Debug)]
pub(super) struct Measured {
    pub(super) sent: u64,
    pub(super) elapsed: Duration,
    pub(super) strangers: u64,
    pub(super) sender_overflow: Option<u64>,
}

/// The sender's socket and what it knows of the receivers.
#[derive(Debug)]
pub(super) struct Sender<'a> {
    socket: UdpSocket,
    group: SocketAddr,
    fanout: &'a Fanout,
    timeout: Duration,
    clock: Clock,
    /// The last sequence number of a ping or statistics request.
    seq: u64,
    receivers: Vec<Receiver>,
    /// A receiver's index by the address it answers from.
    index: HashMap<SocketAddr, usize>,
    /// Whether answers from new addresses are receivers (remote ones)
    /// rather than strangers.
    open: bool,
    strangers: u64,
    buf: Vec<u8>,
    out: Vec<u8>,
}

impl<'a> Sender<'a> {
    /// A socket that sends to `group` as `options` say; `known`: the
    /// built-in receivers' addresses, in order (`None`: remote receivers,
    /// learnt as they answer).
    pub(super) fn new(
        group: SocketAddr,
        options: &GroupOptions,
        fanout: &'a Fanout,
        known: Option<Vec<SocketAddr>>,
    ) -> Result<Self, Error> {
        let socket = group::sender(group, options)?;
        // As large as the kernel allows (net.core.rmem_max): a smaller
        // buffer is still a buffer, and its drops are counted apart.
        let _ = socket2::SockRef::from(&socket).set_recv_buffer_size(SENDER_RCVBUF);
        // A safety net: `recv` reads only once the socket is readable.
        socket.set_read_timeout(Some(READ_TIMEOUT))?;
        let open = known.is_none();
        let (receivers, index) = match known {
            Some(addrs) => (
                (1..)
                    .zip(&addrs)
                    .map(|(id, a)| Receiver::new(id, Some(*a)))
                    .collect(),
                addrs.iter().enumerate().map(|(i, a)| (*a, i)).collect(),
            ),
            None => (
                (1..=fanout.receivers.count())
                    .map(|id| Receiver::new(id, None))
                    .collect(),
                HashMap::new(),
            ),
        };
        Ok(Self {
            socket,
            group,
            fanout,
            timeout: fanout.timeout(),
            clock: Clock::new(),
            seq: 0,
            receivers,
            index,
            open,
            strangers: 0,
            buf: vec![0; 65_536],
            out: Vec::with_capacity(65_536),
        })
    }

    /// The receivers and their figures.
    pub(super) fn into_receivers(self) -> Vec<Receiver> {
        self.receivers
    }

    fn measured(&self, sent: u64, elapsed: Duration, overflow: Option<u64>) -> Measured {
        Measured {
            sent,
            elapsed,
            strangers: self.strangers,
            sender_overflow: overflow
                .zip(self.overflow())
                .map(|(before, after)| after.saturating_sub(before)),
        }
    }

    /// The datagrams the kernel dropped for the sender's socket, its
    /// buffer full (`SO_MEMINFO`); `None` where it does not tell.
    fn overflow(&self) -> Option<u64> {
        msg_net::kernel_udp_drops(&self.socket)
    }

    fn send(&mut self, msg: &Message) -> Result<(), Error> {
        self.out.clear();
        msg_proto::encode(msg, &mut self.out)?;
        loop {
            match self.socket.send_to(&self.out, self.group) {
                Ok(_) => return Ok(()),
                Err(err) if err.kind() == std::io::ErrorKind::Interrupted => {}
                Err(source) => {
                    return Err(Error::GroupSend {
                        group: self.group,
                        source,
                    });
                }
            }
        }
    }

    /// The next message from anyone until `until`: `None` when nothing
    /// (decodable) came by then.
    fn recv(&mut self, until: Instant) -> Result<Option<(Message, SocketAddr, Instant)>, Error> {
        let wait = until.saturating_duration_since(Instant::now());
        if !readable(&self.socket, wait)? {
            return Ok(None);
        }
        match self.socket.recv_from(&mut self.buf) {
            Ok((n, from)) => {
                let arrived = Instant::now();
                Ok(msg_proto::decode(Bytes::copy_from_slice(&self.buf[..n]))
                    .ok()
                    .map(|msg| (msg, from, arrived)))
            }
            Err(err) if retry(&err) => Ok(None),
            Err(err) => Err(err.into()),
        }
    }

    /// The receiver that answers from `from`: a known one, or (remote) the
    /// next expected one not yet heard from, or one more; `None` for a
    /// stranger.
    fn receiver(&mut self, from: SocketAddr) -> Option<usize> {
        if let Some(&i) = self.index.get(&from) {
            return Some(i);
        }
        if !self.open {
            self.strangers += 1;
            return None;
        }
        let i = match self.receivers.iter().position(|r| r.addr.is_none()) {
            Some(i) => i,
            None if self.receivers.len() < MAX_RECEIVERS as usize => {
                let id = u32::try_from(self.receivers.len()).unwrap_or(u32::MAX) + 1;
                self.receivers.push(Receiver::new(id, None));
                self.receivers.len() - 1
            }
            None => {
                self.strangers += 1;
                return None;
            }
        };
        self.receivers[i].addr = Some(from);
        self.index.insert(from, i);
        Some(i)
    }
}

/// Whether `socket` has a datagram to read within `wait`. On Linux
/// `ppoll`, whose timeout is a high-resolution timer: `SO_RCVTIMEO` (and
/// `poll`'s milliseconds) round up to the kernel's tick, up to 4 ms late,
/// which would hold an open loop's sends back by as much and count it as
/// latency.
#[cfg(target_os = "linux")]
fn readable(socket: &UdpSocket, wait: Duration) -> std::io::Result<bool> {
    use nix::poll::{PollFd, PollFlags, ppoll};
    use std::os::fd::AsFd;
    let mut fds = [PollFd::new(socket.as_fd(), PollFlags::POLLIN)];
    match ppoll(&mut fds, Some(wait.into()), None) {
        Ok(n) => Ok(n > 0),
        Err(nix::errno::Errno::EINTR) => Ok(false),
        Err(errno) => Err(errno.into()),
    }
}

/// Whether `socket` has a datagram to read within `wait`, as the receive
/// timeout tells (to the kernel's tick).
#[cfg(not(target_os = "linux"))]
fn readable(socket: &UdpSocket, wait: Duration) -> std::io::Result<bool> {
    // A zero timeout would mean "wait forever".
    socket.set_read_timeout(Some(wait.max(Duration::from_micros(1))))?;
    let mut byte = [0; 1];
    match socket.peek_from(&mut byte) {
        Ok(_) => Ok(true),
        Err(err) if retry(&err) => Ok(false),
        // A datagram larger than the byte: readable.
        Err(_) => Ok(true),
    }
}
