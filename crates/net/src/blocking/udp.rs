//! The blocking engine's datagram listener: one thread on one socket, a
//! datagram per receive call or, for a batched UDP stream, up to
//! `config.udp_batch` per call; each datagram answered and shown on its
//! own, as the tokio engine's datagram serve loop does. The plain loop is
//! written once against [`StdDatagram`], for UDP and the Unix datagram
//! socket alike.

use std::fmt;
use std::hash::Hash;
use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::BytesMut;
use msg_proto::Message;
use msg_proto::auth::Role;
use msg_udp::Framing;
use tracing::{debug, warn};

use super::io::{Got, Wait, recv_datagram};
use super::wait::{STOP_CHECK, Spinner};
use crate::dgram::{UnixAddr, UnixStd};
use crate::log::{DropWarning, RateLimited, reply_failed, show_datagram};
use crate::ping::pong_in_place;
use crate::respond::{Response, UdpPeers};
use crate::{Error, Events, PeerAddr, ServeConfig, auth};

/// What the plain loop needs of a std datagram socket, whatever its kind.
pub(crate) trait StdDatagram {
    /// Who a datagram came from, and where an answer goes.
    type Peer: Clone + Eq + Hash + fmt::Display + Into<PeerAddr>;

    /// One datagram into `buf`, which then holds it alone, and its
    /// sender, sleeping or spinning as `wait` says.
    fn recv(&self, buf: &mut BytesMut, wait: Wait) -> io::Result<Got<Self::Peer>>;

    /// `msg`, framed into `buf`, sent to `to`.
    fn send_to(
        &self,
        framing: &mut Framing<Self::Peer>,
        buf: &mut BytesMut,
        msg: &Message,
        to: &Self::Peer,
    ) -> Result<(), Error>;

    /// `bytes`, a whole datagram already framed, sent to `to`.
    fn send_bytes(&self, bytes: &[u8], to: &Self::Peer) -> Result<(), Error>;
}

/// A UDP listener's sockets: the one it receives on, and the one it
/// answers from, the same but for a joined socket, which answers from a
/// port of its own (a group's receivers on one host share its port).
struct Udp<'a> {
    socket: &'a UdpSocket,
    answer: &'a UdpSocket,
}

impl AsFd for Udp<'_> {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.socket.as_fd()
    }
}

impl StdDatagram for Udp<'_> {
    type Peer = SocketAddr;

    fn recv(&self, buf: &mut BytesMut, wait: Wait) -> io::Result<Got<SocketAddr>> {
        recv_datagram(self.socket, buf, wait)
    }

    fn send_to(
        &self,
        framing: &mut Framing,
        buf: &mut BytesMut,
        msg: &Message,
        to: &SocketAddr,
    ) -> Result<(), Error> {
        Ok(send_datagram(self.answer, framing, buf, msg, *to)?)
    }

    fn send_bytes(&self, bytes: &[u8], to: &SocketAddr) -> Result<(), Error> {
        Ok(send_bytes(self.answer, bytes, *to)?)
    }
}

impl StdDatagram for UnixStd {
    type Peer = UnixAddr;

    fn recv(&self, buf: &mut BytesMut, wait: Wait) -> io::Result<Got<UnixAddr>> {
        msg_udp::sync::waiting(wait, |flags| Self::recv(self, buf, flags))
    }

    fn send_to(
        &self,
        framing: &mut Framing<UnixAddr>,
        buf: &mut BytesMut,
        msg: &Message,
        to: &UnixAddr,
    ) -> Result<(), Error> {
        self.send(framing, buf, msg, Some(to))
    }

    fn send_bytes(&self, bytes: &[u8], to: &UnixAddr) -> Result<(), Error> {
        Self::send_bytes(self, bytes, Some(to))
    }
}

/// The framing a listener's socket starts with: the tokio socket's own
/// (the same header, trailer, replay windows and flood log, whichever
/// engine moves the bytes), keyed with the secret, if any.
fn server_framing<P: Clone + Eq + Hash + fmt::Display>(config: &ServeConfig) -> Framing<P> {
    let mut framing = Framing::default();
    if let Some(secret) = &config.auth {
        framing.authenticate(&secret.secret, Role::Server, auth::session_id());
    }
    framing
}

/// Serves a UDP listener's `socket`, answering from `answer` (the same
/// socket, or a joined socket's own).
pub(super) fn serve_udp(
    socket: &UdpSocket,
    answer: &UdpSocket,
    config: &ServeConfig,
    events: &Events,
    stop: &AtomicBool,
) -> Result<(), Error> {
    let udp = Udp { socket, answer };
    if config.udp_batch > 1 {
        socket.set_read_timeout(Some(STOP_CHECK))?;
        return serve_udp_batched(&udp, config, events, stop, server_framing(config));
    }
    serve_datagrams(&udp, config, events, stop)
}

/// The plain loop: one datagram per receive, over any [`StdDatagram`]
/// (its read timeout set to [`STOP_CHECK`] by the caller, or here for
/// UDP and Unix sockets alike through [`socket2::SockRef`]).
pub(super) fn serve_datagrams<S: StdDatagram + AsFd>(
    socket: &S,
    config: &ServeConfig,
    events: &Events,
    stop: &AtomicBool,
) -> Result<(), Error> {
    socket2::SockRef::from(socket).set_read_timeout(Some(STOP_CHECK))?;
    let reply = config.reply;
    let mut peers = UdpPeers::new(config.limits.max_udp_peers);
    let mut dropped = DropWarning::default();
    let reply_failures = RateLimited::default();
    let mut framing = server_framing(config);
    let mut recv_buf = BytesMut::new();
    let mut send_buf = BytesMut::new();
    let mut spinner = Spinner::new(config.busy_poll);
    while !stop.load(Ordering::Relaxed) {
        let got = socket
            .recv(&mut recv_buf, spinner.wait())
            .map_err(msg_udp::Error::Recv)?;
        let Got::Data(peer) = got else {
            continue;
        };
        spinner.got_one();
        // A plain ping is answered from its own bytes, rewritten where
        // they lie into those of the pong `respond` would give, without
        // decoding it or encoding that, or copying its body. (Its peer
        // needs no counter: only statistics and discards do.)
        if !framing.is_authenticated() && pong_in_place(&mut recv_buf) {
            if let Err(err) = socket.send_bytes(&recv_buf, &peer) {
                warn!(%peer, "cannot reply: {err}");
            }
            continue;
        }
        let Some(msg) = framing.decode(recv_buf.split().freeze(), peer.clone()) else {
            // Counted (and logged) by the framing; published only when
            // one is dropped, so the common path stores nothing.
            config.counters.set_udp(
                framing.invalid_datagrams(),
                framing.auth_rejections().total(),
            );
            continue;
        };
        let Response { answer, show } = peers.respond(&msg, &peer, reply);
        if let Some(answer) = answer {
            if let Err(err) = socket.send_to(&mut framing, &mut send_buf, &answer, &peer) {
                reply_failed(&reply_failures, &peer, &err);
            }
        }
        if show && !show_datagram(events, &mut dropped, peer, &msg) {
            return Ok(());
        }
    }
    Ok(())
}

/// [`serve_udp`] taking up to `config.udp_batch` datagrams per receive
/// call (`recvmmsg`, and runs coalesced by GRO where the kernel offers it),
/// as the tokio engine's batched loop does, with msg-udp's same slots and
/// cutting; each datagram is still answered and shown on its own.
fn serve_udp_batched(
    udp: &Udp<'_>,
    config: &ServeConfig,
    events: &Events,
    stop: &AtomicBool,
    mut framing: Framing,
) -> Result<(), Error> {
    let reply = config.reply;
    let mut peers = UdpPeers::new(config.limits.max_udp_peers);
    let mut dropped = DropWarning::default();
    let reply_failures = RateLimited::default();
    // Only a loop that cuts coalesced runs apart may turn GRO on.
    if let Err(err) = msg_udp::sync::set_gro(udp.socket, true) {
        debug!("UDP GRO is not available ({err}); receiving datagram by datagram");
    }
    let mut batch = msg_udp::RecvBatch::new(config.udp_batch);
    let mut received: Vec<(Message, SocketAddr)> = Vec::with_capacity(batch.len());
    let mut send_buf = BytesMut::new();
    let mut spinner = Spinner::new(config.busy_poll);
    while !stop.load(Ordering::Relaxed) {
        // The messages of the last batch are gone by now, so its slots
        // are reclaimed, not reallocated.
        received.clear();
        let got = msg_udp::sync::recv_batch(
            udp.socket,
            &mut framing,
            &mut batch,
            &mut received,
            spinner.wait(),
        )
        .map_err(msg_udp::Error::Recv)?;
        if let Got::Nothing = got {
            continue;
        }
        spinner.got_one();
        config.counters.set_udp(
            framing.invalid_datagrams(),
            framing.auth_rejections().total(),
        );
        config.counters.set_udp_recv_calls(batch.counts());
        for (msg, peer) in received.drain(..) {
            let Response { answer, show } = peers.respond(&msg, &peer, reply);
            if let Some(answer) = answer {
                if let Err(err) = udp.send_to(&mut framing, &mut send_buf, &answer, &peer) {
                    reply_failed(&reply_failures, &peer, &err);
                }
            }
            if show && !show_datagram(events, &mut dropped, peer, &msg) {
                return Ok(());
            }
        }
    }
    Ok(())
}

fn send_datagram(
    socket: &UdpSocket,
    framing: &mut Framing,
    buf: &mut BytesMut,
    msg: &Message,
    addr: SocketAddr,
) -> Result<(), msg_udp::Error> {
    buf.clear();
    framing.encode(msg, &addr, buf)?;
    send_bytes(socket, buf, addr)
}

/// One framed datagram to `addr`.
fn send_bytes(socket: &UdpSocket, bytes: &[u8], addr: SocketAddr) -> Result<(), msg_udp::Error> {
    socket
        .send_to(bytes, addr)
        .map(drop)
        .map_err(|source| msg_udp::Error::Send { addr, source })
}
