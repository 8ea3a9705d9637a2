//! The listener's side: [`Runner`], which runs an authenticated peer's
//! command within the limits, streams its output back and kills its whole
//! tree however it ends.

use std::sync::Arc;

use bytes::Bytes;
use msg_proto::exec::{BEAT, Command, Exit, Stream, output};
use msg_proto::{Kind, Message};
use msg_tcp::Connection;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::process::{Child, ChildStdin};
use tokio::sync::{Semaphore, mpsc};
use tracing::{debug, info, warn};

use super::spawn::{dir_problem, exit_of, spawn};
use super::tree::{self, KillOnStop, SCAN_EVERY, Tree, Trees};
use super::{EXIT_GRACE, ExecConfig, OUTPUT_AFTER_EXIT, READ_LEN, REAP_WAIT, STDIN_QUEUE};
use crate::auth::printable;
use crate::log::RateLimited;
use crate::refusal::{COMMAND_OUTPUT, COMMAND_TIMEOUT, COMMANDS_RUNNING, PROGRAM_NOT_ALLOWED};
use crate::{Error, PeerAddr};

/// What the serve loop keeps for running commands: the limits and the
/// count of commands running.
#[derive(Debug)]
pub(crate) struct Runner {
    config: ExecConfig,
    slots: Arc<Semaphore>,
    trees: Arc<Trees>,
    /// This runner's number among the process's, for its commands' trees.
    owner: u64,
}

impl Runner {
    pub(crate) fn new(config: ExecConfig) -> Self {
        let slots = Arc::new(Semaphore::new(config.max_running));
        Self {
            config,
            slots,
            trees: Trees::get(),
            owner: tree::owner(),
        }
    }

    /// Kills every command this runner has running when it is dropped:
    /// for the serve loop, which is dropped when the listener stops.
    pub(crate) fn kill_on_stop(&self) -> KillOnStop {
        KillOnStop {
            trees: Arc::clone(&self.trees),
            owner: self.owner,
        }
    }

    /// Runs the command in `request` for the (authenticated) client on
    /// `conn`, streaming its output and forwarding its input, and tells the
    /// client how it ended.
    ///
    /// # Errors
    ///
    /// The connection's; a refused or stopped command is not an error
    /// here, it is the client's answer.
    pub(crate) async fn run<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        conn: &mut Connection<S>,
        request: &Message,
    ) -> Result<(), Error> {
        let peer = conn.peer_addr();
        let command = match Command::from_message(request) {
            Ok(command) => command,
            Err(err) => return refuse(conn, peer, err.to_string()).await,
        };
        let shown = show(&command);
        let program = String::from_utf8_lossy(command.program()).into_owned();
        if !self.config.allow.is_empty() && !self.config.allow.contains(&program) {
            return refuse(
                conn,
                peer,
                PROGRAM_NOT_ALLOWED.format(printable(command.program())),
            )
            .await;
        }
        let Ok(slot) = Arc::clone(&self.slots).try_acquire_owned() else {
            let max = self.config.max_running;
            return refuse(conn, peer, COMMANDS_RUNNING.format(max)).await;
        };
        let (child, tree) = match spawn(&self.trees, self.owner, &self.config, &command) {
            Ok(spawned) => spawned,
            Err(err) => {
                let program = printable(command.program());
                // The directory, checked after the fact: spawning reports
                // its chdir failing as the program's own error, and a
                // directory removed under a running listener is the
                // operator's to fix, not the peer's.
                if let Some(problem) = dir_problem(&self.config.dir) {
                    let reason = format!("cannot run {program}: {problem}");
                    static GONE: RateLimited = RateLimited::new();
                    GONE.warn(|suppressed| warn!(%peer, suppressed, "refused a command: {reason}"));
                    return answer_refusal(conn, reason).await;
                }
                return refuse(conn, peer, format!("cannot run {program}: {err}")).await;
            }
        };
        info!(%peer, "running {shown}");
        let exit = self.supervise(conn, child, &tree).await;
        // Whatever the command left running goes with it (dropping the
        // tree kills it), before its client hears how it ended.
        drop(tree);
        // The command is over, whether or not its client hears how: its
        // slot is free for the next one.
        drop(slot);
        let exit = exit?;
        info!(%peer, "{shown}: {}", describe(&exit));
        // A client that reads nothing (its unread output is what filled
        // the connection) gets a bounded while, and then it is dropped.
        match tokio::time::timeout(EXIT_GRACE, conn.write_message(&exit.to_message())).await {
            Ok(written) => Ok(written?),
            Err(_) => Err(Error::Io(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!(
                    "the client read nothing for {} after its command ended",
                    humantime::format_duration(EXIT_GRACE)
                ),
            ))),
        }
    }

    /// Streams the child's output to the client and the client's input to
    /// the child, within the limits; how it ended. Returns early (the
    /// child killed) when the client leaves.
    async fn supervise<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        conn: &mut Connection<S>,
        mut child: Child,
        tree: &Tree,
    ) -> Result<Exit, Error> {
        let (stdin_tx, stdin_rx) = mpsc::channel::<Bytes>(STDIN_QUEUE);
        // Stdin is written by a task of its own: a command that does not
        // read its stdin must not stop its output from being read.
        let feeder = tokio::spawn(feed_stdin(child.stdin.take(), stdin_rx));
        // How the command's first process ended, once it has.
        let mut status = None;
        // One deadline for the whole run, writes to the client included: a
        // client that reads nothing blocks a write, and the deadline must
        // hold then too.
        let ran = tokio::time::timeout(
            self.config.timeout,
            self.pump(conn, &mut child, tree, stdin_tx, &mut status),
        )
        .await;
        feeder.abort();
        match ran {
            Ok(ended) => ended,
            Err(_elapsed) => {
                kill(&mut child, tree).await;
                // A command that had ended (its output held open by what
                // it left, and still being written) did not run past its
                // timeout: how it ended is its answer, as `timeout` gives
                // its command's.
                if let Some(status) = status {
                    return Ok(exit_of(status));
                }
                Ok(Exit::Killed(
                    COMMAND_TIMEOUT.format(humantime::format_duration(self.config.timeout)),
                ))
            }
        }
    }

    /// The work of [`Runner::supervise`], without its deadline: output to
    /// the client, input to the command, until the command ends, passes
    /// its output cap, or its client leaves. `status` is how the command's
    /// first process ended, once it has: the command's end.
    async fn pump<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        conn: &mut Connection<S>,
        child: &mut Child,
        tree: &Tree,
        stdin_tx: mpsc::Sender<Bytes>,
        status: &mut Option<std::process::ExitStatus>,
    ) -> Result<Exit, Error> {
        let mut stdout = child.stdout.take().expect("piped");
        let mut stderr = child.stderr.take().expect("piped");
        let mut stdin_tx = Some(stdin_tx);
        let (mut out_buf, mut err_buf) = (vec![0; READ_LEN], vec![0; READ_LEN]);
        let (mut out_open, mut err_open) = (true, true);
        let mut written = 0u64;
        // The command is over when its first process has ended and its
        // output has all been read, or has been quiet for
        // OUTPUT_AFTER_EXIT since then: what holds it open is what the
        // command left and the tree could not kill (see below).
        let mut heard = tokio::time::Instant::now();
        let mut scan = tokio::time::interval(SCAN_EVERY);
        scan.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // The beat: an empty output after each BEAT the client heard
        // nothing, so that it can tell a quiet command from a stopped
        // listener. Output puts it off.
        let mut beat = tokio::time::interval_at(tokio::time::Instant::now() + BEAT, BEAT);
        beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let exit = loop {
            if let (Some(status), false, false) = (*status, out_open, err_open) {
                break exit_of(status);
            }
            // While stdin waits to be read, stop reading the client.
            let room = stdin_tx.as_ref().is_none_or(|tx| tx.capacity() > 0);
            tokio::select! {
                read = stdout.read(&mut out_buf), if out_open => {
                    let n = read?;
                    out_open = n > 0;
                    heard = tokio::time::Instant::now();
                    beat.reset();
                    if let Some(exit) = self.forward(conn, child, tree, Stream::Stdout, &out_buf[..n], &mut written).await? {
                        break exit;
                    }
                }
                read = stderr.read(&mut err_buf), if err_open => {
                    let n = read?;
                    err_open = n > 0;
                    heard = tokio::time::Instant::now();
                    beat.reset();
                    if let Some(exit) = self.forward(conn, child, tree, Stream::Stderr, &err_buf[..n], &mut written).await? {
                        break exit;
                    }
                }
                msg = conn.read_message(), if room => match msg {
                    Ok(Some(msg)) if msg.kind == Kind::CommandInput => {
                        if msg.body.is_empty() {
                            stdin_tx = None; // the client's stdin ended: so does the command's
                        } else if let Some(tx) = &stdin_tx {
                            let _ = tx.try_send(msg.body);
                        }
                    }
                    Ok(Some(msg)) => debug!(kind = ?msg.kind, "ignored during a command"),
                    Ok(None) | Err(_) => {
                        // The client is gone: so is its command.
                        kill(child, tree).await;
                        return Err(Error::Io(std::io::Error::new(
                            std::io::ErrorKind::ConnectionAborted,
                            "the client left; its command was killed",
                        )));
                    }
                },
                waited = child.wait(), if status.is_none() => {
                    *status = Some(waited?);
                    tree.leader_reaped();
                    heard = tokio::time::Instant::now();
                    // What it started goes with it now: left running, it
                    // would outlive every limit, and hold the output open.
                    tree.kill();
                }
                // Its first process gone and its tree killed, yet its
                // output still open and quiet: held by a process that left
                // its group where /proc cannot be read (or stuck in the
                // kernel). Waiting for it would only turn an exit into a
                // timeout (ssh waits, and hangs); the exit is the
                // command's answer, as `timeout`'s is its command's.
                () = tokio::time::sleep_until(heard + OUTPUT_AFTER_EXIT), if status.is_some() => {
                    static HELD: RateLimited = RateLimited::new();
                    HELD.warn(|suppressed| warn!(
                        suppressed,
                        "a command exited, but its output was still held open {} later by a \
                         process it left that could not be killed (one that left its process \
                         group, where /proc cannot be read); its exit is reported, that process \
                         left running",
                        humantime::format_duration(OUTPUT_AFTER_EXIT)
                    ));
                    break exit_of(status.expect("checked"));
                }
                // The queue full, the loop must wake when the command
                // takes from it, not at the next scan (four times a second:
                // input at 16 pieces a tick).
                gone = wait_for_room(stdin_tx.as_ref()), if !room => {
                    if gone {
                        // The command's stdin is closed: input goes nowhere.
                        stdin_tx = None;
                    }
                }
                _ = scan.tick() => tree.scan(),
                _ = beat.tick() => conn.write_message(&output(Stream::Stdout, &[])).await?,
            }
        };
        Ok(exit)
    }

    /// Sends one piece of output, unless it takes the command past its
    /// output cap: then the command is killed and that is how it ended.
    async fn forward<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        conn: &mut Connection<S>,
        child: &mut Child,
        tree: &Tree,
        stream: Stream,
        bytes: &[u8],
        written: &mut u64,
    ) -> Result<Option<Exit>, Error> {
        if bytes.is_empty() {
            return Ok(None);
        }
        let max = self.config.max_output;
        let room = max.saturating_sub(*written);
        let len = bytes.len() as u64;
        let send = &bytes[..usize::try_from(len.min(room)).unwrap_or(bytes.len())];
        if !send.is_empty() {
            conn.write_message(&output(stream, send)).await?;
        }
        *written += len;
        if *written > max {
            kill(child, tree).await;
            return Ok(Some(Exit::Killed(COMMAND_OUTPUT.format(max))));
        }
        Ok(None)
    }
}

/// Writes what the client sends to the command's stdin; closing the
/// channel closes stdin.
async fn feed_stdin(stdin: Option<ChildStdin>, mut rx: mpsc::Receiver<Bytes>) {
    let Some(mut stdin) = stdin else { return };
    while let Some(bytes) = rx.recv().await {
        if stdin.write_all(&bytes).await.is_err() {
            return; // the command closed its stdin
        }
    }
}

/// Kills the command's tree (its process group too, whether or not its
/// first process has been reaped) and, elsewhere, the command; reaps it.
async fn kill(child: &mut Child, tree: &Tree) {
    tree.kill();
    let _ = child.start_kill();
    if let Ok(Ok(_)) = tokio::time::timeout(REAP_WAIT, child.wait()).await {
        tree.leader_reaped();
    }
}

async fn refuse<S: AsyncRead + AsyncWrite + Unpin>(
    conn: &mut Connection<S>,
    peer: PeerAddr,
    reason: String,
) -> Result<(), Error> {
    info!(%peer, "refused a command: {reason}");
    answer_refusal(conn, reason).await
}

/// Tells the client its command was refused, and why.
async fn answer_refusal<S: AsyncRead + AsyncWrite + Unpin>(
    conn: &mut Connection<S>,
    reason: String,
) -> Result<(), Error> {
    conn.write_message(&Exit::Refused(reason).to_message())
        .await?;
    Ok(())
}

/// The argv for a log line: each argument escaped, space-separated.
fn show(command: &Command) -> String {
    let args: Vec<String> = command
        .argv()
        .iter()
        .map(|arg| format!("{:?}", String::from_utf8_lossy(arg)))
        .collect();
    args.join(" ")
}

fn describe(exit: &Exit) -> String {
    match exit {
        Exit::Exited(code) => format!("exited with status {code}"),
        Exit::Signaled(signal) => format!("killed by signal {signal}"),
        Exit::Refused(reason) | Exit::Killed(reason) => reason.clone(),
        other => format!("{other:?}"),
    }
}

/// Waits until the command's stdin queue has room again; `true` when it
/// never will (the command's stdin closed, its feeder gone).
async fn wait_for_room(tx: Option<&mpsc::Sender<Bytes>>) -> bool {
    match tx {
        // The permit goes back at once: the loop then reads the client.
        Some(tx) => tx.reserve().await.is_err(),
        None => false,
    }
}
