//! [`BlockingServers`]: the blocking engine's built-in listeners,
//! `msg_net::blocking::serve` on a thread each, pinned where the tokio
//! listeners would be.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::{self, JoinHandle};

use core_affinity::CoreId;
use tracing::warn;

use msg_net::limits::TcpOptions;
use msg_net::{Counters, Events, ServeConfig, Transport, blocking};

use super::{Bound, listen_addr, socket_dir};
use crate::error::Error;
use crate::pin::pin_current;
use crate::sockdir::SocketDir;

/// The blocking engine's built-in listeners; dropping this stops them and
/// joins their threads.
#[derive(Debug)]
pub(crate) struct BlockingServers {
    bound: Bound,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
    /// Removed once the threads have been joined (in `drop`).
    _dir: Option<SocketDir>,
}

impl BlockingServers {
    /// Binds a listener for each transport, with the secret or without
    /// (`streams`), where [`listen_addr`] says, and serves each on a
    /// thread of its own, pinned to `core`; the UDP ones take up to
    /// `udp_batch` datagrams per receive call (a batched run) when it is
    /// over 1. Async only to make the addresses: binding and serving
    /// block.
    ///
    /// # Errors
    ///
    /// When a socket, a thread or the directory of the socket files
    /// cannot be made.
    pub(crate) async fn start(
        streams: &[(Transport, bool)],
        core: Option<CoreId>,
        nodelay: bool,
        busy_poll: bool,
        auth: Option<&msg_net::Auth>,
        udp_batch: usize,
    ) -> Result<Self, Error> {
        let stop = Arc::new(AtomicBool::new(false));
        let dir = socket_dir(streams)?;
        let dir_path = dir.as_ref().map(|dir| dir.path().to_owned());
        let mut servers = Self {
            bound: Bound::default(),
            stop: Arc::clone(&stop),
            threads: Vec::new(),
            _dir: dir,
        };
        for &(transport, authenticated) in streams {
            let tcp = TcpOptions {
                nodelay,
                ..TcpOptions::default()
            };
            let local = listen_addr(dir_path.as_deref(), (transport, authenticated)).await?;
            let listener = blocking::Listener::bind(transport, local, tcp)?;
            let bound = &mut servers.bound;
            bound
                .addrs
                .push(((transport, authenticated), listener.addr()?));
            bound.drops.push(listener.kernel_drops()?.map(Arc::new));
            let counters = Arc::<Counters>::default();
            bound.counters.push(Arc::clone(&counters));
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

    /// The listeners, their addresses, counters and kernel drops.
    pub(crate) fn bound(&self) -> &Bound {
        &self.bound
    }
}

impl Drop for BlockingServers {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}
