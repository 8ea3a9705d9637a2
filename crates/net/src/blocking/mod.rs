//! The blocking engine: msg's ping-pong and framed listener on std sockets
//! and blocking system calls, one conversation per thread, no runtime.
//!
//! A readiness runtime cannot sleep inside `recv`: the side that waits
//! makes a `recv` that fails with `EAGAIN`, sleeps in `epoll_wait`, then
//! makes the `recv` that succeeds (BENCHMARKS.md counts them). This engine
//! sleeps in the `recv` itself, as sockperf does, so a round trip costs two
//! sends and two receives and nothing else. With busy polling it spins on
//! `recv` with `MSG_DONTWAIT` (sockperf's `--nonblocked`), not on
//! `epoll_wait(0)`.
//!
//! The bytes are the same: msg-proto's `encode`/`decode` for datagrams and
//! msg-tcp's [`Codec`](msg_tcp::Codec) for frames (its `Decoder` and
//! `Encoder` need no runtime), over reused buffers, so a warm ping-pong
//! allocates nothing per message. The limits and errors are the tokio
//! engine's: the UDP size check before the send, the frame limit before
//! the allocation, the idle and frame timeouts, `max_conns` and, with a
//! secret, `max_handshakes` and the handshake timeout.
//!
//! Datagrams are framed by msg-udp's runtime-free
//! [`Framing`](msg_udp::Framing), the tokio socket's own: the same header,
//! the same authentication trailer and replay windows (UDP with a secret
//! works here too), the same flood log.
//!
//! Over TCP it runs the tokio engine's handshake too: the same sans-IO
//! state machine (in [`auth`](crate::auth)), its messages moved with
//! blocking calls, after which msg-tcp's `Codec` tags and verifies every
//! frame, as on a tokio connection.
//!
//! A client sends many datagrams per system call too
//! ([`Link::send_batch`]: msg-udp's runtime-free `sendmmsg` and GSO), and
//! a listener takes them many per call (`recvmmsg` and GRO).
//!
//! What it does not do: raw mode, files and commands (those stay on
//! [`crate::serve`](fn@crate::serve)), and paced streams on the client side.
//!
//! - [`Link`]: a client conversation on the calling thread; in
//!   `link/prepared.rs`, a ping-pong client's short ways ([`Prepared`]: a
//!   ping framed once, its pong read from its bytes undecoded).
//! - [`Listener`] (`listener.rs`: bound, or joined to a group) and
//!   [`serve`](fn@serve) (`serve.rs`): a listener on the calling thread (and a
//!   thread per stream connection), stopped by a flag; its datagram loops
//!   are in `udp.rs`, the handshake's driver in `auth.rs`, the framed
//!   stream (any std byte stream) in `io.rs`, and how a serving thread
//!   waits (never past [`STOP_CHECK`], spinning while busy) in `wait.rs`.
//! - `stream.rs`: the stream family, as the crate's `stream.rs` is for
//!   the tokio engine: the `Stream` trait a framed stream needs, and every
//!   kind of std stream (TCP, a Unix stream, seqpacket) as one
//!   `AnyStream`/`AnyListener`, the only file here that names a kind.

mod auth;
mod io;
mod link;
mod listener;
mod serve;
mod stream;
mod thread;
mod udp;
mod wait;

pub use link::{Link, LinkOptions, Prepared, Received};
pub use listener::Listener;
pub use serve::serve;
pub use thread::{Served, Serving, spawn};
pub use wait::{SPIN_IDLE, STOP_CHECK};
