//! One framed connection, served: the handshake first when the listener
//! has a secret, then each message within the idle and frame limits,
//! dispatched to the feature that owns it (a file, a folder, a command,
//! the reverse stream a ping asks for, or [`respond`]). Apart from
//! `mod.rs`, which accepts and keeps the listener's limits, because this
//! is what happens on one connection once it is let in, whatever its
//! stream.

use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, Instant};

use bytes::Bytes;
use msg_proto::{DiscardCounter, Kind, Message, SendRequest};
use msg_tcp::Connection;
use tokio::io::{AsyncRead, AsyncWrite};
use tracing::debug;

use crate::auth::{self, HAS_NO_SECRET};
use crate::deadlines::{Deadlines, Expired, idle_text};
use crate::exec::Runner;
use crate::file;
use crate::respond::{Answering, Response, respond};
use crate::serve::ServeConfig;
use crate::text::error_message;
use crate::{Error, Event, Events, ping};

/// Serves one framed connection: the handshake first when the listener
/// has a secret (nothing else is read until it completes, within its
/// timeout from `began`, when the connection was accepted or its TLS
/// handshake done: the wait for a turn counts), then every message.
pub(super) async fn serve_connection<S: AsyncRead + AsyncWrite + Unpin>(
    mut conn: Connection<S>,
    config: &ServeConfig,
    (handshakes, began): (&tokio::sync::Semaphore, tokio::time::Instant),
    runner: Option<&Runner>,
    events: Events,
) -> Result<(), Error> {
    // Every answer, verdict and refusal must be taken within the frame
    // timeout, as every frame of the peer's must arrive within it: a peer
    // that sends and never reads is dropped, not waited for.
    conn.set_write_timeout(Some(config.limits.frame_timeout));
    let runner = match &config.auth {
        Some(auth) => {
            // Its turn comes within the handshake timeout, or never: a
            // connection waiting here has read nothing, so it costs a
            // descriptor and no buffer.
            let timeout = auth.handshake_timeout;
            let deadline = began + timeout;
            let Ok(turn) = tokio::time::timeout_at(deadline, handshakes.acquire()).await else {
                let busy = crate::refusal::HANDSHAKES_BUSY.format(config.limits.max_handshakes);
                refuse_busy(&mut conn, &busy).await;
                return Err(Error::Auth(auth::AuthFailure::Timeout(timeout)));
            };
            let turn = turn.expect("the semaphore is never closed");
            let shaken = auth::server(&mut conn, auth, deadline).await;
            drop(turn);
            if let Err(err) = shaken {
                auth::drain_refused(&mut conn, &err, auth).await;
                return Err(err);
            }
            debug!(peer = %conn.peer_addr(), "authenticated");
            runner
        }
        // Never without a secret, whatever the caller passed.
        None => None,
    };
    serve_framed(conn, config, runner, events).await
}

/// Tells a client that waited in vain for a handshake turn why it is
/// closed: the refusal, then its first frame (its challenge, which came
/// before the wait) read and dropped, for at most a second, so that the
/// close is an end the client reads after the refusal, not a reset that
/// overtakes it.
async fn refuse_busy<S: AsyncRead + AsyncWrite + Unpin>(conn: &mut Connection<S>, text: &str) {
    // Read as a handshake is: a peer that has proved nothing gets no more
    // than a handshake frame's room.
    conn.set_max_frame(msg_proto::auth::MAX_HANDSHAKE_FRAME);
    let refuse = async {
        conn.write_message(&error_message(text)).await.ok()?;
        conn.read_message().await.ok()
    };
    let _ = tokio::time::timeout(Duration::from_secs(1), refuse).await;
}

async fn serve_framed<S: AsyncRead + AsyncWrite + Unpin>(
    mut conn: Connection<S>,
    config: &ServeConfig,
    runner: Option<&Runner>,
    events: Events,
) -> Result<(), Error> {
    let peer = conn.peer_addr();
    let reply = config.reply;
    let mut counter = DiscardCounter::default();
    let mut deadlines = Deadlines::new(&config.limits, Instant::now());
    let mut answering = Answering::default();
    loop {
        let msg = match next_message(&mut conn, &mut deadlines).await {
            Ok(Some(msg)) => msg,
            Ok(None) => break,
            Err(Error::Tcp(msg_tcp::Error::FrameTooLarge { len, max })) => {
                refuse_frame(&mut conn, len, max).await;
                return Err(msg_tcp::Error::FrameTooLarge { len, max }.into());
            }
            Err(err) if answering.ended(&err) => break,
            Err(err) => return Err(err),
        };
        if msg.kind == Kind::FileHeader {
            let transfer = config.counters.transfer();
            file::receive(&mut conn, &msg, config.save.as_ref(), &events, transfer).await?;
            continue;
        }
        #[cfg(unix)]
        if msg.kind == Kind::TreeStart {
            let transfer = config.counters.transfer();
            file::tree::receive_tree(&mut conn, &msg, config.save.as_ref(), &events, transfer)
                .await?;
            continue;
        }
        if msg.kind == Kind::Command {
            // One command per connection: it ends with the command.
            return match runner {
                Some(runner) => {
                    let ran = runner.run(&mut conn, &msg).await;
                    if ran.is_ok() {
                        linger(&mut conn).await;
                    }
                    ran
                }
                None => {
                    let reason = crate::refusal::RUNS_NO_COMMANDS;
                    conn.write_message(
                        &msg_proto::exec::Exit::Refused(reason.to_owned()).to_message(),
                    )
                    .await?;
                    Ok(())
                }
            };
        }
        if msg.kind == Kind::AuthChallenge {
            // A client with a secret, and no secret here: tell it, so it
            // does not wait for a handshake that never comes.
            let _ = conn.write_message(&error_message(HAS_NO_SECRET)).await;
            return Err(msg_tcp::Error::Decode(msg_proto::Error::NeedsSecret).into());
        }
        if ping::is_send(&msg) {
            stream_back(&mut conn, &msg, config.auth.is_some()).await?;
            // The stream took its time: the peer was not idle meanwhile.
            deadlines.on_message(Instant::now);
            continue;
        }
        let Response { answer, show } = respond(&msg, reply, &mut counter);
        if let Some(answer) = answer.filter(|_| answering.wanted()) {
            answering.written(&peer, conn.write_message(&answer).await)?;
        }
        if show {
            let event = Event::Message {
                peer: peer.clone(),
                seq: Some(msg.seq),
                body: msg.body,
            };
            // Waits while the queue is full: this peer's sender then waits
            // too, through TCP's flow control.
            if !events.deliver(event).await {
                break; // nobody prints any more (--count reached)
            }
        }
    }
    // The end said as the stream says it: over TLS, `close_notify`.
    let _ = tokio::time::timeout(Duration::from_secs(1), conn.shutdown()).await;
    debug!(%peer, "closed");
    Ok(())
}

/// Tells the peer its frame of `len` bytes is over `max`, and reads and
/// drops the frame, for at most [`REFUSED_FRAME_DRAIN`](crate::serve::REFUSED_FRAME_DRAIN): closed with its
/// bytes unread, the connection would be reset, and the reset can reach
/// the peer before the answer. Costs time, never memory (one fixed
/// buffer).
async fn refuse_frame<S: AsyncRead + AsyncWrite + Unpin>(
    conn: &mut Connection<S>,
    len: usize,
    max: usize,
) {
    let text = crate::refusal::FRAME_TOO_LARGE.format(max);
    let refuse = async {
        conn.write_message(&error_message(&text)).await?;
        // The frame's length prefix is still in the read buffer.
        conn.discard(len.saturating_add(4)).await?;
        conn.shutdown().await
    };
    let _ = tokio::time::timeout(crate::serve::REFUSED_FRAME_DRAIN, refuse).await;
}

/// After a command's exit is sent: our side closed, then what the client
/// still sends (its stdin's end, typed after the command exited) read and
/// dropped until it closes too, for at most a second. Closing with that
/// unread would reset the connection (TCP's RST; a Unix socket's
/// ECONNRESET), and the reset can reach the client before the exit it has
/// not read yet.
async fn linger<S: AsyncRead + AsyncWrite + Unpin>(conn: &mut Connection<S>) {
    let drain = async {
        conn.shutdown().await?;
        while conn.read_message().await?.is_some() {}
        Ok::<_, msg_tcp::Error>(())
    };
    let _ = tokio::time::timeout(Duration::from_secs(1), drain).await;
}

/// The next message within the limits of `deadlines` (the idle and frame
/// timeouts, as the blocking engine keeps them too).
///
/// One timer per read and no extra system call: each wait lasts until the
/// nearer deadline, and what the read buffer holds when it runs out tells
/// which limit applies (nothing: the peer is idle; part of a frame: the
/// frame is slow).
async fn next_message<S: AsyncRead + AsyncWrite + Unpin>(
    conn: &mut Connection<S>,
    deadlines: &mut Deadlines,
) -> Result<Option<Message>, Error> {
    loop {
        let wait = deadlines.next_wait(Instant::now());
        // Reading a frame is cancel-safe: what arrived stays buffered.
        let Ok(result) = tokio::time::timeout(wait, conn.read_message()).await else {
            match deadlines.on_wait_over(Instant::now(), conn.buffered()) {
                Ok(()) => continue,
                Err(Expired::Frame(after)) => return Err(Error::FrameTimeout { after }),
                Err(Expired::Idle(after)) => {
                    let _ = conn.write_message(&error_message(&idle_text(after))).await;
                    return Err(Error::Idle { after });
                }
            }
        };
        let msg = result?;
        if msg.is_some() {
            deadlines.on_message(Instant::now);
        }
        return Ok(msg);
    }
}

/// How long one write of a stream a peer asked for may wait for the peer
/// to take what was written before: a client that stops reading is
/// dropped after this, and never holds its task (or a slot) longer.
const STREAM_STALL: Duration = Duration::from_secs(10);

/// Carries out a ping with [`FLAG_SEND`](msg_proto::FLAG_SEND): `Discard`s
/// of the size asked for, numbered from 1, for the time asked for, then
/// the pong that says how many. Nothing is read meanwhile (the peer sends
/// nothing until that pong); each write waits at most [`STREAM_STALL`]
/// for the peer to read. A request this listener does not carry out is
/// answered with an `Error` saying why, and the connection closes.
async fn stream_back<S: AsyncRead + AsyncWrite + Unpin>(
    conn: &mut Connection<S>,
    ping: &Message,
    authenticated: bool,
) -> Result<(), Error> {
    let max = crate::limits::BodyLimit::msg_framed(conn.max_frame(), authenticated).max;
    let request = match SendRequest::parse(&ping.body, max) {
        Ok(request) => request,
        Err(err) => {
            let refusal = Error::SendRefused(err);
            let _ = stalled(conn.write_message(&error_message(&refusal.to_string()))).await;
            return Err(refusal);
        }
    };
    let body = discard_body(request.size as usize);
    let mut discard = Message::new(Kind::Discard, 0, body);
    // Small messages are queued and go out as the write buffer fills; a
    // large one goes out from its own buffer at once.
    let direct = discard.body.len() >= 16 * 1024;
    let end = Instant::now() + request.duration;
    while Instant::now() < end {
        discard.seq += 1;
        if direct {
            stalled(conn.write_message(&discard)).await?;
        } else {
            stalled(conn.feed(&discard)).await?;
        }
    }
    let pong = ping::streamed_pong(ping, discard.seq);
    stalled(conn.write_message(&pong)).await
}

/// `size` bytes of `m`s for a stream's `Discard`s, from one buffer that
/// every stream under way shares, not one of its own: a 44-byte request
/// may ask for bodies as large as a frame holds (16 MiB by default), and
/// a thousand connections each asking must not cost a thousand such
/// buffers. Buffers are made in powers of two, so that requests of
/// growing sizes make at most one per power (at most twice the largest
/// body in all), and freed when the last stream using one ends.
fn discard_body(size: usize) -> Bytes {
    static LAST: Mutex<Weak<Box<[u8]>>> = Mutex::new(Weak::new());
    shared_body(&LAST, size)
}

/// [`discard_body`] from the buffer `last` keeps, if it lives and is large
/// enough.
fn shared_body(last: &Mutex<Weak<Box<[u8]>>>, size: usize) -> Bytes {
    /// A shared buffer, as the bytes a [`Bytes`] may own.
    struct Shared(Arc<Box<[u8]>>);
    impl AsRef<[u8]> for Shared {
        fn as_ref(&self) -> &[u8] {
            &self.0
        }
    }
    let mut last = last.lock().unwrap_or_else(PoisonError::into_inner);
    let buffer = match last.upgrade() {
        Some(buffer) if buffer.len() >= size => buffer,
        _ => {
            let buffer = Arc::new(vec![b'm'; size.next_power_of_two()].into_boxed_slice());
            *last = Arc::downgrade(&buffer);
            buffer
        }
    };
    Bytes::from_owner(Shared(buffer)).slice(..size)
}

/// `write`, within [`STREAM_STALL`].
async fn stalled(write: impl Future<Output = Result<(), msg_tcp::Error>>) -> Result<(), Error> {
    match tokio::time::timeout(STREAM_STALL, write).await {
        Ok(written) => Ok(written?),
        Err(_) => Err(Error::StreamStalled {
            after: STREAM_STALL,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::auth::Auth;
    use crate::file::SaveConfig;
    use crate::serve::ServeConfig;
    use crate::{Event, Events};
    use msg_tcp::{PeerAddr, Stream};
    use tokio::io::{AsyncRead, AsyncWrite};

    /// tokio's in-memory pipe as a stream with no socket under it, made
    /// up where a connection asks more than bytes of it.
    #[derive(Debug)]
    struct Pipe(tokio::io::DuplexStream);

    impl AsyncRead for Pipe {
        fn poll_read(
            mut self: std::pin::Pin<&mut Self>,
            cx: &mut std::task::Context<'_>,
            buf: &mut tokio::io::ReadBuf<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            std::pin::Pin::new(&mut self.0).poll_read(cx, buf)
        }
    }

    impl AsyncWrite for Pipe {
        fn poll_write(
            mut self: std::pin::Pin<&mut Self>,
            cx: &mut std::task::Context<'_>,
            buf: &[u8],
        ) -> std::task::Poll<std::io::Result<usize>> {
            std::pin::Pin::new(&mut self.0).poll_write(cx, buf)
        }

        fn poll_flush(
            mut self: std::pin::Pin<&mut Self>,
            cx: &mut std::task::Context<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            std::pin::Pin::new(&mut self.0).poll_flush(cx)
        }

        fn poll_shutdown(
            mut self: std::pin::Pin<&mut Self>,
            cx: &mut std::task::Context<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            std::pin::Pin::new(&mut self.0).poll_shutdown(cx)
        }
    }

    impl Stream for Pipe {
        type Reader = tokio::io::ReadHalf<Self>;
        type Writer = tokio::io::WriteHalf<Self>;

        fn apply(&self, _options: &msg_tcp::Options) -> std::io::Result<()> {
            Ok(())
        }

        fn peer_addr(&self) -> std::io::Result<PeerAddr> {
            Ok(std::net::SocketAddr::from(([127, 0, 0, 1], 1)).into())
        }

        fn into_split(self) -> (Self::Reader, Self::Writer) {
            tokio::io::split(self)
        }

        fn input_waiting(&self) -> bool {
            false
        }
    }

    /// Serves `server` as a listener with one handshake turn would, its
    /// handshake timeout from now.
    async fn serve_alone<S: AsyncRead + AsyncWrite + Unpin>(
        server: Connection<S>,
        config: &ServeConfig,
        events: Events,
    ) -> Result<(), Error> {
        let handshakes = tokio::sync::Semaphore::new(1);
        let turns = (&handshakes, tokio::time::Instant::now());
        serve_connection(server, config, turns, None, events).await
    }

    /// A ping with FLAG_SEND: the listener streams numbered discards for
    /// the time asked, then the pong that counts them; the connection
    /// goes on after it. A request it does not carry out is refused.
    #[tokio::test]
    async fn a_stream_back_is_counted_by_both_ends() {
        let (a, b) = tokio::io::duplex(64 * 1024);
        let mut client = Connection::new(Pipe(a), msg_tcp::Options::default()).unwrap();
        let server = Connection::new(Pipe(b), msg_tcp::Options::default()).unwrap();
        let config = ServeConfig::default();
        let (events, _received) = Events::channel();
        let serving = serve_alone(server, &config, events);
        let asking = async {
            let request = SendRequest {
                duration: Duration::from_millis(30),
                size: 100,
            };
            client
                .write_message(&ping::send_request(5, &request))
                .await
                .unwrap();
            let mut received = 0;
            let pong = loop {
                let msg = client.read_message().await.unwrap().unwrap();
                if msg.kind != Kind::Discard {
                    break msg;
                }
                received += 1;
                assert_eq!((msg.seq, msg.body.len()), (received, 100));
            };
            assert_eq!((pong.kind, pong.seq, pong.flags), (Kind::Pong, 5, 2));
            let sent = msg_proto::Streamed::parse(&pong.body).unwrap().sent;
            assert!(received > 0);
            assert_eq!(sent, received);
            // Still served, and a bad request is refused with why.
            let mut endless = ping::send_request(6, &request);
            endless.body = Bytes::copy_from_slice(&[0xff; 16]);
            client.write_message(&endless).await.unwrap();
            let refusal = client.read_message().await.unwrap().unwrap();
            assert_eq!(refusal.kind, Kind::Error);
            assert!(
                refusal.body.starts_with(b"refused a request to stream: "),
                "{refusal:?}"
            );
        };
        let (served, ()) = tokio::join!(serving, asking);
        assert!(matches!(served, Err(Error::SendRefused(_))), "{served:?}");
    }

    /// A client that asks for a stream and reads none of it is dropped
    /// after the stall limit: its task ends, whatever the duration asked.
    #[tokio::test(start_paused = true)]
    async fn a_client_that_stops_reading_is_dropped() {
        let (a, b) = tokio::io::duplex(4096);
        let mut client = Connection::new(Pipe(a), msg_tcp::Options::default()).unwrap();
        let server = Connection::new(Pipe(b), msg_tcp::Options::default()).unwrap();
        let request = SendRequest {
            duration: SendRequest::MAX_DURATION,
            size: 1000,
        };
        client
            .write_message(&ping::send_request(1, &request))
            .await
            .unwrap();
        let config = ServeConfig::default();
        let (events, _received) = Events::channel();
        let served = serve_alone(server, &config, events).await;
        assert!(
            matches!(served, Err(Error::StreamStalled { after }) if after == STREAM_STALL),
            "{served:?}"
        );
        drop(client);
    }

    /// The stream features are the connection's, not TCP's: a handshake
    /// and a file, served as any connection is, over a pipe.
    #[tokio::test]
    async fn a_secret_and_a_file_over_a_stream_that_is_not_tcp() {
        let (a, b) = tokio::io::duplex(64 * 1024);
        let mut client = Connection::new(Pipe(a), msg_tcp::Options::default()).unwrap();
        let server = Connection::new(Pipe(b), msg_tcp::Options::default()).unwrap();
        let auth = Auth::new(msg_proto::auth::Secret::new(b"s3cret".to_vec()).unwrap());
        let (from, to) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let content = vec![7u8; 300_000];
        std::fs::write(from.path().join("f"), &content).unwrap();
        let config = ServeConfig {
            auth: Some(auth.clone()),
            save: Some(SaveConfig::new(
                to.path().to_owned(),
                false,
                false,
                file::PARTIAL_MAX_AGE,
            )),
            ..ServeConfig::default()
        };
        let (events, mut received) = Events::channel();
        let serving = serve_alone(server, &config, events);
        let sending = async {
            auth::client(&mut client, &auth).await.unwrap();
            let path = from.path().join("f");
            let sent = file::send(
                &mut client,
                &path,
                Duration::from_secs(5),
                false,
                &mut |_| {},
            )
            .await;
            drop(client);
            sent.unwrap()
        };
        let (served, sent) = tokio::join!(serving, sending);
        served.unwrap();
        assert_eq!((sent.name.as_str(), sent.size), ("f", 300_000));
        assert_eq!(std::fs::read(to.path().join("f")).unwrap(), content);
        let delivered = received.try_recv().expect("a file event");
        let Event::File { peer, size, .. } = &delivered.event else {
            panic!("a file, not {:?}", delivered.event)
        };
        assert_eq!((peer.to_string().as_str(), *size), ("127.0.0.1:1", 300_000));
    }

    /// Streams under way share one buffer of `m`s, whatever sizes they ask
    /// for up to its own; a larger one gets the next power of two.
    #[test]
    fn streams_share_one_body_buffer() {
        // A cache of its own: the other tests' streams use the listener's.
        let last = Mutex::new(Weak::new());
        let discard_body = |size| shared_body(&last, size);
        let first = discard_body(1000);
        let second = discard_body(600);
        assert_eq!((first.len(), second.len()), (1000, 600));
        assert!(first.iter().chain(&second).all(|&b| b == b'm'));
        assert_eq!(first.as_ptr(), second.as_ptr(), "one buffer for both");
        let larger = discard_body(1025);
        assert_eq!(larger.len(), 1025);
        assert_ne!(larger.as_ptr(), first.as_ptr(), "1,024 bytes hold no 1,025");
        assert_eq!(
            discard_body(2048).as_ptr(),
            larger.as_ptr(),
            "2,048 made for 1,025"
        );
        drop((first, second, larger));
        assert!(
            last.lock().unwrap().upgrade().is_none(),
            "freed with its last stream"
        );
    }
}
