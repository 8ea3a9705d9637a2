//! QUIC datagrams (`--quic-datagrams`, RFC 9221): each msg message in one
//! DATAGRAM frame of a QUIC connection, framed as a UDP datagram is (the
//! msg header and the body, the tag with a secret), so it is a kind of the
//! datagram family beside UDP and the Unix datagram socket.
//!
//! What QUIC keeps and what it does not: a datagram is encrypted and
//! congestion-controlled inside the connection, its boundary kept, but
//! never retransmitted (a lost one is lost, as over UDP) nor ordered. And
//! it must fit one QUIC packet: the path's MTU (1200 bytes of UDP payload
//! at first, more once quinn's MTU discovery has probed for it) less
//! QUIC's packet header, its AEAD tag and the frame's own header; quinn
//! says the result (`Connection::max_datagram_size`), and a message over
//! it is refused before anything is sent ([`QuicError::DatagramTooLarge`]),
//! naming the limit, as a UDP datagram over 65,507 bytes is.
//!
//! A listener is one endpoint that accepts connections (the handshake
//! within TLS's handshake timeout, at most `max_handshakes` at once) and
//! reads every connection's datagrams into one queue, each with its
//! sender's address, so the datagram serve loop serves it as it serves a
//! UDP socket; a reply goes back over the connection of that address.

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use msg_proto::Message;
use msg_proto::auth::{Role, SESSION_ID_LEN, Secret, UDP_TRAILER_LEN};
use msg_udp::{AuthRejections, Framing, Overhead};
use tokio::sync::mpsc;
use tracing::{debug, warn};

use crate::Error;
use crate::dgram::Datagrams;
use crate::limits::Limits;
use crate::log::RateLimited;
use crate::quic::{QuicError, Streams, handshake_error, server_config_for};
use crate::tls::{Peer, TlsClient, TlsServer};

mod conns;
mod unread;

use conns::{accept_loop, adopt};
pub(crate) use unread::Unread;
/// Why a raw client (no msg header) does not go over QUIC datagrams: a
/// listener answers raw datagrams, but a client's raw mode is UDP's and
/// the Unix datagram socket's only, so far.
pub(crate) const NO_RAW_CLIENT: &str = "raw mode over QUIC datagrams is for a listener only, so far: send msg's messages (no --raw) or use --udp";

/// How many received datagrams wait for the serve loop before a
/// connection's reader waits too (quinn then keeps, and at its own limit
/// drops, the oldest).
const QUEUE: usize = 1024;

/// A received datagram and who sent it.
type Received = (Bytes, SocketAddr);

/// What every handle on one endpoint shares.
struct Shared {
    endpoint: quinn::Endpoint,
    /// Each peer's connection, to answer it over.
    conns: Mutex<HashMap<SocketAddr, quinn::Connection>>,
    /// A listener's end of the queue, until its accepting task takes it:
    /// the queue closes when every connection's reader and the accepting
    /// task are gone (for a client, when its one connection closes).
    tx: Mutex<Option<mpsc::Sender<Received>>>,
    /// The listener's accepting task, stopped with it.
    task: Mutex<Option<tokio::task::AbortHandle>>,
    /// A client's one listener: why it closed the connection, when it
    /// said (a listener's many peers say only "done").
    listener: Option<SocketAddr>,
    closed: Mutex<Option<Closed>>,
    /// What the connections' readers took, against what arrived.
    unread: Arc<Unread>,
}

/// Why a client's connection to its listener closed, where the listener
/// said: its own words, or its refusal of this client's certificate (a
/// TLS alert; `the QUIC connection with ADDR is closed`, it said).
#[derive(Debug, Clone)]
pub(super) enum Closed {
    /// The listener's reason, made printable.
    By(String),
    /// The listener refused this client's certificate.
    Refused(crate::tls::ClientRefused),
}

impl Drop for Shared {
    fn drop(&mut self) {
        if let Some(task) = self.task.lock().expect("never poisoned").take() {
            task.abort();
        }
        self.endpoint.close(0u32.into(), b"done");
    }
}

/// A QUIC endpoint carrying msg's messages in datagrams: a client's one
/// connection, or a listener's many.
pub(crate) struct QuicDgram {
    shared: Arc<Shared>,
    rx: Arc<tokio::sync::Mutex<mpsc::Receiver<Received>>>,
    /// The listener a client is connected to.
    peer: Option<SocketAddr>,
    framing: Framing<SocketAddr>,
    send_buf: BytesMut,
    /// Datagrams this handle handed to quinn, to wait for at the end.
    sent: u64,
}

impl fmt::Debug for QuicDgram {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("QuicDgram")
            .field("addr", &self.shared.endpoint.local_addr().ok())
            .field("peer", &self.peer)
            .finish_non_exhaustive()
    }
}

impl QuicDgram {
    fn new(endpoint: quinn::Endpoint, peer: Option<SocketAddr>) -> (Self, mpsc::Sender<Received>) {
        let (tx, rx) = mpsc::channel(QUEUE);
        let this = Self {
            shared: Arc::new(Shared {
                endpoint,
                conns: Mutex::new(HashMap::new()),
                tx: Mutex::new(None),
                task: Mutex::new(None),
                listener: peer,
                closed: Mutex::new(None),
                unread: Arc::default(),
            }),
            rx: Arc::new(tokio::sync::Mutex::new(rx)),
            peer,
            framing: Framing::default(),
            send_buf: BytesMut::new(),
            sent: 0,
        };
        (this, tx)
    }

    /// Connects to `addr` with `tls`; the handshake within TLS's handshake
    /// timeout.
    ///
    /// # Errors
    ///
    /// [`QuicError`]: no handshake in time, a certificate refused, or a
    /// listener that takes no datagrams.
    pub(crate) async fn connect(addr: SocketAddr, tls: &TlsClient) -> Result<Self, QuicError> {
        let (endpoint, conn) = crate::quic::handshake(addr, tls).await?;
        if conn.max_datagram_size().is_none() {
            return Err(QuicError::NoDatagrams(addr));
        }
        let (this, tx) = Self::new(endpoint, Some(addr));
        adopt(&this.shared, conn, addr, tx, (1, None));
        Ok(this)
    }

    /// Binds a listener's endpoint on `addr`; it answers nobody until
    /// [`QuicDgram::start`].
    ///
    /// # Errors
    ///
    /// [`QuicError::Bind`].
    pub(crate) fn bind(addr: SocketAddr) -> Result<Self, QuicError> {
        let endpoint = crate::quic::bind_endpoint(addr)?;
        let (this, tx) = Self::new(endpoint, None);
        *this.shared.tx.lock().expect("never poisoned") = Some(tx);
        Ok(this)
    }

    /// The address it is bound to.
    pub(crate) fn local_addr(&self) -> io::Result<SocketAddr> {
        self.shared.endpoint.local_addr()
    }

    /// Starts accepting connections with `tls`'s certificate, within
    /// `limits`: at most `max_handshakes` handshakes and `max_conns`
    /// connections at once, each closed once it has sent no datagram for
    /// `idle_timeout`.
    ///
    /// # Errors
    ///
    /// [`QuicError::Config`].
    pub(crate) fn start(&self, tls: &TlsServer, limits: &Limits) -> Result<(), QuicError> {
        self.shared
            .endpoint
            .set_server_config(Some(server_config_for(tls.rustls_config(), Streams::None)?));
        let Some(tx) = self.shared.tx.lock().expect("never poisoned").take() else {
            return Ok(()); // started already
        };
        let task = tokio::spawn(accept_loop(
            Arc::downgrade(&self.shared),
            tx,
            tls.handshake_timeout(),
            *limits,
        ));
        if let Some(old) = self
            .shared
            .task
            .lock()
            .expect("never poisoned")
            .replace(task.abort_handle())
        {
            old.abort();
        }
        Ok(())
    }

    /// Another handle on the same endpoint and queue, with the same keys,
    /// for a split link's other half.
    pub(crate) fn try_clone(&self) -> Self {
        Self {
            shared: Arc::clone(&self.shared),
            rx: Arc::clone(&self.rx),
            peer: self.peer,
            framing: self.framing.for_clone(),
            send_buf: BytesMut::new(),
            sent: 0,
        }
    }

    fn conn(&self, peer: &SocketAddr) -> Result<quinn::Connection, QuicError> {
        self.shared
            .conns
            .lock()
            .expect("never poisoned")
            .get(peer)
            .cloned()
            .ok_or_else(|| self.gone(*peer))
    }

    /// The error for a connection with `peer` that is no more: with the
    /// reason the peer gave, if it gave one.
    fn gone(&self, addr: SocketAddr) -> QuicError {
        match self.shared.closed.lock().expect("never poisoned").clone() {
            Some(Closed::By(reason)) => QuicError::ClosedBy { addr, reason },
            Some(Closed::Refused(refused)) => QuicError::ClientRefused(refused),
            None => QuicError::Gone(addr),
        }
    }

    /// Refuses `len` bytes with `overhead` that do not fit one datagram of
    /// `conn` now.
    fn check(conn: &quinn::Connection, len: usize, overhead: Overhead) -> Result<(), QuicError> {
        let max = conn
            .max_datagram_size()
            .ok_or_else(|| QuicError::NoDatagrams(conn.remote_address()))?;
        if len.saturating_add(overhead.total()) > max {
            return Err(QuicError::DatagramTooLarge {
                len,
                max,
                mtu: conn.stats().path.current_mtu,
                overhead,
            });
        }
        Ok(())
    }

    /// Queues `bytes` as one datagram on `conn`.
    ///
    /// A client waits while its connection's queue is full: its own
    /// messages are all it has to send, and none is dropped unseen. A
    /// listener does not wait: its one loop answers every peer, and a peer
    /// that acknowledges nothing keeps its connection's congestion window
    /// shut, so waiting on it would stop the answers to everyone else for
    /// as long as that peer liked. quinn then drops that connection's
    /// oldest unsent datagrams for the new one, a loss that peer's own
    /// count of replies shows, as a full UDP socket buffer drops.
    async fn send_bytes(&mut self, conn: &quinn::Connection, bytes: Bytes) -> Result<(), Error> {
        let queued = match self.peer {
            Some(_) => conn.send_datagram_wait(bytes).await,
            None => conn.send_datagram(bytes),
        };
        queued.map_err(|err| {
            // The listener refused this client's certificate, after the
            // client's half of the handshake had ended: said as over TLS,
            // whether the refusal meets a send or the wait for a reply
            // (the send said only "connection lost").
            let refused = match &err {
                quinn::SendDatagramError::ConnectionLost(lost) => {
                    crate::quic::client_refused_by(lost)
                }
                _ => None,
            };
            refused.map_or_else(
                || QuicError::Send {
                    addr: conn.remote_address(),
                    reason: err.to_string(),
                },
                QuicError::ClientRefused,
            )
        })?;
        self.sent += 1;
        Ok(())
    }

    /// Sends `msg` to the listener it is connected to.
    ///
    /// # Errors
    ///
    /// [`QuicError::DatagramTooLarge`] (nothing sent), or the connection
    /// lost.
    pub(crate) async fn send(&mut self, msg: &Message) -> Result<(), Error> {
        let peer = self.peer.expect("a client's link has its peer");
        Datagrams::send_to(self, msg, &peer).await
    }

    /// The next message.
    ///
    /// # Errors
    ///
    /// The connection lost.
    pub(crate) async fn recv(&mut self) -> Result<Message, Error> {
        Ok(Datagrams::recv_from(self).await?.0)
    }

    /// Waits (at most `wait`) until quinn has put every datagram this
    /// handle sent on the wire, then closes the connection: closing at
    /// once would discard those still queued.
    pub(crate) async fn close(self, wait: Duration) {
        let Some(peer) = self.peer else { return };
        let Ok(conn) = self.conn(&peer) else { return };
        self.flush(wait).await;
        conn.close(0u32.into(), b"done");
        let _ = tokio::time::timeout(wait, self.shared.endpoint.wait_idle()).await;
    }

    /// Waits, at most `wait`, until what a client sent has left (quinn
    /// queues datagrams and sends them from its own task).
    pub(crate) async fn flush(&self, wait: Duration) {
        let Some(peer) = self.peer else { return };
        let Ok(conn) = self.conn(&peer) else { return };
        let sent = self.sent;
        let flushed = async {
            while conn.stats().frame_tx.datagram < sent {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        };
        let _ = tokio::time::timeout(wait, flushed).await;
    }

    /// Its endpoint (a handle to the same one).
    pub(crate) fn endpoint(&self) -> quinn::Endpoint {
        self.shared.endpoint.clone()
    }

    /// The count of datagrams that arrived and were never read, for a
    /// listener's summary.
    pub(crate) fn unread(&self) -> Arc<Unread> {
        Arc::clone(&self.shared.unread)
    }
}

impl Datagrams for QuicDgram {
    type Peer = SocketAddr;

    async fn recv_from(&mut self) -> Result<(Message, SocketAddr), Error> {
        loop {
            let (datagram, peer) = Datagrams::recv_raw_from(self).await?;
            if let Some(msg) = self.framing.decode(datagram, peer) {
                return Ok((msg, peer));
            }
        }
    }

    async fn send_to(&mut self, msg: &Message, peer: &SocketAddr) -> Result<(), Error> {
        let conn = self.conn(peer)?;
        let overhead = if self.framing.is_authenticated() {
            Overhead::framed_with_tag(UDP_TRAILER_LEN)
        } else {
            Overhead::FRAMED
        };
        Self::check(&conn, msg.body.len(), overhead)?;
        self.send_buf.clear();
        self.framing
            .encode_within(msg, &mut self.send_buf, |_, _| Ok(()))?;
        let bytes = self.send_buf.split().freeze();
        self.send_bytes(&conn, bytes).await
    }

    async fn recv_raw_from(&mut self) -> Result<(Bytes, SocketAddr), Error> {
        let mut rx = self.rx.lock().await;
        if let Some(received) = rx.recv().await {
            return Ok(received);
        }
        Err(self.gone(self.peer.unwrap_or(self.local_addr()?)).into())
    }

    async fn send_raw_to(&mut self, payload: &[u8], peer: &SocketAddr) -> Result<(), Error> {
        let conn = self.conn(peer)?;
        Self::check(&conn, payload.len(), Overhead::RAW)?;
        self.send_bytes(&conn, Bytes::copy_from_slice(payload))
            .await
    }

    fn authenticate(&mut self, secret: &Secret, us: Role, session_id: [u8; SESSION_ID_LEN]) {
        self.framing.authenticate(secret, us, session_id);
    }

    fn invalid_datagrams(&self) -> u64 {
        self.framing.invalid_datagrams()
    }

    fn auth_rejections(&self) -> AuthRejections {
        self.framing.auth_rejections()
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;
    use std::sync::atomic::Ordering;

    use msg_proto::Kind;

    use super::*;

    /// Datagrams nobody reads are dropped by quinn past its receive
    /// buffer, and counted: what arrived, less what the reader took, while
    /// the connection is open and after it closed.
    #[tokio::test]
    async fn datagrams_that_arrive_faster_than_they_are_read_are_counted() {
        let timeout = Duration::from_secs(5);
        let (server, client) = crate::tls::pinned_pair(timeout).unwrap();
        // A listener whose queue nobody reads: its connection's reader
        // takes QUEUE datagrams and one more, then waits.
        let listener = QuicDgram::bind((Ipv4Addr::LOCALHOST, 0).into()).unwrap();
        listener.start(&server, &Limits::default()).unwrap();
        let addr = listener.local_addr().unwrap();
        let mut sender = QuicDgram::connect(addr, &client).await.unwrap();
        // 2 MiB of bodies, twice quinn's receive buffer: some must go.
        const SENT: u64 = 2_048;
        let body = vec![b'x'; 1024];
        for seq in 0..SENT {
            let msg = Message::new(Kind::Data, seq, body.clone());
            sender.send(&msg).await.unwrap();
        }
        sender.flush(timeout).await;
        let unread = listener.unread();
        let arrived = || {
            let open = unread.open.lock().unwrap();
            open.iter()
                .map(|(conn, read)| (conn.stats().frame_rx.datagram, read.load(Ordering::Relaxed)))
                .next()
        };
        // Bounded: every datagram sent has arrived within the timeout.
        let started = std::time::Instant::now();
        while arrived().is_none_or(|(rx, _)| rx < SENT) {
            assert!(started.elapsed() < timeout, "arrived: {:?}", arrived());
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let (_, read) = arrived().unwrap();
        assert_eq!(read, QUEUE as u64 + 1, "what the reader took");
        let dropped = unread.total();
        assert_eq!(dropped, SENT - read);
        // Once the reader stops (the listener gone, and with it its
        // queue), the connection's count stays.
        drop(sender);
        drop(listener);
        let started = std::time::Instant::now();
        while !unread.open.lock().unwrap().is_empty() {
            assert!(started.elapsed() < timeout, "the connection never closed");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(unread.total(), dropped);
    }
}
