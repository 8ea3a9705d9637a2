//! Length framing, both ends: each message a bare 4-byte big-endian length
//! and its body, no msg header ([`msg_tcp::LengthCodec`]), so that msg
//! talks to the length-prefixed peers anyone writes in five lines of
//! Python, or with tokio-util's `LengthDelimitedCodec`.
//!
//! Between raw mode and msg's own frames: the stream has messages again,
//! but they carry nothing else (no kind, no sequence number, no secret),
//! so a listener answers every one of them and a sender matches replies
//! by their order alone.

use std::time::Instant;

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use msg_tcp::{LengthCodec, PeerAddr, Stream};
use tokio_util::codec::Framed;
use tracing::debug;

use crate::deadlines::{Deadlines, Expired};
use crate::limits::{BodyLimit, Family as IpFamily};
use crate::link::ConnectOptions;
use crate::respond::Answering;
use crate::stream::AnyStream;
use crate::transport::Family;
use crate::{Error, Event, Events, Limits, Reply, Transport};

/// How messages are told apart on a stream.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Framing {
    /// msg's frames: a length, then a header and a body.
    #[default]
    Msg,
    /// A bare length, then the body: for peers that are not msg.
    Length,
}

impl Framing {
    /// The largest body over `transport` (a datagram's once its address
    /// `family` is known), framed so, tagged when `authenticated`, or
    /// `raw`: [`BodyLimit::of`]; a bare length's frame holds the body
    /// alone.
    pub fn body_limit(
        self,
        transport: Transport,
        family: Option<IpFamily>,
        max_frame: usize,
        authenticated: bool,
        raw: bool,
    ) -> Option<BodyLimit> {
        match self {
            Self::Length => Some(BodyLimit::length_framed(max_frame)),
            Self::Msg => BodyLimit::of(transport, family, max_frame, authenticated, raw),
        }
    }
}

/// Why length framing needs a stream: a datagram is already one message.
pub const NEEDS_A_STREAM: &str =
    "length framing is for streams: a datagram already carries one message, whole";

/// A length-framed conversation with one peer over a stream.
#[derive(Debug)]
pub struct LengthLink {
    framed: Framed<AnyStream, LengthCodec>,
}

impl LengthLink {
    /// Connects to `addr`; frames over `options.tcp.max_frame` are refused
    /// both ways.
    ///
    /// # Errors
    ///
    /// A datagram transport ([`NEEDS_A_STREAM`], as an I/O error of kind
    /// `Unsupported`), or [`crate::Link::connect`]'s.
    pub async fn connect(
        transport: Transport,
        addr: impl Into<PeerAddr>,
        options: &ConnectOptions,
    ) -> Result<Self, Error> {
        let Family::Stream(kind) = transport.family() else {
            return Err(Error::Io(std::io::Error::new(
                std::io::ErrorKind::Unsupported,
                NEEDS_A_STREAM,
            )));
        };
        let stream = crate::stream::connect(kind, &addr.into(), options).await?;
        stream.apply(&options.tcp)?;
        Ok(Self {
            framed: Framed::new(stream, LengthCodec::new(options.tcp.max_frame)),
        })
    }

    /// Sends `body` behind its length.
    ///
    /// # Errors
    ///
    /// [`msg_tcp::Error::BodyTooLarge`] (nothing sent), or a failed write.
    pub async fn send(&mut self, body: &[u8]) -> Result<(), Error> {
        Ok(self.framed.send(body).await?)
    }

    /// The next frame's body: the reply to the oldest message not yet
    /// answered, since nothing else says which it answers. The caller
    /// bounds the wait.
    ///
    /// # Errors
    ///
    /// A frame over the limit, a failed read, or a peer that closed
    /// without replying (or mid-frame).
    pub async fn reply(&mut self) -> Result<Bytes, Error> {
        match self.framed.next().await {
            Some(body) => Ok(body?),
            None => Err(Error::Io(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the peer closed the connection without replying",
            ))),
        }
    }

    /// Closes the sending side so the peer sees the end of the stream
    /// after the last frame, then reads what the peer still sends until
    /// it closes too or `wait` ends, as a raw send does.
    ///
    /// # Errors
    ///
    /// A failed flush or shutdown.
    pub async fn finish(mut self, wait: std::time::Duration) -> Result<(), Error> {
        SinkExt::<&[u8]>::close(&mut self.framed).await?;
        let _ = crate::raw::drain(self.framed.get_mut(), wait).await;
        Ok(())
    }
}

/// Serves one length-framed stream connection: each frame's body is shown
/// and answered per `reply` with a frame of its own, within the idle and
/// frame timeouts of `limits`, as msg's frames are.
pub(crate) async fn serve_stream<S: Stream>(
    stream: S,
    peer: PeerAddr,
    reply: Reply,
    options: &msg_tcp::Options,
    limits: &Limits,
    events: Events,
) -> Result<(), Error> {
    stream.apply(options)?;
    let mut framed = Framed::new(stream, LengthCodec::new(options.max_frame));
    let mut deadlines = Deadlines::new(limits, Instant::now());
    let mut answering = Answering::default();
    loop {
        let wait = deadlines.next_wait(Instant::now());
        // Reading a frame is cancel-safe: what arrived stays buffered, and
        // how much of it there is tells which limit ran out.
        let Ok(next) = tokio::time::timeout(wait, framed.next()).await else {
            match deadlines.on_wait_over(Instant::now(), framed.read_buffer().len()) {
                Ok(()) => continue,
                Err(Expired::Frame(after)) => return Err(Error::FrameTimeout { after }),
                // No error frame to say why: a length-framed peer would
                // read it as a message.
                Err(Expired::Idle(after)) => return Err(Error::Idle { after }),
            }
        };
        let Some(body) = next else {
            debug!(%peer, "closed");
            // Ours for the peer's end, as a raw stream's (`raw.rs`): over
            // TLS the close_notify a checking peer waits for.
            let _ = tokio::time::timeout(limits.frame_timeout, framed.close()).await;
            return Ok(());
        };
        let body = match body {
            Ok(body) => body,
            Err(err) if answering.ended(&err) => return Ok(()),
            Err(err) => return Err(err.into()),
        };
        deadlines.on_message(Instant::now);
        if let Some(answer) = reply.answer(&body).filter(|_| answering.wanted()) {
            // Taken within the frame timeout, as the peer's frames must
            // come: a peer that never reads is dropped.
            let written =
                msg_tcp::write_within(Some(limits.frame_timeout), framed.send(&answer[..])).await;
            answering.written(&peer, written)?;
        }
        let event = Event::Message {
            peer: peer.clone(),
            seq: None,
            body,
        };
        // Waits while the queue is full: the peer then waits too, through
        // TCP's flow control.
        if !events.deliver(event).await {
            return Ok(());
        }
    }
}
