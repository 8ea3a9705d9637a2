//! The datagram family's kinds: UDP (msg-udp's [`Socket`](msg_udp::Socket))
//! and the Unix datagram socket ([`UnixDgram`]), and the one trait the
//! datagram serve loops are written against ([`Datagrams`]), so that each
//! loop is written once and compiled for each kind, UDP's unchanged.
//!
//! A Unix datagram socket (`AF_UNIX`, `SOCK_DGRAM`) keeps boundaries as
//! UDP does, but between processes on one machine it never loses a
//! datagram: a full receiver makes the sender wait (or, non-blocking,
//! fail with `EAGAIN`) instead of dropping. Its size limit is not a header
//! field's but the sending socket's buffer (`SO_SNDBUF` less 32 bytes of
//! the kernel's: 212,960 bytes with Linux's defaults). Peers are
//! addresses in the file system (or the abstract namespace); a client
//! that is not bound to one cannot be answered, so msg's client binds an
//! abstract name the kernel picks (autobind), which needs no file and
//! leaves nothing behind.

use std::fmt;
use std::hash::Hash;
use std::io;

use bytes::{Bytes, BytesMut};
use msg_proto::Message;
use msg_proto::auth::{Role, SESSION_ID_LEN, Secret};
use msg_tcp::unix::{SocketFile, UnixPath, UnixPeer};
use msg_udp::{AuthRejections, Framing, Overhead, RECV_BUF_LEN};

use socket2::{Domain, SockAddr, SockRef, Socket, Type};

use crate::ping::pong_in_place;
use crate::{Error, PeerAddr};

mod unix;
mod unix_peer;
mod unix_std;

pub(crate) use unix::UnixDgram;
pub(crate) use unix_peer::UnixAddr;
pub(crate) use unix_std::UnixStd;

/// What [`Datagrams::recv_or_answer`] got.
#[derive(Debug)]
pub(crate) enum Incoming<P> {
    /// The next valid message, and its sender.
    Message(Message, P),
    /// A plain ping answered where it lay, its sender, and whether the
    /// pong could be sent.
    Answered(P, Result<(), Error>),
}

/// What a datagram serve loop needs of its socket, whatever its kind.
pub(crate) trait Datagrams {
    /// Who a datagram came from, and where an answer goes.
    type Peer: Clone + Eq + Hash + fmt::Display + Into<PeerAddr>;

    /// The next valid message and its sender (the others are counted and
    /// dropped).
    async fn recv_from(&mut self) -> Result<(Message, Self::Peer), Error>;
    /// As [`Datagrams::recv_from`], except that a plain ping is answered
    /// where it lies ([`pong_in_place`]) and its pong sent back as it
    /// stands, neither decoded nor encoded; not on an authenticated
    /// socket, whose tag covers each header. A kind that receives each
    /// datagram into a buffer of its own and sends owned ones (QUIC's)
    /// would save nothing so, and keeps this default: every message
    /// decoded, for the serve loop to answer.
    async fn recv_or_answer(&mut self) -> Result<Incoming<Self::Peer>, Error> {
        let (msg, peer) = self.recv_from().await?;
        Ok(Incoming::Message(msg, peer))
    }
    /// Sends `msg` to `peer`.
    async fn send_to(&mut self, msg: &Message, peer: &Self::Peer) -> Result<(), Error>;
    /// The next datagram as it came, and its sender.
    async fn recv_raw_from(&mut self) -> Result<(Bytes, Self::Peer), Error>;
    /// Sends `payload` as one datagram to `peer`.
    async fn send_raw_to(&mut self, payload: &[u8], peer: &Self::Peer) -> Result<(), Error>;
    /// Tags every message from now on and checks every one received.
    fn authenticate(&mut self, secret: &Secret, us: Role, session_id: [u8; SESSION_ID_LEN]);
    /// Datagrams dropped as not msg messages.
    fn invalid_datagrams(&self) -> u64;
    /// Datagrams dropped by authentication.
    fn auth_rejections(&self) -> AuthRejections;
    /// Whether a datagram from a peer claims to come from this very
    /// socket: answered, it would come back to be answered again. Only a
    /// forger sends one (a kind whose senders cannot be forged says no).
    /// Asked once, before a serve loop: the address a socket is bound to
    /// does not change, and is no system call a datagram.
    fn itself(&self) -> impl Fn(&Self::Peer) -> bool + 'static {
        |_| false
    }
}

/// Whether `peer` may be the UDP socket bound to `own` itself: its port,
/// and its address, or a loopback one where the socket is bound to every
/// address (the kernel takes a forged source on `lo` only; from outside,
/// a source address of this host's is dropped as a martian).
fn may_be_itself(own: std::net::SocketAddr, peer: std::net::SocketAddr) -> bool {
    let (own_ip, ip) = (own.ip().to_canonical(), peer.ip().to_canonical());
    own.port() == peer.port() && (own_ip == ip || (own_ip.is_unspecified() && ip.is_loopback()))
}

impl Datagrams for msg_udp::Socket {
    type Peer = std::net::SocketAddr;

    async fn recv_from(&mut self) -> Result<(Message, Self::Peer), Error> {
        Ok(Self::recv_from(self).await?)
    }

    async fn recv_or_answer(&mut self) -> Result<Incoming<Self::Peer>, Error> {
        Ok(match Self::recv_or_answer(self, pong_in_place).await? {
            msg_udp::Incoming::Message(msg, peer) => Incoming::Message(msg, peer),
            msg_udp::Incoming::Answered(peer, sent) => {
                Incoming::Answered(peer, sent.map_err(Error::from))
            }
        })
    }

    async fn send_to(&mut self, msg: &Message, peer: &Self::Peer) -> Result<(), Error> {
        Ok(Self::send_to(self, msg, *peer).await?)
    }

    async fn recv_raw_from(&mut self) -> Result<(Bytes, Self::Peer), Error> {
        Ok(Self::recv_raw_from(self).await?)
    }

    async fn send_raw_to(&mut self, payload: &[u8], peer: &Self::Peer) -> Result<(), Error> {
        Ok(Self::send_raw_to(self, payload, *peer).await?)
    }

    fn authenticate(&mut self, secret: &Secret, us: Role, session_id: [u8; SESSION_ID_LEN]) {
        Self::authenticate(self, secret, us, session_id);
    }

    fn invalid_datagrams(&self) -> u64 {
        Self::invalid_datagrams(self)
    }

    fn auth_rejections(&self) -> AuthRejections {
        Self::auth_rejections(self)
    }

    fn itself(&self) -> impl Fn(&Self::Peer) -> bool + 'static {
        let own = self.local_addr().ok();
        move |peer| own.is_some_and(|own| may_be_itself(own, *peer))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A forged source naming the socket itself: its own address, or a
    /// loopback one at its port when it is bound to every address.
    #[test]
    fn a_source_that_may_be_the_socket_itself_is_told_apart() {
        let at = |text: &str| text.parse::<std::net::SocketAddr>().unwrap();
        assert!(may_be_itself(at("127.0.0.1:9000"), at("127.0.0.1:9000")));
        assert!(may_be_itself(at("0.0.0.0:9000"), at("127.0.0.1:9000")));
        assert!(may_be_itself(
            at("[::]:9000"),
            at("[::ffff:127.0.0.1]:9000")
        ));
        assert!(may_be_itself(at("[::]:9000"), at("[::1]:9000")));
        assert!(!may_be_itself(at("127.0.0.1:9000"), at("127.0.0.1:9001")));
        assert!(!may_be_itself(at("127.0.0.1:9000"), at("127.0.0.2:9000")));
        assert!(!may_be_itself(at("0.0.0.0:9000"), at("192.0.2.1:9000")));
    }
}
