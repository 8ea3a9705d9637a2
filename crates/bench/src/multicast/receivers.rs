//! The built-in receivers: N threads, each with its own socket joined to
//! the group and its own unicast socket to answer from.
//!
//! Every receiver of a group on one host binds the group's port (the
//! first picks it when asked for port 0), so an answer sent from that
//! socket would come from the same address whichever receiver sent it.
//! Each answers from a socket of its own instead (the interface's address,
//! or loopback, and a port of its own), which the sender knows before the
//! first ping: an answer's source address names its receiver.
//!
//! A receiver answers as `msg listen` does: a `Ping` with a `Pong`, a
//! statistics ping with what it counted, a `Discard` counted; anything
//! else is ignored. All sockets are bound and joined before the sender
//! starts, so nothing is sent to a receiver not yet there.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use bytes::Bytes;
use msg_net::DiscardCounter;
use msg_net::group::{self, GroupOptions, Iface};
use msg_proto::Kind;

use crate::error::Error;

/// How often a receiver waiting for a datagram looks whether it should
/// stop: the longest a run's end waits for its receivers.
const STOP_POLL: Duration = Duration::from_millis(20);

/// The largest datagram a receiver takes (any larger is cut, and then
/// not a msg message).
const RECV_LEN: usize = 65_536;

/// The receivers, running until [`BuiltIn::stop`].
#[derive(Debug)]
pub(super) struct BuiltIn {
    group: SocketAddr,
    addrs: Vec<SocketAddr>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<std::io::Result<()>>>,
}

impl BuiltIn {
    /// Joins `n` sockets to `group` (port 0: the first picks one, the
    /// others bind it) on `options`' interface and starts a thread for
    /// each.
    pub(super) fn start(group: SocketAddr, n: u32, options: &GroupOptions) -> Result<Self, Error> {
        let answer_from = SocketAddr::new(answer_ip(group.ip(), options.iface.as_ref()), 0);
        let mut group = group;
        let mut sockets = Vec::new();
        for _ in 0..n {
            let joined = group::receiver(group, options)?;
            group.set_port(joined.local_addr()?.port());
            let reply = UdpSocket::bind(answer_from)?;
            sockets.push((joined, reply));
        }
        let stop = Arc::new(AtomicBool::new(false));
        let mut started = Self {
            group,
            addrs: Vec::new(),
            stop,
            threads: Vec::new(),
        };
        for (i, (joined, reply)) in sockets.into_iter().enumerate() {
            started.addrs.push(reply.local_addr()?);
            joined.set_read_timeout(Some(STOP_POLL))?;
            let stop = Arc::clone(&started.stop);
            let thread = thread::Builder::new()
                .name(format!("msg-receiver-{}", i + 1))
                .spawn(move || answer(&joined, &reply, &stop))
                .map_err(|source| Error::Thread {
                    what: "a receiver thread",
                    source,
                })?;
            started.threads.push(thread);
        }
        Ok(started)
    }

    /// The group, with the port the receivers bound.
    pub(super) fn group(&self) -> SocketAddr {
        self.group
    }

    /// Where each receiver answers from, in order.
    pub(super) fn addrs(&self) -> Vec<SocketAddr> {
        self.addrs.clone()
    }

    /// Stops every receiver and waits for it (at most [`STOP_POLL`]
    /// each).
    pub(super) fn stop(mut self) -> Result<(), Error> {
        self.stop_threads()
    }

    fn stop_threads(&mut self) -> Result<(), Error> {
        self.stop.store(true, Ordering::Relaxed);
        let mut first = Ok(());
        for (i, thread) in self.threads.drain(..).enumerate() {
            let result = match thread.join() {
                Ok(Ok(())) => Ok(()),
                Ok(Err(source)) => Err(Error::Receiver {
                    id: i + 1,
                    source: Some(source),
                }),
                Err(_) => Err(Error::Receiver {
                    id: i + 1,
                    source: None,
                }),
            };
            first = first.and(result);
        }
        first
    }
}

impl Drop for BuiltIn {
    fn drop(&mut self) {
        let _ = self.stop_threads();
    }
}

/// The address a receiver answers from: the interface's, when it is
/// named by one of the group's version, or loopback.
fn answer_ip(group: IpAddr, iface: Option<&Iface>) -> IpAddr {
    match (group, iface) {
        (IpAddr::V4(_), Some(Iface::Addr(addr @ IpAddr::V4(_)))) => *addr,
        (IpAddr::V4(_), _) => Ipv4Addr::LOCALHOST.into(),
        (IpAddr::V6(_), _) => Ipv6Addr::LOCALHOST.into(),
    }
}

/// One receiver's loop: answers and counts until `stop`.
fn answer(joined: &UdpSocket, reply: &UdpSocket, stop: &AtomicBool) -> std::io::Result<()> {
    let mut buf = vec![0; RECV_LEN];
    let mut out = Vec::with_capacity(RECV_LEN);
    let mut counter = DiscardCounter::default();
    while !stop.load(Ordering::Relaxed) {
        let (n, from) = match joined.recv_from(&mut buf) {
            Ok(got) => got,
            Err(err) if super::retry(&err) => continue,
            Err(err) => return Err(err),
        };
        let Ok(msg) = msg_proto::decode(Bytes::copy_from_slice(&buf[..n])) else {
            continue;
        };
        match msg.kind {
            Kind::Discard => counter.count(msg.seq),
            Kind::Ping => {
                let Some(pong) = msg_net::ping::pong(&msg, &counter) else {
                    continue;
                };
                out.clear();
                if msg_proto::encode(&pong, &mut out).is_ok() {
                    // A full send buffer drops the answer, as a network
                    // would: the sender counts it lost.
                    let _ = reply.send_to(&out, from);
                }
            }
            _ => {}
        }
    }
    Ok(())
}
