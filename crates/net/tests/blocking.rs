//! The blocking engine speaks the tokio engine's protocol: the same
//! conversation (pings, echoed data and its event, discards and the
//! statistics ping, a peer with a secret, a frame over the limit) is held
//! with every pairing of client and listener engine, over UDP and TCP.

use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use msg_net::blocking::{self, LinkOptions, Received};
use msg_net::{
    ConnectOptions, Event, EventReceiver, Events, Link, Listener, Reply, ServeConfig, Transport,
    ping, serve,
};
use msg_proto::{Kind, Message};

const WAIT: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Engine {
    Tokio,
    Blocking,
}

/// A listener on 127.0.0.1:0 served by `engine` on a thread of its own.
struct Server {
    addr: SocketAddr,
    stop: Box<dyn FnOnce() + Send>,
    thread: Option<JoinHandle<()>>,
    events: EventReceiver,
}

impl Server {
    fn start(engine: Engine, transport: Transport, busy_poll: bool) -> Self {
        Self::start_with(engine, transport, busy_poll, 4096)
    }

    fn start_with(engine: Engine, transport: Transport, busy_poll: bool, max_frame: usize) -> Self {
        let config = ServeConfig {
            reply: Reply::Echo,
            busy_poll,
            ..ServeConfig::default()
        };
        Self::start_config(engine, transport, max_frame, config)
    }

    fn start_config(
        engine: Engine,
        transport: Transport,
        max_frame: usize,
        config: ServeConfig,
    ) -> Self {
        let local: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let tcp = msg_tcp::Options {
            max_frame,
            ..msg_tcp::Options::default()
        };
        let (events, received) = Events::channel();
        match engine {
            Engine::Tokio => {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                let listener = runtime
                    .block_on(Listener::bind(transport, local, tcp))
                    .unwrap();
                let addr = listener.local_addr().unwrap();
                let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
                let thread = thread::spawn(move || {
                    runtime
                        .block_on(serve(listener, config, events, async {
                            let _ = stopped.await;
                        }))
                        .unwrap();
                });
                Self {
                    addr,
                    stop: Box::new(move || {
                        let _ = stop.send(());
                    }),
                    thread: Some(thread),
                    events: received,
                }
            }
            Engine::Blocking => {
                let listener = blocking::Listener::bind(transport, local, tcp).unwrap();
                let addr = listener.local_addr().unwrap();
                let stop = Arc::new(AtomicBool::new(false));
                let flag = Arc::clone(&stop);
                let thread = thread::spawn(move || {
                    blocking::serve(&listener, &config, &events, &flag).unwrap();
                });
                Self {
                    addr,
                    stop: Box::new(move || stop.store(true, Ordering::Relaxed)),
                    thread: Some(thread),
                    events: received,
                }
            }
        }
    }

    fn stop(mut self) {
        let stop = std::mem::replace(&mut self.stop, Box::new(|| {}));
        stop();
        self.thread.take().unwrap().join().unwrap();
    }
}

/// Either engine's client, driven from a plain thread.
trait Client {
    fn send(&mut self, msg: &Message);
    /// The next message within [`WAIT`]; `None` when the peer closed.
    fn recv(&mut self) -> Option<Message>;
}

struct TokioClient {
    runtime: tokio::runtime::Runtime,
    link: Link,
}

impl Client for TokioClient {
    fn send(&mut self, msg: &Message) {
        self.runtime.block_on(self.link.send(msg)).unwrap();
    }

    fn recv(&mut self) -> Option<Message> {
        let link = &mut self.link;
        self.runtime
            .block_on(async { tokio::time::timeout(WAIT, link.recv()).await })
            .expect("an answer in time")
            .unwrap()
    }
}

impl Client for blocking::Link {
    fn send(&mut self, msg: &Message) {
        Self::send(self, msg).unwrap();
    }

    fn recv(&mut self) -> Option<Message> {
        match Self::recv(self, Instant::now() + WAIT).unwrap() {
            Received::Message(msg) => Some(msg),
            Received::Closed => None,
            Received::Nothing => panic!("no answer within {WAIT:?}"),
        }
    }
}

fn connect(engine: Engine, transport: Transport, addr: SocketAddr) -> Box<dyn Client> {
    connect_with(engine, transport, addr, None)
}

/// [`connect`], authenticating with `secret` when there is one.
fn connect_with(
    engine: Engine,
    transport: Transport,
    addr: SocketAddr,
    secret: Option<&msg_proto::auth::Secret>,
) -> Box<dyn Client> {
    match engine {
        Engine::Tokio => {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            let options = ConnectOptions {
                auth: secret.map(|secret| msg_net::Auth::new(secret.clone())),
                ..ConnectOptions::default()
            };
            let link = runtime
                .block_on(Link::connect(transport, addr, &options))
                .unwrap();
            Box::new(TokioClient { runtime, link })
        }
        Engine::Blocking => {
            let options = LinkOptions {
                timeout: WAIT,
                ..LinkOptions::default()
            };
            let mut link = blocking::Link::connect(transport, addr, &options).unwrap();
            if let Some(secret) = secret {
                link.authenticate(&msg_net::Auth::new(secret.clone()))
                    .unwrap();
            }
            Box::new(link)
        }
    }
}

/// The next event, waited for (bounded): it is queued after the reply.
fn next_event(events: &mut EventReceiver) -> msg_net::Delivery {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(delivered) = events.try_recv() {
            return delivered;
        }
        assert!(Instant::now() < deadline, "no event within {WAIT:?}");
        thread::sleep(Duration::from_millis(1));
    }
}

const ENGINES: [Engine; 2] = [Engine::Tokio, Engine::Blocking];
const TRANSPORTS: [Transport; 2] = [Transport::Udp, Transport::Tcp];

/// Pings, echoed data, discards and the statistics ping.
fn conversation(client: &mut dyn Client, events: &mut EventReceiver, label: &str) {
    let ping = Message::new(Kind::Ping, 1, "p").with_timestamp(77);
    client.send(&ping);
    let pong = client.recv().unwrap();
    assert_eq!(
        (pong.kind, pong.seq, pong.timestamp_ns, &pong.body[..]),
        (Kind::Pong, 1, 77, &b"p"[..]),
        "{label}"
    );

    client.send(&Message::new(Kind::Data, 2, "d"));
    let echo = client.recv().unwrap();
    assert_eq!(
        (echo.kind, &echo.body[..]),
        (Kind::Data, &b"d"[..]),
        "{label}"
    );
    let delivered = next_event(events);
    let Event::Message { seq, body, .. } = &delivered.event else {
        panic!("{label}: a message, not {:?}", delivered.event)
    };
    assert_eq!((*seq, &body[..]), (Some(2), &b"d"[..]), "{label}");

    for seq in [1, 2, 4, 5, 3] {
        client.send(&Message::new(Kind::Discard, seq, "x"));
    }
    client.send(&ping::stats_request(9));
    let answer = client.recv().unwrap();
    assert_eq!((answer.kind, answer.seq), (Kind::Pong, 9), "{label}");
    let stats = ping::parse_stats(&answer).unwrap();
    assert_eq!((stats.received, stats.reordered), (5, 1), "{label}");
}

#[test]
fn every_client_engine_talks_to_every_listener_engine() {
    for listener in ENGINES {
        for transport in TRANSPORTS {
            let mut server = Server::start(listener, transport, false);
            for client in ENGINES {
                let label = format!("{client:?} client, {listener:?} listener, {transport}");
                let mut link = connect(client, transport, server.addr);
                conversation(link.as_mut(), &mut server.events, &label);
            }
            server.stop();
        }
    }
}

#[test]
fn large_tcp_messages_go_out_whole_from_their_own_buffer() {
    // 64 KiB and more: the blocking link writes prefix and header, then
    // the body from its own buffer, in one writev; the bytes on the wire
    // are what either listener decodes.
    let options = LinkOptions {
        timeout: WAIT,
        tcp: msg_tcp::Options {
            max_frame: 1 << 20,
            ..msg_tcp::Options::default()
        },
        ..LinkOptions::default()
    };
    for listener in ENGINES {
        let server = Server::start_with(listener, Transport::Tcp, false, 1 << 20);
        let mut link = blocking::Link::connect(Transport::Tcp, server.addr, &options).unwrap();
        for (seq, len) in [(1, 64 * 1024), (2, 300_000), (3, 10)] {
            let body: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            let ping = Message::new(Kind::Ping, seq, body.clone());
            Client::send(&mut link, &ping);
            let pong = Client::recv(&mut link).unwrap();
            assert_eq!((pong.kind, pong.seq), (Kind::Pong, seq), "{listener:?}");
            assert_eq!(pong.body, body, "{listener:?}: {len} bytes");
        }
        // Over the limit: refused before a byte is written, and the
        // connection goes on.
        let err = link
            .send(&Message::new(Kind::Data, 4, vec![0; 1 << 20]))
            .unwrap_err();
        assert!(
            err.to_string().contains("a TCP frame holds at most"),
            "{err}"
        );
        Client::send(&mut link, &Message::new(Kind::Ping, 5, "still here"));
        assert_eq!(Client::recv(&mut link).unwrap().seq, 5);
        server.stop();
    }
}

#[test]
fn a_busy_polling_blocking_listener_and_client_answer_as_usual() {
    for transport in TRANSPORTS {
        let mut server = Server::start(Engine::Blocking, transport, true);
        let options = LinkOptions {
            timeout: WAIT,
            busy_poll: true,
            ..LinkOptions::default()
        };
        let mut link = blocking::Link::connect(transport, server.addr, &options).unwrap();
        conversation(&mut link, &mut server.events, &format!("{transport}"));
        server.stop();
    }
}

#[test]
fn the_blocking_listener_drops_a_bad_tcp_peer_and_serves_the_rest() {
    for engine in ENGINES {
        let mut server = Server::start(engine, Transport::Tcp, false);
        let mut good = connect(Engine::Blocking, Transport::Tcp, server.addr);
        // A frame announced over the listener's 4096-byte maximum.
        let mut bad = std::net::TcpStream::connect(server.addr).unwrap();
        bad.set_read_timeout(Some(WAIT)).unwrap();
        bad.write_all(b"\x00\x01\x00\x00").unwrap();
        // It is told why, and closed.
        let mut rest = Vec::new();
        std::io::Read::read_to_end(&mut bad, &mut rest).expect("closed, not timed out");
        assert!(rest.len() > 4, "{engine:?}: {rest:?}");
        let said = msg_proto::decode(bytes::Bytes::copy_from_slice(&rest[4..])).unwrap();
        assert_eq!(said.kind, Kind::Error, "{engine:?}");
        assert_eq!(
            said.body,
            msg_net::refusal::FRAME_TOO_LARGE.format(4096).as_bytes(),
            "{engine:?}"
        );
        conversation(good.as_mut(), &mut server.events, &format!("{engine:?}"));
        server.stop();
    }
}

#[test]
fn a_client_with_a_secret_is_told_the_listener_has_none() {
    for engine in ENGINES {
        let server = Server::start(engine, Transport::Tcp, false);
        let mut client = connect(Engine::Blocking, Transport::Tcp, server.addr);
        let challenge = msg_proto::auth::ClientHandshake::start(
            &msg_proto::auth::Secret::new(b"s".to_vec()).unwrap(),
            [1; 32],
        )
        .1;
        client.send(&challenge);
        let answer = client.recv().unwrap();
        assert_eq!(answer.kind, Kind::Error, "{engine:?}");
        assert_eq!(&answer.body[..], msg_net::auth::HAS_NO_SECRET.as_bytes());
        assert!(client.recv().is_none(), "{engine:?}: then closed");
        server.stop();
    }
}

#[test]
fn the_blocking_engine_keeps_the_udp_limit_and_refuses_what_it_does_not_do() {
    let server = Server::start(Engine::Blocking, Transport::Udp, false);
    let mut link =
        blocking::Link::connect(Transport::Udp, server.addr, &LinkOptions::default()).unwrap();
    let err = link
        .send(&Message::new(Kind::Ping, 1, vec![0; 70_000]))
        .unwrap_err();
    assert!(err.to_string().contains("65507"), "{err}");
    server.stop();

    let listener = blocking::Listener::bind(
        Transport::Tcp,
        "127.0.0.1:0".parse::<SocketAddr>().unwrap(),
        Default::default(),
    )
    .unwrap();
    let config = ServeConfig {
        raw: true,
        ..ServeConfig::default()
    };
    let stop = Arc::new(AtomicBool::new(false));
    let err = blocking::serve(&listener, &config, &Events::discard(), &stop).unwrap_err();
    assert!(err.to_string().contains("raw mode"), "{err}");
}

/// UDP with a secret, every pairing of engines: the blocking engine frames
/// datagrams with msg-udp's own framing, trailer and replay windows
/// included. Over TCP its link's handshake fails at a listener without a
/// secret.
#[test]
fn udp_with_a_secret_works_with_every_pairing() {
    let secret = msg_proto::auth::Secret::new(b"blocking secret".to_vec()).unwrap();
    every_pairing_with(&secret, Transport::Udp);
    let server = Server::start(Engine::Blocking, Transport::Tcp, false);
    let mut link = blocking::Link::connect(
        Transport::Tcp,
        server.addr,
        &LinkOptions {
            timeout: WAIT,
            ..LinkOptions::default()
        },
    )
    .unwrap();
    assert!(
        link.authenticate(&msg_net::Auth::new(secret.clone()))
            .is_err()
    );
    server.stop();
}

/// TCP with a secret, every pairing of engines: the blocking engine runs
/// the tokio engine's handshake (one sans-IO state machine, two drivers),
/// then every frame is tagged and verified either way.
#[test]
fn tcp_with_a_secret_works_with_every_pairing() {
    let secret = msg_proto::auth::Secret::new(b"blocking tcp secret".to_vec()).unwrap();
    every_pairing_with(&secret, Transport::Tcp);
}

/// The [`conversation`] over `transport` with `secret` on both sides,
/// every pairing of client and listener engine.
fn every_pairing_with(secret: &msg_proto::auth::Secret, transport: Transport) {
    for server_engine in ENGINES {
        let config = ServeConfig {
            reply: Reply::Echo,
            auth: Some(msg_net::Auth::new(secret.clone())),
            ..ServeConfig::default()
        };
        let mut server = Server::start_config(server_engine, transport, 4096, config);
        for client_engine in ENGINES {
            let label =
                format!("{client_engine:?} client, {server_engine:?} listener, {transport}");
            let mut client = connect_with(client_engine, transport, server.addr, Some(secret));
            conversation(client.as_mut(), &mut server.events, &label);
        }
        server.stop();
    }
}

/// The blocking listener with a secret refuses as the tokio one does: a
/// wrong secret fails the handshake, a peer without one is told a secret
/// is needed, whether it starts with a message or a frame too large for a
/// handshake; a blocking client with the wrong secret is refused by
/// either listener.
#[test]
fn the_blocking_handshake_refuses_as_the_tokio_one_does() {
    let secret = msg_proto::auth::Secret::new(b"the right one".to_vec()).unwrap();
    let wrong = msg_proto::auth::Secret::new(b"the wrong one".to_vec()).unwrap();
    for server_engine in ENGINES {
        // Short: the listener lets a refused frame arrive for this long
        // before it closes.
        let auth = msg_net::Auth {
            handshake_timeout: Duration::from_millis(500),
            ..msg_net::Auth::new(secret.clone())
        };
        let config = ServeConfig {
            reply: Reply::Echo,
            auth: Some(auth),
            ..ServeConfig::default()
        };
        let server = Server::start_config(server_engine, Transport::Tcp, 4096, config);
        let options = LinkOptions {
            timeout: WAIT,
            ..LinkOptions::default()
        };
        let mut link = blocking::Link::connect(Transport::Tcp, server.addr, &options).unwrap();
        let err = link
            .authenticate(&msg_net::Auth::new(wrong.clone()))
            .unwrap_err();
        assert!(
            matches!(err, msg_net::Error::Auth(_)),
            "{server_engine:?}: {err}"
        );

        // A whole Data frame, and the length of a 64 KiB frame alone.
        let mut data = Vec::new();
        msg_proto::encode(&Message::new(Kind::Data, 1, ""), &mut data).unwrap();
        let mut frame = u32::try_from(data.len()).unwrap().to_be_bytes().to_vec();
        frame.extend_from_slice(&data);
        for first in [&frame[..], b"\x00\x01\x00\x00"] {
            let mut plain = std::net::TcpStream::connect(server.addr).unwrap();
            plain.set_read_timeout(Some(WAIT)).unwrap();
            plain.write_all(first).unwrap();
            let mut answer = Vec::new();
            std::io::Read::read_to_end(&mut plain, &mut answer).expect("closed, not timed out");
            let text = String::from_utf8_lossy(&answer);
            assert!(
                text.contains(msg_net::auth::NEEDS_SECRET),
                "{server_engine:?}, {first:?}: {text}"
            );
        }
        server.stop();
    }
}
