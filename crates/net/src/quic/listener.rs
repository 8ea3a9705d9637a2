//! A QUIC listener: one endpoint whose own task makes each handshake
//! within the limits, and hands on a connection once its stream is open.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use msg_tcp::PeerAddr;
use tokio::sync::mpsc;
use tracing::{debug, warn};

use super::{QuicError, QuicStream, bind_endpoint, handshake_error, server_config};
use crate::log::RateLimited;
use crate::tls::{Peer, TlsServer};

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

impl QuicListener {
    /// Its endpoint (a handle to the same one).
    pub(crate) fn endpoint(&self) -> quinn::Endpoint {
        self.endpoint.clone()
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

/// The application error code of a connection the listener closes
/// before serving it, the reason its text.
const REFUSED: u32 = 1;

/// What a listener grants a QUIC connection before it is served.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Admission {
    /// Handshakes under way at once; past this an incoming connection is
    /// refused.
    pub(crate) max_handshakes: usize,
    /// Connections through their handshake and waiting for their first
    /// stream at once (the listener's `max_conns`); past this one is
    /// closed, as a connection past `max_conns` is refused.
    pub(crate) max_waiting: usize,
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
    // A connection through its handshake holds one of these until its
    // first stream opens: the handshakes' own bound frees its turn as soon
    // as it is made, and without this, peers that complete handshake after
    // handshake and open no stream would each keep a connection for the
    // idle timeout, as many as they could make in that time.
    let waiting = Arc::new(tokio::sync::Semaphore::new(admission.max_waiting));
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
        let Some((incoming, turn)) = admit(incoming, &turns, admission.max_handshakes, &failures)
        else {
            continue;
        };
        let ready = ready.clone();
        let failures = Arc::clone(&failures);
        let waiting = Arc::clone(&waiting);
        handshakes.spawn(async move {
            let opened = open(incoming, peer, timeout, admission, turn, &waiting).await;
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

/// Whether `incoming` may start its handshake now, and the turn it holds
/// while it does; a connection refused or sent away is answered here.
///
/// # Why a Retry under load
///
/// A client's first packet (its Initial) costs nothing to forge with
/// another source address, and each one accepted holds a handshake turn
/// until the handshake timeout: a flood of them from addresses that never
/// answer would leave no turn for real clients. So once half the turns
/// are taken, a client whose address is not yet proven is sent a Retry
/// (RFC 9000, 8.1.2): a token that only the real address receives, to be
/// echoed in a second Initial. The listener keeps no state for it, and a
/// real client pays one round trip more; a forged one never comes back.
/// Below half, every client starts at once, as without the check.
pub(crate) fn admit(
    incoming: quinn::Incoming,
    turns: &Arc<tokio::sync::Semaphore>,
    max_handshakes: usize,
    failures: &RateLimited,
) -> Option<(quinn::Incoming, tokio::sync::OwnedSemaphorePermit)> {
    let peer = incoming.remote_address();
    if must_prove_address(
        incoming.remote_address_validated(),
        turns.available_permits(),
        max_handshakes,
    ) && incoming.may_retry()
    {
        debug!(%peer, "QUIC handshakes under load: asked the client to prove its address (Retry)");
        // An error here is quinn saying a Retry is not allowed now; the
        // connection is then dropped, which refuses it.
        let _ = incoming.retry();
        return None;
    }
    let Ok(turn) = Arc::clone(turns).try_acquire_owned() else {
        failures.warn(|suppressed| {
            warn!(%peer, suppressed, "refused a QUIC connection: {max_handshakes} handshakes are under way, the most this listener makes at once");
        });
        incoming.refuse();
        return None;
    };
    Some((incoming, turn))
}

/// Whether a client must prove its address before its handshake starts:
/// when it has not yet, and `available` of the `max` handshake turns are
/// half of them or fewer.
fn must_prove_address(validated: bool, available: usize, max: usize) -> bool {
    !validated && available.saturating_mul(2) <= max
}

/// One incoming connection's handshake (holding `turn`) within `timeout`,
/// then, holding a place among those `waiting`, its first stream within
/// the admission's `idle`.
async fn open(
    incoming: quinn::Incoming,
    peer: SocketAddr,
    timeout: Duration,
    admission: Admission,
    turn: tokio::sync::OwnedSemaphorePermit,
    waiting: &tokio::sync::Semaphore,
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
    let Ok(_place) = waiting.try_acquire() else {
        let max = admission.max_waiting;
        let text = crate::refusal::max_conns(max);
        // Not 0, which a stream reads as the peer's clean end: the client
        // is to see why.
        conn.close(REFUSED.into(), text.as_bytes());
        return Err(QuicError::TooManyWaiting(max));
    };
    let accept = conn.accept_bi();
    let opened = match admission.idle {
        Some(idle) => tokio::time::timeout(idle, accept)
            .await
            .map_err(|_| QuicError::NoStream(idle))?,
        None => accept.await,
    };
    let (send, recv) = opened.map_err(QuicError::Lost)?;
    Ok(QuicStream::new(conn, send, recv, None))
}

#[cfg(test)]
mod tests {
    use super::must_prove_address;

    #[test]
    fn a_retry_is_asked_only_of_unproven_clients_once_half_the_turns_are_taken() {
        // 64 turns: free until 32 are taken.
        assert!(!must_prove_address(false, 64, 64));
        assert!(!must_prove_address(false, 33, 64));
        assert!(must_prove_address(false, 32, 64));
        assert!(must_prove_address(false, 0, 64));
        // A client that came back with the token is never sent away again.
        assert!(!must_prove_address(true, 0, 64));
        // One turn: taken means under load.
        assert!(!must_prove_address(false, 1, 1));
        assert!(must_prove_address(false, 0, 1));
    }
}
