//! The built-in echo listeners, on 127.0.0.1 port 0.
//!
//! - [`Servers`]: the tokio engine's, `msg listen`'s own serve loop
//!   (`msg_net::serve`), on a thread with a current-thread runtime of
//!   their own so that they share nothing with the client but the kernel.
//! - [`BlockingServers`]: the blocking engine's, `msg_net::blocking::serve`,
//!   a thread for UDP and one to accept TCP (plus one per connection),
//!   pinned where the tokio listeners would be.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::thread::{self, JoinHandle};

use core_affinity::CoreId;
use tokio::sync::oneshot;
use tracing::warn;

use msg_net::limits::TcpOptions;
use msg_net::{BusyPoll, Counters, Events, Listener, ServeConfig, Transport, blocking, serve};

use crate::error::{Error, chain};
use crate::pin::pin_current;

/// Running listeners; dropping this stops them and joins their thread.
#[derive(Debug)]
pub(crate) struct Servers {
    addrs: Vec<((Transport, bool), SocketAddr)>,
    /// What each listener counts, in the order of `addrs`.
    counters: Vec<Arc<Counters>>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Servers {
    /// Starts a listener for each transport, with the secret or without
    /// (`streams`), all on one thread (so that
    /// with `busy_poll` one core spins, not one per listener), and waits
    /// until each is bound.
    ///
    /// # Errors
    ///
    /// When the thread, its runtime or a socket cannot be made.
    pub(crate) fn start(
        streams: &[(Transport, bool)],
        core: Option<CoreId>,
        nodelay: bool,
        busy_poll: bool,
        auth: Option<msg_net::Auth>,
    ) -> Result<Self, Error> {
        Self::start_batched(streams, core, nodelay, busy_poll, auth, 0)
    }

    /// As [`Servers::start`], the UDP listeners taking up to `udp_batch`
    /// datagrams per receive call (a batched run).
    ///
    /// # Errors
    ///
    /// As [`Servers::start`].
    pub(crate) fn start_batched(
        streams: &[(Transport, bool)],
        core: Option<CoreId>,
        nodelay: bool,
        busy_poll: bool,
        auth: Option<msg_net::Auth>,
        udp_batch: usize,
    ) -> Result<Self, Error> {
        let streams = streams.to_vec();
        let counters: Vec<Arc<Counters>> = streams.iter().map(|_| Arc::default()).collect();
        let listener_counters = counters.clone();
        let (bound_tx, bound_rx) = mpsc::channel();
        let (stop, stopped) = oneshot::channel::<()>();
        let thread = thread::Builder::new()
            .name("msg-bench-listeners".to_owned())
            .spawn(move || {
                pin_current(core, "listener");
                let serve = async {
                    let mut listeners = Vec::new();
                    for &stream in &streams {
                        match bind(stream.0, nodelay).await {
                            Ok((bound, addr)) => listeners.push((stream, bound, addr)),
                            Err(err) => {
                                // `start` waits for this one message.
                                let _ = bound_tx.send(Err(err));
                                return Ok(());
                            }
                        }
                    }
                    let addrs = listeners.iter().map(|(t, _, addr)| (*t, *addr)).collect();
                    let _ = bound_tx.send(Ok(addrs));
                    let mut serving = tokio::task::JoinSet::new();
                    for (((transport, authenticated), listener, _), counters) in
                        listeners.into_iter().zip(listener_counters)
                    {
                        // Pings are answered whatever `reply` says; the
                        // benchmark sends nothing else that wants an
                        // answer, and nothing is printed.
                        let config = ServeConfig {
                            auth: auth.clone().filter(|_| authenticated),
                            udp_batch,
                            counters,
                            ..ServeConfig::default()
                        };
                        let serving_one =
                            serve(listener, config, Events::discard(), std::future::pending());
                        serving.spawn(async move {
                            serving_one
                                .await
                                .map_err(|source| Error::Listener { transport, source })
                        });
                    }
                    // One spinner for all the listeners.
                    let _spinning = busy_poll.then(BusyPoll::start);
                    tokio::select! {
                        Some(ended) = serving.join_next() => ended.map_err(Error::ListenerTask)?,
                        _ = stopped => Ok(()),
                    }
                };
                let result = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(Error::from)
                    .and_then(|runtime| runtime.block_on(serve));
                if let Err(err) = result {
                    // The client sees its peer gone and reports that.
                    warn!("{}", chain(&err));
                }
            })
            .map_err(|source| Error::Thread {
                what: "the listeners' thread",
                source,
            })?;
        let addrs = bound_rx.recv().map_err(|_| Error::ListenersDidNotStart)??;
        Ok(Self {
            addrs,
            counters,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// The address of the listener for `transport`, with the secret or
    /// without.
    pub(crate) fn addr(&self, transport: Transport, authenticated: bool) -> SocketAddr {
        find(&self.addrs, transport, authenticated)
    }
}

impl Servers {
    /// Each listener's address and counters.
    pub(crate) fn counters(&self) -> Vec<(SocketAddr, Arc<Counters>)> {
        zip_counters(&self.addrs, &self.counters)
    }
}

async fn bind(transport: Transport, nodelay: bool) -> Result<(Listener, SocketAddr), Error> {
    let options = TcpOptions {
        nodelay,
        ..TcpOptions::default()
    };
    let listener = Listener::bind(
        transport,
        SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
        options,
    )
    .await?;
    let addr = listener.local_addr()?;
    Ok((listener, addr))
}

impl Drop for Servers {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The blocking engine's built-in listeners; dropping this stops them and
/// joins their threads.
#[derive(Debug)]
pub(crate) struct BlockingServers {
    addrs: Vec<((Transport, bool), SocketAddr)>,
    /// What each listener counts, in the order of `addrs`.
    counters: Vec<Arc<Counters>>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl BlockingServers {
    /// Binds a listener for each transport, with the secret or without
    /// (`streams`), on 127.0.0.1 port 0 and serves each on a thread of its
    /// own, pinned to `core`; the UDP ones take up to `udp_batch`
    /// datagrams per receive call (a batched run) when it is over 1.
    ///
    /// # Errors
    ///
    /// When a socket or a thread cannot be made.
    pub(crate) fn start(
        streams: &[(Transport, bool)],
        core: Option<CoreId>,
        nodelay: bool,
        busy_poll: bool,
        auth: Option<&msg_net::Auth>,
        udp_batch: usize,
    ) -> Result<Self, Error> {
        let stop = Arc::new(AtomicBool::new(false));
        let mut servers = Self {
            addrs: Vec::new(),
            counters: Vec::new(),
            stop: Arc::clone(&stop),
            threads: Vec::new(),
        };
        for &(transport, authenticated) in streams {
            let tcp = TcpOptions {
                nodelay,
                ..TcpOptions::default()
            };
            let local = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
            let listener = blocking::Listener::bind(transport, local, tcp)?;
            servers
                .addrs
                .push(((transport, authenticated), listener.local_addr()?));
            let counters = Arc::<Counters>::default();
            servers.counters.push(Arc::clone(&counters));
            // As the tokio listeners: pings are answered whatever `reply`
            // says, and nothing is printed.
            let config = ServeConfig {
                busy_poll,
                auth: auth.filter(|_| authenticated).cloned(),
                udp_batch,
                counters,
                ..ServeConfig::default()
            };
            let stop = Arc::clone(&stop);
            let thread = thread::Builder::new()
                .name(format!("msg-bench-{transport}-blocking"))
                .spawn(move || {
                    // TCP connections' threads inherit the placement.
                    pin_current(core, "listener");
                    if let Err(err) = blocking::serve(&listener, &config, &Events::discard(), &stop)
                    {
                        warn!("built-in blocking {transport} listener: {err}");
                    }
                })
                .map_err(|source| Error::Thread {
                    what: "a listener's thread",
                    source,
                })?;
            servers.threads.push(thread);
        }
        Ok(servers)
    }

    /// The address of the listener for `transport`, with the secret or
    /// without.
    pub(crate) fn addr(&self, transport: Transport, authenticated: bool) -> SocketAddr {
        find(&self.addrs, transport, authenticated)
    }

    /// Each listener's address and counters.
    pub(crate) fn counters(&self) -> Vec<(SocketAddr, Arc<Counters>)> {
        zip_counters(&self.addrs, &self.counters)
    }
}

/// The address of the listener for `(transport, authenticated)` in `addrs`.
fn find(
    addrs: &[((Transport, bool), SocketAddr)],
    transport: Transport,
    authenticated: bool,
) -> SocketAddr {
    addrs
        .iter()
        .find(|(stream, _)| *stream == (transport, authenticated))
        .map(|(_, addr)| *addr)
        .expect("a listener was started for every transport measured")
}

/// Each of `addrs`' address beside its listener's counters.
fn zip_counters(
    addrs: &[((Transport, bool), SocketAddr)],
    counters: &[Arc<Counters>],
) -> Vec<(SocketAddr, Arc<Counters>)> {
    addrs
        .iter()
        .map(|(_, addr)| *addr)
        .zip(counters.iter().cloned())
        .collect()
}

impl Drop for BlockingServers {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}
