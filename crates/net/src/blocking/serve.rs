//! The blocking engine's listener: [`Listener`] (`listener.rs`) binds std
//! sockets, and [`serve`] answers on threads of its own: one for a UDP socket, one to
//! accept TCP connections and one per connection, each sleeping in its
//! system call.
//!
//! What a message gets is decided by the same dispatch as the tokio serve
//! loop (`respond`), with the same limits and errors; only the waiting
//! differs. A thread cannot be cancelled as a future can, so every wait is
//! bounded by [`STOP_CHECK`] and the `stop` flag is read after each.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use msg_proto::auth::Role;
use msg_proto::{DiscardCounter, Kind};
use tracing::{debug, warn};

use super::auth::{Shaken, Slots, drain_refused, handshake, refuse_busy};
use super::io::{Framed, Read, Shortcut, until};
use super::listener::{Bound, Listener};
use super::stream::{AnyListener, AnyStream};
use super::wait::{STOP_CHECK, Spinner, block_on};
use crate::auth::{self, HAS_NO_SECRET};
use crate::deadlines::{Deadlines, Expired, idle_text};
use crate::log::RateLimited;
use crate::ping::pong_in_place;
use crate::respond::{Answering, Response, respond};
use crate::text::error_message;
use crate::{Error, Event, Events, PeerAddr, ServeConfig};

/// Serves `listener` on this thread (and, over TCP, a thread per
/// connection) until `stop` is set, the receiving end of `events` is gone
/// (over UDP), or a fatal error; returns within about [`STOP_CHECK`] of
/// `stop`, after every connection's thread has ended.
///
/// Framed messages only: `Data` (answered per `config.reply` and reported
/// as events), `Ping`, `Discard` and statistics pings, as
/// [`crate::serve`](fn@crate::serve) answers them, within `config.limits`.
///
/// # Errors
///
/// [`Error::NotInBlockingEngine`] for a configuration with raw mode, files,
/// commands or TLS; a failed receive on the UDP socket. TCP connections that
/// fail (their handshake included) are logged and dropped.
pub fn serve(
    listener: &Listener,
    config: &ServeConfig,
    events: &Events,
    stop: &Arc<AtomicBool>,
) -> Result<(), Error> {
    for (unsupported, what) in [
        (config.raw, "raw mode"),
        (config.save.is_some(), "files"),
        (config.exec.is_some(), "commands"),
        (config.tls.is_some(), "TLS"),
    ] {
        if unsupported {
            return Err(Error::NotInBlockingEngine(what));
        }
    }
    match &listener.inner {
        Bound::Datagram(socket, answer) => {
            let answer = answer.as_ref().unwrap_or(socket);
            super::udp::serve_udp(socket, answer, config, events, stop)
        }
        Bound::UnixDatagram(socket) => {
            if config.asks_senders() {
                socket.ask_senders(&config.allow_uids)?;
            }
            super::udp::serve_datagrams(socket, config, events, stop)
        }
        Bound::Stream(streams) => serve_streams(streams, listener.tcp, config, events, stop),
    }
}

/// Serves a stream listener of any kind: a thread per connection, within
/// the listener's limits.
fn serve_streams(
    listener: &AnyListener,
    options: msg_tcp::Options,
    config: &ServeConfig,
    events: &Events,
    stop: &Arc<AtomicBool>,
) -> Result<(), Error> {
    listener.set_accept_timeout(STOP_CHECK)?;
    let failures = Arc::new(RateLimited::default());
    let open = Arc::new(AtomicUsize::new(0));
    // Peers that have not proved they hold the secret share these, as on
    // the tokio listener, whatever max_conns is.
    let slots = Arc::new(Slots::new(config.limits.max_handshakes));
    let mut threads: Vec<JoinHandle<()>> = Vec::new();
    let mut spare = crate::open_files::Spare::new();
    while !stop.load(Ordering::Relaxed) {
        threads.retain(|thread| !thread.is_finished());
        spare.keep();
        let (stream, peer) = match listener.accept() {
            Ok(accepted) => accepted,
            Err(err) if super::io::timed_out(&err) => continue,
            Err(err) if err.kind() == std::io::ErrorKind::Interrupted => continue,
            // As the tokio engine's: the spare descriptor makes room to
            // tell the client that has waited longest.
            Err(err) if listener.waiting() && spare.give_up_for(&err) => {
                failures.warn(|suppressed| {
                    warn!(
                        suppressed,
                        "cannot accept a connection: {err}: telling the next client so"
                    );
                });
                if let Ok((stream, _)) = listener.accept() {
                    refuse_connection(stream, options, crate::refusal::NO_DESCRIPTORS);
                }
                continue;
            }
            Err(err) => {
                failures.warn(|suppressed| {
                    warn!(suppressed, "cannot accept a connection: {err}");
                });
                thread::sleep(STOP_CHECK);
                continue;
            }
        };
        debug!(%peer, "connected");
        config.counters.connected();
        stream.keepalive(config.limits.keepalive);
        if let Some(refused) = config.refuses(&peer) {
            failures.warn(|suppressed| {
                warn!(%peer, suppressed, "refused a connection: {refused}");
            });
            refuse_connection(stream, options, &refused.text());
            continue;
        }
        let max = config.limits.max_conns;
        if open.load(Ordering::Relaxed) >= max {
            failures.warn(|suppressed| {
                warn!(%peer, suppressed, "refused a connection: {}", crate::refusal::full(max));
            });
            refuse_connection(stream, options, &crate::refusal::max_conns(max));
            continue;
        }
        open.fetch_add(1, Ordering::Relaxed);
        config.counters.opened();
        let counters = Arc::clone(&config.counters);
        let (config, events, stop) = (config.clone(), events.clone(), Arc::clone(stop));
        let (still_open, dropped) = (Arc::clone(&open), Arc::clone(&failures));
        let slots = Arc::clone(&slots);
        let who = peer.clone();
        // Where the thread takes the stream from: one that cannot start
        // leaves it here, for the refusal.
        let handed = Arc::new(std::sync::Mutex::new(Some(stream)));
        let taken = Arc::clone(&handed);
        let spawned = thread::Builder::new()
            .name("msg-conn".to_owned())
            .spawn(move || {
                let peer = who;
                let Some(stream) = take(&taken) else {
                    return;
                };
                let served =
                    serve_connection(stream, &peer, options, &slots, &config, &events, &stop);
                // As the tokio engine's: a peer that failed the handshake
                // was not served.
                let handshake_failed = matches!(&served, Err(Error::Auth(_)));
                if let Err(err) = &served {
                    // In the words the tokio listener uses, and counted as
                    // it counts.
                    config.dropped(&dropped, &peer, err);
                }
                debug!(%peer, "closed");
                still_open.fetch_sub(1, Ordering::Relaxed);
                if !handshake_failed {
                    config.counters.served(served.is_err());
                }
                // One the stop cut short stays counted open, as a tokio
                // task dropped at the stop does.
                if !(served.is_ok() && stop.load(Ordering::Relaxed)) {
                    config.counters.closed();
                }
            });
        match spawned {
            Ok(thread) => threads.push(thread),
            Err(err) => {
                // The connection is refused, said why as a full listener
                // says it, and its place is free. At the user's thread
                // limit every connection meets this: the warning is
                // rate-limited as every peer's (it was one a connection,
                // 277 lines in 2 s, and the client was closed unsaid;
                // audit, round seven).
                open.fetch_sub(1, Ordering::Relaxed);
                counters.closed();
                failures.warn(|suppressed| {
                    warn!(%peer, suppressed, "cannot start a thread for a connection: {err}");
                });
                if let Some(stream) = take(&handed) {
                    refuse_connection(stream, options, crate::refusal::NO_THREAD);
                }
            }
        }
    }
    for thread in threads {
        let _ = thread.join();
    }
    Ok(())
}

/// Waits until `deadline` (the handshake `timeout` from the accept) for
/// the client to send something (or close), each wait at most the
/// socket's read timeout: `Ok(false)` when `stop` came first.
fn begun(
    stream: &AnyStream,
    (deadline, timeout): (Instant, Duration),
    stop: &AtomicBool,
) -> Result<bool, Error> {
    loop {
        if stop.load(Ordering::Relaxed) {
            return Ok(false);
        }
        if Instant::now() >= deadline {
            return Err(Error::Auth(auth::AuthFailure::Timeout(timeout)));
        }
        match stream.peek_input() {
            Ok(()) => return Ok(true),
            Err(err)
                if matches!(
                    err.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(err) => return Err(err.into()),
        }
    }
}

/// Serves one framed connection on this thread: the handshake first when
/// the listener has a secret (nothing else is read until it completes,
/// within its timeout), then every message.
fn serve_connection(
    stream: AnyStream,
    peer: &PeerAddr,
    options: msg_tcp::Options,
    slots: &Slots,
    config: &ServeConfig,
    events: &Events,
    stop: &AtomicBool,
) -> Result<(), Error> {
    stream.apply(&options)?;
    super::stream::Stream::set_read_timeout(&stream, Some(STOP_CHECK))?;
    stream.set_write_timeout(Some(STOP_CHECK))?;
    let mut conn = Framed::new(stream, options.max_frame);
    if let Some(auth) = &config.auth {
        // The handshake's timeout counts from the accept, its waits for
        // the first byte and for a turn included, as on the tokio engine.
        let timeout = auth.handshake_timeout;
        let deadline = Instant::now() + timeout;
        // A turn among the handshakes only once the client has begun its
        // own (it speaks first): an idle socket must not hold one, as the
        // tokio listener's `begun` says.
        if !begun(conn.get_ref(), (deadline, timeout), stop)? {
            return Ok(());
        }
        // Its turn comes by then, or never: waiting here, it has read
        // nothing.
        let Some(slot) = slots.take(deadline, STOP_CHECK, stop) else {
            if stop.load(Ordering::Relaxed) {
                return Ok(());
            }
            let busy = crate::refusal::HANDSHAKES_BUSY.format(config.limits.max_handshakes);
            refuse_busy(&mut conn, &busy, STOP_CHECK, stop);
            return Err(Error::Auth(auth::AuthFailure::Timeout(timeout)));
        };
        let shaken = handshake(&mut conn, auth, (Role::Server, deadline), STOP_CHECK, stop);
        drop(slot);
        match shaken {
            Ok(Shaken::Done) => debug!(%peer, "authenticated"),
            Ok(Shaken::Stopped) => return Ok(()),
            Err(err) => {
                drain_refused(&mut conn, &err, auth, STOP_CHECK, stop);
                return Err(err);
            }
        }
    }
    let go_on = until(stop, config.limits.frame_timeout);
    // A write cut short because the listener is stopping is no stalled
    // peer, whatever the write reports: the stop is not this peer's fault.
    let stopped = |err: Error| {
        if stop.load(Ordering::Relaxed) {
            Ok(())
        } else {
            Err(err)
        }
    };
    let mut counter = DiscardCounter::default();
    let mut spinner = Spinner::new(config.busy_poll);
    let mut deadlines = Deadlines::new(&config.limits, Instant::now());
    let mut answering = Answering::default();
    while !stop.load(Ordering::Relaxed) {
        // Each wait lasts at most STOP_CHECK (the socket's timeout); the
        // limits are checked whenever one runs out.
        // A plain ping is answered where it lies in the read buffer: the
        // bytes of the pong `respond` would give, without decoding it or
        // encoding that (a ping-pong's whole work on this side).
        let shortcut = answering
            .wanted()
            .then_some(Shortcut::Answer((&pong_in_place, &go_on)));
        let read = match conn.read_or_answer(spinner.wait(), shortcut) {
            Ok(read) => read,
            Err(err) if answering.ended(&err) => return Ok(()),
            Err(msg_tcp::Error::FrameTooLarge { len, max }) => {
                // Said, and the frame read and dropped (one fixed buffer,
                // for at most a second): closed with it unread, the reset
                // could reach the peer before the answer.
                let text = crate::refusal::FRAME_TOO_LARGE.format(max);
                let _ = conn.write_message(&error_message(&text), &go_on);
                let deadline = Instant::now() + crate::serve::REFUSED_FRAME_DRAIN;
                conn.discard(len.saturating_add(4), deadline, STOP_CHECK, stop);
                return stopped(msg_tcp::Error::FrameTooLarge { len, max }.into());
            }
            Err(err) => return stopped(err.into()),
        };
        let msg = match read {
            None => {
                spinner.got_one();
                deadlines.on_message(Instant::now);
                continue;
            }
            Some(Read::Message(msg)) => msg,
            Some(Read::Closed) => return Ok(()),
            Some(Read::Nothing) => match deadlines.on_wait_over(Instant::now(), conn.buffered()) {
                Ok(()) => continue,
                Err(Expired::Frame(after)) => return Err(Error::FrameTimeout { after }),
                Err(Expired::Idle(after)) => {
                    let _ = conn.write_message(&error_message(&idle_text(after)), &go_on);
                    return Err(Error::Idle { after });
                }
            },
        };
        spinner.got_one();
        deadlines.on_message(Instant::now);
        match msg.kind {
            Kind::AuthChallenge => {
                let _ = conn.write_message(&error_message(HAS_NO_SECRET), &go_on);
                return Err(msg_tcp::Error::Decode(msg_proto::Error::NeedsSecret).into());
            }
            Kind::FileHeader | Kind::TreeStart | Kind::Command => {
                let text = crate::refusal::BLOCKING_ENGINE;
                let _ = conn.write_message(&error_message(text), &go_on);
                return Err(Error::NotInBlockingEngine("files or commands"));
            }
            Kind::Ping if crate::ping::is_send(&msg) => {
                let text = crate::refusal::BLOCKING_NO_STREAM;
                let _ = conn.write_message(&error_message(text), &go_on);
                return Err(Error::NotInBlockingEngine("a stream back to the peer"));
            }
            _ => {}
        }
        let Response { answer, show } = respond(&msg, config.reply, &mut counter);
        if let Some(answer) = answer.filter(|_| answering.wanted())
            && let Err(err) = answering.written(peer, conn.write_message(&answer, &go_on))
        {
            return stopped(err.into());
        }
        if show && events.wanted() {
            let event = Event::Message {
                peer: peer.clone(),
                seq: Some(msg.seq),
                body: msg.body,
            };
            // Waits while the queue is full, as the tokio listener does:
            // this peer's sender then waits too.
            match block_on(events.deliver(event), stop) {
                Some(true) => {}
                Some(false) | None => return Ok(()),
            }
        }
    }
    Ok(())
}

/// Tells a client why it is not served (the listener is full, say), and
/// closes.
/// The stream in `slot`, for whoever takes it first: the connection's
/// thread, or the accept loop when that thread could not start.
fn take(slot: &std::sync::Mutex<Option<AnyStream>>) -> Option<AnyStream> {
    slot.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .take()
}

fn refuse_connection(stream: AnyStream, options: msg_tcp::Options, text: &str) {
    let _ = stream.set_write_timeout(Some(Duration::from_secs(1)));
    let mut conn = Framed::new(stream, options.max_frame);
    let _ = conn.write_message(&error_message(text), &|_| false);
}
