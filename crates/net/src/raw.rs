//! Raw mode, both ends: no header and no framing, the bytes alone, so that
//! msg talks to netcat and socat.
//!
//! Over UDP each datagram is still one message: the kernel keeps the
//! boundaries. Over TCP there are no messages at all, only what each read
//! returns, glued or cut: showing that is the lesson of raw TCP.

use bytes::{Bytes, BytesMut};
use msg_tcp::{PeerAddr, Stream};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use tokio::time::timeout;
use tracing::{debug, warn};

use crate::dgram::{Datagrams, UnixDgram};
use crate::link::ConnectOptions;
use crate::log::{DropWarning, RateLimited, reply_failed};
use crate::respond::Answering;
use crate::stream::AnyStream;
use crate::stream::unix_path;
use crate::transport::DatagramKind;
use crate::transport::Family;
use crate::{Error, Event, Events, Limits, Offer, Reply, Transport};

/// Raw TCP reads at most this much at a time.
const READ_LEN: usize = 64 * 1024;

/// A piece of a raw TCP reply stops growing at about this many bytes, and
/// is shown; the rest follows as further pieces ([`RawLink::reply_more`]).
/// A peer that never goes quiet (chargen, `yes | nc -l`) must not fill
/// memory.
pub const MAX_RAW_REPLY: usize = 1024 * 1024;

/// A raw conversation with one peer: `msg send --raw`.
#[derive(Debug)]
pub struct RawLink {
    inner: Inner,
    /// How long a write to a stream may wait for the peer to take
    /// anything ([`msg_tcp::Options::write_timeout`]).
    write_timeout: Option<Duration>,
    /// The last piece of a stream's reply was cut (at its size or time
    /// cap), not ended by quiet or a close: more of it may follow.
    cut: bool,
}

// The UDP socket is the larger by far, but a raw link is one per process:
// boxing it would buy nothing (and make `Sender`'s variants unequal).
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
enum Inner {
    Datagram(msg_udp::Socket),
    UnixDatagram(UnixDgram),
    Stream(AnyStream),
}

impl RawLink {
    /// Whether it sends datagrams, which may be lost, rather than a
    /// stream's bytes.
    pub fn is_datagram(&self) -> bool {
        matches!(self.inner, Inner::Datagram(_) | Inner::UnixDatagram(_))
    }

    /// Connects to `addr`.
    ///
    /// # Errors
    ///
    /// As [`crate::Link::connect`].
    pub async fn connect(
        transport: Transport,
        addr: impl Into<PeerAddr>,
        options: &ConnectOptions,
    ) -> Result<Self, Error> {
        let addr = addr.into();
        let inner = match transport.family() {
            Family::Datagram(DatagramKind::Udp) => {
                Inner::Datagram(crate::link::udp_socket(transport.inet(&addr)?, options).await?)
            }
            Family::Datagram(DatagramKind::Quic) => {
                return Err(Error::Io(std::io::Error::new(
                    std::io::ErrorKind::Unsupported,
                    crate::quic_dgram::NO_RAW_CLIENT,
                )));
            }
            Family::Datagram(DatagramKind::Unix) => {
                let mut socket = UnixDgram::connect(unix_path(&addr)?).map_err(|source| {
                    msg_tcp::Error::Connect {
                        addr: addr.clone(),
                        source,
                    }
                })?;
                socket.set_send_timeout(options.tcp.write_timeout);
                Inner::UnixDatagram(socket)
            }
            Family::Stream(kind) => {
                let stream = crate::stream::connect(kind, &addr, options).await?;
                stream.apply(&options.tcp)?;
                Inner::Stream(stream)
            }
        };
        Ok(Self {
            inner,
            write_timeout: options.tcp.write_timeout,
            cut: false,
        })
    }

    /// Sends `bytes`: one datagram, or a write to the stream.
    ///
    /// # Errors
    ///
    /// Over UDP a datagram too large (nothing sent) or a failed send; over
    /// TCP a failed write.
    pub async fn send(&mut self, bytes: &[u8]) -> Result<(), Error> {
        match &mut self.inner {
            Inner::Datagram(socket) => {
                let peer = socket.peer().expect("a connected socket has a peer");
                socket.send_raw_to(bytes, peer).await?;
            }
            Inner::UnixDatagram(socket) => socket.send_raw(bytes).await?,
            Inner::Stream(_) if bytes.is_empty() => return Err(Error::EmptyRaw),
            Inner::Stream(stream) => {
                msg_tcp::write_all_within(stream, bytes, self.write_timeout).await?;
            }
        }
        Ok(())
    }

    /// The reply to what was sent since the last call, or `None` when
    /// nothing came within `wait`.
    ///
    /// Over UDP it is the next datagram: the kernel keeps the boundaries,
    /// so one datagram is one answer, as a framed UDP reply is.
    ///
    /// TCP has no replies, only bytes, and no count of them can be right:
    /// an answer may be longer than the question or shorter, and reading
    /// as many bytes as were sent (what an echo server owes) cut a 26-byte
    /// answer to 2 bytes and turned a 1-byte one into a timeout. So a reply
    /// is what arrives until the peer closes or is quiet for `idle` (as
    /// netcat shows bytes until they stop). `wait` bounds the first byte,
    /// and then the piece returned: a reply longer than [`MAX_RAW_REPLY`],
    /// or still arriving `wait` after its first byte, comes in pieces
    /// ([`RawLink::reply_more`]), each shown as it is had. A peer that
    /// trickles a byte every `idle` cannot hold the caller, showing
    /// nothing, for as long as a megabyte takes.
    ///
    /// # Errors
    ///
    /// A failed receive, or a TCP peer that closed without sending
    /// anything.
    pub async fn reply(&mut self, wait: Duration, idle: Duration) -> Result<Option<Bytes>, Error> {
        self.cut = false;
        match &mut self.inner {
            Inner::Datagram(socket) => match timeout(wait, socket.recv_raw_from()).await {
                Ok(received) => Ok(Some(received?.0)),
                Err(_) => Ok(None),
            },
            Inner::UnixDatagram(socket) => match timeout(wait, socket.recv_raw_from()).await {
                Ok(received) => Ok(Some(received?.0)),
                Err(_) => Ok(None),
            },
            Inner::Stream(stream) => {
                let piece = read_piece(stream, wait, wait, idle).await?;
                let Some((bytes, ended)) = piece else {
                    return Ok(None);
                };
                if ended == Ended::Closed && bytes.is_empty() {
                    return Err(Error::Io(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        "the peer closed the connection without replying",
                    )));
                }
                self.cut = ended == Ended::Cut;
                Ok(Some(bytes))
            }
        }
    }

    /// The next piece of a stream's reply that [`RawLink::reply`] (or this)
    /// cut at its size or time cap: what arrives within `idle`, as long as
    /// the peer goes on, up to `wait` and [`MAX_RAW_REPLY`] again. `None`
    /// once the reply has ended (quiet for `idle`, or closed), and always
    /// for a datagram, which is whole.
    ///
    /// # Errors
    ///
    /// A failed receive.
    pub async fn reply_more(
        &mut self,
        wait: Duration,
        idle: Duration,
    ) -> Result<Option<Bytes>, Error> {
        let Inner::Stream(stream) = &mut self.inner else {
            return Ok(None);
        };
        if !std::mem::take(&mut self.cut) {
            return Ok(None);
        }
        match read_piece(stream, idle, wait, idle).await? {
            Some((bytes, ended)) if !bytes.is_empty() => {
                self.cut = ended == Ended::Cut;
                Ok(Some(bytes))
            }
            _ => Ok(None),
        }
    }

    /// Whether it sends to a group or a broadcast address, whose answers
    /// come from many.
    pub fn is_one_to_many(&self) -> bool {
        matches!(&self.inner, Inner::Datagram(socket) if socket.is_one_to_many())
    }

    /// The next datagram and who sent it, for a one-to-many sender; `None`
    /// from a stream, which has one peer and no datagrams.
    ///
    /// # Errors
    ///
    /// A failed receive.
    pub(crate) async fn datagram_from(&mut self) -> Result<Option<(Bytes, PeerAddr)>, Error> {
        match &mut self.inner {
            Inner::Datagram(socket) => {
                let (bytes, from) = socket.recv_raw_from().await?;
                Ok(Some((bytes, from.into())))
            }
            Inner::UnixDatagram(_) | Inner::Stream(_) => Ok(None),
        }
    }

    /// Closes the sending side so the peer sees the end of the stream
    /// after the last byte (UDP has nothing to close), then reads what the
    /// peer still sends, unshown, until it closes too or `wait` ends: a
    /// connection closed with bytes unread is reset, and the reset throws
    /// away what is still on its way.
    ///
    /// # Errors
    ///
    /// A failed shutdown.
    pub async fn finish(self, wait: Duration) -> Result<(), Error> {
        match self.inner {
            Inner::Datagram(_) | Inner::UnixDatagram(_) => Ok(()),
            Inner::Stream(mut stream) => {
                let shut = msg_tcp::write_within(self.write_timeout, stream.shutdown()).await;
                // A TLS peer's fatal alert among what follows our end is
                // its answer to everything sent: a listener that wants a
                // client certificate refuses one only once the handshake
                // is over, and its alert was drained unread, the data
                // lost and the send exited 0 (audit, round nine). Looked
                // for when our end could not be sent, too: the listener
                // had closed after its alert. Any other failure of the
                // drain is none of the send's, a TLS end without
                // close_notify included: what is drained is not kept, and
                // ncat --ssl -l, having taken everything, closes so.
                let plain = !stream.is_encrypted();
                let mut first = [0; ALERT_RECORD + 1];
                match drain_keeping(&mut stream, &mut first, wait).await {
                    Some(Err(err)) if crate::tls::alert_received(&err) => {
                        return Err(Error::Io(err));
                    }
                    // A plain client at a TLS listener: the listener's
                    // answer to bytes that are no TLS is one alert record
                    // and its close, nothing else. The bytes sent went
                    // nowhere; the send exited 0 (audit, round nine).
                    Some(Ok(n @ ALERT_RECORD)) if plain && is_alert_record(&first[..n]) => {
                        return Err(msg_tcp::Error::Tls(msg_tcp::tls::TlsRecord::Alert).into());
                    }
                    // A plain peer that reset the connection had closed
                    // with our bytes unread, or was gone before they came
                    // (a full listener's refusal): they went nowhere, as a
                    // framed send says (audit, round thirteen: exit 0).
                    Some(Err(err)) if plain && crate::error::peer_left(&err) => {
                        return Err(Error::Reset(err));
                    }
                    _ => {}
                }
                shut?;
                // A reset that came after the peer's close, held by the
                // kernel where the read saw only the end.
                match stream.pending_error() {
                    Some(err) if plain => Err(Error::Reset(err)),
                    _ => Ok(()),
                }
            }
        }
    }
}

/// A TLS alert record's length: a 5-byte header (type 21, version, a
/// length of 2) and its level and description.
const ALERT_RECORD: usize = 7;

/// Whether `bytes` are one TLS alert record and nothing else: an alert
/// (content type 21) of a 3.x version, two bytes long, as a TLS listener
/// answers a peer that speaks no TLS.
pub(crate) fn is_alert_record(bytes: &[u8]) -> bool {
    matches!(bytes, [a, b, c, 0, 2, _, _]
        if msg_tcp::tls::looks_like_tls([*a, *b, *c, 0]) == Some(msg_tcp::tls::TlsRecord::Alert))
}

/// The most bytes a closing side reads and drops of what its peer still
/// sends ([`drain`], and a refused file's linger): more than loopback's
/// largest socket buffers (4 MiB to send, 6 MiB to receive, by default)
/// and a chunk hold, which is all a peer can have on its way when it
/// hears the end.
pub(crate) const DRAIN_BYTES: usize = 16 << 20;

/// Reads and drops what the peer still sends after our end, until it
/// closes, `wait` ends, or [`DRAIN_BYTES`]; a failed read ends it too,
/// and is returned (`None` when `wait` ended it) for a caller that tells
/// a failure from another.
///
/// A socket closed with unread bytes in its receive buffer is reset, not
/// closed, and the reset throws away what is still queued to send: `msg
/// send --raw` to a peer that had greeted it (`nc -l` with a banner) lost
/// up to 2 MB of a 10 MB file, exit 0 (audit, round eight). nc reads
/// until the peer's end as well.
pub(crate) async fn drain<R: tokio::io::AsyncRead + Unpin>(
    read: &mut R,
    wait: Duration,
) -> Option<std::io::Result<usize>> {
    drain_keeping(read, &mut [], wait).await
}

/// [`drain`], the first bytes kept in `first` (as many as came, up to its
/// length), for a caller that looks at how the peer answered; the count
/// is of every byte drained, these included. One `wait` for all of it.
async fn drain_keeping<R: tokio::io::AsyncRead + Unpin>(
    read: &mut R,
    first: &mut [u8],
    wait: Duration,
) -> Option<std::io::Result<usize>> {
    use tokio::io::AsyncReadExt;
    let all = async {
        let mut kept = 0;
        while kept < first.len() {
            match read.read(&mut first[kept..]).await? {
                0 => return Ok(kept),
                n => kept += n,
            }
        }
        Ok(kept + msg_tcp::discard(read, DRAIN_BYTES - kept).await?)
    };
    timeout(wait, all).await.ok()
}

/// How a piece of a raw stream reply ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ended {
    /// The peer was quiet for the idle time, or a receive failed after
    /// some bytes: the reply is over, for now.
    Quiet,
    /// The peer closed its side.
    Closed,
    /// At the size or time cap, with the peer still sending.
    Cut,
}

/// Reads one piece of a raw stream reply: `None` when no byte came within
/// `first`; else the bytes until the peer is quiet for `idle` or closes,
/// `cap` has passed since the first byte, or [`MAX_RAW_REPLY`] bytes.
async fn read_piece(
    stream: &mut AnyStream,
    first: Duration,
    cap: Duration,
    idle: Duration,
) -> Result<Option<(Bytes, Ended)>, Error> {
    let mut buf = BytesMut::with_capacity(READ_LEN);
    match timeout(first, stream.read_buf(&mut buf)).await {
        Err(_) => return Ok(None),
        Ok(read) => {
            if read? == 0 {
                return Ok(Some((Bytes::new(), Ended::Closed)));
            }
        }
    }
    let deadline = tokio::time::Instant::now() + cap;
    let ended = loop {
        if buf.len() >= MAX_RAW_REPLY {
            break Ended::Cut;
        }
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        if left.is_zero() {
            break Ended::Cut;
        }
        buf.reserve(READ_LEN);
        // A read cancelled by either timeout takes no bytes (tokio's
        // `read_buf` on a socket is cancel-safe): the next piece has them.
        match timeout(idle.min(left), stream.read_buf(&mut buf)).await {
            Err(_) if idle < left => break Ended::Quiet,
            Err(_) => break Ended::Cut,
            Ok(Ok(0)) => break Ended::Closed,
            Ok(Ok(_)) => {}
            // The bytes read are still the answer; a reset shows again at
            // the next write or read.
            Ok(Err(err)) => {
                debug!("the reply ended in an error: {err}");
                break Ended::Quiet;
            }
        }
    };
    Ok(Some((buf.freeze(), ended)))
}

/// Serves raw datagrams: each is shown, and answered per `reply`.
pub(crate) async fn serve_udp<S: Datagrams>(
    mut socket: S,
    reply: Reply,
    events: Events,
) -> Result<(), Error> {
    let mut dropped = DropWarning::default();
    let reply_failures = RateLimited::default();
    let forged = RateLimited::default();
    let itself = socket.itself();
    loop {
        let (bytes, peer) = socket.recv_raw_from().await?;
        // Raw bytes carry no mark that they answer something (framed
        // replies do, and are never answered): one claiming to come from
        // this socket would come back to be answered again, for ever.
        let mut answer = reply.answer(&bytes);
        if answer.is_some() && itself(&peer) {
            answer = None;
            forged.warn(|suppressed| {
                warn!(%peer, suppressed, "did not answer a datagram that claims to come from this listener itself (forged: its answer would come back to be answered again)");
            });
        }
        if let Some(answer) = answer {
            if let Err(err) = socket.send_raw_to(&answer, &peer).await {
                reply_failed(&reply_failures, &peer, &err);
            }
        }
        // A copy, so the queue holds what arrived and not the socket's
        // whole 64 KiB receive buffer.
        let event = Event::Message {
            peer: peer.into(),
            seq: None,
            body: Bytes::copy_from_slice(&bytes),
        };
        match events.offer(event) {
            Offer::Queued => {}
            Offer::Dropped => dropped.note(&events),
            Offer::Closed => return Ok(()),
        }
    }
}

/// Serves one raw stream connection (TCP, or any byte stream): each read
/// is shown as it came, and answered per `reply`.
pub(crate) async fn serve_stream<S: Stream>(
    mut stream: S,
    peer: PeerAddr,
    reply: Reply,
    options: &msg_tcp::Options,
    limits: &Limits,
    events: Events,
) -> Result<(), Error> {
    stream.apply(options)?;
    let mut buf = BytesMut::with_capacity(READ_LEN);
    let mut answering = Answering::default();
    loop {
        buf.reserve(READ_LEN);
        let read = match limits.idle_timeout {
            Some(idle) => timeout(idle, stream.read_buf(&mut buf))
                .await
                .map_err(|_| Error::Idle { after: idle })?,
            None => stream.read_buf(&mut buf).await,
        };
        let read = match read {
            Ok(read) => read,
            Err(err) if answering.ended(&err) => return Ok(()),
            Err(err) => return Err(err.into()),
        };
        if read == 0 {
            debug!(%peer, "closed");
            // The peer's end answered with ours: over TLS a close_notify,
            // which a peer that checks for a cut session waits for (Python's
            // ssl, s_client said `unexpected eof`; audit, round nine), over
            // a socket the FIN that closing would send.
            let _ = timeout(limits.frame_timeout, stream.shutdown()).await;
            return Ok(());
        }
        // Whatever one read returned, glued or cut: that is the lesson. A
        // copy of what arrived, and the buffer kept for the next read: a
        // part split off would keep the whole 64 KiB allocation alive
        // while it waits in the queue, and a peer sending a byte a read
        // made a listener whose stdout was not read hold 79 MiB for 1 MiB
        // of data (audit, round four).
        let chunk = Bytes::copy_from_slice(&buf);
        buf.clear();
        if let Some(answer) = reply.answer(&chunk).filter(|_| answering.wanted()) {
            // Taken within the frame timeout, as a framed answer must be.
            let written =
                msg_tcp::write_all_within(&mut stream, &answer, Some(limits.frame_timeout)).await;
            answering.written(&peer, written)?;
        }
        let event = Event::Message {
            peer: peer.clone(),
            seq: None,
            body: chunk,
        };
        if !events.deliver(event).await {
            return Ok(());
        }
    }
}
