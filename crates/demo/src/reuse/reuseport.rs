//! Part 2: two UDP receivers on one port, both with SO_REUSEPORT. The
//! kernel gives each datagram to one of them, chosen by a hash of its
//! addresses and ports, so one sender's datagrams all go to the same one.

use std::collections::{HashMap, HashSet};
use std::io;
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::thread;
use std::time::Instant;

use socket2::{Domain, Protocol, Socket, Type};

use super::{Bind, DEADLINE, Flow, PER_SENDER, POLL, ROUNDS, SENDERS, Shared, datagram};
use crate::error::{Context as _, Error, Result};

pub(super) fn share() -> Result<Shared> {
    let first = receiver((Ipv4Addr::LOCALHOST, 0).into())?;
    let addr = first.local_addr()?;
    let receivers = [first, receiver(addr)?];
    // A third socket that does not ask to share: refused, whatever the
    // other two allow.
    let without_reuseport = Bind::of(&udp(addr, false));

    let start = Instant::now();
    let mut got = Got::default();
    // Kept open to the end, so that no two senders have the same port.
    let mut senders = Vec::new();
    let mut rounds = 0;
    while rounds < ROUNDS {
        rounds += 1;
        for _ in 0..SENDERS {
            let sender = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).what("cannot bind a sender")?;
            let port = sender.local_addr()?.port();
            for seq in 1..=PER_SENDER {
                let bytes = datagram(port, seq);
                let n = sender.send_to(&bytes, addr).what("cannot send")?;
                if n != bytes.len() {
                    return Err(Error::Broken(format!(
                        "a send took {n} bytes of {}",
                        bytes.len()
                    )));
                }
                got.expected.insert(bytes);
            }
            got.ports.insert(port, got.flows.len());
            got.flows.push(Flow {
                port,
                received: [0; 2],
            });
            senders.push(sender);
        }
        got.receive(&receivers, start)?;
        if got.received.iter().all(|&n| n > 0) || start.elapsed() > DEADLINE {
            break;
        }
    }
    Ok(Shared {
        port: addr.port(),
        senders: senders.len(),
        per_sender: PER_SENDER,
        rounds,
        sent: got.expected.len(),
        received: got.received,
        duplicates: got.duplicates,
        garbled: got.garbled,
        split_flows: got
            .flows
            .iter()
            .filter(|f| f.received.iter().all(|&n| n > 0))
            .count(),
        flows: got.flows,
        without_reuseport,
    })
}

/// A receiver on `addr`, with SO_REUSEPORT, non-blocking.
fn receiver(addr: SocketAddr) -> Result<UdpSocket> {
    let socket = udp(addr, true).with_what(|| format!("cannot bind {addr} with SO_REUSEPORT"))?;
    socket.set_nonblocking(true)?;
    Ok(socket)
}

/// A UDP socket bound to `addr`, SO_REUSEPORT as `reuse`.
fn udp(addr: SocketAddr, reuse: bool) -> io::Result<UdpSocket> {
    let socket = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    socket.set_reuse_port(reuse)?;
    socket.bind(&addr.into())?;
    Ok(socket.into())
}

/// What the two receivers got.
#[derive(Debug, Default)]
struct Got {
    /// Every datagram sent.
    expected: HashSet<Vec<u8>>,
    /// Every datagram received, by either.
    seen: HashSet<Vec<u8>>,
    received: [usize; 2],
    duplicates: usize,
    garbled: usize,
    flows: Vec<Flow>,
    /// Which flow a source port is.
    ports: HashMap<u16, usize>,
}

impl Got {
    /// Receives from both until every datagram sent so far has come, or
    /// [`DEADLINE`] after `start` (loopback loses none; if it did, the
    /// numbers would say so).
    fn receive(&mut self, receivers: &[UdpSocket; 2], start: Instant) -> Result<()> {
        let mut buf = [0; 64];
        while self.arrived() < self.expected.len() && start.elapsed() <= DEADLINE {
            for (i, receiver) in receivers.iter().enumerate() {
                // Bounded: never more than were sent, and one more.
                for _ in 0..=self.expected.len() {
                    match receiver.recv_from(&mut buf) {
                        Ok((n, from)) => self.add(i, &buf[..n], from),
                        Err(err) if err.kind() == io::ErrorKind::WouldBlock => break,
                        Err(err) => return Err(err).what("cannot receive"),
                    }
                }
            }
            if self.arrived() < self.expected.len() {
                thread::sleep(POLL);
            }
        }
        Ok(())
    }

    fn arrived(&self) -> usize {
        self.received.iter().sum::<usize>() + self.duplicates + self.garbled
    }

    fn add(&mut self, receiver: usize, bytes: &[u8], from: SocketAddr) {
        let flow = self.ports.get(&from.port()).copied();
        match flow {
            Some(flow) if self.expected.contains(bytes) => {
                if !self.seen.insert(bytes.to_vec()) {
                    self.duplicates += 1;
                    return;
                }
                self.received[receiver] += 1;
                self.flows[flow].received[receiver] += 1;
            }
            _ => self.garbled += 1,
        }
    }
}
