//! [`Sender::send_all`]: every body of a client sent, numbered, and each
//! reply waited for and shown, as `msg send` does.

use std::io;
use std::time::Duration;

use tokio::io::AsyncBufRead;

use super::{Bodies, BodyError, Sender};
use crate::{Error, PeerAddr};

/// How [`Sender::send_all`] waits for each message's reply.
#[derive(Debug, Clone, Copy)]
pub struct Awaiting {
    /// How long a reply may take (to a group, every receiver's answer).
    pub timeout: Duration,
    /// Over a raw stream, a reply is what arrives until it is quiet this
    /// long.
    pub idle: Duration,
}

/// What [`Sender::send_all`] sent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sent {
    /// Messages, numbered from 1: the last one's number.
    pub messages: u64,
    /// Their bodies' bytes.
    pub bytes: u64,
    /// Answers from a group's receivers, in all.
    pub answers: u64,
}

/// Why [`Sender::send_all`] stopped before its bodies ended.
#[derive(Debug, thiserror::Error)]
pub enum SendAllError {
    /// The next body could not be had (the caller says why in its words).
    #[error(transparent)]
    Body(BodyError),
    /// A message could not be sent.
    #[error("cannot send message {seq}")]
    Send {
        /// Its number.
        seq: u64,
        /// Why.
        source: Error,
    },
    /// Raw bytes over a stream could not be sent: there are no messages
    /// to number (a "message 4" was stdin's fourth read, which meant
    /// nothing to anyone: audit, round thirteen), so the bytes that went
    /// before are counted.
    #[error("cannot send after {sent} bytes")]
    SendBytes {
        /// The bytes sent before.
        sent: u64,
        /// Why.
        source: Error,
    },
    /// A reply did not come, or could not be received or shown (to a
    /// group: as [`Sender::replies`] says).
    #[error(transparent)]
    Reply(Error),
    /// A reply could not be shown.
    #[error(transparent)]
    Shown(io::Error),
}

impl Sender {
    /// Sends each of `bodies` to `to`, numbered from 1; with `awaiting`,
    /// waits for each one's reply (to a group, every receiver's answer)
    /// and hands it to `shown` with who sent it and the message's number.
    ///
    /// # Errors
    ///
    /// [`SendAllError`]: which step failed, and how.
    pub async fn send_all<R: AsyncBufRead + Unpin>(
        &mut self,
        bodies: &mut Bodies<'_, R>,
        to: &PeerAddr,
        awaiting: Option<Awaiting>,
        mut shown: impl FnMut(&PeerAddr, u64, &[u8]) -> io::Result<()>,
    ) -> Result<Sent, SendAllError> {
        let mut sent = Sent::default();
        while let Some(body) = bodies.next().await.map_err(SendAllError::Body)? {
            let seq = sent.messages + 1;
            let before = sent.bytes;
            sent.messages = seq;
            sent.bytes += body.len() as u64;
            let raw_stream = self.is_raw_stream();
            self.send(seq, body)
                .await
                .map_err(|source| match raw_stream {
                    true => SendAllError::SendBytes {
                        sent: before,
                        source,
                    },
                    false => SendAllError::Send { seq, source },
                })?;
            let Some(wait) = awaiting else {
                continue;
            };
            if self.is_one_to_many() {
                let mut each = |peer: &PeerAddr, body: &[u8]| shown(peer, seq, body);
                let answers = self.replies(seq, to, wait.timeout, &mut each).await;
                sent.answers += answers.map_err(SendAllError::Reply)?;
            } else {
                let reply = self.reply(seq, to, wait.timeout, wait.idle).await;
                let reply = reply.map_err(SendAllError::Reply)?;
                shown(to, seq, &reply).map_err(SendAllError::Shown)?;
                // A raw stream reply longer than a piece, or slower than
                // the wait: the rest, shown piece by piece as it comes.
                while let Some(more) = self
                    .reply_more(wait.timeout, wait.idle)
                    .await
                    .map_err(SendAllError::Reply)?
                {
                    shown(to, seq, &more).map_err(SendAllError::Shown)?;
                }
            }
        }
        Ok(sent)
    }
}
