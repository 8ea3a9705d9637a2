//! Running the real `msg` binary in tests: bounded waits, no sleeps.
//!
//! A listener is started with `-v` and port 0; its "listening on ..." log
//! line on stderr is the ready signal and tells the port.

#![allow(dead_code)] // each test target uses a different part

use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;
use std::time::{Duration, Instant};

mod skip;
mod temp;
#[allow(unused_imports)] // as dead_code above: not every target skips
pub(crate) use skip::skip;

/// The longest any one step of a test may take before it fails.
pub(crate) const DEADLINE: Duration = Duration::from_secs(20);

/// A `Command` for the `msg` binary Cargo built for these tests.
pub(crate) fn msg() -> Command {
    as_msg(Command::new(env!("CARGO_BIN_EXE_msg")))
}

/// `cmd`, which runs msg (itself, or through a wrapper that ends in an
/// exec of it), with msg's environment and signals as a test wants them.
fn as_msg(mut cmd: Command) -> Command {
    cmd.env_remove("RUST_LOG");
    // The signals a test sends (SIGINT as Ctrl-C, SIGTERM, SIGHUP) act on
    // msg as they do from a terminal, however the tests were started: a
    // shell without job control starts a background command with SIGINT
    // ignored, nohup ignores SIGHUP, and exec keeps both ignored. An
    // impaired run's benchmark, which installs no handler of its own,
    // would then never see the SIGINT its parent forwards.
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        // SAFETY: between fork and exec the closure only calls signal(),
        // which is async-signal-safe, and allocates nothing.
        unsafe {
            cmd.pre_exec(|| {
                for signal in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
                    libc::signal(signal, libc::SIG_DFL);
                }
                Ok(())
            });
        }
    }
    cmd
}

/// What a finished process left behind.
#[derive(Debug)]
pub(crate) struct Finished {
    pub(crate) status: ExitStatus,
    pub(crate) stdout: String,
    /// Stdout as it came, for output that is not UTF-8.
    pub(crate) stdout_raw: Vec<u8>,
    pub(crate) stderr: String,
}

impl Finished {
    pub(crate) fn code(&self) -> Option<i32> {
        self.status.code()
    }

    pub(crate) fn stdout_bytes(&self) -> &[u8] {
        &self.stdout_raw
    }

    pub(crate) fn lines(&self) -> Vec<&str> {
        self.stdout.lines().collect()
    }
}

/// A running `msg` process whose output is collected in the background.
pub(crate) struct Running {
    child: Child,
    stdout: thread::JoinHandle<Vec<u8>>,
    /// What stdout has carried so far, for [`Running::wait_for_stdout`].
    stdout_so_far: Arc<Mutex<Vec<u8>>>,
    stderr_lines: mpsc::Receiver<String>,
    stderr_seen: Vec<String>,
}

impl Running {
    pub(crate) fn spawn(cmd: Command, stdin: Option<Vec<u8>>) -> Self {
        let (running, pipe) = Self::start(cmd, stdin.is_some());
        if let (Some(input), Some(mut pipe)) = (stdin, pipe) {
            thread::spawn(move || {
                let _ = pipe.write_all(&input);
            });
        }
        running
    }

    /// As [`Running::spawn`] with `input` on stdin, which stays open
    /// while the returned pipe lives: only the peer can end the session.
    #[allow(dead_code)] // not every test file holds a session open
    pub(crate) fn spawn_held(cmd: Command, input: &[u8]) -> (Self, std::process::ChildStdin) {
        let (running, pipe) = Self::start(cmd, true);
        let mut pipe = pipe.expect("piped");
        pipe.write_all(input).expect("write stdin");
        (running, pipe)
    }

    /// Spawns `cmd` with stdout read as it comes; stdin piped (and
    /// returned) or empty.
    fn start(mut cmd: Command, piped: bool) -> (Self, Option<std::process::ChildStdin>) {
        cmd.stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .stdin(if piped { Stdio::piped() } else { Stdio::null() });
        let mut child = cmd.spawn().expect("spawn msg");
        let pipe = child.stdin.take();
        let mut out = child.stdout.take().unwrap();
        let so_far = Arc::new(Mutex::new(Vec::new()));
        let shared = Arc::clone(&so_far);
        let stdout = thread::spawn(move || {
            let mut chunk = [0; 16 * 1024];
            while let Ok(n @ 1..) = out.read(&mut chunk) {
                shared.lock().unwrap().extend_from_slice(&chunk[..n]);
            }
            shared.lock().unwrap().clone()
        });
        let mut running = Self::with_stdout(child, stdout);
        running.stdout_so_far = so_far;
        (running, pipe)
    }

    /// As [`Running::spawn`], but nobody reads stdout: the pipe fills
    /// after 64 KiB and the process's writes to it block, as they would
    /// under a pager left unscrolled. The pipe is returned, to read later.
    pub(crate) fn spawn_unread(mut cmd: Command) -> (Self, ChildStdout) {
        cmd.stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .stdin(Stdio::null());
        let mut child = cmd.spawn().expect("spawn msg");
        let out = child.stdout.take().unwrap();
        (Self::with_stdout(child, thread::spawn(Vec::new)), out)
    }

    fn with_stdout(mut child: Child, stdout: thread::JoinHandle<Vec<u8>>) -> Self {
        let err = child.stderr.take().unwrap();
        let (tx, stderr_lines) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Self {
            child,
            stdout,
            stdout_so_far: Arc::default(),
            stderr_lines,
            stderr_seen: Vec::new(),
        }
    }

    /// The process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits (bounded) for a stderr line containing `needle` and returns it.
    pub(crate) fn wait_for_stderr(&mut self, needle: &str) -> String {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.stderr_lines.recv_timeout(left) {
                Ok(line) => {
                    self.stderr_seen.push(line.clone());
                    if line.contains(needle) {
                        return line;
                    }
                }
                Err(_) => panic!(
                    "no stderr line with {needle:?} within {DEADLINE:?}; saw {:?}",
                    self.stderr_seen
                ),
            }
        }
    }

    /// Waits (bounded, without sleeping longer than 5 ms at a time) until
    /// what stdout carried so far ends with `tail`: a listener has printed
    /// what a finished `msg send` sent only once its reader got to it.
    pub(crate) fn wait_for_stdout_end(&self, tail: &[u8]) {
        let deadline = Instant::now() + DEADLINE;
        while !self.stdout_so_far.lock().unwrap().ends_with(tail) {
            assert!(
                Instant::now() < deadline,
                "stdout did not end with {:?} within {DEADLINE:?}; it holds {:?}",
                String::from_utf8_lossy(tail),
                String::from_utf8_lossy(&self.stdout_so_far.lock().unwrap())
            );
            thread::sleep(Duration::from_millis(5));
        }
    }

    /// Whether a stderr line read so far (without waiting) contains
    /// `needle`.
    pub(crate) fn stderr_contains(&mut self, needle: &str) -> bool {
        while let Ok(line) = self.stderr_lines.try_recv() {
            self.stderr_seen.push(line);
        }
        self.stderr_seen.iter().any(|line| line.contains(needle))
    }

    /// Waits (bounded) for the process to exit by itself.
    pub(crate) fn finish(mut self) -> Finished {
        let deadline = Instant::now() + DEADLINE;
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("msg did not exit within {DEADLINE:?}");
            }
            thread::sleep(Duration::from_millis(5));
        };
        self.collect(status)
    }

    /// The process id.
    pub(crate) fn id(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGINT, as Ctrl-C in a terminal would, and waits (bounded) for
    /// the process to exit by itself.
    pub(crate) fn interrupt(self) -> Finished {
        let status = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -INT failed");
        self.finish()
    }

    /// Sends `signal` (a name `kill` takes: `TERM`, `HUP`) and waits
    /// (bounded) for the process to exit by itself.
    pub(crate) fn signal(self, signal: &str) -> Finished {
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{signal} failed");
        self.finish()
    }

    /// Stops the process and returns what it printed.
    pub(crate) fn kill(mut self) -> Finished {
        let _ = self.child.kill();
        let status = self.child.wait().unwrap();
        self.collect(status)
    }

    fn collect(mut self, status: ExitStatus) -> Finished {
        let stdout_raw = std::mem::replace(&mut self.stdout, thread::spawn(Vec::new))
            .join()
            .unwrap();
        let mut stderr = std::mem::take(&mut self.stderr_seen);
        let deadline = Instant::now() + DEADLINE;
        while let Ok(line) = self
            .stderr_lines
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            stderr.push(line);
        }
        Finished {
            status,
            stdout: String::from_utf8_lossy(&stdout_raw).into_owned(),
            stdout_raw,
            stderr: stderr.join("\n"),
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A `msg listen` on port 0 of `host`, ready to receive.
pub(crate) struct Listener {
    pub(crate) addr: SocketAddr,
    pub(crate) process: Running,
}

impl Listener {
    /// Starts `msg listen <args> <host>:0 -v` and waits for it to be ready.
    pub(crate) fn start(transport: &str, host: &str, args: &[&str]) -> Self {
        Self::ready(Running::spawn(Self::command(transport, host, args), None))
    }

    /// As [`Listener::start`], with a stdout nobody reads (see
    /// [`Running::spawn_unread`]).
    pub(crate) fn start_unread(transport: &str, args: &[&str]) -> (Self, ChildStdout) {
        let (process, stdout) = Running::spawn_unread(Self::command(transport, "127.0.0.1", args));
        (Self::ready(process), stdout)
    }

    /// Starts `cmd`, which must end up running `msg listen ... -v` on port
    /// 0 (under a wrapper such as `unshare`, say), and waits for it to be
    /// ready.
    pub(crate) fn start_command(cmd: Command) -> Self {
        Self::ready(Running::spawn(cmd, None))
    }

    /// As [`Listener::start`] on 127.0.0.1, with `env` added to the
    /// environment it inherits.
    pub(crate) fn start_env(transport: &str, args: &[&str], env: &[(&str, &str)]) -> Self {
        let mut cmd = Self::command(transport, "127.0.0.1", args);
        cmd.envs(env.iter().copied());
        Self::ready(Running::spawn(cmd, None))
    }

    fn command(transport: &str, host: &str, args: &[&str]) -> Command {
        let mut cmd = msg();
        cmd.args(["listen", transport, "-v", &format!("{host}:0")])
            .args(args);
        cmd
    }

    fn ready(mut process: Running) -> Self {
        let line = process.wait_for_stderr("listening on");
        let addr = line
            .rsplit(' ')
            .next()
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("no address in {line:?}"));
        Self { addr, process }
    }

    pub(crate) fn addr_arg(&self) -> String {
        self.addr.to_string()
    }

    /// The certificate fingerprint a TLS or QUIC listener prints at start
    /// (the value for `--tls-fingerprint`).
    pub(crate) fn fingerprint(&mut self) -> String {
        let line = self.process.wait_for_stderr("fingerprint");
        line.rsplit(' ').next().unwrap().to_owned()
    }

    pub(crate) fn finish(self) -> Finished {
        self.process.finish()
    }
}

/// Runs `msg <args>` to completion (bounded), with `stdin` if given.
pub(crate) fn run(args: &[&str], stdin: Option<&[u8]>) -> Finished {
    let mut cmd = msg();
    cmd.args(args);
    Running::spawn(cmd, stdin.map(<[u8]>::to_vec)).finish()
}

/// `msg <args>` is a usage error: exit 2, nothing on stdout, and `why`
/// on stderr.
pub(crate) fn assert_usage_error(args: &[&str], why: &str) {
    let finished = run(args, None);
    assert_eq!(finished.code(), Some(2), "{args:?}: {}", finished.stderr);
    assert!(
        finished.stderr.contains(why),
        "{args:?}: {}",
        finished.stderr
    );
    assert!(finished.stdout.is_empty());
}

/// A path in this test process's temporary folder (removed when the
/// process exits), unique to this call, with nothing there.
pub(crate) fn fresh_path(what: &str) -> std::path::PathBuf {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    temp::dir().join(format!("{what}-{}", N.fetch_add(1, Ordering::Relaxed)))
}

/// A fresh secret file holding `contents`, with permission bits `mode`
/// (0o600 for a file only its owner reads), in the temporary directory.
pub(crate) fn secret_file(contents: &[u8], mode: u32) -> std::path::PathBuf {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let path = fresh_path("secret");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .unwrap();
    file.write_all(contents).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    path
}

/// `secret_file` of some secret, mode 0o600, as a command-line argument.
pub(crate) fn secret_arg(contents: &[u8]) -> String {
    secret_file(contents, 0o600).to_str().unwrap().to_owned()
}

/// Reads one length-prefixed frame (the message after the prefix) from a
/// plain stream, as a hand-made peer does.
pub(crate) fn read_frame(stream: &mut impl Read) -> std::io::Result<Vec<u8>> {
    let mut prefix = [0; 4];
    stream.read_exact(&mut prefix)?;
    let mut bytes = vec![0; u32::from_be_bytes(prefix) as usize];
    stream.read_exact(&mut bytes)?;
    Ok(bytes)
}

/// `msg` as a TCP frame: the 4-byte length, then the message.
pub(crate) fn frame(msg: &msg_proto::Message) -> Vec<u8> {
    let body = datagram(msg);
    let mut out = u32::try_from(body.len()).unwrap().to_be_bytes().to_vec();
    out.extend_from_slice(&body);
    out
}

/// `msg` as a UDP datagram: the message alone.
pub(crate) fn datagram(msg: &msg_proto::Message) -> Vec<u8> {
    let mut out = Vec::new();
    msg_proto::encode(msg, &mut out).unwrap();
    out
}

/// As [`wait_within`], then what `child` wrote to its stderr (piped).
#[allow(dead_code)] // not every test file reads a spawned child's stderr
pub(crate) fn stderr_within(child: &mut Child, limit: Duration) -> (ExitStatus, String) {
    let status = wait_within(child, limit);
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .expect("stderr piped")
        .read_to_string(&mut stderr)
        .expect("read stderr");
    (status, stderr)
}

/// Waits for `child` to exit, at most `limit`: past it, kills it and
/// fails the test.
pub(crate) fn wait_within(child: &mut Child, limit: Duration) -> ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("msg did not exit within {limit:?}");
        }
        thread::sleep(Duration::from_millis(5));
    }
}

/// Starts `cmd` with its `resource` limit (`libc::RLIMIT_*`), soft and
/// hard, at `value`: what `ulimit` or systemd's `Limit*=` would give it.
#[allow(dead_code)] // not every target limits a resource
pub(crate) fn limit(cmd: &mut Command, resource: libc::__rlimit_resource_t, value: u64) {
    limits(cmd, resource, value, value);
}

/// [`limit`], with the soft limit `soft` below the hard one, `hard`: what
/// `ulimit -S` leaves a process free to raise itself.
#[allow(dead_code)] // not every target limits a resource
pub(crate) fn limits(cmd: &mut Command, resource: libc::__rlimit_resource_t, soft: u64, hard: u64) {
    use std::os::unix::process::CommandExt;
    // SAFETY: setrlimit is async-signal-safe, and changes the child only.
    unsafe {
        cmd.pre_exec(move || {
            let limit = libc::rlimit {
                rlim_cur: soft,
                rlim_max: hard,
            };
            match libc::setrlimit(resource, &raw const limit) {
                0 => Ok(()),
                _ => Err(std::io::Error::last_os_error()),
            }
        });
    }
}

/// `msg ARGS` as a command run where `localhost` has two addresses, `::1`
/// first and `127.0.0.1` second, as many systems resolve it: in a private
/// mount namespace (`unshare -m`) whose `/etc/hosts` is a file of this
/// test's, bound over the system's there and nowhere else. The network
/// is the host's own. `None`, said on stderr, where this test cannot make
/// one (not root, no unshare, or no IPv6 loopback).
#[allow(dead_code)] // not every target resolves names
pub(crate) fn msg_with_dual_localhost(args: &[&str]) -> Option<Command> {
    if !nix::unistd::Uid::effective().is_root() {
        skip("a private /etc/hosts needs root (unshare -m)");
        return None;
    }
    if std::net::TcpListener::bind("[::1]:0").is_err() {
        skip("this machine has no IPv6 loopback (::1)");
        return None;
    }
    let hosts = fresh_path("hosts");
    std::fs::write(&hosts, "::1 localhost\n127.0.0.1 localhost\n").unwrap();
    let mut cmd = as_msg(Command::new("unshare"));
    cmd.args([
        "-m",
        "sh",
        "-c",
        r#"mount --bind "$0" /etc/hosts && exec "$@""#,
    ])
    .arg(&hosts)
    .arg(env!("CARGO_BIN_EXE_msg"))
    .args(args);
    // Whether it can: unshare and mount as this test would run them.
    let probe = Command::new("unshare")
        .args([
            "-m",
            "sh",
            "-c",
            r#"mount --bind "$0" /etc/hosts && getent ahosts localhost"#,
        ])
        .arg(&hosts)
        .output();
    match probe {
        Ok(out)
            if out.status.success() && String::from_utf8_lossy(&out.stdout).starts_with("::1") =>
        {
            Some(cmd)
        }
        Ok(out) => {
            skip(&format!(
                "cannot give localhost two addresses in a private /etc/hosts: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
            None
        }
        Err(err) => {
            skip(&format!("unshare is not installed (util-linux): {err}"));
            None
        }
    }
}

/// A command that runs what its arguments say as nobody (uid and gid
/// 65534) through setpriv, whom limits such as `RLIMIT_NPROC` bind (root's
/// threads they do not count); `None`, said on stderr, where this test
/// cannot (not root, or no setpriv).
#[allow(dead_code)] // not every target runs as another user
pub(crate) fn as_nobody() -> Option<Command> {
    if !nix::unistd::Uid::effective().is_root() {
        skip("running as another user needs root (setpriv)");
        return None;
    }
    if Command::new("setpriv").arg("--version").output().is_err() {
        skip("setpriv is not installed (util-linux)");
        return None;
    }
    let mut cmd = Command::new("setpriv");
    cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups"]);
    Some(cmd)
}
