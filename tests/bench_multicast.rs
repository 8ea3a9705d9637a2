//! `msg bench --receivers N`: one sender, N receivers of a multicast
//! group, with the real binary. Every group is sent on loopback
//! (127.0.0.1, the built-in default, named explicitly for remote
//! receivers) or inside a network namespace of the test's own: nothing
//! leaves the host.
//!
//! The lossy test needs a network namespace and nft; where it cannot make
//! one it says so on stderr and passes, unless `MSG_REQUIRE_NETNS` is set
//! (as tests/impair.rs does). The tests take turns (one lock): each
//! measures latency or loss, and two at once on a 2-core machine would
//! make each other's answers late.

mod support;

use std::sync::{Mutex, MutexGuard};

use serde_json::Value;
use support::{Listener, Running, assert_usage_error, msg, run};

/// Short runs: these tests check what is reported, not how fast.
const QUICK: &[&str] = &["--duration", "200ms", "--warmup", "20ms"];

/// `msg bench --json <args> <QUICK>`, which must succeed.
fn bench_json(args: &[&str]) -> Value {
    let mut all = vec!["bench", "--json"];
    all.extend_from_slice(args);
    all.extend_from_slice(QUICK);
    let finished = run(&all, None);
    assert_eq!(finished.code(), Some(0), "{}", finished.stderr);
    serde_json::from_str(&finished.stdout)
        .unwrap_or_else(|err| panic!("{err}: {}", finished.stdout))
}

/// One test at a time.
fn turn() -> MutexGuard<'static, ()> {
    static TURN: Mutex<()> = Mutex::new(());
    TURN.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn num(value: &Value, key: &str) -> f64 {
    value[key]
        .as_f64()
        .unwrap_or_else(|| panic!("{key} is not a number in {value}"))
}

fn receivers(doc: &Value) -> &Vec<Value> {
    doc["results"].as_array().unwrap()
}

#[test]
fn three_built_in_receivers_each_report_their_round_trips_and_the_spread() {
    let _turn = turn();
    let doc = bench_json(&["--multicast", "239.255.71.1", "--receivers", "3"]);
    let rows = receivers(&doc);
    assert_eq!(rows.len(), 3, "{doc}");
    let mut addrs = Vec::new();
    for (i, row) in rows.iter().enumerate() {
        assert_eq!(row["receiver"], i + 1, "{row}");
        assert_eq!(row["mode"], "pingpong");
        assert_eq!(row["listener"], "built-in");
        assert!(
            row["group"].as_str().unwrap().starts_with("239.255.71.1:"),
            "{row}"
        );
        let sent = num(row, "sent");
        assert!(sent > 0.0, "{row}");
        assert_eq!(num(row, "received") + num(row, "lost"), sent, "{row}");
        assert_eq!(num(row, "samples"), num(row, "received"), "{row}");
        assert!(num(row, "received") > 0.0, "{row}");
        let percentiles: Vec<f64> = ["p50_us", "p90_us", "p99_us", "max_us"]
            .iter()
            .map(|key| num(row, key))
            .collect();
        assert!(percentiles[0] > 0.0, "{row}");
        assert!(percentiles.windows(2).all(|w| w[0] <= w[1]), "{row}");
        addrs.push(row["addr"].as_str().unwrap().to_owned());
    }
    // Each answers from a socket of its own: the sender tells them apart.
    addrs.sort();
    addrs.dedup();
    assert_eq!(addrs.len(), 3, "{doc}");
    let keys: Vec<&String> = doc.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["meta", "results", "summary"], "{doc}");
    assert_eq!(doc["meta"]["engines"][0], "blocking", "{doc}");
    let summary = &doc["summary"];
    assert_eq!(summary["receivers"], 3);
    assert_eq!(summary["answering"], 3);
    let (lo, hi) = (num(summary, "p50_us_min"), num(summary, "p50_us_max"));
    assert!(lo <= hi, "{summary}");
    assert_eq!(
        num(summary, "p50_us_spread"),
        ((hi - lo) * 10.0).round() / 10.0
    );
    assert!(num(summary, "p99_us_spread") >= 0.0, "{summary}");
    assert!((1..=3).contains(&summary["slowest"].as_u64().unwrap()));
}

#[test]
fn the_table_has_a_row_per_receiver_and_the_spread_below() {
    let _turn = turn();
    let mut args = vec!["bench", "--multicast", "239.255.71.2", "--receivers", "2"];
    args.extend_from_slice(QUICK);
    let finished = run(&args, None);
    assert_eq!(finished.code(), Some(0), "{}", finished.stderr);
    let out = &finished.stdout;
    assert!(out.contains("2 built-in receivers"), "{out}");
    assert!(out.contains("interface 127.0.0.1"), "{out}");
    let rows: Vec<&str> = out
        .lines()
        .filter(|l| {
            l.split_whitespace()
                .nth(1)
                .is_some_and(|a| a.starts_with("127.0.0.1:"))
        })
        .collect();
    assert_eq!(rows.len(), 2, "{out}");
    assert!(
        out.contains("across the 2 receivers that answered: p50 "),
        "{out}"
    );
    assert!(out.contains("slowest: receiver "), "{out}");
}

#[test]
fn throughput_counts_what_each_receiver_got() {
    let _turn = turn();
    let doc = bench_json(&[
        "--multicast",
        "239.255.71.3",
        "--receivers",
        "3",
        "--mode",
        "throughput",
        "--rate",
        "5000",
    ]);
    let rows = receivers(&doc);
    assert_eq!(rows.len(), 3, "{doc}");
    for row in rows {
        assert_eq!(row["mode"], "throughput");
        assert_eq!(row["counted"], true, "{row}");
        let (sent, received) = (num(row, "sent"), num(row, "received"));
        // 200 ms at 5,000 a second.
        assert!((800.0..=1100.0).contains(&sent), "{row}");
        // A slow receiver thread may lose some to a full buffer, not most.
        assert!(received >= sent * 0.9, "{row}");
        assert!(received <= sent, "{row}");
        assert_eq!(num(row, "lost"), sent - received, "{row}");
        assert!(num(row, "msgs_per_s") > 0.0, "{row}");
        assert!(row.get("p50_us").is_none(), "{row}");
    }
    assert_eq!(doc["summary"]["mode"], "throughput");
    assert!(doc["summary"].get("p50_us_min").is_none(), "{doc}");
}

#[test]
fn a_remote_receiver_that_never_answers_shows_as_all_lost() {
    let _turn = turn();
    let listener = Listener::start("--udp", "239.255.71.4", &["--iface", "127.0.0.1"]);
    let doc = bench_json(&[
        "--receivers",
        "2",
        "--iface",
        "127.0.0.1",
        "--timeout",
        "20ms",
        &listener.addr_arg(),
    ]);
    let rows = receivers(&doc);
    assert_eq!(rows.len(), 2, "{doc}");
    let (heard, silent) = (&rows[0], &rows[1]);
    assert_eq!(heard["listener"], "remote");
    assert!(num(heard, "received") > 0.0, "{heard}");
    assert!(num(heard, "p50_us") > 0.0, "{heard}");
    // From the listener's own answering port, not the group's.
    let from: std::net::SocketAddr = heard["addr"].as_str().unwrap().parse().unwrap();
    assert_eq!(from.ip().to_string(), "127.0.0.1", "{heard}");
    assert_ne!(from.port(), listener.addr.port(), "{heard}");
    assert!(silent["addr"].is_null(), "{silent}");
    assert_eq!(num(silent, "received"), 0.0, "{silent}");
    assert_eq!(num(silent, "lost_percent"), 100.0, "{silent}");
    assert_eq!(doc["summary"]["answering"], 1);
    assert_eq!(doc["summary"]["slowest"], 2);
}

/// Two remote receivers on one host share the group's port but answer
/// from ports of their own: two receivers, each answering, not one that
/// answers twice and one 100 % lost.
#[test]
fn two_remote_receivers_on_one_host_are_two() {
    let _turn = turn();
    let on_lo = ["--iface", "127.0.0.1"];
    let first = Listener::start("--udp", "239.255.71.6", &on_lo);
    let group = first.addr_arg();
    let mut cmd = msg();
    cmd.args(["listen", "--udp", "-v", &group]).args(on_lo);
    let second = Listener::start_command(cmd);
    assert_eq!(second.addr, first.addr, "one port");
    // Each receiver is a process of its own: on a loaded machine one may
    // not run for longer than the default 200 ms a pong is waited for,
    // and all it answered would count as lost.
    let doc = bench_json(&[
        "--receivers",
        "2",
        "--iface",
        "127.0.0.1",
        "--timeout",
        "2s",
        &group,
    ]);
    let rows = receivers(&doc);
    assert_eq!(rows.len(), 2, "{doc}");
    for row in rows {
        assert_eq!(row["listener"], "remote");
        assert!(num(row, "received") > 0.0, "{row}");
        assert!(num(row, "lost_percent") < 100.0, "{row}");
    }
    assert_ne!(rows[0]["addr"], rows[1]["addr"], "{doc}");
    assert_eq!(doc["summary"]["answering"], 2);
}

#[test]
fn what_makes_no_sense_is_a_usage_error() {
    for (args, why) in [
        (
            &["--receivers", "0", "--multicast", "239.255.0.1"][..],
            "1..=256",
        ),
        (
            &["--receivers", "257", "--multicast", "239.255.0.1"],
            "1..=256",
        ),
        (
            &["--receivers", "2", "--multicast", "127.0.0.1"],
            "127.0.0.1 is not a multicast group",
        ),
        (
            &["--receivers", "2", "10.0.0.1:9000"],
            "10.0.0.1:9000 is not a multicast group",
        ),
        (&["--receivers", "2", "239.1.2.3"], "239.1.2.3:PORT"),
        (
            &["--receivers", "2", "--multicast", "239.255.0.1", "--tcp"],
            "leave out --tcp",
        ),
        (
            &[
                "--receivers",
                "2",
                "--multicast",
                "239.255.0.1",
                "--transports",
                "udp",
            ],
            "leave out --tcp and --transports",
        ),
        (&["--receivers", "2"], "--multicast GROUP"),
        (
            &[
                "--receivers",
                "2",
                "--multicast",
                "239.255.0.1",
                "239.255.0.1:9",
            ],
            "give one of them",
        ),
        (
            &[
                "--receivers",
                "2",
                "--multicast",
                "239.255.0.1",
                "--sizes",
                "64,128",
            ],
            "one size at a time",
        ),
        (
            &[
                "--receivers",
                "2",
                "--multicast",
                "239.255.0.1",
                "--sizes",
                "65500",
            ],
            "does not fit one datagram",
        ),
        (&["--multicast", "239.255.0.1"], "--receivers"),
        (&["--iface", "127.0.0.1"], "--receivers"),
        (
            &[
                "--receivers",
                "2",
                "--multicast",
                "239.255.0.1",
                "--clients",
                "3",
            ],
            "cannot be used with",
        ),
        // A group's option refused as listen and send refuse it (audit,
        // round eleven: exit 1 here).
        (
            &[
                "--receivers",
                "2",
                "--multicast",
                "239.255.0.1",
                "--iface",
                "::1",
            ],
            "are not the same IP version",
        ),
    ] {
        let mut all = vec!["bench"];
        all.extend_from_slice(args);
        assert_usage_error(&all, why);
    }
}

/// Says why the lossy test cannot run here, and passes, unless CI
/// requires it.
#[cfg(target_os = "linux")]
fn skip(why: &str) {
    assert!(
        std::env::var_os("MSG_REQUIRE_NETNS").is_none(),
        "MSG_REQUIRE_NETNS is set, but: {why}"
    );
    support::skip(why);
}

/// Runs `program args` and fails with what it said.
#[cfg(target_os = "linux")]
fn command(program: &str, args: &[&str], stdin: &str) -> Result<(), String> {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|err| format!("{program}: {err}"))?;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .map_err(|err| format!("{program}: {err}"))?;
    let out = child
        .wait_with_output()
        .map_err(|err| format!("{program}: {err}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{program} {args:?}: {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// In a network namespace of its own, nftables drops 30 % of what one
/// built-in receiver answers (its answering socket's port, on the input
/// hook): that receiver shows the loss, the others none.
#[cfg(target_os = "linux")]
#[test]
fn loss_on_one_receiver_shows_on_that_receiver_only() {
    let _turn = turn();
    let outcome = std::thread::spawn(|| {
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET)
            .map_err(|err| format!("unshare(CLONE_NEWNET): {err} (run as root)"))?;
        command("ip", &["link", "set", "lo", "up"], "")?;
        command("nft", &["list", "tables"], "")
            .map_err(|err| format!("{err} (install nftables)"))?;
        // Open loop at 2,000 pings a second, so that a lost answer does not
        // hold the others up; the warm-up leaves the rule time to be in
        // place before the measurement.
        let mut cmd = msg();
        cmd.args([
            "bench",
            "-v",
            "--json",
            "--multicast",
            "239.255.71.5",
            "--receivers",
            "3",
            "--rate",
            "2000",
            "--timeout",
            "100ms",
            "--warmup",
            "1s",
            "--duration",
            "1s",
        ]);
        let mut bench = Running::spawn(cmd, None);
        let line = bench.wait_for_stderr("receiver 2 of 3");
        let port = line
            .rsplit(':')
            .next()
            .and_then(|p| p.trim().parse::<u16>().ok())
            .ok_or_else(|| format!("no port in {line:?}"))?;
        let ruleset = format!(
            "table inet lossy {{\n\
             \tchain input {{\n\
             \t\ttype filter hook input priority 0;\n\
             \t\tudp sport {port} numgen random mod 100 < 30 counter drop\n\
             \t}}\n\
             }}\n"
        );
        command("nft", &["-f", "-"], &ruleset)?;
        Ok::<_, String>(bench.finish())
    })
    .join()
    .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
    let finished = match outcome {
        Ok(finished) => finished,
        Err(why) => return skip(&why),
    };
    assert_eq!(finished.code(), Some(0), "{}", finished.stderr);
    let doc: Value = serde_json::from_str(&finished.stdout)
        .unwrap_or_else(|err| panic!("{err}: {}", finished.stdout));
    let rows = receivers(&doc);
    assert_eq!(rows.len(), 3, "{doc}");
    for row in rows {
        let lost = num(row, "lost_percent");
        if row["receiver"] == 2 {
            // 2,000 answers, 30 % dropped: a standard deviation of about
            // one point.
            assert!((22.0..=38.0).contains(&lost), "{row}");
        } else {
            assert_eq!(lost, 0.0, "{row}");
        }
    }
    assert_eq!(doc["summary"]["slowest"], 2);
}

/// A run no receiver answered measured nothing: the report is shown, and
/// msg exits 1 saying so (audit, round eleven: exit 0).
#[test]
fn a_run_no_receiver_answered_is_a_failure() {
    let _turn = turn();
    // A group and port nobody has joined: every ping goes unanswered.
    let port = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let group = format!("239.255.71.9:{port}");
    let mut all = vec![
        "bench",
        "--json",
        "--receivers",
        "2",
        "--iface",
        "127.0.0.1",
        "--timeout",
        "20ms",
        &group,
    ];
    all.extend_from_slice(QUICK);
    let out = run(&all, None);
    assert_eq!(out.code(), Some(1), "{}", out.stderr);
    assert!(
        out.stderr
            .contains("none of the 2 receivers answered: nothing was measured"),
        "{}",
        out.stderr
    );
    let doc: Value =
        serde_json::from_str(&out.stdout).unwrap_or_else(|err| panic!("{err}: {}", out.stdout));
    assert_eq!(doc["summary"]["answering"], 0, "{doc}");
    // The ping-pong's keys are there, null: nothing answered to measure
    // (they were left out, so a reader found no key at all).
    for key in ["p50_us_min", "p50_us_max", "p50_us_spread", "p99_us_min"] {
        let value = doc["summary"].get(key);
        assert_eq!(value, Some(&Value::Null), "{key}: {doc}");
    }
    for result in doc["results"].as_array().unwrap() {
        for key in ["p50_us", "p90_us", "p99_us", "max_us"] {
            assert_eq!(result.get(key), Some(&Value::Null), "{key}: {doc}");
        }
    }
}
