//! Authentication, both ends: the TCP handshake driven over a connection
//! with a timeout, and the keys that tag every later frame or datagram.
//!
//! The protocol itself, byte by byte, is msg-proto's
//! [`auth`](msg_proto::auth) (and `docs/auth.md`); this module only moves
//! its messages and makes the waits finite:
//!
//! - TCP (and any framed byte stream: the handshake is frames on a
//!   [`Connection<S>`](msg_tcp::Connection), whatever `S` is): the client
//!   opens with its nonce, the server proves itself first,
//!   the client proves itself only to a server that did, and the server
//!   gives its verdict. Then both install the session keys in the
//!   connection, which tags every later frame and rejects any frame that
//!   was altered, injected, reordered or replayed.
//! - UDP: no handshake; each socket tags its datagrams with a key derived
//!   from the secret and a random session id, and drops datagrams that do
//!   not verify or were seen before (a replay window per sending
//!   socket's session id, whatever address a datagram comes from).
//!
//! Bodies still travel in clear: this proves who sent a message and that
//! nobody changed it, not that nobody read it. For secrecy use TLS or an
//! ssh tunnel.

use std::time::Duration;

use msg_proto::auth::{AuthError, MAX_HANDSHAKE_FRAME, Role, SESSION_ID_LEN, Secret};
use msg_tcp::Connection;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::Error;
// Named here by callers from before text.rs held it.
pub use crate::text::printable;

mod handshake;

pub(crate) use handshake::{Failed, Handshake, Step, Then, refused_frame};

/// What a side needs to authenticate: the secret, and how long the TCP
/// handshake may take before the peer is dropped.
#[derive(Debug, Clone)]
pub struct Auth {
    /// The shared secret.
    pub secret: Secret,
    /// The longest a TCP handshake may take.
    pub handshake_timeout: Duration,
}

/// The default handshake timeout.
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

impl Auth {
    /// `secret` with the default handshake timeout.
    pub fn new(secret: Secret) -> Self {
        Self {
            secret,
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
        }
    }
}

// What a listener says of secrets, among its other refusals.
pub use crate::refusal::{HAS_NO_SECRET, NEEDS_SECRET};

/// Why authentication failed, as the client reports it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuthFailure {
    /// The protocol said no: the server could not prove itself, or it
    /// rejected our proof, or it sent something that is no handshake.
    #[error(transparent)]
    Protocol(#[from] AuthError),
    /// The handshake did not complete in time.
    #[error("no handshake within {}", humantime::format_duration(*.0))]
    Timeout(Duration),
    /// The peer closed the connection during the handshake: a listener
    /// drops a client whose proof fails without telling it why.
    #[error("the peer closed the connection during the handshake")]
    Closed,
    /// The peer reported an error instead (its text, made safe to print).
    #[error("the peer says: {0}")]
    Peer(String),
    /// The peer announced a frame larger than any handshake message: it is
    /// not running the handshake (a client without a secret, usually), and
    /// nothing of the frame is buffered.
    #[error("a handshake frame of {len} bytes; handshake frames are at most {max} bytes")]
    FrameTooLarge {
        /// The length the peer announced.
        len: usize,
        /// [`MAX_HANDSHAKE_FRAME`].
        max: usize,
    },
}

/// Fills a nonce or session id from the operating system's generator.
///
/// # Panics
///
/// When the operating system has no random numbers to give, which a
/// system that runs tokio does not.
pub fn random<const N: usize>() -> [u8; N] {
    let mut bytes = [0; N];
    getrandom::fill(&mut bytes).expect("the operating system's random number generator");
    bytes
}

/// A fresh random session id for a UDP socket.
pub(crate) fn session_id() -> [u8; SESSION_ID_LEN] {
    random()
}

/// Runs the client's half of the TCP handshake on `conn` and installs the
/// session keys.
///
/// # Errors
///
/// [`Error::Auth`] with the reason; nothing of ours was sent past our
/// nonce unless the server proved itself.
pub(crate) async fn client<S: AsyncRead + AsyncWrite + Unpin>(
    conn: &mut Connection<S>,
    auth: &Auth,
) -> Result<(), Error> {
    let (handshake, first) = Handshake::client(&auth.secret);
    let deadline = tokio::time::Instant::now() + auth.handshake_timeout;
    drive(conn, auth, handshake, first, Role::Client, deadline).await
}

/// Runs the server's half of the TCP handshake on `conn` and installs the
/// session keys, by `deadline` (the handshake timeout from the moment the
/// connection was accepted: its wait for a turn counts too). A peer that
/// starts with anything else is told that a secret is needed; a peer
/// whose proof fails is told only the verdict.
///
/// # Errors
///
/// [`Error::Auth`] with the reason, for the log.
pub(crate) async fn server<S: AsyncRead + AsyncWrite + Unpin>(
    conn: &mut Connection<S>,
    auth: &Auth,
    deadline: tokio::time::Instant,
) -> Result<(), Error> {
    let (handshake, first) = Handshake::server(&auth.secret);
    drive(conn, auth, handshake, first, Role::Server, deadline).await
}

/// Moves `handshake`'s messages over `conn` by `deadline`.
async fn drive<S: AsyncRead + AsyncWrite + Unpin>(
    conn: &mut Connection<S>,
    auth: &Auth,
    mut handshake: Handshake,
    mut step: Step,
    us: Role,
    deadline: tokio::time::Instant,
) -> Result<(), Error> {
    let timeout = auth.handshake_timeout;
    // Neither side has proved itself yet: until then the peer gets the
    // handshake's small frame limit, not the connection's. Read with the
    // connection's own limit (16 MiB by default), every unauthenticated
    // connection could make a listener buffer that much for the whole
    // handshake timeout. Its own limit comes back once the handshake
    // succeeds.
    let max_frame = conn.max_frame();
    conn.set_max_frame(MAX_HANDSHAKE_FRAME);
    let moved = async {
        loop {
            if let Some(msg) = &step.send {
                conn.write_message(msg).await?;
            }
            if let Then::Done(keys) = &step.then {
                conn.authenticate(keys, us);
                conn.set_max_frame(max_frame);
                return Ok(());
            }
            let read = conn.read_message().await;
            step = match handshake.on_read(read) {
                Ok(step) => step,
                Err(failed) => {
                    let Failed { tell, error } = *failed;
                    if let Some(tell) = tell {
                        let _ = conn.write_message(&tell).await;
                    }
                    return Err(error);
                }
            };
        }
    };
    tokio::time::timeout_at(deadline, moved)
        .await
        .map_err(|_| Error::Auth(AuthFailure::Timeout(timeout)))?
}

/// After [`server`] refused a frame too large for a handshake: lets that
/// frame arrive, into one fixed buffer, for at most the handshake timeout.
/// Closed with its bytes unread, the connection would be reset, and the
/// reset can reach the client before the answer that says it needs a
/// secret. The caller holds no handshake slot meanwhile: this costs time,
/// not memory or handshakes.
pub(crate) async fn drain_refused<S: AsyncRead + AsyncWrite + Unpin>(
    conn: &mut Connection<S>,
    failure: &Error,
    auth: &Auth,
) {
    if let Some(len) = refused_frame(failure) {
        let _ = tokio::time::timeout(auth.handshake_timeout, conn.discard(len)).await;
    }
}
