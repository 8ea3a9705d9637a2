//! [`serve`]: accept, dispatch each message by kind, answer, report.
//!
//! Over UDP one socket serves every peer in one loop: a datagram is a whole
//! message, so there is nothing per peer to keep but a counter. Over TCP
//! each connection gets a task of its own, so a slow or broken client
//! stalls only itself; a peer that sends bad bytes is dropped, logged, and
//! everyone else goes on being served.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use msg_proto::{Kind, Message};
use tokio::task::JoinSet;
use tracing::{debug, warn};

use crate::auth::{self, Auth, HAS_NO_SECRET};
use crate::exec::{ExecConfig, Runner};
use crate::file::{self, SaveConfig};
use crate::listener::Bound;
use crate::{
    BusyPoll, Counters, Error, Event, Events, Limits, Listener, Offer, Reply, data, ping, raw,
};
use msg_proto::DiscardCounter;
use msg_proto::auth::Role;

/// How a listener behaves.
#[derive(Debug, Clone, Default)]
pub struct ServeConfig {
    /// Accept only peers that know this secret: over TCP each connection
    /// must complete the handshake first, over UDP each datagram must carry
    /// a valid tag (and not be a replay).
    pub auth: Option<Auth>,
    /// What to answer each `Data` message (or, raw, each datagram or read).
    pub reply: Reply,
    /// No header and no framing: the bytes alone.
    pub raw: bool,
    /// Poll the sockets in a loop instead of sleeping (see [`BusyPoll`]).
    pub busy_poll: bool,
    /// What each peer may cost.
    pub limits: Limits,
    /// What the listener counts as it goes, for a summary.
    pub counters: Arc<Counters>,
    /// Save the files peers send here (TCP); without it they are refused.
    pub save: Option<SaveConfig>,
    /// Run the commands authenticated peers send (TCP), within these
    /// limits. Ignored without [`ServeConfig::auth`]: a command never runs
    /// for a peer that did not prove it knows the secret.
    pub exec: Option<ExecConfig>,
    /// Over UDP, receive up to this many datagrams per system call
    /// (`recvmmsg`, at most [`MAX_BATCH`](crate::MAX_BATCH)), and GSO runs
    /// of datagrams coalesced (UDP GRO) where the kernel offers it; 0 or 1,
    /// one per call. The calls are counted in [`ServeConfig::counters`].
    pub udp_batch: usize,
}

/// Serves `listener` until `shutdown` completes, the receiving end of
/// `events` is gone (over UDP), or a fatal error.
///
/// Dropping the returned future stops every connection it serves.
///
/// # Errors
///
/// A failed receive on the UDP socket. TCP connections that fail are
/// logged and dropped, and the listener goes on.
pub async fn serve(
    listener: Listener,
    config: ServeConfig,
    events: Events,
    shutdown: impl Future<Output = ()>,
) -> Result<(), Error> {
    let _spinning = config.busy_poll.then(BusyPoll::start);
    let serving = async {
        match listener.inner {
            Bound::Udp(socket) if config.raw => raw::serve_udp(socket, config.reply, events).await,
            Bound::Udp(mut socket) => {
                if let Some(auth) = &config.auth {
                    socket.authenticate(&auth.secret, Role::Server, auth::session_id());
                }
                if config.udp_batch > 1 {
                    crate::batch::serve_udp(socket, &config, events).await
                } else {
                    serve_udp(socket, &config, events).await
                }
            }
            Bound::Tcp(listener) => serve_tcp(listener, config, events).await,
        }
    };
    tokio::select! {
        result = serving => result,
        () = shutdown => Ok(()),
    }
}

/// What to do with one framed message.
#[derive(Debug, PartialEq)]
pub(crate) struct Response {
    /// Sent back to the peer first, so that a caller that stops after a
    /// number of messages never stops before the answer left.
    pub(crate) answer: Option<Message>,
    /// Whether the message is reported as an [`Event::Message`].
    pub(crate) show: bool,
}

/// The dispatch by kind: one arm per feature, each in its own module.
/// The blocking engine answers with it too.
pub(crate) fn respond(msg: &Message, reply: Reply, counter: &mut DiscardCounter) -> Response {
    match msg.kind {
        Kind::Data => Response {
            answer: data::reply_to(msg, reply),
            show: true,
        },
        Kind::Ping => Response {
            answer: ping::pong(msg, counter),
            show: false,
        },
        Kind::Discard => {
            counter.count(msg.seq);
            Response {
                answer: None,
                show: false,
            }
        }
        other => {
            debug!(kind = ?other, seq = msg.seq, "ignored a message of a kind msg listen does not serve");
            Response {
                answer: None,
                show: false,
            }
        }
    }
}

async fn serve_udp(
    socket: msg_udp::Socket,
    config: &ServeConfig,
    events: Events,
) -> Result<(), Error> {
    let mut socket = CountedSocket::new(socket, &config.counters);
    let reply = config.reply;
    let mut peers = UdpPeers::new(config.limits.max_udp_peers);
    let mut dropped = DropWarning::default();
    loop {
        let (msg, peer) = socket.recv_from().await?;
        config
            .counters
            .set_udp(socket.invalid_datagrams(), socket.auth_rejections().total());
        let Response { answer, show } = peers.respond(&msg, peer, reply);
        if let Some(answer) = answer {
            if let Err(err) = socket.send_to(&answer, peer).await {
                warn!(%peer, "cannot reply: {err}");
            }
        }
        if show && !show_datagram(&events, &mut dropped, peer, &msg) {
            return Ok(());
        }
    }
}

/// A UDP listener's socket that leaves its counts of invalid and
/// unauthenticated datagrams in the listener's [`Counters`] however its
/// loop ends, an error or the serve future dropped at shutdown included.
/// The loop updates them only when a valid message arrives (the socket
/// skips the others inside one receive), so without this, garbage after
/// the last valid message was counted nowhere.
pub(crate) struct CountedSocket<'a> {
    socket: msg_udp::Socket,
    counters: &'a Counters,
}

impl<'a> CountedSocket<'a> {
    pub(crate) fn new(socket: msg_udp::Socket, counters: &'a Counters) -> Self {
        Self { socket, counters }
    }
}

impl std::ops::Deref for CountedSocket<'_> {
    type Target = msg_udp::Socket;

    fn deref(&self) -> &msg_udp::Socket {
        &self.socket
    }
}

impl std::ops::DerefMut for CountedSocket<'_> {
    fn deref_mut(&mut self) -> &mut msg_udp::Socket {
        &mut self.socket
    }
}

impl Drop for CountedSocket<'_> {
    fn drop(&mut self) {
        self.counters.set_udp(
            self.socket.invalid_datagrams(),
            self.socket.auth_rejections().total(),
        );
    }
}

/// The discard counters of a UDP listener's peers, at most `max` of them:
/// a flood of spoofed source addresses cannot grow the table past it.
///
/// A stream comes from one peer datagram after datagram, so the peer of
/// the last lookup is checked first, by comparing addresses: hashing a
/// `SocketAddr` with the map's SipHash (kept, because a peer picks the
/// keys) cost about 220 instructions a datagram, a quarter of what the
/// blocking listener spent on one (callgrind, BENCHMARKS.md).
#[derive(Debug)]
pub(crate) struct UdpPeers {
    /// Each peer's place in `counters`.
    index: HashMap<SocketAddr, usize>,
    counters: Vec<(SocketAddr, DiscardCounter)>,
    /// The place of the peer looked up last.
    last: usize,
    max: usize,
}

impl UdpPeers {
    pub(crate) fn new(max: usize) -> Self {
        Self {
            index: HashMap::new(),
            counters: Vec::new(),
            last: 0,
            max,
        }
    }

    /// [`respond`] with `peer`'s counter. Only discards and statistics
    /// pings need it; a benchmark's plain pings skip the lookup, and a
    /// peer past the table's size gets a scratch counter.
    pub(crate) fn respond(&mut self, msg: &Message, peer: SocketAddr, reply: Reply) -> Response {
        let mut untracked = DiscardCounter::default();
        let counter = if ping::uses_counter(msg) {
            self.counter(peer).unwrap_or(&mut untracked)
        } else {
            &mut untracked
        };
        respond(msg, reply, counter)
    }

    /// `peer`'s counter, made on its first message while the table has
    /// room; `None` once it is full.
    fn counter(&mut self, peer: SocketAddr) -> Option<&mut DiscardCounter> {
        if self
            .counters
            .get(self.last)
            .is_none_or(|(at, _)| *at != peer)
        {
            self.last = match self.index.entry(peer) {
                Entry::Occupied(known) => *known.get(),
                Entry::Vacant(_) if self.counters.len() >= self.max => return None,
                Entry::Vacant(new) => {
                    new.insert(self.counters.len());
                    self.counters.push((peer, DiscardCounter::default()));
                    self.counters.len() - 1
                }
            };
        }
        Some(&mut self.counters[self.last].1)
    }
}

/// Offers a datagram's message for printing, without waiting (a UDP loop
/// must not wait on one peer's behalf); `false` once nobody prints any more.
pub(crate) fn show_datagram(
    events: &Events,
    dropped: &mut DropWarning,
    peer: SocketAddr,
    msg: &Message,
) -> bool {
    if !events.wanted() {
        return true;
    }
    // A copy, so the queue holds what arrived and not the socket's whole
    // 64 KiB receive buffer.
    let event = Event::Message {
        peer,
        seq: Some(msg.seq),
        body: bytes::Bytes::copy_from_slice(&msg.body),
    };
    match events.offer(event) {
        Offer::Queued => true,
        Offer::Dropped => {
            dropped.note(events);
            true
        }
        Offer::Closed => false,
    }
}

async fn serve_tcp(
    listener: msg_tcp::Listener,
    config: ServeConfig,
    events: Events,
) -> Result<(), Error> {
    let options = listener.options();
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
    // Owned here, so that dropping `serve` drops every connection.
    let mut connections = JoinSet::new();
    // And kills every running command's process tree, at once: a task
    // dropped with the set above is dropped only when next polled.
    let _commands = runner.as_deref().map(Runner::kill_on_stop);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept_stream() => accepted,
            // Reap finished connections so the set does not grow.
            Some(_) = connections.join_next() => continue,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(err) => {
                // Out of file descriptors, usually: back off rather than
                // spin, and keep serving the connections already open.
                warn!("cannot accept a connection: {err}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        debug!(%peer, "connected");
        config.counters.connected();
        keepalive(&stream, config.limits.keepalive);
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            let max = config.limits.max_conns;
            failures.warn(|suppressed| {
                warn!(%peer, suppressed, "refused a connection: {max} are open (--max-conns {max})");
            });
            if !config.raw {
                connections.spawn(refuse_connection(stream, options, max));
            }
            continue;
        };
        let events = events.clone();
        let config = Arc::clone(&config);
        let runner = runner.clone();
        let failures = Arc::clone(&failures);
        let handshakes = Arc::clone(&handshakes);
        connections.spawn(async move {
            let _slot = slot;
            let result = if config.raw {
                raw::serve_tcp(
                    stream,
                    peer,
                    config.reply,
                    options.nodelay,
                    &config.limits,
                    events,
                )
                .await
            } else {
                match msg_tcp::Connection::new(stream, options) {
                    Ok(conn) => {
                        serve_connection(conn, &config, &handshakes, runner.as_deref(), events)
                            .await
                    }
                    Err(err) => Err(err.into()),
                }
            };
            if let Err(err) = result {
                failures.warn(|suppressed| {
                    warn!(%peer, suppressed, "dropped connection: {}", Chain(&err));
                });
            }
        });
    }
}

/// Serves one framed connection: the handshake first when the listener
/// has a secret (nothing else is read until it completes, within its
/// timeout), then every message.
async fn serve_connection(
    mut conn: msg_tcp::Connection,
    config: &ServeConfig,
    handshakes: &tokio::sync::Semaphore,
    runner: Option<&Runner>,
    events: Events,
) -> Result<(), Error> {
    let runner = match &config.auth {
        Some(auth) => {
            // Its turn comes within the handshake timeout, or never: a
            // connection waiting here has read nothing, so it costs a
            // descriptor and no buffer.
            let timeout = auth.handshake_timeout;
            let turn = tokio::time::timeout(timeout, handshakes.acquire())
                .await
                .map_err(|_| Error::Auth(auth::AuthFailure::Timeout(timeout)))?
                .expect("the semaphore is never closed");
            let shaken = auth::server(&mut conn, auth).await;
            drop(turn);
            if let Err(err) = shaken {
                auth::drain_refused(&mut conn, &err, auth).await;
                return Err(err);
            }
            debug!(peer = %conn.peer_addr(), "authenticated");
            runner
        }
        // Never without a secret, whatever the caller passed.
        None => None,
    };
    serve_framed(conn, config, runner, events).await
}

async fn serve_framed(
    mut conn: msg_tcp::Connection,
    config: &ServeConfig,
    runner: Option<&Runner>,
    events: Events,
) -> Result<(), Error> {
    let peer = conn.peer_addr();
    let reply = config.reply;
    let mut counter = DiscardCounter::default();
    while let Some(msg) = next_message(&mut conn, &config.limits).await? {
        if msg.kind == Kind::FileHeader {
            let _transfer = config.counters.transfer();
            file::receive(&mut conn, &msg, config.save.as_ref(), &events).await?;
            continue;
        }
        if msg.kind == Kind::Command {
            // One command per connection: it ends with the command.
            return match runner {
                Some(runner) => runner.run(&mut conn, &msg).await,
                None => {
                    let reason =
                        "this listener runs no commands; start it with --exec and a secret";
                    conn.write_message(
                        &msg_proto::exec::Exit::Refused(reason.to_owned()).to_message(),
                    )
                    .await?;
                    Ok(())
                }
            };
        }
        if msg.kind == Kind::AuthChallenge {
            // A client with a secret, and no secret here: tell it, so it
            // does not wait for a handshake that never comes.
            let _ = conn
                .write_message(&auth::error_message(HAS_NO_SECRET))
                .await;
            return Err(msg_tcp::Error::Decode(msg_proto::Error::NeedsSecret).into());
        }
        let Response { answer, show } = respond(&msg, reply, &mut counter);
        if let Some(answer) = answer {
            conn.write_message(&answer).await?;
        }
        if show {
            let event = Event::Message {
                peer,
                seq: Some(msg.seq),
                body: msg.body,
            };
            // Waits while the queue is full: this peer's sender then waits
            // too, through TCP's flow control.
            if !events.deliver(event).await {
                break; // nobody prints any more (--count reached)
            }
        }
    }
    debug!(%peer, "closed");
    Ok(())
}

/// The next message within the limits: the peer may stay quiet between
/// messages for the idle timeout, and a frame, once begun, must complete
/// within about the frame timeout.
///
/// One timer per read and no extra system call: the wait is cut into
/// periods (the shorter of the two timeouts), and what the read buffer
/// holds when a period runs out tells which limit applies. Nothing
/// buffered: the peer is idle. Part of a frame, still after the next
/// period: the frame is too slow (it had between one and two periods).
async fn next_message(
    conn: &mut msg_tcp::Connection,
    limits: &Limits,
) -> Result<Option<Message>, Error> {
    let period = limits
        .idle_timeout
        .map_or(limits.frame_timeout, |idle| idle.min(limits.frame_timeout));
    let mut idle_for = Duration::ZERO;
    let mut partial = false;
    loop {
        // Reading a frame is cancel-safe: what arrived stays buffered.
        let Ok(result) = tokio::time::timeout(period, conn.read_message()).await else {
            if conn.buffered() > 0 {
                if partial {
                    return Err(Error::FrameTimeout {
                        after: limits.frame_timeout,
                    });
                }
                partial = true;
                continue;
            }
            partial = false;
            idle_for += period;
            match limits.idle_timeout {
                Some(idle) if idle_for >= idle => {
                    let text = format!(
                        "idle for {}: closing (--idle-timeout)",
                        humantime::format_duration(idle)
                    );
                    let _ = conn.write_message(&auth::error_message(&text)).await;
                    return Err(Error::Idle { after: idle });
                }
                _ => continue,
            }
        };
        return result.map_err(Error::from);
    }
}

/// Tells a client that the listener is full, and closes.
async fn refuse_connection(stream: tokio::net::TcpStream, options: msg_tcp::Options, max: usize) {
    if let Ok(mut conn) = msg_tcp::Connection::new(stream, options) {
        let text = format!(
            "this listener serves at most {max} connections at once (--max-conns {max}); try again later"
        );
        let _ = tokio::time::timeout(
            Duration::from_secs(1),
            conn.write_message(&auth::error_message(&text)),
        )
        .await;
    }
}

/// Turns TCP keepalive on, so that a peer that vanished is noticed.
fn keepalive(stream: &tokio::net::TcpStream, after: Option<Duration>) {
    let Some(after) = after else { return };
    let probes = socket2::TcpKeepalive::new()
        .with_time(after)
        .with_interval(Duration::from_secs(10));
    if let Err(err) = socket2::SockRef::from(stream).set_tcp_keepalive(&probes) {
        debug!("cannot turn TCP keepalive on: {err}");
    }
}

/// An error and its sources on one line, `a: b: c`, for a log line.
pub(crate) struct Chain<'a>(pub(crate) &'a (dyn std::error::Error + 'static));

impl std::fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(err) = source {
            write!(f, ": {err}")?;
            source = err.source();
        }
        Ok(())
    }
}

/// At most one warning a second from many tasks; the ones held back are
/// counted into the next.
#[derive(Debug, Default)]
pub(crate) struct RateLimited {
    last: std::sync::Mutex<Option<Instant>>,
    suppressed: std::sync::atomic::AtomicU64,
}

impl RateLimited {
    const EVERY: Duration = Duration::from_secs(1);

    /// Calls `warn` with the number held back since the last warning, or
    /// holds this one back.
    pub(crate) fn warn(&self, warn: impl FnOnce(u64)) {
        use std::sync::atomic::Ordering;
        let mut last = self
            .last
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if last.is_none_or(|at| at.elapsed() >= Self::EVERY) {
            *last = Some(Instant::now());
            drop(last);
            warn(self.suppressed.swap(0, Ordering::Relaxed));
        } else {
            self.suppressed.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Warns that messages were dropped because the output did not keep up,
/// at most once a second, with the running total.
#[derive(Debug, Default)]
pub(crate) struct DropWarning {
    last: Option<Instant>,
}

impl DropWarning {
    const EVERY: Duration = Duration::from_secs(1);

    pub(crate) fn note(&mut self, events: &Events) {
        if self.last.is_none_or(|last| last.elapsed() >= Self::EVERY) {
            self.last = Some(Instant::now());
            warn!(
                dropped = events.dropped(),
                "the output is not keeping up: dropped UDP messages it had no room for"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ConnectOptions, Link, Transport};

    #[test]
    fn udp_peers_count_each_peer_apart_up_to_the_table_size() {
        let mut peers = UdpPeers::new(2);
        let (a, b, c): (SocketAddr, SocketAddr, SocketAddr) = (
            "127.0.0.1:1".parse().unwrap(),
            "127.0.0.1:2".parse().unwrap(),
            "[::1]:1".parse().unwrap(),
        );
        // Interleaved, so the last-peer shortcut misses as often as it hits.
        for seq in 1..=3 {
            for peer in [a, a, b, c] {
                let discard = Message::new(Kind::Discard, seq, "x");
                assert_eq!(peers.respond(&discard, peer, Reply::None).answer, None);
            }
        }
        let received = |peers: &mut UdpPeers, peer| {
            let answer = peers
                .respond(&ping::stats_request(9), peer, Reply::None)
                .answer
                .expect("a statistics ping is answered");
            ping::parse_stats(&answer).unwrap().received
        };
        assert_eq!(received(&mut peers, a), 6);
        assert_eq!(received(&mut peers, b), 3);
        // The third peer found the table full: answered, not counted.
        assert_eq!(received(&mut peers, c), 0);
        assert_eq!(peers.counters.len(), 2);
    }

    #[tokio::test]
    async fn accepted_connections_get_keepalive() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (_client, accepted) =
            tokio::join!(tokio::net::TcpStream::connect(addr), listener.accept());
        let (stream, _) = accepted.unwrap();
        let sock = socket2::SockRef::from(&stream);
        assert!(!sock.keepalive().unwrap());
        keepalive(&stream, Limits::default().keepalive);
        assert!(sock.keepalive().unwrap());
        #[cfg(target_os = "linux")]
        assert_eq!(sock.tcp_keepalive_time().unwrap(), Duration::from_secs(60));
    }

    #[test]
    fn data_is_shown_and_answered_per_reply() {
        let data = Message::new(Kind::Data, 7, "hi");
        let mut counter = DiscardCounter::default();
        let response = respond(&data, Reply::Upper, &mut counter);
        assert!(response.show);
        assert_eq!(response.answer.unwrap().body, "HI");
        assert_eq!(
            respond(&data, Reply::None, &mut counter),
            Response {
                answer: None,
                show: true
            }
        );
    }

    #[test]
    fn pings_are_answered_whatever_reply_says_and_not_shown() {
        let ping = Message::new(Kind::Ping, 4, "x");
        let response = respond(&ping, Reply::None, &mut DiscardCounter::default());
        assert!(!response.show);
        assert_eq!(response.answer.unwrap().kind, Kind::Pong);
    }

    #[test]
    fn other_kinds_are_ignored() {
        for kind in [Kind::Pong, Kind::Discard, Kind::Error, Kind::FileChunk] {
            let response = respond(
                &Message::new(kind, 1, "x"),
                Reply::Echo,
                &mut DiscardCounter::default(),
            );
            assert_eq!(
                response,
                Response {
                    answer: None,
                    show: false
                },
                "{kind:?}"
            );
        }
    }

    /// `serve` in-process, over both transports: a ping is answered, a
    /// data message is reported, and shutdown ends it.
    #[tokio::test]
    async fn serves_in_process_until_shutdown() {
        for transport in [Transport::Udp, Transport::Tcp] {
            let listener = Listener::bind(
                transport,
                "127.0.0.1:0".parse().unwrap(),
                msg_tcp::Options::default(),
            )
            .await
            .unwrap();
            let addr = listener.local_addr().unwrap();
            let (events, mut received) = Events::channel();
            let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
            let config = ServeConfig {
                reply: Reply::Echo,
                ..ServeConfig::default()
            };
            let server = tokio::spawn(serve(listener, config, events, async {
                let _ = stopped.await;
            }));

            let mut link = Link::connect(transport, addr, &ConnectOptions::default())
                .await
                .unwrap();
            link.send(&Message::new(Kind::Ping, 1, "p")).await.unwrap();
            let pong = link.recv().await.unwrap().unwrap();
            assert_eq!((pong.kind, pong.seq), (Kind::Pong, 1), "{transport}");
            link.send(&Message::new(Kind::Data, 2, "d")).await.unwrap();
            let echo = link.recv().await.unwrap().unwrap();
            assert_eq!((echo.kind, &echo.body[..]), (Kind::Data, &b"d"[..]));
            let delivered = received.try_recv().expect("reported after the reply");
            let Event::Message { seq, body, .. } = &delivered.event else {
                panic!("a message, not {:?}", delivered.event)
            };
            assert_eq!((*seq, &body[..]), (Some(2), &b"d"[..]));

            stop.send(()).unwrap();
            server.await.unwrap().unwrap();
        }
    }
}
