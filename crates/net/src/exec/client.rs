//! The client's side (`msg exec`): a command sent, its output streamed
//! to ours, our stdin to it, and how it ended.

use std::ffi::OsString;
use std::time::Duration;

use bytes::Bytes;
use msg_proto::Kind;
use msg_proto::exec::{Command, ExecError, Exit, Stream, input, parse_output};
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tracing::{debug, warn};

use super::READ_LEN;
use crate::auth::printable;
use crate::{Error, Link, Tx};

/// The command a client asks for, from its arguments as the OS gave them:
/// on Unix their bytes exactly, whatever their encoding; elsewhere as text.
///
/// # Errors
///
/// [`ExecError`] for an argv the wire cannot carry (empty, too long, a NUL
/// byte).
pub fn command(args: &[OsString]) -> Result<Command, ExecError> {
    Command::new(args.iter().map(bytes).collect())
}

#[cfg(unix)]
fn bytes(arg: &OsString) -> Vec<u8> {
    use std::os::unix::ffi::OsStrExt;
    arg.as_bytes().to_vec()
}

#[cfg(not(unix))]
fn bytes(arg: &OsString) -> Vec<u8> {
    arg.to_string_lossy().into_owned().into_bytes()
}

/// Runs `command` on the listener at the other end of `link`
/// (authenticated TCP) and streams its output to `stdout` and `stderr`
/// byte for byte, forwarding what `stdin` yields (its end closes the
/// command's stdin); how the command ended.
///
/// The two directions run at once, on the link's two halves: a command
/// such as `cat` takes input and gives output together, and a client
/// that stopped reading output while a send of input waited would wait
/// for ever on a listener that, its output unread, stopped taking input.
///
/// A listener that says nothing for `silence` (the listener beats every
/// [`BEAT`](msg_proto::exec::BEAT) a command is quiet; [`SILENCE`](super::SILENCE)
/// is three of them) is given up as stopped.
///
/// # Errors
///
/// The transport's, an `Error` from the listener, a listener that closed
/// the connection before saying how the command ended, or one silent for
/// `silence`.
pub async fn run(
    link: Link,
    command: &Command,
    stdin: mpsc::Receiver<Bytes>,
    stdout: &mut (impl AsyncWrite + Unpin),
    stderr: &mut (impl AsyncWrite + Unpin),
    silence: Duration,
) -> Result<Exit, Error> {
    let (mut tx, mut rx) = link.split()?;
    tx.send(&command.to_message()).await?;
    let forward = forward_input(&mut tx, stdin);
    tokio::pin!(forward);
    let mut forwarding = true;
    let silent = tokio::time::sleep(silence);
    tokio::pin!(silent);
    loop {
        tokio::select! {
            msg = rx.recv() => {
                // A listener that closes with our input's end unread
                // resets the connection: it closed all the same (seen in
                // CI as a bare `Connection reset by peer` when a stopped
                // listener's close raced that frame).
                let msg = match msg {
                    Err(err) if crate::error::peer_left_in(&err) => return Err(closed()),
                    msg => msg?,
                };
                let Some(msg) = msg else {
                    return Err(closed());
                };
                silent.as_mut().reset(tokio::time::Instant::now() + silence);
                match msg.kind {
                    Kind::CommandOutput => {
                        let (stream, bytes) = parse_output(&msg).map_err(protocol)?;
                        if bytes.is_empty() {
                            continue; // the listener's beat: it is there
                        }
                        let out: &mut (dyn AsyncWrite + Unpin) = match stream {
                            Stream::Stdout => stdout,
                            Stream::Stderr => stderr,
                        };
                        // Our own output, not the connection: a closed
                        // stdout (`msg exec ... | head`) is told apart.
                        out.write_all(&bytes).await.map_err(Error::Output)?;
                        out.flush().await.map_err(Error::Output)?;
                    }
                    Kind::CommandExit => return Exit::from_message(&msg).map_err(protocol),
                    Kind::Error => return Err(Error::Peer(printable(&msg.body))),
                    other => debug!(kind = ?other, "ignored during a command"),
                }
            }
            () = &mut silent => return Err(stalled(silence)),
            sent = &mut forward, if forwarding => {
                forwarding = false;
                // Input that can no longer go (a command that exited and
                // closed its stdin, a listener gone) ends nothing by
                // itself: what the listener says next does, or its close.
                if let Err(err) = sent {
                    warn!("stopped forwarding input to the command: {err}");
                }
            }
        }
    }
}

/// Sends what `stdin` yields as the command's input, then its end.
async fn forward_input(tx: &mut Tx, mut stdin: mpsc::Receiver<Bytes>) -> Result<(), Error> {
    loop {
        let bytes = stdin.recv().await.unwrap_or_default();
        let end = bytes.is_empty();
        tx.send(&input(bytes)).await?;
        if end {
            return Ok(());
        }
    }
}

fn closed() -> Error {
    Error::Io(std::io::Error::new(
        std::io::ErrorKind::UnexpectedEof,
        "the listener closed the connection before the command ended",
    ))
}

fn stalled(silence: Duration) -> Error {
    Error::Io(std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        format!(
            "the listener said nothing for {} while the command ran (it sends a beat every {} \
             a command is quiet): it is stopped, or the network between is gone; the command \
             may still be running there",
            humantime::format_duration(silence),
            humantime::format_duration(msg_proto::exec::BEAT),
        ),
    ))
}

fn protocol(err: ExecError) -> Error {
    Error::Io(std::io::Error::new(std::io::ErrorKind::InvalidData, err))
}

/// Reads `reader` (the client's stdin) on a thread of its own, in pieces,
/// into a channel that [`run`] forwards; the channel closes at its end.
/// A thread rather than tokio's stdin, whose blocking read would hold up
/// the runtime's shutdown until the user pressed Enter.
pub fn stdin_pieces(mut reader: impl std::io::Read + Send + 'static) -> mpsc::Receiver<Bytes> {
    let (tx, rx) = mpsc::channel(4);
    std::thread::spawn(move || {
        let mut buf = vec![0; READ_LEN];
        loop {
            match reader.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    if tx.blocking_send(Bytes::copy_from_slice(&buf[..n])).is_err() {
                        return;
                    }
                }
            }
        }
    });
    rx
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use tokio::io::AsyncReadExt;

    use super::*;
    use crate::{ConnectOptions, Transport};

    /// A listener that takes the command and then says nothing (stopped
    /// with SIGSTOP, say: the kernel still acknowledges its bytes) is given
    /// up at `silence`, not waited for without end.
    #[tokio::test]
    async fn a_listener_silent_past_the_limit_is_given_up() {
        let server = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = server.local_addr().unwrap();
        let mute = tokio::spawn(async move {
            let (mut stream, _) = server.accept().await.unwrap();
            let mut sink = vec![0; 1024];
            // Reads what comes, answers nothing, until the client leaves.
            while let Ok(Ok(n)) =
                tokio::time::timeout(Duration::from_secs(10), stream.read(&mut sink)).await
            {
                if n == 0 {
                    break;
                }
            }
        });
        let link = Link::connect(Transport::Tcp, addr, &ConnectOptions::default())
            .await
            .unwrap();
        let command = command(&["sleep".into(), "60".into()]).unwrap();
        let (_stdin_tx, stdin) = mpsc::channel(1);
        let started = Instant::now();
        let ran = run(
            link,
            &command,
            stdin,
            &mut tokio::io::sink(),
            &mut tokio::io::sink(),
            Duration::from_millis(300),
        )
        .await;
        let err = ran.expect_err("a silent listener is no command's end");
        assert!(err.to_string().contains("said nothing for 300ms"), "{err}");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
        mute.await.unwrap();
    }
}
