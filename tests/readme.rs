//! The README's examples run as written: each ```sh block after a
//! `<!-- test -->` line is run by `sh`, with the `msg` Cargo built first on
//! `PATH`, in a fresh home directory (`~/.msg-secret` lands there).
//!
//! A listener line (`msg listen ...`) runs in the background, as it would
//! in a second terminal: the lines after it start once it logs that it
//! listens, and it is stopped when the block ends. Every other line must
//! succeed (`set -e`), and something must reach stdout (each marked block
//! has a listener that prints what it got). The examples use the default port 9000, so a
//! machine where something else holds it skips the test, saying so.
//!
//! Bounded: a listener gets [`DEADLINE`] to start and a block as long to
//! finish; then its whole process group is killed.

mod support;

use std::io::Read;
use std::net::{TcpListener, UdpSocket};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use support::DEADLINE;

/// The line that marks the next ```sh block as one to run.
const MARK: &str = "<!-- test -->";

/// The marked blocks of `readme`, each with the line it starts on.
fn marked_blocks(readme: &str) -> Vec<(usize, Vec<&str>)> {
    let mut blocks = Vec::new();
    let mut lines = readme.lines().enumerate();
    while let Some((_, line)) = lines.next() {
        if line.trim() != MARK {
            continue;
        }
        let (start, fence) = lines.next().expect("a block after the mark");
        assert_eq!(
            fence,
            "```sh",
            "line {}: the mark must precede a ```sh block",
            start + 1
        );
        let body = lines
            .by_ref()
            .map(|(_, line)| line)
            .take_while(|line| *line != "```")
            .collect();
        blocks.push((start + 2, body));
    }
    blocks
}

/// `line` without a trailing `# comment` (a `#` after a blank, outside
/// quotes).
fn without_comment(line: &str) -> &str {
    let mut quote = None;
    let mut after_blank = true;
    for (at, c) in line.char_indices() {
        match (quote, c) {
            (None, '\'' | '"') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (None, '#') if after_blank => return line[..at].trim_end(),
            _ => {}
        }
        after_blank = c.is_whitespace();
    }
    line.trim_end()
}

/// The shell script for one block: listeners in the background, each
/// waited for, and all of them stopped on the way out.
fn script(body: &[&str]) -> String {
    let mut out = String::from(
        "set -eu\n\
         pids=\n\
         trap 'kill $pids 2>/dev/null || true; wait' EXIT\n",
    );
    for (n, line) in body.iter().enumerate() {
        if !line.trim_start().starts_with("msg listen") {
            out.push_str(line);
            out.push('\n');
            continue;
        }
        let command = without_comment(line);
        assert!(
            !command.contains(['|', ';', '&', '(']),
            "a listener line must be one command, to run in the background: {line}"
        );
        // `$!` is then msg itself, and its log says when it is ready.
        let log = format!("listener-{n}.log");
        out.push_str(&format!(
            "RUST_LOG=info {command} 2>{log} &\n\
             pids=\"$pids $!\"\n\
             tries=0\n\
             until grep -q 'listening on' {log}; do\n\
             \x20 tries=$((tries + 1))\n\
             \x20 if [ $tries -gt {} ]; then cat {log} >&2; exit 1; fi\n\
             \x20 sleep 0.05\n\
             done\n",
            DEADLINE.as_millis() / 50
        ));
    }
    out
}

/// Whether the examples' port is free on both loopbacks, for both
/// transports.
fn port_9000_is_free() -> bool {
    ["127.0.0.1:9000", "[::1]:9000"]
        .iter()
        .all(|addr| TcpListener::bind(addr).is_ok() && UdpSocket::bind(addr).is_ok())
}

/// Runs `script` in `home` and returns its status, stdout and stderr;
/// the whole process group is killed after [`DEADLINE`] or when it ends.
fn run_block(script: &str, home: &Path) -> (Option<i32>, String, String) {
    let msg = Path::new(env!("CARGO_BIN_EXE_msg"));
    let path = std::env::join_paths(std::iter::once(msg.parent().unwrap().to_owned()).chain(
        std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()),
    ))
    .unwrap();
    let mut child = Command::new("sh")
        .args(["-c", script])
        .current_dir(home)
        .env("HOME", home)
        .env("PATH", path)
        .env_remove("RUST_LOG")
        .env_remove("MSG_SECRET")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own group: a listener left behind is killed with it.
        .process_group(0)
        .spawn()
        .expect("run sh");
    let group = format!("-{}", child.id());
    let read = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = pipe.read_to_string(&mut text);
            text
        })
    };
    let stdout = read(Box::new(child.stdout.take().unwrap()));
    let stderr = read(Box::new(child.stderr.take().unwrap()));
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status.code();
        }
        if started.elapsed() > DEADLINE {
            break None;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    // Whatever is left of the group (nothing, normally: the script stops
    // its listeners on the way out).
    let _ = Command::new("kill")
        .args(["-KILL", "--", &group])
        .stderr(Stdio::null())
        .status();
    let _ = child.wait();
    (status, stdout.join().unwrap(), stderr.join().unwrap())
}

#[test]
fn the_readmes_marked_examples_run_as_written() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let blocks = marked_blocks(&readme);
    assert!(blocks.len() >= 3, "only {} marked blocks", blocks.len());
    if !port_9000_is_free() {
        support::skip("port 9000, which the README's examples use, is taken here");
        return;
    }
    for (line, body) in blocks {
        let home = support::fresh_path("readme");
        std::fs::create_dir(&home).unwrap();
        let (status, stdout, stderr) = run_block(&script(&body), &home);
        assert_eq!(
            status,
            Some(0),
            "README.md line {line}:\n{}\nstdout:\n{stdout}\nstderr:\n{stderr}",
            body.join("\n")
        );
        // The listener's output: the messages reached it (a UDP send
        // succeeds whether or not they do).
        assert!(
            !stdout.is_empty(),
            "README.md line {line}: nothing printed\nstderr:\n{stderr}"
        );
        std::fs::remove_dir_all(&home).unwrap();
    }
}

#[test]
fn comments_are_cut_outside_quotes_only() {
    assert_eq!(
        without_comment("msg listen --udp   # note"),
        "msg listen --udp"
    );
    assert_eq!(without_comment("msg listen 'a # b'"), "msg listen 'a # b'");
    assert_eq!(without_comment("msg listen a#b"), "msg listen a#b");
}
