//! The `msg send` / `msg listen` contract, checked with the real binary and
//! real sockets on loopback.

mod support;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream, UdpSocket};
use std::process::Command;
use std::time::Duration;

use msg_proto::{Kind, Message};
use serde_json::Value;
use support::{DEADLINE, Listener, run};

const UDP: &str = "--udp";
const TCP: &str = "--tcp";

fn json_lines(stdout: &str) -> Vec<Value> {
    stdout
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{line:?}: {e}")))
        .collect()
}

/// The listener closed this connection (EOF or reset), rather than the read
/// timing out.
fn assert_closed_by_peer(stream: &mut TcpStream) {
    match stream.read(&mut [0; 1]) {
        Ok(0) => {}
        Err(err) if err.kind() == std::io::ErrorKind::ConnectionReset => {}
        other => panic!("expected the listener to close the connection, got {other:?}"),
    }
}

fn tcp_peer(listener: &Listener) -> TcpStream {
    let stream = TcpStream::connect(listener.addr).unwrap();
    stream.set_read_timeout(Some(DEADLINE)).unwrap();
    stream
}

fn udp_peer() -> UdpSocket {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.set_read_timeout(Some(DEADLINE)).unwrap();
    socket
}

/// Whether socat is here; CI installs it, so there its absence is a failure.
fn have_socat() -> bool {
    let found = Command::new("socat").arg("-V").output().is_ok();
    assert!(
        found || std::env::var_os("CI").is_none(),
        "socat is not installed (apt-get install socat)"
    );
    if !found {
        support::skip("socat is not installed (apt-get install socat)");
    }
    found
}

// ---- the happy paths ------------------------------------------------------

#[test]
fn udp_messages_arrive_one_per_datagram_as_json() {
    let listener = Listener::start(UDP, "127.0.0.1", &["--count", "3", "--json"]);
    let sent = run(
        &["send", UDP, &listener.addr_arg(), "hello", "", "world"],
        None,
    );
    assert_eq!(sent.code(), Some(0), "{}", sent.stderr);
    let out = listener.finish();
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
    let records = json_lines(&out.stdout);
    let bodies: Vec<_> = records
        .iter()
        .map(|r| r["body"].as_str().unwrap())
        .collect();
    assert_eq!(bodies, ["hello", "", "world"]);
    let seqs: Vec<_> = records.iter().map(|r| r["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, [1, 2, 3]);
    assert_eq!(records[0]["len"], 5);
    assert!(
        records[0]["peer"]
            .as_str()
            .unwrap()
            .starts_with("127.0.0.1:"),
        "{}",
        records[0]
    );
}

#[test]
fn tcp_listener_replies_in_upper_case() {
    let listener = Listener::start(TCP, "127.0.0.1", &["--count", "2", "--reply", "upper"]);
    let sent = run(
        &["send", TCP, "--reply", &listener.addr_arg(), "hello", "tcp"],
        None,
    );
    assert_eq!(sent.code(), Some(0), "{}", sent.stderr);
    assert_eq!(sent.lines(), ["HELLO", "TCP"]);
    let out = listener.finish();
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
    assert_eq!(out.lines(), ["hello", "tcp"]);
    // stdout carries only data: the -v log line went to stderr.
    assert!(out.stderr.contains("listening on tcp"), "{}", out.stderr);
}

#[test]
fn udp_echo_over_ipv6() {
    let listener = Listener::start(UDP, "[::1]", &["--count", "1", "--reply", "echo"]);
    assert!(listener.addr.is_ipv6());
    let sent = run(
        &["send", UDP, "--reply", &listener.addr_arg(), "over v6"],
        None,
    );
    assert_eq!(sent.code(), Some(0), "{}", sent.stderr);
    assert_eq!(sent.lines(), ["over v6"]);
    assert_eq!(listener.finish().lines(), ["over v6"]);
}

#[test]
fn tcp_over_ipv6_and_the_default_reply_is_none() {
    let listener = Listener::start(TCP, "[::1]", &["--count", "1", "--json"]);
    let sent = run(&["send", TCP, &listener.addr_arg(), "v6"], None);
    assert_eq!(sent.code(), Some(0), "{}", sent.stderr);
    assert_eq!(sent.stdout, "");
    let records = json_lines(&listener.finish().stdout);
    assert_eq!(records[0]["body"], "v6");
    assert!(records[0]["peer"].as_str().unwrap().starts_with("[::1]:"));
}

#[test]
fn each_stdin_line_is_one_message() {
    for transport in [UDP, TCP] {
        let listener = Listener::start(transport, "127.0.0.1", &["--count", "3"]);
        let sent = run(
            &["send", transport, &listener.addr_arg()],
            Some(b"one\ntwo\nthree"),
        );
        assert_eq!(sent.code(), Some(0), "{}", sent.stderr);
        assert_eq!(
            listener.finish().stdout_bytes(),
            b"one\ntwo\nthree\n",
            "{transport}"
        );
    }
}

#[test]
fn a_body_that_is_not_utf8_goes_as_base64() {
    let listener = Listener::start(UDP, "127.0.0.1", &["--count", "1", "--json"]);
    let peer = udp_peer();
    let msg = Message::new(Kind::Data, 9, &b"\xff\x00ok"[..]);
    peer.send_to(&support::datagram(&msg), listener.addr)
        .unwrap();
    let records = json_lines(&listener.finish().stdout);
    assert_eq!(records[0]["body_b64"], "/wBvaw==");
    assert_eq!(records[0]["seq"], 9);
    assert!(records[0].get("body").is_none());
}

#[test]
fn a_tcp_listener_serves_clients_at_once() {
    let listener = Listener::start(TCP, "127.0.0.1", &["--count", "3"]);
    // A client that sends half a frame and then just sits there.
    let mut stalled = tcp_peer(&listener);
    stalled
        .write_all(&support::frame(&Message::new(Kind::Data, 1, "never finished"))[..10])
        .unwrap();
    // A second client that has not sent anything yet.
    let idle = tcp_peer(&listener);
    for word in ["a", "b", "c"] {
        let sent = run(&["send", TCP, &listener.addr_arg(), word], None);
        assert_eq!(sent.code(), Some(0), "{}", sent.stderr);
    }
    let mut lines = listener
        .finish()
        .lines()
        .iter()
        .map(|s| s.to_string())
        .collect::<Vec<_>>();
    lines.sort();
    assert_eq!(lines, ["a", "b", "c"]);
    drop((stalled, idle));
}

// ---- raw mode: netcat and socat -------------------------------------------

#[test]
fn raw_udp_reaches_plain_sockets_and_socat() {
    let listener = Listener::start(UDP, "127.0.0.1", &["--raw", "--count", "2", "--json"]);
    let peer = udp_peer();
    peer.send_to(b"plain", listener.addr).unwrap();
    if have_socat() {
        let mut socat = Command::new("socat")
            .args(["-", &format!("UDP:{}", listener.addr)])
            .stdin(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        socat.stdin.take().unwrap().write_all(b"hi").unwrap();
        assert!(socat.wait().unwrap().success());
    } else {
        peer.send_to(b"hi", listener.addr).unwrap();
    }
    let records = json_lines(&listener.finish().stdout);
    let bodies: Vec<_> = records
        .iter()
        .map(|r| r["body"].as_str().unwrap())
        .collect();
    assert_eq!(bodies, ["plain", "hi"]);
    assert!(records[0].get("seq").is_none(), "raw has no header");
}

#[test]
fn raw_udp_send_reaches_a_plain_socket() {
    let receiver = udp_peer();
    let addr = receiver.local_addr().unwrap().to_string();
    let sent = run(&["send", UDP, "--raw", &addr, "no header"], None);
    assert_eq!(sent.code(), Some(0), "{}", sent.stderr);
    let mut buf = [0; 64];
    let (n, _) = receiver.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"no header");
}

/// Raw stdin over UDP goes as it is read, every byte, newlines and NULs
/// too, as nc sends it: a line a datagram without its newline lost every
/// newline byte of a binary file, and said nothing (audit, round
/// thirteen: 2,994 of 3,000 bytes, exit 0).
#[test]
fn raw_udp_stdin_goes_as_read_every_byte_kept() {
    let receiver = udp_peer();
    let addr = receiver.local_addr().unwrap().to_string();
    let data: Vec<u8> = (0..3000u32).map(|i| (i * 7 % 256) as u8).collect();
    assert!(data.contains(&b'\n') && data.contains(&0));
    let sent = run(&["send", UDP, "--raw", &addr], Some(&data));
    assert_eq!(sent.code(), Some(0), "{}", sent.stderr);
    let mut got = Vec::new();
    let mut buf = [0; 65536];
    while got.len() < data.len() {
        let (n, _) = receiver.recv_from(&mut buf).unwrap();
        got.extend_from_slice(&buf[..n]);
    }
    assert_eq!(got, data);
    support::assert_usage_error(
        &["send", UDP, "--raw", "--crlf", &addr],
        "--crlf strips the end of each stdin line, and --raw over --udp sends stdin as it is \
         read, with no lines; drop --crlf",
    );
}

/// A UDP port nobody receives on answers a datagram with ICMP "port
/// unreachable", which Linux reports at the socket's next call as
/// `Connection refused`: each command that meets it says what that means
/// over UDP (audit, round nine: `cannot receive: Connection refused`,
/// TCP's words, was all it said). Each of these waits for an answer, so
/// the ICMP has come whenever the machine's softirqs run; a send without
/// one may end before it does.
#[test]
fn a_udp_port_nobody_receives_on_is_said_to_be_unreachable() {
    let closed = {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket.local_addr().unwrap().to_string()
    };
    for command in [
        &["send", UDP, "--reply", &closed, "hi"][..],
        &["send", UDP, "--raw", "--reply", &closed, "hi"],
        &[
            "bench",
            UDP,
            "--runs",
            "1",
            "--sizes",
            "64",
            "--duration",
            "100ms",
            &closed,
        ],
    ] {
        let out = run(command, None);
        assert_fails(
            &out,
            1,
            "nothing receives there: its host answered a datagram sent there with ICMP 'port \
             unreachable'",
        );
    }
}

/// A UDP send says nothing confirms its datagrams, and, with `--reply`,
/// that a reply came to each (audit, round nine: it ended on the doubt
/// after every reply had come).
#[test]
fn a_udp_send_says_what_confirmed_its_datagrams() {
    let listener = Listener::start(UDP, "127.0.0.1", &["--reply", "echo"]);
    let addr = listener.addr_arg();
    let replied = run(&["send", UDP, "--reply", &addr, "one", "two"], None);
    assert_eq!(replied.code(), Some(0), "{}", replied.stderr);
    assert!(
        replied
            .stderr
            .contains("sent 2 datagrams (6 bytes) to 127.0.0.1:")
            && replied
                .stderr
                .contains("UDP does not tell whether they arrived, but a reply came to each"),
        "{}",
        replied.stderr
    );
    let unanswered = run(&["send", UDP, &addr, "three"], None);
    assert_eq!(unanswered.code(), Some(0), "{}", unanswered.stderr);
    assert!(
        unanswered
            .stderr
            .trim_end()
            .ends_with("UDP does not tell whether they arrived"),
        "{}",
        unanswered.stderr
    );
}

#[test]
fn raw_udp_send_reaches_socat() {
    if !have_socat() {
        return;
    }
    // socat binds the port itself; find one that is free first.
    let port = UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut cmd = Command::new("socat");
    // UDP-RECVFROM takes one datagram, writes it and exits.
    cmd.args([
        "-u",
        "-d",
        "-d",
        &format!("UDP-RECVFROM:{port},bind=127.0.0.1"),
        "-",
    ]);
    let mut socat = support::Running::spawn(cmd, None);
    socat.wait_for_stderr("receiving on");
    let sent = run(
        &[
            "send",
            UDP,
            "--raw",
            &format!("127.0.0.1:{port}"),
            "to socat",
        ],
        None,
    );
    assert_eq!(sent.code(), Some(0), "{}", sent.stderr);
    let out = socat.finish();
    assert!(out.status.success(), "{}", out.stderr);
    assert_eq!(out.stdout, "to socat");
}

#[test]
fn raw_udp_carries_65507_bytes_whole_and_refuses_65508() {
    let listener = Listener::start(UDP, "127.0.0.1", &["--raw", "--count", "1", "--json"]);
    let biggest = "x".repeat(65_507);
    let sent = run(
        &["send", UDP, "--raw", &listener.addr_arg(), &biggest],
        None,
    );
    assert_eq!(sent.code(), Some(0), "{}", sent.stderr);
    assert_eq!(json_lines(&listener.finish().stdout)[0]["len"], 65_507);

    let too_big = "x".repeat(65_508);
    let refused = run(&["send", UDP, "--raw", "127.0.0.1:9", &too_big], None);
    assert_eq!(
        refused.code(),
        Some(2),
        "an argument's size is a usage error"
    );
    assert!(
        refused
            .stderr
            .contains("message is 65508 bytes; a UDP datagram holds at most 65507 bytes on IPv4"),
        "{}",
        refused.stderr
    );
}

#[test]
fn raw_tcp_prints_the_stream_as_it_arrives() {
    let listener = Listener::start(TCP, "127.0.0.1", &["--raw", "--reply", "echo"]);
    let mut peer = tcp_peer(&listener);
    peer.write_all(b"glued").unwrap();
    let mut echoed = [0; 5];
    peer.read_exact(&mut echoed).unwrap();
    assert_eq!(&echoed, b"glued");
    peer.write_all(b" together\n").unwrap();
    peer.shutdown(Shutdown::Write).unwrap();
    let mut rest = Vec::new();
    peer.read_to_end(&mut rest).unwrap();
    assert_eq!(rest, b" together\n");
    // No newline is added between reads: the stream's bytes, exactly.
    let sent = run(
        &["send", TCP, "--raw", &listener.addr_arg()],
        Some(b"from msg\n"),
    );
    assert_eq!(sent.code(), Some(0), "{}", sent.stderr);
    // The send is over once its bytes are in the kernel; the listener
    // prints them when its reader gets to them.
    listener.process.wait_for_stdout_end(b"from msg\n");
    let out = listener.process.kill();
    assert!(
        out.stdout.starts_with("glued together\n"),
        "{:?}",
        out.stdout
    );
    assert!(out.stdout.ends_with("from msg\n"), "{:?}", out.stdout);
}

#[test]
fn raw_tcp_talks_to_socat() {
    if !have_socat() {
        return;
    }
    let listener = Listener::start(TCP, "127.0.0.1", &["--raw", "--count", "1"]);
    let mut socat = Command::new("socat")
        .args(["-u", "-", &format!("TCP:{}", listener.addr)])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    socat
        .stdin
        .take()
        .unwrap()
        .write_all(b"hi from socat")
        .unwrap();
    assert!(socat.wait().unwrap().success());
    assert_eq!(listener.finish().stdout, "hi from socat");
}

#[test]
fn raw_tcp_reads_shows_where_each_read_ended() {
    let listener = Listener::start(
        TCP,
        "127.0.0.1",
        &["--raw", "--reads", "--reply", "echo", "--count", "2"],
    );
    let mut peer = tcp_peer(&listener);
    peer.write_all(b"hello").unwrap();
    // The echo says the listener has read it: the next write is a read of
    // its own.
    peer.read_exact(&mut [0; 5]).unwrap();
    peer.write_all(b"egg\nhi").unwrap();
    peer.read_exact(&mut [0; 6]).unwrap();
    let out = listener.finish();
    // Into a pipe unescaped: the length says where the newline belongs.
    assert_eq!(out.stdout, "[5 bytes] hello\n[6 bytes] egg\nhi\n");
    assert!(!out.stderr.contains("\n\nmsg listen:"), "{}", out.stderr);
    let refused = run(&["listen", TCP, "--reads", "0"], None);
    assert_eq!(refused.code(), Some(2), "--reads needs --raw");
}

#[test]
fn the_summary_never_continues_a_line_of_raw_data() {
    let listener = Listener::start(TCP, "127.0.0.1", &["--raw", "--count", "1"]);
    let mut peer = tcp_peer(&listener);
    peer.write_all(b"hello").unwrap();
    let out = listener.finish();
    assert_eq!(out.stdout, "hello");
    // On a terminal stdout and stderr share the screen: the summary starts
    // a line of its own instead of `hellomsg listen: ...`.
    assert!(
        out.stderr.contains("\n\nmsg listen: 1 message ("),
        "{:?}",
        out.stderr
    );
}

#[test]
fn hex_dumps_what_listen_prints_and_what_send_gets_back() {
    let listener = Listener::start(UDP, "127.0.0.1", &["--hex", "--count", "1"]);
    let sent = run(&["send", UDP, &listener.addr_arg(), "hi\u{1b}there"], None);
    assert_eq!(sent.code(), Some(0), "{}", sent.stderr);
    assert_eq!(
        listener.finish().stdout,
        "00000000  68 69 1b 74 68 65 72 65                           |hi.there|\n00000008\n"
    );

    let listener = Listener::start(TCP, "127.0.0.1", &["--reply", "upper"]);
    let out = run(
        &["send", TCP, "--reply", "--hex", &listener.addr_arg(), "hex"],
        None,
    );
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
    assert_eq!(
        out.stdout,
        "00000000  48 45 58                                          |HEX|\n00000003\n"
    );

    // Hex is its own rendering: no escaping, no NUL ends, no JSON.
    for args in [
        &["listen", UDP, "--hex", "--json", "0"][..],
        &["listen", UDP, "--hex", "--escape", "always", "0"],
        &["send", UDP, "--hex", "-0", "127.0.0.1:9", "x"],
        // Audit, round five: connect took both and ignored --hex.
        &["connect", UDP, "--hex", "--json", "127.0.0.1:9"],
    ] {
        let out = run(args, None);
        assert_eq!(out.code(), Some(2), "{args:?}: {}", out.stderr);
        assert!(out.stderr.contains("cannot be used with"), "{}", out.stderr);
    }
}

/// A hand-made raw TCP server for one connection: it reads `question`,
/// writes `answer` (if any), then closes at once (`close`) or waits for the
/// client to close first. Returns its address.
fn answering_peer(
    question: &'static [u8],
    answer: &'static [u8],
    close: bool,
) -> (std::net::SocketAddr, std::thread::JoinHandle<()>) {
    let server = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = server.local_addr().unwrap();
    let thread = std::thread::spawn(move || {
        let (mut stream, _) = server.accept().unwrap();
        stream.set_read_timeout(Some(DEADLINE)).unwrap();
        let mut heard = vec![0; question.len()];
        stream.read_exact(&mut heard).unwrap();
        assert_eq!(heard, question);
        stream.write_all(answer).unwrap();
        if !close {
            // Until msg closes its side (bounded by the read timeout).
            let mut rest = Vec::new();
            let _ = stream.read_to_end(&mut rest);
        }
    });
    (addr, thread)
}

#[test]
fn raw_tcp_reply_is_what_arrives_until_the_peer_is_quiet_not_a_byte_count() {
    // `msg send --tcp --raw --reply ADDR hi` against a peer that answers
    // `answer` to "hi", then closes or waits for msg to close.
    let ask = |answer: &'static [u8], close: bool, more: &[&str]| {
        let (addr, peer) = answering_peer(b"hi", answer, close);
        let addr = addr.to_string();
        let mut args = vec!["send", TCP, "--raw", "--reply"];
        args.extend_from_slice(more);
        args.extend([addr.as_str(), "hi"]);
        let out = run(&args, None);
        peer.join().unwrap();
        (out, addr)
    };
    // Longer than the question: once only the first 2 bytes ("AB") came.
    let (out, _) = ask(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ", false, &[]);
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
    assert_eq!(out.stdout, "ABCDEFGHIJKLMNOPQRSTUVWXYZ\n");
    // Shorter: once a false "no reply within 2s".
    let (out, _) = ask(b"!", false, &["--reply-idle", "100ms"]);
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
    assert_eq!(out.stdout, "!\n");
    // A peer that answers and closes: the answer, and a clean exit.
    let (out, _) = ask(b"bye\n", true, &[]);
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
    assert_eq!(out.stdout, "bye\n\n");
    // No answer at all within --timeout: no reply, as before.
    let (out, addr) = ask(b"", false, &["--timeout", "300ms"]);
    assert_eq!(out.code(), Some(1), "{}", out.stderr);
    assert!(
        out.stderr
            .contains(&format!("no reply to message 1 from {addr} within 300ms")),
        "{}",
        out.stderr
    );
}

#[test]
fn a_raw_tcp_reply_that_trickles_is_shown_in_pieces_as_it_comes() {
    // A peer that answers a byte every 100ms: quiet never long enough for
    // --reply-idle to end the reply. Once, nothing was shown until a
    // megabyte had come (about 58 hours at a byte per 200ms); now each
    // piece is shown --timeout after its first byte, and none is lost.
    const ANSWER: &[u8] = b"abcdefghijkl";
    let server = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = server.local_addr().unwrap().to_string();
    let peer = std::thread::spawn(move || {
        let (mut stream, _) = server.accept().unwrap();
        stream.set_read_timeout(Some(DEADLINE)).unwrap();
        let mut heard = [0; 2];
        stream.read_exact(&mut heard).unwrap();
        for byte in ANSWER {
            stream.write_all(&[*byte]).unwrap();
            std::thread::sleep(Duration::from_millis(100));
        }
        let mut rest = Vec::new();
        let _ = stream.read_to_end(&mut rest);
    });
    let out = run(
        &[
            "send",
            TCP,
            "--raw",
            "--reply",
            "--timeout",
            "300ms",
            "--reply-idle",
            "2s",
            &addr,
            "hi",
        ],
        None,
    );
    peer.join().unwrap();
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
    let pieces: Vec<&str> = out.stdout.lines().collect();
    assert!(pieces.len() >= 2, "one piece: {:?}", out.stdout);
    assert_eq!(pieces.concat().as_bytes(), ANSWER, "{:?}", out.stdout);
}

#[test]
fn reply_idle_needs_raw() {
    let out = run(
        &["send", TCP, "--reply-idle", "1s", "127.0.0.1:9", "hi"],
        None,
    );
    assert_eq!(out.code(), Some(2), "{}", out.stderr);
}

// ---- bad input: a clear error, the right exit code, no panic ---------------

fn assert_fails(out: &support::Finished, code: i32, needle: &str) {
    assert_eq!(out.code(), Some(code), "stderr: {}", out.stderr);
    assert!(
        out.stderr.to_lowercase().contains(&needle.to_lowercase()),
        "expected {needle:?} in stderr: {}",
        out.stderr
    );
    assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
}

#[test]
fn address_in_use() {
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let out = run(
        &["listen", UDP, &udp.local_addr().unwrap().to_string()],
        None,
    );
    assert_fails(&out, 1, "address already in use");
    assert!(
        out.stderr.contains("cannot bind UDP socket to 127.0.0.1:"),
        "{}",
        out.stderr
    );

    let tcp = TcpListener::bind("127.0.0.1:0").unwrap();
    let out = run(
        &["listen", TCP, &tcp.local_addr().unwrap().to_string()],
        None,
    );
    assert_fails(&out, 1, "address already in use");
}

#[test]
fn a_port_alone_means_loopback_for_listen_and_send() {
    // Port 0 alone: the kernel picks the port, on 127.0.0.1.
    let mut cmd = support::msg();
    cmd.args(["listen", TCP, "-v", "0", "--count", "1"]);
    let listener = Listener::start_command(cmd);
    assert_eq!(listener.addr.ip(), std::net::Ipv4Addr::LOCALHOST);
    let port = listener.addr.port().to_string();
    let sent = run(&["send", TCP, &port, "to a port"], None);
    assert_eq!(sent.code(), Some(0), "{}", sent.stderr);
    assert_eq!(listener.finish().stdout, "to a port\n");
    let out = run(&["send", UDP, "65536", "x"], None);
    assert_fails(&out, 2, "a port is at most 65535, got 65536");
}

#[test]
fn address_that_does_not_parse_is_a_usage_error() {
    for bad in ["127.0.0.1", "localhost:http", "[::1]", "1.2.3.4:70000"] {
        let out = run(&["send", UDP, bad, "x"], None);
        assert_fails(&out, 2, "expected HOST:PORT");
    }
    let out = run(&["listen", TCP, "nope"], None);
    assert_fails(&out, 2, "expected HOST:PORT");
    // Audit, round five: port 0 is a listener's (the system picks one);
    // a UDP send to it failed at run time, "the socket is not connected".
    for command in [
        &["send", UDP, "127.0.0.1:0", "x"][..],
        &["connect", TCP, "[::1]:0"],
    ] {
        let out = run(command, None);
        assert_fails(&out, 2, "port 0 is for a listener");
    }
}

/// Brackets around an IPv4 address or a name, and a port past 65535, are
/// usage errors that say what is wrong (audit, round nine: `[127.0.0.1]:9000`
/// was exit 1, `cannot resolve ... Name or service not known`; `:65536`
/// got the message for an address of no known shape).
#[test]
fn a_bracketed_ipv4_address_or_a_port_past_65535_is_named() {
    for command in [
        &["send", UDP, "[127.0.0.1]:9000", "x"][..],
        &["listen", TCP, "[127.0.0.1]:9000"],
    ] {
        let out = run(command, None);
        assert_fails(&out, 2, "brackets only around an IPv6 address");
        assert!(
            out.stderr.contains("write 127.0.0.1:9000"),
            "{}",
            out.stderr
        );
    }
    let out = run(&["send", TCP, "127.0.0.1:65536", "x"], None);
    assert_fails(
        &out,
        2,
        "with a port of at most 65535, got '127.0.0.1:65536'",
    );
    // A stream listener on a multicast group would wait for connections
    // nobody can make (audit, round eleven: it listened).
    let out = run(&["listen", TCP, "239.255.80.9:0"], None);
    assert_fails(&out, 2, "is a multicast group, which takes datagrams alone");
}

/// A flag named where it would do nothing is refused, naming why (audit,
/// round five: each was accepted and ignored); left at its default, or
/// named where it does something, it is never in the way.
#[test]
fn a_flag_that_would_do_nothing_is_refused_when_named() {
    let udp = "127.0.0.1:9";
    let refused: [(&[&str], &str); 12] = [
        (
            &["send", UDP, "--max-frame", "100", udp, "x"],
            "--max-frame limits a connection's frames",
        ),
        (
            &["connect", UDP, "--max-frame", "100", udp],
            "--udp has no connection",
        ),
        (
            &["send", TCP, "--raw", "--max-frame", "100", udp],
            "--raw has none",
        ),
        (
            &["send", UDP, "--nodelay", "false", udp, "x"],
            "--udp has no Nagle's algorithm",
        ),
        (
            &["send", "--unix", "--nodelay", "true", "/nowhere", "x"],
            "--unix has no Nagle",
        ),
        (&["send", TCP, "--hex", udp, "x"], "--hex shows replies"),
        (
            &["send", TCP, "--escape", "always", udp, "x"],
            "--escape shows replies",
        ),
        (
            &["send", TCP, "--raw", "--crlf", udp],
            "sends stdin as it is read",
        ),
        (&["connect", TCP, "--raw", "--crlf", udp], "with no lines"),
        (
            &["listen", UDP, "--max-conns", "5"],
            "--max-conns limits connections",
        ),
        (
            &["listen", "--unix-dgram", "--idle-timeout", "0", "/nowhere"],
            "--unix-dgram has none",
        ),
        (
            &["listen", UDP, "--io", "blocking", "--frame-timeout", "1s"],
            "--frame-timeout limits",
        ),
    ];
    for (args, why) in refused {
        support::assert_usage_error(args, why);
    }
    // msg exec takes the same client flags.
    let secret = support::secret_arg(b"exec flags");
    support::assert_usage_error(
        &[
            "exec",
            "--unix",
            "--nodelay",
            "false",
            "--secret-file",
            &secret,
            "/nowhere",
            "--",
            "true",
        ],
        "--unix has no Nagle",
    );
    // clap's own conflict: the messages are not read from stdin.
    support::assert_usage_error(&["send", TCP, "--crlf", udp, "x"], "cannot be used with");

    // Where they do something they pass the checks, on to connecting.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let flags = [
        "--max-frame",
        "100",
        "--nodelay",
        "false",
        "--reply",
        "--hex",
    ];
    let out = run(&[&["send", TCP][..], &flags, &[&addr, "x"]].concat(), None);
    assert_fails(&out, 1, "connection refused");
}

#[test]
fn address_that_does_not_resolve_is_a_runtime_error() {
    // A label over 63 bytes cannot be put in a DNS query, so the resolver
    // fails on this machine without sending anything to any server.
    let host = format!("{}.invalid:9000", "x".repeat(64));
    let out = run(&["send", TCP, &host, "x"], None);
    assert_fails(&out, 1, "cannot resolve");
}

#[test]
fn connection_refused() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = run(&["send", TCP, &format!("127.0.0.1:{port}"), "x"], None);
    assert_fails(&out, 1, "connection refused");
    assert!(
        out.stderr
            .contains(&format!("cannot connect to 127.0.0.1:{port}"))
    );

    // Over UDP a refusal only shows when a reply is awaited (ICMP port
    // unreachable on the connected socket).
    let port = UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = run(
        &["send", UDP, "--reply", &format!("127.0.0.1:{port}"), "x"],
        None,
    );
    assert_fails(&out, 1, "connection refused");
}

#[test]
fn a_lost_udp_reply_is_an_error_not_a_hang() {
    let silent = udp_peer();
    let addr = silent.local_addr().unwrap().to_string();
    let out = run(
        &[
            "send",
            UDP,
            "--reply",
            "--timeout",
            "200ms",
            &addr,
            "anyone?",
        ],
        None,
    );
    assert_fails(&out, 1, "no reply to message 1");
    assert!(out.stderr.contains("within 200ms"), "{}", out.stderr);
}

#[test]
fn a_udp_error_that_answers_another_message_does_not_end_the_wait() {
    // A datagram with the peer's address and any seq is anyone's to send:
    // an Error that is no answer to ours is dropped, as a stale reply is.
    let peer = udp_peer();
    peer.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let addr = peer.local_addr().unwrap().to_string();
    let answer = std::thread::spawn(move || {
        let mut buf = [0; 2048];
        let (n, from) = peer.recv_from(&mut buf).unwrap();
        let ping = msg_proto::decode(bytes::Bytes::copy_from_slice(&buf[..n])).unwrap();
        let stray = Message::new(Kind::Error, ping.seq + 12_344, "spoof");
        peer.send_to(&support::datagram(&stray), from).unwrap();
        let reply = Message::new(Kind::Data, ping.seq, "the real one");
        peer.send_to(&support::datagram(&reply), from).unwrap();
        // And an Error that answers it ends the wait, with its text.
        let (n, from) = peer.recv_from(&mut buf).unwrap();
        let ping = msg_proto::decode(bytes::Bytes::copy_from_slice(&buf[..n])).unwrap();
        let refused = Message::new(Kind::Error, ping.seq, "no thanks");
        peer.send_to(&support::datagram(&refused), from).unwrap();
    });
    let out = run(
        &[
            "send",
            UDP,
            "--reply",
            "--timeout",
            "5s",
            &addr,
            "one",
            "two",
        ],
        None,
    );
    answer.join().unwrap();
    assert_eq!(out.stdout, "the real one\n", "{}", out.stderr);
    assert_fails(&out, 1, "no thanks");
    assert!(!out.stderr.contains("spoof"), "{}", out.stderr);
}

/// A reply is `Data`: a listener that answers a message with a `Pong` or
/// a file result over a connection has given no reply (its body was
/// printed as one; audit, round six), and one that answers a message
/// twice has its second answer dropped with a warning (it was dropped
/// unsaid). Over UDP, a datagram of another kind is dropped, as a stale
/// reply is, and the real reply still awaited.
#[test]
fn a_reply_of_another_kind_is_no_reply_and_a_second_one_is_said() {
    let server = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = server.local_addr().unwrap().to_string();
    let answer = std::thread::spawn(move || {
        for answers in [&[Kind::Pong][..], &[Kind::Data, Kind::Data]] {
            let (mut stream, _) = server.accept().unwrap();
            stream.set_read_timeout(Some(DEADLINE)).unwrap();
            for seq in 1..=2 {
                if support::read_frame(&mut stream).is_err() {
                    break;
                }
                for &kind in answers {
                    let reply = Message::new(kind, seq, format!("{kind:?} {seq}"));
                    let _ = stream.write_all(&support::frame(&reply));
                }
            }
            // Until the sender closes: it read what it wanted.
            let _ = stream.read(&mut [0; 64]);
        }
    });
    let out = run(&["send", TCP, "--reply", &addr, "a", "b"], None);
    assert_fails(
        &out,
        1,
        "the listener answered message 1 with Pong, which is no reply",
    );
    assert!(out.stdout.is_empty(), "{}", out.stdout);
    let out = run(&["send", TCP, "--reply", &addr, "a", "b"], None);
    answer.join().unwrap();
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
    assert_eq!(out.stdout, "Data 1\nData 2\n", "{}", out.stderr);
    assert!(
        out.stderr.contains("ignored a second reply to message 1"),
        "{}",
        out.stderr
    );

    let peer = udp_peer();
    peer.set_read_timeout(Some(DEADLINE)).unwrap();
    let addr = peer.local_addr().unwrap().to_string();
    let answer = std::thread::spawn(move || {
        let mut buf = [0; 2048];
        let (n, from) = peer.recv_from(&mut buf).unwrap();
        let ping = msg_proto::decode(bytes::Bytes::copy_from_slice(&buf[..n])).unwrap();
        let pong = Message::new(Kind::Pong, ping.seq, "not it");
        peer.send_to(&support::datagram(&pong), from).unwrap();
        let reply = Message::new(Kind::Data, ping.seq, "the real one");
        peer.send_to(&support::datagram(&reply), from).unwrap();
    });
    let out = run(&["send", UDP, "--reply", &addr, "one"], None);
    answer.join().unwrap();
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
    assert_eq!(out.stdout, "the real one\n", "{}", out.stderr);
}

#[test]
fn oversize_udp_message_is_refused_before_sending() {
    let receiver = udp_peer();
    receiver
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let addr = receiver.local_addr().unwrap().to_string();
    let out = run(&["send", UDP, &addr, &"y".repeat(70_000)], None);
    assert_fails(
        &out,
        2,
        "message is 70000 bytes; a UDP datagram holds at most 65507 bytes on IPv4 \
         (65479 for the body after a 28-byte header)",
    );
    assert!(
        receiver.recv_from(&mut [0; 16]).is_err(),
        "nothing was sent"
    );
}

#[test]
fn oversize_tcp_message_is_refused_before_sending() {
    let listener = Listener::start(TCP, "127.0.0.1", &["--count", "1"]);
    let out = run(
        &[
            "send",
            TCP,
            "--max-frame",
            "100",
            &listener.addr_arg(),
            &"z".repeat(100),
        ],
        None,
    );
    assert_fails(
        &out,
        2,
        "message is 100 bytes; a TCP frame holds at most 100 bytes, set by --max-frame \
         (72 for the body after a 28-byte header)",
    );
    let out = run(
        &["send", TCP, "--max-frame", "10", &listener.addr_arg(), "z"],
        None,
    );
    assert_fails(&out, 2, "must be from 28");
    run(&["send", TCP, &listener.addr_arg(), "still serving"], None);
    assert_eq!(listener.finish().lines(), ["still serving"]);
}

#[test]
fn a_frame_over_max_frame_drops_that_peer_only() {
    let listener = Listener::start(TCP, "127.0.0.1", &["--count", "1", "--max-frame", "1024"]);
    let mut hostile = tcp_peer(&listener);
    hostile.write_all(b"\xff\xff\xff\xff").unwrap();
    // The listener says why (then drops what follows for at most a
    // second), and closes the connection: the read sees EOF (or a reset).
    let said = msg_proto::decode(support::read_frame(&mut hostile).unwrap().into()).unwrap();
    assert_eq!(said.kind, Kind::Error);
    assert_eq!(
        said.body,
        "a frame is over this listener's limit of 1024 bytes: closing"
    );
    assert_closed_by_peer(&mut hostile);
    let sent = run(&["send", TCP, &listener.addr_arg(), "fine"], None);
    assert_eq!(sent.code(), Some(0));
    let out = listener.finish();
    assert_eq!(out.lines(), ["fine"]);
    assert!(
        out.stderr
            .contains("frame of 4294967295 bytes exceeds the maximum of 1024 bytes"),
        "{}",
        out.stderr
    );
}

/// Audit, round three: `msg send` of a message over the listener's
/// `--max-frame` exited 0, the message dropped unseen (the listener closed
/// without a word). It now hears why, and fails, on either engine.
#[test]
fn a_message_over_the_listeners_max_frame_fails_the_sender() {
    let big = "a".repeat(5000);
    for io in ["tokio", "blocking"] {
        let listener = Listener::start(
            TCP,
            "127.0.0.1",
            &["--io", io, "--count", "1", "--max-frame", "1000"],
        );
        let refused = run(&["send", TCP, &listener.addr_arg(), &big], None);
        assert_eq!(refused.code(), Some(1), "--io {io}: {}", refused.stderr);
        assert!(
            refused.stderr.contains(
                "the listener says: a frame is over this listener's limit of 1000 bytes \
                 (msg listen --max-frame): closing"
            ),
            "--io {io}: {}",
            refused.stderr
        );
        let sent = run(&["send", TCP, &listener.addr_arg(), "fits"], None);
        assert_eq!(sent.code(), Some(0), "--io {io}: {}", sent.stderr);
        assert_eq!(listener.finish().lines(), ["fits"], "--io {io}");
    }
}

#[test]
fn a_peer_that_closes_mid_frame_is_dropped_and_the_rest_served() {
    let listener = Listener::start(TCP, "127.0.0.1", &["--count", "1"]);
    let mut quitter = tcp_peer(&listener);
    quitter
        .write_all(&support::frame(&Message::new(Kind::Data, 1, "cut short"))[..20])
        .unwrap();
    drop(quitter);
    let sent = run(&["send", TCP, &listener.addr_arg(), "after"], None);
    assert_eq!(sent.code(), Some(0));
    let out = listener.finish();
    assert_eq!(out.lines(), ["after"]);
    assert!(
        out.stderr.contains("connection closed mid-frame: 20 bytes"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_server_that_closes_mid_frame_fails_the_sender() {
    let server = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = server.local_addr().unwrap().to_string();
    let fake = std::thread::spawn(move || {
        let (mut conn, _) = server.accept().unwrap();
        conn.set_read_timeout(Some(DEADLINE)).unwrap();
        let mut prefix = [0; 4];
        conn.read_exact(&mut prefix).unwrap();
        let mut rest = vec![0; u32::from_be_bytes(prefix) as usize];
        conn.read_exact(&mut rest).unwrap();
        conn.write_all(b"\x00\x00\x00\x40half").unwrap();
    });
    let out = run(&["send", TCP, "--reply", &addr, "question"], None);
    fake.join().unwrap();
    assert_fails(&out, 1, "connection closed mid-frame: 8 bytes");
}

#[test]
fn tcp_garbage_drops_that_peer_only() {
    let listener = Listener::start(TCP, "127.0.0.1", &["--count", "1"]);
    let mut garbage = tcp_peer(&listener);
    let junk = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n not a msg header";
    garbage
        .write_all(&u32::try_from(junk.len()).unwrap().to_be_bytes())
        .unwrap();
    garbage.write_all(junk).unwrap();
    assert_closed_by_peer(&mut garbage);
    run(&["send", TCP, &listener.addr_arg(), "good"], None);
    let out = listener.finish();
    assert_eq!(out.lines(), ["good"]);
    assert!(out.stderr.contains("not a msg message"), "{}", out.stderr);
}

#[test]
fn udp_garbage_is_counted_logged_and_dropped() {
    // Warnings come once a second at most; -vv shows every drop.
    let listener = Listener::start(UDP, "127.0.0.1", &["--count", "1", "-vv"]);
    let peer = udp_peer();
    peer.send_to(b"garbage", listener.addr).unwrap();
    let mut wrong_kind = support::datagram(&Message::new(Kind::Data, 1, "x"));
    wrong_kind[3] = 0x66;
    peer.send_to(&wrong_kind, listener.addr).unwrap();
    peer.send_to(
        &support::datagram(&Message::new(Kind::Data, 2, "valid")),
        listener.addr,
    )
    .unwrap();
    let out = listener.finish();
    assert_eq!(out.lines(), ["valid"]);
    assert!(
        out.stderr.contains("dropped invalid datagram"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("truncated message: 7 bytes"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("unknown message kind 0x66"),
        "{}",
        out.stderr
    );
}

#[test]
fn count_zero_is_a_usage_error() {
    let out = run(&["listen", UDP, "--count", "0"], None);
    assert_fails(&out, 2, "--count");
}

#[test]
fn an_empty_message_is_a_header_only_message_except_on_raw_tcp() {
    let listener = Listener::start(TCP, "127.0.0.1", &["--count", "1", "--json"]);
    let sent = run(&["send", TCP, &listener.addr_arg(), ""], None);
    assert_eq!(sent.code(), Some(0), "{}", sent.stderr);
    let records = json_lines(&listener.finish().stdout);
    assert_eq!(
        (records[0]["len"].as_u64(), records[0]["body"].as_str()),
        (Some(0), Some(""))
    );

    let out = run(&["send", TCP, "--raw", "127.0.0.1:9", "fine", ""], None);
    assert_fails(
        &out,
        2,
        "message 2 is empty: a raw TCP stream cannot carry an empty message",
    );
}

#[test]
fn usage_errors_exit_2() {
    assert_fails(&run(&["send", "127.0.0.1:9000", "x"], None), 2, "--udp");
    assert_fails(
        &run(&["send", UDP, TCP, "127.0.0.1:9000"], None),
        2,
        "cannot be used",
    );
    assert_fails(&run(&["frobnicate"], None), 2, "unrecognized subcommand");
    assert_fails(
        &run(&["send", UDP, "--timeout", "soon", "127.0.0.1:9"], None),
        2,
        "soon",
    );
}

#[test]
fn help_shows_examples() {
    for args in [
        &["--help"][..],
        &["send", "--help"],
        &["listen", "--help"],
        &["connect", "--help"],
        &["bench", "--help"],
    ] {
        let out = run(args, None);
        assert_eq!(out.code(), Some(0));
        assert!(out.stdout.contains("Examples:"), "{args:?}: {}", out.stdout);
        assert!(out.stdout.contains("msg "), "{args:?}");
    }
}

#[test]
fn nagle_can_be_turned_back_on() {
    let listener = Listener::start(TCP, "127.0.0.1", &["--count", "2", "--nodelay", "false"]);
    let sent = run(
        &[
            "send",
            TCP,
            "--nodelay=false",
            &listener.addr_arg(),
            "a",
            "b",
        ],
        None,
    );
    assert_eq!(sent.code(), Some(0), "{}", sent.stderr);
    assert_eq!(listener.finish().lines(), ["a", "b"]);
}

#[test]
fn a_ping_is_answered_with_a_pong() {
    let listener = Listener::start(UDP, "127.0.0.1", &[]);
    let peer = udp_peer();
    let ping = Message::new(Kind::Ping, 42, "probe").with_timestamp(7);
    peer.send_to(&support::datagram(&ping), listener.addr)
        .unwrap();
    let mut buf = [0; 128];
    let (n, _) = peer.recv_from(&mut buf).unwrap();
    let pong = msg_proto::decode(bytes::Bytes::copy_from_slice(&buf[..n])).unwrap();
    assert_eq!(
        pong,
        Message {
            kind: Kind::Pong,
            ..ping
        }
    );
    let out = listener.process.kill();
    assert_eq!(out.stdout, "", "pings are not printed");
}

// ---- a closed stderr --------------------------------------------------------

/// Spawns `msg <args>` with its stderr a pipe whose read end is already
/// closed (as `msg ... 2>&1 | true` leaves it once `true` has exited):
/// every write to stderr fails with a broken pipe.
fn spawn_with_closed_stderr(args: &[&str]) -> std::process::Child {
    let mut child = support::msg()
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stderr.take());
    child
}

fn wait_bounded(child: &mut std::process::Child) -> std::process::ExitStatus {
    support::wait_within(child, DEADLINE)
}

#[test]
fn an_error_on_a_closed_stderr_exits_1_not_a_panic() {
    let receiver = udp_peer();
    let addr = receiver.local_addr().unwrap().to_string();
    // The error comes only once stdin says so, long after the read end of
    // stderr was closed: no race with the close. (A line too long for a
    // datagram: framed, since raw stdin goes in pieces that fit.)
    let mut child = spawn_with_closed_stderr(&["send", UDP, &addr]);
    let mut stdin = child.stdin.take().unwrap();
    // msg may stop reading at the first piece it refuses, before all of
    // this is written (a broken pipe here): what counts is how it exits.
    let _ = stdin.write_all(&[b'x'; 70_000]);
    drop(stdin);
    assert_eq!(wait_bounded(&mut child).code(), Some(1));
}

#[test]
fn a_log_line_on_a_closed_stderr_does_not_stop_the_listener() {
    let port = UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let mut child = spawn_with_closed_stderr(&["listen", UDP, "-v", "--count", "1", &addr]);
    // Ready once it answers a ping; then garbage makes it log a warning,
    // to the closed stderr, and a message after that must still print.
    let peer = udp_peer();
    peer.set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let ping = support::datagram(&Message::new(Kind::Ping, 1, ""));
    let deadline = std::time::Instant::now() + DEADLINE;
    while {
        peer.send_to(&ping, &addr).unwrap();
        peer.recv_from(&mut [0; 64]).is_err()
    } {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the listener exited before serving: {status}");
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the listener never answered"
        );
    }
    peer.send_to(b"garbage", &addr).unwrap();
    peer.send_to(
        &support::datagram(&Message::new(Kind::Data, 2, "after")),
        &addr,
    )
    .unwrap();
    let status = wait_bounded(&mut child);
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    assert_eq!((status.code(), out.as_str()), (Some(0), "after\n"));
}

// ---- host names with several addresses ---------------------------------------

/// How a test runs msg where `localhost` has two addresses, `::1` first
/// and `127.0.0.1` second: as it is where the system resolves it so, else
/// in a private mount namespace whose /etc/hosts does
/// ([`support::msg_with_dual_localhost`]); `None` where neither can be.
struct DualLocalhost {
    /// Whether through the private /etc/hosts.
    private: bool,
    /// Its addresses, in the resolver's order.
    all: Vec<std::net::SocketAddr>,
}

impl DualLocalhost {
    fn new() -> Option<Self> {
        use std::net::ToSocketAddrs;
        let system: Vec<_> = ("localhost", 9).to_socket_addrs().unwrap().collect();
        if system.len() >= 2 {
            return Some(Self {
                private: false,
                all: system,
            });
        }
        support::msg_with_dual_localhost(&[])?;
        Some(Self {
            private: true,
            all: vec!["[::1]:9".parse().unwrap(), "127.0.0.1:9".parse().unwrap()],
        })
    }

    /// A listener on the last address only: the ones before it refuse.
    /// `None` (a SKIP) where its port is open on another one too.
    fn listener_on_the_last(&self, transport: &str, args: &[&str]) -> Option<Listener> {
        let last = self.all.last().unwrap().to_string();
        let host = last.rsplit_once(':').unwrap().0;
        let listener = Listener::start(transport, host, args);
        let port = listener.addr.port();
        if self
            .all
            .iter()
            .any(|a| a.ip() != listener.addr.ip() && TcpStream::connect((a.ip(), port)).is_ok())
        {
            support::skip(&format!(
                "port {port} is also open on another address of localhost"
            ));
            return None;
        }
        Some(listener)
    }

    fn run(&self, args: &[&str]) -> support::Finished {
        if !self.private {
            return run(args, None);
        }
        let cmd = support::msg_with_dual_localhost(args).unwrap();
        support::Running::spawn(cmd, None).finish()
    }
}

#[test]
fn a_host_name_is_tried_at_each_of_its_addresses() {
    let Some(localhost) = DualLocalhost::new() else {
        return;
    };
    let Some(listener) = localhost.listener_on_the_last(TCP, &["--count", "1"]) else {
        return;
    };
    let port = listener.addr.port();
    let name = format!("localhost:{port}");
    let sent = localhost.run(&["send", TCP, &name, "via the last address"]);
    assert_eq!(sent.code(), Some(0), "{}", sent.stderr);
    assert_eq!(listener.finish().lines(), ["via the last address"]);

    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = localhost.run(&["send", TCP, &format!("localhost:{port}"), "x"]);
    assert_fails(
        &out,
        1,
        &format!(
            "cannot connect to localhost:{port} at any of its {} addresses",
            localhost.all.len()
        ),
    );
}

/// `msg bench` at a name measures at the first of its addresses that
/// connects, a ping-pong run and `--clients` alike, as `msg send` does
/// (audit, round nine: `--clients` took the first address, which
/// refused, against what the README says).
#[test]
fn bench_at_a_host_name_measures_at_its_first_address_that_connects() {
    let Some(localhost) = DualLocalhost::new() else {
        return;
    };
    let Some(listener) = localhost.listener_on_the_last(TCP, &[]) else {
        return;
    };
    let name = format!("localhost:{}", listener.addr.port());
    let quick = ["--duration", "200ms", "--warmup", "20ms"];
    for mode in [&["--runs", "1", "--sizes", "64"][..], &["--clients", "4"]] {
        let mut args = vec!["bench", TCP];
        args.extend_from_slice(mode);
        args.extend_from_slice(&quick);
        args.push(&name);
        let out = localhost.run(&args);
        assert_eq!(out.code(), Some(0), "{mode:?}: {}", out.stderr);
        assert!(out.stdout.contains("msg/s"), "{mode:?}: {}", out.stdout);
    }
}

// ---- escapes and NUL-terminated records -----------------------------------

/// A body that would retitle a terminal window, ring its bell and split
/// itself over two lines if printed as it is.
const HOSTILE: &str = "a\x1b]0;title\x07b\nc";
/// How it is shown escaped: one line of plain text.
const HOSTILE_ESCAPED: &str = r"a\x1b]0;title\x07b\nc";

fn send_udp_data(listener: &Listener, seq: u64, body: &str) {
    udp_peer()
        .send_to(
            &support::datagram(&Message::new(Kind::Data, seq, body.to_owned())),
            listener.addr,
        )
        .unwrap();
}

#[test]
fn escape_always_shows_control_characters_as_text_on_one_line() {
    let listener = Listener::start(UDP, "127.0.0.1", &["--count", "1", "--escape", "always"]);
    send_udp_data(&listener, 1, HOSTILE);
    let out = listener.finish();
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
    assert_eq!(out.stdout, format!("{HOSTILE_ESCAPED}\n"));
}

#[test]
fn into_a_pipe_bodies_are_the_exact_bytes() {
    // Tests never have a terminal: auto is the pipe case.
    for args in [&[][..], &["--escape", "auto"], &["--escape", "never"]] {
        let listener = Listener::start(UDP, "127.0.0.1", &[&["--count", "1"], args].concat());
        send_udp_data(&listener, 1, HOSTILE);
        let out = listener.finish();
        assert_eq!(
            out.stdout_bytes(),
            format!("{HOSTILE}\n").as_bytes(),
            "{args:?}"
        );
    }
}

#[test]
fn null_ends_each_body_with_a_nul_byte() {
    let listener = Listener::start(UDP, "127.0.0.1", &["--count", "2", "-0"]);
    send_udp_data(&listener, 1, "two\nlines");
    send_udp_data(&listener, 2, "one");
    assert_eq!(listener.finish().stdout_bytes(), b"two\nlines\0one\0");

    let out = run(&["listen", UDP, "--json", "--null", "127.0.0.1:0"], None);
    assert_fails(&out, 2, "cannot be used with");
}

#[test]
fn send_reply_is_escaped_and_terminated_as_asked() {
    let listener = Listener::start(TCP, "127.0.0.1", &["--count", "2", "--reply", "echo"]);
    let addr = listener.addr_arg();
    let sent = run(
        &["send", TCP, "--reply", "--escape", "always", &addr, HOSTILE],
        None,
    );
    assert_eq!(sent.code(), Some(0), "{}", sent.stderr);
    assert_eq!(sent.stdout, format!("{HOSTILE_ESCAPED}\n"));
    let sent = run(&["send", TCP, "--reply", "-0", &addr, HOSTILE], None);
    assert_eq!(sent.code(), Some(0), "{}", sent.stderr);
    assert_eq!(sent.stdout_bytes(), format!("{HOSTILE}\0").as_bytes());
    assert_eq!(
        listener.finish().stdout_bytes(),
        format!("{HOSTILE}\n{HOSTILE}\n").as_bytes()
    );
}

#[test]
fn raw_tcp_escaped_is_each_reads_bytes_escaped_and_nothing_added() {
    let listener = Listener::start(
        TCP,
        "127.0.0.1",
        &["--raw", "--count", "1", "--escape", "always", "-0"],
    );
    let mut peer = tcp_peer(&listener);
    peer.write_all(b"x\r\ny\x1b\xff").unwrap();
    let out = listener.finish();
    assert_eq!(out.stdout, r"x\r\ny\x1b\xff");
}

// ---- stdin: bounded lines ----------------------------------------------------

#[test]
fn a_carriage_return_is_part_of_the_line_unless_crlf() {
    for (args, bodies) in [(&[][..], ["a\r", "b"]), (&["--crlf"], ["a", "b"])] {
        let listener = Listener::start(UDP, "127.0.0.1", &["--count", "2", "--json"]);
        let sent = run(
            &[&["send", UDP, &listener.addr_arg()][..], args].concat(),
            Some(b"a\r\nb\n"),
        );
        assert_eq!(sent.code(), Some(0), "{}", sent.stderr);
        let records = json_lines(&listener.finish().stdout);
        let got: Vec<_> = records
            .iter()
            .map(|r| r["body"].as_str().unwrap())
            .collect();
        assert_eq!(got, bodies, "{args:?}");
    }
}

#[test]
fn an_endless_stdin_line_is_refused_at_the_limit_without_reading_it_all() {
    let receiver = udp_peer();
    receiver
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let addr = receiver.local_addr().unwrap().to_string();
    // `msg send --udp ADDR < /dev/zero` once read until memory ran out.
    let started = std::time::Instant::now();
    let mut child = support::msg()
        .args(["send", UDP, &addr])
        .stdin(std::fs::File::open("/dev/zero").unwrap())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let (status, stderr) = support::stderr_within(&mut child, DEADLINE);
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert_eq!(
        stderr,
        "msg: line 1 is longer than 65479 bytes, the largest message a UDP datagram holds \
         on IPv4 (65507 bytes less a 28-byte header)\n"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert!(
        receiver.recv_from(&mut [0; 16]).is_err(),
        "nothing was sent"
    );

    // A 1 MiB line, then more: the lines before it were sent.
    let mut input = b"first\n".to_vec();
    input.extend(std::iter::repeat_n(0, 1 << 20));
    input.extend_from_slice(b"\nnever\n");
    let out = run(&["send", UDP, &addr], Some(&input));
    assert_fails(&out, 1, "line 2 is longer than 65479 bytes");
    let mut buf = [0; 64];
    let (n, _) = receiver.recv_from(&mut buf).unwrap();
    assert!(buf[..n].ends_with(b"first"));
    assert!(receiver.recv_from(&mut buf).is_err(), "only the first line");
}

#[test]
fn a_tcp_line_may_be_as_long_as_max_frame_allows() {
    let listener = Listener::start(TCP, "127.0.0.1", &["--count", "1"]);
    let line = "z".repeat(72);
    let fits = format!("{line}\r\n");
    let sent = run(
        &[
            "send",
            TCP,
            "--max-frame",
            "100",
            "--crlf",
            &listener.addr_arg(),
        ],
        Some(fits.as_bytes()),
    );
    assert_eq!(sent.code(), Some(0), "{}", sent.stderr);
    assert_eq!(listener.finish().lines(), [line.as_str()]);

    // Without --crlf the "\r" is part of the line: one byte too many. (The
    // kernel accepts the connection into the backlog; nobody reads it.)
    let quiet = TcpListener::bind("127.0.0.1:0").unwrap();
    let out = run(
        &[
            "send",
            TCP,
            "--max-frame",
            "100",
            &quiet.local_addr().unwrap().to_string(),
        ],
        Some(fits.as_bytes()),
    );
    assert_fails(
        &out,
        1,
        "line 1 is longer than 72 bytes, the largest message a TCP frame holds, \
         set by --max-frame (100 bytes less a 28-byte header)",
    );
}

#[test]
fn raw_tcp_sends_an_endless_stdin_in_pieces_as_it_comes() {
    let server = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = server.local_addr().unwrap().to_string();
    // No newline ever: a stream has no lines to wait for.
    let mut child = support::msg()
        .args(["send", TCP, "--raw", &addr])
        .stdin(std::fs::File::open("/dev/zero").unwrap())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    server.set_nonblocking(true).unwrap();
    let deadline = std::time::Instant::now() + DEADLINE;
    let mut conn = loop {
        match server.accept() {
            Ok((conn, _)) => break conn,
            Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => {
                assert!(std::time::Instant::now() < deadline, "msg never connected");
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(err) => panic!("{err}"),
        }
    };
    conn.set_nonblocking(false).unwrap();
    conn.set_read_timeout(Some(DEADLINE)).unwrap();
    let mut got = vec![1; 4 << 20];
    conn.read_exact(&mut got).unwrap();
    assert!(got.iter().all(|&b| b == 0));
    let _ = child.kill();
    let _ = child.wait();
}

/// `msg listen --io blocking` serves the framed protocol as the tokio
/// listener does: replies, `--count`, JSON and the summary.
#[test]
fn the_blocking_listener_replies_counts_and_prints_as_the_tokio_one() {
    for io in ["tokio", "blocking"] {
        let listener = Listener::start(
            TCP,
            "127.0.0.1",
            &["--io", io, "--count", "2", "--reply", "upper"],
        );
        let sent = run(
            &["send", TCP, "--reply", &listener.addr_arg(), "hello", "tcp"],
            None,
        );
        assert_eq!(sent.code(), Some(0), "{io}: {}", sent.stderr);
        assert_eq!(sent.lines(), ["HELLO", "TCP"], "{io}");
        let out = listener.finish();
        assert_eq!(out.code(), Some(0), "{io}: {}", out.stderr);
        assert_eq!(out.lines(), ["hello", "tcp"], "{io}");
        assert!(out.stderr.contains("2 messages"), "{io}: {}", out.stderr);

        let listener = Listener::start(
            UDP,
            "[::1]",
            &["--io", io, "--count", "1", "--reply", "echo", "--json"],
        );
        let sent = run(
            &["send", UDP, "--reply", &listener.addr_arg(), "over v6"],
            None,
        );
        assert_eq!(sent.code(), Some(0), "{io}: {}", sent.stderr);
        assert_eq!(sent.lines(), ["over v6"], "{io}");
        let out = listener.finish();
        let record: Value = serde_json::from_str(out.lines()[0]).unwrap();
        assert_eq!(
            (&record["seq"], &record["body"]),
            (&Value::from(1), &Value::from("over v6"))
        );
    }
}

#[test]
fn the_blocking_listener_refuses_what_only_tokio_serves() {
    let dir = std::env::temp_dir();
    let dir = dir.to_str().unwrap();
    for args in [
        &["listen", TCP, "--io", "blocking", "--raw"][..],
        &["listen", TCP, "--io", "blocking", "--save-dir", dir],
        &["listen", UDP, "--io", "blocking", "--raw"],
    ] {
        let out = run(args, None);
        assert_eq!(out.code(), Some(2), "{args:?}: {}", out.stderr);
        assert!(
            out.stderr.contains("needs --io tokio"),
            "{args:?}: {}",
            out.stderr
        );
    }
}

/// A non-UTF-8 argument is named, shown escaped, and the way to send such
/// bytes is given, instead of clap's "invalid UTF-8 was detected in one
/// or more arguments".
#[cfg(unix)]
#[test]
fn a_non_utf8_argument_is_named_and_the_way_round_it_given() {
    use std::os::unix::ffi::OsStringExt;
    let bad = std::ffi::OsString::from_vec(b"a\xffb".to_vec());
    let out = support::msg()
        .args(["send", "--udp", "127.0.0.1:9"])
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(r#"argument 4 ("a\xffb") is not UTF-8"#),
        "{stderr}"
    );
    assert!(stderr.contains("on stdin"), "{stderr}");
}

/// The help agrees with behaviour: msg exec's examples carry the secret
/// every command needs, and msg bench measures any msg listen, not only
/// an echoing one (pings are always answered).
#[test]
fn help_examples_say_what_works() {
    let exec = run(&["exec", "--help"], None);
    assert_eq!(exec.code(), Some(0), "{}", exec.stderr);
    for line in exec
        .stdout
        .lines()
        .filter(|l| l.trim_start().starts_with("msg exec "))
    {
        assert!(line.contains("--secret-file"), "no secret in {line:?}");
    }
    let bench = run(&["bench", "--help"], None);
    assert_eq!(bench.code(), Some(0), "{}", bench.stderr);
    assert!(!bench.stdout.contains("--reply echo"), "{}", bench.stdout);
}

/// A framed `msg listen --once`, serving its one connection, tells the
/// next client so in words that fit one, naming both flags that give it
/// (the client cannot know which): it said `serves at most 1 connections
/// at once (--max-conns 1)`, a flag the user never gave.
#[test]
fn a_once_listener_tells_the_next_client_it_serves_one_at_a_time() {
    let listener = Listener::start(TCP, "127.0.0.1", &["--once"]);
    let mut first = tcp_peer(&listener);
    // The first is being served once its message is printed.
    first
        .write_all(&support::frame(&Message::new(Kind::Data, 1, "first")))
        .unwrap();
    listener.process.wait_for_stdout_end(b"first\n");
    let second = run(&["send", TCP, "--reply", &listener.addr_arg(), "x"], None);
    assert_eq!(second.code(), Some(1), "{}", second.stderr);
    assert!(
        second.stderr.contains(
            "this listener serves one connection at a time (msg listen --once, or \
             --max-conns 1); try again later"
        ),
        "{}",
        second.stderr
    );
    drop(first);
    let out = listener.finish();
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
}

/// A signal that stops `msg listen --once` while its connection is open
/// cut what it carried short: the signal's exit code and a line saying
/// so, as nc's listener exits then (audit, round thirteen: exit 0 with
/// 2.3 of 6 MB in the file). Both engines, raw and framed; with no
/// connection open a signal is still a clean stop.
#[test]
fn once_stopped_by_a_signal_mid_connection_exits_as_the_signal() {
    for (args, signal, code, shown) in [
        (&["--raw", "--once"][..], "INT", 130, &b"part"[..]),
        (&["--once", "--io", "blocking"], "TERM", 143, b"part\n"),
    ] {
        let listener = Listener::start(TCP, "127.0.0.1", args);
        let mut peer = tcp_peer(&listener);
        peer.write_all(&support::frame(&Message::new(Kind::Data, 1, "part")))
            .unwrap();
        listener.process.wait_for_stdout_end(shown);
        let out = listener.process.signal(signal);
        assert_eq!(out.code(), Some(code), "{args:?}: {}", out.stderr);
        assert!(
            out.stderr
                .contains("while the connection (--once) was open: what it carried is cut short"),
            "{args:?}: {}",
            out.stderr
        );
        drop(peer);
    }
    let listener = Listener::start(TCP, "127.0.0.1", &["--raw", "--once"]);
    let out = listener.process.signal("INT");
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
}

/// `msg listen --once` ends with its first connection, as nc's listener
/// does (`nc -l PORT > file` ends when the sender is done), on both
/// engines; meanwhile another client is closed, as a full listener's. Over
/// a datagram transport there is no connection to end: a usage error.
/// Without it `msg listen --raw > file` never ended, and `--count` counts
/// reads, which no sender can know (audit, round eight).
#[test]
fn once_ends_the_listener_with_its_first_connection() {
    let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 253) as u8).collect();
    let listener = Listener::start(TCP, "127.0.0.1", &["--raw", "--once"]);
    let mut peer = tcp_peer(&listener);
    // Raw, nothing tells it why: it is closed (reset, when its message
    // was there unread).
    let second = run(&["send", TCP, "--reply", &listener.addr_arg(), "x"], None);
    assert_eq!(second.code(), Some(1), "{}", second.stderr);
    assert!(
        second.stderr.contains("closed the connection")
            || second.stderr.contains("Connection reset by peer"),
        "{}",
        second.stderr
    );
    // A raw sender with no reply to wait for is reset, not closed: its
    // bytes went nowhere, and it exited 0 (audit, round thirteen).
    let second = run(
        &["send", TCP, "--raw", &listener.addr_arg(), "second"],
        None,
    );
    assert_eq!(second.code(), Some(1), "{}", second.stderr);
    assert!(
        second.stderr.contains("Connection reset by peer")
            || second.stderr.contains("the connection was reset"),
        "{}",
        second.stderr
    );
    peer.write_all(&data).unwrap();
    drop(peer);
    let out = listener.finish();
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
    assert!(
        out.stdout_bytes() == data,
        "{} bytes",
        out.stdout_bytes().len()
    );
    assert!(
        out.stderr
            .contains("the connection ended: stopping (--once)"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains(
            "refused a connection: this listener serves one connection at a time, and one is \
             open"
        ),
        "{}",
        out.stderr
    );

    let listener = Listener::start(TCP, "127.0.0.1", &["--io", "blocking", "--once"]);
    let sent = run(&["send", TCP, &listener.addr_arg(), "a", "b"], None);
    assert_eq!(sent.code(), Some(0), "{}", sent.stderr);
    let out = listener.finish();
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
    assert_eq!(out.lines(), ["a", "b"]);

    support::assert_usage_error(
        &["listen", UDP, "--once"],
        "--once ends with the first connection",
    );
    support::assert_usage_error(
        &["listen", TCP, "--once", "--max-conns", "5"],
        "cannot be used with",
    );
}

/// With a secret, a peer that fails the handshake was not served: it does
/// not end a `--once` listener, which any local process could otherwise
/// stop (audit, second look). The authenticated sender that follows does.
#[test]
fn once_counts_no_connection_that_failed_its_handshake() {
    let secret = support::secret_arg(b"once and a secret");
    for io in ["tokio", "blocking"] {
        let listener = Listener::start(
            TCP,
            "127.0.0.1",
            &[
                "--once",
                "--io",
                io,
                "--secret-file",
                &secret,
                "--handshake-timeout",
                "1s",
            ],
        );
        let mut junk = tcp_peer(&listener);
        junk.write_all(b"not a handshake at all, not even close\n")
            .unwrap();
        let mut rest = Vec::new();
        let _ = junk.read_to_end(&mut rest);
        drop(junk);
        let sent = run(
            &[
                "send",
                TCP,
                "--secret-file",
                &secret,
                &listener.addr_arg(),
                "in",
            ],
            None,
        );
        assert_eq!(sent.code(), Some(0), "{io}: {}", sent.stderr);
        let out = listener.finish();
        assert_eq!(out.code(), Some(0), "{io}: {}", out.stderr);
        assert_eq!(out.lines(), ["in"], "{io}");
    }
}
