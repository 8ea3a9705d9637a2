//! The blocking link's short ways for a ping-pong client: a ping framed
//! once and sent with only its header rewritten (`Link::prepare`,
//! `Link::send_prepared`) puts the same bytes on the wire as `Link::send`,
//! and a pong taken from its bytes (`Link::recv_or` with
//! `PingClient::on_pong_bytes`) is the round trip `Link::recv` and
//! `PingClient::on_reply` find; whatever is not that pong is decoded as
//! before. Over UDP, TCP and, on Linux, Unix stream and datagram sockets.

use std::io::{Read, Write};
use std::net::{TcpListener, UdpSocket};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use msg_net::blocking::{Link, LinkOptions, Received};
use msg_net::ping::{Ask, Next, PingClient};
use msg_net::{PeerAddr, Transport};
use msg_proto::{Kind, Message};

const WAIT: Duration = Duration::from_secs(5);

/// The listener's end, raw: whole frames or datagrams, as bytes.
trait Peer {
    /// The next frame (length prefix included) or datagram.
    fn recv(&mut self) -> Vec<u8>;
    /// `msg`, framed as this transport frames it.
    fn send(&mut self, msg: &Message);
}

fn encoded(msg: &Message) -> BytesMut {
    let mut out = BytesMut::new();
    msg_proto::encode(msg, &mut out).unwrap();
    out
}

/// A stream's peer: frames behind a 4-byte big-endian length.
struct StreamPeer<S>(S);

impl<S: Read + Write> Peer for StreamPeer<S> {
    fn recv(&mut self) -> Vec<u8> {
        let mut prefix = [0; 4];
        self.0.read_exact(&mut prefix).unwrap();
        let mut frame = vec![0; 4 + u32::from_be_bytes(prefix) as usize];
        frame[..4].copy_from_slice(&prefix);
        self.0.read_exact(&mut frame[4..]).unwrap();
        frame
    }

    fn send(&mut self, msg: &Message) {
        let body = encoded(msg);
        let len = u32::try_from(body.len()).unwrap();
        self.0
            .write_all(&[&len.to_be_bytes()[..], &body].concat())
            .unwrap();
    }
}

/// A UDP peer: one message a datagram, answered where the last came from.
struct UdpPeer {
    socket: UdpSocket,
    from: Option<std::net::SocketAddr>,
}

/// One datagram received with `recv_from`, and its sender.
fn datagram<A>(recv_from: impl FnOnce(&mut [u8]) -> std::io::Result<(usize, A)>) -> (Vec<u8>, A) {
    let mut buf = vec![0; 65_536];
    let (len, from) = recv_from(&mut buf).unwrap();
    buf.truncate(len);
    (buf, from)
}

impl Peer for UdpPeer {
    fn recv(&mut self) -> Vec<u8> {
        let (datagram, from) = datagram(|buf| self.socket.recv_from(buf));
        self.from = Some(from);
        datagram
    }

    fn send(&mut self, msg: &Message) {
        self.socket
            .send_to(&encoded(msg), self.from.unwrap())
            .unwrap();
    }
}

/// The conversation, over `link` to `peer`: the prepared ping against the
/// encoded one, the pong taken from its bytes, then a late pong and an
/// error, which are not taken and come back decoded.
fn converse(transport: Transport, mut link: Link, peer: &mut dyn Peer) {
    let body = Bytes::from_static(b"the same body every time");
    let mut client = PingClient::new(transport, WAIT, body);
    let mut prepared = link
        .prepare(client.ping())
        .unwrap()
        .expect("a link without a secret sends plain messages");
    let at = Instant::now();

    // The same bytes, the short way and the long way.
    let mut long = client.clone();
    let header = client.start_ping(at).unwrap();
    link.send_prepared(&mut prepared, &header).unwrap();
    let short_bytes = peer.recv();
    let Next::Send(ping) = long.start(Ask::Ping(at)) else {
        panic!("a ping to send")
    };
    let ping = ping.clone();
    link.send(&ping).unwrap();
    assert_eq!(short_bytes, peer.recv(), "{transport}");
    let _ = client.on_sent(Instant::now);

    // Its pong, taken from its bytes and timed.
    let pong =
        Message::new(Kind::Pong, ping.seq, ping.body.clone()).with_timestamp(ping.timestamp_ns);
    peer.send(&pong);
    let mut rtt = None;
    let mut take = |message: &[u8]| {
        rtt = client.on_pong_bytes(message, Instant::now());
        rtt.is_some()
    };
    let got = link.recv_or(Instant::now() + WAIT, &mut take).unwrap();
    assert!(got.is_none(), "{transport}: taken, not {got:?}");
    assert!(rtt.is_some(), "{transport}");

    // The next ping: a late pong and an error are left, and decoded.
    let header = client.start_ping(at).unwrap();
    link.send_prepared(&mut prepared, &header).unwrap();
    let _ = peer.recv();
    let _ = client.on_sent(Instant::now);
    let error = Message::new(Kind::Error, 2, "refused");
    for left in [&pong, &error] {
        peer.send(left);
        let mut take = |message: &[u8]| client.on_pong_bytes(message, Instant::now()).is_some();
        let got = link.recv_or(Instant::now() + WAIT, &mut take).unwrap();
        match got {
            Some(Received::Message(msg)) => assert_eq!(&msg, left, "{transport}"),
            other => panic!("{transport}: {left:?} decoded, not {other:?}"),
        }
    }
}

fn options() -> LinkOptions {
    LinkOptions {
        timeout: WAIT,
        ..LinkOptions::default()
    }
}

#[test]
fn over_udp() {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.set_read_timeout(Some(WAIT)).unwrap();
    let addr = socket.local_addr().unwrap();
    let link = Link::connect(Transport::Udp, addr, &options()).unwrap();
    converse(Transport::Udp, link, &mut UdpPeer { socket, from: None });

    // With a secret every datagram is sealed: nothing to prepare.
    let mut link = Link::connect(Transport::Udp, addr, &options()).unwrap();
    let secret = msg_proto::auth::Secret::new(b"a secret".to_vec()).unwrap();
    link.authenticate(&msg_net::Auth::new(secret)).unwrap();
    let ping = Message::new(Kind::Ping, 0, "b");
    assert!(link.prepare(&ping).unwrap().is_none());
}

#[test]
fn over_tcp() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let link = Link::connect(Transport::Tcp, addr, &options()).unwrap();
    let (stream, _) = listener.accept().unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    converse(Transport::Tcp, link, &mut StreamPeer(stream));
}

#[test]
fn a_message_over_the_limit_is_refused_when_prepared() {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = socket.local_addr().unwrap();
    let mut link = Link::connect(Transport::Udp, addr, &options()).unwrap();
    let big = Message::new(Kind::Ping, 0, vec![0; 65_508]);
    let err = link.prepare(&big).unwrap_err().to_string();
    assert!(err.contains("65507"), "{err}");
}

#[cfg(target_os = "linux")]
mod unix {
    use std::os::linux::net::SocketAddrExt;
    use std::os::unix::net::{SocketAddr, UnixDatagram, UnixListener};

    use msg_tcp::unix::{UnixPath, UnixPeer};

    use super::*;

    /// An abstract name of this test's own: no file to make or remove.
    fn name(what: &str) -> (SocketAddr, PeerAddr) {
        let name = format!("msg-tests-prepared-{}-{what}", std::process::id());
        let addr = SocketAddr::from_abstract_name(&name).unwrap();
        let peer = PeerAddr::Unix(UnixPeer {
            path: Some(UnixPath::parse(&format!("@{name}")).unwrap()),
            cred: None,
        });
        (addr, peer)
    }

    struct DgramPeer {
        socket: UnixDatagram,
        from: Option<SocketAddr>,
    }

    impl Peer for DgramPeer {
        fn recv(&mut self) -> Vec<u8> {
            let (datagram, from) = datagram(|buf| self.socket.recv_from(buf));
            self.from = Some(from);
            datagram
        }

        fn send(&mut self, msg: &Message) {
            let to = self.from.as_ref().unwrap();
            self.socket.send_to_addr(&encoded(msg), to).unwrap();
        }
    }

    #[test]
    fn over_a_unix_stream() {
        let (addr, peer) = name("stream");
        let listener = UnixListener::bind_addr(&addr).unwrap();
        let link = Link::connect(Transport::Unix, peer, &options()).unwrap();
        let (stream, _) = listener.accept().unwrap();
        stream.set_read_timeout(Some(WAIT)).unwrap();
        converse(Transport::Unix, link, &mut StreamPeer(stream));
    }

    #[test]
    fn over_a_unix_datagram_socket() {
        let (addr, peer) = name("dgram");
        let socket = UnixDatagram::bind_addr(&addr).unwrap();
        socket.set_read_timeout(Some(WAIT)).unwrap();
        let link = Link::connect(Transport::UnixDgram, peer, &options()).unwrap();
        converse(
            Transport::UnixDgram,
            link,
            &mut DgramPeer { socket, from: None },
        );
    }
}
