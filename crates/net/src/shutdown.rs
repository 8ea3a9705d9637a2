//! Stopping a listener on a signal: SIGINT (Ctrl-C), SIGTERM and SIGHUP
//! each end it cleanly (its partial files removed, its commands killed,
//! its socket file gone, its summary written), and a second one, a second
//! or more later while it still finishes up, exits at once. SIGHUP that
//! was ignored when msg started (`nohup`) stays ignored.

use std::time::{Duration, Instant};

/// Why a listener was asked to stop: the signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// SIGINT (Ctrl-C).
    Interrupt,
    /// SIGTERM.
    Terminate,
    /// SIGHUP (the terminal closed, or a service manager's stop): the
    /// same as SIGTERM.
    Hangup,
}

impl Stop {
    /// The exit code a shell reports for a process the signal killed: 130,
    /// 143 or 129. msg exits with it only when the signal cut a file
    /// transfer short (the partial file is removed).
    pub fn code(self) -> u8 {
        match self {
            Self::Interrupt => 130,
            Self::Terminate => 143,
            Self::Hangup => 129,
        }
    }
}

/// How long after the first signal another is the same request to stop.
/// `timeout(1)` sends its SIGTERM to the process and then to its process
/// group, two signals microseconds apart (tens of milliseconds on a loaded
/// machine): taken as "exit at once", the second cut the listener off
/// before its summary, its socket file left behind. A person who presses
/// Ctrl-C again because the first seems not to work does so later.
pub const SAME_STOP: Duration = Duration::from_secs(1);

/// The first SIGINT, SIGTERM or SIGHUP. Another, [`SAME_STOP`] or more
/// later, while the listener still finishes up (removing partial files,
/// killing its commands, printing its summary), exits at once.
///
/// The handlers are installed now, before the listener binds, not when the
/// future is first polled: a signal sent as soon as the listener says it
/// is listening (a service manager, a test) must stop it cleanly, its
/// socket file removed, rather than kill it.
///
/// # Panics
///
/// Outside a tokio runtime (the handlers are the runtime's).
pub fn on_signal() -> impl Future<Output = Stop> {
    let mut signals = Signals::install();
    async move {
        let stop = signals.next().await;
        let first = Instant::now();
        tokio::spawn(async move {
            loop {
                let again = signals.next().await;
                if first.elapsed() >= SAME_STOP {
                    tracing::warn!("{again:?} again: exiting at once, without finishing up");
                    std::process::exit(i32::from(again.code()));
                }
                tracing::debug!("{again:?} again, within {SAME_STOP:?}: the same stop");
            }
        });
        stop
    }
}

/// SIGINT, SIGTERM and SIGHUP, each caught from the moment it is
/// installed; a handler that cannot be installed leaves that signal's
/// default (terminate) in place, and SIGHUP ignored at start gets none.
struct Signals([Option<tokio::signal::unix::Signal>; 3]);

impl Signals {
    const STOPS: [Stop; 3] = [Stop::Interrupt, Stop::Terminate, Stop::Hangup];

    fn install() -> Self {
        use tokio::signal::unix::{SignalKind, signal};
        let kinds = [
            SignalKind::interrupt(),
            SignalKind::terminate(),
            SignalKind::hangup(),
        ];
        Self(kinds.map(|kind| {
            // `nohup msg listen` asks for a listener that outlives its
            // terminal: a handler would replace the SIG_IGN it inherited.
            // (SIGINT is caught even when ignored: a shell without job
            // control ignores it for whatever it starts in the background,
            // and `kill -INT` should still stop a listener cleanly.)
            let kept = kind == SignalKind::hangup() && ignored(libc::SIGHUP);
            (!kept).then(|| signal(kind).ok()).flatten()
        }))
    }

    /// The next signal caught.
    async fn next(&mut self) -> Stop {
        let [interrupt, terminate, hangup] = &mut self.0;
        tokio::select! {
            () = caught(interrupt) => Self::STOPS[0],
            () = caught(terminate) => Self::STOPS[1],
            () = caught(hangup) => Self::STOPS[2],
        }
    }
}

/// Runs `start` with SIGINT, SIGTERM and SIGHUP blocked on the calling
/// thread, so that a thread it starts (which inherits the mask) never
/// takes them: a helper thread started early (the log's) must leave them
/// to whoever waits for them. `msg bench` waits for them with `sigwait`
/// on a thread of its own, all others blocking them; one that did not
/// took Ctrl-C and the process died of it, its socket directory left
/// behind.
pub fn without_stop_signals<T>(start: impl FnOnce() -> T) -> T {
    use nix::sys::signal::{SigSet, SigmaskHow, Signal, pthread_sigmask};
    let mut stops = SigSet::empty();
    for signal in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        stops.add(signal);
    }
    let mut before = SigSet::empty();
    let blocked = pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&stops), Some(&mut before)).is_ok();
    let started = start();
    if blocked {
        let _ = pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&before), None);
    }
    started
}

/// Makes a write past the file-size limit (`ulimit -f`, systemd's
/// `LimitFSIZE=`) an error, `EFBIG`, rather than SIGXFSZ, whose default
/// kills the process: one file a peer sends past the limit killed the
/// listener and every peer with it, with no summary and its partial file
/// left (audit, round seven). As an error it is the one transfer's: the
/// sender is told `File too large`, as it is told of a full disk, and
/// the rest are served. A process-wide setting, made once at start.
pub fn ignore_file_size_signal() {
    // SAFETY: setting a signal's disposition to SIG_IGN installs no
    // handler (nothing runs on the signal), and no other thread is
    // changing it: this runs first thing in `main`.
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
    }
}

/// Whether `signal` is ignored (`SIG_IGN`), as this process inherited it.
fn ignored(signal: libc::c_int) -> bool {
    // SAFETY: `sigaction` is plain data, all zeroes a valid value; with no
    // new action the call changes nothing and only writes the current one
    // into `current`.
    let mut current: libc::sigaction = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::sigaction(signal, std::ptr::null(), &raw mut current) };
    rc == 0 && current.sa_sigaction == libc::SIG_IGN
}

/// The next `signal`; never, for one without a handler.
async fn caught(signal: &mut Option<tokio::signal::unix::Signal>) {
    match signal {
        Some(signal) => {
            signal.recv().await;
        }
        None => std::future::pending::<()>().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_signal_exits_as_a_shell_reports_it() {
        assert_eq!(Stop::Interrupt.code(), 130);
        assert_eq!(Stop::Terminate.code(), 143);
        assert_eq!(Stop::Hangup.code(), 129);
    }

    /// Caught from the moment `on_signal` returns, before anything polls
    /// it: a signal that comes first is not lost (and does not kill).
    #[tokio::test]
    async fn a_signal_before_the_first_poll_is_caught() {
        let stopped = on_signal();
        nix::sys::signal::raise(nix::sys::signal::Signal::SIGHUP).unwrap();
        let stop = tokio::time::timeout(Duration::from_secs(5), stopped)
            .await
            .expect("the signal was caught");
        assert_eq!(stop, Stop::Hangup);
    }
}
