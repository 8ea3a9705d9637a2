//! `msg connect`: stdin to the peer, the peer's messages to stdout as they
//! arrive, both at once; a half-close on stdin's end.

mod support;

use std::io::{Read, Write};
use std::net::TcpListener;

use support::{DEADLINE, Listener, run};

#[test]
fn tcp_lines_go_out_and_the_replies_come_back() {
    let listener = Listener::start("--tcp", "127.0.0.1", &["--reply", "upper"]);
    let out = run(
        &["connect", "--tcp", &listener.addr_arg()],
        Some(b"hello\nworld\n"),
    );
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
    assert_eq!(out.lines(), ["HELLO", "WORLD"]);
    // Everything was printed: nothing was queued when msg exited (it
    // warned so after every session, and waited a second; audit, round
    // six).
    assert!(!out.stderr.contains("stdout is blocked"), "{}", out.stderr);
}

#[test]
fn udp_lines_go_out_and_late_replies_are_waited_for() {
    let listener = Listener::start("--udp", "127.0.0.1", &["--reply", "echo"]);
    let out = run(
        &["connect", "--udp", "--wait", "500ms", &listener.addr_arg()],
        Some(b"a\nb\n"),
    );
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
    assert_eq!(out.lines(), ["a", "b"]);
    assert!(!out.stderr.contains("stdout is blocked"), "{}", out.stderr);
}

#[test]
fn raw_tcp_against_an_echo_peer_half_closes() {
    let server = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = server.local_addr().unwrap().to_string();
    // Echoes until our end of the stream, then says goodbye and closes:
    // only a half-close lets "bye" arrive after stdin has ended.
    let peer = std::thread::spawn(move || {
        let (mut stream, _) = server.accept().unwrap();
        stream.set_read_timeout(Some(DEADLINE)).unwrap();
        let mut buf = [0u8; 1024];
        loop {
            let n = stream.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            stream.write_all(&buf[..n]).unwrap();
        }
        stream.write_all(b"bye\n").unwrap();
    });
    let out = run(
        &["connect", "--tcp", "--raw", "--wait", "10s", &addr],
        Some(b"no lines,\njust bytes\n"),
    );
    peer.join().unwrap();
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
    assert_eq!(out.stdout, "no lines,\njust bytes\nbye\n");
}

#[test]
fn length_framing_and_a_secret_work_too() {
    let listener = Listener::start(
        "--tcp",
        "127.0.0.1",
        &["--framing", "length", "--reply", "upper"],
    );
    let out = run(
        &[
            "connect",
            "--tcp",
            "--framing",
            "length",
            &listener.addr_arg(),
        ],
        Some(b"one\ntwo\n"),
    );
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
    assert_eq!(out.lines(), ["ONE", "TWO"]);

    let secret = support::secret_arg(b"s3cret");
    let listener = Listener::start(
        "--tcp",
        "127.0.0.1",
        &["--secret-file", &secret, "--reply", "echo"],
    );
    let out = run(
        &[
            "connect",
            "--tcp",
            "--json",
            "--secret-file",
            &secret,
            &listener.addr_arg(),
        ],
        Some(b"tagged\n"),
    );
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
    let line: serde_json::Value = serde_json::from_str(out.lines()[0]).unwrap();
    assert_eq!((&line["body"], &line["seq"]), (&"tagged".into(), &1.into()));
}

/// A peer that answers with a whole frame and then half of one, and
/// keeps the connection open: the whole one is shown, and the half one,
/// still unfinished when `--wait` ends, is not dropped unsaid (exit 0
/// before), for msg's frames and `--framing length` alike.
#[test]
fn a_frame_unfinished_when_the_wait_ends_is_an_error_not_lost_unsaid() {
    for framing in ["msg", "length"] {
        let server = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = server.local_addr().unwrap().to_string();
        let peer = std::thread::spawn(move || {
            let (mut stream, _) = server.accept().unwrap();
            stream.set_read_timeout(Some(DEADLINE)).unwrap();
            let whole = match framing {
                "msg" => support::frame(&msg_proto::Message::new(msg_proto::Kind::Data, 1, "ok")),
                _ => [&2u32.to_be_bytes()[..], b"ok"].concat(),
            };
            // Then a frame that announces 100 bytes and brings 3.
            let half = [&100u32.to_be_bytes()[..], b"abc"].concat();
            stream.write_all(&[whole, half].concat()).unwrap();
            // Read to the client's half-close, then held open past its
            // wait: a close would end the session at once.
            let mut buf = [0u8; 1024];
            while stream.read(&mut buf).is_ok_and(|n| n > 0) {}
            std::thread::sleep(std::time::Duration::from_millis(1500));
        });
        let out = run(
            &[
                "connect",
                "--tcp",
                "--framing",
                framing,
                "--wait",
                "300ms",
                &addr,
            ],
            Some(b"x\n"),
        );
        peer.join().unwrap();
        assert_eq!(out.code(), Some(1), "{framing}: {}", out.stderr);
        assert_eq!(out.lines(), ["ok"], "{framing}");
        assert!(
            out.stderr.contains(
                "the wait of 300ms for the peer ended 7 bytes into a frame it had not finished: \
                 dropped (msg connect --wait)"
            ),
            "{framing}: {}",
            out.stderr
        );
    }
}

/// Audit, round five: with a stdout nobody reads (a pipe, a terminal
/// paused with Ctrl-S), `msg connect` wrote to it from the session itself,
/// and a write that blocked kept `--wait` from ending anything: it ran as
/// long as the peer sent. It prints from a thread of its own now: the
/// wait ends the session, and what is queued is given a second.
#[test]
fn a_stdout_nobody_reads_does_not_hold_the_wait_up() {
    let server = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = server.local_addr().unwrap().to_string();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let peer = {
        let stop = std::sync::Arc::clone(&stop);
        std::thread::spawn(move || {
            let (mut stream, _) = server.accept().unwrap();
            stream.set_write_timeout(Some(DEADLINE)).unwrap();
            let frame = support::frame(&msg_proto::Message::new(
                msg_proto::Kind::Data,
                1,
                vec![b'x'; 16 * 1024],
            ));
            // Bounded: until the client is gone or the test says, at
            // most 4 GiB.
            for _ in 0..262_144 {
                if stop.load(std::sync::atomic::Ordering::Relaxed)
                    || stream.write_all(&frame).is_err()
                {
                    break;
                }
            }
        })
    };
    let mut cmd = support::msg();
    cmd.args(["connect", "--tcp", "--wait", "1s", &addr]);
    let (running, unread) = support::Running::spawn_unread(cmd);
    let started = std::time::Instant::now();
    let out = running.finish();
    let took = started.elapsed();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    drop(unread);
    peer.join().unwrap();
    // What was queued for stdout is lost, and said to be: exit 1, not 0
    // (audit, round ten: a reader that only paused lost all but 64 KiB,
    // and msg exited 0).
    assert_eq!(out.code(), Some(1), "{}", out.stderr);
    // The wait (1 s) and the second given to what is queued, and slack.
    assert!(took < std::time::Duration::from_secs(5), "took {took:?}");
    assert!(
        out.stderr
            .contains("stdout is blocked: exiting without printing what is queued"),
        "{}",
        out.stderr
    );
}

#[test]
fn connect_refuses_what_cannot_go_together() {
    for args in [
        &["connect", "--udp", "--framing", "length", "127.0.0.1:9"][..],
        &[
            "connect",
            "--tcp",
            "--raw",
            "--framing",
            "length",
            "127.0.0.1:9",
        ],
    ] {
        let out = run(args, Some(b""));
        assert_eq!(out.code(), Some(2), "{args:?}: {}", out.stderr);
        assert!(out.stderr.contains("--framing length"), "{}", out.stderr);
    }
}

/// A peer that greets with a line, half-closes when `half_close`, then
/// reads everything sent to it slowly (a millisecond after each 64 KiB
/// read), as a busy receiver would; the bytes it got.
fn greeting_peer(half_close: bool) -> (String, std::thread::JoinHandle<usize>) {
    let server = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = server.local_addr().unwrap().to_string();
    let peer = std::thread::spawn(move || {
        let (mut stream, _) = server.accept().unwrap();
        stream.set_read_timeout(Some(DEADLINE)).unwrap();
        stream.write_all(b"hello\n").unwrap();
        if half_close {
            stream.shutdown(std::net::Shutdown::Write).unwrap();
        }
        let mut buf = vec![0; 64 * 1024];
        let mut total = 0;
        // Bounded: 10 MB in 64 KiB reads is about 160 of them.
        for _ in 0..100_000 {
            match stream.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => total += n,
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        total
    });
    (addr, peer)
}

/// Audit, round eight: a peer that had sent something msg never read
/// (`nc -l` with a banner) lost the end of a `msg send --raw`: msg closed
/// with the banner unread, the kernel reset the connection and threw away
/// what was still queued to send (8.1 of 10 MB arrived, exit 0). And
/// `msg connect --raw` ended its session when the peer half-closed (`ncat
/// -l < /dev/null`), its stdin unsent: 0 of 10 MB, exit 0. nc, ncat and
/// socat deliver all of it in both cases.
#[test]
fn a_peer_that_spoke_or_half_closed_first_gets_every_byte() {
    const SIZE: usize = 10_000_000;
    let data: Vec<u8> = (0..SIZE).map(|i| (i % 251) as u8).collect();
    let (addr, peer) = greeting_peer(false);
    let sent = run(&["send", "--tcp", "--raw", &addr], Some(&data));
    assert_eq!(sent.code(), Some(0), "{}", sent.stderr);
    assert_eq!(peer.join().unwrap(), SIZE, "msg send --raw");

    let (addr, peer) = greeting_peer(true);
    let held = run(&["connect", "--tcp", "--raw", &addr], Some(&data));
    assert_eq!(held.code(), Some(0), "{}", held.stderr);
    assert_eq!(held.stdout, "hello\n");
    assert_eq!(peer.join().unwrap(), SIZE, "msg connect --raw");
}

/// After stdin's end, `--wait` is how long the peer may be quiet, not how
/// long it may take: a reply that trickles in (a byte every 100 ms, for
/// 1.6 s) is printed whole with `--wait 500ms`, where it was cut off at
/// 500 ms, unsaid, exit 0, and nc printed it all (audit, round eight).
/// A peer of one connection that reads until our end of the stream, then
/// does `then`: its address, and its thread.
fn peer_after_our_end(
    then: impl FnOnce(&mut std::net::TcpStream) + Send + 'static,
) -> (String, std::thread::JoinHandle<()>) {
    let server = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = server.local_addr().unwrap().to_string();
    let peer = std::thread::spawn(move || {
        let (mut stream, _) = server.accept().unwrap();
        stream.set_read_timeout(Some(DEADLINE)).unwrap();
        let mut buf = [0u8; 64];
        while stream.read(&mut buf).is_ok_and(|n| n > 0) {}
        then(&mut stream);
    });
    (addr, peer)
}

#[test]
fn a_reply_still_coming_in_is_not_cut_off_by_the_wait() {
    let (addr, peer) = peer_after_our_end(|stream| {
        for byte in b"0123456789abcdef" {
            stream.write_all(&[*byte]).unwrap();
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    });
    let out = run(
        &["connect", "--tcp", "--raw", "--wait", "500ms", &addr],
        Some(b"go\n"),
    );
    peer.join().unwrap();
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
    assert_eq!(out.stdout, "0123456789abcdef");
}

/// A peer that said nothing and is still there when `--wait` ends the
/// session is said to have been left: nc would have waited for its close,
/// and its answer may be on the way (audit, round thirteen: a reply after
/// 3 s, the session ended at 2 s without a word). One that spoke is not.
#[test]
fn a_silent_peer_left_at_the_wait_is_said_to_be() {
    // A peer that reads to our end, answers `answer`, and stays connected
    // past the wait.
    let session = |answer: &'static [u8]| {
        let (addr, peer) = peer_after_our_end(move |stream| {
            stream.write_all(answer).unwrap();
            std::thread::sleep(std::time::Duration::from_millis(800));
        });
        let out = run(
            &["connect", "--tcp", "--raw", "--wait", "300ms", &addr],
            Some(b"q\n"),
        );
        peer.join().unwrap();
        assert_eq!(out.code(), Some(0), "{}", out.stderr);
        out
    };
    let silent = session(b"");
    assert!(
        silent.stderr.contains(
            "the peer sent nothing and had not closed 300ms after stdin ended: ending the \
             session, without what it may send later"
        ),
        "{}",
        silent.stderr
    );
    let spoke = session(b"spoke\n");
    assert_eq!(spoke.stdout, "spoke\n");
    assert!(!spoke.stderr.contains("sent nothing"), "{}", spoke.stderr);
}

/// A msg peer that ends the session while stdin still has lines ends it
/// here too, as nc's peer does (exit 0), and the lines not sent are said
/// not to be (audit, round ten: nothing was said).
#[test]
fn a_msg_peer_that_ends_first_leaves_the_rest_of_stdin_said_unsent() {
    let server = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = server.local_addr().unwrap().to_string();
    let peer = std::thread::spawn(move || {
        let (mut stream, _) = server.accept().unwrap();
        stream.set_read_timeout(Some(DEADLINE)).unwrap();
        let frame = support::read_frame(&mut stream).unwrap();
        let msg = msg_proto::decode(frame.into()).unwrap();
        let reply = msg_proto::Message::new(msg_proto::Kind::Data, msg.seq, msg.body);
        stream.write_all(&support::frame(&reply)).unwrap();
        // Closed whole: the session's end.
    });
    let mut cmd = support::msg();
    cmd.args(["connect", "--tcp", &addr]);
    // Stdin held open: more lines could still come.
    let (running, stdin) = support::Running::spawn_held(cmd, b"one\n");
    let out = running.finish();
    drop(stdin);
    peer.join().unwrap();
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
    assert_eq!(out.lines(), ["one"]);
    assert!(
        out.stderr
            .contains("the peer ended the session before stdin did: the rest of stdin is not sent"),
        "{}",
        out.stderr
    );
}

/// A stdin line over the limit ends what is sent as stdin's end does:
/// the replies to the lines before it are still shown, then the refusal
/// is the error (audit, round ten: the session ended at once, and a reply
/// on its way was not shown).
#[test]
fn a_line_over_the_limit_ends_the_sending_after_the_replies_before_it() {
    for framing in ["msg", "length"] {
        let listener = Listener::start(
            "--tcp",
            "127.0.0.1",
            &["--reply", "echo", "--framing", framing],
        );
        let mut input = b"short\n".to_vec();
        input.extend([b'y'; 200]);
        input.push(b'\n');
        let out = run(
            &[
                "connect",
                "--tcp",
                "--framing",
                framing,
                "--max-frame",
                "100",
                &listener.addr_arg(),
            ],
            Some(&input),
        );
        assert_eq!(out.code(), Some(1), "{framing}: {}", out.stderr);
        assert_eq!(out.lines(), ["short"], "{framing}: {}", out.stderr);
        assert!(
            out.stderr.contains("line 2 is longer than"),
            "{framing}: {}",
            out.stderr
        );
    }
}
