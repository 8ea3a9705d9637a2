//! One cycle over a socket of any kind, TLS over TCP included
//! ([`Client`]), and the request and reply every cycle exchanges
//! ([`Exchange`]).
//!
//! Both sides speak msg's wire format, a `Ping` answered by a `Pong`
//! carrying the same sequence number, timestamp and body, each behind a
//! 4-byte length over a stream (docs/wire.md). Without TLS nothing is
//! allocated per cycle: the request is encoded once, its sequence number
//! rewritten in place, and the reply's header is read where it arrived
//! (a TLS session is rustls's, made anew each cycle).

use std::io::{self, Read, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use msg_net::{PeerAddr, SocketType, Transport};
use msg_proto::{HEADER_LEN, Header, Kind, Message, decode_header, encode_header};
use socket2::{SockAddr, Socket, Type};

use super::fast_open::{fast_open_connect, syn_data};
use super::{Close, Cycles, Ports, Run, tls};
use crate::error::{Error, RunError};

/// The 4-byte length in front of each message on a stream.
pub(super) const PREFIX: usize = 4;

/// Whether `transport` is TCP: the one with `TCP_INFO` is the one with a
/// handshake to cut (Fast Open) and a TIME_WAIT to skip (RST).
pub(super) fn is_tcp(transport: Transport) -> bool {
    transport.caps().tcp_info
}

/// Where a cycle connects: a transport's socket address.
#[derive(Debug)]
pub(crate) struct Endpoint {
    pub(super) transport: Transport,
    pub(super) addr: SockAddr,
    pub(super) shown: String,
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
    pub(super) fn socket_type(transport: Transport) -> Type {
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

/// A cycle's request, encoded once with its sequence number rewritten in
/// place each cycle, and the room for its reply.
#[derive(Debug)]
pub(super) struct Exchange {
    request: Vec<u8>,
    reply: Vec<u8>,
    /// Where the header starts: after the 4-byte length over a stream.
    at: usize,
}

impl Exchange {
    /// A `size`-byte ping, behind its length when `framed`.
    pub(super) fn new(size: usize, framed: bool) -> Self {
        let ping = Message::new(Kind::Ping, 0, vec![b'm'; size]);
        let mut request = Vec::with_capacity(PREFIX + ping.encoded_len());
        if framed {
            let len = u32::try_from(ping.encoded_len()).expect("a size msg bench measures");
            request.extend_from_slice(&len.to_be_bytes());
        }
        msg_proto::encode(&ping, &mut request).expect("a size msg bench measures");
        Self {
            reply: vec![0; request.len()],
            at: if framed { PREFIX } else { 0 },
            request,
        }
    }

    /// The request of ping `seq`, and the room for its reply.
    pub(super) fn next(&mut self, seq: u64) -> (&[u8], &mut [u8]) {
        let at = self.at;
        let header = Header {
            seq,
            ..decode_header(&self.request[at..]).expect("encoded above")
        };
        self.request[at..at + HEADER_LEN].copy_from_slice(&encode_header(&header));
        (&self.request, &mut self.reply)
    }

    /// Whether the `got` bytes read into the reply are ping `seq`'s whole
    /// pong.
    pub(super) fn check(&self, seq: u64, got: usize) -> Result<(), Error> {
        let header = decode_header(&self.reply[self.at..got])?;
        if header.kind != Kind::Pong || header.seq != seq || got != self.request.len() {
            return Err(RunError::UnexpectedPong {
                sent: seq + 1,
                kind: header.kind,
                seq: header.seq,
            }
            .into());
        }
        Ok(())
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
    exchange: Exchange,
    seq: u64,
    /// A Unix datagram socket binds an address of its own (Linux's
    /// autobind), or the reply has nowhere to go.
    autobind: bool,
    /// Over TLS: the client's rustls configuration.
    tls: Option<Arc<rustls::ClientConfig>>,
}

impl Client {
    pub(crate) fn new(
        endpoint: Endpoint,
        plan: &Cycles,
        tls: Option<Arc<rustls::ClientConfig>>,
    ) -> Self {
        let transport = endpoint.transport;
        Self {
            kind: Endpoint::socket_type(transport),
            timeout: plan.timeout,
            close: plan.close,
            fast_open: plan.tfo && is_tcp(transport),
            exchange: Exchange::new(plan.size, endpoint.framed()),
            seq: 0,
            autobind: !transport.is_inet() && transport.socket_type() == SocketType::Datagram,
            tls,
            endpoint,
        }
    }

    /// One cycle: socket, connect, the TLS handshake over TLS, request,
    /// reply, close; its times go into `run`.
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
        let mut session =
            match &self.tls {
                Some(config) => Some(tls::connect(config, &socket).map_err(|source| {
                    RunError::CycleHandshake {
                        addr: self.endpoint.to_string(),
                        source,
                    }
                })?),
                None => None,
            };
        let secured = Instant::now();
        let framed = self.endpoint.framed();
        let (request, reply) = self.exchange.next(seq);
        let mut plain = &socket;
        let got = match session.as_mut() {
            Some(session) => {
                let mut stream = rustls::Stream::new(session, &mut plain);
                stream.write_all(request)?;
                read_reply(&mut stream, reply, framed, seq, self.timeout)?
            }
            None => {
                plain.write_all(request)?;
                read_reply(&mut plain, reply, framed, seq, self.timeout)?
            }
        };
        let replied = Instant::now();
        let Some(got) = got else {
            // Over UDP, lost: the cycle's time would be the timeout's.
            run.lost += 1;
            return Ok(());
        };
        self.exchange.check(seq, got)?;
        if self.fast_open && syn_data(&socket)? {
            run.syn_data += 1;
        }
        if let Some(session) = session.as_mut() {
            tls::close(session, &socket);
        }
        if self.close == Close::Rst && is_tcp(self.endpoint.transport) {
            socket.set_linger(Some(Duration::ZERO))?;
        }
        drop(socket);
        let end = Instant::now();
        run.record(
            Some(connected - connecting),
            self.tls.is_some().then(|| secured - connected),
            replied - secured,
            end - start,
        );
        Ok(())
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
        RunError::CycleConnect {
            addr: self.endpoint.to_string(),
            source: err,
        }
        .into()
    }
}

/// Reads the `Pong` to ping `seq` into `reply`: its length, or `None`
/// when, over a datagram socket, none came in time.
fn read_reply(
    reader: &mut impl Read,
    reply: &mut [u8],
    framed: bool,
    seq: u64,
    within: Duration,
) -> Result<Option<usize>, Error> {
    let need = reply.len();
    let mut got = 0;
    while got < need {
        match reader.read(&mut reply[got..need]) {
            Ok(0) => return Err(RunError::ListenerClosed.into()),
            Ok(n) if !framed => return Ok(Some(n)),
            Ok(n) => got += n,
            Err(err) if timed_out(&err) && !framed => return Ok(None),
            Err(err) if timed_out(&err) => return Err(RunError::NoAnswer { seq, within }.into()),
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err.into()),
        }
    }
    Ok(Some(got))
}

pub(super) fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

pub(super) fn timed_out(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}
