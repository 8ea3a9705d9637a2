//! QUIC in the connect mode: a new connection per cycle from one client
//! endpoint ([`QuicClient`]), against a built-in listener's endpoint
//! ([`QuicServer`]), with msg-net's QUIC configuration (ALPN, transport
//! settings) and handshake ([`msg_net::quic::handshake_on`]) over the
//! built-in listeners' TLS.
//!
//! The endpoint, and so its UDP socket, lives for the whole run, as
//! quinn's endpoint does in a client that connects again and again; what
//! a cycle makes anew is the connection: its handshake (Initial,
//! Handshake, the certificate and its signature, until quinn has the
//! connection established), one request and reply on a new stream (the
//! first byte's round trip), and its close. The client runs quinn on a
//! current-thread tokio runtime on its own thread, as `msg` does.

use std::fmt;
use std::future::Future;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, mpsc};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use core_affinity::CoreId;
use msg_net::tls::LOCAL_NAME;
use msg_proto::HEADER_LEN;
use tracing::debug;

use super::server::pong;
use super::stream::{Exchange, PREFIX};
use super::{Cycles, Run};
use crate::error::{Error, RunError};
use crate::pin::pin_current;

/// Connections the listener serves at once: a cycle's client closes its
/// connection before the next, so more would be a client gone astray,
/// refused rather than served.
const MAX_SERVING: usize = 16;

/// The built-in QUIC listener: an endpoint on 127.0.0.1, served on a
/// thread of its own; dropping it closes the endpoint and joins the
/// thread.
pub(crate) struct QuicServer {
    addr: SocketAddr,
    endpoint: quinn::Endpoint,
    thread: Option<JoinHandle<()>>,
}

impl fmt::Debug for QuicServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("QuicServer")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl QuicServer {
    /// Binds the endpoint with `tls`'s certificate and serves it on a
    /// thread pinned to `core`.
    pub(crate) fn start(
        plan: &Cycles,
        core: Option<CoreId>,
        tls: &Arc<rustls::ServerConfig>,
    ) -> Result<Self, Error> {
        let config = msg_net::quic::server_config(tls).map_err(msg_net::Error::from)?;
        let framed_len = PREFIX + HEADER_LEN + plan.size;
        let timeout = plan.timeout;
        let (bound_tx, bound_rx) = mpsc::channel();
        let thread = thread::Builder::new()
            .name("msg-bench-quic-connect".to_owned())
            .spawn(move || {
                pin_current(core, "listener");
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => runtime,
                    Err(err) => {
                        let _ = bound_tx.send(Err(Error::from(err)));
                        return;
                    }
                };
                runtime.block_on(async move {
                    let local = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
                    let endpoint = match msg_net::quic::bind_endpoint(local) {
                        Ok(endpoint) => endpoint,
                        Err(err) => {
                            let _ = bound_tx.send(Err(msg_net::Error::from(err).into()));
                            return;
                        }
                    };
                    endpoint.set_server_config(Some(config));
                    let _ = bound_tx.send(Ok(endpoint.clone()));
                    serve(endpoint, framed_len, timeout).await;
                });
            })
            .map_err(|source| Error::Thread {
                what: "a listener's thread",
                source,
            })?;
        let endpoint = bound_rx.recv().map_err(|_| Error::ListenersDidNotStart)??;
        Ok(Self {
            addr: endpoint.local_addr()?,
            endpoint,
            thread: Some(thread),
        })
    }
}

impl Drop for QuicServer {
    fn drop(&mut self) {
        // Its accept() then ends, and with it the thread's loop.
        self.endpoint.close(0u32.into(), b"the benchmark ended");
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Accepts every connection and answers it in a task of its own, at most
/// [`MAX_SERVING`] at once, until the endpoint closes.
async fn serve(endpoint: quinn::Endpoint, framed_len: usize, within: Duration) {
    let mut serving = tokio::task::JoinSet::new();
    loop {
        let incoming = tokio::select! {
            incoming = endpoint.accept() => incoming,
            Some(_) = serving.join_next() => continue,
        };
        let Some(incoming) = incoming else {
            return; // the endpoint closed
        };
        if serving.len() >= MAX_SERVING {
            incoming.refuse();
            continue;
        }
        serving.spawn(async move {
            if let Err(err) = answer(incoming, framed_len, within).await {
                debug!("built-in QUIC connect listener: dropped a connection: {err}");
            }
        });
    }
}

/// One connection: its handshake, the ping on its first stream answered
/// with a pong, then the client's close awaited. Its close, not ours,
/// ends the connection, as over TCP: ours could discard the pong before
/// the client has it.
async fn answer(incoming: quinn::Incoming, framed_len: usize, within: Duration) -> io::Result<()> {
    let conn = bounded(within, incoming.accept()?).await??;
    let (mut send, mut recv) = bounded(within, conn.accept_bi()).await??;
    let mut buf = vec![0; framed_len];
    bounded(within, recv.read_exact(&mut buf))
        .await?
        .map_err(read_error)?;
    pong(&mut buf[PREFIX..])?;
    bounded(within, send.write_all(&buf)).await??;
    let _ = bounded(within, conn.closed()).await;
    Ok(())
}

/// `future` within `within`, or a timed-out error.
async fn bounded<F: Future>(within: Duration, future: F) -> io::Result<F::Output> {
    tokio::time::timeout(within, future)
        .await
        .map_err(|_| io::ErrorKind::TimedOut.into())
}

fn read_error(err: quinn::ReadExactError) -> io::Error {
    match err {
        quinn::ReadExactError::FinishedEarly(_) => io::ErrorKind::UnexpectedEof.into(),
        quinn::ReadExactError::ReadError(err) => err.into(),
    }
}

/// The client: one endpoint, a new connection per cycle.
pub(crate) struct QuicClient {
    /// quinn's tasks (the endpoint's, each connection's) run while a
    /// cycle blocks on it.
    runtime: tokio::runtime::Runtime,
    endpoint: quinn::Endpoint,
    config: quinn::ClientConfig,
    addr: SocketAddr,
    timeout: Duration,
    exchange: Exchange,
    seq: u64,
}

impl fmt::Debug for QuicClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("QuicClient")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl fmt::Display for QuicClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "quic {}", self.addr)
    }
}

impl QuicClient {
    /// A client of `server` with `tls` (its certificate pinned).
    pub(crate) fn new(
        server: &QuicServer,
        plan: &Cycles,
        tls: &Arc<rustls::ClientConfig>,
    ) -> Result<Self, Error> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let config = msg_net::quic::client_config(tls).map_err(msg_net::Error::from)?;
        let endpoint = {
            // quinn spawns the endpoint's task on the runtime it runs in.
            let _inside = runtime.enter();
            msg_net::quic::bind_endpoint(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
                .map_err(msg_net::Error::from)?
        };
        Ok(Self {
            runtime,
            endpoint,
            config,
            addr: server.addr,
            timeout: plan.timeout,
            exchange: Exchange::new(plan.size, true),
            seq: 0,
        })
    }

    /// One cycle: a new connection's handshake, the request and reply on
    /// a new stream, the close; its times go into `run`.
    pub(crate) fn cycle(&mut self, run: &mut Run) -> Result<(), Error> {
        self.seq += 1;
        let seq = self.seq;
        let Self {
            runtime,
            endpoint,
            config,
            addr,
            timeout,
            exchange,
            ..
        } = self;
        let (request, reply) = exchange.next(seq);
        let got = reply.len();
        let start = Instant::now();
        let (established, replied) = runtime.block_on(async {
            let conn =
                msg_net::quic::handshake_on(endpoint, config.clone(), *addr, LOCAL_NAME, *timeout)
                    .await
                    .map_err(msg_net::Error::from)?;
            let established = Instant::now();
            let exchanged = async {
                // Opening a stream sends nothing: its first frame goes
                // with the request.
                let (mut send, mut recv) = conn.open_bi().await.map_err(io::Error::from)?;
                send.write_all(request).await.map_err(io::Error::from)?;
                recv.read_exact(reply).await.map_err(|err| match err {
                    quinn::ReadExactError::FinishedEarly(_) => {
                        Error::from(RunError::ListenerClosed)
                    }
                    quinn::ReadExactError::ReadError(err) => io::Error::from(err).into(),
                })
            };
            tokio::time::timeout(*timeout, exchanged)
                .await
                .map_err(|_| RunError::NoAnswer {
                    seq,
                    within: *timeout,
                })??;
            let replied = Instant::now();
            conn.close(0u32.into(), b"");
            // The connection's task sends the close when polled: on this
            // thread's runtime, once this future yields. Without the
            // yield it would leave at the next cycle's start.
            tokio::task::yield_now().await;
            Ok::<_, Error>((established, replied))
        })?;
        let end = Instant::now();
        self.exchange.check(seq, got)?;
        run.record(
            None,
            Some(established - start),
            replied - established,
            end - start,
        );
        Ok(())
    }
}

impl Drop for QuicClient {
    fn drop(&mut self) {
        // Connections still draining end now, not at their timers.
        self.endpoint.close(0u32.into(), b"the benchmark ended");
    }
}
