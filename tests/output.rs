//! A listener whose stdout stops draining (a pager left unscrolled, a
//! terminal paused with Ctrl-S) goes on serving: pings are answered, new
//! connections accepted; framed TCP senders feel backpressure instead of
//! filling memory; UDP messages with no room are dropped, counted and
//! reported. And `msg completions` and `msg man` generate.

mod support;

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use msg_proto::{Kind, Message};
use support::{DEADLINE, Listener, run};

/// One UDP ping and its pong, within the test deadline.
fn udp_ping(peer: &UdpSocket, listener: &Listener, seq: u64) {
    peer.send_to(
        &support::datagram(&Message::new(Kind::Ping, seq, "")),
        listener.addr,
    )
    .unwrap();
    let mut buf = [0; 64];
    let (n, _) = peer.recv_from(&mut buf).expect("the ping is answered");
    let pong = msg_proto::decode(bytes::Bytes::copy_from_slice(&buf[..n])).unwrap();
    assert_eq!((pong.kind, pong.seq), (Kind::Pong, seq));
}

#[test]
fn a_blocked_stdout_drops_udp_messages_but_answers_pings() {
    let (mut listener, stdout) = Listener::start_unread("--udp", &[]);
    let peer = UdpSocket::bind("127.0.0.1:0").unwrap();
    peer.set_read_timeout(Some(DEADLINE)).unwrap();
    // 4 MiB of messages: far more than the pipe (64 KiB) and the
    // listener's queue (1 MiB) hold. A ping after each batch keeps the
    // sender from outrunning the socket buffer, and proves the listener
    // still answers while its stdout is full.
    let body = vec![b'u'; 1000];
    for batch in 0..64u64 {
        for i in 0..64 {
            let data = Message::new(Kind::Data, batch * 64 + i, body.clone());
            peer.send_to(&support::datagram(&data), listener.addr)
                .unwrap();
        }
        udp_ping(&peer, &listener, batch);
    }
    listener
        .process
        .wait_for_stderr("the output is not keeping up");

    // Drain stdout: what was queued comes out, and then new messages do.
    let (lines_tx, lines) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    let last = Message::new(Kind::Data, 1_000_000, "the last one");
    let mut printed = 0usize;
    let mut resumed = false;
    for seq in 0..200 {
        peer.send_to(&support::datagram(&last), listener.addr)
            .unwrap();
        udp_ping(&peer, &listener, 10_000 + seq);
        while let Ok(line) = lines.recv_timeout(Duration::from_millis(20)) {
            printed += 1;
            resumed |= line == "the last one";
        }
        if resumed {
            break;
        }
    }
    let finished = listener.process.kill();
    assert!(resumed, "printing resumed after {printed} lines");
    assert!(
        printed < 64 * 64,
        "{printed} lines: some messages must have been dropped"
    );
    assert!(
        printed > 60,
        "{printed} lines: the queued messages are printed"
    );
    assert!(
        finished.stderr.contains("dropped="),
        "the warning counts the drops: {}",
        finished.stderr
    );
}

#[test]
fn a_blocked_stdout_slows_tcp_senders_and_keeps_serving_the_rest() {
    let (listener, _stdout) = Listener::start_unread("--tcp", &[]);
    let mut sender = TcpStream::connect(listener.addr).unwrap();
    sender
        .set_write_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    // Write 64 KiB messages until a write stalls. Without backpressure the
    // listener would take all 256 MiB into memory; with it, the pipe, the
    // queue and the socket buffers fill and TCP's flow control stops us.
    let message = support::frame(&Message::new(Kind::Data, 1, vec![b't'; 64 * 1024]));
    let mut written = 0usize;
    let stalled = loop {
        if written >= 256 * 1024 * 1024 {
            break false;
        }
        match sender.write(&message) {
            Ok(n) => written += n,
            Err(err) if matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                break true;
            }
            Err(err) => panic!("write failed: {err}"),
        }
    };
    assert!(stalled, "{written} bytes went in without a stall");
    assert!(
        written < 64 * 1024 * 1024,
        "stalled only after {written} bytes"
    );

    // Meanwhile a new connection is accepted and its ping answered.
    let mut other = TcpStream::connect(listener.addr).unwrap();
    other.set_read_timeout(Some(DEADLINE)).unwrap();
    other
        .write_all(&support::frame(&Message::new(
            Kind::Ping,
            9,
            "still there?",
        )))
        .unwrap();
    let mut prefix = [0; 4];
    other.read_exact(&mut prefix).expect("the ping is answered");
    let mut reply = vec![0; u32::from_be_bytes(prefix) as usize];
    other.read_exact(&mut reply).unwrap();
    let pong = msg_proto::decode(reply.into()).unwrap();
    assert_eq!(
        (pong.kind, pong.seq, &pong.body[..]),
        (Kind::Pong, 9, &b"still there?"[..])
    );
}

#[test]
fn completions_and_the_man_page_generate() {
    for shell in ["bash", "zsh", "fish", "powershell", "elvish"] {
        let out = run(&["completions", shell], None);
        assert_eq!(out.code(), Some(0), "{shell}: {}", out.stderr);
        assert!(out.stdout.contains("listen"), "{shell}");
    }
    let out = run(&["man"], None);
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
    assert!(out.stdout.contains(".TH msg 1"), "{}", &out.stdout[..200]);
    let out = run(&["completions", "tcsh"], None);
    assert_eq!(out.code(), Some(2));

    // Audit, round five: into a full disk (or a closed pipe) completions
    // panicked, exit 101; now it says so, exit 1, as man does.
    // clap's own help and version too: they exited 0 with the text lost.
    // Audit, round seven: a reply and a report into a full disk said only
    // `No space left on device`.
    let echo = Listener::start("--tcp", "127.0.0.1", &["--reply", "echo"]);
    let addr = echo.addr_arg();
    let reply = ["send", "--tcp", "--reply", &addr, "hi"];
    let report = [
        "bench",
        "--udp",
        "--sizes",
        "64",
        "--runs",
        "1",
        "--duration",
        "50ms",
        "--warmup",
        "10ms",
        "--json",
    ];
    for args in [
        &["completions", "bash"][..],
        &["man"],
        &["--help"],
        &["--version"],
        &reply,
        &report,
    ] {
        let full = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap();
        let out = support::msg().args(args).stdout(full).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(
            stderr.contains("cannot write to stdout: No space left on device"),
            "{args:?}: {stderr}"
        );
    }
}

/// `msg listen | head -1`: stdout closed under the listener is a stop
/// like any other, exit 0 with the summary on stderr (where it was bound,
/// not for the closed pipe), on both engines. It used to exit 0 without
/// a word.
#[test]
fn a_closed_stdout_stops_the_listener_with_its_summary() {
    for io in ["tokio", "blocking"] {
        let (listener, stdout) = Listener::start_unread("--udp", &["--io", io]);
        let peer = UdpSocket::bind("127.0.0.1:0").unwrap();
        let data = |seq| support::datagram(&Message::new(Kind::Data, seq, "a line"));
        peer.send_to(&data(1), listener.addr).unwrap();
        let mut stdout = BufReader::new(stdout);
        let mut first = String::new();
        stdout.read_line(&mut first).unwrap();
        assert_eq!(first, "a line\n", "{io}");
        drop(stdout);
        // The next message printed finds the pipe closed.
        for seq in 2..7 {
            peer.send_to(&data(seq), listener.addr).unwrap();
            thread::sleep(Duration::from_millis(20));
        }
        let finished = listener.process.finish();
        assert_eq!(finished.code(), Some(0), "{io}: {}", finished.stderr);
        // One printed; the one that met the closed pipe was not.
        assert!(
            finished.stderr.contains("stdout was closed: stopping")
                && finished.stderr.contains("msg listen: 1 message (6 bytes)"),
            "{io}: {}",
            finished.stderr
        );
    }
}

/// A listener whose stderr nobody reads (a full pipe) goes on serving and
/// stops on SIGTERM: its logs, and its own lines after them, wait in a
/// queue of their own, the last of them a second at most at the end. The
/// first warning into the full pipe used to stop it answering anyone,
/// and SIGTERM with it (audit, round seven).
#[test]
fn a_stderr_nobody_reads_holds_up_neither_serving_nor_the_stop() {
    stderr_nobody_reads("tokio");
    stderr_nobody_reads("blocking");
}

/// [`a_stderr_nobody_reads_holds_up_neither_serving_nor_the_stop`] on the
/// engine `io`.
fn stderr_nobody_reads(io: &str) {
    use std::process::Stdio;
    let (read, full) = full_pipe();
    let port = UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let mut listener = support::msg()
        .args(["listen", "--udp", "--io", io, &addr.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(full))
        .spawn()
        .unwrap();
    let peer = UdpSocket::bind("127.0.0.1:0").unwrap();
    peer.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let answered = |seq| {
        let ping = support::datagram(&Message::new(Kind::Ping, seq, ""));
        (0..50).any(|_| {
            peer.send_to(&ping, addr).unwrap();
            let mut buf = [0; 64];
            peer.recv_from(&mut buf).is_ok()
        })
    };
    assert!(answered(0), "{io}: the listener never answered");
    // Bytes that are no message: a warning, into the full pipe.
    for _ in 0..3 {
        peer.send_to(b"no message", addr).unwrap();
    }
    for seq in 1..=10 {
        assert!(
            answered(seq),
            "{io}: ping {seq} unanswered after the warning"
        );
    }
    let started = std::time::Instant::now();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &listener.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exited = loop {
        if let Some(status) = listener.try_wait().unwrap() {
            break Some(status);
        }
        if started.elapsed() > Duration::from_secs(5) {
            let _ = listener.kill();
            let _ = listener.wait();
            break None;
        }
        thread::sleep(Duration::from_millis(10));
    };
    drop(read);
    assert!(exited.is_some(), "{io}: no exit within 5 s of SIGTERM");
}

/// A stdout left non-blocking by whoever shares it (`O_NONBLOCK` is the
/// open file's, not msg's: node sets it on its terminal) is waited on as a
/// blocking one is, on both engines and for `msg send --reply`'s replies:
/// the first burst into a full pipe made a listener exit 1, `cannot write
/// to stdout: Resource temporarily unavailable` (audit, round eight).
#[test]
fn a_non_blocking_stdout_is_waited_on_not_a_failure() {
    use std::process::Stdio;
    const LINES: usize = 2000;
    let lines = "a line of twenty-four b\n".repeat(LINES);
    for io in ["tokio", "blocking"] {
        let (read, write) = non_blocking_pipe();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr = format!("127.0.0.1:{port}");
        let count = LINES.to_string();
        let mut cmd = support::msg();
        cmd.args(["listen", "--tcp", "--io", io, "--count", &count, &addr])
            .stdin(Stdio::null())
            .stdout(Stdio::from(write))
            .stderr(Stdio::piped());
        let mut listener = cmd.spawn().unwrap();
        drop(cmd); // its copy of the pipe's write end
        let sent = (0..100).find_map(|_| {
            let sent = run(&["send", "--tcp", &addr], Some(lines.as_bytes()));
            if sent.code() == Some(0) {
                return Some(sent);
            }
            thread::sleep(Duration::from_millis(50));
            None
        });
        assert!(
            sent.is_some(),
            "{io}: the listener never took the messages (or it exited)"
        );
        // The pipe (one page) filled long ago: the listener waits.
        thread::sleep(Duration::from_millis(300));
        let mut printed = Vec::new();
        std::fs::File::from(read).read_to_end(&mut printed).unwrap();
        let status = listener.wait().unwrap();
        let mut stderr = String::new();
        listener
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut stderr)
            .unwrap();
        assert_eq!(status.code(), Some(0), "{io}: {stderr}");
        assert_eq!(printed.len(), lines.len(), "{io}: {stderr}");
    }
    // A client's replies, through stdout outside any printing thread.
    let listener = Listener::start("--tcp", "127.0.0.1", &["--reply", "echo"]);
    let (read, write) = non_blocking_pipe();
    let mut cmd = support::msg();
    cmd.args(["send", "--tcp", "--reply", &listener.addr_arg()])
        .stdin(Stdio::piped())
        .stdout(Stdio::from(write))
        .stderr(Stdio::piped());
    let mut send = cmd.spawn().unwrap();
    drop(cmd);
    let mut stdin = send.stdin.take().unwrap();
    let feed = thread::spawn({
        let lines = lines.clone();
        move || stdin.write_all(lines.as_bytes())
    });
    thread::sleep(Duration::from_millis(300));
    let mut printed = Vec::new();
    std::fs::File::from(read).read_to_end(&mut printed).unwrap();
    feed.join().unwrap().unwrap();
    let status = send.wait().unwrap();
    let mut stderr = String::new();
    send.stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert_eq!(status.code(), Some(0), "send --reply: {stderr}");
    assert_eq!(printed.len(), lines.len(), "send --reply: {stderr}");
}

/// A pipe of one page whose write end is non-blocking: its read end and
/// its write end, for a child's stdout.
fn non_blocking_pipe() -> (std::os::fd::OwnedFd, std::os::fd::OwnedFd) {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors pipe2 writes.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: both are open, and owned by nothing else.
    let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    // SAFETY: fcntl on a descriptor this test owns.
    unsafe {
        libc::fcntl(write.as_raw_fd(), libc::F_SETPIPE_SZ, 4096);
        libc::fcntl(write.as_raw_fd(), libc::F_SETFL, libc::O_NONBLOCK);
    }
    (read, write)
}

/// A pipe of one page, full: its read end (to keep it open, unread) and
/// its write end, for a child's stderr.
fn full_pipe() -> (std::os::fd::OwnedFd, std::fs::File) {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors pipe2 writes.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: both are open, and owned by nothing else.
    let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    let fd = write.as_raw_fd();
    // SAFETY: fcntl on a descriptor this test owns.
    unsafe {
        libc::fcntl(fd, libc::F_SETPIPE_SZ, 4096);
        libc::fcntl(fd, libc::F_SETFL, libc::O_NONBLOCK);
    }
    let mut full = std::fs::File::from(write);
    for _ in 0..1024 {
        match full.write(&[b'x'; 512]) {
            Ok(_) => {}
            Err(err) if err.kind() == ErrorKind::WouldBlock => break,
            Err(err) => panic!("{err}"),
        }
    }
    // Blocking again: the flag is the pipe's, and msg's writes share it.
    // SAFETY: as above.
    unsafe { libc::fcntl(fd, libc::F_SETFL, 0) };
    (read, full)
}

/// A folder of `n` symbolic links, each skipped by `msg send --file`
/// with a line on stderr.
fn links(n: usize) -> std::path::PathBuf {
    let dir = support::fresh_path("links");
    std::fs::create_dir(&dir).unwrap();
    for i in 0..n {
        std::os::unix::fs::symlink("/nonexistent", dir.join(format!("l{i}"))).unwrap();
    }
    dir
}

/// msg's own stderr lines, as many as come, all reach a stderr that is
/// read, however fast they come: 3,000 `skipped` lines of a folder
/// (tracing-appender's queue dropped all but about 1,025). Into a full
/// stderr nobody reads, the send still ends, and its stdout holds only
/// its JSON (tracing-appender wrote `Failed to send shutdown signal to
/// logging worker` there at the end, and panicked on a closed one; audit,
/// round seven).
#[test]
fn every_stderr_line_is_written_and_a_full_stderr_reaches_no_stdout() {
    let dir = links(3000);
    let listener = Listener::start(
        "--tcp",
        "127.0.0.1",
        &[
            "--save-dir",
            support::fresh_path("links-save").to_str().unwrap(),
        ],
    );
    let addr = listener.addr_arg();
    let out = run(
        &["send", "--tcp", &addr, "--file", dir.to_str().unwrap()],
        None,
    );
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
    let skipped = out.stderr.matches("msg send: skipped ").count();
    assert_eq!(
        skipped,
        3000,
        "{}",
        &out.stderr[..out.stderr.len().min(2000)]
    );

    let (read, full) = full_pipe();
    let started = std::time::Instant::now();
    let out = support::msg()
        .args([
            "send",
            "--tcp",
            &addr,
            "--json",
            "--file",
            dir.to_str().unwrap(),
        ])
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::from(full))
        .output()
        .unwrap();
    drop(read);
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!stdout.is_empty());
    for line in stdout.lines() {
        assert!(
            serde_json::from_str::<serde_json::Value>(line).is_ok(),
            "not JSON: {line}"
        );
    }
    drop(listener.process.kill());
}
