//! msg-bench in-process: plans carried out against the built-in listeners
//! on loopback, in tens of milliseconds each, and the results checked as
//! a caller of the library sees them (no binary, no flags).

use std::time::Duration;

use msg_bench::clients::Load;
use msg_bench::{Batch, Engine, Error, Mode, Plan, Progress, Results, Transport, report};

/// A short plan: one size, one run, 10 ms of warm-up and 60 ms measured.
fn quick(transports: &[Transport], engines: &[Engine]) -> Plan {
    Plan {
        transports: transports.to_vec(),
        sizes: vec![64],
        warmup: Duration::from_millis(10),
        duration: Duration::from_millis(60),
        runs: 1,
        engines: engines.to_vec(),
        ..Plan::default()
    }
}

/// A short clients load: 4 connections, 64 bytes, 10 ms of warm-up and
/// 60 ms measured.
fn quick_load() -> Load {
    Load {
        clients: 4,
        size: 64,
        warmup: Duration::from_millis(10),
        duration: Duration::from_millis(60),
        timeout: None,
        nodelay: true,
        auth: None,
        remote: None,
    }
}

/// Every message of `plan` tagged with a secret (the built-in listeners
/// then measure each transport with it and without).
fn authenticate(plan: &mut Plan) {
    let secret = msg_proto::auth::Secret::new(b"in-process".to_vec()).unwrap();
    plan.auth = Some(msg_bench::Auth::new(secret));
}

/// Counts what the run reports.
#[derive(Debug, Default)]
struct Counted {
    total: Option<u64>,
    started: Vec<String>,
    done: u64,
}

impl Progress for Counted {
    fn start(&mut self, runs: u64, each: Duration) {
        assert_eq!(each, Duration::from_millis(70));
        self.total = Some(runs);
    }

    fn run(&mut self, what: &str) {
        self.started.push(what.to_owned());
    }

    fn done(&mut self) {
        self.done += 1;
    }
}

/// Every cell measured, its one run with samples, a round trip of some
/// microseconds and nothing lost on loopback over TCP.
fn assert_ping_pong(results: &Results, cells: usize) {
    assert_eq!(results.measured.len(), cells, "{results:?}");
    for cell in &results.measured {
        let runs = cell.runs.as_ref().expect("64 bytes fit either transport");
        assert_eq!(runs.len(), 1);
        let run = &runs[0];
        assert!(run.sent > 0 && run.received > 0, "{cell:?}");
        assert_eq!(run.latency.len(), run.received, "{cell:?}");
        let p50 = run.latency.value_at_quantile(0.5);
        assert!(p50 > 0 && p50 < 1_000_000_000, "p50 {p50} ns: {cell:?}");
        if cell.transport == Transport::Tcp {
            assert_eq!(run.lost(), 0, "{cell:?}");
        }
    }
}

#[test]
fn a_ping_pong_over_udp_and_tcp_on_both_engines() {
    let plan = quick(
        &[Transport::Udp, Transport::Tcp],
        &[Engine::Blocking, Engine::Tokio],
    );
    let mut progress = Counted::default();
    let results = msg_bench::run(&plan, &mut progress).unwrap();
    assert_ping_pong(&results, 4);
    // Interleaved: the transports alternate within the run, each engine
    // in turn.
    let order: Vec<(Transport, Engine)> = results
        .measured
        .iter()
        .map(|c| (c.transport, c.engine))
        .collect();
    assert_eq!(
        order,
        [
            (Transport::Udp, Engine::Blocking),
            (Transport::Tcp, Engine::Blocking),
            (Transport::Udp, Engine::Tokio),
            (Transport::Tcp, Engine::Tokio),
        ]
    );
    assert_eq!(progress.total, Some(4));
    assert_eq!(progress.done, 4);
    assert_eq!(progress.started[0], "udp 64 B, run 1/1");
    assert!(
        results
            .listeners
            .starts_with("on loopback, built-in listeners on udp blocking 127.0.0.1:"),
        "{}",
        results.listeners
    );

    // The report is a function of the plan and the results.
    let mut table = Vec::new();
    report::write_table(&mut table, &plan, &results).unwrap();
    let table = String::from_utf8(table).unwrap();
    assert!(
        table.contains("blocking and tokio engines interleaved"),
        "{table}"
    );
    assert!(table.contains("tokio-blocking p50 µs"), "{table}");
    let mut json = Vec::new();
    let meta = msg_bench::meta::Meta::collect(plan.placement.to_string(), vec![], vec![]);
    report::write_json(&mut json, &meta, &plan, &results).unwrap();
    let json: serde_json::Value = serde_json::from_slice(&json).unwrap();
    let cells = json["results"].as_array().unwrap();
    assert_eq!(cells.len(), 4);
    assert_eq!(
        (&cells[0]["transport"], &cells[0]["io"]),
        (&"udp".into(), &"blocking".into())
    );
    assert!(cells[3]["p50_us"].as_f64().unwrap() > 0.0, "{json}");
}

#[test]
fn an_open_loop_and_a_throughput_stream_on_tokio() {
    let mut plan = quick(&[Transport::Udp, Transport::Tcp], &[Engine::Tokio]);
    plan.rate = Some(2000);
    let results = msg_bench::run(&plan, &mut ()).unwrap();
    assert_ping_pong(&results, 2);

    plan.rate = None;
    plan.mode = Mode::Throughput;
    let results = msg_bench::run(&plan, &mut ()).unwrap();
    for cell in &results.measured {
        let run = &cell.runs.as_ref().unwrap()[0];
        assert!(run.sent > 0 && run.received > 0, "{cell:?}");
        assert!(run.latency.is_empty(), "a stream times no round trips");
        assert!(run.msgs_per_s() > 0.0, "{cell:?}");
    }
}

#[test]
fn a_batched_udp_stream_counts_its_system_calls() {
    let mut plan = quick(&[Transport::Udp], &[Engine::Tokio]);
    plan.mode = Mode::Throughput;
    plan.batch = Some(Batch {
        size: 8,
        gso: false,
    });
    let results = msg_bench::run(&plan, &mut ()).unwrap();
    let run = &results.measured[0].runs.as_ref().unwrap()[0];
    let calls = run.calls.expect("a batched run counts its calls");
    assert!(calls.send.calls > 0 && calls.send.datagrams >= calls.send.calls);
    assert!(
        calls.recv.is_some(),
        "the built-in listener's receives are read"
    );
}

/// The blocking engine with a secret: its built-in listeners measure each
/// transport with it and without, and the authenticated cells (over TCP
/// through the handshake) answer every ping.
/// So are a Unix socket's, through the same handshake as TCP's, on both
/// engines.
#[test]
fn the_blocking_engine_measures_with_a_secret() {
    for (transports, engines) in [
        (
            &[Transport::Udp, Transport::Tcp][..],
            &[Engine::Blocking][..],
        ),
        (&[Transport::Unix], &[Engine::Blocking, Engine::Tokio]),
    ] {
        let mut plan = quick(transports, engines);
        authenticate(&mut plan);
        let results = msg_bench::run(&plan, &mut ()).unwrap();
        // Plain and authenticated, each transport on each engine.
        let cells = 2 * transports.len() * engines.len();
        assert_ping_pong(&results, cells);
        let authenticated = results.measured.iter().filter(|m| m.authenticated);
        assert_eq!(authenticated.count(), cells / 2, "{results:?}");
    }
}

/// The blocking engine batches a UDP stream: msg-udp's runtime-free
/// sendmmsg on the client, recvmmsg on its built-in listener, both counted.
#[test]
fn the_blocking_engine_batches_a_udp_stream() {
    let mut plan = quick(&[Transport::Udp], &[Engine::Blocking]);
    plan.mode = Mode::Throughput;
    plan.batch = Some(Batch { size: 8, gso: true });
    let results = msg_bench::run(&plan, &mut ()).unwrap();
    let run = &results.measured[0].runs.as_ref().unwrap()[0];
    assert!(run.received > 0 && run.sent % 8 == 0, "{run:?}");
    let calls = run.calls.expect("a batched run counts its calls");
    assert!(calls.send.calls > 0 && calls.send.datagrams >= calls.send.calls);
    let recv = calls
        .recv
        .expect("the blocking listener's receives are read");
    assert!(recv.calls > 0, "{recv:?}");
}

#[test]
fn a_size_over_the_datagram_limit_is_a_cell_of_its_own() {
    let mut plan = quick(&[Transport::Udp], &[Engine::Blocking]);
    // Beside a size that fits: a plan where nothing fits measures nothing,
    // and is refused (below).
    plan.sizes = vec![64, 65_508];
    let results = msg_bench::run(&plan, &mut ()).unwrap();
    assert!(results.measured[0].runs.is_ok());
    let oversize = results.measured[1].runs.as_ref().unwrap_err();
    assert_eq!(oversize.limit, 65_507);
    assert!(oversize.message.contains("65507"), "{}", oversize.message);

    plan.sizes = vec![65_508];
    let refused = msg_bench::run(&plan, &mut ()).unwrap_err();
    assert!(
        matches!(&refused, Error::NothingFits(message) if message.contains("65507")),
        "{refused}"
    );
}

#[test]
fn plans_that_make_no_sense_are_refused_before_anything_runs() {
    let mut batched_ping_pong = quick(&[Transport::Udp], &[Engine::Tokio]);
    batched_ping_pong.batch = Some(Batch { size: 8, gso: true });
    let mut blocking_open_loop = quick(&[Transport::Udp], &[Engine::Blocking]);
    blocking_open_loop.rate = Some(100);
    let mut no_sizes = quick(&[Transport::Udp], &[Engine::Blocking]);
    no_sizes.sizes.clear();
    for (plan, refused) in [
        (batched_ping_pong, "batching needs a one-way stream"),
        (
            blocking_open_loop,
            "the blocking engine does only the closed loop",
        ),
        (no_sizes, "the plan has no size"),
    ] {
        let err = msg_bench::run(&plan, &mut ()).unwrap_err();
        let text = err.to_string();
        assert!(text.contains(refused), "{text}");
        // The library speaks of the benchmark, never of a command line.
        assert!(!text.contains("--"), "{text}");
    }
}

#[test]
fn a_remote_listener_that_is_not_there_fails_the_run() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut plan = quick(&[Transport::Tcp], &[Engine::Tokio]);
    plan.remote = Some(format!("127.0.0.1:{port}"));
    let err = msg_bench::run(&plan, &mut ()).unwrap_err();
    assert!(matches!(err, Error::Run { size: 64, .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!("tcp 64-byte run against 127.0.0.1:{port}")
    );
}

#[test]
fn clients_load_the_built_in_listener_at_once() {
    let load = quick_load();
    let results = msg_bench::clients::run(&load).unwrap();
    assert!(results.builtin);
    let mut json = Vec::new();
    let meta = msg_bench::meta::Meta::collect("pin off".to_owned(), vec![], vec![]);
    report::clients::write_json(&mut json, &meta, &load, &results).unwrap();
    let json: serde_json::Value = serde_json::from_slice(&json).unwrap();
    let record = &json["results"][0];
    assert_eq!(record["clients"], 4);
    assert_eq!(record["listener"], "built-in");
    assert!(record["samples"].as_u64().unwrap() > 0, "{json}");
    assert!(record["p50_us"].as_f64().unwrap() > 0.0, "{json}");
}

/// A Unix stream socket beside UDP and TCP, on both engines: the built-in
/// listeners bind it in a private temporary directory, and it answers
/// every ping, as a stream loses nothing.
#[test]
fn a_ping_pong_over_a_unix_socket_on_both_engines() {
    let plan = quick(
        &[Transport::Udp, Transport::Tcp, Transport::Unix],
        &[Engine::Blocking, Engine::Tokio],
    );
    let results = msg_bench::run(&plan, &mut ()).unwrap();
    assert_ping_pong(&results, 6);
    let unix: Vec<_> = results
        .measured
        .iter()
        .filter(|c| c.transport == Transport::Unix)
        .collect();
    assert_eq!(unix.len(), 2, "{results:?}");
    for cell in unix {
        assert_eq!(cell.runs.as_ref().unwrap()[0].lost(), 0, "{cell:?}");
    }
    assert!(
        results
            .listeners
            .starts_with("on loopback and over Unix sockets, built-in listeners on "),
        "{}",
        results.listeners
    );
    // The socket files were in a directory of their own, gone with the
    // listeners.
    let dir = results
        .listeners
        .split(", ")
        .find_map(|l| l.strip_prefix("unix blocking "))
        .map(|path| std::path::Path::new(path).parent().unwrap().to_owned())
        .unwrap_or_else(|| panic!("no unix listener in {}", results.listeners));
    assert!(!dir.exists(), "{} is still there", dir.display());
}

/// A one-way stream over a Unix socket, on both engines: every message
/// arrives (the kernel makes the sender wait for a full receiver).
#[test]
fn a_throughput_stream_over_a_unix_socket_loses_nothing() {
    let mut plan = quick(&[Transport::Unix], &[Engine::Blocking, Engine::Tokio]);
    plan.mode = Mode::Throughput;
    let results = msg_bench::run(&plan, &mut ()).unwrap();
    assert_eq!(results.measured.len(), 2);
    for cell in &results.measured {
        let run = &cell.runs.as_ref().unwrap()[0];
        assert!(run.sent > 0, "{cell:?}");
        assert_eq!(run.received, run.sent, "{cell:?}");
        assert!(run.msgs_per_s() > 0.0, "{cell:?}");
    }
}

/// An impairment acts on lo, which a Unix socket never crosses: refused
/// before anything runs.
#[test]
fn a_unix_socket_is_not_measured_under_impairment() {
    let mut plan = quick(&[Transport::Udp, Transport::Unix], &[Engine::Tokio]);
    plan.impairments = vec!["loss 1%".parse().unwrap()];
    let err = msg_bench::run(&plan, &mut ()).unwrap_err();
    assert!(
        matches!(err, Error::ImpairNotInet(Transport::Unix)),
        "{err:?}"
    );
    assert!(err.to_string().contains("never crosses"), "{err}");
}

/// The clients load over a Unix socket: N connections to the built-in
/// listener, bound in a private temporary directory; a transport without
/// connections is refused.
#[test]
fn clients_load_a_unix_socket_and_refuse_a_datagram_transport() {
    let load = quick_load();
    let results = msg_bench::clients::run_over(&load, Transport::Unix).unwrap();
    assert_eq!(results.transport, Transport::Unix);
    let mut json = Vec::new();
    let meta = msg_bench::meta::Meta::collect("pin off".to_owned(), vec![], vec![]);
    report::clients::write_json(&mut json, &meta, &load, &results).unwrap();
    let json: serde_json::Value = serde_json::from_slice(&json).unwrap();
    let record = &json["results"][0];
    assert_eq!(record["transport"], "unix");
    assert!(record["samples"].as_u64().unwrap() > 0, "{json}");
    let mut table = Vec::new();
    report::clients::write_table(&mut table, &load, &results).unwrap();
    let table = String::from_utf8(table).unwrap();
    assert!(table.contains("4 UNIX clients at once"), "{table}");
    assert!(
        table.contains("over Unix sockets, built-in listener on unix /"),
        "{table}"
    );

    let err = msg_bench::clients::run_over(&load, Transport::Udp).unwrap_err();
    assert!(
        matches!(err, Error::ClientsNeedConnections(Transport::Udp)),
        "{err:?}"
    );
}
