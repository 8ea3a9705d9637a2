//! One cycle over a socket of any kind ([`Client`]), and the built-in
//! listener that serves streams one connection after another
//! ([`StreamServer`]).
//!
//! Both sides speak msg's wire format, a `Ping` answered by a `Pong`
//! carrying the same sequence number, timestamp and body, each behind a
//! 4-byte length over a stream (docs/wire.md). Neither allocates per
//! cycle: the request is encoded once, its sequence number rewritten in
//! place, and the reply's header is read where it arrived.

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::sockdir::SocketDir;
use core_affinity::CoreId;
use msg_net::{PeerAddr, SocketType, TcpInfo, Transport};
use msg_proto::{HEADER_LEN, Header, Kind, Message, decode_header, encode_header};
use socket2::{SockAddr, Socket, Type};
use tracing::{debug, warn};

use super::{Close, Cycles, Ports, Run};
use crate::error::Error;
use crate::pin::pin_current;

/// How often the listener looks at its stop flag while no one connects.
const STOP_CHECK: Duration = Duration::from_millis(100);

/// The listen backlog: one client connects at a time, but a RST-closed
/// cycle's next SYN can come before the listener is back in `accept()`.
const BACKLOG: i32 = 128;

/// The queue of TCP Fast Open requests the listener takes before it
/// falls back to the full handshake (the kernel's `TCP_FASTOPEN` value).
#[cfg(target_os = "linux")]
const FAST_OPEN_QUEUE: libc::c_int = 128;

/// The 4-byte length in front of each message on a stream.
const PREFIX: usize = 4;

/// Whether `transport` is TCP: the one with `TCP_INFO` is the one with a
/// handshake to cut (Fast Open) and a TIME_WAIT to skip (RST).
fn is_tcp(transport: Transport) -> bool {
    transport.caps().tcp_info
}

/// Where a cycle connects: a transport's socket address.
#[derive(Debug)]
pub(crate) struct Endpoint {
    transport: Transport,
    addr: SockAddr,
    shown: String,
}

impl Endpoint {
    /// A listener's address as msg-net reports it.
    pub(crate) fn of(transport: Transport, addr: &PeerAddr) -> Result<Self, Error> {
        let sock = match addr {
            PeerAddr::Inet(ip) => SockAddr::from(*ip),
            PeerAddr::Unix(peer) if peer.path.is_some() => {
                peer.path.as_ref().expect("checked").sock_addr()?
            }
            // Unnamed, or a kind of address of a later msg-net.
            _ => {
                return Err(Error::Io(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("the built-in {transport} listener has no address to connect to"),
                )));
            }
        };
        Ok(Self {
            transport,
            addr: sock,
            shown: format!("{transport} {addr}"),
        })
    }

    /// The socket type of `transport`: a datagram, a byte stream, or a
    /// stream that keeps boundaries (seqpacket).
    fn socket_type(transport: Transport) -> Type {
        match (transport.socket_type(), transport.caps().keeps_boundaries) {
            (SocketType::Datagram, _) => Type::DGRAM,
            (SocketType::Stream, true) => Type::SEQPACKET,
            (SocketType::Stream, false) => Type::STREAM,
        }
    }

    fn framed(&self) -> bool {
        self.transport.socket_type() == SocketType::Stream
    }
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.shown)
    }
}

/// The client: a new socket per cycle, the request and reply buffers kept.
#[derive(Debug)]
pub(crate) struct Client {
    pub(crate) endpoint: Endpoint,
    kind: Type,
    timeout: Duration,
    close: Close,
    fast_open: bool,
    /// The framed request, its sequence number rewritten each cycle.
    request: Vec<u8>,
    reply: Vec<u8>,
    seq: u64,
    /// A Unix datagram socket binds an address of its own (Linux's
    /// autobind), or the reply has nowhere to go.
    autobind: bool,
}

impl Client {
    pub(crate) fn new(endpoint: Endpoint, plan: &Cycles) -> Self {
        let transport = endpoint.transport;
        let ping = Message::new(Kind::Ping, 0, vec![b'm'; plan.size]);
        let mut request = Vec::with_capacity(PREFIX + ping.encoded_len());
        if endpoint.framed() {
            let len = u32::try_from(ping.encoded_len()).expect("a size msg bench measures");
            request.extend_from_slice(&len.to_be_bytes());
        }
        msg_proto::encode(&ping, &mut request).expect("a size msg bench measures");
        let reply = vec![0; request.len()];
        Self {
            kind: Endpoint::socket_type(transport),
            timeout: plan.timeout,
            close: plan.close,
            fast_open: plan.tfo && is_tcp(transport),
            request,
            reply,
            seq: 0,
            autobind: !transport.is_inet() && transport.socket_type() == SocketType::Datagram,
            endpoint,
        }
    }

    /// One cycle: socket, connect, request, reply, close; its times go
    /// into `run`.
    pub(crate) fn cycle(&mut self, run: &mut Run) -> Result<(), Error> {
        self.seq += 1;
        let seq = self.seq;
        let start = Instant::now();
        let socket = Socket::new(self.endpoint.addr.domain(), self.kind, None)?;
        // Every wait is bounded; on Linux SO_SNDTIMEO bounds a blocking
        // connect() too.
        socket.set_read_timeout(Some(self.timeout))?;
        socket.set_write_timeout(Some(self.timeout))?;
        if self.autobind {
            socket.bind(&SockAddr::unix("")?)?;
        }
        if self.fast_open {
            fast_open_connect(&socket)?;
        }
        let connecting = Instant::now();
        socket
            .connect(&self.endpoint.addr)
            .map_err(|err| self.connect_error(err))?;
        let connected = Instant::now();
        let at = if self.endpoint.framed() { PREFIX } else { 0 };
        let header = Header {
            seq,
            ..decode_header(&self.request[at..]).expect("encoded above")
        };
        self.request[at..at + HEADER_LEN].copy_from_slice(&encode_header(&header));
        write_all(&socket, &self.request)?;
        let answered = self.read_reply(&socket, at)?;
        let replied = Instant::now();
        if !answered {
            // Over UDP, lost: the cycle's time would be the timeout's.
            run.lost += 1;
            return Ok(());
        }
        if self.fast_open && syn_data(&socket)? {
            run.syn_data += 1;
        }
        if self.close == Close::Rst && is_tcp(self.endpoint.transport) {
            socket.set_linger(Some(Duration::ZERO))?;
        }
        drop(socket);
        let end = Instant::now();
        run.cycles += 1;
        for (histogram, took) in [
            (&mut run.connect, connected - connecting),
            (&mut run.exchange, replied - connected),
            (&mut run.cycle, end - start),
        ] {
            histogram.saturating_record(nanos(took).max(1));
        }
        Ok(())
    }

    /// Reads the `Pong` to this cycle's ping; `false` when, over a
    /// datagram socket, none came in time.
    fn read_reply(&mut self, socket: &Socket, at: usize) -> Result<bool, Error> {
        let need = self.request.len();
        let within = self.timeout;
        let seq = self.seq;
        let mut got = 0;
        while got < need {
            match (&*socket).read(&mut self.reply[got..need]) {
                Ok(0) => return Err(Error::ListenerClosed),
                Ok(n) if !self.endpoint.framed() => {
                    got = n;
                    break;
                }
                Ok(n) => got += n,
                Err(err) if timed_out(&err) && !self.endpoint.framed() => return Ok(false),
                Err(err) if timed_out(&err) => return Err(Error::NoAnswer { seq, within }),
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => return Err(err.into()),
            }
        }
        let header = decode_header(&self.reply[at..got])?;
        if header.kind != Kind::Pong || header.seq != seq || got != need {
            return Err(Error::UnexpectedPong {
                sent: seq + 1,
                kind: header.kind,
                seq: header.seq,
            });
        }
        Ok(true)
    }

    fn connect_error(&self, err: io::Error) -> Error {
        if err.kind() == io::ErrorKind::AddrNotAvailable {
            if let Some(ports) = Ports::read() {
                return Error::PortsExhausted {
                    ports: ports.count(),
                    held: ports.held_for(),
                    tw_reuse: ports.tw_reuse,
                };
            }
        }
        Error::CycleConnect {
            addr: self.endpoint.to_string(),
            source: err,
        }
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

fn timed_out(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// Sends all of `bytes`: one datagram, or as many writes as a stream takes.
fn write_all(socket: &Socket, bytes: &[u8]) -> Result<(), Error> {
    let mut writer = socket;
    writer.write_all(bytes).map_err(Error::from)
}

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

    /// Reads one framed ping, answers it with a pong, and waits for the
    /// client to close first (a FIN's end of file or a RST), so that the
    /// TIME_WAIT, if any, is the client's, as in netperf's `TCP_CRR`.
    fn answer(&self, conn: &Socket, buf: &mut [u8]) -> io::Result<()> {
        conn.set_read_timeout(Some(self.timeout))?;
        conn.set_write_timeout(Some(self.timeout))?;
        let mut reader = conn;
        let mut got = 0;
        while got < buf.len() {
            match reader.read(&mut buf[got..]) {
                Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
                Ok(n) => got += n,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => return Err(err),
            }
        }
        let ping = decode_header(&buf[PREFIX..])
            .map_err(|err| io::Error::new(io::ErrorKind::InvalidData, err))?;
        if ping.kind != Kind::Ping || PREFIX + HEADER_LEN + ping.body_len as usize != buf.len() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("expected a {}-byte ping, got {:?}", buf.len(), ping.kind),
            ));
        }
        let pong = Header {
            kind: Kind::Pong,
            ..ping
        };
        buf[PREFIX..PREFIX + HEADER_LEN].copy_from_slice(&encode_header(&pong));
        let mut writer = conn;
        writer.write_all(buf)?;
        // Until the client closes: bounded by the timeout of each read
        // and by how much a client may send after its ping.
        let mut rest = [0; 64];
        for _ in 0..64 {
            match reader.read(&mut rest) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
        Ok(())
    }
}

/// Checks that TCP Fast Open can be measured: TCP among `transports`, and
/// the kernel's client side on. Returns `net.ipv4.tcp_fastopen`.
pub(crate) fn check_fast_open(transports: &[Transport]) -> Result<u32, Error> {
    if !transports.iter().any(|&t| is_tcp(t)) {
        return Err(Error::FastOpen(
            "TCP Fast Open cuts TCP's handshake, and no TCP is measured".to_owned(),
        ));
    }
    if !cfg!(target_os = "linux") {
        return Err(Error::FastOpen(
            "TCP Fast Open is measured on Linux only".to_owned(),
        ));
    }
    let sysctl = std::fs::read_to_string("/proc/sys/net/ipv4/tcp_fastopen").map_err(|_| {
        Error::FastOpen(
            "this kernel has no TCP Fast Open (no /proc/sys/net/ipv4/tcp_fastopen)".to_owned(),
        )
    })?;
    let value: u32 = sysctl.trim().parse().map_err(|_| {
        Error::FastOpen(format!(
            "cannot read net.ipv4.tcp_fastopen: '{}'",
            sysctl.trim()
        ))
    })?;
    if value & 1 == 0 {
        return Err(Error::FastOpen(format!(
            "net.ipv4.tcp_fastopen is {value}, which leaves the client side off (bit 1); \
             `sysctl -w net.ipv4.tcp_fastopen=3` turns on both sides"
        )));
    }
    Ok(value)
}

/// `TCP_FASTOPEN_CONNECT`: `connect()` returns at once and the SYN leaves
/// with the first write, carrying it once a cookie is cached.
#[cfg(target_os = "linux")]
fn fast_open_connect(socket: &Socket) -> Result<(), Error> {
    set_int(socket, libc::IPPROTO_TCP, libc::TCP_FASTOPEN_CONNECT, 1)
        .map_err(|err| Error::FastOpen(format!("the kernel refused TCP_FASTOPEN_CONNECT: {err}")))
}

/// `TCP_FASTOPEN` on a listener: take data in a SYN.
#[cfg(target_os = "linux")]
fn fast_open_listener(socket: &Socket) -> Result<(), Error> {
    set_int(
        socket,
        libc::IPPROTO_TCP,
        libc::TCP_FASTOPEN,
        FAST_OPEN_QUEUE,
    )
    .map_err(|err| Error::FastOpen(format!("the kernel refused TCP_FASTOPEN: {err}")))
}

#[cfg(target_os = "linux")]
fn set_int(
    socket: &Socket,
    level: libc::c_int,
    name: libc::c_int,
    value: libc::c_int,
) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: a valid descriptor, and a c_int of the length passed.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            level,
            name,
            (&raw const value).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Whether the connection's SYN carried data the listener acknowledged.
fn syn_data(socket: &Socket) -> Result<bool, Error> {
    let info = TcpInfo::of(socket).map_err(|err| Error::TcpInfo(err.into()))?;
    Ok(info.is_some_and(|info| info.syn_data))
}

/// Elsewhere than Linux TCP Fast Open is not measured ([`check_fast_open`]
/// refuses it first).
#[cfg(not(target_os = "linux"))]
fn fast_open_connect(_socket: &Socket) -> Result<(), Error> {
    Err(Error::FastOpen(
        "TCP Fast Open is measured on Linux only".to_owned(),
    ))
}

#[cfg(not(target_os = "linux"))]
fn fast_open_listener(socket: &Socket) -> Result<(), Error> {
    fast_open_connect(socket)
}
