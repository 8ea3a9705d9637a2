//! The client's side (`msg exec`): a command sent, its output streamed
//! to ours, our stdin to it, and how it ended.

use std::ffi::OsString;

use bytes::Bytes;
use msg_proto::Kind;
use msg_proto::exec::{Command, ExecError, Exit, Stream, input, parse_output};
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tracing::debug;

use super::READ_LEN;
use crate::auth::printable;
use crate::{Error, Link};

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
/// # Errors
///
/// The transport's, an `Error` from the listener, or a listener that
/// closed the connection before saying how the command ended.
pub async fn run(
    link: &mut Link,
    command: &Command,
    mut stdin: mpsc::Receiver<Bytes>,
    stdout: &mut (impl AsyncWrite + Unpin),
    stderr: &mut (impl AsyncWrite + Unpin),
) -> Result<Exit, Error> {
    link.send(&command.to_message()).await?;
    let mut stdin_open = true;
    loop {
        tokio::select! {
            msg = link.recv() => {
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
            bytes = stdin.recv(), if stdin_open => {
                let bytes = bytes.unwrap_or_default();
                stdin_open = !bytes.is_empty();
                link.send(&input(bytes)).await?;
            }
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
