//! The client's side (`msg exec`): a command sent, its output streamed
//! to ours, our stdin to it, and how it ended.

use std::ffi::OsString;

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
/// # Errors
///
/// The transport's, an `Error` from the listener, or a listener that
/// closed the connection before saying how the command ended.
pub async fn run(
    link: Link,
    command: &Command,
    stdin: mpsc::Receiver<Bytes>,
    stdout: &mut (impl AsyncWrite + Unpin),
    stderr: &mut (impl AsyncWrite + Unpin),
) -> Result<Exit, Error> {
    let (mut tx, mut rx) = link.split()?;
    tx.send(&command.to_message()).await?;
    let forward = forward_input(&mut tx, stdin);
    tokio::pin!(forward);
    let mut forwarding = true;
    loop {
        tokio::select! {
            msg = rx.recv() => {
                let Some(msg) = msg? else {
                    return Err(closed());
                };
                match msg.kind {
                    Kind::CommandOutput => {
                        let (stream, bytes) = parse_output(&msg).map_err(protocol)?;
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
