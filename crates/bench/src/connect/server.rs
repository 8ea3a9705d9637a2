//! The built-in listener that serves a stream transport one connection
//! after another ([`StreamServer`]), TLS over TCP included, and the pong
//! every built-in connect listener makes of a ping ([`pong`]).

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use crate::sockdir::SocketDir;
use core_affinity::CoreId;
use msg_net::Transport;
use msg_proto::{HEADER_LEN, Header, Kind, decode_header, encode_header};
use socket2::{SockAddr, Socket};
use tracing::{debug, warn};

use super::Cycles;
use super::fast_open::fast_open_listener;
use super::stream::{Endpoint, PREFIX, is_tcp, timed_out};
use super::tls;
use crate::error::Error;
use crate::pin::pin_current;

/// How often the listener looks at its stop flag while no one connects.
const STOP_CHECK: Duration = Duration::from_millis(100);

/// The listen backlog: one client connects at a time, but a RST-closed
/// cycle's next SYN can come before the listener is back in `accept()`.
const BACKLOG: i32 = 128;

/// The built-in listener of one stream transport: one thread that accepts
/// a connection, answers its ping, waits for the client to close, closes,
/// and accepts the next; dropping it stops the thread.
#[derive(Debug)]
pub(crate) struct StreamServer {
    transport: Transport,
    addr: SocketAddrOrPath,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    /// Removed after the thread is joined.
    _dir: Option<SocketDir>,
}

/// Where a built-in stream listener listens.
#[derive(Debug, Clone)]
enum SocketAddrOrPath {
    Inet(SocketAddr),
    Path(SockAddr, String),
}

impl StreamServer {
    /// Binds `transport`'s listener (127.0.0.1 port 0, or a socket file in
    /// a private temporary directory) and serves it on a thread pinned to
    /// `core`.
    pub(crate) fn start(
        transport: Transport,
        plan: &Cycles,
        core: Option<CoreId>,
        tls: Option<Arc<rustls::ServerConfig>>,
    ) -> Result<Self, Error> {
        let (bind_to, dir) = if transport.is_inet() {
            (
                SockAddr::from(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))),
                None,
            )
        } else {
            let dir = SocketDir::new()?;
            let path = dir.path().join(format!("{transport}.sock"));
            (SockAddr::unix(&path)?, Some(dir))
        };
        let listener = Socket::new(bind_to.domain(), Endpoint::socket_type(transport), None)?;
        if plan.tfo && is_tcp(transport) {
            fast_open_listener(&listener)?;
        }
        listener.bind(&bind_to)?;
        listener.listen(BACKLOG)?;
        // accept() wakes up to look at the stop flag.
        listener.set_read_timeout(Some(STOP_CHECK))?;
        let addr = match listener.local_addr()?.as_socket() {
            Some(ip) => SocketAddrOrPath::Inet(ip),
            None => {
                let shown = dir
                    .as_ref()
                    .map(|d| {
                        d.path()
                            .join(format!("{transport}.sock"))
                            .display()
                            .to_string()
                    })
                    .unwrap_or_default();
                SocketAddrOrPath::Path(bind_to, shown)
            }
        };
        let stop = Arc::new(AtomicBool::new(false));
        let serving = Serving {
            framed_len: PREFIX + HEADER_LEN + plan.size,
            timeout: plan.timeout,
            stop: Arc::clone(&stop),
            tls,
        };
        let thread = thread::Builder::new()
            .name(format!("msg-bench-{transport}-connect"))
            .spawn(move || {
                pin_current(core, "listener");
                serving.serve(&listener);
            })
            .map_err(|source| Error::Thread {
                what: "a listener's thread",
                source,
            })?;
        Ok(Self {
            transport,
            addr,
            stop,
            thread: Some(thread),
            _dir: dir,
        })
    }

    /// Where clients connect.
    pub(crate) fn endpoint(&self) -> Result<Endpoint, Error> {
        let (addr, shown) = match &self.addr {
            SocketAddrOrPath::Inet(ip) => (SockAddr::from(*ip), ip.to_string()),
            SocketAddrOrPath::Path(addr, shown) => (addr.clone(), shown.clone()),
        };
        Ok(Endpoint {
            transport: self.transport,
            addr,
            shown: format!("{} {shown}", self.transport),
        })
    }
}

impl Drop for StreamServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The listener thread's loop.
#[derive(Debug)]
struct Serving {
    /// A framed ping's length: the benchmark sends nothing else.
    framed_len: usize,
    timeout: Duration,
    stop: Arc<AtomicBool>,
    /// Over TLS: the listener's rustls configuration.
    tls: Option<Arc<rustls::ServerConfig>>,
}

impl Serving {
    fn serve(&self, listener: &Socket) {
        let mut buf = vec![0; self.framed_len];
        while !self.stop.load(Ordering::Relaxed) {
            let conn = match listener.accept() {
                Ok((conn, _)) => conn,
                Err(err) if timed_out(&err) || err.kind() == io::ErrorKind::Interrupted => {
                    continue;
                }
                Err(err) => {
                    warn!("built-in connect listener: cannot accept: {err}");
                    thread::sleep(STOP_CHECK);
                    continue;
                }
            };
            if let Err(err) = self.answer(&conn, &mut buf) {
                debug!("built-in connect listener: dropped a connection: {err}");
            }
        }
    }

    /// Over TLS, makes the handshake; reads one framed ping, answers it
    /// with a pong, and waits for the client to close first (a FIN's end
    /// of file, a RST, or TLS's close_notify), so that the TIME_WAIT, if
    /// any, is the client's, as in netperf's `TCP_CRR`.
    fn answer(&self, conn: &Socket, buf: &mut [u8]) -> io::Result<()> {
        conn.set_read_timeout(Some(self.timeout))?;
        conn.set_write_timeout(Some(self.timeout))?;
        let mut plain = conn;
        match &self.tls {
            Some(config) => {
                let mut session = tls::accept(config, conn)?;
                answer_on(&mut rustls::Stream::new(&mut session, &mut plain), buf)
            }
            None => answer_on(&mut plain, buf),
        }
    }
}

/// One connection's ping answered over `io`, then its close awaited:
/// bounded by the timeout of each read and by how much a client may send
/// after its ping.
fn answer_on(io: &mut (impl Read + Write), buf: &mut [u8]) -> io::Result<()> {
    io.read_exact(buf)?;
    pong(&mut buf[PREFIX..])?;
    io.write_all(buf)?;
    let mut rest = [0; 64];
    for _ in 0..64 {
        match io.read(&mut rest) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
    }
    Ok(())
}

/// Turns the ping in `message` (its header and body, the benchmark's own
/// size) into its pong in place: the same sequence number, timestamp and
/// body.
pub(super) fn pong(message: &mut [u8]) -> io::Result<()> {
    let ping =
        decode_header(message).map_err(|err| io::Error::new(io::ErrorKind::InvalidData, err))?;
    if ping.kind != Kind::Ping || HEADER_LEN + ping.body_len as usize != message.len() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "expected a {}-byte ping, got {:?}",
                message.len(),
                ping.kind
            ),
        ));
    }
    let pong = Header {
        kind: Kind::Pong,
        ..ping
    };
    message[..HEADER_LEN].copy_from_slice(&encode_header(&pong));
    Ok(())
}
