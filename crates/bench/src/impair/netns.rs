//! The private network namespace an impaired benchmark runs in.
//!
//! The caller (msg) re-executes itself ([`rerun_private`], given its own
//! command line) in a child that is put into new namespaces between `fork`
//! and `exec`: as root a new
//! network namespace, otherwise a new user namespace too, in which the
//! user's own uid and gid are mapped to root, so that the child may
//! configure its own loopback and nothing else. The child marks itself
//! with an environment variable holding the parent's namespace, checks
//! that it is somewhere else and alone with `lo`, brings `lo` up, applies
//! the impairments (`impair`) and runs the ordinary benchmark.
//!
//! Teardown needs no code: a network namespace, with its interfaces,
//! nftables rules and qdiscs, goes away with the last process in it. The
//! child is that process, whether it finishes, fails or is killed (Ctrl-C
//! reaches it from the terminal, and the parent forwards SIGINT, SIGTERM
//! and SIGHUP sent to it alone; if the parent dies, the kernel kills the
//! child). The machine's own interfaces and rules are never touched.

use std::ffi::CString;
use std::io;
use std::os::unix::process::CommandExt;
use std::process::{Command, ExitStatus};
use std::time::Duration;

use nix::sched::{CloneFlags, unshare};
use nix::sys::signal::{SigHandler, SigSet, SigmaskHow, Signal, kill, pthread_sigmask};
use nix::unistd::{Gid, Pid, Uid};

/// Why an impaired run cannot have, or is not in, a namespace of its own.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NetnsError {
    /// No namespace can be made here; `advice` says what would allow one.
    #[error(
        "impairing needs a network namespace of its own, and none can be made here: {call}: {source}.{advice}"
    )]
    Unshare {
        /// The system call refused.
        call: &'static str,
        /// Why.
        source: io::Error,
        /// What would allow it, as a sentence after the error (from the
        /// system's own settings), with a leading space.
        advice: String,
    },
    /// The child is in the namespace it was started from.
    #[error(
        "refusing to impair the network namespace msg was started in ({0}); {CHILD_ENV} is msg's own"
    )]
    NotPrivate(String),
    /// The namespace has interfaces besides `lo`.
    #[error("refusing to impair a network namespace with interfaces other than lo: {0}")]
    NotAlone(String),
    /// A system call around the namespace failed.
    #[error("{what}")]
    Io {
        /// What could not be done.
        what: String,
        /// Why.
        source: io::Error,
    },
}

impl NetnsError {
    fn io(what: impl Into<String>) -> impl FnOnce(io::Error) -> Self {
        let what = what.into();
        move |source| Self::Io { what, source }
    }
}

/// Set in the child: the parent's network namespace (`net:[inode]`).
const CHILD_ENV: &str = "MSG_BENCH_IMPAIR_NETNS";

/// Where this process's network namespace is named.
const OWN_NETNS: &str = "/proc/self/ns/net";

/// In the child, the parent's namespace as the parent saw it; `None` in
/// the process the user started.
pub fn parent_namespace() -> Option<String> {
    std::env::var(CHILD_ENV).ok()
}

/// Where an impaired run goes on: in this process, already inside the
/// private namespace it was started in (`None`), or, in the process the
/// user started, nowhere: this same command is run again inside a new
/// namespace, and `Some` is the code to exit with ([`rerun_private`]).
///
/// # Errors
///
/// [`rerun_private`]'s, or [`check_private`]'s in the child.
pub fn enter() -> Result<Option<u8>, NetnsError> {
    if let Some(parent) = parent_namespace() {
        check_private(&parent)?;
        return Ok(None);
    }
    let exe = std::env::current_exe().map_err(NetnsError::io(
        "cannot find this program's executable".to_owned(),
    ))?;
    let mut again = Command::new(exe);
    again.args(std::env::args_os().skip(1));
    rerun_private(again).map(Some)
}

/// Runs `command` (msg's own command line, again) in a new network
/// namespace, marked so that [`parent_namespace`] finds the one it came
/// from, and waits for it, forwarding SIGINT, SIGTERM and SIGHUP; its exit
/// status.
///
/// # Errors
///
/// [`NetnsError::Unshare`] with what would allow a namespace when none can
/// be made; [`NetnsError::Io`] when waiting fails.
pub fn rerun_private(mut command: Command) -> Result<u8, NetnsError> {
    let own = std::fs::read_link(OWN_NETNS)
        .map_err(NetnsError::io(format!("cannot read {OWN_NETNS}")))?;
    let root = Uid::effective().is_root();
    let flags = if root {
        CloneFlags::CLONE_NEWNET
    } else {
        CloneFlags::CLONE_NEWUSER | CloneFlags::CLONE_NEWNET
    };
    // Everything the child writes between fork and exec is made here: no
    // allocation there.
    let maps: Vec<(CString, CString)> = if root {
        Vec::new()
    } else {
        [
            ("/proc/self/setgroups", "deny".to_owned()),
            ("/proc/self/uid_map", format!("0 {} 1", Uid::current())),
            ("/proc/self/gid_map", format!("0 {} 1", Gid::current())),
        ]
        .into_iter()
        .map(|(path, text)| {
            (
                CString::new(path).expect("no NUL"),
                CString::new(text).expect("no NUL"),
            )
        })
        .collect()
    };

    // The signals the parent forwards or waits for are blocked, so that it
    // takes them with sigwait and nothing interrupts it; the child starts
    // with none blocked.
    let mut waited = SigSet::empty();
    for signal in [
        Signal::SIGINT,
        Signal::SIGTERM,
        Signal::SIGHUP,
        Signal::SIGCHLD,
    ] {
        waited.add(signal);
    }
    pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&waited), None)
        .map_err(|errno| NetnsError::io("cannot block signals")(errno.into()))?;

    command.env(CHILD_ENV, &own);
    // SAFETY: between fork and exec the closure makes only system calls
    // (unshare, open, write, close, prctl, sigaction, sigprocmask) on data
    // prepared above, and allocates nothing; the parent has one thread
    // here. Setting a signal to its default action installs no handler.
    unsafe {
        command.pre_exec(move || {
            unshare(flags)?;
            for (path, text) in &maps {
                write_proc(path, text)?;
            }
            // If msg (the parent) dies, so does the namespace.
            nix::sys::prctl::set_pdeathsig(Signal::SIGKILL)?;
            // The benchmark ends on a signal the parent forwards, as a run
            // outside a namespace ends on it (its signal thread takes it),
            // even where msg was started with it ignored (a shell without
            // job control ignores SIGINT in the background, nohup SIGHUP),
            // which exec would keep.
            for signal in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
                nix::sys::signal::signal(signal, SigHandler::SigDfl)?;
            }
            pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None)?;
            Ok(())
        });
    }
    let mut child = command
        .spawn()
        .map_err(|source| cannot_make_namespace(source, root))?;
    let pid = Pid::from_raw(i32::try_from(child.id()).expect("a pid fits an i32"));
    // Bounded by the child's life, which the benchmark's own limits bound.
    // The child is looked at after every wait, SIGCHLD or not: this
    // thread takes SIGCHLD only while it waits, and one that comes while
    // it forwards a signal goes to another thread of the process that
    // does not block it (the log's writer), whose default action for it
    // is to discard it. Waiting for it alone hung the parent for good
    // after a Ctrl-C (CI, nineteenth session).
    loop {
        match wait_within(&waited, CHILD_CHECK)
            .map_err(|errno| NetnsError::io("sigtimedwait")(errno.into()))?
        {
            Some(Signal::SIGCHLD) | None => {}
            Some(signal) => {
                let _ = kill(pid, signal);
            }
        }
        if let Some(status) = child
            .try_wait()
            .map_err(NetnsError::io("cannot wait for the benchmark"))?
        {
            return Ok(exit_code(status));
        }
    }
}

/// How long the parent of an impaired run waits for a signal before it
/// looks at its child anyway.
const CHILD_CHECK: Duration = Duration::from_millis(100);

/// One of `signals` (blocked in this thread), or `None` after `limit`.
fn wait_within(signals: &SigSet, limit: Duration) -> nix::Result<Option<Signal>> {
    let timeout = libc::timespec {
        tv_sec: libc::time_t::try_from(limit.as_secs()).unwrap_or(libc::time_t::MAX),
        tv_nsec: libc::c_long::from(limit.subsec_nanos()),
    };
    // SAFETY: a valid signal set and timeout, for the length of the call;
    // no siginfo is asked for.
    let taken = unsafe { libc::sigtimedwait(signals.as_ref(), std::ptr::null_mut(), &timeout) };
    match taken {
        -1 => match nix::errno::Errno::last() {
            nix::errno::Errno::EAGAIN | nix::errno::Errno::EINTR => Ok(None),
            errno => Err(errno),
        },
        number => Signal::try_from(number).map(Some),
    }
}

/// The code a process exits with to pass on a child's `status`, as a shell
/// does: the child's own code, or 128 + the signal that killed it.
#[must_use]
pub fn exit_code(status: ExitStatus) -> u8 {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => u8::try_from(code).unwrap_or(1),
        (None, Some(signal)) => u8::try_from(128 + signal).unwrap_or(1),
        (None, None) => 1,
    }
}

/// Writes `text` to a file of `/proc/self` with plain system calls.
fn write_proc(path: &CString, text: &CString) -> io::Result<()> {
    // SAFETY: both strings are NUL-terminated and live for the call.
    unsafe {
        let fd = libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        let bytes = text.as_bytes();
        let written = libc::write(fd, bytes.as_ptr().cast(), bytes.len());
        let err = io::Error::last_os_error();
        libc::close(fd);
        if usize::try_from(written).ok() != Some(bytes.len()) {
            return Err(err);
        }
    }
    Ok(())
}

/// Why no namespace could be made, and what would allow one.
fn cannot_make_namespace(source: io::Error, root: bool) -> NetnsError {
    let call = if root {
        "unshare(CLONE_NEWNET)"
    } else {
        "unshare(CLONE_NEWUSER | CLONE_NEWNET)"
    };
    let advice = if root {
        " As root this needs CAP_SYS_ADMIN, which a container may withhold \
         (docker run --cap-add SYS_ADMIN, or --privileged)."
            .to_owned()
    } else {
        unprivileged_advice()
    };
    NetnsError::Unshare {
        call,
        source,
        advice,
    }
}

/// What would allow an unprivileged user a namespace, from the system's
/// own settings.
fn unprivileged_advice() -> String {
    let read = |path: &str| {
        std::fs::read_to_string(path)
            .ok()
            .map(|s| s.trim().to_owned())
    };
    let mut why = Vec::new();
    if read("/proc/sys/kernel/unprivileged_userns_clone").as_deref() == Some("0") {
        why.push("`sysctl kernel.unprivileged_userns_clone=1` (it is 0)");
    }
    if read("/proc/sys/user/max_user_namespaces").as_deref() == Some("0") {
        why.push("`sysctl user.max_user_namespaces=10000` (it is 0)");
    }
    if read("/proc/sys/kernel/apparmor_restrict_unprivileged_userns").as_deref() == Some("1") {
        why.push(
            "`sysctl kernel.apparmor_restrict_unprivileged_userns=0` (AppArmor restricts them)",
        );
    }
    if why.is_empty() {
        why.push("`sysctl kernel.unprivileged_userns_clone=1` where that setting exists");
    }
    format!(
        " Without root it needs unprivileged user namespaces: allow them with {}, or run msg as root.",
        why.join(" and ")
    )
}

/// In the child: checks that this process is in a namespace of its own,
/// not the one it was started from, whose only interface is `lo`; then
/// brings `lo` up. Nothing is ever applied outside such a namespace, even
/// with the marker set by hand.
///
/// # Errors
///
/// When the namespace is not msg's own, or `lo` cannot be brought up.
pub fn check_private(parent: &str) -> Result<(), NetnsError> {
    let own = std::fs::read_link(OWN_NETNS)
        .map_err(NetnsError::io(format!("cannot read {OWN_NETNS}")))?;
    if own.as_os_str() == parent {
        return Err(NetnsError::NotPrivate(parent.to_owned()));
    }
    let devices = std::fs::read_to_string("/proc/self/net/dev")
        .map_err(NetnsError::io("cannot read /proc/self/net/dev"))?;
    let names: Vec<&str> = devices
        .lines()
        .skip(2)
        .filter_map(|l| l.split(':').next())
        .map(str::trim)
        .collect();
    if names != ["lo"] {
        return Err(NetnsError::NotAlone(names.join(", ")));
    }
    loopback_up()
}

/// `ip link set lo up`, as one ioctl.
fn loopback_up() -> Result<(), NetnsError> {
    // Any socket serves for the ioctl; binding needs no interface up.
    let socket = std::net::UdpSocket::bind("0.0.0.0:0")
        .map_err(NetnsError::io("cannot make a socket to bring lo up"))?;
    let fd = std::os::fd::AsRawFd::as_raw_fd(&socket);
    // SAFETY: `ifreq` is plain data; the name is NUL-terminated within its
    // 16 bytes; the kernel reads and writes only the struct passed.
    unsafe {
        let mut req: libc::ifreq = std::mem::zeroed();
        for (dst, src) in req.ifr_name.iter_mut().zip(b"lo\0") {
            *dst = *src as libc::c_char;
        }
        if libc::ioctl(fd, libc::SIOCGIFFLAGS, &raw mut req) < 0 {
            return Err(NetnsError::io("cannot read lo's flags")(
                io::Error::last_os_error(),
            ));
        }
        req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
        if libc::ioctl(fd, libc::SIOCSIFFLAGS, &raw const req) < 0 {
            return Err(NetnsError::io("cannot bring lo up")(
                io::Error::last_os_error(),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_refusal_says_why_and_how_to_allow_it() {
        let err = || io::Error::from_raw_os_error(libc::EPERM);
        let text = cannot_make_namespace(err(), false).to_string();
        assert!(text.contains("CLONE_NEWUSER"), "{text}");
        assert!(text.contains("sysctl"), "{text}");
        assert!(text.contains("run msg as root"), "{text}");
        let text = cannot_make_namespace(err(), true).to_string();
        assert!(text.contains("CAP_SYS_ADMIN"), "{text}");
    }

    #[test]
    fn a_childs_status_passes_on_as_a_shell_would() {
        use std::os::unix::process::ExitStatusExt;
        // A wait status: the exit code in the second byte, a signal in the
        // low seven bits.
        assert_eq!(exit_code(ExitStatus::from_raw(0)), 0);
        assert_eq!(exit_code(ExitStatus::from_raw(2 << 8)), 2);
        assert_eq!(exit_code(ExitStatus::from_raw(libc::SIGINT)), 130);
    }

    /// The parent's wait ends after its limit with nothing pending, so a
    /// SIGCHLD another thread took never hangs it; and returns a pending
    /// signal it waits for.
    #[test]
    fn the_wait_for_a_signal_is_bounded_and_takes_one_pending() {
        let mut usr1 = SigSet::empty();
        usr1.add(Signal::SIGUSR1);
        pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&usr1), None).unwrap();
        let started = std::time::Instant::now();
        assert_eq!(wait_within(&usr1, Duration::from_millis(20)), Ok(None));
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_millis(20) && waited < Duration::from_secs(5),
            "{waited:?}"
        );
        // To this thread alone: blocked here, it stays pending for the wait.
        // SAFETY: pthread_self is this thread, alive for the call.
        assert_eq!(
            unsafe { libc::pthread_kill(libc::pthread_self(), libc::SIGUSR1) },
            0
        );
        assert_eq!(
            wait_within(&usr1, Duration::from_secs(5)),
            Ok(Some(Signal::SIGUSR1))
        );
        pthread_sigmask(SigmaskHow::SIG_UNBLOCK, Some(&usr1), None).unwrap();
    }
}
