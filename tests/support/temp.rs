//! Test files in one folder per test process, removed when it exits.
//!
//! Every path [`fresh_path`](super::fresh_path) hands out lies in
//! `msg-tests-<pid>` under the temporary directory, so that a run leaves
//! nothing behind: the folder is removed when the test process exits (the
//! harness returns from `main` or calls `process::exit`, and both run
//! `atexit` handlers). A run that was killed cannot clean up; the next run
//! removes every such folder whose process is gone.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

const PREFIX: &str = "msg-tests-";

static DIR: OnceLock<PathBuf> = OnceLock::new();

/// This process's folder, made (and the dead runs' folders swept) on first
/// use.
pub(crate) fn dir() -> &'static Path {
    DIR.get_or_init(|| {
        sweep();
        let dir = std::env::temp_dir().join(format!("{PREFIX}{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir(&dir).unwrap();
        // SAFETY: `atexit` only records the address of a function that
        // takes nothing and returns nothing, which `remove_at_exit` is.
        let registered = unsafe { libc::atexit(remove_at_exit) };
        assert_eq!(registered, 0, "atexit refused the clean-up");
        dir
    })
}

extern "C" fn remove_at_exit() {
    if let Some(dir) = DIR.get() {
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// Removes the folders of earlier test processes that no longer run.
fn sweep() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|name| name.strip_prefix(PREFIX))
            .and_then(|pid| pid.parse::<libc::pid_t>().ok())
        else {
            continue;
        };
        // SAFETY: signal 0 sends nothing; it only asks whether `pid` exists.
        let gone = unsafe { libc::kill(pid, 0) } == -1
            && std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH);
        if gone {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}
