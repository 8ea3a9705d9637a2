//! A send that finds the socket's send buffer full waits for room, then
//! goes out; nothing is lost and nothing hangs.
//!
//! Loopback never fills a UDP send buffer (the kernel lets go of each
//! datagram as soon as the loopback device takes it), so this test makes
//! a slow loopback of its own: a fresh network namespace, entered by one
//! thread, whose `lo` gets a token-bucket qdisc. Datagrams then wait in the
//! qdisc still charged to the sender, and a small `SO_SNDBUF` makes sends
//! fail with `EWOULDBLOCK` until the qdisc lets some go: the path where
//! msg-udp registers a duplicate descriptor for writability.
//!
//! It needs root (CAP_SYS_ADMIN and CAP_NET_ADMIN) and iproute2. Without
//! them it says so on stderr and passes, unless `MSG_REQUIRE_NETNS` is set:
//! `.ci/run` sets it wherever a namespace can be made, so that there the
//! test cannot quietly skip.

#![cfg(target_os = "linux")]

#[path = "../../../tests/support/skip.rs"]
mod skip;

use std::net::{SocketAddr, UdpSocket};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use msg_proto::{Kind, Message};
use msg_udp::Socket;
use tokio::time::timeout;

/// What the qdisc lets through: 800 kbit/s, 100 kB/s.
const RATE_BYTES_PER_S: usize = 100_000;
/// Body of each datagram; with the headers about 1,070 bytes on the wire.
const BODY: usize = 1_000;
/// Datagrams sent while the buffer is full: about half a second.
const COUNT: u64 = 50;
/// A bound on every wait, so that a send that is never woken fails the
/// test instead of hanging it.
const DEADLINE: Duration = Duration::from_secs(20);

#[test]
fn a_full_send_buffer_waits_for_room_and_loses_nothing() {
    // Namespaces belong to threads: this one enters the slow namespace,
    // and every socket and child process it makes lives there.
    let outcome = thread::spawn(|| {
        enter_slow_namespace()?;
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime")
            .block_on(exercise());
        Ok::<(), String>(())
    })
    .join()
    .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
    if let Err(why) = outcome {
        let why = format!("needs a network namespace of its own: {why}");
        assert!(std::env::var_os("MSG_REQUIRE_NETNS").is_none(), "{why}");
        skip::skip(&why);
    }
}

/// Unshares the network namespace and slows its `lo` down.
fn enter_slow_namespace() -> Result<(), String> {
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET)
        .map_err(|err| format!("unshare(CLONE_NEWNET): {err} (run as root)"))?;
    let rate = format!("{}kbit", RATE_BYTES_PER_S * 8 / 1000);
    ip_or_tc("ip", &["link", "set", "lo", "up"])?;
    // burst holds one datagram; limit is far above what the small send
    // buffer can put in the queue, so the qdisc itself never drops.
    ip_or_tc(
        "tc",
        &[
            "qdisc", "add", "dev", "lo", "root", "tbf", "rate", &rate, "burst", "1600", "limit",
            "1000000",
        ],
    )
}

fn ip_or_tc(program: &str, args: &[&str]) -> Result<(), String> {
    let status = Command::new(program)
        .args(args)
        .status()
        .map_err(|err| format!("{program}: {err} (install iproute2)"))?;
    if !status.success() {
        return Err(format!("{program} {} failed: {status}", args.join(" ")));
    }
    Ok(())
}

async fn exercise() {
    let mut receiver = Socket::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let to = receiver.local_addr().unwrap();
    let mut sender = small_buffer_sender(to);

    let body = vec![b'x'; BODY];
    let started = Instant::now();
    let send = async {
        for seq in 0..COUNT {
            let msg = Message::new(Kind::Data, seq, body.clone());
            timeout(DEADLINE, sender.send(&msg))
                .await
                .unwrap_or_else(|_| panic!("send {seq} was never woken"))
                .unwrap_or_else(|err| panic!("send {seq}: {err}"));
        }
        started.elapsed()
    };
    let receive = async {
        for seq in 0..COUNT {
            let (msg, _) = timeout(DEADLINE, receiver.recv_from())
                .await
                .unwrap_or_else(|_| panic!("datagram {seq} never arrived"))
                .unwrap();
            assert_eq!((msg.seq, msg.body.len()), (seq, BODY));
        }
    };
    let (sending, ()) = tokio::join!(send, receive);

    // The sends kept pace with the qdisc: they waited for room instead of
    // queueing everything at once (which the buffer does not allow) or
    // failing. Only what fits the small buffer went out ahead of the rate.
    let wire = COUNT as usize * (BODY + msg_proto::HEADER_LEN + 42);
    let ahead = 16 * 1024;
    let at_rate = Duration::from_secs_f64((wire - ahead) as f64 / RATE_BYTES_PER_S as f64);
    assert!(
        sending >= at_rate,
        "{COUNT} sends took {sending:?}, less than the qdisc's {at_rate:?}: \
         the send buffer never filled, so the test proves nothing"
    );

    // Once the congestion is over, sends go straight through again.
    ip_or_tc("tc", &["qdisc", "del", "dev", "lo", "root"]).unwrap();
    for seq in COUNT..COUNT + 10 {
        timeout(
            DEADLINE,
            sender.send(&Message::new(Kind::Data, seq, "after")),
        )
        .await
        .expect("a send after the congestion")
        .unwrap();
        let (msg, _) = timeout(DEADLINE, receiver.recv_from())
            .await
            .expect("a datagram after the congestion")
            .unwrap();
        assert_eq!(msg.seq, seq);
    }
}

/// A connected sender whose send buffer holds only a few datagrams.
fn small_buffer_sender(to: SocketAddr) -> Socket {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    // The kernel doubles this and rounds it up to its minimum (4,608).
    socket2::SockRef::from(&socket)
        .set_send_buffer_size(4096)
        .unwrap();
    socket.connect(to).unwrap();
    Socket::from_std(socket).unwrap()
}
