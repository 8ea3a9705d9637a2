//! How a command starts (its argv as the OS takes it, a clean
//! environment, the stated directory, a process group of its own) and how
//! its end is told: [`spawn`], and [`exit_of`] its status; what keeps it
//! from starting in its directory, [`dir_problem`].

use std::ffi::OsStr;
use std::process::Stdio;
use std::sync::Arc;

use msg_proto::exec::{Command, Exit};
use tokio::process::Child;

use super::ExecConfig;
use super::tree::{Tree, Trees};
use crate::auth::printable;

pub(super) fn spawn(
    trees: &Arc<Trees>,
    owner: u64,
    config: &ExecConfig,
    command: &Command,
) -> std::io::Result<(Child, Tree)> {
    let argv: Vec<&OsStr> = command.argv().iter().map(|arg| os_str(arg)).collect();
    let mut process = tokio::process::Command::new(argv[0]);
    process
        .args(&argv[1..])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Only what the listener chose to pass, and a stated directory:
        // not whatever the listener inherited from where it was started.
        .env_clear()
        .envs(config.env.iter().map(|(name, value)| (name, value)))
        .current_dir(&config.dir)
        .kill_on_drop(true);
    // A group of its own, so that a limit kills what it started too
    // where the tree is not followed (see `tree`).
    #[cfg(unix)]
    process.process_group(0);
    // msg listen turns transparent huge pages off for itself (its allocator
    // would give every thread's heap 2 MiB pages), and ignores SIGXFSZ
    // (`shutdown::ignore_file_size_signal`); a command is not msg, and
    // gets the kernel's defaults back, as if started anywhere else: past
    // `ulimit -f` it is killed by the signal, not told EFBIG (audit,
    // round seven). Likewise the open-file limit, which the listener
    // raised for its connections (`open_files`).
    //
    // And no descriptor of the listener's beyond 0, 1 and 2: msg opens
    // its own close-on-exec, but whatever the listener inherited without
    // it from where it was started (a pipe, a file) reached every command
    // (audit, round fourteen). They are marked close-on-exec here, not
    // closed: the standard library's pipe that reports a failed exec back
    // is among them and must last until the exec (Linux 5.11 and later;
    // on an older kernel the call fails and they stay as they were).
    #[cfg(target_os = "linux")]
    let found = crate::open_files::inherited();
    #[cfg(target_os = "linux")]
    // SAFETY: between fork and exec the closure makes four system calls
    // (prctl, sigaction, setrlimit, close_range), all async-signal-safe,
    // and touches no memory of the parent's that another thread could hold
    // a lock on (the limit was copied into the closure before the fork).
    unsafe {
        process.pre_exec(move || {
            let _ = libc::syscall(
                libc::SYS_close_range,
                3u32,
                u32::MAX,
                libc::CLOSE_RANGE_CLOEXEC,
            );
            let _ = rustix::thread::disable_transparent_huge_pages(false);
            let _ = nix::sys::signal::signal(
                nix::sys::signal::Signal::SIGXFSZ,
                nix::sys::signal::SigHandler::SigDfl,
            );
            if let Some(limit) = found {
                let _ = crate::open_files::restore(limit);
            }
            Ok(())
        });
    }
    trees.spawn(owner, &mut process)
}

#[cfg(unix)]
fn os_str(bytes: &[u8]) -> &OsStr {
    use std::os::unix::ffi::OsStrExt;
    OsStr::from_bytes(bytes)
}

#[cfg(not(unix))]
fn os_str(bytes: &[u8]) -> &OsStr {
    // Elsewhere arguments are text; the bytes were UTF-8 when they left a
    // client there, and anything else runs as the replacement text.
    OsStr::new(std::str::from_utf8(bytes).unwrap_or("\u{fffd}"))
}

pub(super) fn exit_of(status: std::process::ExitStatus) -> Exit {
    if let Some(code) = status.code() {
        return Exit::Exited(code);
    }
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(signal) = status.signal() {
            return Exit::Signaled(signal);
        }
    }
    Exit::Killed(format!("the command ended without a status: {status}"))
}

/// What keeps a command from starting in `dir`, the directory commands
/// run in, if anything: it was checked at start, but may have been
/// removed, replaced or closed to the listener since.
pub(super) fn dir_problem(dir: &std::path::Path) -> Option<String> {
    let shown = printable(dir.to_string_lossy().as_bytes());
    let what = match std::fs::metadata(dir) {
        Err(err) => format!("is gone: {err}"),
        Ok(meta) if !meta.is_dir() => "is not a directory".to_owned(),
        Ok(_) => {
            // Starting in it needs search permission, as chdir does.
            #[cfg(unix)]
            if let Err(err) = rustix::fs::access(dir, rustix::fs::Access::EXEC_OK) {
                let err = std::io::Error::from(err);
                return Some(format!(
                    "the directory commands run in, {shown}, cannot be entered: {err}"
                ));
            }
            return None;
        }
    };
    Some(format!("the directory commands run in, {shown}, {what}"))
}
