//! `--unix`: a Unix stream socket beside UDP and TCP, through send, listen,
//! connect, exec and files, with the listener's socket file (owner-only,
//! removed on exit, a stale one replaced, a live one refused) and the
//! peer's credentials (`SO_PEERCRED`, `--allow-uid`).

mod support;

use std::io::{Read, Write};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::Command;

use support::{Running, fresh_path, msg, run, secret_arg};

/// A socket path of this test's own, in a directory it removes.
struct Dir(PathBuf);

impl Dir {
    fn new() -> Self {
        let dir = fresh_path("unix");
        std::fs::create_dir(&dir).unwrap();
        Self(dir)
    }

    fn join(&self, name: &str) -> String {
        self.0.join(name).to_str().unwrap().to_owned()
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `msg listen --unix PATH -v ARGS`, ready.
fn listen(path: &str, args: &[&str]) -> Running {
    listen_on("--unix", path, args)
}

/// `msg listen TRANSPORT PATH -v ARGS`, ready.
fn listen_on(transport: &str, path: &str, args: &[&str]) -> Running {
    let mut cmd = msg();
    cmd.args(["listen", transport, path, "-v"]).args(args);
    let mut process = Running::spawn(cmd, None);
    process.wait_for_stderr("listening on");
    process
}

/// `msg ARGS` as the user nobody (support's `as_nobody`), with `dir`
/// opened to others; `None`, said on stderr, where this test cannot run
/// one.
fn msg_as_nobody(dir: &Dir, args: &[&str]) -> Option<Command> {
    let mut nobody = support::as_nobody()?;
    std::fs::set_permissions(&dir.0, std::fs::Permissions::from_mode(0o755)).unwrap();
    nobody.arg(env!("CARGO_BIN_EXE_msg")).args(args);
    Some(nobody)
}

/// Both connection transports at a path.
const UNIX: [&str; 2] = ["--unix", "--seqpacket"];

/// `body` framed as `msg send --unix-dgram` sends it, caught in `dir`,
/// to replay from sockets of the test's own.
fn framed_by_msg(dir: &Dir, body: &str) -> Vec<u8> {
    let capture = dir.join("capture");
    let catcher = std::os::unix::net::UnixDatagram::bind(&capture).unwrap();
    catcher
        .set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    let out = run(&["send", "--unix-dgram", &capture, body], None);
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
    let mut buf = [0; 2048];
    let len = catcher.recv(&mut buf).unwrap();
    buf[..len].to_vec()
}

fn is_socket(path: &str) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|meta| meta.file_type().is_socket())
}

#[test]
fn messages_and_replies_go_over_a_unix_socket_on_both_engines() {
    let dir = Dir::new();
    for (transport, io) in UNIX
        .into_iter()
        .flat_map(|t| [(t, "tokio"), (t, "blocking")])
    {
        let path = dir.join(&format!("{io}{transport}"));
        let args = ["--io", io, "--reply", "upper", "--count", "2"];
        let listener = listen_on(transport, &path, &args);
        let out = run(
            &["send", transport, &path, "--reply", "hello", "world"],
            None,
        );
        assert_eq!(out.code(), Some(0), "{io}: {}", out.stderr);
        assert_eq!(out.lines(), ["HELLO", "WORLD"], "{io}");
        let done = listener.finish();
        assert_eq!(done.code(), Some(0), "{io}: {}", done.stderr);
        assert_eq!(done.lines(), ["hello", "world"], "{io}");
        assert!(done.stderr.contains("1 connection"), "{}", done.stderr);
        assert!(!Path::new(&path).exists(), "{io}: the socket file was left");
    }
}

#[test]
fn the_json_names_who_connected() {
    let dir = Dir::new();
    let path = dir.join("s");
    let listener = listen(&path, &["--json", "--count", "1"]);
    let out = run(&["send", "--unix", &path, "hi"], None);
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
    let done = listener.finish();
    let line: serde_json::Value = serde_json::from_str(done.lines()[0]).unwrap();
    let uid = nix::unistd::Uid::effective().as_raw();
    assert_eq!(line["uid"], uid, "{line}");
    assert!(line["pid"].as_u64().is_some(), "{line}");
    assert!(line["gid"].as_u64().is_some(), "{line}");
    assert!(line["peer"].as_str().unwrap().starts_with("pid "), "{line}");
}

/// A datagram has no connection to ask `SO_PEERCRED` of; the kernel
/// says who sent each one (`SO_PASSCRED`), and the JSON names it as a
/// stream's peer, on both engines and raw. It said nothing.
#[test]
fn the_json_names_who_sent_each_unix_datagram() {
    let dir = Dir::new();
    let uid = nix::unistd::Uid::effective().as_raw();
    for (i, args) in [&["--io", "tokio"][..], &["--io", "blocking"], &["--raw"]]
        .into_iter()
        .enumerate()
    {
        let path = dir.join(&format!("d{i}"));
        let mut all = vec!["--json", "--count", "1"];
        all.extend_from_slice(args);
        let listener = listen_on("--unix-dgram", &path, &all);
        let out = run(&["send", "--unix-dgram", &path, "hi"], None);
        assert_eq!(out.code(), Some(0), "{args:?}: {}", out.stderr);
        let done = listener.finish();
        let line: serde_json::Value = serde_json::from_str(done.lines()[0]).unwrap();
        assert_eq!(line["uid"], uid, "{args:?}: {line}");
        assert!(line["pid"].as_u64().is_some(), "{args:?}: {line}");
        assert!(line["gid"].as_u64().is_some(), "{args:?}: {line}");
    }
}

/// `--allow-uid` over Unix datagrams: another user's datagram is dropped
/// unread, said in the log, and the rest are served; it was refused as a
/// usage error ("a Unix datagram has no connection").
#[test]
fn allow_uid_drops_other_users_datagrams() {
    let dir = Dir::new();
    let uid = nix::unistd::Uid::effective().as_raw();
    for io in ["tokio", "blocking"] {
        // Ourselves, not on the list: nothing answers.
        let path = dir.join(&format!("not-{io}"));
        let other = uid.wrapping_add(4242).to_string();
        let listener = listen_on(
            "--unix-dgram",
            &path,
            &["--io", io, "--allow-uid", &other, "--reply", "echo"],
        );
        let args = [
            "send",
            "--unix-dgram",
            &path,
            "--reply",
            "--timeout",
            "300ms",
        ];
        let out = run(&[&args[..], &["x"]].concat(), None);
        assert_eq!(out.code(), Some(1), "{io}: {}", out.stderr);
        assert!(
            out.stderr.contains("no reply to message 1"),
            "{}",
            out.stderr
        );
        let done = listener.signal("TERM");
        assert!(
            done.stderr
                .contains(&format!("dropped a datagram: uid {uid} is not allowed")),
            "{io}: {}",
            done.stderr
        );
        assert!(done.lines().is_empty(), "{io}: {:?}", done.lines());

        // On the list: served.
        let path = dir.join(&format!("ok-{io}"));
        let listener = listen_on(
            "--unix-dgram",
            &path,
            &["--io", io, "--allow-uid", &uid.to_string(), "--count", "1"],
        );
        let out = run(&["send", "--unix-dgram", &path, "y"], None);
        assert_eq!(out.code(), Some(0), "{io}: {}", out.stderr);
        assert_eq!(listener.finish().lines(), ["y"], "{io}");
    }

    // Another user, really: nobody, where we may. Its datagram is
    // dropped; ours after it is the one shown.
    let path = dir.join("nobody");
    let Some(nobody) = msg_as_nobody(&dir, &["send", "--unix-dgram", &path, "from nobody"]) else {
        return;
    };
    let listener = listen_on(
        "--unix-dgram",
        &path,
        &[
            "--allow-uid",
            &uid.to_string(),
            "--socket-mode",
            "666",
            "--count",
            "1",
        ],
    );
    let out = Running::spawn(nobody, None).finish();
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
    let out = run(&["send", "--unix-dgram", &path, "from us"], None);
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
    let done = listener.finish();
    assert_eq!(done.lines(), ["from us"]);
    assert!(
        done.stderr
            .contains("dropped a datagram: uid 65534 is not allowed"),
        "{}",
        done.stderr
    );
}

#[test]
fn raw_mode_speaks_to_plain_unix_sockets_both_ways() {
    let dir = Dir::new();
    // A plain client into msg's raw listener.
    let path = dir.join("listen");
    let listener = listen(&path, &["--raw", "--reply", "echo"]);
    let mut stream = UnixStream::connect(&path).unwrap();
    stream.set_read_timeout(Some(support::DEADLINE)).unwrap();
    stream.write_all(b"bytes as they are").unwrap();
    let mut back = [0u8; 17];
    stream.read_exact(&mut back).unwrap();
    assert_eq!(&back, b"bytes as they are");
    drop(stream);
    let done = listener.signal("TERM");
    assert!(done.stdout.contains("bytes as they are"), "{}", done.stdout);

    // msg's raw client into a plain listener: nc -U's way.
    let path = dir.join("plain");
    let server = UnixListener::bind(&path).unwrap();
    let peer = std::thread::spawn(move || {
        let (mut stream, _) = server.accept().unwrap();
        let mut got = Vec::new();
        stream.read_to_end(&mut got).unwrap();
        got
    });
    let out = run(&["send", "--unix", "--raw", &path, "raw"], None);
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
    assert_eq!(peer.join().unwrap(), b"raw");
}

#[test]
fn a_secret_a_file_and_a_command_go_over_a_unix_socket() {
    for transport in UNIX {
        secret_file_and_command_over(transport);
    }
}

fn secret_file_and_command_over(transport: &str) {
    let dir = Dir::new();
    let path = dir.join("s");
    let save = fresh_path("unix-save");
    let secret = secret_arg(b"the unix secret");
    let listener = listen_on(
        transport,
        &path,
        &[
            "--secret-file",
            &secret,
            "--save-dir",
            save.to_str().unwrap(),
            "--exec",
            "--reply",
            "echo",
        ],
    );
    let out = run(
        &[
            "send",
            transport,
            &path,
            "--secret-file",
            &secret,
            "--reply",
            "tagged",
        ],
        None,
    );
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
    assert_eq!(out.lines(), ["tagged"]);

    let wrong = secret_arg(b"not the unix secret");
    let out = run(
        &["send", transport, &path, "--secret-file", &wrong, "x"],
        None,
    );
    assert_eq!(out.code(), Some(1), "{}", out.stderr);
    assert!(
        out.stderr.contains("authentication failed"),
        "{}",
        out.stderr
    );

    let file = dir.join("data.bin");
    let content: Vec<u8> = (0..200_000u32).map(|n| (n % 251) as u8).collect();
    std::fs::write(&file, &content).unwrap();
    let out = run(
        &[
            "send",
            transport,
            &path,
            "--secret-file",
            &secret,
            "--file",
            &file,
        ],
        None,
    );
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
    assert_eq!(std::fs::read(save.join("data.bin")).unwrap(), content);

    let out = run(
        &[
            "exec",
            transport,
            "--secret-file",
            &secret,
            &path,
            "--",
            "echo",
            "ran",
        ],
        None,
    );
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
    assert_eq!(out.lines(), ["ran"]);
    listener.signal("TERM");
    let _ = std::fs::remove_dir_all(&save);
}

#[test]
fn connect_talks_both_ways_over_a_unix_socket() {
    let dir = Dir::new();
    let path = dir.join("s");
    let _listener = listen(&path, &["--reply", "upper"]);
    let out = run(&["connect", "--unix", &path], Some(b"one\ntwo\n"));
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
    assert_eq!(out.lines(), ["ONE", "TWO"]);
}

#[test]
fn a_seqpacket_keeps_each_send_whole_and_apart() {
    use socket2::{Domain, SockAddr, Socket, Type};
    let dir = Dir::new();
    let path = dir.join("s");
    let listener = listen_on(
        "--seqpacket",
        &path,
        &["--raw", "--reply", "echo", "--json"],
    );
    let client = Socket::new(Domain::UNIX, Type::SEQPACKET, None).unwrap();
    client.connect(&SockAddr::unix(&path).unwrap()).unwrap();
    client.set_read_timeout(Some(support::DEADLINE)).unwrap();
    // Two quick sends, that a byte stream could glue: two packets, two
    // messages, two echoes.
    let mut client = std::fs::File::from(std::os::fd::OwnedFd::from(client));
    client.write_all(b"hello").unwrap();
    client.write_all(b"egg").unwrap();
    let mut buf = [0u8; 64];
    assert_eq!(client.read(&mut buf).unwrap(), 5);
    assert_eq!(&buf[..5], b"hello");
    assert_eq!(client.read(&mut buf).unwrap(), 3);
    drop(client);
    let done = listener.signal("TERM");
    let lens: Vec<u64> = done
        .lines()
        .iter()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter_map(|v| v["len"].as_u64())
        .collect();
    assert_eq!(lens, [5, 3], "{}", done.stdout);
}

#[test]
fn the_socket_file_is_owner_only_and_removed_on_sigterm_and_sigint() {
    let dir = Dir::new();
    for signal in ["TERM", "INT"] {
        let path = dir.join(signal);
        let listener = listen(&path, &[]);
        let meta = std::fs::symlink_metadata(&path).unwrap();
        assert!(meta.file_type().is_socket());
        assert_eq!(meta.permissions().mode() & 0o777, 0o600, "{signal}");
        let done = listener.signal(signal);
        assert_eq!(done.code(), Some(0), "{signal}: {}", done.stderr);
        assert!(
            !Path::new(&path).exists(),
            "{signal}: the socket file was left"
        );
    }
    // The mode asked for, exactly, whatever the umask.
    let path = dir.join("shared");
    let listener = listen(&path, &["--socket-mode", "660"]);
    let mode = std::fs::symlink_metadata(&path)
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o660);
    listener.signal("TERM");
}

#[test]
fn a_stale_file_is_replaced_a_live_one_refused_and_nothing_else_touched() {
    let dir = Dir::new();
    let path = dir.join("s");
    // A listener that died without removing its file.
    drop(UnixListener::bind(&path).unwrap());
    assert!(is_socket(&path));
    let listener = listen(&path, &[]);
    let out = run(&["listen", "--unix", &path], None);
    assert_eq!(out.code(), Some(1), "{}", out.stderr);
    assert!(out.stderr.contains("is in use"), "{}", out.stderr);
    assert!(is_socket(&path), "the live listener's file was touched");
    listener.signal("TERM");

    let plain = dir.join("plain");
    std::fs::write(&plain, "keep me").unwrap();
    let out = run(&["listen", "--unix", &plain], None);
    assert_eq!(out.code(), Some(1), "{}", out.stderr);
    assert!(out.stderr.contains("is not a socket"), "{}", out.stderr);
    assert_eq!(std::fs::read(&plain).unwrap(), b"keep me");
}

#[test]
fn a_path_longer_than_sun_path_is_a_usage_error_naming_the_limit() {
    let long = format!("/tmp/{}", "a".repeat(110));
    for args in [
        vec!["listen", "--unix", &long],
        vec!["send", "--unix", &long, "x"],
    ] {
        let out = run(&args, None);
        assert_eq!(out.code(), Some(2), "{args:?}: {}", out.stderr);
        assert!(out.stderr.contains("115 bytes"), "{}", out.stderr);
        assert!(out.stderr.contains("at most 107"), "{}", out.stderr);
    }
    support::assert_usage_error(&["listen", "--unix"], "--unix needs the socket's path");
    support::assert_usage_error(
        &["listen", "--tcp", "--allow-uid", "0"],
        "are for Unix socket listeners (--unix, --unix-dgram, --seqpacket)",
    );
    support::assert_usage_error(
        &["listen", "--unix", "s", "--socket-mode", "999"],
        "a file mode in octal",
    );
}

#[test]
fn an_abstract_name_needs_no_file() {
    let name = format!("@msg-test-{}", std::process::id());
    let listener = listen(&name, &["--count", "1"]);
    let out = run(&["send", "--unix", &name, "abstract"], None);
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
    assert_eq!(listener.finish().lines(), ["abstract"]);
}

#[test]
fn allow_uid_refuses_other_users() {
    let dir = Dir::new();
    let path = dir.join("s");
    let uid = nix::unistd::Uid::effective().as_raw();
    let other = uid.wrapping_add(4242);
    // Ourselves, not on the list.
    let listener = listen(&path, &["--allow-uid", &other.to_string()]);
    let out = run(&["send", "--unix", &path, "x", "--reply"], None);
    assert_eq!(out.code(), Some(1), "{}", out.stderr);
    assert!(
        out.stderr
            .contains(&format!("this listener does not serve uid {uid}")),
        "{}",
        out.stderr
    );
    listener.signal("TERM");

    // Another user, really: nobody, where we may.
    let path = dir.join("t");
    let Some(nobody) = msg_as_nobody(&dir, &["send", "--unix", &path, "x", "--reply"]) else {
        return;
    };
    let listener = listen(
        &path,
        &["--allow-uid", &uid.to_string(), "--socket-mode", "666"],
    );
    let out = Running::spawn(nobody, None).finish();
    assert_eq!(out.code(), Some(1), "{}", out.stderr);
    assert!(
        out.stderr
            .contains("this listener does not serve uid 65534"),
        "{}",
        out.stderr
    );
    let done = listener.signal("TERM");
    assert!(
        done.stderr.contains("uid 65534 is not allowed"),
        "{}",
        done.stderr
    );
}

#[test]
fn unix_datagrams_carry_messages_replies_raw_and_a_secret() {
    let dir = Dir::new();
    let path = dir.join("d");
    let listener = listen_on("--unix-dgram", &path, &["--reply", "upper", "--count", "2"]);
    let meta = std::fs::symlink_metadata(&path).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    let out = run(
        &["send", "--unix-dgram", &path, "--reply", "one", "two"],
        None,
    );
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
    assert_eq!(out.lines(), ["ONE", "TWO"]);
    assert_eq!(listener.finish().lines(), ["one", "two"]);
    assert!(!Path::new(&path).exists(), "the socket file was left");

    // Raw: each datagram as it is, answered as it is.
    let listener = listen_on("--unix-dgram", &path, &["--raw", "--reply", "echo"]);
    let out = run(
        &["send", "--unix-dgram", "--raw", &path, "--reply", "bare"],
        None,
    );
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
    assert_eq!(out.lines(), ["bare"]);
    listener.signal("TERM");

    // A secret: the right one is answered, the wrong one dropped.
    let secret = secret_arg(b"the datagram secret");
    let listener = listen_on(
        "--unix-dgram",
        &path,
        &["--secret-file", &secret, "--reply", "echo"],
    );
    let out = run(
        &[
            "send",
            "--unix-dgram",
            &path,
            "--secret-file",
            &secret,
            "--reply",
            "tagged",
        ],
        None,
    );
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
    assert_eq!(out.lines(), ["tagged"]);
    let wrong = secret_arg(b"not the datagram secret");
    let out = run(
        &[
            "send",
            "--unix-dgram",
            &path,
            "--secret-file",
            &wrong,
            "--reply",
            "--timeout",
            "300ms",
            "forged",
        ],
        None,
    );
    assert_eq!(out.code(), Some(1), "{}", out.stderr);
    let done = listener.signal("TERM");
    assert!(done.stderr.contains("1 unauthenticated"), "{}", done.stderr);
}

/// What UDP cannot promise: a sender much faster than the listener loses
/// nothing, because a full receiver holds it up instead of dropping.
#[test]
fn a_unix_datagram_sender_loses_nothing_to_a_slow_listener() {
    const N: usize = 3000;
    let dir = Dir::new();
    let path = dir.join("d");
    let count = N.to_string();
    let listener = listen_on("--unix-dgram", &path, &["--count", &count]);
    let lines: String = (1..=N).map(|n| format!("message {n}\n")).collect();
    let out = run(&["send", "--unix-dgram", &path], Some(lines.as_bytes()));
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
    let done = listener.finish();
    assert_eq!(done.lines().len(), N, "{}", done.stderr);
    assert_eq!(done.lines()[N - 1], format!("message {N}"));
}

/// A Unix datagram is never lost: a sender whose receiver's queue is full
/// waits. A listener must not: a peer that reads none of its answers
/// would otherwise stop the one socket every other peer is served on. Its
/// answers are dropped, said in a rate-limited warning, and the listener
/// serves on (on both engines, framed and raw).
#[test]
fn a_peer_that_reads_no_answers_does_not_stop_a_unix_datagram_listener() {
    use std::os::unix::net::UnixDatagram;
    let dir = Dir::new();
    let framed = framed_by_msg(&dir, "answer me");
    for (io, raw) in [("tokio", false), ("blocking", false), ("tokio", true)] {
        let path = dir.join("d");
        let mut args = vec!["--reply", "echo", "--io", io];
        if raw {
            args.push("--raw");
        }
        let listener = listen_on("--unix-dgram", &path, &args);
        let hog_path = dir.join("hog");
        let hog = UnixDatagram::bind(&hog_path).unwrap();
        hog.connect(&path).unwrap();
        hog.set_nonblocking(true).unwrap();
        // Far more answers than a queue and a send buffer hold, none read.
        let (mut sent, started) = (0, std::time::Instant::now());
        while sent < 3000 && started.elapsed() < std::time::Duration::from_secs(10) {
            match hog.send(&framed) {
                Ok(_) => sent += 1,
                Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => {
                    std::thread::sleep(std::time::Duration::from_millis(1));
                }
                Err(err) => panic!("{err}"),
            }
        }
        let mut send = vec!["send", "--unix-dgram", &path, "still served"];
        if raw {
            send.insert(2, "--raw");
        }
        let out = run(&send, None);
        assert_eq!(out.code(), Some(0), "{io} raw {raw}: {}", out.stderr);
        let done = listener.signal("TERM");
        assert!(
            done.stdout.contains("still served"),
            "{io} raw {raw}: the listener stopped serving: {}",
            done.stderr
        );
        assert!(
            done.stderr.contains("the answer was dropped"),
            "{io} raw {raw}: {}",
            done.stderr
        );
        drop(hog);
        let _ = std::fs::remove_file(&hog_path);
    }
}

/// Audit, round four: a sender's address is the path it bound, and an
/// answer sent by that name followed a link put in the socket's place, to
/// a socket the sender itself may not write to. The answer now goes to
/// the socket at that path or nowhere; a sender bound to a path (as `nc
/// -uU` binds one) is still answered.
#[test]
fn an_answer_never_follows_a_link_put_in_a_senders_place() {
    use std::os::unix::net::UnixDatagram;
    use std::time::Duration;
    let dir = Dir::new();
    let framed = framed_by_msg(&dir, "answer me");
    let mut buf = [0; 2048];
    let victim = UnixDatagram::bind(dir.join("victim")).unwrap();
    victim
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    for io in ["tokio", "blocking"] {
        let path = dir.join(&format!("d-{io}"));
        let listener = listen_on("--unix-dgram", &path, &["--reply", "echo", "--io", io]);
        let honest = UnixDatagram::bind(dir.join(&format!("honest-{io}"))).unwrap();
        honest
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        // The sender's socket keeps the name it bound; the name itself
        // now leads, through a link, to the victim's socket.
        let named = dir.join(&format!("attacker-{io}"));
        let attacker = UnixDatagram::bind(&named).unwrap();
        std::fs::rename(&named, format!("{named}-moved")).unwrap();
        std::os::unix::fs::symlink(dir.join("victim"), &named).unwrap();
        attacker.send_to(&framed, &path).unwrap();
        // Answered in order: once the honest sender has its answer, the
        // attacker's was sent, or dropped.
        honest.send_to(&framed, &path).unwrap();
        let len = honest.recv(&mut buf).unwrap();
        assert!(
            buf[..len].ends_with(b"answer me"),
            "{io}: {:?}",
            &buf[..len]
        );
        assert!(
            victim.recv(&mut buf).is_err(),
            "{io}: the victim was written"
        );
        let done = listener.signal("TERM");
        assert!(
            done.stderr
                .contains("is not a socket (a link put in its place?): the answer was dropped"),
            "{io}: {}",
            done.stderr
        );
    }
}

/// Audit, round four: a client that asks for a stream back over a Unix
/// socket, and reads it as fast as it comes (big reads, nothing decoded),
/// held the listener's one thread: its writes never waited, so never gave
/// the thread back, and other clients waited 8 to 15 s for an answer. Now
/// each write spends the task's budget, and the others are answered while
/// it streams.
#[test]
fn a_stream_back_over_a_unix_socket_does_not_starve_other_clients() {
    use std::time::{Duration, Instant};
    let dir = Dir::new();
    let path = dir.join("s");
    let listener = listen_on("--unix", &path, &["--reply", "echo"]);
    let mut hog = UnixStream::connect(&path).unwrap();
    // Quiet for half a second once the stream is over: done.
    hog.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let request = msg_proto::SendRequest {
        duration: Duration::from_secs(2),
        size: 0,
    };
    let mut ask = msg_proto::Message::new(msg_proto::Kind::Ping, 1, request.to_body().to_vec());
    ask.flags = msg_proto::FLAG_SEND;
    hog.write_all(&support::frame(&ask)).unwrap();
    let reading = std::thread::spawn(move || {
        let mut buf = vec![0u8; 8 << 20];
        let started = Instant::now();
        let mut got = 0usize;
        while started.elapsed() < Duration::from_secs(10) {
            match hog.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => got += n,
            }
        }
        got
    });
    // Well into the stream back.
    std::thread::sleep(Duration::from_millis(500));
    for _ in 0..3 {
        let started = Instant::now();
        let out = run(
            &[
                "send",
                "--unix",
                "--reply",
                "--timeout",
                "2s",
                &path,
                "still here",
            ],
            None,
        );
        assert_eq!(
            (out.code(), out.stdout.as_str()),
            (Some(0), "still here\n"),
            "after {:?}: {}",
            started.elapsed(),
            out.stderr
        );
    }
    assert!(reading.join().unwrap() > 0, "the stream came");
    drop(listener.signal("TERM"));
}

#[test]
fn a_unix_datagram_over_the_send_buffer_is_refused_naming_the_limit() {
    let dir = Dir::new();
    let path = dir.join("d");
    let _listener = listen_on("--unix-dgram", &path, &[]);
    let line = "a".repeat(600_000) + "\n";
    let out = run(&["send", "--unix-dgram", &path], Some(line.as_bytes()));
    assert_eq!(out.code(), Some(1), "{}", out.stderr);
    assert!(
        out.stderr.contains("a Unix datagram holds here"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("SO_SNDBUF"), "{}", out.stderr);
}

/// Raw stdin over seqpacket goes as it is read, each read one packet of at
/// most the largest, every byte kept: a line longer than a packet was
/// refused, and each packet lost its newline (audit, round thirteen).
#[test]
fn raw_seqpacket_stdin_goes_as_read_in_packets_that_fit() {
    let dir = Dir::new();
    let path = dir.join("s");
    let listener = listen_on("--seqpacket", &path, &["--raw"]);
    let data = "p".repeat(600_000) + "\n\nq";
    let out = run(
        &["send", "--seqpacket", "--raw", &path],
        Some(data.as_bytes()),
    );
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
    let done = listener.signal("TERM");
    // Each packet is shown with a newline after it.
    let packets = done.stdout.matches("p\n").count();
    assert!(packets >= 2, "{packets} packets");
    let shown: String = done
        .stdout
        .split_inclusive('\n')
        .filter(|line| line.starts_with('p'))
        .map(|line| line.trim_end_matches('\n'))
        .collect();
    assert_eq!(shown.len(), 600_000);
    assert!(
        done.stdout.ends_with("\n\nq\n"),
        "{:?}",
        &done.stdout[done.stdout.len() - 8..]
    );
}

/// An empty raw message over seqpacket is refused, not sent: its receiver
/// (msg's, socat's) reads an empty packet as the connection's end. It
/// failed as `write zero` after the messages before it (audit, round
/// eight). As an argument, a usage error before anything is sent. Stdin
/// has no empty lines to refuse: it goes as read, an empty line's newline
/// with the rest, for `msg send` and `msg connect`.
#[test]
fn an_empty_raw_seqpacket_message_is_refused_not_sent() {
    let dir = Dir::new();
    let path = dir.join("s");
    let listener = listen_on("--seqpacket", &path, &["--raw", "--count", "2"]);
    support::assert_usage_error(
        &["send", "--seqpacket", "--raw", &path, "x", "", "y"],
        "message 2 is empty: an empty seqpacket packet reads as the end of the connection",
    );
    for command in ["send", "connect"] {
        let out = run(&[command, "--seqpacket", "--raw", &path], Some(b"a\n\nb\n"));
        assert_eq!(out.code(), Some(0), "{command}: {}", out.stderr);
    }
    assert_eq!(listener.finish().stdout, "a\n\nb\n\na\n\nb\n\n");
}

/// A peer that sends and goes without reading the answers has every
/// message shown over a Unix stream too, on both engines, where the
/// first answer's write failed at once (`EPIPE`) and nothing was shown
/// (audit, round ten; TCP's cases are in tests/hardening.rs).
#[test]
fn a_peer_that_sends_and_goes_has_every_message_shown_over_a_unix_stream() {
    let dir = Dir::new();
    let bytes: Vec<u8> = (1..=20)
        .flat_map(|i| {
            support::frame(&msg_proto::Message::new(
                msg_proto::Kind::Data,
                i,
                format!("m{i:02}"),
            ))
        })
        .collect();
    let expected: String = (1..=20).map(|i| format!("m{i:02}\n")).collect();
    for engine in ["tokio", "blocking"] {
        let path = dir.join(engine);
        let listener = listen(&path, &["--reply", "echo", "--count", "20", "--io", engine]);
        let mut stream = UnixStream::connect(&path).unwrap();
        stream.write_all(&bytes).unwrap();
        drop(stream);
        let out = listener.finish();
        assert_eq!(out.stdout, expected, "{engine}: {}", out.stderr);
    }
}
