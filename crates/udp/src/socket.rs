//! [`Socket`]: a tokio UDP socket that speaks msg, one message per
//! datagram.

use std::io;
use std::net::SocketAddr;

use bytes::{Bytes, BytesMut};
use msg_proto::Message;
use msg_proto::auth::{Role, SESSION_ID_LEN, Secret};

use crate::{
    AuthRejections, Error, Framing, MAX_PAYLOAD_V6, Overhead, RECV_BUF_LEN, check_size, group, sys,
};

/// A UDP socket that speaks msg: one message per datagram.
#[derive(Debug)]
pub struct Socket {
    pub(crate) io: sys::Io,
    /// Set by [`Socket::connect`] and [`Socket::one_to_many`]; the sends
    /// without an address go there.
    pub(crate) peer: Option<SocketAddr>,
    /// Whether the kernel knows `peer` (a connected socket), or each send
    /// names it (a one-to-many socket, whose answers come from elsewhere).
    pub(crate) connected: bool,
    /// A joined socket's answering socket ([`Socket::join`]):
    /// [`Socket::send_to`] and [`Socket::send_raw_to`] send from it, since
    /// the joined socket's address is every receiver's on this host.
    answer: Option<sys::Io>,
    recv_buf: BytesMut,
    send_buf: BytesMut,
    /// The header, the tag, and the counts of what was dropped.
    pub(crate) framing: Framing,
}

impl Socket {
    /// Binds a socket to `addr` (port 0 picks a free port).
    ///
    /// # Errors
    ///
    /// [`Error::Bind`], for example when the address is in use.
    pub async fn bind(addr: SocketAddr) -> Result<Self, Error> {
        std::net::UdpSocket::bind(addr)
            .and_then(Self::from_std)
            .map_err(|source| Error::Bind { addr, source })
    }

    /// Binds an ephemeral port of the right family and connects it to
    /// `peer`, so that replies from anyone else are filtered by the kernel
    /// and an ICMP "port unreachable" surfaces as an error on receive.
    ///
    /// # Errors
    ///
    /// [`Error::Bind`] or [`Error::Connect`].
    pub async fn connect(peer: SocketAddr) -> Result<Self, Error> {
        let local: SocketAddr = match peer {
            SocketAddr::V4(_) => (std::net::Ipv4Addr::UNSPECIFIED, 0).into(),
            SocketAddr::V6(_) => (std::net::Ipv6Addr::UNSPECIFIED, 0).into(),
        };
        let socket = std::net::UdpSocket::bind(local).map_err(|source| Error::Bind {
            addr: local,
            source,
        })?;
        socket
            .connect(peer)
            .map_err(|source| Error::Connect { addr: peer, source })?;
        Self::from_std(socket).map_err(|source| Error::Bind {
            addr: local,
            source,
        })
    }

    /// An unconnected socket whose [`Socket::send`] goes to `dest`, a
    /// multicast group or (with `options.broadcast`) a broadcast address,
    /// and whose [`Socket::recv_from`] takes the answers of every receiver:
    /// see [`group::sender`].
    ///
    /// # Errors
    ///
    /// [`Error::Group`].
    pub fn one_to_many(dest: SocketAddr, options: &group::GroupOptions) -> Result<Self, Error> {
        let socket = group::sender(dest, options)?;
        let mut socket =
            Self::from_std(socket).map_err(|source| Error::Bind { addr: dest, source })?;
        socket.peer = Some(dest);
        Ok(socket)
    }

    /// A receiver of `group`: a socket bound to its port that joined it
    /// ([`group::receiver`]), receiving what is sent to the group, and
    /// answering ([`Socket::send_to`], [`Socket::send_raw_to`]) from a
    /// second socket of its own ([`group::answering`]), so that each
    /// receiver on a host answers from a port of its own. The framing,
    /// authentication included, is the same whichever socket sends.
    ///
    /// # Errors
    ///
    /// [`Error::Group`], or [`Error::Bind`] when the sockets cannot be
    /// registered with the tokio runtime.
    pub fn join(group: SocketAddr, options: &group::GroupOptions) -> Result<Self, Error> {
        let joined = group::receiver(group, options)?;
        let answer = group::answering(group)?;
        let addr = joined.local_addr().unwrap_or(group);
        let registered =
            |socket| Self::from_std(socket).map_err(|source| Error::Bind { addr, source });
        let mut socket = registered(joined)?;
        socket.answer = Some(registered(answer)?.io);
        Ok(socket)
    }

    /// Wraps a bound standard socket (made non-blocking here), for example
    /// one configured with `socket2` first. If it is connected,
    /// [`Socket::send`] sends to its peer.
    ///
    /// # Errors
    ///
    /// When it cannot be registered with the tokio runtime (there is none,
    /// or the operating system refuses).
    pub fn from_std(socket: std::net::UdpSocket) -> io::Result<Self> {
        let peer = socket.peer_addr().ok();
        Ok(Self {
            peer,
            connected: peer.is_some(),
            answer: None,
            io: sys::Io::new(socket)?,
            recv_buf: BytesMut::with_capacity(RECV_BUF_LEN),
            send_buf: BytesMut::with_capacity(RECV_BUF_LEN),
            framing: Framing::new(),
        })
    }

    /// A second handle on the same socket (a duplicated descriptor), with
    /// buffers of its own: one handle can send while the other waits to
    /// receive, as an open-loop sender must.
    ///
    /// # Errors
    ///
    /// The operating system's, for example when out of descriptors.
    ///
    /// A clone of an authenticated socket tags with the same session id and
    /// counter, from where the original stands: let only one handle send.
    pub fn try_clone(&self) -> io::Result<Self> {
        let mut clone = Self::from_std(self.io.try_clone()?)?;
        clone.framing = self.framing.for_clone();
        clone.peer = self.peer;
        if let Some(answer) = &self.answer {
            clone.answer = Some(sys::Io::new(answer.try_clone()?)?);
        }
        Ok(clone)
    }

    /// From now on, tags every framed datagram this socket sends (as `us`,
    /// with `session_id`, which must be random and fresh for each socket)
    /// and accepts only datagrams tagged by the other role with the same
    /// secret and not seen before. Raw sends and receives are untouched.
    pub fn authenticate(&mut self, secret: &Secret, us: Role, session_id: [u8; SESSION_ID_LEN]) {
        self.framing.authenticate(secret, us, session_id);
    }

    /// Asks the kernel for a receive buffer of `bytes` (`SO_RCVBUF`), so
    /// that a burst the listener cannot take at once waits instead of being
    /// dropped; returns the size granted (Linux doubles the request and
    /// caps it at `net.core.rmem_max` unless run as root).
    ///
    /// # Errors
    ///
    /// The operating system's.
    pub fn set_recv_buffer(&self, bytes: usize) -> io::Result<usize> {
        let sock = self.io.sock_ref();
        sock.set_recv_buffer_size(bytes)?;
        sock.recv_buffer_size()
    }

    /// Whether [`Socket::authenticate`] was called.
    pub fn is_authenticated(&self) -> bool {
        self.framing.is_authenticated()
    }

    /// What an authenticated socket dropped, by reason (all zero without
    /// [`Socket::authenticate`]).
    pub fn auth_rejections(&self) -> AuthRejections {
        self.framing.auth_rejections()
    }

    /// The local address.
    ///
    /// # Errors
    ///
    /// The operating system's, rarely.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.local_addr()
    }

    /// Where a joined socket's answers leave from ([`Socket::join`]): the
    /// wildcard address and the port the kernel picked; `None` for any
    /// other socket, which answers from [`Socket::local_addr`].
    ///
    /// # Errors
    ///
    /// The operating system's, rarely.
    pub fn answer_addr(&self) -> io::Result<Option<SocketAddr>> {
        self.answer.as_ref().map(sys::Io::local_addr).transpose()
    }

    /// Whether it sends to a group or a broadcast address
    /// ([`Socket::one_to_many`]), and so hears from many.
    pub fn is_one_to_many(&self) -> bool {
        self.peer.is_some() && !self.connected
    }

    /// The connected peer (or the group a one-to-many socket sends to), if
    /// any.
    pub fn peer(&self) -> Option<SocketAddr> {
        self.peer
    }

    /// How many datagrams were dropped because they were not valid msg
    /// messages.
    pub fn invalid_datagrams(&self) -> u64 {
        self.framing.invalid_datagrams()
    }

    /// A second handle on this socket as a std socket, for what needs no
    /// runtime: its kernel counts ([`crate::sync::kernel_drops`]) and what
    /// waits in it once the listener stops
    /// ([`crate::sync::discard_waiting`]).
    ///
    /// # Errors
    ///
    /// The operating system's, for example when out of descriptors.
    pub fn try_clone_std(&self) -> io::Result<std::net::UdpSocket> {
        self.io.try_clone()
    }

    /// Sends `msg` as one datagram to `addr` (from a joined socket's
    /// answering socket: [`Socket::join`]).
    ///
    /// # Errors
    ///
    /// [`Error::TooLarge`] before anything is sent, or [`Error::Send`].
    pub async fn send_to(&mut self, msg: &Message, addr: SocketAddr) -> Result<(), Error> {
        self.encode(msg, &addr)?;
        let from = self.answer.as_mut().unwrap_or(&mut self.io);
        from.send(&self.send_buf, Some(addr))
            .await
            .map_err(|source| Error::Send { addr, source })?;
        Ok(())
    }

    /// Sends `msg` as one datagram to the connected peer.
    ///
    /// # Errors
    ///
    /// [`Error::NotConnected`], [`Error::TooLarge`] or [`Error::Send`].
    pub async fn send(&mut self, msg: &Message) -> Result<(), Error> {
        let addr = self.peer.ok_or(Error::NotConnected)?;
        self.encode(msg, &addr)?;
        self.io
            .send(&self.send_buf, (!self.connected).then_some(addr))
            .await
            .map_err(|source| Error::Send { addr, source })?;
        Ok(())
    }

    fn encode(&mut self, msg: &Message, addr: &SocketAddr) -> Result<(), Error> {
        self.send_buf.clear();
        self.framing.encode(msg, addr, &mut self.send_buf)
    }

    /// Sends `payload` as one datagram with no msg header (raw mode), to
    /// `addr` (from a joined socket's answering socket: [`Socket::join`]).
    ///
    /// # Errors
    ///
    /// [`Error::TooLarge`] before anything is sent, or [`Error::Send`].
    pub async fn send_raw_to(&mut self, payload: &[u8], addr: SocketAddr) -> Result<(), Error> {
        check_size(payload.len(), Overhead::RAW, &addr)?;
        let from = self.answer.as_mut().unwrap_or(&mut self.io);
        from.send(payload, Some(addr))
            .await
            .map_err(|source| Error::Send { addr, source })?;
        Ok(())
    }

    /// Receives the next valid message and its sender.
    ///
    /// A datagram that does not decode is logged, counted (see
    /// [`Socket::invalid_datagrams`]) and skipped.
    ///
    /// # Errors
    ///
    /// [`Error::Recv`].
    pub async fn recv_from(&mut self) -> Result<(Message, SocketAddr), Error> {
        loop {
            let (datagram, peer) = self.recv_raw_from().await?;
            if let Some(msg) = self.framing.decode(datagram, peer) {
                return Ok((msg, peer));
            }
        }
    }

    /// As [`Socket::recv_from`], except that a datagram `answer` rewrites
    /// where it lies into its answer (returning `true`) goes back to its
    /// sender as it then stands, and is neither decoded nor returned: a
    /// listener answers a plain ping so (msg-net's `pong_in_place`), as
    /// sockperf's server echoes, without decoding the ping, encoding the
    /// pong or copying its body. `answer` gets the whole datagram and must
    /// leave it untouched when it returns `false`.
    ///
    /// Not on an authenticated socket: a tag covers each header, so there
    /// every datagram is checked and decoded as by [`Socket::recv_from`].
    ///
    /// # Errors
    ///
    /// [`Error::Recv`]. A failed answer is not an error of the receive:
    /// [`Incoming::Answered`] carries it.
    pub async fn recv_or_answer(
        &mut self,
        answer: impl Fn(&mut [u8]) -> bool,
    ) -> Result<Incoming, Error> {
        loop {
            let peer = self.recv_datagram().await?;
            if !self.framing.is_authenticated() && answer(&mut self.recv_buf) {
                // From the socket `send_to` would answer from.
                let from = self.answer.as_mut().unwrap_or(&mut self.io);
                let sent = from.send(&self.recv_buf, Some(peer)).await;
                let sent = sent
                    .map(drop)
                    .map_err(|source| Error::Send { addr: peer, source });
                return Ok(Incoming::Answered(peer, sent));
            }
            if let Some(msg) = self.framing.decode(self.recv_buf.split().freeze(), peer) {
                return Ok(Incoming::Message(msg, peer));
            }
        }
    }

    /// Receives the next datagram's bytes, whatever they are (raw mode).
    ///
    /// # Errors
    ///
    /// [`Error::Recv`].
    pub async fn recv_raw_from(&mut self) -> Result<(Bytes, SocketAddr), Error> {
        let peer = self.recv_datagram().await?;
        Ok((self.recv_buf.split().freeze(), peer))
    }

    /// The next datagram, as the whole of the receive buffer, and its
    /// sender.
    async fn recv_datagram(&mut self) -> Result<SocketAddr, Error> {
        // Reclaims the buffer when the previous datagram has been dropped,
        // so steady-state receiving does not allocate.
        self.recv_buf.clear();
        self.recv_buf.reserve(RECV_BUF_LEN);
        let (len, peer) = self
            .io
            .recv_from(&mut self.recv_buf)
            .await
            .map_err(Error::Recv)?;
        debug_assert!(len < RECV_BUF_LEN, "no datagram exceeds {MAX_PAYLOAD_V6}");
        debug_assert_eq!(len, self.recv_buf.len(), "one datagram a receive");
        Ok(peer)
    }
}

/// What [`Socket::recv_or_answer`] got.
#[derive(Debug)]
pub enum Incoming {
    /// The next valid message, and its sender.
    Message(Message, SocketAddr),
    /// A datagram answered where it lay, its sender, and whether the
    /// answer could be sent.
    Answered(SocketAddr, Result<(), Error>),
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::time::Duration;

    use msg_proto::Kind;

    use super::*;
    use crate::group::{GroupOptions, Iface};

    /// Every wait of these tests: loopback answers in microseconds.
    const WAIT: Duration = Duration::from_secs(5);

    fn on_lo() -> GroupOptions {
        GroupOptions {
            iface: Some(Iface::Addr([127, 0, 0, 1].into())),
            ..GroupOptions::default()
        }
    }

    /// Two receivers of one group on this host share its port but answer
    /// from ports of their own, so the sender hears two receivers, not
    /// one; with a secret on every side, both answers pass authentication
    /// (the tags are keyed by the address, whichever socket sends).
    #[tokio::test]
    async fn receivers_on_one_host_answer_from_ports_of_their_own() {
        let secret = Secret::new(b"a group's secret".to_vec()).unwrap();
        let mut first = Socket::join("239.255.77.11:0".parse().unwrap(), &on_lo()).unwrap();
        let group = first.local_addr().unwrap();
        let mut second = Socket::join(group, &on_lo()).unwrap();
        let mut sender = Socket::one_to_many(group, &on_lo()).unwrap();
        sender.authenticate(&secret, Role::Client, [0xcc; SESSION_ID_LEN]);
        let mut answer_ports = HashSet::new();
        for (receiver, id) in [(&mut first, 0xa1), (&mut second, 0xa2)] {
            receiver.authenticate(&secret, Role::Server, [id; SESSION_ID_LEN]);
            let answer = receiver.answer_addr().unwrap().expect("a joined socket");
            assert!(answer.ip().is_unspecified(), "{answer}");
            assert_ne!(answer.port(), group.port());
            answer_ports.insert(answer.port());
        }
        assert_eq!(answer_ports.len(), 2);

        sender
            .send(&Message::new(Kind::Ping, 1, "to all"))
            .await
            .unwrap();
        for receiver in [&mut first, &mut second] {
            let recv = tokio::time::timeout(WAIT, receiver.recv_from());
            let (ping, from) = recv.await.unwrap().unwrap();
            assert_eq!(ping.body, "to all");
            let pong = Message::new(Kind::Pong, ping.seq, "back");
            receiver.send_to(&pong, from).await.unwrap();
        }
        let mut heard = HashSet::new();
        for _ in 0..2 {
            let recv = tokio::time::timeout(WAIT, sender.recv_from());
            let (pong, from) = recv.await.unwrap().unwrap();
            assert_eq!((pong.kind, pong.seq), (Kind::Pong, 1));
            assert_eq!(from.ip(), std::net::Ipv4Addr::LOCALHOST);
            heard.insert(from.port());
        }
        assert_eq!(heard, answer_ports, "each answer from its receiver's port");
        assert_eq!(sender.auth_rejections().total(), 0);
    }

    /// A datagram `recv_or_answer`'s closure rewrites goes back to its
    /// sender as it then stands; one it leaves alone arrives decoded, as
    /// from `recv_from`; an authenticated socket never asks the closure.
    #[tokio::test]
    async fn a_datagram_answered_in_place_goes_back_as_it_stands() {
        let shout = |datagram: &mut [u8]| {
            let answered = datagram.ends_with(b"!");
            if answered {
                datagram.make_ascii_uppercase();
            }
            answered
        };
        let mut server = Socket::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let addr = server.local_addr().unwrap();
        let mut client = Socket::connect(addr).await.unwrap();
        let client_addr = client.local_addr().unwrap();

        client.send_raw_to(b"hello!", addr).await.unwrap();
        let got = tokio::time::timeout(WAIT, server.recv_or_answer(shout));
        match got.await.unwrap().unwrap() {
            Incoming::Answered(peer, sent) => {
                assert_eq!(peer, client_addr);
                sent.unwrap();
            }
            other => panic!("not answered: {other:?}"),
        }
        let back = tokio::time::timeout(WAIT, client.recv_raw_from());
        assert_eq!(&back.await.unwrap().unwrap().0[..], b"HELLO!");

        let data = Message::new(Kind::Data, 7, "left alone");
        client.send(&data).await.unwrap();
        let got = tokio::time::timeout(WAIT, server.recv_or_answer(shout));
        match got.await.unwrap().unwrap() {
            Incoming::Message(msg, peer) => assert_eq!((msg, peer), (data, client_addr)),
            other => panic!("not decoded: {other:?}"),
        }

        let secret = Secret::new(b"tagged".to_vec()).unwrap();
        server.authenticate(&secret, Role::Server, [1; SESSION_ID_LEN]);
        client.authenticate(&secret, Role::Client, [2; SESSION_ID_LEN]);
        let tagged = Message::new(Kind::Data, 8, "tagged!");
        client.send(&tagged).await.unwrap();
        let never = |_: &mut [u8]| -> bool { unreachable!("a tag covers the header") };
        let got = tokio::time::timeout(WAIT, server.recv_or_answer(never));
        match got.await.unwrap().unwrap() {
            Incoming::Message(msg, _) => assert_eq!(msg.body, tagged.body),
            other => panic!("not decoded: {other:?}"),
        }
    }

    /// Raw answers leave from the answering socket too; a socket that did
    /// not join answers from itself, as before.
    #[tokio::test]
    async fn raw_answers_too_and_only_joined_sockets_answer_elsewhere() {
        let mut receiver = Socket::join("239.255.77.12:0".parse().unwrap(), &on_lo()).unwrap();
        let group = receiver.local_addr().unwrap();
        let mut sender = Socket::one_to_many(group, &on_lo()).unwrap();
        sender.send_raw_to(b"raw", group).await.unwrap();
        let recv = tokio::time::timeout(WAIT, receiver.recv_raw_from());
        let (bytes, from) = recv.await.unwrap().unwrap();
        assert_eq!(&bytes[..], b"raw");
        receiver.send_raw_to(b"RAW", from).await.unwrap();
        let recv = tokio::time::timeout(WAIT, sender.recv_raw_from());
        let (bytes, answered_from) = recv.await.unwrap().unwrap();
        assert_eq!(&bytes[..], b"RAW");
        let answer = receiver.answer_addr().unwrap().unwrap();
        assert_eq!(answered_from.port(), answer.port());

        let unicast = Socket::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        assert_eq!(unicast.answer_addr().unwrap(), None);
    }
}
