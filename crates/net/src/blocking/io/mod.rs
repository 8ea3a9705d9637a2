//! The system calls, and the buffers around them, of the blocking engine's
//! stream side: a byte stream (TCP, or any [`Stream`]) with msg-tcp's
//! [`Codec`] on it, the std twin of `msg_tcp::Connection<S>` (its writes
//! in `write.rs`). Datagrams go through msg-udp's runtime-free
//! [`sync`](msg_udp::sync), whose way of waiting ([`Wait`]: sleep in the
//! kernel, or spin with `MSG_DONTWAIT`) the stream shares.

use std::io;
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::{Buf, BytesMut};
use msg_proto::Message;
use msg_proto::auth::{Role, SessionKeys};
use msg_tcp::Codec;

use super::stream::Stream;
use tokio_util::codec::{Decoder, Encoder};

pub(crate) use msg_udp::sync::{Got, Wait, recv_datagram, timed_out};
use msg_udp::sync::{recv_into, waiting};

mod write;

pub(crate) use write::until;
use write::write_all;

/// How much room a read gets when the buffer is full: tokio-util's
/// `Framed` starts with the same 8 KiB.
const READ_ROOM: usize = 8 * 1024;

/// What [`Framed::read_message`] got.
#[derive(Debug)]
pub(crate) enum Read {
    /// A whole message.
    Message(Message),
    /// The peer closed the connection between frames.
    Closed,
    /// Nothing whole within the wait.
    Nothing,
}

/// What [`Framed::read_or_answer`] answers with: a rewrite of a whole
/// message, in place, into its answer (true if it made one), and the
/// write's `go_on`.
pub(crate) type Answering<'a> = (&'a dyn Fn(&mut [u8]) -> bool, &'a dyn Fn(Duration) -> bool);

/// What [`Framed::read_or_answer`] does with a whole frame before decoding
/// it, when it can: the two ends of a ping-pong, each of which handles
/// nearly every frame from its bytes alone.
pub(crate) enum Shortcut<'a> {
    /// A listener's: rewrite the message in place into its answer and
    /// write that back ([`crate::ping::pong_in_place`]).
    Answer(Answering<'a>),
    /// A client's: look at the message's bytes and take them (true: they
    /// are consumed, nothing is decoded), or leave them to be decoded
    /// (false).
    Take(Take<'a>),
}

/// What looks at a message's bytes and takes them (true), or leaves them
/// to be decoded: a ping-pong client's pongs ([`Shortcut::Take`]).
pub(crate) type Take<'a> = &'a mut dyn FnMut(&[u8]) -> bool;

/// A byte stream with msg-tcp's [`Codec`] and two reused buffers: the same
/// frames as `msg_tcp::Connection`, written and read with plain system
/// calls.
#[derive(Debug)]
pub(crate) struct Framed<S = TcpStream> {
    stream: S,
    codec: Codec,
    read_buf: BytesMut,
    /// The largest frame read so far, prefix included, up to [`READ_ROOM`]:
    /// the room [`Self::make_room`] keeps for the next.
    largest: usize,
    /// The room the read buffer is given when it has none: [`READ_ROOM`],
    /// or what the stream needs to read a packet whole
    /// ([`Stream::whole_read`]).
    room: usize,
    write_buf: BytesMut,
}

impl<S: Stream> Framed<S> {
    pub(crate) fn new(stream: S, max_frame: usize) -> Self {
        let room = READ_ROOM.max(stream.whole_read());
        Self {
            stream,
            codec: Codec::new(max_frame),
            read_buf: BytesMut::with_capacity(room),
            largest: 0,
            room,
            write_buf: BytesMut::new(),
        }
    }

    /// The stream underneath.
    pub(crate) fn get_ref(&self) -> &S {
        &self.stream
    }

    /// Bytes received that no message has been read from yet.
    pub(crate) fn buffered(&self) -> usize {
        self.read_buf.len()
    }

    /// The largest frame it reads or writes, prefix excluded.
    pub(crate) fn max_frame(&self) -> usize {
        self.codec.max_frame()
    }

    /// From now on, refuses frames over `max_frame` bytes, both ways.
    pub(crate) fn set_max_frame(&mut self, max_frame: usize) {
        self.codec.set_max_frame(max_frame);
    }

    /// From now on, tags every frame written and verifies every frame read
    /// with `keys`, as `msg_tcp::Connection::authenticate` does.
    pub(crate) fn authenticate(&mut self, keys: &SessionKeys, us: Role) {
        self.codec.set_sealer(keys.sealer(us));
        self.codec.set_opener(keys.opener(us));
    }

    /// Bounds the next sleeping read by `deadline`, and by `tick` (the
    /// stream's usual timeout, which the caller restores after): `false`
    /// once `deadline` has passed.
    ///
    /// # Errors
    ///
    /// The socket's, rarely.
    pub(crate) fn read_by(&self, deadline: Instant, tick: Duration) -> io::Result<bool> {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(false);
        }
        self.stream.set_read_timeout(Some(left.min(tick)))?;
        Ok(true)
    }

    /// Sets the stream's read timeout back to `tick`.
    ///
    /// # Errors
    ///
    /// The socket's, rarely.
    pub(crate) fn restore_read_timeout(&self, tick: Duration) -> io::Result<()> {
        self.stream.set_read_timeout(Some(tick))
    }

    /// Reads and drops up to `up_to` bytes, the buffered ones first, into
    /// one fixed buffer, until `deadline` (each read bounded by `tick` as
    /// in [`Self::read_by`]): `msg_tcp::Connection::discard`'s twin, for a
    /// peer being refused in the middle of a frame the codec would not
    /// take, which ends early when `stop` is set (the listener stopping
    /// must not wait out the deadline). The stream's framing is lost after
    /// this.
    pub(crate) fn discard(
        &mut self,
        up_to: usize,
        deadline: Instant,
        tick: Duration,
        stop: &AtomicBool,
    ) -> usize {
        let buffered = self.read_buf.len().min(up_to);
        self.read_buf.advance(buffered);
        let mut discarded = buffered;
        let mut scratch = [0; 8 * 1024];
        // Each pass reads at least a byte, or ends, or waits at most
        // `tick` towards the deadline: bounded either way.
        while discarded < up_to
            && !stop.load(Ordering::Relaxed)
            && matches!(self.read_by(deadline, tick), Ok(true))
        {
            let want = (up_to - discarded).min(scratch.len());
            match self.stream.read(&mut scratch[..want]) {
                Ok(0) => break,
                Ok(n) => discarded += n,
                Err(err) if timed_out(&err) || err.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        discarded
    }

    /// The next message, the end of the stream, or nothing within `wait`.
    ///
    /// # Errors
    ///
    /// The codec's (a frame over the maximum, a bad message, the stream
    /// closed mid-frame) or the socket's.
    pub(crate) fn read_message(&mut self, wait: Wait) -> Result<Read, msg_tcp::Error> {
        // Without `answer`, every return is a `Some`.
        self.read_or_answer(wait, None)
            .map(|read| read.unwrap_or(Read::Nothing))
    }

    /// As [`Framed::read_message`], but a whole frame that `shortcut`
    /// handles from its bytes is not decoded, and `None` returned: a
    /// listener's pings, rewritten in place into their pongs and written
    /// back as they stand ([`Shortcut::Answer`]; `go_on` as for
    /// [`Framed::write_message`]), or a client's pongs, read where they
    /// lie ([`Shortcut::Take`]).
    ///
    /// # Errors
    ///
    /// As [`Framed::read_message`]'s, and the write's.
    pub(crate) fn read_or_answer(
        &mut self,
        wait: Wait,
        mut shortcut: Option<Shortcut<'_>>,
    ) -> Result<Option<Read>, msg_tcp::Error> {
        loop {
            if let (Some(shortcut), Some(len)) =
                (&mut shortcut, self.codec.plain_frame(&self.read_buf))
            {
                let end = msg_tcp::LENGTH_PREFIX_LEN + len;
                let message = &mut self.read_buf[msg_tcp::LENGTH_PREFIX_LEN..end];
                let handled = match shortcut {
                    Shortcut::Answer((answer, go_on)) => {
                        let answered = answer(message);
                        if answered {
                            let mut frame = [io::IoSlice::new(&self.read_buf[..end])];
                            write_all(&mut self.stream, &mut frame, *go_on)?;
                        }
                        answered
                    }
                    Shortcut::Take(take) => take(message),
                };
                if handled {
                    // All of it handled (a ping-pong's every frame): the
                    // next receive lands where this one did, in lines
                    // still in the cache, as the floor's does.
                    if end == self.read_buf.len() {
                        self.read_buf.clear();
                    } else {
                        self.read_buf.advance(end);
                    }
                    self.largest = self.largest.max(end.min(READ_ROOM));
                    return Ok(None);
                }
            }
            let before = self.read_buf.len();
            // Not even a length prefix: straight to the socket (the codec
            // would say so too, a call later; a ping-pong's every read
            // starts here). The codec's read room is 0 here, so it would
            // reserve nothing either.
            let decoded = if before < msg_tcp::LENGTH_PREFIX_LEN {
                None
            } else {
                self.codec.decode(&mut self.read_buf)?
            };
            if let Some(msg) = decoded {
                let frame = before - self.read_buf.len();
                self.largest = self.largest.max(frame.min(READ_ROOM));
                return Ok(Some(Read::Message(msg)));
            }
            self.make_room();
            let (stream, buf) = (&mut self.stream, &mut self.read_buf);
            let got = waiting(wait, |flags| {
                recv_into(buf, |spare| stream.recv(spare, flags).map(|n| (n, ())))
            })?;
            match got {
                Got::Nothing => return Ok(Some(Read::Nothing)),
                Got::Data((0, ())) => {
                    return Ok(Some(match self.codec.decode_eof(&mut self.read_buf)? {
                        Some(msg) => Read::Message(msg),
                        None => Read::Closed,
                    }));
                }
                Got::Data(_) => {}
            }
        }
    }

    /// Gives the next receive room for a frame as large as the largest one
    /// read so far, when that room is free.
    ///
    /// Each message read splits its frame off the front of the buffer, so
    /// the room behind it shrinks by a frame per message. Refilled only once
    /// full, a window of 8 KiB had less than a 1 KiB frame's room left every
    /// eighth message, and that frame then took two receives and a copy of
    /// its first part (2.29 `recvfrom` per round trip instead of 2). Now,
    /// when the room left is less than the largest frame yet, the buffer is
    /// reclaimed first: once the messages read from it are dropped (a
    /// ping-pong drops each before the next receive) and nothing is
    /// buffered, that moves no byte and allocates nothing. Checking only
    /// then, not before every receive, keeps the cost (about 70
    /// instructions) to once per window. While a message still holds the
    /// buffer, it is reserved anew only when full, as before: a reader that
    /// keeps its messages allocates once per window, not per message.
    fn make_room(&mut self) {
        let buf = &mut self.read_buf;
        let room = buf.capacity() - buf.len();
        if room >= self.largest.max(1) || buf.try_reclaim(self.room) {
            return;
        }
        if room == 0 {
            buf.reserve(self.room);
        }
    }

    /// Frames `msg` into the reused write buffer and writes it whole. A
    /// send timeout (`SO_SNDTIMEO`) ends the write unless `go_on` says to
    /// keep trying.
    ///
    /// # Errors
    ///
    /// [`msg_tcp::Error::TooLarge`] before anything is written,
    /// [`msg_tcp::Error::WriteStalled`] once `go_on` says no, or the
    /// socket's.
    pub(crate) fn write_message(
        &mut self,
        msg: &Message,
        go_on: &dyn Fn(Duration) -> bool,
    ) -> Result<(), msg_tcp::Error> {
        // A large body goes out from its own buffer, behind its prefix and
        // header, in one `writev`: copying 64 KiB into the write buffer
        // costs about what sending it does. A small one is copied: one
        // contiguous `send` is cheaper than a two-part `writev` (measured
        // at 1 KiB in BENCHMARKS.md).
        if msg.body.len() >= msg_tcp::DIRECT_WRITE {
            if let Some(head) = self.codec.encode_head(msg)? {
                let mut parts = [io::IoSlice::new(&head), io::IoSlice::new(&msg.body)];
                return write_all(&mut self.stream, &mut parts, go_on);
            }
        }
        self.write_buf.clear();
        self.codec.encode(msg, &mut self.write_buf)?;
        write_all(
            &mut self.stream,
            &mut [io::IoSlice::new(&self.write_buf)],
            go_on,
        )
    }
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::net::UnixStream;

    use msg_proto::Kind;
    use msg_proto::auth::{ClientHandshake, Secret, ServerHandshake};

    use super::*;

    /// Two framed ends of a Unix stream pair, each read waiting at most 5 s.
    fn pair() -> (Framed<UnixStream>, Framed<UnixStream>) {
        let (a, b) = UnixStream::pair().unwrap();
        for end in [&a, &b] {
            end.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        }
        (Framed::new(a, 4096), Framed::new(b, 4096))
    }

    /// A listener's pings are answered undecoded, and whatever else is
    /// buffered behind them is read as before.
    #[test]
    fn plain_pings_are_answered_where_they_lie_and_the_rest_is_read() {
        let (mut client, mut server) = pair();
        let never = |_| false;
        let pings = [
            Message::new(Kind::Ping, 1, "one").with_timestamp(11),
            Message::new(Kind::Ping, 2, vec![b'm'; 1024]).with_timestamp(12),
        ];
        let mut stats = crate::ping::stats_request(3);
        stats.timestamp_ns = 13;
        // Glued, as a stream may deliver them: two plain pings, one that
        // asks for statistics, and data.
        for msg in pings
            .iter()
            .chain([&stats, &Message::new(Kind::Data, 4, "data")])
        {
            client.write_message(msg, &never).unwrap();
        }
        let answer: Answering<'_> = (&crate::ping::pong_in_place, &never);
        for _ in &pings {
            assert!(
                server
                    .read_or_answer(Wait::Sleep, Some(Shortcut::Answer(answer)))
                    .unwrap()
                    .is_none()
            );
        }
        let Some(Read::Message(got)) = server
            .read_or_answer(Wait::Sleep, Some(Shortcut::Answer(answer)))
            .unwrap()
        else {
            panic!("the statistics ping, decoded")
        };
        assert_eq!(got, stats);
        let Some(Read::Message(got)) = server
            .read_or_answer(Wait::Sleep, Some(Shortcut::Answer(answer)))
            .unwrap()
        else {
            panic!("the data, decoded")
        };
        assert_eq!(got.kind, Kind::Data);
        let counter = msg_proto::DiscardCounter::default();
        for ping in &pings {
            let Read::Message(pong) = client.read_message(Wait::Sleep).unwrap() else {
                panic!("a pong")
            };
            assert_eq!(pong, crate::ping::pong(ping, &counter).unwrap());
        }
    }

    /// The framing is the stream's own business: a Unix stream carries the
    /// same frames, tagged once authenticated, sleeping or spinning.
    #[test]
    fn a_unix_stream_is_framed_as_a_tcp_stream_is() {
        let (mut a, mut b) = pair();
        let secret = Secret::new(b"unix".to_vec()).unwrap();
        let (client, challenge) = ClientHandshake::start(&secret, [1; 32]);
        let (response, server) = ServerHandshake::new(&secret, [2; 32])
            .on_challenge(&challenge)
            .unwrap();
        let (proof, client) = client.on_response(&response).unwrap();
        let (verdict, server_keys) = server.on_proof(&proof);
        a.authenticate(&client.on_result(&verdict).unwrap(), Role::Client);
        b.authenticate(&server_keys.unwrap(), Role::Server);
        // Sealed, a frame cannot be sent again with another header.
        let plain = a.frame_plain(&Message::new(Kind::Ping, 1, ""), &mut BytesMut::new());
        assert!(!plain.unwrap());
        let never = |_| false;
        for (wait, seq) in [
            (Wait::Sleep, 1),
            (Wait::Spin(Instant::now() + Duration::from_secs(5)), 2),
        ] {
            let msg = Message::new(Kind::Data, seq, "over unix");
            a.write_message(&msg, &never).unwrap();
            let Read::Message(got) = b.read_message(wait).unwrap() else {
                panic!("a message")
            };
            assert_eq!(got, msg);
        }
        drop(a);
        assert!(matches!(b.read_message(Wait::Sleep).unwrap(), Read::Closed));
    }
}
