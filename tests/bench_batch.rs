//! `msg bench --mode throughput --batch N`: many UDP datagrams per system
//! call, and the report of how many each call moved; loss still counted
//! from the sequence numbers.

mod support;

use std::net::UdpSocket;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Duration;

use bytes::BytesMut;
use msg_net::DiscardCounter;
use msg_proto::Kind;
use serde_json::Value;
use support::{Listener, run};

/// Short runs: the contract, not the speed.
const QUICK: &[&str] = &[
    "--duration",
    "150ms",
    "--warmup",
    "20ms",
    "--pin",
    "off",
    "--runs",
    "1",
    "--mode",
    "throughput",
];

/// The results of `msg bench --json <QUICK> <args>`.
fn bench_json(args: &[&str]) -> Vec<Value> {
    let mut all = vec!["bench", "--json"];
    all.extend_from_slice(QUICK);
    all.extend_from_slice(args);
    let finished = run(&all, None);
    assert_eq!(finished.code(), Some(0), "{}", finished.stderr);
    let doc: Value = serde_json::from_str(&finished.stdout)
        .unwrap_or_else(|err| panic!("{err}: {}", finished.stdout));
    doc["results"].as_array().unwrap().clone()
}

fn num(result: &Value, key: &str) -> f64 {
    result[key]
        .as_f64()
        .unwrap_or_else(|| panic!("{key} is not a number in {result}"))
}

#[test]
fn the_built_in_listener_reports_datagrams_per_call_on_both_sides() {
    let results = bench_json(&["--batch", "16", "--sizes", "64"]);
    assert_eq!(results.len(), 2, "{results:?}");
    let udp = results.iter().find(|r| r["transport"] == "udp").unwrap();
    assert_eq!(udp["batch"], 16, "{udp}");
    let per_send = num(udp, "datagrams_per_send_call");
    let per_recv = num(udp, "datagrams_per_recv_call");
    if cfg!(target_os = "linux") {
        // 16 per sendmmsg, unless the send buffer was full for some.
        assert!(per_send > 1.0 && per_send <= 16.0, "{udp}");
    } else {
        assert_eq!(per_send, 1.0, "{udp}");
    }
    if cfg!(target_os = "linux") {
        // Loopback offers both offloads: each batch went to the kernel as
        // one GSO run, and the built-in listener took runs coalesced, so
        // a receive call may move many runs of 16.
        assert_eq!(
            (&udp["gso"], &udp["gro"]),
            (&true.into(), &true.into()),
            "{udp}"
        );
        assert!(per_recv > 0.0 && per_recv <= 64.0 * 64.0, "{udp}");
    } else {
        // Calls that found nothing count too, so a receiver that keeps up
        // may take about one per call; never more than 64.
        assert!(per_recv > 0.0 && per_recv <= 64.0, "{udp}");
    }
    let (sent, received) = (num(udp, "sent"), num(udp, "received"));
    assert!(received > 0.0 && received <= sent, "{udp}");
    assert_eq!(num(udp, "lost"), sent - received, "{udp}");
    if cfg!(target_os = "linux") {
        // The socket counts a GSO run dropped whole as one drop: no
        // count of datagrams (audit, round fifteen: an eighth of the lost
        // with --batch 8).
        assert!(udp["kernel_drops"].is_null(), "{udp}");
    }
    // TCP is sent as without --batch, and says nothing of calls.
    let tcp = results.iter().find(|r| r["transport"] == "tcp").unwrap();
    assert!(tcp.get("batch").is_none(), "{tcp}");
    assert_eq!(tcp["sent"], tcp["received"], "{tcp}");
}

/// `--io blocking --batch`: the blocking client sends with msg-udp's
/// runtime-free sendmmsg (and GSO), the blocking built-in listener
/// receives with recvmmsg, and both sides' calls are counted and reported
/// as on tokio; with a secret too.
#[test]
fn io_blocking_batches_a_udp_stream() {
    let secret = support::secret_arg(b"a benchmark secret\n");
    for extra in [&[][..], &["--secret-file", &secret]] {
        let mut args = vec![
            "--udp", "--io", "blocking", "--batch", "16", "--sizes", "64",
        ];
        args.extend_from_slice(extra);
        let results = bench_json(&args);
        let udp = results
            .iter()
            .find(|r| r["transport"] == "udp" && r.get("error").is_none())
            .unwrap_or_else(|| panic!("{results:?}"));
        assert_eq!(
            (&udp["io"], &udp["batch"]),
            (&"blocking".into(), &16.into())
        );
        let per_send = num(udp, "datagrams_per_send_call");
        if cfg!(target_os = "linux") {
            assert!(per_send > 1.0 && per_send <= 16.0, "{udp}");
        } else {
            assert_eq!(per_send, 1.0, "{udp}");
        }
        assert!(num(udp, "datagrams_per_recv_call") > 0.0, "{udp}");
        let (sent, received) = (num(udp, "sent"), num(udp, "received"));
        assert!(received > 0.0 && received <= sent, "{udp}");
        assert_eq!(sent % 16.0, 0.0, "whole batches: {udp}");
    }
}

#[test]
fn no_gso_sends_with_sendmmsg_alone() {
    let results = bench_json(&["--udp", "--batch", "16", "--sizes", "64", "--no-gso"]);
    let udp = &results[0];
    assert_eq!(
        (&udp["gso"], &udp["gro"]),
        (&false.into(), &false.into()),
        "{udp}"
    );
    if cfg!(target_os = "linux") {
        let per_send = num(udp, "datagrams_per_send_call");
        assert!(per_send > 1.0 && per_send <= 16.0, "{udp}");
        // Without runs to coalesce, at most 64 datagrams per receive.
        let per_recv = num(udp, "datagrams_per_recv_call");
        assert!(per_recv > 0.0 && per_recv <= 64.0, "{udp}");
        // Datagrams one by one: the socket's drops count them.
        assert!(num(udp, "kernel_drops") <= num(udp, "lost"), "{udp}");
    }
    support::assert_usage_error(&["bench", "--no-gso"], "--batch");
}

#[test]
fn the_table_gains_the_per_call_columns() {
    let mut all = vec!["bench", "--udp", "--batch", "8", "--sizes", "64,1024"];
    all.extend_from_slice(QUICK);
    let finished = run(&all, None);
    assert_eq!(finished.code(), Some(0), "{}", finished.stderr);
    let out = &finished.stdout;
    assert!(
        out.contains("UDP sent 8 datagrams per call (sendmmsg, with GSO where offered)"),
        "{out}"
    );
    let header = out
        .lines()
        .find(|l| l.trim_start().starts_with("size"))
        .unwrap_or_else(|| panic!("no header in {out}"));
    assert!(
        header
            .trim_end()
            .ends_with("dgram/send  dgram/recv  offload"),
        "{header}"
    );
    for size in ["64", "1024"] {
        let row = out
            .lines()
            .find(|l| l.split_whitespace().next() == Some(size))
            .unwrap_or_else(|| panic!("no row for {size}: {out}"));
        let cells: Vec<&str> = row.split_whitespace().collect();
        let per_send: f64 = cells[cells.len() - 3].parse().unwrap();
        let per_recv: f64 = cells[cells.len() - 2].parse().unwrap();
        assert!(per_send >= 1.0 && per_recv > 0.0, "{row}");
        let offload = cells[cells.len() - 1];
        if cfg!(target_os = "linux") {
            assert_eq!(offload, "GSO+GRO", "{row}");
        }
    }
}

/// A UDP throughput receiver that counts every other `Discard` it gets and
/// drops the rest, and answers statistics pings with its count: half the
/// stream lost, by the sequence numbers.
struct LossySink {
    addr: String,
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
}

impl LossySink {
    fn start() -> Self {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(20)))
            .unwrap();
        let addr = socket.local_addr().unwrap().to_string();
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = Arc::clone(&stop);
        let thread = thread::spawn(move || {
            let mut buf = [0; 65536];
            let mut counter = DiscardCounter::default();
            let mut discards = 0u64;
            let mut out = BytesMut::new();
            // Bounded by the flag, checked at least every read timeout, and
            // by a ceiling on the datagrams it will ever take.
            for _ in 0..50_000_000u64 {
                if stopped.load(Ordering::Relaxed) {
                    break;
                }
                let Ok((len, peer)) = socket.recv_from(&mut buf) else {
                    continue;
                };
                let Ok(msg) = msg_proto::decode(bytes::Bytes::copy_from_slice(&buf[..len])) else {
                    continue;
                };
                match msg.kind {
                    Kind::Discard => {
                        discards += 1;
                        if discards % 2 == 1 {
                            counter.count(msg.seq);
                        }
                    }
                    Kind::Ping => {
                        let Some(pong) = msg_net::ping::pong(&msg, &counter) else {
                            continue;
                        };
                        out.clear();
                        msg_proto::encode(&pong, &mut out).unwrap();
                        let _ = socket.send_to(&out, peer);
                    }
                    _ => {}
                }
            }
        });
        Self {
            addr,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for LossySink {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            thread.join().unwrap();
        }
    }
}

#[test]
fn a_lossy_remote_receiver_shows_half_lost_and_n_a_for_its_calls() {
    let sink = LossySink::start();
    let results = bench_json(&["--udp", &sink.addr, "--batch", "32", "--sizes", "64"]);
    assert_eq!(results.len(), 1);
    let result = &results[0];
    if cfg!(target_os = "linux") {
        assert!(num(result, "datagrams_per_send_call") > 1.0, "{result}");
    }
    // A remote listener's calls are not known here.
    assert!(result["datagrams_per_recv_call"].is_null(), "{result}");
    assert!(result["gro"].is_null(), "{result}");
    // The sink never asked for GRO, so the kernel cut each GSO run into
    // the datagrams it carried: the sink counts them one by one (half of
    // them, on purpose), which the loss below shows.
    if cfg!(target_os = "linux") {
        assert_eq!(result["gso"], true, "{result}");
    }
    // Some of the stream is also lost to the sink's full socket buffer;
    // at least the half it drops on purpose.
    let loss = num(result, "lost") / num(result, "sent");
    assert!((0.45..1.0).contains(&loss), "loss {loss} in {result}");
    assert!(num(result, "received") > 0.0, "{result}");
}

#[test]
fn both_engines_count_a_lossy_receivers_loss_without_batching() {
    let sink = LossySink::start();
    for io in ["blocking", "tokio"] {
        let results = bench_json(&["--udp", &sink.addr, "--io", io, "--sizes", "64"]);
        let result = &results[0];
        assert_eq!(result["io"], io, "{result}");
        assert!(result.get("batch").is_none(), "{result}");
        let loss = num(result, "lost") / num(result, "sent");
        assert!((0.45..1.0).contains(&loss), "{io}: loss {loss} in {result}");
    }
}

#[test]
fn a_paced_batched_stream_keeps_the_rate_in_bursts() {
    // 20,000 msg/s for 150 ms: 3,000 messages, in batches of 32 that each
    // leave when their first message is due (the last batch is whole).
    // Never more than the schedule allows; fewer only if this process was
    // kept off the CPU past the end of the run, as on a loaded machine.
    let results = bench_json(&["--udp", "--batch", "32", "--rate", "20000", "--sizes", "64"]);
    let udp = &results[0];
    let sent = num(udp, "sent");
    assert!((750.0..=3_000.0 + 32.0).contains(&sent), "{udp}");
    assert_eq!(sent % 32.0, 0.0, "whole batches: {udp}");
    // Loopback at a rate this low keeps (nearly) all of it.
    assert!(num(udp, "lost") < sent / 2.0, "{udp}");
    if cfg!(target_os = "linux") {
        assert_eq!(num(udp, "datagrams_per_send_call"), 32.0, "{udp}");
    }
}

#[test]
fn msg_listen_batch_takes_a_batched_stream_many_per_call() {
    // Both engines: the blocking one receives with msg-udp's runtime-free
    // recvmmsg, the same slots and the same cutting of GRO runs.
    for io in ["tokio", "blocking"] {
        let listener = Listener::start(
            "--udp",
            "127.0.0.1",
            &["--io", io, "--batch", "64", "--summary", "json"],
        );
        let results = bench_json(&[
            "--udp",
            &listener.addr_arg(),
            "--batch",
            "32",
            "--sizes",
            "64",
        ]);
        let result = &results[0];
        // Counted by seq through the listener's statistics ping, as ever.
        let received = num(result, "received");
        assert!(received > 0.0, "{io}: {result}");
        let finished = listener.process.interrupt();
        assert_eq!(finished.code(), Some(0), "{io}: {}", finished.stderr);
        let summary: Value = serde_json::from_str(finished.lines().last().unwrap()).unwrap();
        let summary = &summary["summary"];
        let (calls, datagrams) = (num(summary, "recv_calls"), num(summary, "recv_datagrams"));
        // The statistics pings and warm-up are datagrams too.
        assert!(datagrams >= received, "{io}: {summary} {result}");
        if cfg!(target_os = "linux") {
            // GSO runs of 32 arrive coalesced: many datagrams per call.
            assert!(num(summary, "gro_datagrams") > 0.0, "{io}: {summary}");
            assert!(datagrams / calls > 2.0, "{io}: {summary}");
        }
    }
    // Elsewhere than framed UDP, refused.
    let no_batched_receive = "--batch receives UDP datagrams many per call (recvmmsg): use it \
                              with --udp; --tcp has no batched receive";
    for (args, why) in [
        (&["listen", "--tcp", "--batch", "8"][..], no_batched_receive),
        (
            &["listen", "--udp", "--raw", "--batch", "8"],
            "--batch receives msg's framed datagrams many per call, and --raw takes each \
             datagram as it is: leave out --raw or --batch",
        ),
        (
            &["listen", "--tcp", "--io", "blocking", "--batch", "8"],
            no_batched_receive,
        ),
        (&["listen", "--udp", "--batch", "65"], "--batch"),
    ] {
        let finished = run(args, None);
        assert_eq!(finished.code(), Some(2), "{args:?}: {}", finished.stderr);
        assert!(
            finished.stderr.contains(why),
            "{args:?}: {}",
            finished.stderr
        );
    }
}

#[test]
fn batch_is_refused_where_there_is_nothing_to_batch() {
    for (args, why) in [
        (&["--batch", "8"][..], "--mode throughput"),
        (&["--batch", "8", "--mode", "throughput", "--tcp"], "TCP"),
        (&["--batch", "0", "--mode", "throughput"], "--batch"),
        (&["--batch", "65", "--mode", "throughput"], "--batch"),
        (&["--batch", "8", "--clients", "2"], "cannot be used with"),
    ] {
        let mut all = vec!["bench"];
        all.extend_from_slice(args);
        support::assert_usage_error(&all, why);
    }
}
