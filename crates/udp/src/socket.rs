//! [`Socket`]: a tokio UDP socket that speaks msg, one message per
//! datagram.

use std::io;
use std::net::SocketAddr;

use bytes::{Bytes, BytesMut};
use msg_proto::Message;
use msg_proto::auth::{Role, SESSION_ID_LEN, Secret};

use crate::{
    AuthRejections, Error, Framing, MAX_PAYLOAD_V6, Overhead, RECV_BUF_LEN, check_size, group,
    sync, sys,
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

    /// Receives and throws away, without waiting, the datagrams that wait
    /// in the socket's receive buffer, at most `max` of them; returns how
    /// many. For a listener that stops: what arrived but was never read is
    /// then counted, not silently lost with the socket.
    pub fn discard_waiting(&self, max: u64) -> u64 {
        sync::discard_waiting(&self.io.sock_ref(), max)
    }

    /// Sends `msg` as one datagram to `addr`.
    ///
    /// # Errors
    ///
    /// [`Error::TooLarge`] before anything is sent, or [`Error::Send`].
    pub async fn send_to(&mut self, msg: &Message, addr: SocketAddr) -> Result<(), Error> {
        self.encode(msg, &addr)?;
        self.io
            .send(&self.send_buf, Some(addr))
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

    /// Sends `payload` as one datagram with no msg header (raw mode).
    ///
    /// # Errors
    ///
    /// [`Error::TooLarge`] before anything is sent, or [`Error::Send`].
    pub async fn send_raw_to(&mut self, payload: &[u8], addr: SocketAddr) -> Result<(), Error> {
        check_size(payload.len(), Overhead::RAW, &addr)?;
        self.io
            .send(payload, Some(addr))
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

    /// Receives the next datagram's bytes, whatever they are (raw mode).
    ///
    /// # Errors
    ///
    /// [`Error::Recv`].
    pub async fn recv_raw_from(&mut self) -> Result<(Bytes, SocketAddr), Error> {
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
        Ok((self.recv_buf.split_to(len).freeze(), peer))
    }
}
