//! The stream family's serve loop, for every kind of stream: a task per
//! connection within the listener's limits, the handshake first when there
//! is a secret, then each message dispatched to the feature that owns it.
//!
//! This file accepts, refuses past the limits and makes the TLS
//! handshake; `connection.rs` serves one framed connection once it is let
//! in.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use msg_tcp::{Connection, PeerAddr};
use tokio::task::JoinSet;
use tracing::{debug, warn};

use super::ServeConfig;
use crate::exec::Runner;
use crate::length::{self, Framing};
use crate::log::{Chain, RateLimited};
use crate::stream::{AnyListener, AnyStream};
use crate::text::error_message;
use crate::{Error, Events, raw};

/// How many refused connections are told why at once (see `serve`).
const MAX_REFUSING: usize = 64;

mod connection;

use connection::serve_connection;

/// Serves a stream listener of any kind: each connection accepted, with
/// keepalive on where the kind has it; the rest is [`serve_streams`].
pub(super) async fn serve(
    listener: msg_tcp::Listener<AnyListener>,
    config: ServeConfig,
    events: Events,
) -> Result<(), Error> {
    let options = listener.options();
    listener
        .get_ref()
        .start(config.tls.as_ref(), &config.limits)?;
    let keepalive = config.limits.keepalive;
    let listener = &listener;
    let accept = move || async move {
        let (stream, peer) = listener.accept_stream().await?;
        stream.keepalive(keepalive);
        Ok((stream, peer))
    };
    let waiting = || listener.get_ref().waiting();
    serve_streams((accept, waiting), options, config, events).await
}

/// Serves the connections `accept` yields, over any kind of byte stream:
/// a task per connection, within the listener's limits (connections,
/// handshakes), each framed with `options` (or raw), until the caller
/// drops this future.
async fn serve_streams<A, F>(
    (mut accept, waiting): (A, impl Fn() -> bool),
    options: msg_tcp::Options,
    config: ServeConfig,
    events: Events,
) -> Result<(), Error>
where
    A: FnMut() -> F,
    F: Future<Output = Result<(AnyStream, PeerAddr), msg_tcp::Error>>,
{
    // Commands only with a secret: every connection then completes the
    // handshake before its first message is read.
    let runner = match (&config.exec, &config.auth) {
        (Some(exec), Some(_)) => Some(Arc::new(Runner::new(exec.clone()))),
        _ => None,
    };
    let config = Arc::new(config);
    // One limit for every connection's failure: a flood of bad peers must
    // not flood the log.
    let failures = Arc::new(RateLimited::default());
    // One permit per connection served: past `max_conns` a client is told
    // so and closed, not left waiting in the backlog.
    let slots = Arc::new(tokio::sync::Semaphore::new(config.limits.max_conns));
    // And of those, one permit per handshake under way: peers that have not
    // proved they hold the secret share these, so they cannot crowd out
    // more than this many handshakes' worth of work.
    let handshakes = Arc::new(tokio::sync::Semaphore::new(config.limits.max_handshakes));
    // And the connections being told why they are refused, each for at
    // most a second (over TLS, a handshake first): past these, a refused
    // connection is closed at once, unanswered, so a flood of them costs
    // neither descriptors nor key exchanges without bound.
    let refusing = Arc::new(tokio::sync::Semaphore::new(MAX_REFUSING));
    // Owned here, so that dropping `serve` drops every connection.
    let mut connections = JoinSet::new();
    // And kills every running command's process tree, at once: a task
    // dropped with the set above is dropped only when next polled.
    let _commands = runner.as_deref().map(Runner::kill_on_stop);
    // Partial files kept for resuming go once they are too old, however
    // long the listener runs; with the connections, this stops with it.
    if let Some(save) = &config.save {
        connections.spawn(save.clone().sweep());
    }
    let mut spare = crate::open_files::Spare::new();
    loop {
        spare.keep();
        let accepted = tokio::select! {
            accepted = accept() => accepted,
            // Reap finished connections so the set does not grow.
            Some(_) = connections.join_next() => continue,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            // Out of descriptors with a client waiting: the spare makes
            // room to take it and tell it, as one past --max-conns is.
            Err(msg_tcp::Error::Io(err)) if waiting() && spare.give_up_for(&err) => {
                failures.warn(|suppressed| {
                    warn!(
                        suppressed,
                        "cannot accept a connection: {err}: telling the next client so"
                    );
                });
                let next = tokio::time::timeout(Duration::from_millis(100), accept()).await;
                if let Ok(Ok((stream, _))) = next {
                    let text = crate::refusal::NO_DESCRIPTORS.to_owned();
                    tell_refused(
                        &mut connections,
                        &config,
                        &refusing,
                        (stream, options),
                        text,
                    );
                }
                continue;
            }
            Err(err) => {
                // Out of file descriptors, usually: back off rather than
                // spin, and keep serving the connections already open.
                failures.warn(|suppressed| {
                    warn!(suppressed, "cannot accept a connection: {}", Chain(&err));
                });
                // A connection that ends (a refusal told, say) frees a
                // descriptor, and the spare is taken back at once.
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_millis(100)) => {}
                    Some(_) = connections.join_next() => {}
                }
                continue;
            }
        };
        debug!(%peer, "connected");
        config.counters.connected();
        if let Some(refused) = config.refuses(&peer) {
            failures.warn(|suppressed| {
                warn!(%peer, suppressed, "refused a connection: {refused}");
            });
            let text = refused.text();
            tell_refused(
                &mut connections,
                &config,
                &refusing,
                (stream, options),
                text,
            );
            continue;
        }
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            let max = config.limits.max_conns;
            failures.warn(|suppressed| {
                warn!(%peer, suppressed, "refused a connection: {}", crate::refusal::full(max));
            });
            let text = crate::refusal::max_conns(max);
            tell_refused(
                &mut connections,
                &config,
                &refusing,
                (stream, options),
                text,
            );
            continue;
        };
        config.counters.opened();
        let events = events.clone();
        let config = Arc::clone(&config);
        let runner = runner.clone();
        let failures = Arc::clone(&failures);
        let handshakes = Arc::clone(&handshakes);
        connections.spawn(async move {
            let _slot = slot;
            // Each handshake's timeout counts from here, its wait for the
            // first byte and for a turn included: three waits of a timeout
            // each made a client wait up to three (audit, round four).
            let accepted = tokio::time::Instant::now();
            let result = match begun(&stream, &config, accepted).await {
                Err(err) => Err(err),
                Ok(()) => match &config.tls {
                    Some(tls) => secure(stream, tls, &handshakes, accepted).await,
                    None => Ok(stream),
                },
            };
            // The secret's handshake, inside TLS, has its timeout from
            // TLS's end.
            let began = match &config.tls {
                Some(_) => tokio::time::Instant::now(),
                None => accepted,
            };
            let result = match result {
                Err(err) => Err(err),
                Ok(stream) if config.raw => {
                    raw::serve_stream(
                        stream,
                        peer.clone(),
                        config.reply,
                        &options,
                        &config.limits,
                        events,
                    )
                    .await
                }
                Ok(stream) if config.framing == Framing::Length => {
                    length::serve_stream(
                        stream,
                        peer.clone(),
                        config.reply,
                        &options,
                        &config.limits,
                        events,
                    )
                    .await
                }
                Ok(stream) => match Connection::with_peer(stream, peer.clone(), options) {
                    Ok(conn) => {
                        let turns = (&*handshakes, began);
                        serve_connection(conn, &config, turns, runner.as_deref(), events).await
                    }
                    Err(err) => Err(err.into()),
                },
            };
            let handshake_failed = matches!(&result, Err(Error::Auth(_) | Error::Tls(_)));
            if let Err(err) = &result {
                config.dropped(&failures, &peer, err);
            }
            // A peer that never got through the handshake was not served:
            // it does not end a `--once` listener (anyone could, unproven).
            if !handshake_failed {
                config.counters.served(result.is_err());
            }
            config.counters.closed();
        });
    }
}

/// With a handshake to make (TLS, a secret), waits within its timeout for
/// the client to begin it before the connection asks for a turn among the
/// handshakes under way. The turns are few (`--max-handshakes`), and a
/// socket opened and left idle took one for the whole timeout: a few dozen
/// of them, refreshed, kept every client from authenticating. Idle, a
/// connection now holds only its place among `--max-conns`.
async fn begun(
    stream: &AnyStream,
    config: &ServeConfig,
    accepted: tokio::time::Instant,
) -> Result<(), Error> {
    let timeout = match (&config.tls, &config.auth) {
        (Some(tls), _) => tls.handshake_timeout(),
        (None, Some(auth)) => auth.handshake_timeout,
        (None, None) => return Ok(()),
    };
    match tokio::time::timeout_at(accepted + timeout, stream.input()).await {
        Ok(input) => Ok(input?),
        Err(_) if config.tls.is_some() => Err(crate::tls::TlsError::Timeout(timeout).into()),
        Err(_) => Err(Error::Auth(crate::auth::AuthFailure::Timeout(timeout))),
    }
}

/// The TLS handshake over a connection just accepted, in its turn among
/// the handshakes under way: a peer that has not finished one has proved
/// nothing, and each costs the listener a key exchange.
async fn secure(
    stream: AnyStream,
    tls: &crate::tls::TlsServer,
    handshakes: &tokio::sync::Semaphore,
    accepted: tokio::time::Instant,
) -> Result<AnyStream, Error> {
    let timeout = tls.handshake_timeout();
    let deadline = accepted + timeout;
    let timed_out = |_| crate::tls::TlsError::Timeout(timeout);
    let _turn = tokio::time::timeout_at(deadline, handshakes.acquire())
        .await
        .map_err(timed_out)?
        .expect("the semaphore is never closed");
    tokio::time::timeout_at(deadline, stream.accept_tls(tls))
        .await
        .map_err(timed_out)?
}

/// Tells a client why it is not served (the listener is full, say), and
/// closes; over TLS, inside a session, which all of it must make within a
/// second.
/// Tells a refused connection `text` (over its TLS, where the listener
/// has it) from a task of its own, while one of the [`MAX_REFUSING`]
/// turns is free; otherwise the connection is closed at once, unanswered,
/// and where the mode has no words to tell (`--raw`, `--framing length`)
/// with a reset.
fn tell_refused(
    connections: &mut JoinSet<()>,
    config: &ServeConfig,
    refusing: &Arc<tokio::sync::Semaphore>,
    (stream, options): (AnyStream, msg_tcp::Options),
    text: String,
) {
    if !config.tells_why() {
        stream.reset();
        return;
    }
    if let Ok(turn) = Arc::clone(refusing).try_acquire_owned() {
        let tls = config.tls.clone();
        connections.spawn(refuse_connection(stream, tls, options, text, turn));
    }
}

async fn refuse_connection(
    stream: AnyStream,
    tls: Option<crate::tls::TlsServer>,
    options: msg_tcp::Options,
    text: String,
    _turn: tokio::sync::OwnedSemaphorePermit,
) {
    let refuse = async {
        let stream = match &tls {
            Some(tls) => stream.accept_tls(tls).await.ok()?,
            None => stream,
        };
        let mut conn = Connection::new(stream, options).ok()?;
        conn.write_message(&error_message(&text)).await.ok()?;
        conn.shutdown().await.ok()
    };
    let _ = tokio::time::timeout(Duration::from_secs(1), refuse).await;
}
