//! Many clients at once: 500 TCP connections to one in-process `serve`,
//! each a closed loop of 200 `Data` messages echoed back. Every reply must
//! come back on its own connection, in order, whole, exactly once.
//!
//! What it guards: the serve loop's per-connection tasks under a thousand
//! open sockets (the clients' and the accepted ones) on a small machine,
//! and the framing when many connections interleave on a few threads. Each
//! client's bodies name the client and the message, so a reply delivered
//! to the wrong connection, out of order or twice fails the test at once.
//!
//! The whole exchange is bounded by [`DEADLINE`]: a lost reply fails the
//! test instead of hanging it.

#![cfg(unix)]

#[path = "../../../tests/support/skip.rs"]
mod skip;

use std::sync::Arc;
use std::time::{Duration, Instant};

use msg_net::{ConnectOptions, Events, Link, Listener, Reply, ServeConfig, Transport, serve};
use msg_proto::{Kind, Message};
use tokio::sync::Barrier;
use tokio::task::JoinSet;

/// Connections open at once.
const CLIENTS: usize = 500;
/// Round trips on each connection.
const MESSAGES: u64 = 200;
/// Descriptors the test needs: a socket per client, one per accepted
/// connection, the listener, and room for the runtime and the harness.
const NEEDED_FDS: u64 = 2 * CLIENTS as u64 + 100;
/// A bound on the whole exchange; on this project's 2-core machines it
/// takes a few seconds.
const DEADLINE: Duration = Duration::from_secs(60);

#[test]
fn five_hundred_clients_each_get_every_reply_in_order() {
    if let Err(why) = raise_open_files(NEEDED_FDS) {
        let why = format!("load test needs {NEEDED_FDS} open files: {why}");
        // CI must run it, not quietly skip it.
        assert!(std::env::var("CI").as_deref() != Ok("true"), "{why}");
        skip::skip(&why);
        return;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let started = Instant::now();
    let replies = runtime
        .block_on(async { tokio::time::timeout(DEADLINE, exchange()).await })
        .unwrap_or_else(|_| panic!("{CLIENTS} clients did not finish within {DEADLINE:?}"));
    assert_eq!(replies, CLIENTS as u64 * MESSAGES);
    eprintln!(
        "{CLIENTS} clients x {MESSAGES} round trips in {:.2?}",
        started.elapsed()
    );
}

/// Serves an echo listener, runs every client to the end, stops the
/// listener; the number of replies checked.
async fn exchange() -> u64 {
    let listener = Listener::bind(
        Transport::Tcp,
        "127.0.0.1:0".parse::<std::net::SocketAddr>().unwrap(),
        Default::default(),
    )
    .await
    .expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let config = ServeConfig {
        reply: Reply::Echo,
        ..ServeConfig::default()
    };
    let server = tokio::spawn(serve(listener, config, Events::discard(), async {
        let _ = stopped.await;
    }));

    // Every client connects before any sends, so that all the connections
    // are open at once.
    let connected = Arc::new(Barrier::new(CLIENTS));
    let mut clients = JoinSet::new();
    for client in 0..CLIENTS {
        let connected = Arc::clone(&connected);
        clients.spawn(async move {
            let link = Link::connect(Transport::Tcp, addr, &ConnectOptions::default()).await;
            // Wait even when the connect failed, or everyone else would
            // wait for this one until the deadline.
            connected.wait().await;
            let link = link.map_err(|err| format!("client {client}: connect: {err}"))?;
            ping_pong(client, link)
                .await
                .map_err(|err| format!("client {client}: {err}"))
        });
    }
    let mut replies = 0;
    let mut failures = Vec::new();
    while let Some(joined) = clients.join_next().await {
        match joined.expect("a client task panicked") {
            Ok(n) => replies += n,
            Err(why) => failures.push(why),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {CLIENTS} clients failed; the first: {}",
        failures.len(),
        failures[0]
    );

    stop.send(()).unwrap();
    server.await.unwrap().expect("serve ended cleanly");
    replies
}

/// `MESSAGES` round trips, each reply checked, then the end of the stream:
/// nothing more may arrive after the last reply.
async fn ping_pong(client: usize, mut link: Link) -> Result<u64, String> {
    for seq in 1..=MESSAGES {
        let body = format!("client {client} message {seq}");
        link.send(&Message::new(Kind::Data, seq, body.clone()))
            .await
            .map_err(|err| format!("send {seq}: {err}"))?;
        let reply = link
            .recv()
            .await
            .map_err(|err| format!("reply to {seq}: {err}"))?
            .ok_or_else(|| format!("the listener closed before replying to {seq}"))?;
        if (reply.kind, reply.seq, &reply.body[..]) != (Kind::Data, seq, body.as_bytes()) {
            return Err(format!(
                "expected the echo of {seq} ({body:?}), got {:?} {} {:?}",
                reply.kind,
                reply.seq,
                String::from_utf8_lossy(&reply.body)
            ));
        }
    }
    // Our end closes; the listener's follows, with nothing before it.
    let (tx, mut rx) = link.split().map_err(|err| err.to_string())?;
    drop(tx);
    match rx.recv().await {
        Ok(None) => Ok(MESSAGES),
        Ok(Some(extra)) => Err(format!(
            "a message after the last reply: {:?} {}",
            extra.kind, extra.seq
        )),
        Err(err) => Err(format!("closing: {err}")),
    }
}

/// Raises the soft limit on open files to `needed`, as a listener does
/// for its connections; fails when the hard limit itself is below.
fn raise_open_files(needed: u64) -> Result<(), String> {
    use msg_net::open_files::{OpenFiles, make_room};
    match make_room(needed) {
        OpenFiles::Enough | OpenFiles::Raised { .. } => Ok(()),
        OpenFiles::Short { limit, .. } => Err(format!(
            "the limit (RLIMIT_NOFILE) is {limit}; raise it (ulimit -Hn, as root)"
        )),
    }
}
