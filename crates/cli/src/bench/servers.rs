//! The built-in echo listeners: `msg listen` itself, on 127.0.0.1 port 0,
//! each on a thread with a current-thread runtime of its own so that it
//! shares nothing with the client but the kernel.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::mpsc;
use std::thread::{self, JoinHandle};

use anyhow::{Context, anyhow};
use core_affinity::CoreId;
use tokio::sync::oneshot;
use tracing::warn;

use super::pin::pin_current;
use crate::cli::{ListenArgs, Reply, TcpArgs, Transport, TransportArg};
use crate::listen::Bound;

/// Running listeners; dropping this stops them and joins their threads.
#[derive(Debug)]
pub(crate) struct Servers {
    running: Vec<Running>,
}

#[derive(Debug)]
struct Running {
    transport: Transport,
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Servers {
    /// Starts a listener for each transport and waits until each is bound.
    ///
    /// # Errors
    ///
    /// When a thread, a runtime or a socket cannot be made.
    pub(crate) fn start(
        transports: &[Transport],
        core: Option<CoreId>,
        nodelay: bool,
    ) -> anyhow::Result<Self> {
        let mut servers = Self {
            running: Vec::new(),
        };
        for &transport in transports {
            servers.running.push(spawn(transport, core, nodelay)?);
        }
        Ok(servers)
    }

    /// The address of the listener for `transport`.
    pub(crate) fn addr(&self, transport: Transport) -> SocketAddr {
        self.running
            .iter()
            .find(|running| running.transport == transport)
            .map(|running| running.addr)
            .expect("a listener was started for every transport measured")
    }
}

fn spawn(transport: Transport, core: Option<CoreId>, nodelay: bool) -> anyhow::Result<Running> {
    let args = ListenArgs {
        transport: TransportArg {
            udp: transport == Transport::Udp,
            tcp: transport == Transport::Tcp,
        },
        addr: String::new(),
        count: None,
        // Pings are answered whatever --reply says; the benchmark sends
        // nothing else that wants an answer.
        reply: Reply::None,
        raw: false,
        json: false,
        tcp: TcpArgs {
            max_frame: msg_tcp::DEFAULT_MAX_FRAME,
            nodelay,
        },
    };
    let (bound_tx, bound_rx) = mpsc::channel();
    let (stop, stopped) = oneshot::channel::<()>();
    let name = format!("msg-bench-{}", transport.name());
    let thread = thread::Builder::new()
        .name(name.clone())
        .spawn(move || {
            pin_current(core, "listener");
            let serve = async {
                let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
                let bound = Bound::bind(transport, addr).await.and_then(|bound| {
                    let addr = bound.local_addr()?;
                    Ok((bound, addr))
                });
                // `start` waits for this one message before it goes on.
                let bound = match bound {
                    Ok((bound, addr)) => {
                        let _ = bound_tx.send(Ok(addr));
                        bound
                    }
                    Err(err) => {
                        let _ = bound_tx.send(Err(err));
                        return Ok(());
                    }
                };
                tokio::select! {
                    result = bound.serve(&args) => result,
                    _ = stopped => Ok(()),
                }
            };
            let result = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(anyhow::Error::from)
                .and_then(|runtime| runtime.block_on(serve));
            if let Err(err) = result {
                // The client sees its peer gone and reports that.
                warn!("built-in {} listener stopped: {err:#}", transport.name());
            }
        })
        .with_context(|| format!("cannot start the thread {name}"))?;
    let addr = bound_rx
        .recv()
        .map_err(|_| anyhow!("the built-in {} listener did not start", transport.name()))??;
    Ok(Running {
        transport,
        addr,
        stop: Some(stop),
        thread: Some(thread),
    })
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
