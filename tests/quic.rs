//! QUIC (`--quic`) with the real binary: messages and replies on a QUIC
//! connection's stream, a file and a command with a secret inside it, the
//! listener's self-signed certificate pinned right and wrong, and the
//! peers that do not speak QUIC (a UDP client at a QUIC listener, a QUIC
//! client at a UDP one) failing within their time while the listener
//! serves on.

mod support;

use std::time::{Duration, Instant};

use support::{Listener, assert_usage_error, run};

fn send(listener: &Listener, flags: &[&str], stdin: &[u8]) -> support::Finished {
    let addr = listener.addr_arg();
    let mut args = vec!["send", "--quic", "--reply"];
    args.extend_from_slice(flags);
    args.push(&addr);
    run(&args, Some(stdin))
}

#[test]
fn messages_and_replies_go_over_quic_with_the_certificate_pinned() {
    let mut listener = Listener::start("--quic", "127.0.0.1", &["--reply", "upper"]);
    let pinned = listener.fingerprint();
    let ok = send(
        &listener,
        &["--tls-fingerprint", &pinned],
        b"one\ntwo\nthree\n",
    );
    assert_eq!(
        (ok.code(), ok.stdout.as_str()),
        (Some(0), "ONE\nTWO\nTHREE\n"),
        "{}",
        ok.stderr
    );

    // Another certificate pinned: refused in the handshake, naming both
    // fingerprints, and the listener serves on.
    let wrong = format!("00{}", &pinned[2..]);
    let started = Instant::now();
    let refused = send(&listener, &["--tls-fingerprint", &wrong], b"x\n");
    assert!(started.elapsed() < Duration::from_secs(3));
    assert_eq!(refused.code(), Some(1), "{}", refused.stderr);
    assert!(refused.stdout.is_empty());
    assert!(
        refused.stderr.contains("not the one pinned")
            && refused.stderr.contains(&wrong)
            && refused.stderr.contains(&pinned),
        "{}",
        refused.stderr
    );
    listener.process.wait_for_stderr("dropped connection");
    // No verification at all: warned, and served.
    let insecure = send(&listener, &["--insecure"], b"still\n");
    assert_eq!(insecure.stdout, "STILL\n", "{}", insecure.stderr);
    assert!(
        insecure.stderr.contains("without verifying"),
        "{}",
        insecure.stderr
    );
}

#[test]
fn a_udp_client_at_a_quic_listener_and_a_quic_client_at_a_udp_listener_do_not_hang() {
    let mut quic = Listener::start("--quic", "127.0.0.1", &["--reply", "echo"]);
    let pinned = quic.fingerprint();
    let addr = quic.addr_arg();
    // msg's datagrams are no QUIC packets: quinn ignores them, and the UDP
    // client's wait for a reply ends at its timeout.
    let started = Instant::now();
    let plain = run(
        &[
            "send",
            "--udp",
            "--reply",
            "--timeout",
            "500ms",
            &addr,
            "plain",
        ],
        None,
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(plain.code(), Some(1), "{}", plain.stderr);
    assert!(plain.stderr.contains("no reply"), "{}", plain.stderr);
    let ok = send(&quic, &["--tls-fingerprint", &pinned], b"served\n");
    assert_eq!(ok.stdout, "served\n", "{}", ok.stderr);

    // A QUIC client at a UDP listener: no handshake answers it, and it
    // gives up at its handshake timeout, saying what may be wrong.
    let udp = Listener::start("--udp", "127.0.0.1", &["--reply", "echo"]);
    let started = Instant::now();
    let lost = run(
        &[
            "send",
            "--quic",
            "--insecure",
            "--handshake-timeout",
            "1s",
            &udp.addr_arg(),
            "x",
        ],
        None,
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(lost.code(), Some(1), "{}", lost.stderr);
    assert!(
        lost.stderr.contains("no QUIC handshake") && lost.stderr.contains("msg listen --quic"),
        "{}",
        lost.stderr
    );
}

#[test]
fn a_file_and_a_command_with_a_secret_run_over_quic() {
    let secret = support::secret_arg(b"quic and a secret");
    let save = support::fresh_path("quic-save");
    let save_arg = save.to_str().unwrap();
    let mut listener = Listener::start(
        "--quic",
        "127.0.0.1",
        &["--secret-file", &secret, "--save-dir", save_arg, "--exec"],
    );
    let pinned = listener.fingerprint();
    let addr = listener.addr_arg();
    let file = support::fresh_path("quic-file");
    std::fs::write(&file, (0..300_000u32).map(|n| n as u8).collect::<Vec<_>>()).unwrap();
    let sent = run(
        &[
            "send",
            "--quic",
            "--tls-fingerprint",
            &pinned,
            "--secret-file",
            &secret,
            &addr,
            "--file",
            file.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(sent.code(), Some(0), "{}", sent.stderr);
    let name = file.file_name().unwrap();
    assert_eq!(
        std::fs::read(save.join(name)).unwrap(),
        std::fs::read(&file).unwrap()
    );

    let exec = |secret: &[&str], command: &[&str], stdin: &[u8]| {
        let mut args = vec!["exec", "--quic", "--tls-fingerprint", &pinned];
        args.extend_from_slice(secret);
        args.extend_from_slice(&[&addr, "--"]);
        args.extend_from_slice(command);
        run(&args, Some(stdin))
    };
    let upper = exec(
        &["--secret-file", &secret],
        &["tr", "a-z", "A-Z"],
        b"over quic\n",
    );
    assert_eq!(
        (upper.code(), upper.stdout.as_str()),
        (Some(0), "OVER QUIC\n"),
        "{}",
        upper.stderr
    );
    // Without the secret: refused, as over TCP.
    let refused = exec(&[], &["true"], b"");
    assert_eq!(refused.code(), Some(2), "{}", refused.stderr);
    let _ = std::fs::remove_dir_all(&save);
    let _ = std::fs::remove_file(&file);
}

#[test]
fn quic_flags_are_checked_before_anything_starts() {
    // The TLS flags apply to --quic without --tls.
    assert_usage_error(
        &[
            "send",
            "--tcp",
            "--tls-fingerprint",
            "00",
            "127.0.0.1:1",
            "x",
        ],
        "--tls",
    );
    assert_usage_error(
        &["listen", "--quic", "--io", "blocking", "127.0.0.1:0"],
        "--quic is served by the tokio engine",
    );
}

#[test]
fn bench_measures_quic_beside_udp_and_refuses_what_it_cannot_measure() {
    for mode in ["pingpong", "throughput"] {
        let done = run(
            &[
                "bench",
                "--transports",
                "udp,quic",
                "--mode",
                mode,
                "--sizes",
                "64",
                "--runs",
                "1",
                "--duration",
                "100ms",
                "--warmup",
                "50ms",
                "--json",
            ],
            None,
        );
        assert_eq!(done.code(), Some(0), "{mode}: {}", done.stderr);
        let json: serde_json::Value = serde_json::from_str(&done.stdout).unwrap();
        let cells = json["results"].as_array().unwrap();
        let quic = cells
            .iter()
            .find(|c| c["transport"] == "quic")
            .unwrap_or_else(|| panic!("{mode}: no quic cell in {}", done.stdout));
        assert!(
            quic["received"].as_u64().unwrap_or(0) > 0
                || quic["p50_us"].as_f64().unwrap_or(0.0) > 0.0,
            "{mode}: {quic}"
        );
    }
    assert_usage_error(
        &["bench", "--transports", "quic", "--io", "blocking"],
        "the blocking engine does no TLS or QUIC",
    );
    // Named by the flag, not as `--transports tls` (audit, round nine).
    assert_usage_error(
        &["bench", "--transports", "quic", "127.0.0.1:9"],
        "--transports: tls and quic are measured against the built-in listener only",
    );
}

/// `msg send --quic-datagrams --reply` with the listener's certificate
/// pinned.
/// A stream client at a datagram listener, and a datagram client at a
/// stream listener (audit, round six): the first waited for ever for a
/// stream the listener never grants (its keep-alives held the connection
/// up), the second sent into a listener that reads no datagrams and said
/// `sent 1 datagram`. Each is told at once what the listener is not.
#[test]
fn a_stream_client_at_a_datagram_listener_and_the_reverse_are_told() {
    let mut datagrams = Listener::start("--quic-datagrams", "127.0.0.1", &["--reply", "echo"]);
    let pinned = datagrams.fingerprint();
    let started = Instant::now();
    let stream = run(
        &[
            "send",
            "--quic",
            "--tls-fingerprint",
            &pinned,
            "--handshake-timeout",
            "1s",
            &datagrams.addr_arg(),
            "x",
        ],
        None,
    );
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(stream.code(), Some(1), "{}", stream.stderr);
    assert!(
        stream
            .stderr
            .contains("let this client open no stream within 1s: is it msg listen --quic"),
        "{}",
        stream.stderr
    );

    let mut streams = Listener::start("--quic", "127.0.0.1", &["--reply", "echo"]);
    let pinned = streams.fingerprint();
    let lost = send_datagrams(&streams, &pinned, b"into the void\n");
    assert_eq!(lost.code(), Some(1), "{}", lost.stderr);
    assert!(
        lost.stderr
            .contains("takes no datagrams (RFC 9221); is it msg listen --quic-datagrams?"),
        "{}",
        lost.stderr
    );
}

fn send_datagrams(listener: &Listener, pinned: &str, stdin: &[u8]) -> support::Finished {
    let addr = listener.addr_arg();
    run(
        &[
            "send",
            "--quic-datagrams",
            "--reply",
            "--tls-fingerprint",
            pinned,
            &addr,
        ],
        Some(stdin),
    )
}

#[test]
fn messages_and_replies_go_over_quic_datagrams() {
    let mut listener = Listener::start("--quic-datagrams", "127.0.0.1", &["--reply", "upper"]);
    let pinned = listener.fingerprint();
    let ok = send_datagrams(&listener, &pinned, b"one\ntwo\nthree\n");
    assert_eq!(
        (ok.code(), ok.stdout.as_str()),
        (Some(0), "ONE\nTWO\nTHREE\n"),
        "{}",
        ok.stderr
    );
    assert!(
        ok.stderr
            .contains("QUIC datagrams do not tell whether they arrived"),
        "{}",
        ok.stderr
    );
    // Every reply came, so they did arrive: the line says so (audit, round
    // nine: it ended on the doubt).
    assert!(
        ok.stderr.contains("but a reply came to each"),
        "{}",
        ok.stderr
    );
}

#[test]
fn a_message_over_the_quic_datagram_limit_is_refused_naming_it() {
    let mut listener = Listener::start("--quic-datagrams", "127.0.0.1", &["--reply", "echo"]);
    let pinned = listener.fingerprint();
    // Over any path's MTU (Ethernet's 1500, loopback's 65536 is never
    // probed past quinn's 1452): refused before anything is sent.
    let mut big = vec![b'a'; 3000];
    big.push(b'\n');
    let refused = send_datagrams(&listener, &pinned, &big);
    assert_eq!(refused.code(), Some(1), "{}", refused.stderr);
    assert!(refused.stdout.is_empty(), "{}", refused.stdout);
    for words in [
        "message is 3000 bytes",
        "a QUIC datagram holds at most",
        "the path MTU",
        "less QUIC's packet header",
        "for the body after msg's 28-byte header;",
        "--quic",
    ] {
        assert!(
            refused.stderr.contains(words),
            "{words}: {}",
            refused.stderr
        );
    }
    // A message that fits still goes, on the same listener.
    let ok = send_datagrams(&listener, &pinned, b"fits\n");
    assert_eq!(ok.stdout, "fits\n", "{}", ok.stderr);
}

#[test]
fn quic_datagrams_need_the_tokio_engine() {
    assert_usage_error(
        &[
            "listen",
            "--quic-datagrams",
            "--io",
            "blocking",
            "127.0.0.1:0",
        ],
        "--quic-datagrams is served by the tokio engine",
    );
}

/// A QUIC datagram listener keeps its limits as a stream listener does:
/// past `--max-conns` a client is told so (and why, with the flag), and a
/// connection that sends nothing for `--idle-timeout` is closed, its place
/// free again.
#[test]
fn a_quic_datagram_listener_keeps_to_max_conns_and_closes_idle_connections() {
    let mut listener = Listener::start(
        "--quic-datagrams",
        "127.0.0.1",
        &[
            "--reply",
            "echo",
            "--max-conns",
            "1",
            "--idle-timeout",
            "2s",
        ],
    );
    let pinned = listener.fingerprint();
    let addr = listener.addr_arg();
    // One client holds the only place: a session that sent one message
    // and waits for more (at most 30 s, far beyond the idle timeout).
    let mut holder = support::msg();
    holder.args([
        "connect",
        "--quic-datagrams",
        "--tls-fingerprint",
        &pinned,
        "--wait",
        "30s",
        &addr,
    ]);
    let holder = support::Running::spawn(holder, Some(b"held\n".to_vec()));
    holder.wait_for_stdout_end(b"held\n");
    let refused = send_datagrams(&listener, &pinned, b"second\n");
    assert_eq!(refused.code(), Some(1), "{}", refused.stderr);
    assert!(
        refused
            .stderr
            .contains("serves one connection at a time (msg listen --once, or --max-conns 1)"),
        "{}",
        refused.stderr
    );
    // Idle for 2 s, the holder is closed, and told why.
    let started = Instant::now();
    let held = holder.finish();
    assert!(started.elapsed() < Duration::from_secs(20), "not closed");
    assert!(
        held.stderr
            .contains("idle for 2s: closing (--idle-timeout)"),
        "{}",
        held.stderr
    );
    // Its place is free again.
    let ok = send_datagrams(&listener, &pinned, b"third\n");
    assert_eq!(
        (ok.code(), ok.stdout.as_str()),
        (Some(0), "third\n"),
        "{}",
        ok.stderr
    );
}

/// Audit, round three: `msg connect --quic-datagrams` never closed its
/// connection, so a session that ended held its place at the listener
/// until an idle timeout, and with `--wait 0s` most of what it had sent
/// never left. Now what was sent leaves, and the listener is told.
#[test]
fn a_quic_datagram_session_sends_everything_and_closes_its_connection() {
    let mut listener = Listener::start(
        "--quic-datagrams",
        "127.0.0.1",
        &["--reply", "echo", "--max-conns", "1", "--idle-timeout", "0"],
    );
    let pinned = listener.fingerprint();
    let addr = listener.addr_arg();
    let lines: String = (1..=2000).map(|n| format!("{n}\n")).collect();
    let session = run(
        &[
            "connect",
            "--quic-datagrams",
            "--tls-fingerprint",
            &pinned,
            "--wait",
            "0s",
            &addr,
        ],
        Some(lines.as_bytes()),
    );
    assert_eq!(session.code(), Some(0), "{}", session.stderr);
    listener.process.wait_for_stdout_end(b"\n2000\n");
    // The one place is free at once: no idle timeout to wait out.
    let next = send_datagrams(&listener, &pinned, b"next\n");
    assert_eq!(next.code(), Some(0), "{}", next.stderr);
    listener.process.wait_for_stdout_end(b"\nnext\n");
}

/// Audit, round three: a QUIC listener that stopped after `--count` left
/// its clients to find out at their idle timeout (a minute); it now tells
/// them as it goes, over streams and datagrams alike.
#[test]
fn a_quic_listener_that_stops_tells_its_clients() {
    for transport in ["--quic", "--quic-datagrams"] {
        let mut listener = Listener::start(transport, "127.0.0.1", &["--count", "1"]);
        let pinned = listener.fingerprint();
        let addr = listener.addr_arg();
        let mut client = support::msg();
        client.args(["connect", transport, "--tls-fingerprint", &pinned, &addr]);
        // Its stdin stays open: only the listener can end the session.
        let (client, _stdin) = support::Running::spawn_held(client, b"one\n");
        let started = Instant::now();
        assert_eq!(listener.finish().stdout, "one\n", "{transport}");
        let ended = client.finish();
        let took = started.elapsed();
        assert!(took < Duration::from_secs(10), "{transport}: {took:?}");
        // A stream ends as a TCP one does; a datagram session says who
        // closed it.
        if transport == "--quic" {
            assert_eq!(ended.code(), Some(0), "{}", ended.stderr);
        } else {
            assert!(
                ended.stderr.contains("closed the connection"),
                "{}",
                ended.stderr
            );
        }
    }
}

/// A UDP relay on 127.0.0.1 between one QUIC client and `listener`: what
/// the client sends goes on, and what the listener sends back comes back
/// only if `answers`. The long-header packet type of the listener's first
/// packet (0 Initial, 3 Retry) arrives on the channel. It stops when
/// dropped, or after 20 s.
struct Relay {
    addr: std::net::SocketAddr,
    first_type: std::sync::mpsc::Receiver<u8>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Relay {
    fn start(listener: std::net::SocketAddr, answers: bool) -> Self {
        use std::sync::atomic::{AtomicBool, Ordering};
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let addr = socket.local_addr().unwrap();
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let (tx, first_type) = std::sync::mpsc::channel();
        let stopped = std::sync::Arc::clone(&stop);
        std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(20);
            let mut client = None;
            let mut first = Some(tx);
            let mut buf = [0u8; 2048];
            while Instant::now() < deadline && !stopped.load(Ordering::Relaxed) {
                let Ok((n, from)) = socket.recv_from(&mut buf) else {
                    continue;
                };
                if from == listener {
                    if let Some(tx) = first.take() {
                        // A long header has its top bit set and the type
                        // in bits 5 and 4 (bit 6, the fixed bit, quinn
                        // may grease: RFC 9287); u8::MAX for a short one.
                        let long = buf[0] & 0x80 != 0;
                        let _ = tx.send(if long { (buf[0] >> 4) & 0b11 } else { u8::MAX });
                    }
                    if let (true, Some(client)) = (answers, client) {
                        let _ = socket.send_to(&buf[..n], client);
                    }
                } else {
                    client = Some(from);
                    let _ = socket.send_to(&buf[..n], listener);
                }
            }
        });
        Self {
            addr,
            first_type,
            stop,
        }
    }

    fn first_type(&self) -> u8 {
        self.first_type
            .recv_timeout(Duration::from_secs(10))
            .expect("the listener answered within 10 s")
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

#[test]
fn under_handshake_load_a_quic_client_proves_its_address_before_its_handshake() {
    for transport in ["--quic", "--quic-datagrams"] {
        retry_under_load(transport);
    }
}

fn retry_under_load(transport: &str) {
    const INITIAL: u8 = 0;
    const RETRY: u8 = 3;
    let mut listener = Listener::start(
        transport,
        "127.0.0.1",
        &[
            "--reply",
            "echo",
            "--max-handshakes",
            "2",
            "--handshake-timeout",
            "30s",
        ],
    );
    let pinned = listener.fingerprint();
    let through = |relay: &Relay, body: &[u8]| {
        let addr = relay.addr.to_string();
        let flags = ["send", transport, "--reply", "--tls-fingerprint", &pinned];
        run(&[&flags[..], &[addr.as_str()]].concat(), Some(body))
    };

    // No load: the handshake starts at the client's first packet.
    let relay = Relay::start(listener.addr, true);
    let sent = through(&relay, b"calm\n");
    assert_eq!(sent.stdout, "calm\n", "{transport}: {}", sent.stderr);
    assert_eq!(relay.first_type(), INITIAL);

    // A client whose answers never reach it (a forged address, to the
    // listener) holds one of the two turns until the handshake timeout.
    let lost = Relay::start(listener.addr, false);
    let mut cmd = support::msg();
    cmd.args(["send", transport, "--tls-fingerprint", &pinned])
        .arg(lost.addr.to_string())
        .arg("never");
    let stalled = support::Running::spawn(cmd, None);
    assert_eq!(lost.first_type(), INITIAL);

    // Half the turns taken: the next client is first sent a Retry, proves
    // its address with the token, and is served.
    let relay = Relay::start(listener.addr, true);
    let sent = through(&relay, b"busy\n");
    assert_eq!(relay.first_type(), RETRY, "{transport}");
    assert_eq!(
        (sent.code(), sent.stdout.as_str()),
        (Some(0), "busy\n"),
        "{}",
        sent.stderr
    );
    drop(stalled.kill());
}

/// A listener stopped right after it refused a file exits 0: the
/// transfer ended with the refusal. It exited 143, as for a file cut off,
/// for as long as QUIC's stream was still closing: the refusal's end
/// waited for an acknowledgement from a sender that had exited on the
/// refusal (audit, round seven). TCP for comparison.
#[test]
fn a_listener_stopped_just_after_a_refusal_cut_no_transfer_short() {
    for transport in ["--quic", "--tcp"] {
        let save = support::fresh_path("refusing-save");
        std::fs::create_dir(&save).unwrap();
        std::fs::write(save.join("taken.txt"), b"old").unwrap();
        let file = save.with_extension("src");
        std::fs::create_dir(&file).unwrap();
        let file = file.join("taken.txt");
        std::fs::write(&file, b"new").unwrap();
        let mut listener = Listener::start(
            transport,
            "127.0.0.1",
            &["--save-dir", save.to_str().unwrap()],
        );
        let mut args = vec!["send", transport];
        let pinned;
        if transport == "--quic" {
            pinned = listener.fingerprint();
            args.extend(["--tls-fingerprint", &pinned]);
        }
        let addr = listener.addr_arg();
        args.extend([addr.as_str(), "--file", file.to_str().unwrap()]);
        let sent = run(&args, None);
        assert_eq!(sent.code(), Some(1), "{}", sent.stderr);
        assert!(sent.stderr.contains("already exists"), "{}", sent.stderr);
        let stopped = listener.process.signal("TERM");
        assert_eq!(stopped.code(), Some(0), "{transport}: {}", stopped.stderr);
        assert_eq!(std::fs::read(save.join("taken.txt")).unwrap(), b"old");
        let _ = std::fs::remove_dir_all(&save);
        let _ = std::fs::remove_dir_all(file.parent().unwrap());
    }
}

/// A QUIC client at a UDP port where nothing listens is told so at once,
/// as a TCP client is refused: it waited out its handshake timeout (5 s)
/// to be told only that nothing answered (audit, round seven, left open).
#[test]
fn a_quic_client_at_a_closed_port_is_told_at_once() {
    let closed = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = closed.local_addr().unwrap().to_string();
    drop(closed);
    for transport in ["--quic", "--quic-datagrams"] {
        let started = Instant::now();
        let out = run(&["send", transport, &addr, "hi"], None);
        assert_eq!(out.code(), Some(1), "{transport}: {}", out.stderr);
        assert!(
            out.stderr
                .contains("over QUIC: nothing listens on that UDP port: Connection refused"),
            "{transport}: {}",
            out.stderr
        );
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{transport}: {:?}",
            started.elapsed()
        );
    }
}
