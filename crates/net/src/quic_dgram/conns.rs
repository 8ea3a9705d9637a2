//! The connections of a QUIC datagram endpoint: each one kept (within a
//! listener's limits) and read into the endpoint's one queue, and a
//! listener's accepting task.

use std::sync::atomic::Ordering;

use super::*;

/// Keeps `conn` in `shared`, unless `max` connections are kept already,
/// and reads its datagrams into the queue until it closes, or (a
/// listener's) until it has sent nothing for `idle`. Whether it was kept.
pub(super) fn adopt(
    shared: &Arc<Shared>,
    conn: quinn::Connection,
    peer: SocketAddr,
    tx: mpsc::Sender<Received>,
    (max, idle): (usize, Option<Duration>),
) -> bool {
    {
        // Counted and kept under one lock: two handshakes that end at
        // once cannot both take the last place.
        let mut conns = shared.conns.lock().expect("never poisoned");
        // A new connection from the address of one still kept (its client
        // gone without a close, and the port used again) takes its place:
        // answers go by address, so only one connection can have it. The
        // old one is closed, not left to be counted nowhere.
        if let Some(old) = conns.get(&peer) {
            old.close(
                0u32.into(),
                b"replaced by a new connection from the same address",
            );
        } else if conns.len() >= max {
            return false;
        }
        conns.insert(peer, conn.clone());
    }
    let weak = Arc::downgrade(shared);
    let unread = Arc::clone(&shared.unread);
    let taken = unread.open(&conn);
    tokio::spawn(async move {
        loop {
            // quinn's keep-alives hold a quiet connection open; only a
            // datagram counts as the peer saying something.
            let read = conn.read_datagram();
            let datagram = match idle {
                Some(idle) => match tokio::time::timeout(idle, read).await {
                    Ok(read) => read,
                    Err(_) => {
                        let text = crate::refusal::IDLE.format(humantime::format_duration(idle));
                        debug!(%peer, "QUIC connection {text}");
                        conn.close(0u32.into(), text.as_bytes());
                        break;
                    }
                },
                None => read.await,
            };
            let Ok(datagram) = datagram else { break };
            taken.fetch_add(1, Ordering::Relaxed);
            if tx.send((datagram, peer)).await.is_err() {
                break;
            }
        }
        unread.closed(&conn);
        debug!(%peer, "QUIC connection closed");
        if let Some(shared) = weak.upgrade() {
            let closed = match conn.close_reason() {
                _ if shared.listener != Some(peer) => None,
                Some(quinn::ConnectionError::ApplicationClosed(close))
                    if !close.reason.is_empty() =>
                {
                    Some(Closed::By(crate::text::printable(&close.reason)))
                }
                Some(lost) => crate::quic::client_refused_by(&lost).map(Closed::Refused),
                None => None,
            };
            // Said before the connection goes, so that whoever finds it
            // gone finds why.
            if let Some(closed) = closed {
                *shared.closed.lock().expect("never poisoned") = Some(closed);
            }
            let mut conns = shared.conns.lock().expect("never poisoned");
            // Only this connection's place: a newer one from the same
            // address may hold it now.
            if conns
                .get(&peer)
                .is_some_and(|kept| kept.stable_id() == conn.stable_id())
            {
                conns.remove(&peer);
            }
            drop(conns);
        }
    });
    true
}

/// Accepts every incoming connection, each handshake in a task of its own
/// within `timeout`, at most `limits.max_handshakes` at once; a connection
/// past `limits.max_conns` is told so once its handshake is made (a
/// refusal before it would reach the client without a reason) and closed.
pub(super) async fn accept_loop(
    shared: std::sync::Weak<Shared>,
    tx: mpsc::Sender<Received>,
    timeout: Duration,
    limits: Limits,
) {
    let max_handshakes = limits.max_handshakes.max(1);
    let Some(endpoint) = shared.upgrade().map(|s| s.endpoint.clone()) else {
        return;
    };
    let turns = Arc::new(tokio::sync::Semaphore::new(max_handshakes));
    let failures = Arc::new(RateLimited::default());
    while let Some(incoming) = endpoint.accept().await {
        let peer = incoming.remote_address();
        let Some((incoming, turn)) =
            crate::quic::admit(incoming, &turns, max_handshakes, &failures)
        else {
            continue;
        };
        let shared = shared.clone();
        let tx = tx.clone();
        let failures = Arc::clone(&failures);
        tokio::spawn(async move {
            let handshake = async {
                let connecting = incoming.accept().map_err(QuicError::Lost)?;
                match tokio::time::timeout(timeout, connecting).await {
                    Ok(Ok(conn)) => Ok(conn),
                    Ok(Err(err)) => Err(handshake_error(err, Peer::Client, peer, timeout)),
                    Err(_) => Err(QuicError::Timeout {
                        addr: peer,
                        timeout,
                    }),
                }
            };
            let made = handshake.await;
            drop(turn);
            match made {
                Ok(conn) => {
                    let Some(shared) = shared.upgrade() else {
                        return;
                    };
                    let limits_of = (limits.max_conns, limits.idle_timeout);
                    if !adopt(&shared, conn.clone(), peer, tx, limits_of) {
                        let text = crate::refusal::max_conns(limits.max_conns);
                        failures.warn(|suppressed| {
                            warn!(%peer, suppressed, "refused a QUIC connection: {text}");
                        });
                        conn.close(0u32.into(), text.as_bytes());
                    }
                }
                Err(err) => failures.warn(|suppressed| {
                    warn!(%peer, suppressed, "dropped connection: {err}");
                }),
            }
        });
    }
}
