//! The private directory the built-in listeners of a transport addressed
//! by a path (a Unix socket) bind their socket files in, and its removal
//! when a run is interrupted.
//!
//! Dropping a [`SocketDir`] removes it, but Ctrl-C ends the process
//! without dropping anything: [`remove_on_signal`] makes SIGINT, SIGTERM
//! and SIGHUP end it through a thread that first removes every directory
//! still in use, so an interrupted `msg bench --transports unix` leaves no
//! `msg-bench.*` behind in `/tmp`.

use std::path::PathBuf;
use std::sync::Mutex;

use tempfile::TempDir;
use tracing::debug;

use crate::error::Error;

/// The longest temporary directory socket paths are made under. A path
/// holds at most 107 bytes (`sun_path`), and the directory's own name
/// (`msg-bench.XXXXXX`) and a socket's (`seqpacket-auth.sock`) take about
/// 40 of them; under a longer `TMPDIR`, `/tmp` is used.
const MAX_TEMP_BASE: usize = 64;

/// The directories in use, for the signal thread to remove.
static IN_USE: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// A directory only this user may enter (mode 0700), removed with
/// anything in it when dropped (after the listeners, which remove their
/// own files first), or when the process is interrupted.
#[derive(Debug)]
pub(crate) struct SocketDir(TempDir);

impl SocketDir {
    /// Makes one, `msg-bench.XXXXXX` under `TMPDIR` (or `/tmp`, when
    /// `TMPDIR` is too long for a socket path below it).
    pub(crate) fn new() -> Result<Self, Error> {
        let tmp = std::env::temp_dir();
        let base = match tmp.to_str() {
            Some(text) if text.len() <= MAX_TEMP_BASE => tmp,
            // Too long for sun_path, or not text a path can be given as.
            _ => PathBuf::from("/tmp"),
        };
        let mut builder = tempfile::Builder::new();
        builder.prefix("msg-bench.");
        // tempfile leaves a directory's mode to the umask (0755 under the
        // usual 022).
        #[cfg(unix)]
        builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o700));
        let dir = builder
            .tempdir_in(&base)
            .map_err(|source| Error::CreateDir { path: base, source })?;
        debug!(
            "built-in listeners' socket files in {}",
            dir.path().display()
        );
        lock().push(dir.path().to_owned());
        Ok(Self(dir))
    }

    /// Where it is.
    pub(crate) fn path(&self) -> &std::path::Path {
        self.0.path()
    }
}

impl Drop for SocketDir {
    fn drop(&mut self) {
        lock().retain(|path| path != self.0.path());
    }
}

fn lock() -> std::sync::MutexGuard<'static, Vec<PathBuf>> {
    // A panic elsewhere while it was held leaves a list still worth
    // cleaning up.
    IN_USE
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// From now on, SIGINT, SIGTERM and SIGHUP end the process through a
/// thread of its own, which first removes the socket directories in use,
/// then exits with 128 + the signal, as a shell reports a process killed
/// by it. Call it before any other thread starts (the signals are blocked
/// in this thread, and so in every thread it starts, for the signal
/// thread to take them), and not in a process that waits for those
/// signals itself (an impaired run's parent, which forwards them).
///
/// # Errors
///
/// [`Error::Io`] when the signals cannot be blocked, [`Error::Thread`]
/// when the thread cannot start.
#[cfg(target_os = "linux")]
pub fn remove_on_signal() -> Result<(), Error> {
    use nix::sys::signal::{SigSet, SigmaskHow, Signal, pthread_sigmask};
    let mut signals = SigSet::empty();
    for signal in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        signals.add(signal);
    }
    pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&signals), None)
        .map_err(|errno| Error::Io(errno.into()))?;
    std::thread::Builder::new()
        .name("msg-bench-signals".to_owned())
        .spawn(move || {
            // Waits as long as the process lives: it ends with it.
            let Ok(signal) = signals.wait() else { return };
            for path in lock().drain(..) {
                let _ = std::fs::remove_dir_all(path);
            }
            std::process::exit(128 + signal as i32);
        })
        .map_err(|source| Error::Thread {
            what: "the thread that removes the socket directory on a signal",
            source,
        })?;
    Ok(())
}

/// Elsewhere the process ends as the signal says, and may leave its
/// socket directory behind.
#[cfg(not(target_os = "linux"))]
pub fn remove_on_signal() -> Result<(), Error> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_socket_dir_is_private_listed_while_it_lives_and_removed_after() {
        use std::os::unix::fs::PermissionsExt;
        let dir = SocketDir::new().unwrap();
        let path = dir.path().to_owned();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        assert!(lock().contains(&path));
        drop(dir);
        assert!(!path.exists());
        assert!(!lock().contains(&path));
    }
}
