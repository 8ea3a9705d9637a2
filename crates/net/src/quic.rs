//! QUIC (`--quic`), with quinn: a connection over UDP whose one
//! bidirectional stream carries msg's frames exactly as a TCP stream does,
//! so that the handshake with a secret, files and commands run over it
//! unchanged.
//!
//! # Why a kind of stream, not a family of its own
//!
//! QUIC is a connection that carries many streams (and, with RFC 9221,
//! datagrams). msg opens one stream per connection: the client opens it
//! right after the handshake, the listener accepts it, and from then on it
//! is a reliable, ordered byte stream with an end, which is all the stream
//! family asks ([`Stream`]). So QUIC is a kind of stream (`StreamKind::Quic`)
//! beside TCP and the Unix sockets, and the serve loop, links, limits,
//! files and commands are the stream family's. What differs is how a
//! connection starts, and that is here:
//!
//! - TLS is QUIC's own handshake, not a layer over the stream: the
//!   certificates, pinning, CAs and mutual TLS are `--tls`'s
//!   ([`TlsServer`], [`TlsClient`]), their rustls configuration reused
//!   with ALPN [`ALPN`] and TLS 1.3 only (QUIC has no other).
//! - A listener accepts in a task of its own (`QuicListener`): each
//!   incoming connection makes its handshake within the handshake timeout,
//!   at most `max_handshakes` at once (more are refused at once, costing
//!   a packet), and then has the idle timeout to open its stream. Only a
//!   connection with its stream open reaches the serve loop, which then
//!   counts it against `max_conns` and serves it as any stream.
//! - A stream's end is its FIN. Closing a QUIC connection discards what
//!   was not yet delivered, so a writer that is dropped keeps the
//!   connection open (at most [`LINGER`]) until the peer has acknowledged
//!   everything, as the kernel does for a TCP socket closed with data in
//!   flight.

use std::fmt;
use std::future::Future;
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use msg_tcp::{Options, PeerAddr, Stream};
use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::mpsc;
use tracing::{debug, warn};

use crate::log::RateLimited;
use crate::tls::{Peer, TlsClient, TlsServer};

/// The application protocol both ends name in the handshake (ALPN): a
/// QUIC peer that speaks something else is refused there, before any
/// frame is read.
pub const ALPN: &[u8] = b"msg";

/// How long a QUIC connection may be silent before either end gives it up;
/// keep-alives every [`KEEP_ALIVE`] keep a quiet one open, so only a peer
/// that is gone reaches it, as TCP keepalive finds one. msg's own idle
/// timeout closes a live peer that sends nothing.
pub const MAX_IDLE: Duration = Duration::from_secs(60);

/// How often a quiet QUIC connection sends a keep-alive.
pub const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// How long a stream dropped with data in flight keeps its connection
/// open for the peer to acknowledge it.
pub const LINGER: Duration = Duration::from_secs(5);

/// Each QUIC endpoint's UDP socket buffers, both ways, as quinn's own
/// `perf` asks: quinn sends a GSO burst of up to ten packets at once and
/// keeps a window of them in flight, and the kernel's default receive
/// buffer (`net.core.rmem_default`, 208 KiB) drops bursts that arrive while
/// the endpoint's task is busy; each drop costs a loss recovery and a
/// halved congestion window (a 64 KiB stream on loopback lost hundreds of
/// datagrams a second so). The kernel caps it at `net.core.rmem_max` and
/// `wmem_max`.
pub const SOCKET_BUFFER: usize = 2 * 1024 * 1024;

/// How many bytes of QUIC datagrams each end queues, received and not
/// yet read, or sent and not yet on the wire.
pub const DATAGRAM_BUFFER: usize = 1024 * 1024;

/// What went wrong with QUIC: a socket, a configuration, a handshake.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum QuicError {
    /// The UDP socket under QUIC could not be bound.
    #[error("cannot bind a QUIC endpoint on {addr}")]
    Bind {
        /// Where.
        addr: SocketAddr,
        /// Why.
        source: io::Error,
    },
    /// rustls's configuration does not do QUIC (no TLS 1.3 suite).
    #[error("the TLS settings cannot be used for QUIC: {0}")]
    Config(String),
    /// quinn refused to start the connection (an address it cannot reach).
    #[error("cannot connect to {addr} over QUIC: {reason}")]
    Connect {
        /// The peer.
        addr: SocketAddr,
        /// quinn's words.
        reason: String,
    },
    /// Nothing answered the handshake in time: nobody at the address, or
    /// something there that is no QUIC listener (a plain UDP one, say).
    #[error("no QUIC handshake with {addr} within {}", humantime::format_duration(*.timeout))]
    Timeout {
        /// The peer.
        addr: SocketAddr,
        /// How long we waited.
        timeout: Duration,
    },
    /// The handshake failed: a certificate refused, another ALPN, a
    /// refusal by the peer.
    #[error("QUIC handshake with the {peer} failed: {reason}")]
    Handshake {
        /// Who is at the other end.
        peer: Peer,
        /// What went wrong.
        reason: String,
    },
    /// A client completed the handshake and opened no stream in time.
    #[error("the client opened no stream within {}", humantime::format_duration(*.0))]
    NoStream(Duration),
    /// The connection was lost before its stream opened.
    #[error("the QUIC connection was lost: {0}")]
    Lost(quinn::ConnectionError),
    /// `--quic-datagrams`: a message that does not fit one QUIC datagram,
    /// refused before anything is sent.
    #[error(
        "message is {len} bytes; a QUIC datagram holds at most {max} bytes on this connection \
         now (the path MTU, {mtu} bytes of UDP payload, less QUIC's packet header, AEAD tag and \
         DATAGRAM frame header){}; send it over QUIC streams (--quic) instead",
        overhead_text(*.overhead)
    )]
    DatagramTooLarge {
        /// The size the caller asked to send (the body, or a raw payload).
        len: usize,
        /// The largest datagram payload the connection takes now, msg's
        /// overhead included: quinn's `max_datagram_size`.
        max: usize,
        /// The path MTU quinn has now (UDP payload bytes).
        mtu: u16,
        /// What msg adds to the `len` bytes.
        overhead: msg_udp::Overhead,
    },
    /// `--quic-datagrams` with a peer that takes no QUIC datagrams.
    #[error("the QUIC peer {0} takes no datagrams (RFC 9221); is it msg listen --quic-datagrams?")]
    NoDatagrams(SocketAddr),
    /// A datagram could not be sent: the connection is lost.
    #[error("cannot send a QUIC datagram to {addr}: {reason}")]
    Send {
        /// The peer.
        addr: SocketAddr,
        /// quinn's words.
        reason: String,
    },
    /// The QUIC connection with a peer is closed: nothing more comes from
    /// it, nothing more goes to it.
    #[error("the QUIC connection with {0} is closed")]
    Gone(SocketAddr),
    /// The listener closed the connection and said why (its words, made
    /// safe to print): too many connections, or idle too long.
    #[error("the QUIC listener {addr} closed the connection: {reason}")]
    ClosedBy {
        /// The listener.
        addr: SocketAddr,
        /// What it said.
        reason: String,
    },
}

/// `, with msg's 28-byte header`, as a size error says what msg adds.
fn overhead_text(overhead: msg_udp::Overhead) -> String {
    match (overhead.header, overhead.tag) {
        (0, 0) => String::new(),
        (header, 0) => format!(", msg's {header}-byte header included"),
        (header, tag) => format!(", msg's {header}-byte header and {tag}-byte tag included"),
    }
}

/// The transport settings of both ends: an idle limit with keep-alives.
pub(crate) fn transport_config() -> Arc<quinn::TransportConfig> {
    let mut config = quinn::TransportConfig::default();
    config
        .max_idle_timeout(Some(
            quinn::IdleTimeout::try_from(MAX_IDLE).expect("60 s is a valid idle timeout"),
        ))
        .keep_alive_interval(Some(KEEP_ALIVE))
        // RFC 9221 datagrams (`--quic-datagrams`), on by default in quinn,
        // said here: what the peer may queue for us before quinn drops
        // the oldest.
        .datagram_receive_buffer_size(Some(DATAGRAM_BUFFER))
        .datagram_send_buffer_size(DATAGRAM_BUFFER);
    Arc::new(config)
}

/// A client's QUIC configuration from its TLS (a [`TlsClient`]'s
/// [`rustls_config`](TlsClient::rustls_config)): the same verification
/// and client certificate, with ALPN `msg`.
///
/// # Errors
///
/// [`QuicError::Config`] when the configuration has no TLS 1.3 suite.
pub fn client_config(rustls: &rustls::ClientConfig) -> Result<quinn::ClientConfig, QuicError> {
    let mut rustls = rustls.clone();
    rustls.alpn_protocols = vec![ALPN.to_vec()];
    let crypto =
        QuicClientConfig::try_from(rustls).map_err(|err| QuicError::Config(err.to_string()))?;
    let mut config = quinn::ClientConfig::new(Arc::new(crypto));
    config.transport_config(transport_config());
    Ok(config)
}

/// A listener's QUIC configuration from its TLS (a [`TlsServer`]'s
/// [`rustls_config`](TlsServer::rustls_config)), with ALPN `msg`.
///
/// # Errors
///
/// [`QuicError::Config`] when the configuration has no TLS 1.3 suite.
pub fn server_config(rustls: &rustls::ServerConfig) -> Result<quinn::ServerConfig, QuicError> {
    let mut rustls = rustls.clone();
    rustls.alpn_protocols = vec![ALPN.to_vec()];
    let crypto =
        QuicServerConfig::try_from(rustls).map_err(|err| QuicError::Config(err.to_string()))?;
    let mut config = quinn::ServerConfig::with_crypto(Arc::new(crypto));
    config.transport_config(transport_config());
    Ok(config)
}

/// Connects to `addr` over QUIC with `tls`, and opens the stream msg runs
/// over; the handshake within TLS's handshake timeout.
pub(crate) async fn connect(addr: SocketAddr, tls: &TlsClient) -> Result<QuicStream, QuicError> {
    let (endpoint, conn) = handshake(addr, tls).await?;
    let (send, recv) = conn.open_bi().await.map_err(QuicError::Lost)?;
    Ok(QuicStream::new(conn, send, recv, Some(endpoint)))
}

/// A client's endpoint and its connection to `addr` with `tls`, the
/// handshake made within TLS's handshake timeout: for a stream
/// (`--quic`) or datagrams (`--quic-datagrams`).
pub(crate) async fn handshake(
    addr: SocketAddr,
    tls: &TlsClient,
) -> Result<(quinn::Endpoint, quinn::Connection), QuicError> {
    let local: SocketAddr = match addr {
        SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let endpoint = bind_endpoint(local)?;
    let name = crate::tls::name_text(&tls.name_for(&PeerAddr::Inet(addr)));
    let config = client_config(tls.rustls_config())?;
    let conn = handshake_on(&endpoint, config, addr, &name, tls.handshake_timeout()).await?;
    Ok((endpoint, conn))
}

/// A new connection to `addr` from `endpoint` with `config`, the listener's
/// certificate checked for `name`, the handshake made within `timeout`:
/// a client's handshake on an endpoint of the caller's, which may make
/// one connection after another (`msg bench --mode connect`).
///
/// # Errors
///
/// [`QuicError::Connect`] when quinn cannot start the connection,
/// [`QuicError::Timeout`] when nothing answers in time,
/// [`QuicError::Handshake`] when the handshake fails.
pub async fn handshake_on(
    endpoint: &quinn::Endpoint,
    config: quinn::ClientConfig,
    addr: SocketAddr,
    name: &str,
    timeout: Duration,
) -> Result<quinn::Connection, QuicError> {
    let connecting =
        endpoint
            .connect_with(config, addr, name)
            .map_err(|err| QuicError::Connect {
                addr,
                reason: err.to_string(),
            })?;
    match tokio::time::timeout(timeout, connecting).await {
        Ok(Ok(conn)) => Ok(conn),
        Ok(Err(err)) => Err(handshake_error(err, Peer::Listener, addr, timeout)),
        Err(_) => Err(QuicError::Timeout { addr, timeout }),
    }
}

/// An endpoint bound on `addr`, its socket buffers [`SOCKET_BUFFER`]: a
/// client's, or a listener's answering nobody until it has a server
/// configuration.
///
/// # Errors
///
/// [`QuicError::Bind`] when the UDP socket cannot be bound.
pub fn bind_endpoint(addr: SocketAddr) -> Result<quinn::Endpoint, QuicError> {
    let socket =
        std::net::UdpSocket::bind(addr).map_err(|source| QuicError::Bind { addr, source })?;
    let buffers = socket2::SockRef::from(&socket);
    // As large as the kernel allows, up to SOCKET_BUFFER: a smaller one
    // still works, and loses more under load.
    let _ = buffers.set_send_buffer_size(SOCKET_BUFFER);
    let _ = buffers.set_recv_buffer_size(SOCKET_BUFFER);
    quinn::Endpoint::new(
        quinn::EndpointConfig::default(),
        None,
        socket,
        Arc::new(quinn::TokioRuntime),
    )
    .map_err(|source| QuicError::Bind { addr, source })
}

/// A failed handshake as what went wrong, with `peer` at the other end.
pub(crate) fn handshake_error(
    err: quinn::ConnectionError,
    peer: Peer,
    addr: SocketAddr,
    timeout: Duration,
) -> QuicError {
    use quinn::ConnectionError as E;
    let reason = match err {
        E::TimedOut => return QuicError::Timeout { addr, timeout },
        // Our own verifier's words (a certificate refused, naming why and
        // its fingerprint), less rustls's prefix.
        E::TransportError(err) => certificate_text(&err.reason).to_owned(),
        // The peer's code says enough (a TLS alert); its reason is its own
        // verifier's words, not ours to repeat.
        E::ConnectionClosed(close) => format!("the {peer} refused it: {}", close.error_code),
        E::ApplicationClosed(close) => {
            let reason = String::from_utf8_lossy(&close.reason).into_owned();
            format!("the {peer} closed the connection: {reason}")
        }
        other => other.to_string(),
    };
    QuicError::Handshake { peer, reason }
}

/// rustls's text of a certificate our verifier refused, less its
/// wrappers: what the verifier said (`tls/verify.rs`), as over TLS.
fn certificate_text(reason: &str) -> &str {
    reason
        .strip_prefix("invalid peer certificate: Other(OtherError(")
        .and_then(|inner| inner.strip_suffix("))"))
        .unwrap_or(reason)
}

/// A QUIC endpoint bound for a listener, not yet serving: it takes TLS's
/// settings and the listener's limits when serving starts
/// ([`QuicListener::start`]); until then it answers nobody.
pub(crate) struct QuicListener {
    endpoint: quinn::Endpoint,
    /// Connections whose stream is open, from the accepting task.
    ready: Mutex<Option<mpsc::Receiver<(QuicStream, SocketAddr)>>>,
    /// The accepting task, stopped with the listener.
    task: Mutex<Option<tokio::task::AbortHandle>>,
}

impl fmt::Debug for QuicListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("QuicListener")
            .field("addr", &self.endpoint.local_addr().ok())
            .finish_non_exhaustive()
    }
}

impl Drop for QuicListener {
    fn drop(&mut self) {
        if let Some(task) = self.task.lock().expect("never poisoned").take() {
            task.abort();
        }
        self.endpoint.close(0u32.into(), b"the listener stopped");
    }
}

/// What a listener grants a QUIC connection before it is served.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Admission {
    /// Handshakes under way at once; past this an incoming connection is
    /// refused.
    pub(crate) max_handshakes: usize,
    /// How long a client may take to open its stream after the handshake.
    pub(crate) idle: Option<Duration>,
}

impl QuicListener {
    /// Binds a QUIC endpoint on `addr`.
    pub(crate) fn bind(addr: SocketAddr) -> Result<Self, QuicError> {
        Ok(Self {
            endpoint: bind_endpoint(addr)?,
            ready: Mutex::new(None),
            task: Mutex::new(None),
        })
    }

    /// The address it is bound to.
    pub(crate) fn local_addr(&self) -> io::Result<SocketAddr> {
        self.endpoint.local_addr()
    }

    /// Starts accepting with `tls`'s certificate, within `admission`.
    pub(crate) fn start(&self, tls: &TlsServer, admission: Admission) -> Result<(), QuicError> {
        self.endpoint
            .set_server_config(Some(server_config(tls.rustls_config())?));
        let (tx, rx) = mpsc::channel(admission.max_handshakes.max(1));
        let endpoint = self.endpoint.clone();
        let timeout = tls.handshake_timeout();
        let task = tokio::spawn(accept_loop(endpoint, tx, timeout, admission));
        *self.ready.lock().expect("never poisoned") = Some(rx);
        if let Some(old) = self
            .task
            .lock()
            .expect("never poisoned")
            .replace(task.abort_handle())
        {
            old.abort();
        }
        Ok(())
    }

    /// Polls for the next connection with its stream open.
    pub(crate) fn poll_accept(
        &self,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<(QuicStream, PeerAddr)>> {
        let mut ready = self.ready.lock().expect("never poisoned");
        let Some(rx) = ready.as_mut() else {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::NotConnected,
                "a QUIC listener accepts only once it has TLS settings",
            )));
        };
        match rx.poll_recv(cx) {
            Poll::Ready(Some((stream, peer))) => Poll::Ready(Ok((stream, PeerAddr::Inet(peer)))),
            Poll::Ready(None) => Poll::Ready(Err(io::Error::other("the QUIC endpoint closed"))),
            Poll::Pending => Poll::Pending,
        }
    }
}

/// Accepts every incoming connection: each handshake and its first stream
/// in a task of its own, at most `max_handshakes` at once, each within its
/// time; a failure drops that peer only.
async fn accept_loop(
    endpoint: quinn::Endpoint,
    ready: mpsc::Sender<(QuicStream, SocketAddr)>,
    timeout: Duration,
    admission: Admission,
) {
    let turns = Arc::new(tokio::sync::Semaphore::new(admission.max_handshakes));
    let failures = Arc::new(RateLimited::default());
    let mut handshakes = tokio::task::JoinSet::new();
    loop {
        let incoming = tokio::select! {
            incoming = endpoint.accept() => incoming,
            Some(_) = handshakes.join_next() => continue,
        };
        let Some(incoming) = incoming else {
            return; // the endpoint closed
        };
        let peer = incoming.remote_address();
        let Ok(turn) = Arc::clone(&turns).try_acquire_owned() else {
            failures.warn(|suppressed| {
                warn!(%peer, suppressed, "refused a QUIC connection: {} handshakes are under way, the most this listener makes at once", admission.max_handshakes);
            });
            incoming.refuse();
            continue;
        };
        let ready = ready.clone();
        let failures = Arc::clone(&failures);
        handshakes.spawn(async move {
            let opened = open(incoming, peer, timeout, admission.idle, turn).await;
            match opened {
                Ok(stream) => {
                    let _ = ready.send((stream, peer)).await;
                }
                Err(err) => failures.warn(|suppressed| {
                    warn!(%peer, suppressed, "dropped connection: {err}");
                }),
            }
        });
    }
}

/// One incoming connection's handshake (holding `turn`) within `timeout`,
/// then its first stream within `idle`.
async fn open(
    incoming: quinn::Incoming,
    peer: SocketAddr,
    timeout: Duration,
    idle: Option<Duration>,
    turn: tokio::sync::OwnedSemaphorePermit,
) -> Result<QuicStream, QuicError> {
    let connecting = incoming.accept().map_err(QuicError::Lost)?;
    let conn = match tokio::time::timeout(timeout, connecting).await {
        Ok(Ok(conn)) => conn,
        Ok(Err(err)) => return Err(handshake_error(err, Peer::Client, peer, timeout)),
        Err(_) => {
            return Err(QuicError::Timeout {
                addr: peer,
                timeout,
            });
        }
    };
    drop(turn);
    debug!(%peer, "QUIC handshake made");
    let accept = conn.accept_bi();
    let opened = match idle {
        Some(idle) => tokio::time::timeout(idle, accept)
            .await
            .map_err(|_| QuicError::NoStream(idle))?,
        None => accept.await,
    };
    let (send, recv) = opened.map_err(QuicError::Lost)?;
    Ok(QuicStream::new(conn, send, recv, None))
}

/// The one stream of a QUIC connection msg runs over.
#[derive(Debug)]
pub(crate) struct QuicStream {
    reader: QuicReader,
    writer: QuicWriter,
}

impl QuicStream {
    fn new(
        conn: quinn::Connection,
        send: quinn::SendStream,
        recv: quinn::RecvStream,
        endpoint: Option<quinn::Endpoint>,
    ) -> Self {
        // quinn copies each write into an allocation of its own, held
        // until the peer acknowledges it: a 64 KiB message is a 64 KiB
        // allocation, and a heap trimmed as they are freed makes each a
        // fresh page-faulting one (2-3 % of a stream's CPU). As for files.
        crate::file::keep_freed_chunks();
        Self {
            reader: QuicReader {
                recv,
                conn: conn.clone(),
                _endpoint: endpoint,
            },
            writer: QuicWriter {
                send: Some(send),
                conn,
                stopping: None,
            },
        }
    }
}

/// The reading half of a [`QuicStream`].
pub(crate) struct QuicReader {
    recv: quinn::RecvStream,
    conn: quinn::Connection,
    /// A client's endpoint, kept as long as its connection.
    _endpoint: Option<quinn::Endpoint>,
}

impl fmt::Debug for QuicReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("QuicReader")
            .field("peer", &self.conn.remote_address())
            .finish_non_exhaustive()
    }
}

/// A stream's end, acknowledged (or the connection closed cleanly).
type Stopping = Pin<Box<dyn Future<Output = io::Result<()>> + Send + Sync>>;

/// The writing half of a [`QuicStream`]; dropping it finishes the stream
/// and keeps the connection until the peer has everything (at most
/// [`LINGER`]).
pub(crate) struct QuicWriter {
    send: Option<quinn::SendStream>,
    conn: quinn::Connection,
    /// Shutting down: until the peer acknowledges the stream's end.
    stopping: Option<Stopping>,
}

impl fmt::Debug for QuicWriter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("QuicWriter")
            .field("peer", &self.conn.remote_address())
            .finish_non_exhaustive()
    }
}

impl Drop for QuicWriter {
    fn drop(&mut self) {
        let Some(mut send) = self.send.take() else {
            return;
        };
        let _ = send.finish();
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        // The stream (and so the connection) lives until the peer has
        // acknowledged its end, or the connection is lost, or LINGER.
        let stopped = send.stopped();
        runtime.spawn(async move {
            let _ = tokio::time::timeout(LINGER, stopped).await;
            drop(send);
        });
    }
}

/// A connection the peer closed without an error (code 0, as a dropped
/// quinn connection closes) read as the end of the stream, as a socket's
/// close is: the framing above tells an end between frames from one
/// inside a frame.
fn clean_close(err: &quinn::ConnectionError) -> bool {
    match err {
        quinn::ConnectionError::ApplicationClosed(close) => close.error_code == 0u32.into(),
        quinn::ConnectionError::LocallyClosed => true,
        _ => false,
    }
}

impl AsyncRead for QuicReader {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut().recv.poll_read_buf(cx, buf) {
            Poll::Ready(Err(quinn::ReadError::ConnectionLost(err))) if clean_close(&err) => {
                Poll::Ready(Ok(()))
            }
            Poll::Ready(result) => Poll::Ready(result.map_err(io::Error::from)),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl AsyncWrite for QuicWriter {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut().send.as_mut() {
            Some(send) => Pin::new(send).poll_write(cx, buf).map_err(io::Error::from),
            None => Poll::Ready(Err(io::ErrorKind::BrokenPipe.into())),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    /// Finishes the stream and waits until the peer has acknowledged all
    /// of it: a QUIC connection closed sooner would discard the rest.
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.stopping.is_none() {
            let Some(send) = this.send.as_mut() else {
                return Poll::Ready(Ok(()));
            };
            let _ = send.finish();
            let stopped = send.stopped();
            this.stopping = Some(Box::pin(async move {
                match stopped.await {
                    Ok(_) => Ok(()),
                    Err(quinn::StoppedError::ConnectionLost(err)) if clean_close(&err) => Ok(()),
                    Err(err) => Err(io::Error::from(err)),
                }
            }));
        }
        this.stopping.as_mut().expect("set above").as_mut().poll(cx)
    }
}

impl AsyncRead for QuicStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().reader).poll_read(cx, buf)
    }
}

impl AsyncWrite for QuicStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().writer).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().writer).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().writer).poll_shutdown(cx)
    }
}

impl Stream for QuicStream {
    type Reader = QuicReader;
    type Writer = QuicWriter;

    /// QUIC has no socket options per connection: its UDP socket is the
    /// endpoint's, and it never delays a small write as Nagle's would.
    fn apply(&self, _options: &Options) -> io::Result<()> {
        Ok(())
    }

    fn peer_addr(&self) -> io::Result<PeerAddr> {
        Ok(PeerAddr::Inet(self.reader.conn.remote_address()))
    }

    fn into_split(self) -> (QuicReader, QuicWriter) {
        // Two streams of quinn's already, sharing no lock of ours.
        (self.reader, self.writer)
    }

    /// Only a closed or failed connection is seen (a read would not wait:
    /// it ends or fails), from quinn's state at the cost of a lock. Bytes
    /// waiting on the stream are not: quinn's receive stream has no peek,
    /// and reading one byte ahead would need a buffer behind a lock on
    /// every read of the reading half, which runs apart from the writer
    /// that asks. A sender that streams hears a refusal at its next read.
    fn input_waiting(&self) -> bool {
        self.reader.conn.close_reason().is_some()
    }
}

#[cfg(test)]
mod tests {
    use std::future::poll_fn;
    use std::time::Instant;

    use tokio::io::AsyncWriteExt;

    use super::*;
    use crate::tls::{ClientOptions, Identity, ServerOptions, Verify};

    /// A QUIC stream's `input_waiting` is false while the peer is quiet,
    /// and true once the peer closed the connection: a read then ends.
    #[tokio::test]
    async fn input_waiting_sees_the_peer_close_the_connection() {
        let timeout = Duration::from_secs(5);
        let server = TlsServer::new(&ServerOptions {
            identity: Identity::SelfSigned {
                names: vec![crate::tls::LOCAL_NAME.to_owned()],
            },
            client_ca: None,
            handshake_timeout: timeout,
        })
        .unwrap();
        let client = TlsClient::new(&ClientOptions {
            verify: Verify::Fingerprint(server.fingerprint()),
            server_name: None,
            identity: None,
            handshake_timeout: timeout,
        })
        .unwrap();
        let listener = QuicListener::bind((Ipv4Addr::LOCALHOST, 0).into()).unwrap();
        let admission = Admission {
            max_handshakes: 1,
            idle: Some(timeout),
        };
        listener.start(&server, admission).unwrap();
        let addr = listener.local_addr().unwrap();
        let mut stream = connect(addr, &client).await.unwrap();
        // The listener sees the stream once something is sent on it.
        stream.write_all(b"x").await.unwrap();
        let (accepted, _) = poll_fn(|cx| listener.poll_accept(cx)).await.unwrap();
        assert!(!stream.input_waiting(), "the listener sent nothing");
        accepted.reader.conn.close(0u32.into(), b"done");
        let until = Instant::now() + timeout;
        while !stream.input_waiting() {
            assert!(Instant::now() < until, "the close never arrived");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}
