//! How a QUIC connection is made: the transport settings both ends share,
//! quinn's client and server configurations from msg's rustls ones (ALPN
//! `msg`), the endpoint, the client's handshake, and what a failed
//! handshake says.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use msg_tcp::PeerAddr;
use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};

use super::{ALPN, DATAGRAM_BUFFER, KEEP_ALIVE, MAX_IDLE, QuicError, QuicStream, SOCKET_BUFFER};
use crate::tls::{Peer, TlsClient};

/// How much of one stream a peer may send ahead of what is read: quinn's
/// own default, said here since it is what one connection may hold.
const STREAM_WINDOW: u32 = 1_250_000;

/// The streams an end lets its peer open at once, and so what a peer can
/// make it hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Streams {
    /// A `--quic` listener's: the one bidirectional stream msg runs over.
    One,
    /// A client's (a listener opens none) and a `--quic-datagrams`
    /// listener's.
    None,
}

/// The transport settings of both ends: an idle limit with keep-alives,
/// and what a peer may open.
///
/// # Why the streams are limited
///
/// quinn lets a peer open 100 streams of each kind at once and send 1.25
/// MB on each before anything is read, with no limit on the whole
/// connection. msg reads one stream, and quinn keeps what arrives on the
/// others: a client that filled 200 streams it never meant to be read
/// held 290 MB of a listener, before any handshake with a secret (audit,
/// round four). So a peer may open only the streams this end reads: one
/// connection costs a stream listener at most one stream's window of
/// stream data (and no datagrams), a datagram listener at most
/// [`DATAGRAM_BUFFER`] of datagrams, and `--max-conns` bounds the rest. (The connection's own window stays quinn's, unbounded: with one
/// stream the stream's binds first, and a bounded one cost 11 % of a
/// 1 KiB stream's rate in flow-control updates.)
fn transport_config(streams: Streams) -> Arc<quinn::TransportConfig> {
    let mut config = quinn::TransportConfig::default();
    let bidi = match streams {
        Streams::One => 1u32,
        Streams::None => 0,
    };
    config
        .max_concurrent_bidi_streams(bidi.into())
        .max_concurrent_uni_streams(0u32.into())
        .stream_receive_window(STREAM_WINDOW.into())
        .max_idle_timeout(Some(
            quinn::IdleTimeout::try_from(MAX_IDLE).expect("60 s is a valid idle timeout"),
        ))
        .keep_alive_interval(Some(KEEP_ALIVE))
        .datagram_send_buffer_size(DATAGRAM_BUFFER);
    // RFC 9221 datagrams (`--quic-datagrams`), on by default in quinn:
    // what the peer may queue for us before quinn drops the oldest. Not
    // on a stream listener, which reads none: it held 1.2 MB of them a
    // connection, and a datagram client took it for a datagram listener
    // and sent into the void (audit, round six); a listener that takes no
    // datagrams says so in the handshake, and that client is told at once.
    let datagrams = match streams {
        Streams::One => None,
        Streams::None => Some(DATAGRAM_BUFFER),
    };
    config.datagram_receive_buffer_size(datagrams);
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
    config.transport_config(transport_config(Streams::None));
    Ok(config)
}

/// A stream listener's QUIC configuration from its TLS (a [`TlsServer`](crate::tls::TlsServer)'s
/// [`rustls_config`](crate::tls::TlsServer::rustls_config)), with ALPN
/// `msg`: a client may open one bidirectional stream, and nothing else.
///
/// # Errors
///
/// [`QuicError::Config`] when the configuration has no TLS 1.3 suite.
pub fn server_config(rustls: &rustls::ServerConfig) -> Result<quinn::ServerConfig, QuicError> {
    server_config_for(rustls, Streams::One)
}

/// [`server_config`] for a listener whose clients may open `streams`.
pub(crate) fn server_config_for(
    rustls: &rustls::ServerConfig,
    streams: Streams,
) -> Result<quinn::ServerConfig, QuicError> {
    let mut rustls = rustls.clone();
    rustls.alpn_protocols = vec![ALPN.to_vec()];
    let crypto =
        QuicServerConfig::try_from(rustls).map_err(|err| QuicError::Config(err.to_string()))?;
    let mut config = quinn::ServerConfig::with_crypto(Arc::new(crypto));
    config.transport_config(transport_config(streams));
    Ok(config)
}

/// Connects to `addr` over QUIC with `tls`, and opens the stream msg runs
/// over; the handshake within TLS's handshake timeout.
pub(crate) async fn connect(addr: SocketAddr, tls: &TlsClient) -> Result<QuicStream, QuicError> {
    let (endpoint, conn) = handshake(addr, tls).await?;
    // A listener that grants no stream (a datagram one) would hold this
    // open for ever: its keep-alives keep the connection up.
    let within = tls.handshake_timeout();
    let (send, recv) = tokio::time::timeout(within, conn.open_bi())
        .await
        .map_err(|_| QuicError::NoStreamGranted { addr, within })?
        .map_err(lost)?;
    Ok(QuicStream::new(conn, send, recv, Some(endpoint)))
}

/// The connection's loss as what it was: a listener's refusal of this
/// client's certificate, or lost.
fn lost(lost: quinn::ConnectionError) -> QuicError {
    match super::client_refused_by(&lost) {
        Some(refused) => QuicError::ClientRefused(refused),
        None => QuicError::Lost(lost),
    }
}

/// A client's endpoint and its connection to `addr` with `tls`, the
/// handshake made within TLS's handshake timeout: for a stream
/// (`--quic`) or datagrams (`--quic-datagrams`).
pub(crate) async fn handshake(
    addr: SocketAddr,
    tls: &TlsClient,
) -> Result<(quinn::Endpoint, quinn::Connection), QuicError> {
    let endpoint = bind_endpoint(any_port_for(addr))?;
    let name = crate::tls::name_text(&tls.name_for(&PeerAddr::Inet(addr)));
    let config = client_config(tls.rustls_config())?;
    let timeout = tls.handshake_timeout();
    let conn = tokio::select! {
        conn = handshake_on(&endpoint, config, addr, &name, timeout) => conn?,
        source = port_unreachable(addr) => return Err(QuicError::Refused { addr, source }),
    };
    Ok((endpoint, conn))
}

/// A port the system picks, on every address of `addr`'s family.
fn any_port_for(addr: SocketAddr) -> SocketAddr {
    match addr {
        SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    }
}

/// Completes only if the host at `addr` says nothing listens on its UDP
/// port: the error a connected socket is given for the ICMP "port
/// unreachable" an empty datagram drew. quinn's own socket is not
/// connected, and hears none of it, so a client at a closed port waited
/// the whole handshake timeout (5 s) to be told only that nothing
/// answered. An empty datagram is no QUIC packet: a listener there drops
/// it. Across a network the ICMP may be filtered; then this waits for
/// ever, and the handshake's own timeout ends the wait.
async fn port_unreachable(addr: SocketAddr) -> std::io::Error {
    let probe = async {
        let socket = tokio::net::UdpSocket::bind(any_port_for(addr)).await.ok()?;
        socket.connect(addr).await.ok()?;
        socket.send(&[]).await.ok()?;
        let mut buf = [0u8; 1];
        // Bounded: whatever else comes back is not the answer waited for.
        for _ in 0..64 {
            match socket.recv(&mut buf).await {
                Err(err) if err.kind() == std::io::ErrorKind::ConnectionRefused => {
                    return Some(err);
                }
                Err(_) => return None,
                Ok(_) => {}
            }
        }
        None
    };
    match probe.await {
        Some(err) => err,
        None => std::future::pending().await,
    }
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
        // A client without a certificate at a listener that wants one, as
        // TLS over a stream says it (rustls's words, compared as rustls
        // makes them, were "peer sent no certificates").
        E::TransportError(err)
            if peer == Peer::Client
                && err.reason == rustls::Error::NoCertificatesPresented.to_string() =>
        {
            crate::tls::TlsError::NoClientCertificate.to_string()
        }
        // Our own verifier's words (a certificate refused, naming why and
        // its fingerprint), less rustls's prefix.
        E::TransportError(err) => certificate_text(&err.reason).to_owned(),
        // The peer's code says enough (a TLS alert); its reason is its own
        // verifier's words, not ours to repeat.
        E::ConnectionClosed(close) => format!("the {peer} refused it: {}", close.error_code),
        // The peer's own words, any bytes (even before the handshake is
        // through): made printable.
        E::ApplicationClosed(close) => format!(
            "the {peer} closed the connection: {}",
            crate::text::printable(&close.reason)
        ),
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
