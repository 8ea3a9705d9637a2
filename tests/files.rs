//! `msg send --file` and `msg listen --save-dir`, with the real binary on
//! loopback: files arrive whole and verified or not at all, under the name
//! the receiver allows, inside the directory it was given.

mod support;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;

use bytes::Bytes;
use msg_proto::file::{FileEnd, FileHeader, FileName, FileResult, HashAlgorithm, chunk};
use msg_proto::{Kind, Message};
use support::{DEADLINE, Listener, run};

/// A fresh, empty directory under the temporary directory.
fn fresh_dir(what: &str) -> PathBuf {
    let dir = support::fresh_path(&format!("files-{what}"));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Bytes that are not all alike, so that a shifted or swapped chunk shows.
fn content(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 + i / 977) as u8).collect()
}

/// Makes a FIFO at `path` (`mkfifo`, which CI installs with coreutils).
fn mkfifo(path: &Path) {
    assert!(Command::new("mkfifo").arg(path).status().unwrap().success());
}

fn write_file(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

/// What is in `dir`, sorted, temporary files included.
fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

/// `b3sum`'s hash of `path`; CI installs b3sum, elsewhere its absence
/// skips the comparison.
fn b3sum(path: &Path) -> Option<String> {
    match Command::new("b3sum").arg("--no-names").arg(path).output() {
        Ok(out) => Some(String::from_utf8(out.stdout).unwrap().trim().to_owned()),
        Err(_) => {
            assert!(std::env::var_os("CI").is_none(), "b3sum is not installed");
            support::skip("b3sum is not installed: the hashes are not compared with it");
            None
        }
    }
}

fn save_dir_listener(dir: &Path, args: &[&str]) -> Listener {
    let mut all = vec!["--save-dir", dir.to_str().unwrap()];
    all.extend_from_slice(args);
    Listener::start("--tcp", "127.0.0.1", &all)
}

/// Sends `path` (a file or a folder) with the real binary, with `extra`
/// flags.
fn send_file(listener: &Listener, path: &Path, extra: &[&str]) -> support::Finished {
    let mut args = vec!["send", "--tcp"];
    let addr = listener.addr_arg();
    args.push(&addr);
    args.extend(["--file", path.to_str().unwrap()]);
    args.extend_from_slice(extra);
    run(&args, None)
}

fn read_message(stream: &mut TcpStream) -> Option<Message> {
    let mut prefix = [0; 4];
    stream.read_exact(&mut prefix).ok()?;
    let mut bytes = vec![0; u32::from_be_bytes(prefix) as usize];
    stream.read_exact(&mut bytes).ok()?;
    Some(msg_proto::decode(bytes.into()).unwrap())
}

/// A hand-made sender: header, then (if the receiver is ready) whatever
/// `then` writes; returns the receiver's last answer.
fn raw_sender(
    listener: &Listener,
    header: &FileHeader,
    then: impl FnOnce(&mut TcpStream),
) -> Option<FileResult> {
    let mut stream = TcpStream::connect(listener.addr).unwrap();
    stream.set_read_timeout(Some(DEADLINE)).unwrap();
    stream
        .write_all(&support::frame(&header.to_message()))
        .unwrap();
    let ready = FileResult::from_message(&read_message(&mut stream)?).unwrap();
    if ready != FileResult::Ready {
        return Some(ready);
    }
    then(&mut stream);
    read_message(&mut stream).map(|msg| FileResult::from_message(&msg).unwrap())
}

fn header(name: &str, size: u64) -> FileHeader {
    FileHeader {
        name: FileName::new(name).unwrap(),
        size,
        algorithm: HashAlgorithm::Blake3,
        mode: 0o644,
    }
}

fn digest(bytes: &[u8]) -> [u8; 32] {
    *blake3::hash(bytes).as_bytes()
}

#[test]
fn files_of_every_size_arrive_whole_with_the_standard_hash() {
    let from = fresh_dir("from");
    let to = fresh_dir("to");
    // Empty, one byte, and more than three 1 MiB chunks.
    let files = [
        ("empty", content(0)),
        ("one", content(1)),
        ("big.bin", content(3 * 1024 * 1024 + 5)),
    ];
    let paths: Vec<PathBuf> = files
        .iter()
        .map(|(name, bytes)| write_file(&from, name, bytes))
        .collect();
    let listener = save_dir_listener(&to, &["--count", "3"]);
    let mut args = vec!["send", "--tcp", "-v"];
    let addr = listener.addr_arg();
    args.push(&addr);
    for path in &paths {
        args.extend(["--file", path.to_str().unwrap()]);
    }
    let sent = run(&args, None);
    assert_eq!(sent.code(), Some(0), "{}", sent.stderr);
    let saved = listener.finish();
    assert_eq!(saved.code(), Some(0), "{}", saved.stderr);
    assert_eq!(listing(&to), ["big.bin", "empty", "one"]);
    for ((name, bytes), path) in files.iter().zip(&paths) {
        assert_eq!(&std::fs::read(to.join(name)).unwrap(), bytes, "{name}");
        let hash = blake3::hash(bytes).to_hex().to_string();
        // The listener prints what b3sum prints; the sender says it was
        // verified.
        assert!(
            saved.stdout.contains(&format!("{hash}  {name}")),
            "{}",
            saved.stdout
        );
        assert!(
            sent.stderr
                .contains(&format!("sent {name}: {} bytes", bytes.len())),
            "{}",
            sent.stderr
        );
        assert!(
            sent.stderr.contains(&format!("blake3 {hash} verified")),
            "{}",
            sent.stderr
        );
        if let Some(standard) = b3sum(path) {
            assert_eq!(standard, hash, "{name}");
        }
    }
}

#[test]
fn json_reports_each_file_and_data_messages_still_print() {
    let from = fresh_dir("from");
    let to = fresh_dir("to");
    let path = write_file(&from, "report.txt", b"hello, file");
    let listener = save_dir_listener(&to, &["--count", "2", "--json"]);
    let out = run(&["send", "--tcp", &listener.addr_arg(), "a message"], None);
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
    let out = send_file(&listener, &path, &[]);
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
    let saved = listener.finish();
    let lines: Vec<serde_json::Value> = saved
        .stdout
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(lines[0]["body"], "a message");
    let file = &lines[1];
    let mut keys: Vec<&str> = file
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(keys, ["hash", "name", "peer", "secs", "size"]);
    assert_eq!(file["name"], "report.txt");
    assert_eq!(file["size"], 11);
    assert_eq!(file["hash"], blake3::hash(b"hello, file").to_hex().as_str());
}

#[test]
fn a_byte_flipped_on_the_way_is_refused_and_nothing_is_left() {
    let from = fresh_dir("from");
    let to = fresh_dir("to");
    let path = write_file(&from, "data.bin", &content(100_000));
    let mut listener = save_dir_listener(&to, &[]);
    // A relay that flips one byte of the content on its way, well past the
    // header frame and the chunk's own header.
    let relay = Relay::start(listener.addr, None, Some(5_000));
    let out = run(
        &[
            "send",
            "--tcp",
            &relay.addr,
            "--file",
            path.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(out.code(), Some(1), "{}", out.stderr);
    assert!(
        out.stderr
            .contains("the receiver refused data.bin: hash mismatch"),
        "{}",
        out.stderr
    );
    listener.process.wait_for_stderr("hash mismatch");
    assert!(listing(&to).is_empty(), "{:?}", listing(&to));
}

#[test]
fn a_sender_gone_mid_file_leaves_nothing_and_the_listener_goes_on() {
    let from = fresh_dir("from");
    let to = fresh_dir("to");
    let mut listener = save_dir_listener(&to, &["--count", "1"]);
    let answer = raw_sender(&listener, &header("half.bin", 10_000), |stream| {
        stream
            .write_all(&support::frame(&chunk(0, Bytes::from(content(4_000)))))
            .unwrap();
        stream.shutdown(std::net::Shutdown::Both).unwrap();
    });
    assert_eq!(answer, None);
    listener.process.wait_for_stderr("mid-file");
    assert!(listing(&to).is_empty(), "{:?}", listing(&to));
    let path = write_file(&from, "whole.bin", &content(10_000));
    let out = send_file(&listener, &path, &[]);
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
    assert_eq!(listener.finish().code(), Some(0));
    assert_eq!(listing(&to), ["whole.bin"]);
}

/// Audit, round three: a sender silent mid-file, half a chunk sent, was
/// waited for a fixed 30s whatever --frame-timeout said. The listener's
/// frame timeout holds during a file too.
#[test]
fn a_sender_silent_mid_file_is_dropped_at_the_frame_timeout() {
    let to = fresh_dir("to");
    let mut listener = save_dir_listener(&to, &["--frame-timeout", "1s"]);
    let started = std::time::Instant::now();
    let answer = raw_sender(&listener, &header("stalled.bin", 10_000), |stream| {
        let whole = support::frame(&chunk(0, Bytes::from(content(4_000))));
        stream.write_all(&whole[..100]).unwrap();
        // Then nothing, until the listener gives up and closes.
        let mut rest = Vec::new();
        let _ = stream.read_to_end(&mut rest);
    });
    assert!(
        matches!(answer, None | Some(FileResult::Refused { .. })),
        "{answer:?}"
    );
    let took = started.elapsed();
    assert!(
        took < std::time::Duration::from_secs(10),
        "dropped after {took:?}"
    );
    listener.process.wait_for_stderr("stalled.bin");
    assert!(listing(&to).is_empty(), "{:?}", listing(&to));
}

#[test]
fn ctrl_c_mid_file_leaves_nothing() {
    let to = fresh_dir("to");
    let mut listener = save_dir_listener(&to, &[]);
    let mut stream = TcpStream::connect(listener.addr).unwrap();
    stream.set_read_timeout(Some(DEADLINE)).unwrap();
    stream
        .write_all(&support::frame(
            &header("interrupted.bin", 10_000).to_message(),
        ))
        .unwrap();
    let ready = FileResult::from_message(&read_message(&mut stream).unwrap()).unwrap();
    assert_eq!(ready, FileResult::Ready);
    stream
        .write_all(&support::frame(&chunk(0, Bytes::from(content(4_000)))))
        .unwrap();
    // The partial file exists while the transfer is under way (it is made
    // before the receiver says it is ready)...
    assert_eq!(listing(&to).len(), 1, "{:?}", listing(&to));
    listener
        .process
        .wait_for_stderr("receiving interrupted.bin");
    // ...and is gone once Ctrl-C has stopped the listener, which exits
    // 130, as a shell reports SIGINT, because a transfer was cut short.
    let finished = listener.process.interrupt();
    assert_eq!(finished.code(), Some(130), "{}", finished.stderr);
    assert!(listing(&to).is_empty(), "{:?}", listing(&to));
}

#[test]
fn more_or_less_than_announced_is_refused() {
    let to = fresh_dir("to");
    let listener = save_dir_listener(&to, &[]);
    let long = raw_sender(&listener, &header("long", 10), |stream| {
        stream
            .write_all(&support::frame(&chunk(0, Bytes::from(content(11)))))
            .unwrap();
    });
    let Some(FileResult::Refused { reason }) = long else {
        panic!("{long:?}")
    };
    assert!(reason.contains("10"), "{reason}");
    let short = raw_sender(&listener, &header("short", 10), |stream| {
        let bytes = content(5);
        stream
            .write_all(&support::frame(&chunk(0, Bytes::from(bytes.clone()))))
            .unwrap();
        stream
            .write_all(&support::frame(
                &FileEnd {
                    digest: digest(&bytes),
                }
                .to_message(),
            ))
            .unwrap();
    });
    let Some(FileResult::Refused { reason }) = short else {
        panic!("{short:?}")
    };
    assert!(reason.contains("5") && reason.contains("10"), "{reason}");
    assert!(listing(&to).is_empty(), "{:?}", listing(&to));
}

/// Offers a 3-byte file named `name` (a header built by hand: `FileName`
/// would refuse to make a hostile one) and returns why it was refused.
fn refusal_of_name(listener: &Listener, name: &str) -> String {
    let mut body = 3u64.to_be_bytes().to_vec();
    body.push(1);
    body.extend_from_slice(&0o644u16.to_be_bytes());
    body.extend_from_slice(&u16::try_from(name.len()).unwrap().to_be_bytes());
    body.extend_from_slice(name.as_bytes());
    let mut stream = TcpStream::connect(listener.addr).unwrap();
    stream.set_read_timeout(Some(DEADLINE)).unwrap();
    stream
        .write_all(&support::frame(&Message::new(Kind::FileHeader, 0, body)))
        .unwrap();
    let answer = FileResult::from_message(&read_message(&mut stream).unwrap()).unwrap();
    let FileResult::Refused { reason } = answer else {
        panic!("{name:?}: {answer:?}")
    };
    reason
}

#[test]
fn hostile_names_are_refused_and_nothing_is_written_outside() {
    let to = fresh_dir("to");
    let listener = save_dir_listener(&to, &[]);
    let long = "a".repeat(256);
    for name in [
        "../x", "/etc/x", "a/b", "a\\b", "a\0b", "\x1b[2J", "", "..", &long,
    ] {
        let reason = refusal_of_name(&listener, name);
        assert!(reason.contains("name"), "{name:?}: {reason}");
        assert!(
            !reason.contains('\x1b') && !reason.contains('\0'),
            "{reason:?}"
        );
    }
    assert!(listing(&to).is_empty(), "{:?}", listing(&to));
    assert!(!Path::new("/etc/x").exists());
    assert!(!to.parent().unwrap().join("x").exists());
}

/// Audit, round three: with --overwrite, a peer's file named as the
/// listener's kept partial file of another transfer (the name is derived
/// from the file's name and size alone) took its place mid-transfer, and
/// was saved under that transfer's name as "verified". A peer's name may
/// no longer begin as the listener's own files do; nor may it hide a
/// character that shows it as another name.
#[test]
fn names_of_the_listeners_own_files_and_names_that_hide_are_refused() {
    let to = fresh_dir("to");
    let listener = save_dir_listener(&to, &["--overwrite"]);
    for name in [
        ".msg-resume-0123456789abcdef0123456789abcdef",
        ".msg-partial-aB3xY9",
        ".MSG-Partial-aB3xY9",
        ".msg-check-x",
        "invoice\u{202e}fdp.exe",
        "a\u{200b}b",
    ] {
        let reason = refusal_of_name(&listener, name);
        assert!(reason.contains("refused file name"), "{name:?}: {reason}");
        assert!(!reason.contains(['\u{202e}', '\u{200b}']), "{reason:?}");
    }
    assert!(listing(&to).is_empty(), "{:?}", listing(&to));
}

/// A local file whose name every receiver refuses is refused before it
/// goes, its path said once (audit, round twelve: `cannot send P: cannot
/// send P: refused file name ...`).
#[test]
fn a_file_whose_name_receivers_refuse_is_refused_by_the_sender_saying_so_once() {
    let from = fresh_dir("from");
    let to = fresh_dir("to");
    let path = write_file(&from, ".msg-partial-x", b"x");
    let listener = save_dir_listener(&to, &[]);
    let out = send_file(&listener, &path, &[]);
    assert_eq!(out.code(), Some(1), "{}", out.stderr);
    let said = format!(
        "msg: cannot send {}: refused file name \".msg-partial-x\": it begins with \
         \".msg-partial-\"",
        path.display()
    );
    assert!(out.stderr.contains(&said), "{}", out.stderr);
    assert_eq!(
        out.stderr.matches("cannot send").count(),
        1,
        "{}",
        out.stderr
    );
    assert!(listing(&to).is_empty(), "{:?}", listing(&to));
}

#[test]
fn an_existing_file_is_kept_unless_overwrite() {
    let from = fresh_dir("from");
    let to = fresh_dir("to");
    write_file(&to, "same.txt", b"old");
    let path = write_file(&from, "same.txt", b"new");
    let listener = save_dir_listener(&to, &[]);
    let out = send_file(&listener, &path, &["--json"]);
    assert_eq!(out.code(), Some(1), "{}", out.stderr);
    assert!(out.stderr.contains("already exists"), "{}", out.stderr);
    // --json has an object for a refused file too, as for a folder's
    // entries (it had none; audit, round six), by the sender's own path.
    let refused: serde_json::Value = serde_json::from_str(out.stdout.trim()).unwrap();
    assert_eq!(refused["status"], "refused", "{refused}");
    assert_eq!(refused["path"], path.to_str().unwrap(), "{refused}");
    assert!(refused["hash"].is_null(), "{refused}");
    let reason = refused["reason"].as_str().unwrap();
    assert!(reason.contains("already exists"), "{refused}");
    // The listener's library names no flag; msg send names it.
    assert!(
        out.stderr.contains(
            "the receiver refused same.txt: same.txt already exists there, and the listener \
             does not --overwrite"
        ),
        "{}",
        out.stderr
    );
    assert_eq!(std::fs::read(to.join("same.txt")).unwrap(), b"old");
    drop(listener);

    let listener = save_dir_listener(&to, &["--overwrite", "--count", "1"]);
    let out = send_file(&listener, &path, &["--json"]);
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
    // `path` is the file as the sender named it, never the receiver's
    // words (a hostile receiver chose it); they are `saved_as`.
    let saved: serde_json::Value = serde_json::from_str(out.stdout.trim()).unwrap();
    assert_eq!(saved["status"], "saved", "{saved}");
    assert_eq!(saved["path"], path.to_str().unwrap(), "{saved}");
    assert_eq!(saved["saved_as"], "same.txt", "{saved}");
    assert_eq!(listener.finish().code(), Some(0));
    assert_eq!(std::fs::read(to.join("same.txt")).unwrap(), b"new");
    assert_eq!(listing(&to), ["same.txt"]);
}

#[test]
fn setuid_bits_do_not_travel() {
    use std::os::unix::fs::PermissionsExt;
    let from = fresh_dir("from");
    let to = fresh_dir("to");
    let path = write_file(&from, "tool", b"#!/bin/sh\n");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o4777)).unwrap();
    let listener = save_dir_listener(&to, &["--count", "1"]);
    let out = send_file(&listener, &path, &[]);
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
    listener.finish();
    let mode = std::fs::metadata(to.join("tool"))
        .unwrap()
        .permissions()
        .mode()
        & 0o7777;
    assert_eq!(mode, 0o755);
}

#[test]
fn bad_save_dirs_and_udp_files_are_refused_at_start() {
    let from = fresh_dir("from");
    let file = write_file(&from, "not-a-dir", b"x");
    // Not a directory, and a directory that cannot be made (under a file,
    // which even root cannot do): each named.
    for dir in [file.clone(), file.join("inbox")] {
        let out = run(
            &[
                "listen",
                "--tcp",
                "--save-dir",
                dir.to_str().unwrap(),
                "127.0.0.1:0",
            ],
            None,
        );
        assert_eq!(out.code(), Some(1), "{}", out.stderr);
        let named = format!("cannot save files in {}: ", dir.display());
        assert!(out.stderr.contains(&named), "{}", out.stderr);
        assert!(out.stderr.contains("ot a directory"), "{}", out.stderr);
    }
    assert_eq!(std::fs::read(&file).unwrap(), b"x");
    // Audit, round five: a save dir's path reached the terminal raw, and
    // one where no file can be made was said with the name of msg's own
    // check file. (/proc takes no files, even from root.)
    for (dir, said) in [
        ("/proc/\x1b[31m", r"cannot save files in /proc/\x1b[31m: "),
        (
            "/proc",
            "cannot save files in /proc: cannot make a file there: ",
        ),
    ] {
        let out = run(&["listen", "--tcp", "--save-dir", dir, "127.0.0.1:0"], None);
        assert_eq!(out.code(), Some(1), "{}", out.stderr);
        assert!(out.stderr.contains(said), "{}", out.stderr);
        assert!(!out.stderr.contains('\x1b'), "{}", out.stderr);
        assert!(!out.stderr.contains(".msg-check"), "{}", out.stderr);
    }

    let out = run(
        &[
            "listen",
            "--udp",
            "--save-dir",
            from.to_str().unwrap(),
            "127.0.0.1:0",
        ],
        None,
    );
    assert_eq!(out.code(), Some(2), "{}", out.stderr);
    support::assert_usage_error(
        &[
            "send",
            "--udp",
            "127.0.0.1:9",
            "--file",
            file.to_str().unwrap(),
        ],
        "files need --tcp",
    );
    // The flags of files alone, with a message instead of --file: refused,
    // not silently ignored (--json would have printed the raw reply).
    for flag in ["--json", "--resume", "--strict"] {
        support::assert_usage_error(
            &["send", "--tcp", "127.0.0.1:9", flag, "hello"],
            &format!("{flag} is for files and folders (--file PATH)"),
        );
    }
    let out = run(
        &[
            "send",
            "--tcp",
            "127.0.0.1:9",
            "--file",
            from.join("nope").to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(out.code(), Some(1), "{}", out.stderr);
}

/// A save directory given as a link is followed once, at start: a folder
/// is saved in it as a file is (its receiver, which opens the directory
/// without following links, refused every folder before). One that other
/// users may write to, or that is in a folder they may write to, is
/// warned of.
#[cfg(unix)]
#[test]
fn a_linked_save_dir_takes_folders_and_a_shared_one_is_warned_of() {
    use std::os::unix::fs::PermissionsExt;
    let from = fresh_dir("from");
    let tree = from.join("tree");
    std::fs::create_dir_all(tree.join("a")).unwrap();
    write_file(&tree, "a/x.txt", b"x");
    let real = fresh_dir("real");
    let link = fresh_dir("links").join("inbox");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let mut listener = save_dir_listener(&link, &["--count", "1"]);
    let out = send_file(&listener, &tree, &[]);
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
    assert_eq!(std::fs::read(real.join("tree/a/x.txt")).unwrap(), b"x");
    assert!(!listener.process.stderr_contains("other users"));
    drop(listener.finish());

    std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o777)).unwrap();
    // Said before the listener is ready.
    let mut shared = save_dir_listener(&real, &[]);
    assert!(
        shared
            .process
            .stderr_contains("may be written by other users (mode 777)")
    );
    drop(shared);
    // An owner-only save directory in a folder others may write to (and
    // that has no sticky bit): they could rename it away and put another
    // in its place.
    let above = fresh_dir("above");
    let inner = above.join("inbox");
    std::fs::create_dir(&inner).unwrap();
    std::fs::set_permissions(&inner, std::fs::Permissions::from_mode(0o700)).unwrap();
    std::fs::set_permissions(&above, std::fs::Permissions::from_mode(0o777)).unwrap();
    let mut under = save_dir_listener(&inner, &[]);
    let said = format!(
        "{} above the save directory may be written by other users",
        above.display()
    );
    assert!(under.process.stderr_contains(&said));
}

/// Robustness audit: the save directory was looked up by its path for
/// every transfer, so whoever could rename it (a folder above it that
/// others may write to) could put a directory of their own, or a link to
/// any other, in its place after start, and files and folders were saved
/// there (a single file through the link). The listener holds the
/// directory it opened at start: what is sent lands there, wherever it
/// was moved, never in what took its place nor through it.
#[cfg(unix)]
#[test]
fn a_save_dir_replaced_after_start_is_never_written_through_its_replacement() {
    let from = fresh_dir("from");
    let tree = from.join("tree");
    std::fs::create_dir_all(&tree).unwrap();
    write_file(&tree, "x.txt", b"x");
    let top = fresh_dir("replaced");
    let inbox = top.join("inbox");
    let victim = top.join("victim");
    std::fs::create_dir(&inbox).unwrap();
    std::fs::create_dir(&victim).unwrap();
    let mut listener = save_dir_listener(&inbox, &[]);
    let moved = top.join("moved");
    std::fs::rename(&inbox, &moved).unwrap();

    // A link in its place: a file, one to resume, and a folder.
    std::os::unix::fs::symlink(&victim, &inbox).unwrap();
    let sends = [
        (write_file(&from, "a.txt", b"a"), &[][..]),
        (write_file(&from, "r.txt", b"r"), &["--resume"][..]),
        (tree.clone(), &[][..]),
    ];
    for (path, extra) in &sends {
        let out = send_file(&listener, path, extra);
        assert_eq!(out.code(), Some(0), "{}", out.stderr);
    }
    assert!(listing(&victim).is_empty(), "{:?}", listing(&victim));
    assert_eq!(listing(&moved), ["a.txt", "r.txt", "tree"]);
    assert_eq!(std::fs::read(moved.join("tree/x.txt")).unwrap(), b"x");

    // Another directory in its place.
    std::fs::remove_file(&inbox).unwrap();
    std::fs::create_dir(&inbox).unwrap();
    std::fs::rename(&tree, from.join("tree2")).unwrap();
    for path in [write_file(&from, "b.txt", b"b"), from.join("tree2")] {
        let out = send_file(&listener, &path, &[]);
        assert_eq!(out.code(), Some(0), "{}", out.stderr);
    }
    assert!(listing(&inbox).is_empty(), "{:?}", listing(&inbox));
    assert_eq!(
        listing(&moved),
        ["a.txt", "b.txt", "r.txt", "tree", "tree2"]
    );
    assert_eq!(std::fs::read(moved.join("tree2/x.txt")).unwrap(), b"x");
    assert!(!listener.process.stderr_contains("dropped connection"));
}

/// Audit, round four: a local file named with an escape sequence (a
/// name anyone who may write to the folder chooses) reached the terminal
/// raw in `cannot send PATH`, for a file and for a folder.
#[cfg(unix)]
#[test]
fn a_local_path_with_control_characters_is_shown_escaped() {
    let from = fresh_dir("from");
    let named = write_file(&from, "a\x1b]0;TITLE\x07\x1b[31mb", b"x");
    let folder = from.join("d\x1b[2Jir");
    std::fs::create_dir(&folder).unwrap();
    write_file(&folder, "a\x1b[31mb", b"x");
    let to = fresh_dir("to");
    let listener = save_dir_listener(&to, &[]);
    for path in [&named, &folder] {
        let out = send_file(&listener, path, &[]);
        assert_ne!(out.code(), Some(0), "{}", out.stderr);
        assert!(!out.stderr.contains('\x1b'), "{:?}", out.stderr);
        assert!(out.stderr.contains(r"\x1b"), "{:?}", out.stderr);
    }
}

/// Audit, round four: `msg send --file FIFO` (or a file swapped for a
/// FIFO before the open) waited in `open` for a writer for ever, whatever
/// `--timeout` said. It is now refused at once as what it is.
#[cfg(unix)]
#[test]
fn a_fifo_given_as_the_file_is_refused_at_once() {
    use std::time::{Duration, Instant};
    let from = fresh_dir("from");
    let fifo = from.join("pipe");
    mkfifo(&fifo);
    let to = fresh_dir("to");
    let listener = save_dir_listener(&to, &[]);
    let started = Instant::now();
    let out = send_file(&listener, &fifo, &["--timeout", "2s"]);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(out.code(), Some(1), "{}", out.stderr);
    assert!(
        out.stderr.contains("is not a regular file"),
        "{}",
        out.stderr
    );
}

/// The README's `msg listen --tcp --save-dir ~/inbox`, for a new user
/// whose inbox is not there yet: made, with its parents, owner-only.
#[test]
fn a_missing_save_dir_is_made_owner_only_and_files_are_saved_in_it() {
    use std::os::unix::fs::PermissionsExt;
    let from = fresh_dir("from");
    let path = write_file(&from, "report.txt", b"hello");
    let top = support::fresh_path("files-new");
    let to = top.join("a/inbox");
    let listener = save_dir_listener(&to, &["--count", "1"]);
    let sent = send_file(&listener, &path, &[]);
    assert_eq!(sent.code(), Some(0), "{}", sent.stderr);
    let saved = listener.finish();
    assert_eq!(saved.code(), Some(0), "{}", saved.stderr);
    let said = format!("created the save directory {} (mode 0700)", to.display());
    assert!(saved.stderr.contains(&said), "{}", saved.stderr);
    assert_eq!(std::fs::read(to.join("report.txt")).unwrap(), b"hello");
    for dir in [&top, &top.join("a"), &to] {
        let mode = std::fs::metadata(dir).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700, "{}: {mode:o}", dir.display());
    }
    std::fs::remove_dir_all(&top).unwrap();
}

#[test]
fn a_listener_without_save_dir_refuses_files_clearly() {
    let from = fresh_dir("from");
    let path = write_file(&from, "f", b"x");
    let listener = Listener::start("--tcp", "127.0.0.1", &[]);
    let out = send_file(&listener, &path, &[]);
    assert_eq!(out.code(), Some(1), "{}", out.stderr);
    assert!(out.stderr.contains("--save-dir"), "{}", out.stderr);
    assert!(
        out.stderr
            .contains("this listener saves no files; start msg listen with --save-dir DIR"),
        "{}",
        out.stderr
    );
}

#[test]
fn files_go_through_authentication() {
    use std::os::unix::fs::PermissionsExt;
    let from = fresh_dir("from");
    let to = fresh_dir("to");
    let secret = write_file(&from, "secret", b"file secret\n");
    let wrong = write_file(&from, "wrong", b"not it\n");
    for key in [&secret, &wrong] {
        std::fs::set_permissions(key, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let path = write_file(&from, "payload", &content(2 * 1024 * 1024));
    let listener = save_dir_listener(
        &to,
        &["--secret-file", secret.to_str().unwrap(), "--count", "1"],
    );
    let out = send_file(
        &listener,
        &path,
        &["--secret-file", wrong.to_str().unwrap()],
    );
    assert_eq!(out.code(), Some(1), "{}", out.stderr);
    assert!(
        out.stderr.contains("authentication failed"),
        "{}",
        out.stderr
    );
    let out = send_file(
        &listener,
        &path,
        &["--secret-file", secret.to_str().unwrap()],
    );
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
    assert_eq!(listener.finish().code(), Some(0));
    assert_eq!(
        std::fs::read(to.join("payload")).unwrap(),
        content(2 * 1024 * 1024)
    );
}

#[test]
fn a_refusal_names_no_path_of_the_listener() {
    let from = fresh_dir("from");
    let to = fresh_dir("to");
    let path = write_file(&from, "report.txt", b"hello");
    let listener = save_dir_listener(&to, &[]);
    // The save directory goes away under the running listener, and one
    // is made again at its path, which is another directory: the
    // listener says so (once, tempfile's error named the directory; then
    // `No such file or directory`, without saying why).
    std::fs::remove_dir_all(&to).unwrap();
    std::fs::create_dir(&to).unwrap();
    let out = send_file(&listener, &path, &[]);
    assert_eq!(out.code(), Some(1), "{}", out.stderr);
    assert!(
        out.stderr.contains(
            "refused report.txt: the listener's save directory was removed after it started; \
             it saves nowhere else until it is started again"
        ),
        "{}",
        out.stderr
    );
    let dir_name = to.file_name().unwrap().to_str().unwrap();
    assert!(!out.stderr.contains(dir_name), "{}", out.stderr);
    assert!(!out.stderr.contains("at path"), "{}", out.stderr);
}

#[test]
fn a_restarted_listener_removes_stale_partial_files_and_nothing_else() {
    use std::time::{Duration, SystemTime};
    let to = fresh_dir("to");
    let outside = fresh_dir("outside");
    let two_hours_ago = SystemTime::now() - Duration::from_secs(2 * 60 * 60);
    let aged = |path: &Path| {
        std::fs::File::options()
            .write(true)
            .open(path)
            .unwrap()
            .set_modified(two_hours_ago)
            .unwrap();
    };
    // What a `kill -9` mid-transfer leaves behind, written two hours ago.
    let stale = write_file(&to, ".msg-partial-Ab3dE9", &content(100_000));
    aged(&stale);
    // A partial file being written right now (another listener's, say).
    write_file(&to, ".msg-partial-Fresh1", b"live");
    // Old, but not a name msg gives its partial files.
    for name in [".msg-partial-toolong", "msg-partial-Ab3dE9", "notes.txt"] {
        aged(&write_file(&to, name, b"keep"));
    }
    // A link and a directory with a partial file's name: neither is a
    // partial file, and what the link points to is outside.
    let target = write_file(&outside, "precious", b"keep");
    aged(&target);
    std::os::unix::fs::symlink(&target, to.join(".msg-partial-Link01")).unwrap();
    std::fs::create_dir(to.join(".msg-partial-Dir001")).unwrap();
    aged(&write_file(
        &to.join(".msg-partial-Dir001"),
        ".msg-partial-Inner1",
        b"keep",
    ));

    let mut listener = save_dir_listener(&to, &[]);
    // Removed before the listener says it is listening.
    assert!(
        listener
            .process
            .stderr_contains("removed .msg-partial-Ab3dE9, a partial file last written 2h"),
        "{}",
        listener.process.kill().stderr
    );
    assert_eq!(
        listing(&to),
        [
            ".msg-partial-Dir001",
            ".msg-partial-Fresh1",
            ".msg-partial-Link01",
            ".msg-partial-toolong",
            "msg-partial-Ab3dE9",
            "notes.txt"
        ]
    );
    assert_eq!(std::fs::read(&target).unwrap(), b"keep");
    assert_eq!(
        listing(&to.join(".msg-partial-Dir001")),
        [".msg-partial-Inner1"]
    );
}

/// A listener saving into a 1 MiB tmpfs of its own: mounted in a private
/// mount namespace (`unshare --mount`), so that it disappears with the
/// listener whatever happens to the test. `None` (skipped, with a note)
/// where no tmpfs can be mounted, unless `MSG_REQUIRE_TMPFS` is set: CI
/// sets it wherever it can mount one, so that these tests run there.
fn full_disk_listener() -> Option<Listener> {
    let dir = fresh_dir("tmpfs");
    let dir = dir.to_str().unwrap();
    let mount = r#"mount -t tmpfs -o size=1m msg-test "$1" && shift && exec "$@""#;
    let probe = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c", mount])
        .args(["sh", dir, "true"])
        .output();
    let works = probe.as_ref().is_ok_and(|out| out.status.success());
    if !works {
        assert!(
            std::env::var_os("MSG_REQUIRE_TMPFS").is_none(),
            "MSG_REQUIRE_TMPFS is set, but no tmpfs can be mounted: {probe:?}"
        );
        support::skip(&format!(
            "no tmpfs can be mounted here (needs root): {probe:?}"
        ));
        return None;
    }
    let mut cmd = Command::new("unshare");
    cmd.args(["--mount", "--propagation", "private", "sh", "-c", mount])
        .args(["sh", dir, env!("CARGO_BIN_EXE_msg")])
        .args(["listen", "--tcp", "-v", "127.0.0.1:0", "--save-dir", dir])
        .env_remove("RUST_LOG");
    Some(Listener::start_command(cmd))
}

/// Reads until the peer's end; the error if the connection was reset
/// instead.
fn read_to_end(stream: &mut TcpStream) -> std::io::Result<usize> {
    let mut rest = Vec::new();
    stream.read_to_end(&mut rest)
}

#[test]
fn a_full_disk_mid_file_reaches_the_sender_as_such_and_the_connection_ends_without_a_reset() {
    let Some(listener) = full_disk_listener() else {
        return;
    };
    // By hand, to watch the connection itself: content for 32 MiB, into
    // 1 MiB of space, a chunk at a time, as long as the receiver is quiet.
    let size = 32 << 20;
    let mut stream = TcpStream::connect(listener.addr).unwrap();
    stream.set_read_timeout(Some(DEADLINE)).unwrap();
    stream.set_write_timeout(Some(DEADLINE)).unwrap();
    stream
        .write_all(&support::frame(&header("big.bin", size).to_message()))
        .unwrap();
    let ready = FileResult::from_message(&read_message(&mut stream).unwrap()).unwrap();
    assert_eq!(ready, FileResult::Ready);
    let piece = Bytes::from(content(1 << 20));
    let mut write_error = None;
    for seq in 0..32 {
        stream.set_nonblocking(true).unwrap();
        let mut byte = [0];
        let spoke = !matches!(
            stream.peek(&mut byte),
            Err(err) if err.kind() == std::io::ErrorKind::WouldBlock
        );
        stream.set_nonblocking(false).unwrap();
        if spoke {
            break;
        }
        if let Err(err) = stream.write_all(&support::frame(&chunk(seq, piece.clone()))) {
            write_error = Some(err);
            break;
        }
    }
    let _ = stream.shutdown(std::net::Shutdown::Write);
    let answer = read_message(&mut stream).map(|msg| FileResult::from_message(&msg).unwrap());
    let Some(FileResult::Refused { reason }) = answer else {
        panic!("{answer:?} (write error: {write_error:?})")
    };
    assert!(
        reason.contains("No space left on device"),
        "{reason} (write error: {write_error:?})"
    );
    // The receiver took what was still on its way instead of resetting
    // the connection under it, then closed its end cleanly.
    assert!(write_error.is_none(), "{write_error:?}");
    assert_eq!(read_to_end(&mut stream).unwrap(), 0);
}

#[test]
fn msg_send_to_a_full_disk_always_says_the_disk_is_full() {
    let Some(listener) = full_disk_listener() else {
        return;
    };
    // About one send in fifty saw "Connection reset by peer" here, when the
    // receiver's reset overtook the sender's last writes: 120 sends, eight
    // at a time so that the timings vary, all of a file that fills the
    // disk nine times over.
    let from = fresh_dir("from");
    let path = write_file(&from, "nine.bin", &content(9 << 20));
    let path = path.to_str().unwrap();
    let addr = listener.addr_arg();
    for _ in 0..15 {
        let senders: Vec<_> = (0..8)
            .map(|_| {
                let mut cmd = support::msg();
                cmd.args(["send", "--tcp", &addr, "--file", path]);
                support::Running::spawn(cmd, None)
            })
            .collect();
        for sender in senders {
            let out = sender.finish();
            assert_eq!(out.code(), Some(1), "{}", out.stderr);
            assert!(
                out.stderr.contains(
                    "the receiver refused nine.bin: cannot write the file: No space left on device"
                ),
                "{}",
                out.stderr
            );
        }
    }
}

/// The descriptors process `pid` has open.
#[cfg(target_os = "linux")]
fn open_fds(pid: u32) -> std::collections::BTreeSet<u64> {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
        .collect()
}

/// The limit on open files that leaves exactly `spare` descriptors to
/// open beside `open`: a new one takes the lowest free number, which must
/// be under the limit (those open above it stay open).
#[cfg(target_os = "linux")]
fn limit_with_spare(open: &std::collections::BTreeSet<u64>, spare: usize) -> u64 {
    let free = (0..).filter(|fd| !open.contains(fd)).nth(spare - 1);
    free.expect("a free descriptor number") + 1
}

/// Sets process `pid`'s soft limit on open files (as `prlimit --pid`
/// does), its hard limit kept; the soft limit it had.
#[cfg(target_os = "linux")]
fn set_open_files(pid: u32, soft: u64) -> u64 {
    let pid = libc::pid_t::try_from(pid).unwrap();
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: prlimit reads the new limit (none here) and writes the old
    // one into `limit`, valid for the call.
    let got = unsafe { libc::prlimit(pid, libc::RLIMIT_NOFILE, std::ptr::null(), &mut limit) };
    assert_eq!(got, 0, "{}", std::io::Error::last_os_error());
    let was = limit.rlim_cur;
    limit.rlim_cur = soft.min(limit.rlim_max);
    // SAFETY: as above, the new limit read from `limit`, nothing written.
    let set = unsafe { libc::prlimit(pid, libc::RLIMIT_NOFILE, &limit, std::ptr::null_mut()) };
    assert_eq!(set, 0, "{}", std::io::Error::last_os_error());
    was
}

/// Process `pid`'s descriptors once they stay the same for a quarter of a
/// second: a listener just started may hold one for a moment (its first
/// sweep of stale partial files opens the save directory), and taken then,
/// that one never closed again to the test, "fds left open", or was
/// missed, and the limit left `accept` none (both seen in CI).
#[cfg(target_os = "linux")]
fn settled_fds(pid: u32) -> std::collections::BTreeSet<u64> {
    let mut last = open_fds(pid);
    let mut same = 0;
    // Bounded: 400 looks, 20 s at most.
    for _ in 0..400 {
        thread::sleep(std::time::Duration::from_millis(50));
        let now = open_fds(pid);
        same = if now == last { same + 1 } else { 0 };
        if same == 5 {
            break;
        }
        last = now;
    }
    last
}

/// Where each of process `pid`'s descriptors points, to say which one a
/// failure left open.
#[cfg(target_os = "linux")]
fn fd_targets(pid: u32) -> Vec<String> {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|dir| {
            dir.flatten()
                .map(|entry| {
                    std::fs::read_link(entry.path())
                        .map_or_else(|err| err.to_string(), |target| target.display().to_string())
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Robustness audit: a listener out of file descriptors (its soft limit
/// lowered with `prlimit`) dropped a file's connection (`Too many open
/// files` in its log, `the receiver closed the connection before
/// confirming the file` for the sender), and refused a folder it had just
/// made as `tree exists and is not a folder`, leaving it there empty.
/// With each limit from one descriptor to spare up to six, a file, a
/// file sent with `--resume` and a folder: every failure reaches the
/// sender as a refusal naming the real error, and a folder refused as a
/// whole is not left behind.
#[cfg(target_os = "linux")]
#[test]
fn out_of_file_descriptors_the_sender_is_told_so_and_a_folder_refused_whole_is_removed() {
    let from = fresh_dir("from");
    let to = fresh_dir("to");
    let mut listener = save_dir_listener(&to, &[]);
    let pid = listener.process.pid();
    let idle = settled_fds(pid);
    let (mut files_refused, mut folders_refused, mut subfolders_refused) = (0, 0, 0);
    for spare in 1..=6 {
        let file = write_file(&from, &format!("f{spare}.bin"), &content(1000));
        let resumed = write_file(&from, &format!("r{spare}.bin"), &content(1000));
        let folder = from.join(format!("t{spare}"));
        std::fs::create_dir(&folder).unwrap();
        write_file(&folder, "x.txt", b"x");
        // A subfolder its owner may enter, whose mode is set at once.
        std::fs::create_dir(folder.join("sub")).unwrap();
        write_file(&folder.join("sub"), "y.txt", b"y");
        for (path, extra) in [(&file, &[][..]), (&resumed, &["--resume"]), (&folder, &[])] {
            // Every descriptor of the last connection closed first: the
            // listener lets go of it once the sender has closed its end.
            let deadline = std::time::Instant::now() + DEADLINE;
            while open_fds(pid) != idle {
                assert!(
                    std::time::Instant::now() < deadline,
                    "fds left open: {:?} against {idle:?}",
                    fd_targets(pid)
                );
                thread::sleep(std::time::Duration::from_millis(5));
            }
            let was = set_open_files(pid, limit_with_spare(&idle, spare));
            let out = send_file(&listener, path, extra);
            set_open_files(pid, was);
            let name = path.file_name().unwrap().to_str().unwrap();
            if out.code() == Some(0) {
                continue;
            }
            // With one descriptor to spare, anything the listener opens
            // for a moment (its first sweep of stale partial files, say) leaves
            // `accept` itself none: the kernel then holds the client in
            // its backlog, and nobody can tell it anything. Seen once in
            // CI, on a loaded machine.
            if spare == 1 && out.stderr.contains("no answer from the receiver") {
                continue;
            }
            assert!(
                out.stderr.contains("Too many open files")
                    && !out.stderr.contains("closed the connection"),
                "{name} with {spare} spare: {}",
                out.stderr
            );
            if path != &folder {
                files_refused += 1;
            } else if out.stderr.contains(&format!("refused {name}: ")) {
                folders_refused += 1;
                assert!(!to.join(name).exists(), "{name} was left behind");
            } else if out
                .stderr
                .contains("refused sub: cannot open the folder made for it")
            {
                // A subfolder made and then not opened to set its mode:
                // refused saying so, and not left behind at 0700.
                subfolders_refused += 1;
                assert!(
                    out.stderr.contains(
                        "refused sub: cannot open the folder made for it: Too many open files"
                    ),
                    "{}",
                    out.stderr
                );
                assert!(
                    !to.join(name).join("sub").exists(),
                    "{name}/sub was left behind"
                );
            }
        }
    }
    assert!(files_refused > 0 && folders_refused > 0 && subfolders_refused > 0);
    // What the listener said, if it dropped one (seen once, on a loaded
    // machine, with nothing to say which connection or why).
    if listener.process.stderr_contains("dropped connection") {
        panic!("dropped connection: {}", listener.finish().stderr);
    }
}

/// A hand-made receiver for one file: it takes the file whole, checks its
/// hash, waits `delay`, and answers `Saved` with the name `rename` makes of
/// the one the sender gave. Its address, and the thread to join.
fn hand_made_receiver(
    expected: [u8; 32],
    delay: std::time::Duration,
    rename: impl FnOnce(String) -> String + Send + 'static,
) -> (String, thread::JoinHandle<()>) {
    let receiver = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = receiver.local_addr().unwrap().to_string();
    let thread = thread::spawn(move || {
        let (mut stream, _) = receiver.accept().unwrap();
        stream.set_read_timeout(Some(DEADLINE)).unwrap();
        let header = FileHeader::from_message(&read_message(&mut stream).unwrap()).unwrap();
        stream
            .write_all(&support::frame(&FileResult::Ready.to_message()))
            .unwrap();
        let mut hasher = blake3::Hasher::new();
        let end = loop {
            let msg = read_message(&mut stream).unwrap();
            match msg.kind {
                Kind::FileChunk => {
                    hasher.update(&msg.body);
                }
                _ => break FileEnd::from_message(&msg).unwrap(),
            }
        };
        assert_eq!(end.digest, *hasher.finalize().as_bytes());
        assert_eq!(end.digest, expected);
        thread::sleep(delay);
        let saved = FileResult::Saved {
            name: rename(header.name.into_string()),
        };
        // The sender may have given up and gone: not this thread's
        // business, the sender's exit code says it.
        let _ = stream.write_all(&support::frame(&saved.to_message()));
    });
    (addr, thread)
}

#[test]
fn a_receiver_still_writing_after_the_last_byte_is_waited_for() {
    // A receiver that takes 1.5 s after the last byte to give its verdict,
    // as a listener saving fifty files at once took to write, hash and
    // rename what it still had; the sender's --timeout is 500ms.
    let from = fresh_dir("from");
    let bytes = content(4 << 20);
    let path = write_file(&from, "slow.bin", &bytes);
    let (addr, slow) = hand_made_receiver(
        digest(&bytes),
        std::time::Duration::from_millis(1500),
        |name| name,
    );
    let out = run(
        &[
            "send",
            "--tcp",
            &addr,
            "--timeout",
            "500ms",
            "--file",
            path.to_str().unwrap(),
        ],
        None,
    );
    slow.join().unwrap();
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
    assert!(
        out.stderr.contains("sent slow.bin: 4194304 bytes"),
        "{}",
        out.stderr
    );
}

/// Hardening round two, finding 7: the name a receiver says it saved a
/// file under reached the sender's terminal raw, so a hostile listener
/// could retitle the window or clear the screen. It is shown escaped, as
/// bodies are.
#[test]
fn a_hostile_receivers_saved_name_reaches_the_terminal_escaped() {
    let from = fresh_dir("from");
    let bytes = content(1000);
    let path = write_file(&from, "plain.txt", &bytes);
    let (addr, hostile) = hand_made_receiver(digest(&bytes), std::time::Duration::ZERO, |_| {
        "\x1b]0;pwned\x07\x1b[2Jok".to_owned()
    });
    let out = run(
        &["send", "--tcp", &addr, "--file", path.to_str().unwrap()],
        None,
    );
    hostile.join().unwrap();
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
    assert!(!out.stderr.contains('\x1b'), "{:?}", out.stderr);
    assert!(
        out.stderr
            .contains(r"sent \x1b]0;pwned\x07\x1b[2Jok: 1000 bytes"),
        "{:?}",
        out.stderr
    );
}

/// A receiver that answers a file with a result msg cannot read (status
/// 7), or with `Ready` where the verdict belongs, has refused nothing: it
/// does not follow the transfer, and the sender says that (it said "the
/// receiver refused NAME: unknown file result status 7"; audit, round
/// six).
#[test]
fn a_receivers_answer_out_of_turn_or_unreadable_is_not_called_a_refusal() {
    let from = fresh_dir("from");
    let path = write_file(&from, "f.bin", &content(1000));
    for (answers, said) in [
        (
            vec![Message::new(Kind::FileResult, 0, vec![7, b'x'])],
            "the receiver's answer about f.bin is no file result msg reads: unknown file result \
             status 7",
        ),
        (
            vec![
                FileResult::Ready.to_message(),
                FileResult::Ready.to_message(),
            ],
            "the receiver answered 'ready' about f.bin out of turn",
        ),
    ] {
        let receiver = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = receiver.local_addr().unwrap().to_string();
        let thread = thread::spawn(move || {
            let (mut stream, _) = receiver.accept().unwrap();
            stream.set_read_timeout(Some(DEADLINE)).unwrap();
            read_message(&mut stream).unwrap();
            for answer in answers {
                // The sender may have gone at the first: its exit says so.
                let _ = stream.write_all(&support::frame(&answer));
                // The file's content, when the first answer let it come.
                while let Some(msg) = read_message(&mut stream) {
                    if msg.kind == Kind::FileEnd {
                        break;
                    }
                }
            }
        });
        let out = run(
            &["send", "--tcp", &addr, "--file", path.to_str().unwrap()],
            None,
        );
        thread.join().unwrap();
        assert_eq!(out.code(), Some(1), "{}", out.stderr);
        assert!(out.stderr.contains(said), "{said}: {}", out.stderr);
        assert!(!out.stderr.contains("refused"), "{}", out.stderr);
    }
}

/// A receiver that says `Saved` before the file's end (its size and hash)
/// was sent cannot have checked it: a single empty file answered `Ready`
/// and `Saved` at once, and a folder whose file is answered `Saved` as its
/// entry arrives. Neither is reported as verified.
#[cfg(unix)]
#[test]
fn a_receiver_that_says_saved_before_the_end_is_sent_is_not_believed() {
    let from = fresh_dir("from");
    let empty = write_file(&from, "empty.txt", b"");
    let tree = from.join("tree");
    std::fs::create_dir_all(&tree).unwrap();
    // The receiver's `Saved` is written before it reads past the entry,
    // so a sender held back by full buffers has it before the file's end
    // is sent, provided the file is larger than what the buffers can hold
    // past its entry: the sender's send buffer (autotuned up to
    // `tcp_wmem`'s maximum) and the receiver's, fixed small here (a set
    // SO_RCVBUF does not autotune). At 4 MiB the whole file fit in a CI
    // machine's buffers, its end went first, and the `Saved` was then a
    // late but honest answer (stop 42).
    let send_buffer_max = std::fs::read_to_string("/proc/sys/net/ipv4/tcp_wmem")
        .ok()
        .and_then(|s| s.split_whitespace().nth(2)?.parse::<usize>().ok())
        .unwrap_or(4 << 20);
    write_file(&tree, "big.bin", &content(send_buffer_max + (4 << 20)));
    let receiver = {
        let socket =
            socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        socket.set_recv_buffer_size(64 << 10).unwrap();
        socket
            .bind(
                &"127.0.0.1:0"
                    .parse::<std::net::SocketAddr>()
                    .unwrap()
                    .into(),
            )
            .unwrap();
        socket.listen(2).unwrap();
        TcpListener::from(socket)
    };
    let addr = receiver.local_addr().unwrap().to_string();
    let hostile = thread::spawn(move || {
        let ready = support::frame(&FileResult::Ready.to_message());
        let saved = support::frame(
            &FileResult::Saved {
                name: "big.bin".to_owned(),
            }
            .to_message(),
        );
        for _ in 0..2 {
            let (mut stream, _) = receiver.accept().unwrap();
            stream.set_read_timeout(Some(DEADLINE)).unwrap();
            let first = read_message(&mut stream).unwrap();
            if first.kind == Kind::FileHeader {
                stream
                    .write_all(&[&ready[..], &saved[..]].concat())
                    .unwrap();
            } else {
                stream.write_all(&ready).unwrap();
            }
            // To the end of the connection: Saved for each folder entry,
            // at once.
            while let Some(msg) = read_message(&mut stream) {
                if msg.kind == Kind::TreeEntry {
                    let _ = stream.write_all(&saved);
                }
            }
        }
    });
    let sent = |path: &Path| {
        run(
            &["send", "--tcp", &addr, "--file", path.to_str().unwrap()],
            None,
        )
    };
    for out in [sent(&empty), sent(&tree)] {
        assert_eq!(out.code(), Some(1), "{}", out.stderr);
        assert!(
            out.stderr
                .contains("before its end (size and BLAKE3) was sent: it cannot have checked it"),
            "{}",
            out.stderr
        );
        assert!(!out.stderr.contains("verified"), "{}", out.stderr);
    }
    hostile.join().unwrap();
}

#[cfg(unix)]
/// A folder whose mode keeps its owner out (0o500: no write) is filled
/// first and given its mode at the end; one that lets its owner in gets
/// its mode when made (audit, round three: every folder's entry was held
/// to the end, 475 MB for 100,000 of them).
#[test]
fn a_folder_that_keeps_its_owner_out_is_filled_then_closed() {
    use std::os::unix::fs::PermissionsExt;
    let from = fresh_dir("from");
    let tree = from.join("modes");
    for dir in ["locked/inner", "open"] {
        std::fs::create_dir_all(tree.join(dir)).unwrap();
    }
    write_file(&tree, "locked/inner/f.txt", b"inside");
    write_file(&tree, "open/g.txt", b"beside");
    let set = |path: &str, mode| {
        std::fs::set_permissions(tree.join(path), std::fs::Permissions::from_mode(mode)).unwrap();
    };
    set("locked", 0o500);
    set("open", 0o751);
    let to = fresh_dir("to");
    let listener = save_dir_listener(&to, &["--count", "2"]);
    let out = send_file(&listener, &tree, &[]);
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
    assert_eq!(listener.finish().code(), Some(0));
    let got = to.join("modes");
    let mode = |path: &str| {
        std::fs::metadata(got.join(path))
            .unwrap()
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode("locked"), 0o500);
    assert_eq!(mode("open"), 0o751);
    assert_eq!(
        std::fs::read(got.join("locked/inner/f.txt")).unwrap(),
        b"inside"
    );
    assert_eq!(std::fs::read(got.join("open/g.txt")).unwrap(), b"beside");
    // Let the clean-up in.
    set("locked", 0o700);
    std::fs::set_permissions(got.join("locked"), std::fs::Permissions::from_mode(0o700)).unwrap();
}

/// Audit, round four: a folder 1,900 deep was saved whole, but its sender
/// said "no answer from the receiver within 2s" and exited 1. Both ends
/// opened each folder part by part from the top, N²/2 opens for a chain N
/// deep (1.8 million here, seconds of system time); now each is opened
/// from the one before, once.
#[test]
fn a_folder_deep_as_a_path_allows_arrives_and_is_reported_saved() {
    const DEPTH: usize = 1_900;
    let from = fresh_dir("from");
    let tree = from.join("deep");
    let bottom = (0..DEPTH).fold(tree.clone(), |path, _| path.join("a"));
    std::fs::create_dir_all(&bottom).unwrap();
    write_file(&bottom, "f.txt", b"at the bottom");
    let to = fresh_dir("to");
    let listener = save_dir_listener(&to, &["--count", "1"]);
    let out = send_file(&listener, &tree, &[]);
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
    assert!(
        out.stderr
            .contains(&format!("sent deep: 1 file, {DEPTH} folders, 13 bytes in")),
        "{}",
        out.stderr
    );
    assert_eq!(listener.finish().code(), Some(0));
    let saved = (0..DEPTH).fold(to.join("deep"), |path, _| path.join("a"));
    assert_eq!(
        std::fs::read(saved.join("f.txt")).unwrap(),
        b"at the bottom"
    );
}

/// A folder given as a link to one is saved under the link's name, as
/// `cp -r` and tar name it (audit, round sixteen: under its target's).
#[test]
fn a_folder_given_as_a_link_is_saved_under_the_links_name() {
    let from = fresh_dir("from");
    std::fs::create_dir_all(from.join("target")).unwrap();
    write_file(&from.join("target"), "a", b"a");
    std::os::unix::fs::symlink("target", from.join("named")).unwrap();
    let to = fresh_dir("to");
    let listener = save_dir_listener(&to, &["--count", "1"]);
    let out = send_file(&listener, &from.join("named"), &[]);
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
    listener.finish();
    assert_eq!(std::fs::read(to.join("named/a")).unwrap(), b"a");
    assert!(!to.join("target").exists());
}

/// A subfolder the sender cannot read is skipped, named as itself, and
/// the rest of the folder goes; the send then fails, as for any entry
/// that could not be sent (audit, round sixteen: the whole folder failed,
/// under the top folder's name). A mode of 000 binds root too once it
/// lacks the capabilities that override it; as another user, the send
/// would count against that user's process limit, which another test
/// here sets.
#[test]
fn an_unreadable_subfolder_is_skipped_and_the_rest_goes() {
    use std::os::unix::fs::PermissionsExt;
    let mut cmd = if nix::unistd::Uid::effective().is_root() {
        if Command::new("setpriv").arg("--version").output().is_err() {
            support::skip("setpriv is not installed (util-linux)");
            return;
        }
        let mut cmd = Command::new("setpriv");
        cmd.args(["--bounding-set", "-dac_read_search,-dac_override"])
            .arg(env!("CARGO_BIN_EXE_msg"));
        cmd
    } else {
        Command::new(env!("CARGO_BIN_EXE_msg"))
    };
    let from = fresh_dir("from");
    let tree = from.join("tree");
    std::fs::create_dir_all(tree.join("locked")).unwrap();
    write_file(&tree, "ok", b"ok");
    write_file(&tree.join("locked"), "inside", b"i");
    std::fs::set_permissions(tree.join("locked"), std::fs::Permissions::from_mode(0o000)).unwrap();

    let to = fresh_dir("to");
    let listener = save_dir_listener(&to, &["--count", "1"]);
    cmd.args(["send", "--tcp", &listener.addr_arg(), "--file"])
        .arg(&tree);
    let out = support::Running::spawn(cmd, None).finish();
    std::fs::set_permissions(tree.join("locked"), std::fs::Permissions::from_mode(0o755)).unwrap();
    assert_eq!(out.code(), Some(1), "{}", out.stderr);
    assert!(
        out.stderr
            .contains("tree/locked: cannot read it: Permission denied"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains(
            "1 of the folder's entries could not be sent (said above); the receiver saved 1 \
             file and 0 folders"
        ),
        "{}",
        out.stderr
    );
    assert_eq!(std::fs::read(to.join("tree/ok")).unwrap(), b"ok");
    listener.finish();
}

/// A file whose name is not UTF-8 is refused saying so, not that its
/// name is empty (audit, round sixteen).
#[test]
fn a_name_that_is_not_utf8_is_said_to_be() {
    use std::os::unix::ffi::OsStrExt;
    let from = fresh_dir("from");
    let path = from.join(std::ffi::OsStr::from_bytes(b"bad\xffname"));
    std::fs::write(&path, b"x").unwrap();
    let to = fresh_dir("to");
    let listener = save_dir_listener(&to, &[]);
    let mut cmd = support::msg();
    cmd.args(["send", "--tcp", &listener.addr_arg(), "--file"])
        .arg(&path);
    let out = support::Running::spawn(cmd, None).finish();
    assert_eq!(out.code(), Some(1), "{}", out.stderr);
    assert!(
        out.stderr.contains("bad\\xffname") && out.stderr.contains("it is not UTF-8"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("it is empty"), "{}", out.stderr);
}

/// The listener's umask takes its bits away from what a sender's modes
/// give, as tar, scp and rsync without `-p` do: under `umask 077` every
/// file and folder is the owner's alone (audit, round sixteen: saved
/// 0755 whatever the umask).
#[test]
fn a_listeners_umask_applies_to_what_it_saves() {
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;
    let from = fresh_dir("from");
    let single = write_file(&from, "run.sh", b"#!/bin/sh\n");
    std::fs::set_permissions(&single, std::fs::Permissions::from_mode(0o755)).unwrap();
    let tree = from.join("tree");
    std::fs::create_dir_all(&tree).unwrap();
    let inner = write_file(&tree, "x", b"x");
    std::fs::set_permissions(&inner, std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::set_permissions(&tree, std::fs::Permissions::from_mode(0o755)).unwrap();

    let to = fresh_dir("to");
    let mut cmd = support::msg();
    cmd.args([
        "listen",
        "--tcp",
        "-v",
        "127.0.0.1:0",
        "--count",
        "2",
        "--save-dir",
    ])
    .arg(&to);
    // SAFETY: umask is async-signal-safe, and changes the child only.
    unsafe {
        cmd.pre_exec(|| {
            libc::umask(0o077);
            Ok(())
        });
    }
    let listener = Listener::start_command(cmd);
    for path in [&single, &tree] {
        let out = send_file(&listener, path, &[]);
        assert_eq!(out.code(), Some(0), "{}", out.stderr);
    }
    listener.finish();
    let mode = |path: &Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&to.join("run.sh")), 0o700);
    assert_eq!(mode(&to.join("tree")), 0o700);
    assert_eq!(mode(&to.join("tree/x")), 0o600);
}

/// `--json` names every file whole, however long its path: a folder's
/// entry 300 bytes deep, and a single file's 255-byte name as the
/// receiver saved it (audit, round sixteen: both cut at 200 bytes with
/// `…`, naming no file).
#[test]
fn json_names_long_paths_whole() {
    let from = fresh_dir("from");
    let tree = from.join("tree");
    let deep = ["dir"; 75].join("/");
    std::fs::create_dir_all(tree.join(&deep)).unwrap();
    write_file(&tree.join(&deep), "f", b"deep");
    let long = "n".repeat(255);
    let single = write_file(&from, &long, b"long");

    let to = fresh_dir("to");
    let listener = save_dir_listener(&to, &["--count", "2"]);
    let out = send_file(&listener, &tree, &["--json"]);
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
    let first: serde_json::Value =
        serde_json::from_str(out.stdout.lines().next().unwrap()).unwrap();
    assert_eq!(first["path"], format!("{deep}/f"), "{}", out.stdout);
    let out = send_file(&listener, &single, &["--json"]);
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
    let line: serde_json::Value = serde_json::from_str(out.stdout.trim()).unwrap();
    assert_eq!(line["saved_as"], long.as_str(), "{line}");
    listener.finish();
}

/// Of several paths, one that fails does not stop the rest, as with scp
/// and rsync: it is said, the others are saved, and the send fails at
/// the end naming how many did not go (audit, round sixteen: the first
/// refusal ended the list, the rest never sent).
#[test]
fn a_refused_path_of_several_leaves_the_others_sent() {
    let from = fresh_dir("from");
    let paths: Vec<PathBuf> = ["one", "two", "three"]
        .iter()
        .map(|name| write_file(&from, name, name.as_bytes()))
        .collect();
    let to = fresh_dir("to");
    write_file(&to, "one", b"already there");
    let listener = save_dir_listener(&to, &["--count", "2"]);
    let addr = listener.addr_arg();
    let mut args = vec!["send", "--tcp", &addr, "--json", "--file"];
    args.extend(paths.iter().map(|p| p.to_str().unwrap()));
    let out = run(&args, None);
    assert_eq!(out.code(), Some(1), "{}", out.stderr);
    assert!(
        out.stderr.contains("the receiver refused one")
            && out
                .stderr
                .contains("msg: 1 of the 3 paths was not sent (said above)"),
        "{}",
        out.stderr
    );
    for name in ["two", "three"] {
        assert_eq!(std::fs::read(to.join(name)).unwrap(), name.as_bytes());
    }
    assert_eq!(std::fs::read(to.join("one")).unwrap(), b"already there");
    let statuses: Vec<String> = out
        .stdout
        .lines()
        .map(|line| serde_json::from_str::<serde_json::Value>(line).unwrap()["status"].to_string())
        .collect();
    assert_eq!(statuses, ["\"refused\"", "\"saved\"", "\"saved\""]);
    listener.finish();
}

/// A file of a folder that could not be sent (a name msg cannot carry,
/// one that is not UTF-8) fails the send, as tar's and rsync's do, once
/// the rest has gone; each has a `--json` line; a link, never sent by
/// design, fails nothing (audit, round sixteen: exit 0, and no line).
#[test]
fn a_folders_file_that_could_not_be_sent_fails_the_send_after_the_rest() {
    use std::os::unix::ffi::OsStrExt;
    let from = fresh_dir("from");
    let tree = from.join("tree");
    std::fs::create_dir_all(&tree).unwrap();
    write_file(&tree, "ok", b"ok");
    write_file(&tree, "new\nline", b"n");
    std::fs::write(tree.join(std::ffi::OsStr::from_bytes(b"bad\xffname")), b"b").unwrap();
    std::os::unix::fs::symlink("/etc", tree.join("link")).unwrap();

    let to = fresh_dir("to");
    let listener = save_dir_listener(&to, &["--count", "1"]);
    let out = send_file(&listener, &tree, &["--json"]);
    assert_eq!(out.code(), Some(1), "{}", out.stderr);
    assert!(
        out.stderr.contains(
            "2 of the folder's entries could not be sent (said above); the receiver saved \
             1 file and 0 folders"
        ),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("skipped "), "{}", out.stderr);
    assert_eq!(std::fs::read(to.join("tree/ok")).unwrap(), b"ok");
    listener.finish();
    let lines: Vec<serde_json::Value> = out
        .stdout
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let skipped: Vec<&serde_json::Value> =
        lines.iter().filter(|l| l["status"] == "skipped").collect();
    assert_eq!(skipped.len(), 2, "{}", out.stdout);
    assert!(
        skipped.iter().all(|l| l["reason"].is_string()),
        "{}",
        out.stdout
    );
    let summary = lines.last().unwrap();
    assert_eq!(
        (&summary["files"], &summary["skipped"], &summary["failed"]),
        (&1.into(), &3.into(), &2.into()),
        "{summary}"
    );
}

#[test]
fn a_folder_arrives_whole_nested_empty_modes_kept_links_and_special_files_skipped() {
    use std::os::unix::fs::PermissionsExt;
    let from = fresh_dir("from");
    let tree = from.join("tree");
    for dir in ["a/b", "empty", "c"] {
        std::fs::create_dir_all(tree.join(dir)).unwrap();
    }
    write_file(&tree, "a/x.txt", b"hello");
    write_file(&tree, "a/b/big.bin", &content(3 * 1024 * 1024 + 7));
    // A file named like a folder elsewhere in the tree.
    write_file(&tree, "c/b", b"not a folder");
    write_file(&tree, "run.sh", b"#!/bin/sh\n");
    std::fs::set_permissions(tree.join("run.sh"), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(tree.join("a"), std::fs::Permissions::from_mode(0o750)).unwrap();
    // Made with the owner's read and write, then given the sender's mode;
    // and made with exactly the sender's mode.
    std::fs::set_permissions(tree.join("c/b"), std::fs::Permissions::from_mode(0o400)).unwrap();
    std::fs::set_permissions(tree.join("a/x.txt"), std::fs::Permissions::from_mode(0o600)).unwrap();
    std::os::unix::fs::symlink("/etc", tree.join("link")).unwrap();
    let fifo = tree.join("fifo");
    mkfifo(&fifo);

    let to = fresh_dir("to");
    let listener = save_dir_listener(&to, &["--count", "4"]);
    let out = send_file(&listener, &tree, &["--json"]);
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
    let saved = listener.finish();
    assert_eq!(saved.code(), Some(0), "{}", saved.stderr);
    let got = to.join("tree");
    for name in ["a/x.txt", "a/b/big.bin", "c/b", "run.sh"] {
        assert_eq!(
            std::fs::read(got.join(name)).unwrap(),
            std::fs::read(tree.join(name)).unwrap(),
            "{name}"
        );
    }
    assert!(got.join("empty").is_dir());
    let mode = |path: &Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&got.join("run.sh")), 0o755);
    assert_eq!(mode(&got.join("a")), 0o750);
    assert_eq!(mode(&got.join("c/b")), 0o400);
    assert_eq!(mode(&got.join("a/x.txt")), 0o600);
    // Links and special files are skipped, and said.
    assert!(std::fs::symlink_metadata(got.join("link")).is_err());
    assert!(std::fs::symlink_metadata(got.join("fifo")).is_err());
    assert!(
        out.stderr
            .contains("link: a symbolic link: links are not sent"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains("fifo: a FIFO: special files are not sent"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains("sent tree: 4 files, 4 folders, 3145762 bytes in"),
        "{}",
        out.stderr
    );
    // One JSON object per file, then the summary.
    let lines: Vec<serde_json::Value> = out
        .stdout
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(lines.len(), 5, "{}", out.stdout);
    assert_eq!(lines[0]["path"], "a/b/big.bin");
    assert_eq!(lines[0]["status"], "saved");
    assert_eq!(lines[4]["files"], 4);
    assert_eq!(lines[4]["skipped"], 2);
    // The listener prints each file as b3sum does, by its path in the
    // save directory.
    let hash = blake3::hash(b"hello").to_hex().to_string();
    assert!(
        saved.stdout.contains(&format!("{hash}  tree/a/x.txt\n")),
        "{}",
        saved.stdout
    );
    // Nothing partial anywhere.
    let partial = Command::new("find")
        .arg(&to)
        .args(["-name", ".msg-partial-*"])
        .output()
        .unwrap();
    assert!(
        partial.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&partial.stdout)
    );
}

/// A hand-made folder sender: the start, then `entries` (each an entry
/// body and the content of a file), then the end; the receiver's answers
/// to the entries and to the end.
fn raw_folder(listener: &Listener, name: &str, entries: &[(Vec<u8>, &[u8])]) -> Vec<FileResult> {
    use msg_proto::tree::{TreeStart, tree_end};
    let mut stream = TcpStream::connect(listener.addr).unwrap();
    stream.set_read_timeout(Some(DEADLINE)).unwrap();
    let start = TreeStart {
        name: FileName::new(name).unwrap(),
        mode: 0o755,
        files: 0,
        folders: 0,
        bytes: 0,
    };
    stream
        .write_all(&support::frame(&start.to_message()))
        .unwrap();
    let ready = FileResult::from_message(&read_message(&mut stream).unwrap()).unwrap();
    assert_eq!(ready, FileResult::Ready);
    for (body, bytes) in entries {
        let msg = Message::new(Kind::TreeEntry, 0, body.clone());
        stream.write_all(&support::frame(&msg)).unwrap();
        if body[0] == 1 {
            if !bytes.is_empty() {
                let piece = chunk(0, Bytes::copy_from_slice(bytes));
                stream.write_all(&support::frame(&piece)).unwrap();
            }
            let end = FileEnd {
                digest: digest(bytes),
            }
            .to_message();
            stream.write_all(&support::frame(&end)).unwrap();
        }
    }
    stream.write_all(&support::frame(&tree_end())).unwrap();
    (0..=entries.len())
        .map(|_| FileResult::from_message(&read_message(&mut stream).unwrap()).unwrap())
        .collect()
}

/// An entry body built by hand, so that any path and type can be sent.
fn entry_body(kind: u8, path: &str, size: u64) -> Vec<u8> {
    let mut body = vec![kind];
    body.extend_from_slice(&0o644u16.to_be_bytes());
    body.extend_from_slice(&size.to_be_bytes());
    body.extend_from_slice(&u16::try_from(path.len()).unwrap().to_be_bytes());
    body.extend_from_slice(path.as_bytes());
    body
}

#[cfg(unix)]
#[test]
fn hostile_paths_links_and_special_files_in_a_folder_are_refused_alone() {
    let to = fresh_dir("to");
    let outside = fresh_dir("outside");
    // A link planted inside the save directory, to a folder outside it.
    std::fs::create_dir(to.join("tree")).unwrap();
    std::os::unix::fs::symlink(&outside, to.join("tree").join("link")).unwrap();
    let listener = save_dir_listener(&to, &[]);
    let answers = raw_folder(
        &listener,
        "tree",
        &[
            (entry_body(1, "../x", 3), b"bad"),
            (entry_body(1, "/etc/x", 3), b"bad"),
            (entry_body(1, "a/../../x", 3), b"bad"),
            (entry_body(1, "link/passwd", 3), b"bad"),
            (entry_body(2, "link/sub", 0), b""),
            (entry_body(4, "dev", 0), b""),
            (entry_body(1, "nofolder/x", 3), b"bad"),
            (entry_body(1, "ok.txt", 2), b"ok"),
        ],
    );
    let reasons: Vec<String> = answers
        .iter()
        .map(|answer| match answer {
            FileResult::Refused { reason } => reason.clone(),
            FileResult::Saved { name } => format!("saved {name}"),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        reasons,
        [
            r#"refused path "../x": it has a '.' or '..' part"#,
            r#"refused path "/etc/x": it is absolute"#,
            r#"refused path "a/../../x": it has a '.' or '..' part"#,
            "a part of the path is a symbolic link or not a folder",
            "a part of the path is a symbolic link or not a folder",
            "unknown folder entry type 4; this msg knows 1 (file) and 2 (folder)",
            "its folder was not sent before it",
            "saved ok.txt",
            "saved tree",
        ]
    );
    assert_eq!(std::fs::read(to.join("tree/ok.txt")).unwrap(), b"ok");
    assert!(listing(&outside).is_empty(), "{:?}", listing(&outside));
    assert!(!to.join("x").exists() && !to.parent().unwrap().join("x").exists());
    let mut names = listing(&to.join("tree"));
    names.sort();
    assert_eq!(names, ["link", "ok.txt"]);
}

#[cfg(unix)]
#[test]
fn a_name_collision_refuses_that_entry_alone_unless_strict() {
    let from = fresh_dir("from");
    let tree = from.join("tree");
    std::fs::create_dir_all(tree.join("d")).unwrap();
    write_file(&tree, "a.txt", b"new a");
    write_file(&tree, "b.txt", b"new b");
    write_file(&tree, "d/y", b"y");
    let to = fresh_dir("to");
    std::fs::create_dir(to.join("tree")).unwrap();
    write_file(&to.join("tree"), "a.txt", b"old a");
    // A file where the folder d should be.
    write_file(&to.join("tree"), "d", b"a file");
    let listener = save_dir_listener(&to, &[]);
    let out = send_file(&listener, &tree, &[]);
    assert_eq!(out.code(), Some(1), "{}", out.stderr);
    for line in [
        "the receiver refused a.txt: a.txt already exists there, and the listener does not overwrite",
        "the receiver refused d: d exists and is not a folder",
        "the receiver refused d/y: a part of the path is a symbolic link or not a folder",
        "1 file, 0 folders, 5 bytes",
        "3 refused",
        "msg: the receiver refused 3 of the folder's entries and saved 1 file and 0 folders",
    ] {
        assert!(out.stderr.contains(line), "{line}: {}", out.stderr);
    }
    assert_eq!(std::fs::read(to.join("tree/a.txt")).unwrap(), b"old a");
    assert_eq!(std::fs::read(to.join("tree/b.txt")).unwrap(), b"new b");
    assert_eq!(std::fs::read(to.join("tree/d")).unwrap(), b"a file");
    // With --json, a line for each entry refused, folders too: as many as
    // the summary counts.
    let json = send_file(&listener, &tree, &["--json"]);
    let lines: Vec<serde_json::Value> = json
        .stdout
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let mut refused: Vec<(&str, &str)> = lines
        .iter()
        .filter(|line| line["status"] == "refused")
        .map(|line| {
            (
                line["path"].as_str().unwrap(),
                line["kind"].as_str().unwrap(),
            )
        })
        .collect();
    refused.sort_unstable();
    assert_eq!(
        refused,
        [
            ("a.txt", "file"),
            ("b.txt", "file"),
            ("d", "folder"),
            ("d/y", "file")
        ],
        "{}",
        json.stdout
    );
    assert_eq!(lines.last().unwrap()["refused"], 4, "{}", json.stdout);
    // Every entry refused: nothing was saved, and the last words say so
    // (they said "the rest was saved"; audit, round six).
    assert!(
        json.stderr
            .contains("msg: the receiver refused 4 of the folder's entries and saved none"),
        "{}",
        json.stderr
    );
    let strict = send_file(&listener, &tree, &["--strict"]);
    assert_eq!(strict.code(), Some(1), "{}", strict.stderr);
    assert!(
        strict.stderr.contains("cannot send the folder")
            && strict.stderr.contains("a.txt already exists"),
        "{}",
        strict.stderr
    );
    assert!(!strict.stderr.contains("sent tree"), "{}", strict.stderr);
}

#[cfg(unix)]
#[test]
fn a_name_sent_twice_into_a_new_folder_keeps_the_first_and_leaves_nothing_else() {
    // The folder is made by the transfer, so the receiver does not look
    // before writing: the name taken is found when the file is put in
    // place, and the second copy goes without a trace.
    let to = fresh_dir("to");
    let listener = save_dir_listener(&to, &[]);
    let answers = raw_folder(
        &listener,
        "tree",
        &[
            (entry_body(1, "a", 3), b"one"),
            (entry_body(1, "a", 3), b"two"),
            (entry_body(1, "b", 0), b""),
        ],
    );
    assert_eq!(
        answers,
        [
            FileResult::Saved { name: "a".into() },
            FileResult::Refused {
                reason: "a already exists there, and the listener does not overwrite".into()
            },
            FileResult::Saved { name: "b".into() },
            FileResult::Saved {
                name: "tree".into()
            },
        ]
    );
    assert_eq!(std::fs::read(to.join("tree/a")).unwrap(), b"one");
    assert_eq!(listing(&to.join("tree")), ["a", "b"]);
}

#[cfg(unix)]
#[test]
fn a_folder_overwrites_only_when_the_listener_says_so() {
    let from = fresh_dir("from");
    let tree = from.join("tree");
    std::fs::create_dir_all(&tree).unwrap();
    write_file(&tree, "a.txt", b"new a");
    write_file(&tree, "b.txt", b"new b");
    let to = fresh_dir("to");
    std::fs::create_dir(to.join("tree")).unwrap();
    write_file(&to.join("tree"), "a.txt", b"old a");
    let listener = save_dir_listener(&to, &["--overwrite"]);
    let out = send_file(&listener, &tree, &[]);
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
    assert_eq!(std::fs::read(to.join("tree/a.txt")).unwrap(), b"new a");
    assert_eq!(std::fs::read(to.join("tree/b.txt")).unwrap(), b"new b");
    assert_eq!(listing(&to.join("tree")), ["a.txt", "b.txt"]);

    // A listener killed mid-file leaves nothing partial in the folder,
    // where its clean-up at start would not look: the file had no name.
    write_file(&tree, "big.bin", &content(4 << 20));
    let relay = Relay::start(listener.addr, Some(2 << 20), None);
    let mut cmd = support::msg();
    cmd.args(["send", "--tcp", &relay.addr, "--file"])
        .arg(&tree);
    let sender = support::Running::spawn(cmd, None);
    relay.held.recv_timeout(DEADLINE).expect("the relay holds");
    // Time for the writing thread to take the file's first chunks (a
    // partial file, before, was there by then).
    thread::sleep(std::time::Duration::from_millis(300));
    drop(listener.process.kill());
    drop(sender.kill());
    assert_eq!(listing(&to.join("tree")), ["a.txt", "b.txt"]);
}

/// A relay in front of a listener, for one connection: what the client
/// sends is counted and passed on (all of it, or the first `hold_after`
/// bytes, the rest held unread: a network gone quiet); what the listener
/// answers goes back. Dropping [`Relay::cut`]'s sender, or the client's
/// end, closes the listener's side.
struct Relay {
    addr: String,
    /// Bytes passed on to the listener so far.
    passed: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    /// Told once `hold_after` bytes have passed.
    held: std::sync::mpsc::Receiver<()>,
    /// Dropped: the relay closes the listener's side.
    cut: std::sync::mpsc::Sender<()>,
}

impl Relay {
    /// The relay, which also flips the byte at offset `flip` of what the
    /// client sends, if asked.
    fn start(
        upstream: std::net::SocketAddr,
        hold_after: Option<usize>,
        flip: Option<usize>,
    ) -> Self {
        use std::sync::atomic::Ordering;
        let relay = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = relay.local_addr().unwrap().to_string();
        let passed = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counted = std::sync::Arc::clone(&passed);
        let (held_tx, held) = std::sync::mpsc::channel();
        let (cut, cut_rx) = std::sync::mpsc::channel::<()>();
        thread::spawn(move || {
            let (mut client, _) = relay.accept().unwrap();
            let mut server = TcpStream::connect(upstream).unwrap();
            let mut back = server.try_clone().unwrap();
            let mut client_back = client.try_clone().unwrap();
            thread::spawn(move || {
                let _ = std::io::copy(&mut back, &mut client_back);
            });
            let limit = hold_after.unwrap_or(usize::MAX);
            let mut buf = vec![0; 64 * 1024];
            let mut seen = 0;
            while seen < limit {
                let n = match client.read(&mut buf[..(limit - seen).min(64 * 1024)]) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                if let Some(at) = flip.filter(|at| (seen..seen + n).contains(at)) {
                    buf[at - seen] ^= 0x01;
                }
                if server.write_all(&buf[..n]).is_err() {
                    break;
                }
                seen += n;
                counted.store(seen, Ordering::SeqCst);
            }
            if seen == limit {
                let _ = held_tx.send(());
                // Held until the test cuts the connection.
                let _ = cut_rx.recv_timeout(DEADLINE);
            }
            let _ = server.shutdown(std::net::Shutdown::Both);
        });
        Self {
            addr,
            passed,
            held,
            cut,
        }
    }

    fn passed(&self) -> usize {
        self.passed.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// `msg send --file PATH` (with `--resume` if asked) through a relay that
/// holds everything after `hold_after` bytes; once it holds, the sender
/// is killed (SIGKILL) and the listener's side closed, as when a sender
/// dies mid-file. Nothing is under the file's name meanwhile.
fn kill_the_sender_mid_file(
    listener: &Listener,
    to: &Path,
    path: &Path,
    hold_after: usize,
    resume: bool,
) {
    let relay = Relay::start(listener.addr, Some(hold_after), None);
    let mut cmd = support::msg();
    cmd.args([
        "send",
        "--tcp",
        &relay.addr,
        "--file",
        path.to_str().unwrap(),
    ]);
    if resume {
        cmd.arg("--resume");
    }
    let sender = support::Running::spawn(cmd, None);
    relay.held.recv_timeout(DEADLINE).expect("the relay holds");
    let killed = sender.kill();
    assert_eq!(killed.code(), None, "killed by a signal: {}", killed.stderr);
    let name = path.file_name().unwrap();
    assert!(!to.join(name).exists(), "nothing under the final name");
    drop(relay.cut);
}

/// The partial files kept for resuming in `dir`, and their lengths.
fn kept(dir: &Path) -> Vec<(String, u64)> {
    listing(dir)
        .into_iter()
        .filter(|name| name.starts_with(".msg-resume-"))
        .map(|name| {
            let len = std::fs::metadata(dir.join(&name)).unwrap().len();
            (name, len)
        })
        .collect()
}

/// `msg send --resume --file PATH` through a relay that counts what it
/// passes on: what the sender said, and the bytes that went.
fn resume_counted(listener: &Listener, path: &Path) -> (support::Finished, usize) {
    let relay = Relay::start(listener.addr, None, None);
    let out = run(
        &[
            "send",
            "--tcp",
            &relay.addr,
            "--resume",
            "--file",
            path.to_str().unwrap(),
        ],
        None,
    );
    (out, relay.passed())
}

/// A 24 MiB file whose sender is killed after 10 MiB: the receiver keeps
/// what arrived aside, and the next `--resume` sends the rest only; the
/// result is the file, byte for byte, and nothing partial is ever under
/// its name (a watcher looks all along).
#[test]
fn a_sender_killed_mid_file_resumes_where_it_stopped_byte_exact() {
    let from = fresh_dir("from");
    let to = fresh_dir("to");
    let bytes = content(24 << 20);
    let path = write_file(&from, "big.bin", &bytes);
    let mut listener = save_dir_listener(&to, &[]);
    let watching = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let watcher = {
        let (to, watching) = (to.clone(), std::sync::Arc::clone(&watching));
        thread::spawn(move || {
            let mut looks = 0u64;
            while watching.load(std::sync::atomic::Ordering::SeqCst) {
                if let Ok(meta) = std::fs::metadata(to.join("big.bin")) {
                    assert_eq!(meta.len(), 24 << 20, "a partial file under the final name");
                }
                looks += 1;
                thread::sleep(std::time::Duration::from_millis(1));
            }
            looks
        })
    };
    kill_the_sender_mid_file(&listener, &to, &path, 10 << 20, true);
    listener.process.wait_for_stderr("kept ");
    let held = kept(&to);
    assert_eq!(held.len(), 1, "{:?}", listing(&to));
    let offset = held[0].1;
    // What passed, less the frames' headers, up to the chunk that was cut.
    assert!(offset > 8 << 20 && offset <= 10 << 20, "{offset}");
    assert_eq!(listing(&to), [held[0].0.clone()]);

    let (out, passed) = resume_counted(&listener, &path);
    watching.store(false, std::sync::atomic::Ordering::SeqCst);
    assert!(watcher.join().unwrap() > 0);
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
    assert!(
        out.stderr.contains(&format!(
            "resumed at byte {offset} ({} bytes sent)",
            (24 << 20) - offset
        )),
        "{}",
        out.stderr
    );
    assert_eq!(std::fs::read(to.join("big.bin")).unwrap(), bytes);
    assert_eq!(listing(&to), ["big.bin"], "the partial file became it");
    // The rest, and a few KiB of headers and answers: not the whole file.
    let rest = (24 << 20) - offset as usize;
    assert!(
        passed >= rest && passed < rest + (64 << 10),
        "{passed} for {rest}"
    );
    let line = format!("{}  big.bin\n", blake3::hash(&bytes).to_hex());
    listener.process.wait_for_stdout_end(line.as_bytes());
}

/// An 8 MiB file's transfer cut off after 3 MiB, then `change` made (to
/// the source, whose new bytes it leaves in the vector, or to the kept
/// partial file), then resumed: the sender finds the receiver's bytes are
/// not the file's, sends the whole file, and the sender's file is saved.
fn changed_then_resumed_whole(name: &str, change: impl FnOnce(&Path, &Path, &mut Vec<u8>)) {
    let from = fresh_dir("from");
    let to = fresh_dir("to");
    let mut bytes = content(8 << 20);
    let path = write_file(&from, name, &bytes);
    let mut listener = save_dir_listener(&to, &[]);
    kill_the_sender_mid_file(&listener, &to, &path, 3 << 20, true);
    listener.process.wait_for_stderr("kept ");
    let (partial, offset) = kept(&to).remove(0);
    change(&path, &to.join(partial), &mut bytes);
    let (out, passed) = resume_counted(&listener, &path);
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
    assert!(
        out.stderr.contains(&format!(
            "whole: the receiver's {offset} bytes differed from the file's"
        )),
        "{}",
        out.stderr
    );
    assert!(passed >= 8 << 20, "{passed}");
    assert_eq!(std::fs::read(to.join(name)).unwrap(), bytes);
    assert_eq!(listing(&to), [name]);
}

/// Resuming a file that changed since (same name and size, other first
/// bytes): the sender's hash of the receiver's range differs, so the
/// whole file goes and replaces what was kept. Started over, not refused.
#[test]
fn a_source_changed_since_is_detected_and_sent_whole() {
    changed_then_resumed_whole("changed.bin", |source, _, bytes| {
        bytes[1000] ^= 0xff;
        std::fs::write(source, bytes).unwrap();
    });
}

/// A partial file changed on the receiver's disk (one byte flipped) is
/// caught by the prefix hash: the whole file goes again, and what is saved
/// is the sender's.
#[test]
fn a_tampered_partial_file_is_detected_by_the_prefix_hash() {
    changed_then_resumed_whole("kept.bin", |_, partial, _| {
        let mut held = std::fs::read(partial).unwrap();
        held[12_345] ^= 0x01;
        std::fs::write(partial, &held).unwrap();
    });
}

/// Without --resume, a sender killed mid-file leaves nothing behind, as
/// before; a folder with --resume is refused before anything is sent.
#[test]
fn without_resume_nothing_partial_is_kept_and_folders_refuse_it() {
    let from = fresh_dir("from");
    let to = fresh_dir("to");
    let path = write_file(&from, "plain.bin", &content(8 << 20));
    let mut listener = save_dir_listener(&to, &[]);
    kill_the_sender_mid_file(&listener, &to, &path, 3 << 20, false);
    listener.process.wait_for_stderr("dropped connection");
    assert!(listing(&to).is_empty(), "{:?}", listing(&to));
    support::assert_usage_error(
        &[
            "send",
            "--tcp",
            &listener.addr_arg(),
            "--resume",
            "--file",
            from.to_str().unwrap(),
        ],
        "--resume takes files, not folders",
    );
}

/// Kept partial files go once older than --partial-max-age (24h unless
/// said), at start; younger ones, and other names, stay.
#[test]
fn kept_partial_files_go_after_partial_max_age() {
    use std::time::{Duration, SystemTime};
    let to = fresh_dir("to");
    let old = format!(".msg-resume-{}", "0123456789abcdef".repeat(2));
    let young = format!(".msg-resume-{}", "fedcba9876543210".repeat(2));
    for (name, age) in [(&old, 3 * 60 * 60), (&young, 60)] {
        let path = write_file(&to, name, b"partial");
        std::fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(SystemTime::now() - Duration::from_secs(age))
            .unwrap();
    }
    let listener = save_dir_listener(&to, &[]);
    drop(listener);
    assert_eq!(listing(&to), [old.clone(), young.clone()], "within 24h");
    let mut listener = save_dir_listener(&to, &["--partial-max-age", "2h"]);
    assert!(
        listener
            .process
            .stderr_contains(&format!("removed {old}, a partial file last written 3h")),
        "{}",
        listener.process.kill().stderr
    );
    assert_eq!(listing(&to), [young]);
}

/// The resume exchange by hand, as docs/wire.md tells it: the partial
/// file of `hello.txt` (5 bytes) under the name the page gives is offered
/// with its hash; a `FileFrom` that is neither the offer nor 0 is refused
/// (what was kept stays, and the listener serves on); the offer taken,
/// the rest completes the file, checked by the whole file's digest.
#[test]
fn the_resume_exchange_by_hand_as_the_wire_docs_tell_it() {
    use msg_proto::file::{FLAG_RESUME, FileFrom, FileOffer};
    let to = fresh_dir("to");
    let kept = to.join(".msg-resume-dd741dc1d0ab096bfff42f8125e5163b");
    std::fs::write(&kept, b"hel").unwrap();
    let listener = save_dir_listener(&to, &[]);
    let offer_for = |stream: &mut TcpStream| {
        let mut msg = header("hello.txt", 5).to_message();
        msg.flags |= FLAG_RESUME;
        stream.write_all(&support::frame(&msg)).unwrap();
        FileOffer::from_message(&read_message(stream).unwrap(), 5).unwrap()
    };
    let mut stream = TcpStream::connect(listener.addr).unwrap();
    stream.set_read_timeout(Some(DEADLINE)).unwrap();
    let offer = offer_for(&mut stream);
    assert_eq!(offer.offset, 3);
    assert_eq!(offer.digest, digest(b"hel"));
    stream
        .write_all(&support::frame(&FileFrom { offset: 2 }.to_message()))
        .unwrap();
    let refused = FileResult::from_message(&read_message(&mut stream).unwrap()).unwrap();
    assert_eq!(
        refused,
        FileResult::Refused {
            reason: "offset 2 does not fit a resumed transfer of 3 bytes".into()
        }
    );
    assert_eq!(std::fs::read(&kept).unwrap(), b"hel");
    drop(stream);

    let mut stream = TcpStream::connect(listener.addr).unwrap();
    stream.set_read_timeout(Some(DEADLINE)).unwrap();
    assert_eq!(offer_for(&mut stream).offset, 3);
    for msg in [
        FileFrom { offset: 3 }.to_message(),
        chunk(0, Bytes::from_static(b"lo")),
        FileEnd {
            digest: digest(b"hello"),
        }
        .to_message(),
    ] {
        stream.write_all(&support::frame(&msg)).unwrap();
    }
    let saved = FileResult::from_message(&read_message(&mut stream).unwrap()).unwrap();
    assert_eq!(
        saved,
        FileResult::Saved {
            name: "hello.txt".into()
        }
    );
    assert_eq!(std::fs::read(to.join("hello.txt")).unwrap(), b"hello");
    assert_eq!(listing(&to), ["hello.txt"]);
}

/// Under a file-size limit (`ulimit -f`, systemd's `LimitFSIZE=`), a file
/// past it is that one transfer's error: the sender is told `File too
/// large` as it is told of a full disk, nothing partial is left, and the
/// listener serves the next peer. SIGXFSZ, whose default action is to
/// kill, used to end the listener and every peer with it, its partial
/// file left behind (audit, round seven).
#[test]
fn a_file_past_the_file_size_limit_is_refused_and_the_listener_serves_on() {
    let save = fresh_dir("fsize-save");
    let mut cmd = support::msg();
    cmd.args(["listen", "--tcp", "-v", "127.0.0.1:0", "--save-dir"])
        .arg(&save);
    support::limit(&mut cmd, libc::RLIMIT_FSIZE, 1 << 20);
    let listener = Listener::start_command(cmd);
    let addr = listener.addr_arg();
    let from = fresh_dir("fsize-from");
    let path = write_file(&from, "big.bin", &content(3 << 20));
    let out = run(
        &["send", "--tcp", &addr, "--file", path.to_str().unwrap()],
        None,
    );
    assert_eq!(out.code(), Some(1), "{}", out.stderr);
    assert!(
        out.stderr
            .contains("the receiver refused big.bin: cannot write the file: File too large"),
        "{}",
        out.stderr
    );
    let out = run(&["send", "--tcp", &addr, "served"], None);
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
    let finished = listener.process.interrupt();
    assert_eq!(finished.lines(), ["served"], "{}", finished.stderr);
    assert!(
        finished.stderr.contains("msg listen: 1 message"),
        "{}",
        finished.stderr
    );
    let left: Vec<_> = std::fs::read_dir(&save).unwrap().collect();
    assert!(left.is_empty(), "{left:?}");
}

/// A listener at its user's limit on threads refuses a file and a folder
/// saying why, the folder it made removed again: tokio's pool panicked in
/// the receiving task (`OS can't spawn worker thread`) and the sender
/// heard a reset (audit, round seven). As nobody, whom the limit binds,
/// with room for the listener's own threads (the main one, its log's and
/// its printer's) and none for a transfer's.
#[test]
fn at_the_limit_on_threads_a_file_and_a_folder_are_refused_saying_why() {
    let Some(mut cmd) = support::as_nobody() else {
        return;
    };
    let save = fresh_dir("nproc-save");
    std::os::unix::fs::chown(&save, Some(65534), Some(65534)).unwrap();
    cmd.arg(env!("CARGO_BIN_EXE_msg"))
        .args(["listen", "--tcp", "-v", "127.0.0.1:0", "--save-dir"])
        .arg(&save);
    support::limit(&mut cmd, libc::RLIMIT_NPROC, 3);
    let listener = Listener::start_command(cmd);
    let addr = listener.addr_arg();
    let from = fresh_dir("nproc-from");
    let file = write_file(&from, "f.bin", &content(100_000));
    let tree = from.join("tree");
    std::fs::create_dir(&tree).unwrap();
    write_file(&tree, "a", b"a");
    for (path, refused) in [
        (file, "the receiver refused f.bin: cannot write the file: "),
        (
            tree,
            "the receiver refused tree: cannot write the folder tree: ",
        ),
    ] {
        let out = run(
            &["send", "--tcp", &addr, "--file", path.to_str().unwrap()],
            None,
        );
        assert_eq!(out.code(), Some(1), "{}", out.stderr);
        assert!(
            out.stderr
                .contains(&format!("{refused}Resource temporarily unavailable")),
            "{}",
            out.stderr
        );
    }
    let finished = listener.process.interrupt();
    assert!(!finished.stderr.contains("panicked"), "{}", finished.stderr);
    let left: Vec<_> = std::fs::read_dir(&save).unwrap().collect();
    assert!(left.is_empty(), "{left:?}");

    // No thread at all beside the main one: no log thread either (whose
    // crate panicked, exit 101, where it could not start one), and the
    // listener says which of its own it could not start.
    let Some(mut cmd) = support::as_nobody() else {
        return;
    };
    cmd.arg(env!("CARGO_BIN_EXE_msg"))
        .args(["listen", "--tcp", "127.0.0.1:0"]);
    support::limit(&mut cmd, libc::RLIMIT_NPROC, 1);
    let out = support::Running::spawn(cmd, None).finish();
    assert_eq!(out.code(), Some(1), "{}", out.stderr);
    assert!(
        out.stderr
            .contains("cannot start the output thread: Resource temporarily unavailable"),
        "{}",
        out.stderr
    );
}
