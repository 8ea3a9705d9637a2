//! The built-in echo listeners: on 127.0.0.1 port 0 for a transport
//! addressed by IP, and for one addressed by a path (a Unix socket) at a
//! file in a private temporary directory made for them ([`SocketDir`]).
//!
//! - [`Servers`]: the tokio engine's, `msg listen`'s own serve loop
//!   (`msg_net::serve`), on a thread with a current-thread runtime of
//!   their own so that they share nothing with the client but the kernel.
//! - [`BlockingServers`] (`blocking.rs`): the blocking engine's,
//!   `msg_net::blocking::serve`, a thread per listener (plus one per
//!   connection of a stream), pinned where the tokio listeners would be.
//!
//! Neither asks which transport it serves: an address is made as the
//! transport reads one ([`listen_addr`]), bound, and served by msg-net,
//! which knows each family.

use std::path::Path;
use std::sync::{Arc, OnceLock, mpsc};
use std::thread::{self, JoinHandle};

use core_affinity::CoreId;
use tokio::sync::oneshot;
use tracing::warn;

use msg_net::limits::TcpOptions;
use msg_net::tls::{TlsClient, TlsServer};
use msg_net::{
    BusyPoll, Counters, Events, KernelDrops, Listener, PeerAddr, ServeConfig, Transport, serve,
};

use crate::error::{Error, chain};
use crate::pin::pin_current;
use crate::sockdir::SocketDir;

mod blocking;

pub(crate) use blocking::BlockingServers;

/// Where a built-in listener on an IP transport binds: loopback, a port
/// the system picks.
const LOOPBACK: &str = "127.0.0.1:0";

/// The socket directory, made only when one of `streams` is addressed by
/// a path.
fn socket_dir(streams: &[(Transport, bool)]) -> Result<Option<SocketDir>, Error> {
    if streams.iter().all(|(transport, _)| transport.is_inet()) {
        return Ok(None);
    }
    SocketDir::new().map(Some)
}

/// Where the built-in listener of `stream` (a transport, with the secret
/// or without) binds, made as the transport reads an address
/// (`Transport::listen_addr`): [`LOOPBACK`] for an IP transport, else a
/// file in `dir` named for the stream (`unix.sock`, `unix-auth.sock`).
async fn listen_addr(
    dir: Option<&Path>,
    (transport, authenticated): (Transport, bool),
) -> Result<PeerAddr, Error> {
    let addr = if transport.is_inet() {
        LOOPBACK.to_owned()
    } else {
        let dir = dir.expect("a directory is made for every transport addressed by a path");
        let auth = if authenticated { "-auth" } else { "" };
        // UTF-8 (SocketDir's base is), so nothing is lost.
        dir.join(format!("{transport}{auth}.sock"))
            .to_string_lossy()
            .into_owned()
    };
    Ok(transport.listen_addr(&addr).await?)
}

/// Running listeners; dropping this stops them and joins their thread.
#[derive(Debug)]
pub(crate) struct Servers {
    bound: Bound,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
    /// Removed once the thread has been joined (in `drop`).
    _dir: Option<SocketDir>,
}

impl Servers {
    /// Starts a listener for each transport, with the secret or without
    /// (`streams`), all on one thread (so that
    /// with `busy_poll` one core spins, not one per listener), and waits
    /// until each is bound.
    ///
    /// # Errors
    ///
    /// When the thread, its runtime, a socket or the directory of the
    /// socket files cannot be made.
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
        let dir = socket_dir(streams)?;
        let dir_path = dir.as_ref().map(|dir| dir.path().to_owned());
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
                        match bind(dir_path.as_deref(), stream, nodelay).await {
                            Ok((bound, addr)) => listeners.push((stream, bound, addr)),
                            Err(err) => {
                                // `start` waits for this one message.
                                let _ = bound_tx.send(Err(err));
                                return Ok(());
                            }
                        }
                    }
                    let mut bound = Vec::with_capacity(listeners.len());
                    for (stream, listener, addr) in &listeners {
                        match listener.kernel_drops() {
                            Ok(drops) => bound.push((*stream, addr.clone(), drops.map(Arc::new))),
                            Err(err) => {
                                let _ = bound_tx.send(Err(err.into()));
                                return Ok(());
                            }
                        }
                    }
                    let _ = bound_tx.send(Ok(bound));
                    let mut serving = tokio::task::JoinSet::new();
                    for (((transport, authenticated), listener, _), counters) in
                        listeners.into_iter().zip(listener_counters)
                    {
                        // Pings are answered whatever `reply` says; the
                        // benchmark sends nothing else that wants an
                        // answer, and nothing is printed.
                        let config = ServeConfig {
                            auth: auth.clone().filter(|_| authenticated),
                            tls: transport.caps().encrypted.then(|| builtin_tls().0.clone()),
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
        let listening = bound_rx.recv().map_err(|_| Error::ListenersDidNotStart)??;
        let (addrs, drops) = listening
            .into_iter()
            .map(|(stream, addr, drops)| ((stream, addr), drops))
            .unzip();
        Ok(Self {
            bound: Bound {
                addrs,
                counters,
                drops,
            },
            stop: Some(stop),
            thread: Some(thread),
            _dir: dir,
        })
    }

    /// The listeners, their addresses, counters and kernel drops.
    pub(crate) fn bound(&self) -> &Bound {
        &self.bound
    }
}

/// The built-in listeners' TLS, made once per process: a self-signed
/// certificate for the listener, and a client that pins it. What is
/// measured is the session's cost (its handshake once per connection, its
/// records after), not a CA's check.
pub(crate) fn builtin_tls() -> &'static (TlsServer, TlsClient) {
    static TLS: OnceLock<(TlsServer, TlsClient)> = OnceLock::new();
    TLS.get_or_init(|| {
        msg_net::tls::pinned_pair(msg_net::tls::DEFAULT_HANDSHAKE_TIMEOUT)
            .expect("a self-signed certificate, and a client that reads no file")
    })
}

/// Binds the listener of `stream`; `nodelay` applies where the transport
/// has Nagle's algorithm to switch off (msg-net knows where).
async fn bind(
    dir: Option<&Path>,
    stream: (Transport, bool),
    nodelay: bool,
) -> Result<(Listener, PeerAddr), Error> {
    let options = TcpOptions {
        nodelay,
        ..TcpOptions::default()
    };
    let listener = Listener::bind(stream.0, listen_addr(dir, stream).await?, options).await?;
    // The address bound, with the port the system picked.
    let addr = listener.addr()?;
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

/// What the built-in listeners of either engine hand out, each in the
/// order they were started: a listener's stream (transport, with the
/// secret or without) and address, what it counts, and for a UDP one its
/// kernel drops.
#[derive(Debug, Default)]
pub(crate) struct Bound {
    addrs: Vec<((Transport, bool), PeerAddr)>,
    counters: Vec<Arc<Counters>>,
    drops: Vec<Option<Arc<KernelDrops>>>,
}

impl Bound {
    /// The address of the listener for `transport`, with the secret or
    /// without.
    pub(crate) fn addr(&self, transport: Transport, authenticated: bool) -> PeerAddr {
        self.addrs[self.at(transport, authenticated)].1.clone()
    }

    /// The kernel drops of the listener for `transport`, with the secret
    /// or without: a UDP listener's; `None` for the others.
    pub(crate) fn kernel_drops(
        &self,
        transport: Transport,
        authenticated: bool,
    ) -> Option<Arc<KernelDrops>> {
        self.drops[self.at(transport, authenticated)].clone()
    }

    /// Each listener's address and counters.
    pub(crate) fn counters(&self) -> Vec<(PeerAddr, Arc<Counters>)> {
        self.addrs
            .iter()
            .map(|(_, addr)| addr.clone())
            .zip(self.counters.iter().cloned())
            .collect()
    }

    /// Where the listener for `(transport, authenticated)` is.
    fn at(&self, transport: Transport, authenticated: bool) -> usize {
        self.addrs
            .iter()
            .position(|(stream, _)| *stream == (transport, authenticated))
            .expect("a listener was started for every transport measured")
    }
}
