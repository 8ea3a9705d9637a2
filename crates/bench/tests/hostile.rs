//! msg-bench in-process against hand-made listeners on loopback that
//! answer otherwise than msg listen does: figures that cannot be true,
//! replies twice, bodies of another size. Each run fails saying what was
//! wrong, where before it was reported as a result (audit, round six).

use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use bytes::Bytes;
use msg_bench::multicast::{self, Fanout, Receivers};
use msg_bench::{Direction, Engine, Error, Mode, Plan, Results, Transport};
use msg_net::group::Iface;
use msg_proto::{FLAG_SEND, FLAG_STATS, Kind, Message, SendRequest, Stats, Streamed};

/// How a hand-made listener answers each message that arrives: what it
/// sends back, in order.
type Answer = Box<dyn FnMut(&Message) -> Vec<Message> + Send>;

/// A hand-made listener, stopped and joined when dropped.
struct Peer {
    addr: String,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for Peer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wakes a TCP accept; a UDP receive wakes by its own timeout.
        let _ = TcpStream::connect(&self.addr);
        if let Some(thread) = self.thread.take() {
            thread.join().unwrap();
        }
    }
}

/// How long a hand-made listener's socket waits for the next message
/// before it looks whether it is to stop.
const POLL: Duration = Duration::from_millis(50);

fn encoded(msg: &Message) -> Vec<u8> {
    let mut out = Vec::new();
    msg_proto::encode(msg, &mut out).unwrap();
    out
}

/// A UDP listener on 127.0.0.1 that answers each datagram's message
/// with what `answer` says, to its source.
fn udp_peer(answer: Answer) -> Peer {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = socket.local_addr().unwrap().to_string();
    answering(socket, addr, answer)
}

/// A hand-made listener at `addr` that answers each datagram's message
/// on `socket` with what `answer` says, to its source.
fn answering(socket: UdpSocket, addr: String, mut answer: Answer) -> Peer {
    socket.set_read_timeout(Some(POLL)).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let stopped = Arc::clone(&stop);
    let thread = thread::spawn(move || {
        let mut buf = vec![0; 65_536];
        while !stopped.load(Ordering::Relaxed) {
            let (len, from) = match socket.recv_from(&mut buf) {
                Ok(got) => got,
                Err(err) if matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    continue;
                }
                Err(err) => panic!("{err}"),
            };
            let msg = msg_proto::decode(Bytes::copy_from_slice(&buf[..len])).unwrap();
            for reply in answer(&msg) {
                socket.send_to(&encoded(&reply), from).unwrap();
            }
        }
    });
    Peer {
        addr,
        stop,
        thread: Some(thread),
    }
}

/// A TCP listener on 127.0.0.1 that answers each framed message of its
/// connections, one after another, with what `answer` says.
fn tcp_peer(mut answer: Answer) -> Peer {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let stop = Arc::new(AtomicBool::new(false));
    let stopped = Arc::clone(&stop);
    let thread = thread::spawn(move || {
        for conn in listener.incoming() {
            if stopped.load(Ordering::Relaxed) {
                return;
            }
            let mut conn = conn.unwrap();
            conn.set_read_timeout(Some(POLL)).unwrap();
            serve_tcp(&mut conn, &mut answer, &stopped);
        }
    });
    Peer {
        addr,
        stop,
        thread: Some(thread),
    }
}

/// One connection of [`tcp_peer`], until the client closes it or the
/// listener is stopped.
fn serve_tcp(conn: &mut TcpStream, answer: &mut Answer, stop: &AtomicBool) {
    loop {
        let mut len = [0; 4];
        if !read_all(conn, &mut len, stop) {
            return;
        }
        let mut buf = vec![0; u32::from_be_bytes(len) as usize];
        if !read_all(conn, &mut buf, stop) {
            return;
        }
        let msg = msg_proto::decode(Bytes::from(buf)).unwrap();
        let mut out = Vec::new();
        for reply in answer(&msg) {
            let bytes = encoded(&reply);
            out.extend(u32::try_from(bytes.len()).unwrap().to_be_bytes());
            out.extend(bytes);
        }
        if conn.write_all(&out).is_err() {
            return;
        }
    }
}

/// Fills `buf` from `conn`: `false` when the client closed it (or it
/// failed), or the listener is stopped.
fn read_all(conn: &mut TcpStream, buf: &mut [u8], stop: &AtomicBool) -> bool {
    let mut filled = 0;
    while filled < buf.len() {
        match conn.read(&mut buf[filled..]) {
            Ok(0) => return false,
            Ok(n) => filled += n,
            Err(err) if matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                if stop.load(Ordering::Relaxed) {
                    return false;
                }
            }
            Err(_) => return false,
        }
    }
    true
}

/// The pong msg listen answers `ping` with: its seq, stamp and body.
fn pong(ping: &Message) -> Message {
    Message::new(Kind::Pong, ping.seq, ping.body.clone()).with_timestamp(ping.timestamp_ns)
}

/// A short plan against `addr` over `transport`, on the tokio engine.
fn against(addr: &str, transport: Transport, mode: Mode) -> Plan {
    Plan {
        transports: vec![transport],
        sizes: vec![64],
        remote: Some(addr.to_owned()),
        mode,
        warmup: Duration::from_millis(10),
        duration: Duration::from_millis(60),
        runs: 1,
        engines: vec![Engine::Tokio],
        ..Plan::default()
    }
}

/// The reason a run failed: its error's sources, `: `-separated.
fn why(err: &Error) -> String {
    let mut text = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Why `plan` failed, which it must.
fn failure(plan: &Plan) -> String {
    match msg_bench::run(plan, &mut ()) {
        Err(err) => why(&err),
        Ok(results) => {
            let counts: Vec<_> = results
                .measured
                .iter()
                .flat_map(|cell| cell.runs.as_deref().unwrap_or(&[]))
                .map(|run| (run.sent, run.received, run.reordered))
                .collect();
            panic!("the run was reported (sent, received, reordered): {counts:?}")
        }
    }
}

/// The one run of a one-cell plan that measured.
fn only_run(results: &Results) -> &msg_bench::Outcome {
    let cell = &results.measured[0];
    &cell.runs.as_ref().expect("64 bytes fit")[0]
}

/// A UDP listener whose statistics replies are `replies`, one after
/// another (the last again after them), each a pong to the request; it
/// counts nothing.
fn udp_stats_peer(replies: Vec<Stats>) -> Peer {
    udp_peer(stats_answer(replies))
}

/// The answer of [`udp_stats_peer`]: `replies` in turn, to statistics
/// requests only.
fn stats_answer(replies: Vec<Stats>) -> Answer {
    let mut answered = 0;
    Box::new(move |msg| {
        if msg.kind != Kind::Ping || msg.flags & FLAG_STATS == 0 {
            return vec![];
        }
        let stats = replies[answered.min(replies.len() - 1)];
        answered += 1;
        let body = Bytes::copy_from_slice(&stats.to_body());
        vec![Message::new(Kind::Pong, msg.seq, body).with_timestamp(msg.timestamp_ns)]
    })
}

/// Over UDP a listener's counts may be below what was sent (loss) or
/// above it (duplication), but not what no network delivers: a second
/// reply below the first (the difference wrapped, 18446744073709551615
/// received), more out of order than arrived. On every engine that
/// streams, batched too.
#[test]
fn a_udp_listeners_statistics_that_cannot_be_true_fail_the_run() {
    let stats = |received, reordered| Stats {
        received,
        reordered,
    };
    let cases = [
        (
            vec![stats(0, 0), stats(u64::MAX, u64::MAX)],
            "more than the",
        ),
        (vec![stats(7, 0), stats(3, 0)], "received 7 then 3"),
        (
            vec![stats(0, 0), stats(10, 105)],
            "it counted 105 messages out of order of the 10",
        ),
    ];
    for (replies, wrong) in cases {
        for (engine, batch) in [
            (Engine::Tokio, None),
            (Engine::Blocking, None),
            (
                Engine::Tokio,
                Some(msg_bench::Batch {
                    size: 8,
                    gso: false,
                }),
            ),
        ] {
            let peer = udp_stats_peer(replies.clone());
            let mut plan = against(&peer.addr, Transport::Udp, Mode::Throughput);
            plan.engines = vec![engine];
            plan.batch = batch;
            let text = failure(&plan);
            assert!(
                text.contains("the listener's statistics cannot be true: ")
                    && text.contains(wrong)
                    && text.ends_with("; is the peer msg listen?"),
                "{engine} {batch:?}: {text}"
            );
        }
    }
    // Loss is a result: 10 of the messages sent arrived.
    let peer = udp_stats_peer(vec![stats(0, 0), stats(10, 1)]);
    let results = msg_bench::run(
        &against(&peer.addr, Transport::Udp, Mode::Throughput),
        &mut (),
    )
    .unwrap();
    let run = only_run(&results);
    assert_eq!((run.received, run.reordered), (10, 1));
    assert!(run.sent > 10, "{}", run.sent);
}

/// A TCP listener that streams back as asked, 100 discards of `len`
/// bytes each (the size asked for when `None`), then says it sent 100.
fn streaming_peer(len: Option<usize>) -> Peer {
    tcp_peer(Box::new(move |msg| {
        if msg.kind != Kind::Ping || msg.flags & FLAG_SEND == 0 {
            return vec![];
        }
        let request = SendRequest::parse(&msg.body, 1 << 20).unwrap();
        let body = Bytes::from(vec![b'm'; len.unwrap_or(request.size as usize)]);
        let mut stream: Vec<_> = (1..=100)
            .map(|seq| Message::new(Kind::Discard, seq, body.clone()))
            .collect();
        let sent = Streamed { sent: 100 }.to_body();
        let mut pong = Message::new(Kind::Pong, msg.seq, Bytes::copy_from_slice(&sent));
        pong.flags = FLAG_SEND;
        stream.push(pong);
        stream
    }))
}

/// A reverse stream's messages are each counted as one of the size asked
/// for: one of another size fails the run (empty ones were counted as
/// 65,000 bytes each, 428,808 MB/s).
#[test]
fn a_reverse_streams_message_of_another_size_fails_the_run() {
    let reverse = |peer: &Peer| Plan {
        direction: Direction::Reverse,
        ..against(&peer.addr, Transport::Tcp, Mode::Throughput)
    };
    for (len, said) in [
        (
            0,
            "message 1 with a 0-byte body where 64-byte ones were asked for",
        ),
        (
            65,
            "message 1 with a 65-byte body where 64-byte ones were asked for",
        ),
    ] {
        let peer = streaming_peer(Some(len));
        let text = failure(&reverse(&peer));
        assert!(
            text.contains(&format!(
                "the listener streamed {said}; is the peer msg listen?"
            )),
            "{text}"
        );
    }
    let peer = streaming_peer(None);
    let results = msg_bench::run(&reverse(&peer), &mut ()).unwrap();
    let run = only_run(&results);
    assert_eq!((run.sent, run.received), (100, 100));
}

/// A listener that answers each ping with `pongs` pongs.
fn echoing(pongs: usize) -> Answer {
    Box::new(move |msg| {
        if msg.kind == Kind::Ping {
            vec![pong(msg); pongs]
        } else {
            vec![]
        }
    })
}

/// In the open loop each ping is answered once: over UDP a second pong
/// to it (a network may copy a datagram) is no answer, and over TCP, which
/// duplicates nothing, it fails the run. Counted as answers, a listener
/// answering twice made 4,000 msg/s of a rate of 2,000, and over TCP the
/// run waited out its whole timeout.
#[test]
fn an_open_loops_ping_answered_twice_is_answered_once() {
    let open_loop = |peer: &Peer, transport| Plan {
        rate: Some(2_000),
        timeout: Some(Duration::from_secs(1)),
        ..against(&peer.addr, transport, Mode::Pingpong)
    };
    let peer = udp_peer(echoing(2));
    let results = msg_bench::run(&open_loop(&peer, Transport::Udp), &mut ()).unwrap();
    let run = only_run(&results);
    assert!(
        run.sent > 0 && run.received <= run.sent,
        "{} of {}",
        run.received,
        run.sent
    );
    assert_eq!(run.latency.len(), run.received, "each answer timed once");

    let peer = tcp_peer(echoing(2));
    let text = failure(&open_loop(&peer, Transport::Tcp));
    assert!(
        text.contains("the listener answered ping 0 twice: over a transport that neither loses nor duplicates messages, each ping has one pong; is the peer msg listen?"),
        "{text}"
    );

    // Once each, as msg listen answers: every ping answered.
    let peer = tcp_peer(echoing(1));
    let results = msg_bench::run(&open_loop(&peer, Transport::Tcp), &mut ()).unwrap();
    let run = only_run(&results);
    assert!(
        run.sent > 0 && run.received == run.sent,
        "{} of {}",
        run.received,
        run.sent
    );
}

/// A pong echoes its ping's body: an empty pong to a 64-byte ping (or to
/// a 1 MB one, timed as a 1 MB round trip) fails the run, naming both
/// lengths, in the closed loop on either engine and in the open loop.
#[test]
fn a_pong_of_another_length_than_its_ping_fails_the_run() {
    let empty = || -> Answer {
        Box::new(|msg| {
            if msg.kind == Kind::Ping {
                vec![Message::new(Kind::Pong, msg.seq, "").with_timestamp(msg.timestamp_ns)]
            } else {
                vec![]
            }
        })
    };
    for transport in [Transport::Udp, Transport::Tcp] {
        for (engine, rate) in [
            (Engine::Blocking, None),
            (Engine::Tokio, None),
            (Engine::Tokio, Some(2_000)),
        ] {
            let peer = match transport {
                Transport::Udp => udp_peer(empty()),
                _ => tcp_peer(empty()),
            };
            let plan = Plan {
                engines: vec![engine],
                rate,
                ..against(&peer.addr, transport, Mode::Pingpong)
            };
            let text = failure(&plan);
            assert!(
                text.contains("has a 0-byte body, and its ping 64 bytes: a pong echoes its ping's body; is the peer `msg listen`?"),
                "{transport} {engine} {rate:?}: {text}"
            );
        }
    }
}

/// A receiver of the multicast group `ip` (on a port of its own, joined
/// on loopback only, so nothing leaves the host) that answers each
/// message sent to the group as `answer` says, from the same socket.
fn group_peer(ip: Ipv4Addr, answer: Answer) -> Peer {
    let socket = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).unwrap();
    socket.join_multicast_v4(&ip, &Ipv4Addr::LOCALHOST).unwrap();
    let port = socket.local_addr().unwrap().port();
    answering(socket, SocketAddr::from((ip, port)).to_string(), answer)
}

/// A short run of one remote receiver at `peer`'s group, sent on
/// loopback.
fn to_group(peer: &Peer, mode: Mode) -> Fanout {
    Fanout {
        group: peer.addr.parse().unwrap(),
        receivers: Receivers::Remote(1),
        iface: Some(Iface::Addr(Ipv4Addr::LOCALHOST.into())),
        ttl: None,
        mode,
        size: 64,
        rate: None,
        warmup: Duration::from_millis(10),
        duration: Duration::from_millis(60),
        timeout: Some(Duration::from_millis(500)),
    }
}

/// Why a run to a group failed, which it must.
fn group_failure(fanout: &Fanout) -> String {
    match multicast::run(fanout) {
        Err(err) => why(&err),
        Ok(results) => {
            let counts: Vec<_> = results
                .receivers
                .iter()
                .map(|r| (r.received, r.late, r.reordered))
                .collect();
            panic!("the run was reported (received, late, reordered): {counts:?}")
        }
    }
}

/// A group's receiver is held to what a unicast listener is: a pong of
/// another length than its ping, or statistics that cannot be true, fail
/// the run naming the receiver, where before the pong was timed as an
/// answer and a count that went down was shown as 0.
#[test]
fn a_group_receivers_answers_that_cannot_be_true_fail_the_run() {
    let peer = group_peer(
        Ipv4Addr::new(239, 255, 72, 1),
        Box::new(|msg| {
            if msg.kind == Kind::Ping && msg.flags & FLAG_STATS == 0 {
                vec![Message::new(Kind::Pong, msg.seq, "abc").with_timestamp(msg.timestamp_ns)]
            } else {
                vec![]
            }
        }),
    );
    let text = group_failure(&to_group(&peer, Mode::Pingpong));
    assert!(
        text.starts_with("receiver 1 of the group, at 127.0.0.1:"),
        "{text}"
    );
    assert!(
        text.contains("has a 3-byte body, and its ping 64 bytes: a pong echoes its ping's body"),
        "{text}"
    );

    let stats = |received| Stats {
        received,
        reordered: 0,
    };
    let peer = group_peer(
        Ipv4Addr::new(239, 255, 72, 2),
        stats_answer(vec![stats(100), stats(40)]),
    );
    let text = group_failure(&to_group(&peer, Mode::Throughput));
    assert!(
        text.starts_with("receiver 1 of the group, at 127.0.0.1:"),
        "{text}"
    );
    assert!(
        text.contains("its counts went down from one reply to the next (received 100 then 40"),
        "{text}"
    );
}
