//! What a result was measured with, so that it can be compared later: the
//! `"meta"` object that opens every `--json` document.
//!
//! A number without its context is worth little a month later: which msg,
//! which kernel, which CPU, how many cores, how the client and the
//! listeners were placed, which engine, when, and the exact command. Each
//! is read here from the running system (Linux's `/proc`; where a system
//! has no equivalent msg reads, the field is null), never from the user.

use std::time::SystemTime;

use serde::Serialize;

/// The `"meta"` object.
#[derive(Debug, Clone, Serialize)]
pub struct Meta {
    /// msg's version (the workspace's).
    pub version: &'static str,
    /// The git commit msg was built from, where the build could ask git.
    pub commit: Option<&'static str>,
    /// This host's name.
    pub host: Option<String>,
    /// The operating system (`linux`, `macos`, ...).
    pub os: &'static str,
    /// The kernel's release (`uname -r`).
    pub kernel: Option<String>,
    /// The CPU's model name, as /proc/cpuinfo gives it.
    pub cpu_model: Option<String>,
    /// How many CPUs this process may run on.
    pub cpus: usize,
    /// Where the client and the listeners ran (`pin same (cpu 0)`).
    pub placement: String,
    /// The engines measured (`blocking`, `tokio`).
    pub engines: Vec<&'static str>,
    /// When the measurement started, UTC, RFC 3339.
    pub date: String,
    /// The command line, each argument as given.
    pub command: Vec<String>,
}

impl Meta {
    /// The context of a run now starting: `placement` and `engines` as the
    /// plan has them, `command` as the process was started.
    pub fn collect(placement: String, engines: Vec<&'static str>, command: Vec<String>) -> Self {
        Self {
            version: env!("CARGO_PKG_VERSION"),
            commit: option_env!("MSG_COMMIT").filter(|commit| !commit.is_empty()),
            host: read_line("/proc/sys/kernel/hostname"),
            os: std::env::consts::OS,
            kernel: read_line("/proc/sys/kernel/osrelease"),
            cpu_model: cpu_model(),
            cpus: std::thread::available_parallelism().map_or(1, std::num::NonZero::get),
            placement,
            engines,
            date: humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
            command,
        }
    }
}

/// A one-line file's line, trimmed; `None` where there is no such file.
fn read_line(path: &str) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    let line = text.trim();
    (!line.is_empty()).then(|| line.to_owned())
}

/// The first "model name" of /proc/cpuinfo (x86; ARM's has none, and the
/// field is null there).
fn cpu_model() -> Option<String> {
    let info = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    info.lines()
        .filter_map(|line| line.split_once(':'))
        .find(|(key, _)| key.trim() == "model name")
        .map(|(_, value)| value.trim().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_context_is_read_from_the_system() {
        let meta = Meta::collect(
            "pin off".to_owned(),
            vec!["blocking"],
            vec!["msg".to_owned(), "bench".to_owned()],
        );
        // Its keys are tests/bench.rs's contract (assert_meta).
        assert!(meta.cpus >= 1);
        assert!(
            meta.date.ends_with('Z') && meta.date.len() == 20,
            "{}",
            meta.date
        );
        if cfg!(target_os = "linux") {
            assert!(meta.kernel.is_some() && meta.host.is_some());
        }
    }
}
