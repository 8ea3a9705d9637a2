//! `msg bench --mode connect`'s contract, with the real binary on
//! loopback: the table's columns, the JSON's keys and sane values, both
//! closes, and TCP Fast Open working or refused as documented. Not how
//! fast anything is.

mod support;

use serde_json::Value;
use support::run;

/// Short runs: the contract, not the speed.
const QUICK: &[&str] = &[
    "bench",
    "--mode",
    "connect",
    "--runs",
    "2",
    "--duration",
    "100ms",
    "--warmup",
    "20ms",
    "--pin",
    "off",
];

/// Every key of a transport's object, in order.
const KEYS: [&str; 18] = [
    "mode",
    "transport",
    "close",
    "tfo",
    "size",
    "runs",
    "cycles",
    "lost",
    "connections_per_s",
    "connections_per_s_min",
    "connections_per_s_max",
    "connect_p50_us",
    "connect_p99_us",
    "exchange_p50_us",
    "exchange_p99_us",
    "cycle_p50_us",
    "cycle_p99_us",
    "syn_data",
];

/// `msg bench --mode connect ARGS`: its exit code, stdout and stderr.
fn connect(args: &[&str]) -> support::Finished {
    let mut all = QUICK.to_vec();
    all.extend_from_slice(args);
    run(&all, None)
}

fn json(args: &[&str]) -> Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let finished = connect(&all);
    assert_eq!(finished.code(), Some(0), "{}", finished.stderr);
    serde_json::from_str(&finished.stdout)
        .unwrap_or_else(|err| panic!("{err}: {}", finished.stdout))
}

fn num(result: &Value, key: &str) -> f64 {
    result[key]
        .as_f64()
        .unwrap_or_else(|| panic!("{key} is not a number in {result}"))
}

/// The keys of a JSON object, sorted (as serde_json keeps them).
fn keys(object: &Value) -> Vec<&str> {
    let mut keys: Vec<&str> = object
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    keys
}

fn sorted<'a>(keys: impl IntoIterator<Item = &'a str>) -> Vec<&'a str> {
    let mut keys: Vec<&str> = keys.into_iter().collect();
    keys.sort_unstable();
    keys
}

/// The figures of one transport's object are all there, and sane.
fn assert_sane(result: &Value, tfo: bool) {
    let expected = sorted(KEYS.iter().copied().filter(|&k| tfo || k != "syn_data"));
    assert_eq!(keys(result), expected, "{result}");
    assert_eq!(result["mode"], "connect");
    assert_eq!(result["runs"], 2);
    assert!(num(result, "cycles") > 0.0, "{result}");
    let rate = num(result, "connections_per_s");
    assert!(rate > 0.0, "{result}");
    assert!(num(result, "connections_per_s_min") <= rate, "{result}");
    assert!(rate <= num(result, "connections_per_s_max"), "{result}");
    for what in ["connect", "exchange", "cycle"] {
        let p50 = num(result, &format!("{what}_p50_us"));
        let p99 = num(result, &format!("{what}_p99_us"));
        assert!(p50 > 0.0 && p50 <= p99, "{what}: {result}");
    }
    // The cycle holds the connect and the exchange.
    assert!(
        num(result, "cycle_p50_us") >= num(result, "exchange_p50_us"),
        "{result}"
    );
}

#[test]
fn json_has_the_documented_keys_for_every_transport_and_the_ports() {
    let doc = json(&["--transports", "udp,tcp,unix,unix-dgram,seqpacket"]);
    assert_eq!(keys(&doc), ["meta", "ports", "results"]);
    assert_eq!(doc["meta"]["engines"], serde_json::json!(["blocking"]));
    let results = doc["results"].as_array().unwrap();
    let names: Vec<&str> = results
        .iter()
        .map(|r| r["transport"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["udp", "tcp", "unix", "unix-dgram", "seqpacket"]);
    for result in results {
        assert_sane(result, false);
        // Only TCP has a close to choose (and a TIME_WAIT).
        let close = if result["transport"] == "tcp" {
            Value::from("rst")
        } else {
            Value::Null
        };
        assert_eq!(result["close"], close, "{result}");
        assert_eq!(result["lost"], 0, "{result}");
    }
    let ports = &doc["ports"];
    if !ports.is_null() {
        let expected = [
            "low",
            "high",
            "count",
            "tw_reuse",
            "held_s",
            "sustainable_per_s",
            "limited",
        ];
        assert_eq!(keys(ports), sorted(expected));
        assert_eq!(ports["limited"], false, "a RST close holds no port");
    }
}

/// Over TLS and QUIC: the handshake apart from the connect and the
/// exchange (the first byte's round trip), in the JSON and the table.
#[test]
fn tls_and_quic_report_their_handshake_apart() {
    let doc = json(&["--transports", "tcp,tls,quic"]);
    assert_eq!(
        doc["meta"]["engines"],
        serde_json::json!(["blocking", "tokio"])
    );
    let results = doc["results"].as_array().unwrap();
    let names: Vec<&str> = results
        .iter()
        .map(|r| r["transport"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["tcp", "tls", "quic"]);
    for result in &results[1..] {
        let handshake = ["handshake_p50_us", "handshake_p99_us"];
        let expected = sorted(
            KEYS.iter()
                .chain(&handshake)
                .copied()
                .filter(|&k| k != "syn_data"),
        );
        assert_eq!(keys(result), expected, "{result}");
        assert_eq!(result["lost"], 0, "{result}");
        let p50 = num(result, "handshake_p50_us");
        assert!(
            p50 > 0.0 && p50 <= num(result, "handshake_p99_us"),
            "{result}"
        );
        for what in ["exchange", "cycle"] {
            let p50 = num(result, &format!("{what}_p50_us"));
            assert!(
                p50 > 0.0 && p50 <= num(result, &format!("{what}_p99_us")),
                "{result}"
            );
        }
        assert!(num(result, "cycle_p50_us") >= p50, "{result}");
    }
    // TLS's connection is TCP's; QUIC's has no connect().
    assert!(num(&results[1], "connect_p50_us") > 0.0, "{}", results[1]);
    assert_eq!(results[1]["close"], "rst");
    assert!(results[2]["connect_p50_us"].is_null(), "{}", results[2]);
    assert!(results[2]["close"].is_null(), "{}", results[2]);

    let finished = connect(&["--transports", "tls,quic"]);
    assert_eq!(finished.code(), Some(0), "{}", finished.stderr);
    let out = &finished.stdout;
    assert!(out.contains("handshake p50  handshake p99"), "{out}");
    assert!(out.contains("no session resumed"), "{out}");
    // QUIC datagrams' handshake is QUIC's, measured as quic.
    let finished = connect(&["--transports", "quic-dgram"]);
    assert_eq!(finished.code(), Some(2), "{}", finished.stderr);
    assert!(finished.stderr.contains("quic's"), "{}", finished.stderr);
}

#[test]
fn the_table_has_its_columns_and_both_closes_work() {
    for close in ["fin", "rst"] {
        let finished = connect(&["--close", close]);
        assert_eq!(finished.code(), Some(0), "{}", finished.stderr);
        let out = &finished.stdout;
        assert!(
            out.starts_with("msg bench: connect, per cycle a new socket"),
            "{out}"
        );
        assert!(out.contains(&format!("(TCP: {close} close)")), "{out}");
        assert!(out.contains("UDP and TCP interleaved"), "{out}");
        let header = out
            .lines()
            .find(|l| l.trim_start().starts_with("transport"))
            .unwrap_or_else(|| panic!("no header in {out}"));
        let columns: Vec<&str> = header
            .split("  ")
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .collect();
        assert_eq!(
            columns,
            [
                "transport",
                "conn/s",
                "conn/s range",
                "connect p50",
                "connect p99",
                "exchange p50",
                "exchange p99",
                "cycle p50",
                "cycle p99",
                "cycles",
                "lost",
                "cycle/udp p50"
            ],
            "{out}"
        );
        for transport in ["udp", "tcp"] {
            assert!(
                out.lines()
                    .any(|l| l.split_whitespace().next() == Some(transport)),
                "no {transport} row in {out}"
            );
        }
        if std::path::Path::new("/proc/sys/net/ipv4/tcp_tw_reuse").exists() {
            let note = if close == "fin" {
                "TIME_WAIT"
            } else {
                "closed with a RST"
            };
            assert!(out.contains(note), "{out}");
        }
        let doc = json(&["--close", close, "--transports", "tcp"]);
        assert_eq!(doc["results"][0]["close"], close);
    }
}

/// The table's head says only what applies to what was measured: the
/// note on a datagram socket's connect() beside a datagram row alone, and
/// one blank line (not two) between the title and the table (audit,
/// round nine).
#[test]
fn the_title_speaks_of_what_was_measured_and_one_blank_line_follows() {
    let note = "a datagram socket's connect() sends nothing";
    for (transports, datagram) in [("tcp", false), ("udp,tcp", true)] {
        let finished = connect(&["--transports", transports]);
        assert_eq!(finished.code(), Some(0), "{}", finished.stderr);
        let lines: Vec<&str> = finished.stdout.lines().collect();
        assert_eq!(lines[1].contains(note), datagram, "{transports}: {lines:?}");
        assert_eq!(lines[2], "", "{transports}: {lines:?}");
        assert!(
            lines[3].trim_start().starts_with("transport"),
            "{transports}: {lines:?}"
        );
    }
}

#[test]
fn tfo_works_or_is_refused_as_documented() {
    let finished = connect(&["--json", "--tfo", "--transports", "tcp"]);
    match finished.code() {
        Some(0) => {
            let doc: Value = serde_json::from_str(&finished.stdout).unwrap();
            let result = &doc["results"][0];
            assert_sane(result, true);
            assert_eq!(result["tfo"], true);
            assert!(num(result, "syn_data") <= num(result, "cycles"), "{result}");
        }
        // The kernel's client side is off, or no Fast Open at all: a
        // usage error that says which.
        Some(2) => {
            assert!(finished.stderr.contains("--tfo: "), "{}", finished.stderr);
            support::skip(&format!(
                "TCP Fast Open refused here: {}",
                finished.stderr.trim()
            ));
        }
        other => panic!("{other:?}: {}", finished.stderr),
    }
    // Without TCP there is no handshake to cut.
    let finished = connect(&["--tfo", "--transports", "udp"]);
    assert_eq!(finished.code(), Some(2), "{}", finished.stderr);
    assert!(
        finished.stderr.contains("no TCP is measured"),
        "{}",
        finished.stderr
    );
}

#[test]
fn what_measures_something_else_is_a_usage_error() {
    for args in [
        &["--rate", "100"][..],
        &["--sizes", "64,128"],
        &["--io", "tokio"],
        &["127.0.0.1:9"],
    ] {
        let finished = connect(args);
        assert_eq!(finished.code(), Some(2), "{args:?}: {}", finished.stderr);
    }
    support::assert_usage_error(&["bench", "--close", "fin"], "--mode connect");
    // As --tfo: without TCP there is no TCP close to choose (audit, round
    // fifteen: taken without a word).
    let finished = connect(&["--close", "fin", "--transports", "udp"]);
    assert_eq!(finished.code(), Some(2), "{}", finished.stderr);
    assert!(
        finished
            .stderr
            .contains("--close sets how TCP connections close, and no TCP is measured"),
        "{}",
        finished.stderr
    );
}

/// `--interval` in the connect mode: JSON Lines whose intervals count
/// cycles (and time them) and add up to the end object's.
#[test]
fn intervals_count_cycles_and_add_up() {
    // QUICK's --runs 2, then --runs 1: the last one counts.
    let mut args = QUICK.to_vec();
    args.extend_from_slice(&[
        "--transports",
        "udp,tcp",
        "--runs",
        "1",
        "--json",
        "--interval",
        "50ms",
    ]);
    let finished = run(&args, None);
    assert_eq!(finished.code(), Some(0), "{}", finished.stderr);
    let lines: Vec<Value> = finished
        .stdout
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(lines[0]["type"], "start");
    assert_eq!(lines[0]["mode"], "connect");
    let end = lines.last().unwrap();
    assert_eq!(end["type"], "end");
    for result in end["results"].as_array().unwrap() {
        let cycles: f64 = lines
            .iter()
            .filter(|l| l["type"] == "interval" && l["transport"] == result["transport"])
            .map(|l| l["sent"].as_f64().unwrap())
            .sum();
        assert_eq!(cycles, result["cycles"].as_f64().unwrap(), "{result}");
    }
}
