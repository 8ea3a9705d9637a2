//! `msg exec` and `msg listen --exec`, with the real binary on loopback:
//! commands run for authenticated peers only, their output comes back byte
//! for byte, and every limit is enforced with a message to both sides.

mod support;

use std::io::Write;
use std::time::{Duration, Instant};

use support::{Listener, Running, msg, read_frame, run};

/// A listener with `--exec`, a fresh secret, and `extra` flags.
struct ExecListener {
    listener: Listener,
    secret: String,
}

impl ExecListener {
    fn start(extra: &[&str]) -> Self {
        let secret = support::secret_file(b"exec test secret\n", 0o600)
            .to_str()
            .unwrap()
            .to_owned();
        let mut args = vec!["--exec", "--secret-file", &secret];
        args.extend_from_slice(extra);
        let listener = Listener::start("--tcp", "127.0.0.1", &args);
        Self { listener, secret }
    }

    /// `msg exec` against it, with `stdin`.
    fn exec(&self, command: &[&str], stdin: Option<&[u8]>) -> support::Finished {
        let addr = self.listener.addr_arg();
        let mut args = vec!["exec", "--secret-file", &self.secret, &addr, "--"];
        args.extend_from_slice(command);
        run(&args, stdin)
    }

    /// `msg exec` of `command` on this listener, to spawn and leave running.
    fn exec_command(&self, command: &[&str]) -> std::process::Command {
        let addr = self.listener.addr_arg();
        let mut cmd = msg();
        cmd.args(["exec", "--secret-file", &self.secret, &addr, "--"]);
        cmd.args(command);
        cmd
    }
}

#[test]
fn output_comes_back_byte_for_byte_and_streams_stay_apart() {
    let listener = ExecListener::start(&[]);
    // Not UTF-8 (GBK for "ni hao", and two bytes that are nothing at all).
    let out = listener.exec(&["printf", "\\304\\343\\272\\303\\377\\376"], None);
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
    assert_eq!(out.stdout_bytes(), b"\xc4\xe3\xba\xc3\xff\xfe");

    let out = listener.exec(&["sh", "-c", "echo to-out; echo to-err >&2"], None);
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
    assert_eq!(out.stdout, "to-out\n");
    assert!(out.stderr.contains("to-err"), "{}", out.stderr);
    assert!(!out.stdout.contains("to-err"));
}

#[test]
fn the_exit_status_is_the_commands() {
    let listener = ExecListener::start(&[]);
    assert_eq!(listener.exec(&["sh", "-c", "exit 7"], None).code(), Some(7));
    assert_eq!(listener.exec(&["false"], None).code(), Some(1));
    // Killed by a signal: 128 + the signal, as shells report it.
    assert_eq!(
        listener.exec(&["sh", "-c", "kill -TERM $$"], None).code(),
        Some(143)
    );
    // The signals' defaults are the command's, not msg's: the listener
    // ignores SIGXFSZ (a file past its `ulimit -f` is an error to tell a
    // sender), and a command past its own is killed by it, 128 + 25, as
    // anywhere else, not told EFBIG (audit, round seven).
    let past = "ulimit -f 1; exec head -c 100000 /dev/zero";
    assert_eq!(
        listener
            .exec(&["sh", "-c", &format!("{past} > /dev/null")], None)
            .code(),
        Some(0)
    );
    let file = support::fresh_path("fsize");
    let out = listener.exec(&["sh", "-c", &format!("{past} > {}", file.display())], None);
    assert_eq!(out.code(), Some(153), "{}", out.stderr);
    let out = listener.exec(&["no-such-program-here"], None);
    assert_eq!(out.code(), Some(1));
    assert!(
        out.stderr
            .contains("refused the command: cannot run no-such-program-here"),
        "{}",
        out.stderr
    );
}

#[test]
fn stdin_is_forwarded_and_its_end_closes_the_commands() {
    let listener = ExecListener::start(&[]);
    let out = listener.exec(&["tr", "a-z", "A-Z"], Some(b"hello\nworld\n"));
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
    assert_eq!(out.stdout, "HELLO\nWORLD\n");
    // More than the pipes hold, through a command that echoes it all.
    let big = vec![b'x'; 1024 * 1024];
    let out = listener.exec(&["cat"], Some(&big));
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
    assert_eq!(out.stdout.len(), big.len());
}

/// A command that takes input and gives output at once (`cat`), with far
/// more of both than pipes and sockets hold: the client reads output
/// while it sends input, and the listener takes input as soon as the
/// command makes room. Before, each waited on a write the other no longer
/// read (a few MiB in, then nothing until the exec timeout), and the
/// listener took input at most 16 pieces per 250 ms.
#[test]
fn input_and_output_flow_at_once_through_a_command() {
    let listener = ExecListener::start(&["--exec-max-output", "100000000"]);
    let big = vec![b'y'; 48 * 1024 * 1024];
    let out = listener.exec(&["cat"], Some(&big));
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
    assert_eq!(out.stdout_bytes().len(), big.len());
    assert!(out.stdout_bytes().iter().all(|&b| b == b'y'));
}

#[test]
fn a_command_past_its_timeout_is_killed_with_its_children() {
    let listener = ExecListener::start(&["--exec-timeout", "300ms"]);
    let start = Instant::now();
    // A child in the background must die with the group.
    let marker = support::fresh_path("exec-late");
    let _ = std::fs::remove_file(&marker);
    let script = format!("(sleep 2; touch {}) & sleep 30", marker.display());
    let out = listener.exec(&["sh", "-c", &script], None);
    let took = start.elapsed();
    assert_eq!(out.code(), Some(1), "{}", out.stderr);
    assert!(
        out.stderr
            .contains("ran past 300ms (--exec-timeout) and was killed"),
        "{}",
        out.stderr
    );
    assert!(took < Duration::from_secs(10), "took {took:?}");
    std::thread::sleep(Duration::from_millis(2500));
    assert!(!marker.exists(), "the background child outlived the kill");
}

#[test]
fn output_over_the_cap_kills_the_command() {
    let listener = ExecListener::start(&["--exec-max-output", "1000"]);
    let out = listener.exec(&["sh", "-c", "head -c 100000 /dev/zero; sleep 30"], None);
    assert_eq!(out.code(), Some(1), "{}", out.stderr);
    assert!(
        out.stderr
            .contains("wrote more than 1000 bytes (--exec-max-output)"),
        "{}",
        out.stderr
    );
    assert_eq!(out.stdout_bytes().len(), 1000);
}

#[test]
fn one_command_too_many_is_refused_not_queued() {
    let listener = ExecListener::start(&["--exec-max", "1"]);
    let addr = listener.listener.addr_arg();
    let mut first = msg();
    first.args([
        "exec",
        "--secret-file",
        &listener.secret,
        &addr,
        "--",
        "sleep",
        "3",
    ]);
    let first = Running::spawn(first, None);
    // The first holds the only slot until it ends; wait until it is running.
    let mut listener = listener;
    listener
        .listener
        .process
        .wait_for_stderr("running \"sleep\"");
    let out = listener.exec(&["true"], None);
    assert_eq!(out.code(), Some(1), "{}", out.stderr);
    assert!(
        out.stderr.contains("runs at most 1 at once"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("--exec-max 1"), "{}", out.stderr);
    assert_eq!(first.finish().code(), Some(0));
    assert_eq!(listener.exec(&["true"], None).code(), Some(0));
}

#[test]
fn exec_without_a_secret_is_refused_at_start() {
    support::assert_usage_error(
        &["listen", "--tcp", "--exec", "127.0.0.1:0"],
        "--secret-file or MSG_SECRET",
    );
}

/// Audit, round five: a command over `--max-frame` failed after
/// connecting (exit 1), where `msg send` refuses such a message at once
/// (exit 2); and a limit under the header and tag said "0 for the body".
/// Both are known before anything is sent: nothing listens at port 9.
#[test]
fn a_command_over_the_frame_limit_is_refused_at_start() {
    let secret = support::secret_arg(b"the frame limit");
    let exec = |max_frame: &str, why: &str| {
        support::assert_usage_error(
            &[
                "exec",
                "--secret-file",
                &secret,
                "--max-frame",
                max_frame,
                "127.0.0.1:9",
                "--",
                "true",
            ],
            why,
        );
    };
    exec(
        "28",
        "--max-frame 28 holds no message with a secret: its 28-byte header and 32-byte tag alone are 60 bytes",
    );
    exec(
        "61",
        "message is 10 bytes; a TCP frame holds at most 61 bytes, set by --max-frame",
    );
}

#[test]
fn a_wrong_secret_runs_nothing() {
    let listener = ExecListener::start(&[]);
    let marker = support::fresh_path("exec-wrong");
    let _ = std::fs::remove_file(&marker);
    let wrong = support::secret_file(b"not the secret\n", 0o600);
    let addr = listener.listener.addr_arg();
    let out = run(
        &[
            "exec",
            "--secret-file",
            wrong.to_str().unwrap(),
            &addr,
            "--",
            "touch",
            marker.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(out.code(), Some(1), "{}", out.stderr);
    assert!(
        out.stderr.contains("authentication failed"),
        "{}",
        out.stderr
    );
    assert!(
        !marker.exists(),
        "a command ran for a peer that failed authentication"
    );
    // A hand-made client that skips the handshake and sends a command.
    let mut raw = std::net::TcpStream::connect(listener.listener.addr).unwrap();
    raw.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let command = msg_proto::exec::Command::new(vec![
        b"touch".to_vec(),
        marker.to_str().unwrap().as_bytes().to_vec(),
    ])
    .unwrap();
    let mut body = Vec::new();
    msg_proto::encode(&command.to_message(), &mut body).unwrap();
    let mut frame = u32::try_from(body.len()).unwrap().to_be_bytes().to_vec();
    frame.extend_from_slice(&body);
    raw.write_all(&frame).unwrap();
    let mut rest = Vec::new();
    let _ = std::io::Read::read_to_end(&mut raw, &mut rest);
    assert!(!marker.exists(), "a command ran without a handshake");
}

#[test]
fn only_allowed_programs_run() {
    let listener = ExecListener::start(&["--exec-allow", "echo", "--exec-allow", "true"]);
    let out = listener.exec(&["echo", "allowed"], None);
    assert_eq!(
        (out.code(), out.stdout.as_str()),
        (Some(0), "allowed\n"),
        "{}",
        out.stderr
    );
    let out = listener.exec(&["sh", "-c", "echo sneaky"], None);
    assert_eq!(out.code(), Some(1), "{}", out.stderr);
    assert!(
        out.stderr
            .contains("sh is not one of the programs this listener runs (--exec-allow)"),
        "{}",
        out.stderr
    );
    assert_eq!(out.stdout, "");
}

#[test]
fn a_client_that_leaves_takes_its_command_along() {
    let listener = ExecListener::start(&[]);
    let marker = support::fresh_path("exec-gone");
    let _ = std::fs::remove_file(&marker);
    let script = format!("sleep 2; touch {}", marker.display());
    let cmd = listener.exec_command(&["sh", "-c", &script]);
    let client = Running::spawn(cmd, None);
    let mut listener = listener;
    listener.listener.process.wait_for_stderr("running \"sh\"");
    drop(client.kill());
    listener
        .listener
        .process
        .wait_for_stderr("its command was killed");
    std::thread::sleep(Duration::from_millis(2500));
    assert!(!marker.exists(), "the command outlived its client");
}

/// Audit, round three: msg turns transparent huge pages off for itself
/// (with them, each thread's heap took 2 MiB pages, and 1,000 connections
/// of 4 bytes each held 700 MB of the blocking listener's); the commands
/// it runs get them back.
#[test]
#[cfg(target_os = "linux")]
fn msg_runs_without_huge_pages_and_its_commands_with_them() {
    let listener = ExecListener::start(&[]);
    let thp = |status: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix("THP_enabled:"))
            .map(|value| value.trim().to_owned())
    };
    let own = std::fs::read_to_string(format!("/proc/{}/status", listener.listener.process.pid()))
        .unwrap();
    let Some(own) = thp(&own) else {
        support::skip("this kernel's /proc/PID/status has no THP_enabled line");
        return;
    };
    assert_eq!(own, "0", "the listener");
    let out = listener.exec(&["cat", "/proc/self/status"], None);
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
    assert_eq!(thp(&out.stdout).as_deref(), Some("1"), "the command");
}

/// The listener raises its open-file limit for its connections
/// (`--max-conns`); a command gets the limit the listener started with,
/// as if started anywhere else: many programs still `select`, which takes
/// no descriptor past 1,023.
#[test]
fn a_command_gets_the_open_file_limit_the_listener_started_with() {
    let secret = support::secret_file(b"exec test secret\n", 0o600);
    let secret = secret.to_str().unwrap();
    let mut cmd = msg();
    cmd.args(["listen", "--tcp", "-v", "127.0.0.1:0", "--exec"])
        .args(["--secret-file", secret, "--max-conns", "2000"]);
    support::limits(&mut cmd, libc::RLIMIT_NOFILE, 1000, 4096);
    let listener = Listener::start_command(cmd);
    let addr = listener.addr_arg();
    let out = run(
        &[
            "exec",
            "--secret-file",
            secret,
            &addr,
            "--",
            "sh",
            "-c",
            "ulimit -Sn; ulimit -Hn",
        ],
        None,
    );
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
    assert_eq!(out.stdout, "1000\n4096\n");
    let finished = listener.process.interrupt();
    assert!(
        finished
            .stderr
            .contains("raised the open-file limit from 1000 to 2192"),
        "{}",
        finished.stderr
    );
}

/// A command that prints nothing for longer than the client's silence
/// limit (15s) is not taken for a stopped listener: the listener beats.
#[test]
fn a_quiet_command_outlasts_the_clients_silence_limit() {
    let listener = ExecListener::start(&[]);
    let start = Instant::now();
    let out = listener.exec(&["sh", "-c", "sleep 17; echo done"], None);
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
    assert_eq!(out.stdout, "done\n");
    assert!(start.elapsed() >= Duration::from_secs(17));
}

/// Audit, round three: a listener stopped after the handshake (SIGSTOP:
/// the kernel still acknowledges what is sent to it) held `msg exec` for
/// ever. Now the client gives it up after three missed beats.
#[test]
fn a_stopped_listener_is_given_up_after_its_silence() {
    let mut listener = ExecListener::start(&[]);
    let pid = listener.listener.process.pid().to_string();
    let client = Running::spawn(listener.exec_command(&["sleep", "60"]), None);
    listener
        .listener
        .process
        .wait_for_stderr("running \"sleep\"");
    let signal = |name: &str| {
        let sent = std::process::Command::new("kill")
            .args([name, &pid])
            .status()
            .unwrap();
        assert!(sent.success(), "kill {name} {pid}");
    };
    signal("-STOP");
    let start = Instant::now();
    let out = client.finish();
    // Let it go on: it sees its client gone, and kills the sleep.
    signal("-CONT");
    assert_eq!(out.code(), Some(1), "{}", out.stderr);
    assert!(
        out.stderr.contains("the listener said nothing for 15s"),
        "{}",
        out.stderr
    );
    assert!(
        start.elapsed() < Duration::from_secs(18),
        "{:?}",
        start.elapsed()
    );
    listener
        .listener
        .process
        .wait_for_stderr("its command was killed");
}

/// The processes whose argv is exactly `argv`, from /proc. A zombie has no
/// argv there, and is not counted: it is dead, only not yet reaped.
fn processes(argv: &[&str]) -> Vec<u32> {
    let mut want = argv.join("\0").into_bytes();
    want.push(0);
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|argv| argv == want))
        .collect()
}

/// `sleep N` processes that a command starts and that must not outlive it:
/// each N odd and used by one test only. Any left when the test ends
/// (passed or not) is killed, so that a failing test leaves nothing behind.
struct Sleeps(Vec<String>);

impl Sleeps {
    fn new(numbers: &[u32]) -> Self {
        let sleeps = Self(numbers.iter().map(u32::to_string).collect());
        sleeps.kill(); // left by an earlier run that failed
        sleeps
    }

    fn running(&self) -> Vec<String> {
        self.0
            .iter()
            .filter(|n| !processes(&["sleep", n]).is_empty())
            .map(|n| format!("sleep {n}"))
            .collect()
    }

    /// Waits (bounded) until every one of them runs.
    fn wait_running(&self) {
        let deadline = Instant::now() + support::DEADLINE;
        while self.running().len() < self.0.len() {
            assert!(
                Instant::now() < deadline,
                "only {:?} started",
                self.running()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits (bounded) until none runs; those still running.
    fn survivors(&self) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let running = self.running();
            if running.is_empty() || Instant::now() > deadline {
                return running;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// A shell script that starts the first of them in the background,
    /// one for each `how` (e.g. `setsid`), output elsewhere so that they do
    /// not hold the command's pipes, and goes on only once each runs
    /// `sleep`.
    fn script(&self, how: &[&str]) -> String {
        let mut script = String::new();
        for (i, (n, how)) in self.0.iter().zip(how).enumerate() {
            script += &format!("{how} sleep {n} >/dev/null 2>&1 & p{i}=$!; ");
        }
        script += "for p in";
        for i in 0..how.len() {
            script += &format!(" $p{i}");
        }
        script += "; do until grep -qs '^sleep' /proc/$p/cmdline; do :; done; done; ";
        script
    }

    fn kill(&self) {
        for n in &self.0 {
            for pid in processes(&["sleep", n]) {
                let _ = std::process::Command::new("kill")
                    .args(["-KILL", &pid.to_string()])
                    .status();
            }
        }
    }
}

impl Drop for Sleeps {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Issue 19, finding 3: while the client read nothing, the listener's
/// write of the output blocked and the deadline went unpolled: `yes` ran on
/// past `--exec-timeout` and held its `--exec-max` slot.
#[test]
fn the_timeout_holds_while_the_client_reads_nothing() {
    let listener = ExecListener::start(&["--exec-timeout", "1s", "--exec-max", "1"]);
    let tag = format!("msg-exec-unread-{}", std::process::id());
    struct Yes<'a>(&'a str);
    impl Drop for Yes<'_> {
        fn drop(&mut self) {
            for pid in processes(&["yes", self.0]) {
                let _ = std::process::Command::new("kill")
                    .args(["-KILL", &pid.to_string()])
                    .status();
            }
        }
    }
    let _yes = Yes(&tag);
    let cmd = listener.exec_command(&["yes", &tag]);
    // Its stdout is never read: it stops reading the connection as soon
    // as the pipe is full, and the listener's writes then block.
    let (client, _unread) = Running::spawn_unread(cmd);
    let mut listener = listener;
    let start = Instant::now();
    listener
        .listener
        .process
        .wait_for_stderr("the command ran past 1s and was killed");
    assert!(start.elapsed() < Duration::from_secs(10));
    let deadline = Instant::now() + Duration::from_secs(5);
    while !processes(&["yes", &tag]).is_empty() {
        assert!(Instant::now() < deadline, "yes outlived its timeout");
        std::thread::sleep(Duration::from_millis(10));
    }
    // Its slot is free again, though that client still reads nothing.
    let out = listener.exec(&["true"], None);
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
    drop(client);
}

/// Issue 19, finding 4: what a command started outlived it, its process
/// group on a normal exit, and on every path what left the group
/// (`setsid`). Now its whole tree dies with it, however it ends.
#[test]
fn descendants_die_when_the_command_exits() {
    let listener = ExecListener::start(&[]);
    let sleeps = Sleeps::new(&[3917, 3919, 3921]);
    let script = sleeps.script(&["setsid", "nohup", ""]) + "echo started";
    let out = listener.exec(&["sh", "-c", &script], None);
    assert_eq!(
        (out.code(), out.stdout.as_str()),
        (Some(0), "started\n"),
        "{}",
        out.stderr
    );
    assert_eq!(sleeps.survivors(), Vec::<String>::new());
}

#[test]
fn descendants_die_at_the_timeout() {
    let listener = ExecListener::start(&["--exec-timeout", "2s"]);
    let sleeps = Sleeps::new(&[3923, 3925, 3927]);
    let script = sleeps.script(&["setsid", "nohup"]) + "sleep 3927";
    let out = listener.exec(&["sh", "-c", &script], None);
    assert_eq!(out.code(), Some(1), "{}", out.stderr);
    assert!(out.stderr.contains("ran past 2s"), "{}", out.stderr);
    assert_eq!(sleeps.survivors(), Vec::<String>::new());
}

#[test]
fn descendants_die_past_the_output_cap() {
    let listener = ExecListener::start(&["--exec-max-output", "1000"]);
    let sleeps = Sleeps::new(&[3929, 3931, 3933]);
    let script = sleeps.script(&["setsid", "nohup"]) + "head -c 5000 /dev/zero; sleep 3933";
    let out = listener.exec(&["sh", "-c", &script], None);
    assert_eq!(out.code(), Some(1), "{}", out.stderr);
    assert!(
        out.stderr.contains("wrote more than 1000"),
        "{}",
        out.stderr
    );
    assert_eq!(sleeps.survivors(), Vec::<String>::new());
}

#[test]
fn descendants_die_when_the_client_leaves() {
    let listener = ExecListener::start(&[]);
    let sleeps = Sleeps::new(&[3935, 3937, 3939]);
    let script = sleeps.script(&["setsid", "nohup"]) + "sleep 3939";
    let cmd = listener.exec_command(&["sh", "-c", &script]);
    let client = Running::spawn(cmd, None);
    sleeps.wait_running();
    drop(client.kill());
    let mut listener = listener;
    listener
        .listener
        .process
        .wait_for_stderr("its command was killed");
    assert_eq!(sleeps.survivors(), Vec::<String>::new());
}

/// Issue 19, finding 5: SIGTERM and SIGINT killed only a command's first
/// process, and SIGHUP killed the listener outright (exit 129, no
/// summary), its commands left running. Now each stops it cleanly, with
/// its summary, and every command's tree killed.
#[test]
fn stopping_the_listener_kills_every_command() {
    for (signal, numbers) in [
        ("HUP", [3941, 3943, 3945]),
        ("TERM", [3947, 3949, 3951]),
        ("INT", [3953, 3955, 3957]),
    ] {
        let listener = ExecListener::start(&[]);
        let sleeps = Sleeps::new(&numbers);
        let script = sleeps.script(&["setsid", "nohup"]) + &format!("sleep {}", numbers[2]);
        let cmd = listener.exec_command(&["sh", "-c", &script]);
        let client = Running::spawn(cmd, None);
        sleeps.wait_running();
        let out = listener.listener.process.signal(signal);
        assert_eq!(out.code(), Some(0), "SIG{signal}: {}", out.stderr);
        assert!(
            out.stderr.contains("msg listen: "),
            "SIG{signal}: {}",
            out.stderr
        );
        assert_eq!(sleeps.survivors(), Vec::<String>::new(), "SIG{signal}");
        // The client is told its listener left.
        let out = client.finish();
        assert_eq!(out.code(), Some(1), "SIG{signal}: {}", out.stderr);
        assert!(
            out.stderr
                .contains("closed the connection before the command ended"),
            "SIG{signal}: {}",
            out.stderr
        );
    }
}

/// A descriptor the listener inherited without close-on-exec (here its
/// stderr again, at 9) is not passed on to commands (audit, round
/// fourteen: `ls /proc/self/fd` listed it).
#[cfg(target_os = "linux")]
#[test]
fn commands_get_no_descriptor_the_listener_inherited() {
    use std::os::unix::process::CommandExt;
    let secret = support::secret_file(b"exec test secret\n", 0o600)
        .to_str()
        .unwrap()
        .to_owned();
    let mut cmd = msg();
    cmd.args(["listen", "--tcp", "-v", "127.0.0.1:0", "--exec"])
        .args(["--secret-file", &secret]);
    // SAFETY: dup2 is async-signal-safe, and touches nothing else.
    unsafe {
        cmd.pre_exec(|| {
            if libc::dup2(2, 9) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let listener = ExecListener {
        listener: Listener::start_command(cmd),
        secret,
    };
    let pid = listener.listener.process.pid();
    // The listener has it: the test would prove nothing otherwise.
    assert!(std::fs::read_link(format!("/proc/{pid}/fd/9")).is_ok());
    let out = listener.exec(&["readlink", "/proc/self/fd/9"], None);
    assert_eq!(out.code(), Some(1), "{}: {}", out.stdout, out.stderr);
    assert_eq!(out.stdout, "", "{}", out.stderr);
    // A program that is not there is still said so: the report of a
    // failed exec was not closed with the rest.
    let out = listener.exec(&["no-such-program-msg-test"], None);
    assert_eq!(out.code(), Some(1), "{}", out.stderr);
    assert!(
        out.stderr
            .contains("cannot run no-such-program-msg-test: No such file or directory"),
        "{}",
        out.stderr
    );
}

/// Issue 19, finding 14: commands inherited the listener's environment
/// (`msg exec -- env` printed MSG_SECRET) and its working directory. Now
/// they get PATH, HOME, USER, LOGNAME and LANG, and what `--exec-env`
/// names, in `--exec-dir` (default `/`).
#[test]
fn commands_get_a_clean_environment_and_a_stated_directory() {
    let secret = "exec environment secret";
    let file = support::secret_arg(secret.as_bytes());
    let dir = support::fresh_path("exec-dir");
    std::fs::create_dir_all(&dir).unwrap();
    let dir = dir.canonicalize().unwrap();
    let env = [
        ("MSG_SECRET", secret),
        ("MSG_TEST_TOKEN", "token-that-must-not-leak"),
        ("MSG_TEST_PASSED", "passed-on-purpose"),
    ];
    let listener = Listener::start_env(
        "--tcp",
        &[
            "--exec",
            "--exec-env",
            "MSG_TEST_PASSED",
            "--exec-dir",
            dir.to_str().unwrap(),
        ],
        &env,
    );
    let addr = listener.addr_arg();
    let exec = |command: &[&str]| {
        let mut args = vec!["exec", "--secret-file", &file, &addr, "--"];
        args.extend_from_slice(command);
        run(&args, None)
    };
    let out = exec(&["env"]);
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
    assert!(!out.stdout.contains("MSG_SECRET"), "{}", out.stdout);
    assert!(!out.stdout.contains(secret), "{}", out.stdout);
    assert!(
        !out.stdout.contains("token-that-must-not-leak"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("MSG_TEST_PASSED=passed-on-purpose\n"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("PATH="), "{}", out.stdout);
    let out = exec(&["pwd"]);
    assert_eq!(
        out.stdout.trim_end(),
        dir.to_str().unwrap(),
        "{}",
        out.stderr
    );
    let _ = std::fs::remove_dir(&dir);

    // Without --exec-dir: `/`, not where the listener was started.
    let listener = ExecListener::start(&[]);
    let out = listener.exec(&["pwd"], None);
    assert_eq!(out.stdout, "/\n", "{}", out.stderr);

    // The secret is never passed, even when named.
    support::assert_usage_error(
        &[
            "listen",
            "--tcp",
            "--exec",
            "--secret-file",
            &file,
            "--exec-env",
            "MSG_SECRET",
            "127.0.0.1:0",
        ],
        "--exec-env MSG_SECRET: the secret is never passed to commands",
    );

    // A directory that is not there is refused at start.
    let out = run(
        &[
            "listen",
            "--tcp",
            "--exec",
            "--secret-file",
            &file,
            "--exec-dir",
            "/no/such/dir/for/msg",
            "127.0.0.1:0",
        ],
        None,
    );
    assert_eq!(out.code(), Some(1), "{}", out.stderr);
    assert!(
        out.stderr
            .contains("cannot run commands in /no/such/dir/for/msg"),
        "{}",
        out.stderr
    );
}

/// Hardening round two, finding 7: the reason a listener gives for
/// refusing or killing a command reached the client's terminal raw. A
/// hostile listener (it holds the secret: a compromised host, say) answers
/// with terminal controls in the reason; the client shows them escaped.
#[test]
fn a_hostile_listeners_reason_reaches_the_terminal_escaped() {
    use msg_proto::auth::{Role, Secret, ServerHandshake};
    use msg_proto::exec::Exit;

    const SECRET: &[u8] = b"a hostile listener's secret";
    let secret_path = support::secret_file(SECRET, 0o600);
    let server = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = server.local_addr().unwrap().to_string();
    let hostile = std::thread::spawn(move || {
        let (mut stream, _) = server.accept().unwrap();
        stream.set_read_timeout(Some(support::DEADLINE)).unwrap();
        let secret = Secret::new(SECRET.to_vec()).unwrap();
        let challenge = msg_proto::decode(read_frame(&mut stream).unwrap().into()).unwrap();
        let (response, awaiting) = ServerHandshake::new(&secret, [4; 32])
            .on_challenge(&challenge)
            .unwrap();
        stream.write_all(&support::frame(&response)).unwrap();
        let proof = msg_proto::decode(read_frame(&mut stream).unwrap().into()).unwrap();
        let (verdict, keys) = awaiting.on_proof(&proof);
        stream.write_all(&support::frame(&verdict)).unwrap();
        let keys = keys.unwrap();
        let command = keys
            .opener(Role::Server)
            .open(read_frame(&mut stream).unwrap().into());
        assert_eq!(command.unwrap().kind, msg_proto::Kind::Command);
        let refusal = Exit::Refused("\x1b]0;pwned\x07\x1b[2Jno".to_owned()).to_message();
        let mut sealed = bytes::BytesMut::new();
        keys.sealer(Role::Server)
            .seal(&refusal, &mut sealed)
            .unwrap();
        let mut frame = u32::try_from(sealed.len()).unwrap().to_be_bytes().to_vec();
        frame.extend_from_slice(&sealed);
        stream.write_all(&frame).unwrap();
    });
    let out = run(
        &[
            "exec",
            "--secret-file",
            secret_path.to_str().unwrap(),
            &addr,
            "--",
            "true",
        ],
        None,
    );
    hostile.join().unwrap();
    assert_eq!(out.code(), Some(1), "{}", out.stderr);
    assert!(!out.stderr.contains('\x1b'), "{:?}", out.stderr);
    assert!(
        out.stderr
            .contains(r"the listener refused the command: \x1b]0;pwned\x07\x1b[2Jno"),
        "{:?}",
        out.stderr
    );
}

/// Robustness audit, finding B: an `--exec-dir` removed (or replaced by a
/// file) while the listener ran was reported as the program's fault
/// (`cannot run pwd: No such file or directory`), at info level, so the
/// operator saw nothing. Now the refusal names the directory, and the
/// listener warns.
#[test]
fn a_removed_exec_dir_is_named_and_warned_of() {
    let dir = support::fresh_path("exec-dir-removed");
    std::fs::create_dir_all(&dir).unwrap();
    let dir = dir.canonicalize().unwrap();
    let shown = dir.to_str().unwrap().to_owned();
    let mut listener = ExecListener::start(&["--exec-dir", &shown]);
    let out = listener.exec(&["pwd"], None);
    assert_eq!(out.stdout.trim_end(), shown, "{}", out.stderr);

    std::fs::remove_dir(&dir).unwrap();
    let out = listener.exec(&["pwd"], None);
    assert_eq!(out.code(), Some(1), "{}", out.stderr);
    let gone = format!("cannot run pwd: the directory commands run in, {shown}, is gone: ");
    assert!(out.stderr.contains(&gone), "{}", out.stderr);
    let line = listener.listener.process.wait_for_stderr(&gone);
    assert!(line.contains("WARN"), "{line}");

    // Something else in its place: not a directory. (The warning is held
    // back within a second of the last; the client is told all the same.)
    std::fs::write(&dir, b"a file now").unwrap();
    let out = listener.exec(&["pwd"], None);
    assert_eq!(out.code(), Some(1), "{}", out.stderr);
    assert!(
        out.stderr.contains(&format!(
            "cannot run pwd: the directory commands run in, {shown}, is not a directory"
        )),
        "{}",
        out.stderr
    );
    let _ = std::fs::remove_file(&dir);
}

/// Whether process `pid` is gone (or dead, a zombie not yet reaped), as
/// the host's /proc sees it.
fn gone(pid: &str) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |stat| {
        stat.rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with(['Z', 'X']))
    })
}

/// Robustness audit, finding A: where the listener cannot read /proc (an
/// empty tmpfs over it, in a mount namespace of its own), a command that
/// left `sleep`s behind and exited at once was reported as having run
/// past its timeout, and the sleeps outlived it: the process group was
/// killed by its first process's pid, which is gone once that process is
/// reaped, and a `setsid` one held the output open. Now the group is
/// killed by its remembered number, the exit is the command's answer once
/// its output has been quiet for a second, and the listener warns that it
/// cannot follow the tree. Needs root, to make the namespace; skipped
/// elsewhere.
#[test]
#[cfg(target_os = "linux")]
fn without_proc_the_commands_group_dies_and_its_exit_is_reported() {
    let probe = std::process::Command::new("unshare")
        .args(["-m", "sh", "-c", "mount -t tmpfs none /proc"])
        .stderr(std::process::Stdio::null())
        .status();
    if !probe.is_ok_and(|status| status.success()) {
        support::skip("cannot mount over /proc in a mount namespace (unshare -m needs root)");
        return;
    }
    let secret = support::secret_file(b"exec test secret\n", 0o600)
        .to_str()
        .unwrap()
        .to_owned();
    let mut cmd = std::process::Command::new("unshare");
    cmd.env_remove("RUST_LOG").args([
        "-m",
        "sh",
        "-c",
        "mount -t tmpfs none /proc && exec \"$0\" \"$@\"",
        env!("CARGO_BIN_EXE_msg"),
        "listen",
        "--tcp",
        "-v",
        "127.0.0.1:0",
        "--exec",
        "--secret-file",
        &secret,
        "--exec-timeout",
        "10s",
    ]);
    let mut listener = ExecListener {
        listener: Listener::start_command(cmd),
        secret,
    };
    // The setsid one is not found without /proc, and survives: this
    // test's to kill.
    let _escaped = Sleeps::new(&[3959]);
    let fifo = support::fresh_path("exec-no-proc-fifo");
    let pid_file = support::fresh_path("exec-no-proc-pid");
    // The setsid one tells it has left the group (and holds stdout) before
    // the command goes on; the other, in the group, leaves its pid.
    let script = format!(
        "mkfifo {fifo}; setsid sh -c 'echo > {fifo}; exec sleep 3959' & read x < {fifo}; \
         sleep 3961 & echo $! > {pid}; echo started",
        fifo = fifo.display(),
        pid = pid_file.display()
    );
    let start = Instant::now();
    let out = listener.exec(&["sh", "-c", &script], None);
    let took = start.elapsed();
    assert_eq!(
        (out.code(), out.stdout.as_str()),
        (Some(0), "started\n"),
        "{}",
        out.stderr
    );
    assert!(took < Duration::from_secs(5), "took {took:?}");
    let pid = std::fs::read_to_string(&pid_file).unwrap();
    let pid = pid.trim();
    let deadline = Instant::now() + Duration::from_secs(5);
    while !gone(pid) {
        if Instant::now() > deadline {
            let _ = std::process::Command::new("kill")
                .args(["-KILL", pid])
                .status();
            panic!("the sleep in the command's group (pid {pid}) outlived it");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let process = &mut listener.listener.process;
    let line = process.wait_for_stderr("cannot read /proc/");
    assert!(line.contains("WARN"), "{line}");
    let line = process.wait_for_stderr("its output was still held open");
    assert!(line.contains("WARN"), "{line}");
}
