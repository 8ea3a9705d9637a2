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
//! family asks ([`Stream`](msg_tcp::Stream)). So QUIC is a kind of stream (`StreamKind::Quic`)
//! beside TCP and the Unix sockets, and the serve loop, links, limits,
//! files and commands are the stream family's. What differs is how a
//! connection starts, and that is here:
//!
//! - TLS is QUIC's own handshake, not a layer over the stream: the
//!   certificates, pinning, CAs and mutual TLS are `--tls`'s
//!   ([`TlsServer`](crate::tls::TlsServer), [`TlsClient`](crate::tls::TlsClient)), their rustls configuration reused
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

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use crate::tls::Peer;

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
    /// The host said nothing listens on the port (ICMP port unreachable,
    /// seen by a probe beside the handshake).
    #[error("cannot connect to {addr} over QUIC: nothing listens on that UDP port")]
    Refused {
        /// The peer.
        addr: SocketAddr,
        /// The system's words.
        source: io::Error,
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
    /// A client completed the handshake while as many as the listener
    /// serves at once waited for their first stream: closed.
    #[error(
        "{0} QUIC connections are waiting for their first stream, the most this listener serves at once: closed"
    )]
    TooManyWaiting(usize),
    /// A client completed the handshake and opened no stream in time.
    #[error("the client opened no stream within {}", humantime::format_duration(*.0))]
    NoStream(Duration),
    /// The listener refused this client's certificate (a TLS alert in its
    /// connection close) before the stream opened: said as over TLS, where
    /// it was `the QUIC connection was lost: ... error 51: invalid peer
    /// certificate: BadSignature`.
    #[error("{0}")]
    ClientRefused(crate::tls::ClientRefused),
    /// The connection was lost before its stream opened. Its text is made
    /// printable: an application close carries the peer's reason, bytes of
    /// its choosing.
    #[error("the QUIC connection was lost: {}", crate::text::printable(.0.to_string().as_bytes()))]
    Lost(quinn::ConnectionError),
    /// `--quic-datagrams`: a message that does not fit one QUIC datagram,
    /// refused before anything is sent.
    #[error(
        "message is {len} bytes; a QUIC datagram holds at most {max} bytes on this connection \
         now (the path MTU, {mtu} bytes of UDP payload, less QUIC's packet header, AEAD tag and \
         DATAGRAM frame header){}; send it over QUIC streams (--quic) instead",
        overhead_text(*.max, *.overhead)
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
    /// `--quic` with a peer that lets this client open no stream in time:
    /// a datagram listener grants none (its limit is 0), and the open
    /// waited for ever (audit, round six).
    #[error(
        "the QUIC peer {addr} let this client open no stream within {}: is it msg listen --quic \
         (a --quic-datagrams listener takes datagrams, not a stream)?",
        humantime::format_duration(*.within)
    )]
    NoStreamGranted {
        /// The peer.
        addr: SocketAddr,
        /// How long the client waited (the handshake timeout).
        within: Duration,
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
/// What of a datagram of `max` bytes is left for the body, as UDP's
/// limit says it: "1134 for the body after msg's 28-byte header". (It
/// said "msg's 28-byte header included", and a 1,135-byte message read
/// as fitting 1,162; audit, round six.)
fn overhead_text(max: usize, overhead: msg_udp::Overhead) -> String {
    let body = max.saturating_sub(overhead.total());
    match (overhead.header, overhead.tag) {
        (0, 0) => String::new(),
        (header, 0) => format!(", {body} for the body after msg's {header}-byte header"),
        (header, tag) => {
            format!(", {body} for the body after msg's {header}-byte header and {tag}-byte tag")
        }
    }
}

mod config;
mod listener;
mod stream;

pub(crate) use config::{Streams, connect, handshake, handshake_error, server_config_for};
pub use config::{bind_endpoint, client_config, handshake_on, server_config};
pub(crate) use listener::{Admission, QuicListener, admit};
pub(crate) use stream::{QuicReader, QuicStream, QuicWriter, client_refused_by};
