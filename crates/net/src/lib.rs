//! msg's behaviour on tokio, over either transport: what a client and a
//! listener do, without flags, terminals or output.
//!
//! The floors below know one thing each: `msg-proto` the bytes of a
//! message, `msg-udp` and `msg-tcp` how a message crosses their transport.
//! This crate is where msg *does* something with them, the same way over
//! UDP and TCP; the `msg` binary above it parses flags, renders [`Event`]s
//! and picks exit codes. It prints nothing (a listener whose stdout is
//! blocked must keep serving) and depends on neither clap nor indicatif
//! (CI checks both).
//!
//! # Layout
//!
//! - [`transport`](Transport): which transport, its family,
//!   [`SocketType`] and [`Caps`] (the only place that maps a transport to
//!   what it is and can do), and the addresses it takes, read from what a
//!   user wrote ([`Transport::listen_addr`], [`Transport::connect_addrs`]);
//!   `addr.rs` reads those: `HOST:PORT` ([`parse_host_port`]), resolved
//!   by [`resolve`] and [`resolve_all`], or a Unix socket's path.
//! - [`connect`]: reaching what a user wrote, each of its addresses in
//!   turn.
//! - [`link`](Link): a framed conversation with one peer, connected over
//!   any transport, whole or [split](Link::split) into [`Tx`] and [`Rx`].
//! - [`listener`](Listener): a socket bound over any transport.
//! - `stream/`: the stream family, every kind of byte stream msg
//!   connects, binds and accepts (TCP, a Unix stream, a Unix
//!   sequenced-packet socket) as one enum, so that links, listeners and
//!   serve loops are written once per family (datagram, stream) and never
//!   name a stream kind.
//! - `dgram/`: the datagram family's kinds (UDP, a Unix datagram socket)
//!   behind the one trait the datagram serve loop is written against.
//! - [`serve`](fn@serve): accepts, dispatches each message by kind to the feature
//!   that owns it, answers, and reports [`Event`]s; stops on a shutdown
//!   future. What a message gets (`respond.rs`) and when a stream peer has
//!   been idle or slow too long (`deadlines.rs`) are decided without I/O,
//!   once for both engines; `log.rs` keeps the warnings about peers to a
//!   line a second.
//! - [`events`](Events): the byte-bounded queue between the serve loop and
//!   whatever prints; each [`Event`] names its [`PeerAddr`] (msg-tcp's,
//!   for every transport), which displays as an IP peer always has.
//! - Features, each holding both of its ends: [`data`] (`Data` messages
//!   and the [`Reply`] modes), [`ping`] (`Ping`, `Pong`, `Discard` and the
//!   statistics), [`raw`] (no header, no framing), [`length`] (a bare
//!   length and the body, for peers that are not msg), [`session`] (a
//!   two-way session split in halves, netcat's way), [`auth`] (the
//!   handshake with its timeout, tagged frames and datagrams), [`file`](mod@file) (a header,
//!   streamed content hashed on both sides, an atomic save), [`exec`]
//!   (commands for authenticated peers, within limits). The stream
//!   features (the handshake, files, commands) and the per-connection half
//!   of [`serve`](fn@serve) take msg-tcp's `Connection<S>` over any byte stream, not
//!   a TCP socket; only `stream/` knows the kinds (connecting,
//!   binding, keepalive, `TCP_INFO`), and a new kind of stream is a
//!   variant there and its own file in msg-tcp.
//! - [`Limits`]: what a listener grants its peers (connections, idle and
//!   frame timeouts, keepalive, UDP peer state).
//! - [`send`]: what a client sends (bodies read a line at a time within
//!   a limit) and the [`Sender`](send::Sender) that waits for each reply,
//!   all of them sent and answered by
//!   [`Sender::send_all`](send::Sender::send_all).
//! - [`secret`]: reading a secret file within limits (a small regular
//!   file, or a pipe only when asked, within a timeout), or else the
//!   environment variable the caller names, and making a new one;
//!   `private_file.rs`: who else could change or read a file that should
//!   be this user's alone (a secret, a TLS key or CA file), checked on the
//!   descriptor that is then read.
//! - `open_files`: room for a listener's `--max-conns` connections among
//!   the files it may open, its soft limit raised within the hard one.
//! - [`text`]: a peer's bytes made safe for a terminal, one escaping for
//!   bodies, names, reasons and errors alike; [`show`]: a message shown
//!   as a line, a read, JSON or a hex dump, into any writer, and the tally
//!   of what was shown; [`Summary`]: a listener's closing account;
//!   [`printer`]: the thread a listener prints from, and its whole
//!   printing side ([`printer::Printing`]: what was printed, counted and
//!   dropped, and the summary of it); [`shutdown`]: what
//!   stops a listener (SIGINT, SIGTERM, SIGHUP), caught from the start.
//! - [`tls`]: TLS over any stream (`--tls`): a listener's certificate
//!   from files or self-signed, a client's verification (roots, a CA
//!   file, a pinned fingerprint), mutual TLS, handshakes within a timeout;
//!   `stream/` wraps a stream in it right after connecting or accepting.
//! - [`quic`]: QUIC (`--quic`): a connection over UDP whose one stream
//!   carries msg's frames, its TLS `--tls`'s certificates and pinning with
//!   ALPN `msg`; a stream kind in `stream.rs`, its handshakes made by the
//!   listener's own accepting task within the limits. `quic_dgram/`:
//!   QUIC datagrams (`--quic-datagrams`) as a kind of the datagram
//!   family, a message over the path's datagram limit refused naming it.
//! - [`BusyPoll`]: a runtime that spins instead of sleeping.
//! - [`TcpInfo`]: the kernel's view of a TCP link (retransmissions, RTT,
//!   timeout), from [`Link::tcp_info`].
//! - [`blocking`]: the same ping-pong and framed listener without a
//!   runtime, on std sockets and blocking system calls.
//! - Batched UDP: [`Link::send_batch`] and
//!   [`ServeConfig::udp_batch`], many datagrams per system call, counted
//!   in [`CallCounts`].
//!
//! ```text
//!   msg (cli) ──> msg-net ──> msg-udp ──┐
//!                    │   └──> msg-tcp ──┴──> msg-proto
//!                    └───────────────────────^
//! ```
//!
//! # Example
//!
//! A listener served in-process until a shutdown signal, and a client:
//!
//! ```
//! use msg_net::{ConnectOptions, Events, Link, Listener, ServeConfig, Transport, serve};
//! use msg_proto::{Kind, Message};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), msg_net::Error> {
//! let local: std::net::SocketAddr = "127.0.0.1:0".parse().unwrap();
//! let listener = Listener::bind(Transport::Udp, local, Default::default()).await?;
//! let addr = listener.local_addr()?;
//! let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
//! let server = tokio::spawn(serve(listener, ServeConfig::default(), Events::discard(), async {
//!     let _ = stopped.await;
//! }));
//!
//! let mut link = Link::connect(Transport::Udp, addr, &ConnectOptions::default()).await?;
//! link.send(&Message::new(Kind::Ping, 1, "hello")).await?;
//! let pong = link.recv().await?.expect("UDP has no end");
//! assert_eq!((pong.kind, pong.seq), (Kind::Pong, 1));
//!
//! stop.send(()).unwrap();
//! server.await.unwrap()?;
//! # Ok(())
//! # }
//! ```

#![warn(missing_docs)]

mod addr;
pub mod auth;
mod batch;
pub mod blocking;
mod busy_poll;
pub mod connect;
mod counters;
pub mod data;
mod deadlines;
mod dgram;
mod error;
mod events;
pub mod exec;
pub mod file;
pub mod length;
pub mod limits;
mod link;
mod listener;
mod log;
mod off_thread;
#[cfg(unix)]
pub mod open_files;
pub mod ping;
pub mod printer;
mod private_file;
pub mod quic;
mod quic_dgram;
pub mod raw;
pub mod refusal;
mod respond;
pub mod secret;
pub mod send;
mod serve;
pub mod session;
pub mod show;
pub mod shutdown;
mod stream;
mod summary;
mod tcp_info;
pub mod text;
pub mod tls;
mod transport;

pub use addr::{AddrError, DEFAULT_HOST, parse_host_port, resolve, resolve_all};
pub use auth::Auth;
pub use busy_poll::BusyPoll;
pub use counters::{BufferDrops, Counted, Counters, KernelDrops, kernel_udp_drops};
pub use data::Reply;
pub use error::{Error, peer_left};
pub use events::{Delivery, Event, EventReceiver, Events, Offer, QUEUE_BYTES};
pub use limits::Limits;
pub use link::{ConnectOptions, Link, Rx, Tx};
pub use listener::Listener;
pub use msg_proto::{DiscardCounter, Stats};
/// The framed stream's own errors, inside [`Error::Tcp`]: re-exported so
/// that a caller can tell them apart (msg's CLI names the flag behind a
/// frame limit) without depending on msg-tcp.
pub use msg_tcp::Error as StreamError;
pub use msg_tcp::PeerAddr;
/// The datagram transport's own errors, inside [`Error::Udp`]: re-exported
/// so that a caller can tell them apart (msg's CLI names the flag a group
/// or a broadcast address needs) without depending on msg-udp.
pub use msg_udp::Error as DatagramError;
/// One to many: multicast groups and broadcast (msg-udp's `group`).
pub use msg_udp::group;
pub use msg_udp::{CallCounts, MAX_BATCH, SendBatch};
pub use serve::{ServeConfig, serve};
pub use summary::{Summary, count};
pub use tcp_info::TcpInfo;
pub use transport::{Caps, SocketType, Transport, UnknownTransport};
