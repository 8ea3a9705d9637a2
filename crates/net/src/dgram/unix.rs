//! The Unix datagram socket as a kind of the datagram family: the tokio
//! socket ([`UnixDgram`]). The blocking engine's is in `unix_std.rs`, and
//! what the two share (a peer's address, receiving whole, answering) in
//! `unix_peer.rs`.

use std::time::Duration;

use super::unix_peer::{
    Senders, UNIX_RECV_LEN, UnixAddr, answer_dropped, max_datagram, recv_whole, send_answer,
    too_large,
};
use super::*;

/// A Unix datagram socket's registration with the runtime: msg-udp's, for
/// readable events alone and writable ones only while a send waits for
/// room. tokio's own `UnixDatagram` registers for both, and on Linux
/// every datagram the peer reads frees this socket's memory and raises a
/// writable edge: a wake-up of the runtime for nothing, one more
/// `epoll_wait` a message (counted with `strace -c` in BENCHMARKS.md).
type Io = msg_udp::Readiness<std::os::unix::net::UnixDatagram>;

/// A Unix datagram socket on the tokio runtime, framed as msg-udp frames
/// UDP: one message per datagram, the same header and tag.
#[derive(Debug)]
pub(crate) struct UnixDgram {
    // First, so that it goes first: the file is removed while the socket
    // is still bound.
    _file: Option<SocketFile>,
    /// Registered for readable events alone (see [`Io`]).
    socket: Io,
    /// The address it is connected to, for a client.
    peer: Option<UnixAddr>,
    recv_buf: BytesMut,
    send_buf: BytesMut,
    framing: Framing<UnixAddr>,
    /// The largest datagram it sends: its send buffer less 32.
    max_payload: usize,
    /// How long a client's send waits for room in the listener's queue.
    send_timeout: Option<Duration>,
    /// A listener's: who sent each datagram, and whom it takes them from.
    senders: Option<Senders>,
}

impl UnixDgram {
    fn new(socket: Socket, file: Option<SocketFile>, peer: Option<UnixAddr>) -> io::Result<Self> {
        socket.set_nonblocking(true)?;
        let max_payload = max_datagram(&socket)?;
        let std: std::os::unix::net::UnixDatagram = std::os::fd::OwnedFd::from(socket).into();
        Ok(Self {
            _file: file,
            socket: Io::new(std)?,
            peer,
            recv_buf: BytesMut::with_capacity(RECV_BUF_LEN),
            send_buf: BytesMut::with_capacity(RECV_BUF_LEN),
            framing: Framing::default(),
            max_payload,
            send_timeout: None,
            senders: None,
        })
    }

    /// Asks the kernel who sends each datagram from now on (the peers'
    /// pid, uid and gid then come with their addresses), and drops those
    /// of users not among `allow_uids` (if it names any) unread.
    ///
    /// # Errors
    ///
    /// The operating system's, setting `SO_PASSCRED`.
    pub(crate) fn ask_senders(&mut self, allow_uids: &[u32]) -> io::Result<()> {
        self.senders = Some(Senders::ask(
            &SockRef::from(self.socket.get_ref()),
            allow_uids,
        )?);
        Ok(())
    }

    /// Binds `path` for a listener, its file made as a Unix stream
    /// listener's is (`mode`, a stale one replaced, a live one refused,
    /// removed when the socket goes).
    ///
    /// # Errors
    ///
    /// [`Error::UnixBind`].
    pub(crate) fn bind(path: &UnixPath, mode: u32) -> Result<Self, Error> {
        let (socket, file) = msg_tcp::unix::bind_socket(path, mode, Type::DGRAM)?;
        Ok(Self::new(socket, file, None)?)
    }

    /// A client's socket, connected to `path`, bound to an abstract name
    /// the kernel picks, so that answers reach it and nothing is left on
    /// disk.
    ///
    /// # Errors
    ///
    /// The operating system's: nobody bound at `path`, say.
    pub(crate) fn connect(path: &UnixPath) -> io::Result<Self> {
        let socket = Socket::new(Domain::UNIX, Type::DGRAM, None)?;
        // An empty address: Linux's autobind.
        socket.bind(&SockAddr::unix("")?)?;
        let peer = path.sock_addr()?;
        socket.connect(&peer)?;
        Self::new(socket, None, Some(UnixAddr::of(peer)))
    }

    /// Another handle on the same socket, with the same keys, for a second
    /// task (a session's other half).
    ///
    /// # Errors
    ///
    /// The operating system's.
    pub(crate) fn try_clone(&self) -> io::Result<Self> {
        let socket = SockRef::from(self.socket.get_ref()).try_clone()?;
        let mut clone = Self::new(socket, None, self.peer.clone())?;
        clone.framing = self.framing.for_clone();
        Ok(clone)
    }

    /// How long a client's send may wait for room in its listener's
    /// queue (`None`: as long as it takes); an answer never waits.
    pub(crate) fn set_send_timeout(&mut self, limit: Option<Duration>) {
        self.send_timeout = limit;
    }

    /// Where it is bound, as a peer's address.
    pub(crate) fn local_addr(&self) -> io::Result<PeerAddr> {
        Ok(UnixAddr::of(SockRef::from(self.socket.get_ref()).local_addr()?).into())
    }

    fn check(&self, len: usize, overhead: Overhead) -> Result<(), msg_udp::Error> {
        if len.saturating_add(overhead.total()) > self.max_payload {
            return Err(msg_udp::Error::UnixTooLarge {
                len,
                max: self.max_payload,
                overhead,
            });
        }
        Ok(())
    }

    fn encode(&mut self, msg: &Message) -> Result<(), Error> {
        self.send_buf.clear();
        let max = self.max_payload;
        let check = |len: usize, overhead: Overhead| {
            if len.saturating_add(overhead.total()) > max {
                return Err(msg_udp::Error::UnixTooLarge { len, max, overhead });
            }
            Ok(())
        };
        Ok(self.framing.encode_within(msg, &mut self.send_buf, check)?)
    }

    /// Sends `msg` to the address it is connected to.
    ///
    /// # Errors
    ///
    /// Too large (nothing sent), or the send failed.
    pub(crate) async fn send(&mut self, msg: &Message) -> Result<(), Error> {
        self.encode(msg)?;
        let wait = self.send_timeout;
        send_bytes(
            &mut self.socket,
            self.peer.as_ref(),
            &self.send_buf,
            None,
            wait,
        )
        .await
    }

    /// Sends `payload` as it is to the address it is connected to.
    ///
    /// # Errors
    ///
    /// Too large (nothing sent), or the send failed.
    pub(crate) async fn send_raw(&mut self, payload: &[u8]) -> Result<(), Error> {
        self.check(payload.len(), Overhead::RAW)?;
        let wait = self.send_timeout;
        send_bytes(&mut self.socket, self.peer.as_ref(), payload, None, wait).await
    }

    /// The next datagram msg takes, as the whole of the receive buffer,
    /// and its sender.
    async fn recv_datagram(&mut self) -> Result<UnixAddr, Error> {
        // As msg-udp's socket: the buffer is reclaimed once the previous
        // datagram is dropped.
        self.recv_buf.clear();
        self.recv_buf.reserve(UNIX_RECV_LEN);
        loop {
            let buf = &mut self.recv_buf;
            let senders = self.senders.as_ref();
            let got = self
                .socket
                .recv_with(|socket| {
                    msg_udp::recv_into(buf, |spare| {
                        recv_whole(&SockRef::from(socket), spare, 0, senders)
                    })
                    .map(|(_, got)| got)
                })
                .await;
            match got {
                // MSG_TRUNC: the datagram's real length, even when it
                // did not fit; one that did not is dropped, never shown
                // cut short.
                Ok((len, from)) if len > UNIX_RECV_LEN => {
                    self.recv_buf.clear();
                    too_large(len, &from);
                }
                Ok((_, from)) if senders.is_some_and(|senders| !senders.admit(&from)) => {
                    self.recv_buf.clear();
                }
                Ok((_, from)) => return Ok(from),
                Err(err) => return Err(Error::UnixRecv(err)),
            }
        }
    }

    /// The next message from the address it is connected to (or anyone).
    ///
    /// # Errors
    ///
    /// A failed receive.
    pub(crate) async fn recv(&mut self) -> Result<Message, Error> {
        Ok(Datagrams::recv_from(self).await?.0)
    }
}

/// Sends `bytes` as one datagram to `to` or, without it, to where
/// `socket` is connected (`peer`, for the error).
///
/// A Unix datagram is never lost on the way: a sender whose receiver's
/// queue is full waits for room instead. So the two directions differ:
/// - an answer (to `to`, a peer a listener names) never waits. A peer that
///   reads none of its answers fills its queue, and waiting for room there
///   would stop the one socket every other peer is served on; the answer
///   is dropped, and the error says why;
/// - a client's send (to where it is connected) waits for the listener to
///   make room, for at most `wait`.
async fn send_bytes(
    socket: &mut Io,
    peer: Option<&UnixAddr>,
    bytes: &[u8],
    to: Option<&UnixAddr>,
    wait: Option<Duration>,
) -> Result<(), Error> {
    let sent = match to {
        // The socket is non-blocking: a full queue is `WouldBlock` at once.
        Some(to) => {
            send_answer(&SockRef::from(socket.get_ref()), bytes, to, 0).map_err(answer_dropped)
        }
        None => {
            let send = socket.send_with(|socket| SockRef::from(socket).send(bytes));
            match wait {
                None => send.await,
                Some(limit) => tokio::time::timeout(limit, send)
                    .await
                    .unwrap_or_else(|_| Err(queue_stayed_full(limit))),
            }
        }
    };
    sent.map(drop).map_err(|source| {
        let addr = to
            .or(peer)
            .map_or_else(|| "unnamed".to_owned(), UnixAddr::to_string);
        Error::UnixSend { addr, source }
    })
}

/// A client's send that found no room within `limit`.
fn queue_stayed_full(limit: Duration) -> io::Error {
    io::Error::new(
        io::ErrorKind::TimedOut,
        format!(
            "its receive queue stayed full for {}: the listener reads nothing",
            humantime::format_duration(limit)
        ),
    )
}

impl Datagrams for UnixDgram {
    type Peer = UnixAddr;

    async fn recv_from(&mut self) -> Result<(Message, UnixAddr), Error> {
        loop {
            let (datagram, peer) = Datagrams::recv_raw_from(self).await?;
            if let Some(msg) = self.framing.decode(datagram, peer.clone()) {
                return Ok((msg, peer));
            }
        }
    }

    async fn send_to(&mut self, msg: &Message, peer: &UnixAddr) -> Result<(), Error> {
        self.encode(msg)?;
        send_bytes(
            &mut self.socket,
            self.peer.as_ref(),
            &self.send_buf,
            Some(peer),
            None,
        )
        .await
    }

    async fn recv_or_answer(&mut self) -> Result<Incoming<UnixAddr>, Error> {
        loop {
            let peer = self.recv_datagram().await?;
            if !self.framing.is_authenticated() && pong_in_place(&mut self.recv_buf) {
                // The pong is the ping's size, which this socket may not
                // send (the listener takes up to UNIX_RECV_LEN): refused
                // as an encoded one would be.
                let sent = match self.check(self.recv_buf.len(), Overhead::RAW) {
                    Ok(()) => {
                        send_bytes(
                            &mut self.socket,
                            self.peer.as_ref(),
                            &self.recv_buf,
                            Some(&peer),
                            None,
                        )
                        .await
                    }
                    Err(err) => Err(err.into()),
                };
                return Ok(Incoming::Answered(peer, sent));
            }
            if let Some(msg) = self
                .framing
                .decode(self.recv_buf.split().freeze(), peer.clone())
            {
                return Ok(Incoming::Message(msg, peer));
            }
        }
    }

    async fn recv_raw_from(&mut self) -> Result<(Bytes, UnixAddr), Error> {
        let peer = self.recv_datagram().await?;
        Ok((self.recv_buf.split().freeze(), peer))
    }

    async fn send_raw_to(&mut self, payload: &[u8], peer: &UnixAddr) -> Result<(), Error> {
        self.check(payload.len(), Overhead::RAW)?;
        send_bytes(
            &mut self.socket,
            self.peer.as_ref(),
            payload,
            Some(peer),
            None,
        )
        .await
    }

    fn authenticate(&mut self, secret: &Secret, us: Role, session_id: [u8; SESSION_ID_LEN]) {
        self.framing.authenticate(secret, us, session_id);
    }

    fn invalid_datagrams(&self) -> u64 {
        self.framing.invalid_datagrams()
    }

    fn auth_rejections(&self) -> AuthRejections {
        self.framing.auth_rejections()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use msg_proto::{DiscardCounter, Kind};

    use super::*;
    use crate::ping;

    /// Every wait here: one machine answers in microseconds.
    const WAIT: Duration = Duration::from_secs(5);

    /// A listener's socket under an abstract name of this test's (no
    /// file), and a client connected to it.
    fn listener_and_client(test: &str) -> (UnixDgram, UnixDgram) {
        let name = format!("msg-test-{test}-{}", std::process::id());
        let path = UnixPath::Abstract(name.into_bytes());
        let server = UnixDgram::bind(&path, 0o600).unwrap();
        (server, UnixDgram::connect(&path).unwrap())
    }

    /// A client's send to a listener that reads nothing waits for room at
    /// most its send timeout, then says why; without one, it would wait
    /// for ever.
    #[tokio::test]
    async fn a_send_to_a_listener_that_reads_nothing_gives_up_at_the_send_timeout() {
        let (_never_reads, mut client) = listener_and_client("full");
        let limit = Duration::from_millis(200);
        client.set_send_timeout(Some(limit));
        let msg = Message::new(Kind::Data, 1, vec![0; 1024]);
        // A queue and a send buffer hold a few hundred of these at most.
        let mut stalled = None;
        for _ in 0..10_000 {
            if let Err(err) = client.send(&msg).await {
                stalled = Some(err);
                break;
            }
        }
        let err = stalled.expect("a send stalled within 10,000 datagrams");
        assert!(
            crate::log::Chain(&err)
                .to_string()
                .ends_with("its receive queue stayed full for 200ms: the listener reads nothing"),
            "{}",
            crate::log::Chain(&err)
        );
    }

    /// A plain ping goes back as `ping::pong` would have encoded its pong,
    /// from the ping's own bytes; a statistics ping, which a counter
    /// answers, arrives decoded for the serve loop.
    #[tokio::test]
    async fn a_plain_ping_is_answered_in_place_and_only_a_plain_one() {
        let (mut server, mut client) = listener_and_client("in-place");

        let plain = Message::new(Kind::Ping, 3, "in place").with_timestamp(77);
        client.send(&plain).await.unwrap();
        let got = tokio::time::timeout(WAIT, server.recv_or_answer());
        let Incoming::Answered(_, sent) = got.await.unwrap().unwrap() else {
            panic!("a plain ping is answered where it lies")
        };
        sent.unwrap();
        let back = tokio::time::timeout(WAIT, Datagrams::recv_raw_from(&mut client));
        let (bytes, _) = back.await.unwrap().unwrap();
        let mut expected = Vec::new();
        let pong = ping::pong(&plain, &DiscardCounter::default()).unwrap();
        msg_proto::encode(&pong, &mut expected).unwrap();
        assert_eq!(&bytes[..], &expected[..]);

        let stats = ping::stats_request(4);
        client.send(&stats).await.unwrap();
        let got = tokio::time::timeout(WAIT, server.recv_or_answer());
        let Incoming::Message(msg, _) = got.await.unwrap().unwrap() else {
            panic!("a statistics ping goes to the serve loop")
        };
        assert_eq!(msg, stats);
    }

    /// Asked, the kernel says who sent each datagram; a user not allowed
    /// has its datagrams dropped unread, and the next one is taken.
    #[tokio::test]
    async fn a_listener_that_asks_knows_each_sender_and_drops_the_refused() {
        let (mut server, mut client) = listener_and_client("senders");
        // SAFETY: geteuid has no preconditions.
        let me = unsafe { libc::geteuid() };
        server.ask_senders(&[]).unwrap();
        client.send_raw(b"first").await.unwrap();
        let got = tokio::time::timeout(WAIT, Datagrams::recv_raw_from(&mut server));
        let (bytes, peer) = got.await.unwrap().unwrap();
        assert_eq!(&bytes[..], b"first");
        let cred = peer.1.expect("the sender's credentials");
        assert_eq!(cred.uid, me);
        assert_eq!(cred.pid, Some(std::process::id() as i32));

        server.ask_senders(&[me.wrapping_add(1)]).unwrap();
        client.send_raw(b"refused").await.unwrap();
        let got = tokio::time::timeout(Duration::from_millis(200), server.recv_raw_from());
        assert!(got.await.is_err(), "a refused user's datagram was taken");
    }

    /// With a secret a tag covers each header, so a plain ping is not
    /// rewritten where it lies: it arrives checked and decoded, for the
    /// serve loop to answer with a tagged pong.
    #[tokio::test]
    async fn an_authenticated_socket_decodes_every_ping() {
        let (mut server, mut client) = listener_and_client("tagged");
        let secret = Secret::new(b"unix datagrams".to_vec()).unwrap();
        Datagrams::authenticate(&mut server, &secret, Role::Server, [1; SESSION_ID_LEN]);
        Datagrams::authenticate(&mut client, &secret, Role::Client, [2; SESSION_ID_LEN]);

        let plain = Message::new(Kind::Ping, 5, "tagged");
        client.send(&plain).await.unwrap();
        let got = tokio::time::timeout(WAIT, server.recv_or_answer());
        let Incoming::Message(msg, _) = got.await.unwrap().unwrap() else {
            panic!("a tagged ping is decoded, not answered in place")
        };
        assert_eq!(msg, plain);
        assert_eq!(server.auth_rejections().total(), 0);
    }
}
