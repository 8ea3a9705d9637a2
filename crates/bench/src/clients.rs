//! The `clients` load: N connections open at once (TCP unless told
//! otherwise: any transport whose peers connect), each a closed loop (one
//! ping in flight), against the built-in listener or a remote one.
//!
//! - **Connect.** All N connect at once (with a secret, each also completes
//!   the handshake). Connections per second is N over the time from the
//!   first attempt until the last connection was up.
//! - **Load.** With every connection open, each pings for `--warmup`, then
//!   for the duration; every round trip sent inside that window is
//!   recorded in one histogram for all the clients. (One per client would
//!   cost about 100 KiB each, and this process's memory is part of the
//!   report.) Messages per second is the round trips of all the clients
//!   over the window. TCP loses nothing: a reply later than the timeout,
//!   or a client that cannot connect, fails the run.
//! - **Memory.** The built-in listener runs in this process, so the figures
//!   are the process's, clients and listener together, from
//!   `/proc/self/status`: `VmRSS` before connecting and with every
//!   connection open, and `VmHWM`, the peak. Against a remote listener
//!   they are the clients' alone.
//!
//! Its report is [`report::clients`](crate::report::clients).
//!
//! The clients share a multi-thread runtime (a worker per core): N
//! connections are a load on every core, not a latency probe pinned to
//! one. The built-in listener is `msg listen`'s serve loop on a thread and
//! current-thread runtime of its own, as `msg listen` runs it.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hdrhistogram::Histogram;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tracing::info;

use msg_net::{Auth, Link, PeerAddr, Transport};

use crate::engine::MAX_LATENCY_NS;
use crate::engine::tokio::Peer;
use crate::error::{Error, RunError};
use crate::run::targets::connect_first;
use crate::servers::Servers;
use crate::settings::Target;

/// The most connections a load opens. Loopback runs out of ephemeral
/// ports (about 28,000 by default) well before this.
pub const MAX_CLIENTS: u32 = 100_000;

/// The payload size when none is given.
pub const DEFAULT_SIZE: usize = 64;

/// The transport when none is given ([`run`]): TCP, the default
/// transports' one with connections.
pub const DEFAULT_TRANSPORT: Transport = Transport::Tcp;

/// How long one connection (and its handshake) may take while all N
/// connect at once: a SYN dropped from a full backlog is retried after a
/// second, then two more.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a reply may take when no timeout is given. Each
/// waits behind the other clients' messages (a thousand of them, on a
/// listener with one thread), and over TCP a late reply fails the run.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// Descriptors needed beyond the sockets: the standard streams, the
/// runtimes' epoll and wake-up descriptors, the listening socket.
const SPARE_FDS: u64 = 64;

/// What to run: N clients at once, each a ping-pong.
#[derive(Debug)]
pub struct Load {
    /// How many connections, 1 to [`MAX_CLIENTS`].
    pub clients: u32,
    /// The payload size.
    pub size: usize,
    /// How long every client pings before the measurement.
    pub warmup: Duration,
    /// How long the measurement takes.
    pub duration: Duration,
    /// How long a reply may take; `None`: 5 s.
    pub timeout: Option<Duration>,
    /// `TCP_NODELAY` on the clients and the built-in listener.
    pub nodelay: bool,
    /// Authenticate every connection with this secret.
    pub auth: Option<Auth>,
    /// A listener to measure against (`HOST:PORT`); `None` starts the
    /// built-in one, in this process.
    pub remote: Option<String>,
}

/// What a load measured.
#[derive(Debug)]
pub struct Results {
    /// The transport the clients connected over.
    pub transport: Transport,
    /// The listener's address.
    pub addr: PeerAddr,
    /// Whether it was the built-in one (whose memory is this process's).
    pub builtin: bool,
    pub(crate) measured: Measured,
}

/// Runs `load` over [`DEFAULT_TRANSPORT`]: as [`run_over`].
///
/// # Errors
///
/// As [`run_over`].
pub fn run(load: &Load) -> Result<Results, Error> {
    run_over(load, DEFAULT_TRANSPORT)
}

/// Runs `load` over `transport`: raises the open-file limit as far as it
/// needs, starts the built-in listener unless the load names a remote one
/// (an address of the transport's kind: `HOST:PORT`, or a Unix socket's
/// path), connects every client at once, then measures.
///
/// # Errors
///
/// [`Error::ClientsNeedConnections`] for a transport whose peers do not
/// connect; [`Error::OpenFiles`] when the hard open-file limit is too low;
/// a listener that cannot start; a client that cannot connect, or whose
/// reply does not come in time.
pub fn run_over(load: &Load, transport: Transport) -> Result<Results, Error> {
    if !transport.caps().connections {
        return Err(Error::ClientsNeedConnections(transport));
    }
    let clients = load.clients;
    let builtin = load.remote.is_none();
    // Each client's socket, and with the built-in listener the accepted
    // end of each connection too.
    let sockets = u64::from(clients) * if builtin { 2 } else { 1 };
    raise_open_files(sockets + SPARE_FDS, clients, builtin)?;

    let auth = load.auth.clone();
    let listener = if builtin {
        let streams = [(transport, auth.is_some())];
        Some(Servers::start(
            &streams,
            None,
            load.nodelay,
            false,
            auth.clone(),
        )?)
    } else {
        None
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let target = |addr| Target {
        transport,
        addr,
        nodelay: load.nodelay,
        auth: auth.clone(),
        // A load of connections: no datagrams to drop.
        drops: None,
    };
    let addr = match (&listener, &load.remote) {
        (Some(listener), _) => listener.bound().addr(transport, auth.is_some()),
        // A name with several addresses: every client goes to the first
        // that connects, as a ping-pong run's does (`localhost` is often
        // `::1` first, while the listener is on 127.0.0.1 alone). One
        // listener is the load's point, not a search per client.
        (None, Some(name)) => {
            let addrs = runtime.block_on(transport.connect_addrs(name))?;
            if addrs.len() == 1 {
                addrs[0].clone()
            } else {
                let first = target(addrs[0].clone());
                runtime.block_on(connect_first(name, &addrs, transport, &first))?
            }
        }
        (None, None) => unreachable!("either the built-in listener or a remote one"),
    };
    let target = target(addr.clone());
    info!("connecting {clients} {transport} clients to {addr}");
    let measured = runtime.block_on(measure(target, load))?;
    drop(runtime);
    drop(listener);
    Ok(Results {
        transport,
        addr,
        builtin,
        measured,
    })
}

/// What a run measured.
#[derive(Debug)]
pub(crate) struct Measured {
    pub(crate) authenticated: bool,
    /// From the first connect until the last connection was up.
    pub(crate) connect: Duration,
    /// Round-trip times in nanoseconds, of every client.
    pub(crate) latency: Histogram<u64>,
    pub(crate) memory: Memory,
}

/// The process's resident memory at three points, where `/proc` tells.
#[derive(Debug, Default)]
pub(crate) struct Memory {
    pub(crate) start_kib: Option<u64>,
    pub(crate) open_kib: Option<u64>,
    pub(crate) peak_kib: Option<u64>,
}

/// The window every client measures in, the same for all.
#[derive(Debug, Clone, Copy)]
struct Window {
    from: Instant,
    until: Instant,
}

/// Connects every client at once, then runs the load once all are up.
async fn measure(target: Target, load: &Load) -> Result<Measured, Error> {
    let timeout = load.timeout.unwrap_or(DEFAULT_TIMEOUT);
    let authenticated = target.auth.is_some();
    let target = Arc::new(target);
    let latency = Arc::new(Mutex::new(
        Histogram::new_with_bounds(1, MAX_LATENCY_NS, 3).expect("valid histogram bounds"),
    ));
    let body = Bytes::from(vec![b'm'; load.size]);
    let (up_tx, mut up_rx) = mpsc::unbounded_channel();
    let (go_tx, go_rx) = watch::channel(None);
    let start_kib = status_kib("VmRSS");

    let start = Instant::now();
    let mut clients = JoinSet::new();
    let total = load.clients;
    for i in 0..total {
        let client = Client {
            target: Arc::clone(&target),
            timeout,
            body: body.clone(),
            latency: Arc::clone(&latency),
        };
        let up = up_tx.clone();
        let go = go_rx.clone();
        clients.spawn(async move {
            client.run(up, go).await.map_err(|err| Error::Client {
                index: i + 1,
                total,
                source: Box::new(err),
            })
        });
    }
    drop(up_tx);
    // Every client reports once, up or failed; returning early drops the
    // others (and the start signal, which they wait for).
    let mut last_up = start;
    for _ in 0..load.clients {
        match up_rx.recv().await {
            Some(Ok(at)) => last_up = last_up.max(at),
            Some(Err(err)) => {
                return Err(Error::Connecting {
                    clients: load.clients,
                    addr: target.addr.clone(),
                    source: Box::new(err),
                });
            }
            None => return Err(Error::ClientsStopped),
        }
    }
    let connect = last_up - start;

    let begin = Instant::now();
    let from = begin + load.warmup;
    let _ = go_tx.send(Some(Window {
        from,
        until: from + load.duration,
    }));
    // The clients hand their connections back, so that the memory is read
    // with every connection still open.
    let mut open = Vec::with_capacity(clients.len());
    while let Some(joined) = clients.join_next().await {
        open.push(joined.map_err(Error::ClientTask)??);
    }
    let memory = Memory {
        start_kib,
        open_kib: status_kib("VmRSS"),
        peak_kib: status_kib("VmHWM"),
    };
    drop(open);
    let latency = Arc::try_unwrap(latency)
        .expect("every client has been joined")
        .into_inner()
        .unwrap_or_else(PoisonError::into_inner);
    Ok(Measured {
        authenticated,
        connect,
        latency,
        memory,
    })
}

/// One of the N clients.
#[derive(Debug)]
struct Client {
    target: Arc<Target>,
    timeout: Duration,
    body: Bytes,
    latency: Arc<Mutex<Histogram<u64>>>,
}

impl Client {
    /// Connects, says so on `up`, waits for the window on `go`, and
    /// ping-pongs until it closes; returns the open connection.
    async fn run(
        &self,
        up: mpsc::UnboundedSender<Result<Instant, Error>>,
        mut go: watch::Receiver<Option<Window>>,
    ) -> Result<Option<Peer>, Error> {
        let target = &self.target;
        let mut options = target.connect_options();
        options.timeout = Some(CONNECT_TIMEOUT);
        let link = match Link::connect(target.transport, target.addr.clone(), &options).await {
            Ok(link) => link,
            Err(err) => {
                // The error goes to `measure`, which stops the run.
                let _ = up.send(Err(err.into()));
                return Ok(None);
            }
        };
        let _ = up.send(Ok(Instant::now()));
        let mut peer = Peer::new(link, target.transport, self.timeout, self.body.clone());
        let window = match go.wait_for(Option::is_some).await {
            Ok(window) => window.expect("waited for a window"),
            // The run stopped: another client could not connect.
            Err(_) => return Ok(None),
        };
        loop {
            let now = Instant::now();
            if now >= window.until {
                return Ok(Some(peer));
            }
            let rtt = peer.exchange(now).await?.ok_or(RunError::Lost)?;
            if now >= window.from {
                self.latency
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .saturating_record(rtt.max(1));
            }
        }
    }
}

/// A figure from `/proc/self/status`, in KiB (`VmRSS`, `VmHWM`); `None`
/// where there is no such file.
fn status_kib(key: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    parse_status_kib(&status, key)
}

fn parse_status_kib(status: &str, key: &str) -> Option<u64> {
    status.lines().find_map(|line| {
        let value = line.strip_prefix(key)?.strip_prefix(':')?;
        value.trim().strip_suffix("kB")?.trim().parse().ok()
    })
}

/// Makes room for `needed` open files: raises the soft limit within the
/// hard one (msg-net's [`open_files`](msg_net::open_files), as a
/// listener's), and fails, saying what to do, when the hard limit itself is
/// too low.
#[cfg(target_os = "linux")]
fn raise_open_files(needed: u64, clients: u32, builtin: bool) -> Result<(), Error> {
    use msg_net::open_files::{OpenFiles, make_room};
    let why = || {
        if builtin {
            format!("a socket for each of {clients} clients and as many for the built-in listener")
        } else {
            format!("a socket for each of {clients} clients")
        }
    };
    match make_room(needed) {
        OpenFiles::Enough => Ok(()),
        OpenFiles::Raised { from, to } => {
            info!(
                "raised the open-file limit from {from} to {to}, for {}",
                why()
            );
            Ok(())
        }
        OpenFiles::Short { limit, needed } => Err(Error::OpenFiles {
            clients,
            needed,
            hard: limit,
            why: why(),
        }),
    }
}

#[cfg(not(target_os = "linux"))]
fn raise_open_files(_needed: u64, _clients: u32, _builtin: bool) -> Result<(), Error> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_figures_are_read_in_kib() {
        let status = "Name:\tmsg\nVmHWM:\t   40960 kB\nVmRSS:\t   12345 kB\nThreads:\t3\n";
        assert_eq!(parse_status_kib(status, "VmRSS"), Some(12_345));
        assert_eq!(parse_status_kib(status, "VmHWM"), Some(40_960));
        assert_eq!(parse_status_kib(status, "VmSwap"), None);
        assert_eq!(parse_status_kib("VmRSSX:\t1 kB\n", "VmRSS"), None);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn this_process_has_a_resident_size() {
        let rss = status_kib("VmRSS").expect("Linux has /proc/self/status");
        assert!(rss > 0);
        assert!(status_kib("VmHWM").unwrap() >= rss);
    }
}
