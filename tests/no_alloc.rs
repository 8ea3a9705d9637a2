//! In steady state a ping-pong over either transport allocates nothing per
//! message: send buffers are reused, receive buffers are reclaimed once the
//! previous message is dropped, and the decode shares them.
//!
//! The same holds for the blocking engine (`msg_net::blocking`), client
//! and UDP listener, sleeping or busy-polling, and for batched UDP
//! (`sendmmsg`/`recvmmsg`, with and without GSO and GRO).
//!
//! The same holds with a shared secret: sealing and opening hash in place
//! into the same buffers, and a UDP replay window is made once per sender.
//!
//! A counting allocator (this test binary's global allocator) counts the
//! allocations each test's thread makes while a warmed-up client and server
//! exchange messages on a current-thread runtime. The first round trips
//! are not counted: the runtime and the buffers settle in them.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use std::future::Future;

use msg_net::ping;
use msg_proto::auth::{ClientHandshake, Role, Secret, ServerHandshake, SessionKeys};
use msg_proto::{Kind, Message};

struct Counting;

thread_local! {
    // `const` and free of destructors: reading it never allocates.
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
    // Set by a thread whose allocations another thread reads.
    static SHARED: Cell<bool> = const { Cell::new(false) };
}

/// The allocations of the threads that set [`SHARED`].
static SHARED_ALLOCATIONS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

fn count_one() {
    ALLOCATIONS.with(|n| n.set(n.get() + 1));
    if SHARED.with(Cell::get) {
        SHARED_ALLOCATIONS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
}

// SAFETY: every call is passed on to the system allocator unchanged; the
// count is a side effect on a thread-local cell.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count_one();
        // SAFETY: the caller's contract, passed on.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract, passed on.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count_one();
        // SAFETY: the caller's contract, passed on.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations() -> u64 {
    ALLOCATIONS.with(Cell::get)
}

/// A client and a server that can exchange a ping and its pong.
trait Echo {
    async fn round_trip(&mut self, seq: u64);
}

/// Allocations made by 1,000 round trips after 100 to warm up.
async fn allocations_in_1000_round_trips(echo: &mut impl Echo) -> u64 {
    for seq in 0..100 {
        echo.round_trip(seq).await;
    }
    let before = allocations();
    for seq in 100..1100 {
        echo.round_trip(seq).await;
    }
    allocations() - before
}

fn block_on<F: Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(future)
}

fn ping(seq: u64, ping: &mut Message) -> &Message {
    ping.seq = seq;
    ping
}

fn check_pong(pong: &Message, seq: u64) {
    assert_eq!((pong.kind, pong.seq), (Kind::Pong, seq));
}

struct Udp {
    client: msg_udp::Socket,
    server: msg_udp::Socket,
    ping: Message,
}

impl Echo for Udp {
    async fn round_trip(&mut self, seq: u64) {
        self.client.send(ping(seq, &mut self.ping)).await.unwrap();
        let (mut msg, from) = self.server.recv_from().await.unwrap();
        msg.kind = Kind::Pong;
        self.server.send_to(&msg, from).await.unwrap();
        drop(msg);
        check_pong(&self.client.recv_from().await.unwrap().0, seq);
    }
}

/// A UDP listener's way with a plain ping (msg-net's datagram serve
/// loop): answered where it lies, never decoded.
struct UdpInPlace(Udp);

impl Echo for UdpInPlace {
    async fn round_trip(&mut self, seq: u64) {
        let Udp {
            client,
            server,
            ping: message,
        } = &mut self.0;
        client.send(ping(seq, message)).await.unwrap();
        let got = server.recv_or_answer(ping::pong_in_place).await.unwrap();
        assert!(
            matches!(got, msg_udp::Incoming::Answered(_, Ok(()))),
            "{got:?}"
        );
        check_pong(&client.recv_from().await.unwrap().0, seq);
    }
}

struct Tcp {
    client: msg_tcp::Connection,
    server: msg_tcp::Connection,
    ping: Message,
}

impl Echo for Tcp {
    async fn round_trip(&mut self, seq: u64) {
        let ping = ping(seq, &mut self.ping);
        self.client.write_message(ping).await.unwrap();
        let mut msg = self.server.read_message().await.unwrap().unwrap();
        msg.kind = Kind::Pong;
        self.server.write_message(&msg).await.unwrap();
        drop(msg);
        check_pong(&self.client.read_message().await.unwrap().unwrap(), seq);
    }
}

fn secret() -> Secret {
    Secret::new(b"no alloc".to_vec()).unwrap()
}

async fn udp_pair(authenticated: bool) -> (msg_udp::Socket, msg_udp::Socket) {
    let mut server = msg_udp::Socket::bind("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let mut client = msg_udp::Socket::connect(server.local_addr().unwrap())
        .await
        .unwrap();
    if authenticated {
        server.authenticate(&secret(), Role::Server, [1; 8]);
        client.authenticate(&secret(), Role::Client, [2; 8]);
        assert!(server.is_authenticated() && client.is_authenticated());
    }
    (client, server)
}

/// Both ends' keys, from a handshake run in memory: the connection only
/// needs the two ends to agree.
fn tcp_keys() -> (SessionKeys, SessionKeys) {
    let (client, challenge) = ClientHandshake::start(&secret(), [1; 32]);
    let (response, server) = ServerHandshake::new(&secret(), [2; 32])
        .on_challenge(&challenge)
        .unwrap();
    let (proof, client) = client.on_response(&response).unwrap();
    let (verdict, server_keys) = server.on_proof(&proof);
    (client.on_result(&verdict).unwrap(), server_keys.unwrap())
}

async fn tcp_pair(authenticated: bool) -> (msg_tcp::Connection, msg_tcp::Connection) {
    let options = msg_tcp::Options::default();
    let listener = msg_tcp::Listener::bind(
        "127.0.0.1:0".parse::<std::net::SocketAddr>().unwrap(),
        options,
    )
    .await
    .unwrap();
    let addr = listener.local_addr().unwrap();
    let (client, server) = tokio::join!(
        msg_tcp::Connection::connect(addr, options),
        listener.accept()
    );
    let (mut client, mut server) = (client.unwrap(), server.unwrap());
    if authenticated {
        let (client_keys, server_keys) = tcp_keys();
        client.authenticate(&client_keys, Role::Client);
        server.authenticate(&server_keys, Role::Server);
        assert!(server.is_authenticated() && client.is_authenticated());
    }
    (client, server)
}

#[test]
fn a_warm_udp_ping_pong_allocates_nothing_per_message() {
    let during = block_on(async {
        let (client, server) = udp_pair(false).await;
        let ping = Message::new(Kind::Ping, 0, vec![b'm'; 1024]);
        allocations_in_1000_round_trips(&mut Udp {
            client,
            server,
            ping,
        })
        .await
    });
    assert_eq!(during, 0, "{during} allocations in 1000 UDP round trips");
}

#[test]
fn a_warm_udp_ping_answered_in_place_allocates_nothing_per_message() {
    let during = block_on(async {
        let (client, server) = udp_pair(false).await;
        let ping = Message::new(Kind::Ping, 0, vec![b'm'; 1024]);
        allocations_in_1000_round_trips(&mut UdpInPlace(Udp {
            client,
            server,
            ping,
        }))
        .await
    });
    assert_eq!(
        during, 0,
        "{during} allocations in 1000 UDP round trips answered in place"
    );
}

#[test]
fn a_warm_authenticated_udp_ping_pong_allocates_nothing_per_message() {
    let during = block_on(async {
        let (client, server) = udp_pair(true).await;
        let ping = Message::new(Kind::Ping, 0, vec![b'm'; 1024]);
        let mut udp = Udp {
            client,
            server,
            ping,
        };
        let during = allocations_in_1000_round_trips(&mut udp).await;
        assert_eq!(udp.server.auth_rejections().total(), 0);
        during
    });
    assert_eq!(
        during, 0,
        "{during} allocations in 1000 authenticated UDP round trips"
    );
}

#[test]
fn a_warm_tcp_ping_pong_allocates_nothing_per_message() {
    let during = block_on(async {
        let (client, server) = tcp_pair(false).await;
        let ping = Message::new(Kind::Ping, 0, vec![b'm'; 1024]);
        allocations_in_1000_round_trips(&mut Tcp {
            client,
            server,
            ping,
        })
        .await
    });
    assert_eq!(during, 0, "{during} allocations in 1000 TCP round trips");
}

#[test]
fn a_warm_authenticated_tcp_ping_pong_allocates_nothing_per_message() {
    let during = block_on(async {
        let (client, server) = tcp_pair(true).await;
        let ping = Message::new(Kind::Ping, 0, vec![b'm'; 1024]);
        allocations_in_1000_round_trips(&mut Tcp {
            client,
            server,
            ping,
        })
        .await
    });
    assert_eq!(
        during, 0,
        "{during} allocations in 1000 authenticated TCP round trips"
    );
}

/// The blocking engine: a `msg_net::blocking::Link` against the blocking
/// listener, both on std sockets. The listener runs on a thread of its
/// own, so only the client's thread is counted here; the listener's side
/// is the same buffers and codec, and the same dispatch.
///
/// With `client`, each round trip goes through msg-net's sans-IO ping
/// client as the benchmark engines drive it: numbered, stamped and timed
/// by it, the link only moving bytes.
fn blocking_allocations(transport: msg_net::Transport, busy_poll: bool, client: bool) -> u64 {
    use msg_net::blocking::{self, LinkOptions, Received};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::{Duration, Instant};

    let listener = blocking::Listener::bind(
        transport,
        "127.0.0.1:0".parse::<std::net::SocketAddr>().unwrap(),
        msg_tcp::Options::default(),
    )
    .unwrap();
    let addr = listener.local_addr().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    let config = msg_net::ServeConfig {
        busy_poll,
        ..msg_net::ServeConfig::default()
    };
    let server = std::thread::spawn(move || {
        blocking::serve(&listener, &config, &msg_net::Events::discard(), &flag).unwrap();
    });
    let options = LinkOptions {
        timeout: Duration::from_secs(5),
        busy_poll,
        ..LinkOptions::default()
    };
    let mut link = blocking::Link::connect(transport, addr, &options).unwrap();
    let body = bytes::Bytes::from(vec![b'm'; 1024]);
    let mut ping = Message::new(Kind::Ping, 0, body.clone());
    let mut pinger = ping::PingClient::new(transport, Duration::from_secs(5), body);
    let mut round_trip = |seq| {
        if client {
            assert!(drive(&mut link, &mut pinger, ping::Ask::Ping(Instant::now())).is_some());
            return;
        }
        ping.seq = seq;
        link.send(&ping).unwrap();
        match link.recv(Instant::now() + Duration::from_secs(5)).unwrap() {
            Received::Message(pong) => check_pong(&pong, seq),
            other => panic!("no pong to {seq}: {other:?}"),
        }
    };
    for seq in 0..100 {
        round_trip(seq);
    }
    let before = allocations();
    for seq in 100..1100 {
        round_trip(seq);
    }
    let during = allocations() - before;
    stop.store(true, Ordering::Relaxed);
    server.join().unwrap();
    during
}

/// What `ask` found, driving `client` over `link` as the blocking
/// benchmark engine does: a round trip's time (`None` if lost).
fn drive(
    link: &mut msg_net::blocking::Link,
    client: &mut ping::PingClient,
    ask: ping::Ask,
) -> Option<u64> {
    use msg_net::blocking::Received;
    use ping::Next;
    let mut next = client.start(ask);
    loop {
        next = match next {
            Next::Send(msg) => {
                link.send(msg).unwrap();
                client.on_sent(std::time::Instant::now)
            }
            Next::Recv(deadline) => match link.recv(deadline).unwrap() {
                Received::Message(reply) => client.on_reply(&reply, std::time::Instant::now()),
                Received::Nothing => client.on_deadline(),
                Received::Closed => panic!("the listener closed"),
            }
            .unwrap(),
            Next::Done(done) => return done.round_trip(),
        };
    }
}

#[test]
fn a_warm_blocking_ping_pong_allocates_nothing_per_message() {
    for transport in [msg_net::Transport::Udp, msg_net::Transport::Tcp] {
        for busy_poll in [false, true] {
            let during = blocking_allocations(transport, busy_poll, false);
            assert_eq!(
                during, 0,
                "{during} allocations in 1000 blocking {transport} round trips (busy-poll {busy_poll})"
            );
        }
    }
}

/// The benchmark's ping client, without I/O, adds nothing to a round trip
/// that allocates: the same ping renumbered and restamped in place.
#[test]
fn a_warm_ping_client_allocates_nothing_per_round_trip() {
    for transport in [msg_net::Transport::Udp, msg_net::Transport::Tcp] {
        let during = blocking_allocations(transport, false, true);
        assert_eq!(
            during, 0,
            "{during} allocations in 1000 {transport} round trips through the ping client"
        );
    }
}

/// The listener's side of the blocking engine over UDP, counted on the
/// serving thread (which flags itself, so that its allocations are also
/// summed where this thread can read them). Over TCP the listener serves
/// each connection on a thread it starts itself, so it is not counted
/// here; it reads and writes with the same `Framed` as the client above.
#[test]
fn a_warm_blocking_udp_listener_allocates_nothing_per_message() {
    use msg_net::blocking::{self, LinkOptions, Received};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::{Duration, Instant};

    let transport = msg_net::Transport::Udp;
    let listener = blocking::Listener::bind(
        transport,
        "127.0.0.1:0".parse::<std::net::SocketAddr>().unwrap(),
        msg_tcp::Options::default(),
    )
    .unwrap();
    let addr = listener.local_addr().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    let server = std::thread::spawn(move || {
        SHARED.with(|shared| shared.set(true));
        let config = msg_net::ServeConfig::default();
        blocking::serve(&listener, &config, &msg_net::Events::discard(), &flag).unwrap();
    });
    let options = LinkOptions {
        timeout: Duration::from_secs(5),
        ..LinkOptions::default()
    };
    let mut link = blocking::Link::connect(transport, addr, &options).unwrap();
    let mut ping = Message::new(Kind::Ping, 0, vec![b'm'; 1024]);
    let mut round_trip = |seq| {
        ping.seq = seq;
        link.send(&ping).unwrap();
        let Received::Message(pong) = link.recv(Instant::now() + Duration::from_secs(5)).unwrap()
        else {
            panic!("no pong to {seq}");
        };
        check_pong(&pong, seq);
    };
    for seq in 0..100 {
        round_trip(seq);
    }
    let before = SHARED_ALLOCATIONS.load(Ordering::SeqCst);
    for seq in 100..1100 {
        round_trip(seq);
    }
    let during = SHARED_ALLOCATIONS.load(Ordering::SeqCst) - before;
    stop.store(true, Ordering::Relaxed);
    server.join().unwrap();
    assert_eq!(
        during, 0,
        "{during} allocations in the blocking UDP listener over 1000 round trips"
    );
}

/// Batched UDP (`--batch`): `sendmmsg` with GSO runs on one side,
/// `recvmmsg` with GRO on the other, both on this thread. A coalesced run
/// is cut into messages that share its receive slot, which is reclaimed
/// once they are dropped; with `--no-gso` every datagram has a slot.
#[test]
fn a_warm_batched_udp_stream_allocates_nothing_per_message() {
    for gso in [true, false] {
        let during = block_on(async {
            let (mut client, mut server) = udp_pair(false).await;
            let _ = server.set_gro(gso);
            let mut send = msg_udp::SendBatch::new().with_gso(gso);
            let mut recv = msg_udp::RecvBatch::new(64);
            let mut msgs: Vec<Message> = (0..32)
                .map(|_| Message::new(Kind::Discard, 0, vec![b'b'; 64]))
                .collect();
            let mut got = Vec::with_capacity(64 * 32);
            let mut seq = 0;
            let mut batch = async |got: &mut Vec<(Message, std::net::SocketAddr)>| {
                for msg in &mut msgs {
                    seq += 1;
                    msg.seq = seq;
                }
                client.send_batch(&msgs, &mut send).await.unwrap();
                got.clear();
                // Loopback loses nothing from a batch this small; a stuck
                // receive fails the test instead of hanging it.
                while got.len() < msgs.len() {
                    tokio::time::timeout(
                        std::time::Duration::from_secs(5),
                        server.recv_batch(&mut recv, got),
                    )
                    .await
                    .expect("a batch arrives on loopback")
                    .unwrap();
                }
                assert_eq!(got.last().unwrap().0.seq, seq);
            };
            for _ in 0..20 {
                batch(&mut got).await;
            }
            let before = allocations();
            for _ in 0..100 {
                batch(&mut got).await;
            }
            let during = allocations() - before;
            if cfg!(target_os = "linux") {
                // The path under test was the one taken.
                assert_eq!(send.counts().segmented > 0, gso, "{:?}", send.counts());
                assert_eq!(recv.counts().segmented > 0, gso, "{:?}", recv.counts());
            }
            during
        });
        assert_eq!(
            during, 0,
            "{during} allocations in 100 batches of 32 (GSO and GRO {gso})"
        );
    }
}
