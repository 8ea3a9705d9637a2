//! [`Prepared`]: the short ways of a ping-pong client over a [`Link`], as
//! sockperf's client and bench/floor.c take them. Its ping, whose body
//! never changes, is framed once and sent with only its header rewritten
//! ([`Link::send_prepared`]). Its pong is taken from the bytes it arrived
//! as ([`Link::recv_or`]). What is not that pong is decoded as
//! [`Link::recv`] decodes it.

use std::time::Instant;

use bytes::BytesMut;
use msg_proto::{HEADER_LEN, Message};

use super::{Inner, Link, Received};
use crate::Error;
use crate::blocking::io::Take;

/// A message framed once as a [`Link`] sends it, to be sent again and
/// again with only its header rewritten ([`Link::send_prepared`]): a
/// ping-pong's ping, whose body never changes, is neither encoded nor
/// copied for each round trip, as sockperf's client and bench/floor.c
/// send theirs.
#[derive(Debug)]
pub struct Prepared {
    /// The whole frame or datagram.
    bytes: Vec<u8>,
    /// Where the message's header starts in it (after a stream frame's
    /// length prefix).
    header_at: usize,
}

impl Link {
    /// `msg` framed, within the transport's limits, as [`Link::send`]
    /// would send it, for [`Link::send_prepared`]; `None` once the link is
    /// authenticated (every message is then sealed, the tag covering a
    /// header that changes each time). Prepare after authenticating.
    ///
    /// # Errors
    ///
    /// As [`Link::send`]'s, for a message too large.
    pub fn prepare(&mut self, msg: &Message) -> Result<Option<Prepared>, Error> {
        let mut bytes = BytesMut::new();
        let header_at = match &mut self.inner {
            Inner::Datagram { peer, framing, .. } if !framing.is_authenticated() => {
                framing.encode(msg, peer, &mut bytes)?;
                0
            }
            Inner::UnixDatagram {
                socket, framing, ..
            } if !framing.is_authenticated() => {
                socket.encode(framing, &mut bytes, msg)?;
                0
            }
            Inner::Stream(framed) => {
                if !framed.frame_plain(msg, &mut bytes)? {
                    return Ok(None);
                }
                msg_tcp::LENGTH_PREFIX_LEN
            }
            Inner::Datagram { .. } | Inner::UnixDatagram { .. } => return Ok(None),
        };
        Ok(Some(Prepared {
            bytes: bytes.into(),
            header_at,
        }))
    }

    /// Sends `prepared` (from [`Link::prepare`] on this link) with its
    /// header replaced by `header`, as [`Link::send`] sends a message: one
    /// `send`, or the writes of one frame.
    ///
    /// # Errors
    ///
    /// The transport's: the send failed or timed out.
    pub fn send_prepared(
        &mut self,
        prepared: &mut Prepared,
        header: &[u8; HEADER_LEN],
    ) -> Result<(), Error> {
        let at = prepared.header_at;
        prepared.bytes[at..at + HEADER_LEN].copy_from_slice(header);
        let bytes = &prepared.bytes[..];
        match &mut self.inner {
            Inner::Datagram { socket, peer, .. } => {
                socket.send(bytes).map_err(|source| msg_udp::Error::Send {
                    addr: *peer,
                    source,
                })?;
            }
            Inner::UnixDatagram { socket, .. } => socket.send_bytes(bytes, None)?,
            Inner::Stream(framed) => framed
                .write_frame(bytes, &self.never)
                .map_err(super::send_timed_out)?,
        }
        Ok(())
    }

    /// As [`Link::recv`], but first shows each message's bytes (header and
    /// body, as they arrived, undecoded) to `take`: the ones it takes
    /// (true) are not decoded, and `None` is returned. A ping-pong client
    /// takes its pongs so ([`crate::ping::PingClient::on_pong_bytes`]); what
    /// it leaves is decoded, skipped or refused as [`Link::recv`] would.
    /// Over an authenticated link every message is sealed, and is shown
    /// sealed.
    ///
    /// # Errors
    ///
    /// As [`Link::recv`].
    pub fn recv_or(
        &mut self,
        deadline: Instant,
        take: Take<'_>,
    ) -> Result<Option<Received>, Error> {
        self.receive(deadline, Some(take))
    }
}
