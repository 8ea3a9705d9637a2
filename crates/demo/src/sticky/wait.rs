//! Waiting, bounded: FIONREAD polled until every byte written is in the
//! reader's socket, and every other wait cut off at the deadline.

use super::*;

// ---- waiting, bounded -----------------------------------------------------

pub(super) const FIONREAD_FAILED: &str = "cannot ask how many bytes wait unread (FIONREAD)";

/// How many bytes wait unread in `socket`'s receive buffer: the FIONREAD
/// ioctl (Linux also calls it SIOCINQ), through rustix's safe wrapper.
#[cfg(unix)]
pub(super) fn queued(socket: &impl std::os::fd::AsFd) -> io::Result<Option<u64>> {
    Ok(Some(rustix::io::ioctl_fionread(socket)?))
}

/// Not asked on this platform: the caller pauses instead and says so.
#[cfg(not(unix))]
pub(super) fn queued<T>(_socket: &T) -> io::Result<Option<u64>> {
    Ok(None)
}

/// How the reader waited for the writer's bytes.
#[derive(Debug, Clone, Copy)]
pub(super) struct Waited {
    /// What FIONREAD said at the end: `None` where it was not asked.
    pub(super) queued: Option<u64>,
    pub(super) after: Duration,
}

impl Waited {
    pub(super) fn describe(self) -> String {
        let after = if self.after < Duration::from_millis(1) {
            format!("{} µs", self.after.as_micros())
        } else {
            format!("{:.1} ms", self.after.as_secs_f64() * 1e3)
        };
        match self.queued {
            Some(n) => format!(
                "The reader waited until FIONREAD said all {n} bytes were in its socket \
                 buffer ({after} after the writes)"
            ),
            None => format!(
                "The reader paused {after} (this build does not ask FIONREAD, so the \
                 glue is likely but not certain)"
            ),
        }
    }
}

/// Waits until `want` bytes wait unread in `socket`: polls FIONREAD every
/// [`POLL`], at most [`POLLS`] times.
pub(super) fn wait_for(socket: &TcpStream, want: usize) -> Result<Waited> {
    let start = Instant::now();
    for _ in 0..POLLS {
        match queued(socket).what(FIONREAD_FAILED)? {
            Some(n) if n >= want as u64 => return Ok(Waited::done(Some(n), start)),
            Some(_) => thread::sleep(POLL),
            None => {
                thread::sleep(PAUSE);
                return Ok(Waited::done(None, start));
            }
        }
    }
    Err(too_slow(want))
}

/// [`wait_for`] for a tokio socket, sleeping without blocking the runtime.
pub(super) async fn wait_for_async(socket: &tokio::net::TcpStream, want: usize) -> Result<Waited> {
    let start = Instant::now();
    for _ in 0..POLLS {
        match queued(socket).what(FIONREAD_FAILED)? {
            Some(n) if n >= want as u64 => return Ok(Waited::done(Some(n), start)),
            Some(_) => tokio::time::sleep(POLL).await,
            None => {
                tokio::time::sleep(PAUSE).await;
                return Ok(Waited::done(None, start));
            }
        }
    }
    Err(too_slow(want))
}

impl Waited {
    fn done(queued: Option<u64>, start: Instant) -> Self {
        Self {
            queued,
            after: start.elapsed(),
        }
    }
}

pub(super) fn too_slow(want: usize) -> Error {
    Error::Broken(format!(
        "the writer's {want} bytes did not all arrive within {} s",
        DEADLINE.as_secs()
    ))
}

/// `fut`, or an error once [`DEADLINE`] has passed.
pub(super) async fn bounded<T, E>(fut: impl Future<Output = std::result::Result<T, E>>) -> Result<T>
where
    E: Into<Error>,
{
    tokio::time::timeout(DEADLINE, fut)
        .await
        .map_err(|_| Error::Broken(format!("nothing happened within {} s", DEADLINE.as_secs())))?
        .map_err(Into::into)
}

pub(super) fn localhost() -> SocketAddr {
    (Ipv4Addr::LOCALHOST, 0).into()
}

/// Whether the demo's peer is its own: its ports are loopback's, and any
/// local process may connect (or send) to them first. A stranger's bytes
/// would be shown as the lesson's.
pub(super) fn own(from: SocketAddr, ours: SocketAddr) -> Result<()> {
    if from == ours {
        Ok(())
    } else {
        Err(Error::Broken(format!(
            "a connection from {from}, not the demo's own client"
        )))
    }
}

/// `len` bytes of the alphabet over and over: readable where a read starts.
pub(super) fn pattern(len: usize) -> Vec<u8> {
    (b'a'..=b'z').cycle().take(len).collect()
}
