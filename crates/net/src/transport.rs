//! Which transport, and addresses.

use std::fmt;
use std::net::SocketAddr;

use crate::addr::{AddrError, parse_host_port, resolve, resolve_all, unix_addr};
use crate::{Error, PeerAddr};

/// UDP datagrams or a TCP stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// One message per datagram.
    Udp,
    /// A stream, each message behind a 4-byte length.
    Tcp,
    /// A Unix stream socket (`AF_UNIX`, `SOCK_STREAM`): framed as TCP is,
    /// between processes on one machine, at a path.
    Unix,
    /// A Unix sequenced-packet socket (`AF_UNIX`, `SOCK_SEQPACKET`): a
    /// connection that keeps each send's boundary, at a path.
    Seqpacket,
    /// A Unix datagram socket (`AF_UNIX`, `SOCK_DGRAM`): one message per
    /// datagram, as UDP, that a full receiver never loses, at a path.
    UnixDgram,
    /// TCP with TLS over it, as a benchmark names it (`--transports
    /// tls`): framed as TCP is, inside a TLS session. Elsewhere TLS is a
    /// layer (`--tls`) over any stream transport; this names the one
    /// combination measured beside plain TCP. Connecting or serving it
    /// needs TLS's settings ([`ConnectOptions::tls`](crate::ConnectOptions::tls),
    /// [`ServeConfig::tls`](crate::ServeConfig::tls)).
    Tls,
    /// QUIC (`--quic`): a connection over UDP, always inside TLS 1.3,
    /// whose one bidirectional stream is framed as TCP is. Connecting or
    /// serving it needs TLS's settings, as [`Transport::Tls`] does.
    Quic,
    /// QUIC datagrams (`--quic-datagrams`, RFC 9221): one message per
    /// DATAGRAM frame of a QUIC connection, framed as a UDP datagram;
    /// unreliable and unordered as UDP, encrypted as QUIC, and no larger
    /// than one QUIC packet on the path. Needs TLS's settings, as
    /// [`Transport::Quic`] does.
    QuicDgram,
}

impl Transport {
    /// Every transport, in the order tables list them.
    pub const ALL: [Self; 8] = [
        Self::Udp,
        Self::Tcp,
        Self::Unix,
        Self::UnixDgram,
        Self::Seqpacket,
        Self::Tls,
        Self::Quic,
        Self::QuicDgram,
    ];

    /// The transports over the network, which a benchmark measures unless
    /// told otherwise.
    pub const INET: [Self; 2] = [Self::Udp, Self::Tcp];

    /// The transport a name (as [`Transport::name`] gives it) stands for.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.name() == name)
    }

    /// The name used in logs, tables and JSON.
    pub fn name(self) -> &'static str {
        match self {
            Self::Udp => "udp",
            Self::Tcp => "tcp",
            Self::Unix => "unix",
            Self::Seqpacket => "seqpacket",
            Self::UnixDgram => "unix-dgram",
            Self::Tls => "tls",
            Self::Quic => "quic",
            Self::QuicDgram => "quic-dgram",
        }
    }

    /// How it carries messages: datagrams or a stream.
    ///
    /// This and [`Transport::caps`] are the one place that maps a
    /// transport to what it can do; everything above asks them, never
    /// which transport it is, so that a new transport is one variant here
    /// and its own file below, not a change to every `match`.
    pub fn socket_type(self) -> SocketType {
        match self {
            Self::Udp | Self::UnixDgram | Self::QuicDgram => SocketType::Datagram,
            Self::Tcp | Self::Unix | Self::Seqpacket | Self::Tls | Self::Quic => SocketType::Stream,
        }
    }

    /// Its family and, within it, its kind: what [`Link`](crate::Link),
    /// [`Listener`](crate::Listener) and [`serve`](fn@crate::serve) match on
    /// to connect, bind and serve it, each family written once.
    pub(crate) fn family(self) -> Family {
        match self {
            Self::Udp => Family::Datagram(DatagramKind::Udp),
            Self::UnixDgram => Family::Datagram(DatagramKind::Unix),
            // TLS's session is a layer over the TCP stream (`stream.rs`).
            Self::Tcp | Self::Tls => Family::Stream(StreamKind::Tcp),
            Self::Unix => Family::Stream(StreamKind::Unix),
            Self::Seqpacket => Family::Stream(StreamKind::Seqpacket),
            // A QUIC connection's one stream is a byte stream with an end,
            // all the stream family asks: its serve loop, limits, files and
            // commands are the stream family's, and only connecting and
            // accepting (a handshake that is QUIC's own, then a stream
            // opened inside the connection) are QUIC's (`quic.rs`). A family
            // of its own would be worth it only for what QUIC adds beyond
            // one stream: many streams, and datagrams.
            Self::Quic => Family::Stream(StreamKind::Quic),
            // Datagrams inside a QUIC connection, framed and served as
            // UDP's (`quic_dgram/`).
            Self::QuicDgram => Family::Datagram(DatagramKind::Quic),
        }
    }

    /// `addr` as the IP address and port this transport needs; an address
    /// of another kind is refused here, once, rather than by each caller.
    pub(crate) fn inet(self, addr: &PeerAddr) -> Result<SocketAddr, Error> {
        addr.inet().ok_or_else(|| Error::AddressKind {
            transport: self,
            needs: "an IP address and port",
            addr: addr.clone(),
        })
    }

    /// Where to listen, from the address a user wrote: for an IP
    /// transport, `HOST:PORT` resolved to its first address (a literal
    /// without a lookup). Every transport reads its own kind of address
    /// here, so that a command's code never parses one.
    ///
    /// # Errors
    ///
    /// [`Error::Resolve`] or [`Error::NoAddress`].
    pub async fn listen_addr(self, addr: &str) -> Result<PeerAddr, Error> {
        match self.family() {
            Family::Datagram(DatagramKind::Udp | DatagramKind::Quic)
            | Family::Stream(StreamKind::Tcp | StreamKind::Quic) => {
                Ok(PeerAddr::Inet(resolve(addr).await?))
            }
            Family::Datagram(DatagramKind::Unix)
            | Family::Stream(StreamKind::Unix | StreamKind::Seqpacket) => Ok(unix_addr(addr)?),
        }
    }

    /// Every address to try to reach what a user wrote, in order: for an
    /// IP transport all of `HOST:PORT`'s, in the resolver's order (see
    /// [`resolve_all`]).
    ///
    /// # Errors
    ///
    /// [`Error::Resolve`] or [`Error::NoAddress`].
    pub async fn connect_addrs(self, addr: &str) -> Result<Vec<PeerAddr>, Error> {
        match self.family() {
            Family::Datagram(DatagramKind::Udp | DatagramKind::Quic)
            | Family::Stream(StreamKind::Tcp | StreamKind::Quic) => Ok(resolve_all(addr)
                .await?
                .into_iter()
                .map(PeerAddr::Inet)
                .collect()),
            Family::Datagram(DatagramKind::Unix)
            | Family::Stream(StreamKind::Unix | StreamKind::Seqpacket) => {
                Ok(vec![unix_addr(addr)?])
            }
        }
    }

    /// An address as a user wrote it for this transport, checked before
    /// anything is bound or sent: `HOST:PORT` or `PORT`
    /// ([`parse_host_port`], which gives `PORT` its host), or a Unix
    /// socket's path or `@name`.
    ///
    /// # Errors
    ///
    /// [`AddrError`] naming what is wrong and the limit.
    pub fn parse_addr(self, addr: &str) -> Result<String, AddrError> {
        if self.is_inet() {
            parse_host_port(addr)
        } else {
            msg_tcp::unix::UnixPath::parse(addr)?;
            Ok(addr.to_owned())
        }
    }

    /// Whether its addresses are IP addresses and ports (`HOST:PORT`), not
    /// paths.
    pub fn is_inet(self) -> bool {
        !matches!(
            self.family(),
            Family::Datagram(DatagramKind::Unix)
                | Family::Stream(StreamKind::Unix | StreamKind::Seqpacket)
        )
    }

    /// What msg can do over it.
    pub fn caps(self) -> Caps {
        match self {
            Self::Udp => Caps {
                keeps_boundaries: true,
                reliable: false,
                connections: false,
                kernel_drops: true,
                batches: true,
                tcp_info: false,
                nagle: false,
                encrypted: false,
                one_to_many: true,
            },
            Self::Tcp => Caps {
                keeps_boundaries: false,
                reliable: true,
                connections: true,
                kernel_drops: false,
                batches: false,
                tcp_info: true,
                nagle: true,
                encrypted: false,
                one_to_many: false,
            },
            Self::Unix => Caps {
                keeps_boundaries: false,
                reliable: true,
                connections: true,
                kernel_drops: false,
                batches: false,
                tcp_info: false,
                nagle: false,
                encrypted: false,
                one_to_many: false,
            },
            // One message per datagram, as UDP, but between processes on
            // one host: nothing is lost (a full receiver holds the sender
            // up), and the kernel counts no drops.
            Self::UnixDgram => Caps {
                keeps_boundaries: true,
                reliable: true,
                connections: false,
                kernel_drops: false,
                batches: false,
                tcp_info: false,
                nagle: false,
                encrypted: false,
                one_to_many: false,
            },
            // TCP's, inside a TLS session.
            Self::Tls => Caps {
                encrypted: true,
                ..Self::Tcp.caps()
            },
            // A stream, as TCP's, inside TLS 1.3, over UDP: the kernel sees
            // datagrams (quinn batches them itself, with GSO), no TCP_INFO.
            Self::Quic => Caps {
                tcp_info: false,
                nagle: false,
                ..Self::Tls.caps()
            },
            // UDP's, boundaries kept and nothing resent, inside a QUIC
            // connection: encrypted, congestion-controlled, no drops the
            // kernel counts for us (quinn's own queue drops the oldest).
            Self::QuicDgram => Caps {
                kernel_drops: false,
                one_to_many: false,
                batches: false,
                encrypted: true,
                ..Self::Udp.caps()
            },
            // Each send one packet, whole: raw mode shows one message per
            // read, as over UDP, on a connection that loses nothing.
            Self::Seqpacket => Caps {
                keeps_boundaries: true,
                reliable: true,
                connections: true,
                kernel_drops: false,
                batches: false,
                tcp_info: false,
                nagle: false,
                encrypted: false,
                one_to_many: false,
            },
        }
    }
}

/// The two ways a socket carries messages, which decide how msg frames
/// them and how it serves them: a serve loop, a link and a benchmark are
/// written once per socket type, not once per transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SocketType {
    /// Each send is one datagram, received whole or not at all, never
    /// glued to another (`SOCK_DGRAM`): one message per datagram.
    Datagram,
    /// A byte stream with no boundaries (`SOCK_STREAM`): each message
    /// behind a 4-byte length.
    Stream,
}

/// A transport's family, as msg's code is written: the datagram family
/// (UDP, msg-udp's socket) and the stream family, whose kinds differ only
/// in how they connect and bind (`stream.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Family {
    /// One message per datagram, on a socket of this kind.
    Datagram(DatagramKind),
    /// Framed, over an [`AnyStream`](crate::stream::AnyStream) of this
    /// kind.
    Stream(StreamKind),
}

/// The kinds of datagram socket msg sends over (`dgram/`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DatagramKind {
    /// UDP, msg-udp's socket.
    Udp,
    /// A Unix datagram socket.
    Unix,
    /// QUIC datagrams.
    Quic,
}

/// The kinds of byte stream msg connects over: each is a variant of
/// [`AnyStream`](crate::stream::AnyStream).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StreamKind {
    /// TCP.
    Tcp,
    /// A Unix stream socket.
    Unix,
    /// A Unix sequenced-packet socket.
    Seqpacket,
    /// A QUIC connection's stream.
    Quic,
}

/// What a transport can do, for the code above the transports to ask
/// instead of naming one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Caps {
    /// Each message arrives whole or not at all, never split or glued
    /// (raw mode then shows one message per receive).
    pub keeps_boundaries: bool,
    /// Nothing is lost: every byte (or datagram) arrives, in order, or the
    /// send fails. With connections, what a file or a command's output
    /// needs.
    pub reliable: bool,
    /// Peers connect, one connection each: accepted, counted, limited
    /// (`max_conns`), and authenticated by a handshake.
    pub connections: bool,
    /// The kernel counts what it drops for a full receive buffer, for a
    /// listener's summary.
    pub kernel_drops: bool,
    /// Many messages per system call (`sendmmsg`/`recvmmsg`, GSO/GRO).
    pub batches: bool,
    /// The kernel reports retransmissions and its RTT estimate
    /// ([`TcpInfo`](crate::TcpInfo)).
    pub tcp_info: bool,
    /// Small writes may wait to be coalesced (Nagle's algorithm), which
    /// `TCP_NODELAY` turns off: TCP's alone. A Unix stream hands each
    /// write to the peer at once, and QUIC paces what it sends itself.
    pub nagle: bool,
    /// Always inside TLS: connecting and serving it need TLS's settings.
    pub encrypted: bool,
    /// One datagram reaches many: a multicast group joined, a broadcast
    /// address sent to (msg-udp's `group`).
    pub one_to_many: bool,
}

impl Caps {
    /// Whether files and commands can go over it: they need every byte, in
    /// order, on a connection of their own.
    pub fn carries_files(self) -> bool {
        self.reliable && self.connections
    }
}

/// A transport's name as a user writes it (`udp`, `unix-dgram`), as
/// [`Transport::name`] gives it; anything else names them all.
impl std::str::FromStr for Transport {
    type Err = UnknownTransport;

    fn from_str(name: &str) -> Result<Self, UnknownTransport> {
        Self::from_name(name.trim()).ok_or_else(|| UnknownTransport(name.to_owned()))
    }
}

/// A name that is no transport's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown transport '{0}'; the transports are {names}", names = Transport::ALL.map(Transport::name).join(", "))]
pub struct UnknownTransport(pub String);

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_go_over_a_transport_that_carries_them() {
        assert!(Transport::ALL.contains(&crate::exec::transport()));
        assert!(crate::exec::transport().caps().carries_files());
        assert_eq!(crate::exec::transport(), Transport::Tcp, "no other, so far");
    }
}
