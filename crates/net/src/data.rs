//! `Data` messages, both ends: what `msg send` sends and how `msg listen`
//! answers it.

use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use msg_proto::{FLAG_REPLY, Kind, Message};

/// What a listener answers to each `Data` message (pings are answered
/// whatever this says).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Reply {
    /// The same body back.
    Echo,
    /// The body with ASCII letters upper-cased.
    Upper,
    /// Nothing.
    #[default]
    None,
}

impl Reply {
    /// The reply body for `body`, or `None` when there is no reply. Raw
    /// mode answers with this alone; framed mode wraps it in
    /// [`reply_to`].
    pub fn answer(self, body: &Bytes) -> Option<Bytes> {
        match self {
            Self::Echo => Some(body.clone()),
            Self::Upper => Some(body.to_ascii_uppercase().into()),
            Self::None => None,
        }
    }
}

/// The reply to a `Data` message: a `Data` message with the request's
/// `seq` and `timestamp_ns`, so the sender can match it and time it, and
/// flags [`FLAG_REPLY`] alone. The request's flags are not copied: they
/// describe the request, and a bit this version does not know must not
/// come back as if it meant something in the answer.
///
/// A reply is never answered (`None`): two listeners that answered each
/// other's replies, or one its own, would do so for ever once a forged
/// datagram started them ([`FLAG_REPLY`]).
pub fn reply_to(request: &Message, reply: Reply) -> Option<Message> {
    if request.flags & FLAG_REPLY != 0 {
        return None;
    }
    let body = reply.answer(&request.body)?;
    let mut answer =
        Message::new(Kind::Data, request.seq, body).with_timestamp(request.timestamp_ns);
    answer.flags = FLAG_REPLY;
    Some(answer)
}

/// A `Data` message stamped with the wall clock (nanoseconds since the
/// Unix epoch), as `msg send` sends it.
pub fn data(seq: u64, body: Bytes) -> Message {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| {
            u64::try_from(since.as_nanos()).unwrap_or(u64::MAX)
        });
    Message::new(Kind::Data, seq, body).with_timestamp(now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_replies_keep_seq_and_timestamp() {
        let data = Message::new(Kind::Data, 7, "hello").with_timestamp(11);
        let reply = reply_to(&data, Reply::Upper).expect("upper replies");
        assert_eq!(
            (reply.kind, reply.seq, reply.timestamp_ns),
            (Kind::Data, 7, 11)
        );
        assert_eq!(reply.body, "HELLO");
        assert!(reply_to(&data, Reply::None).is_none());
    }

    #[test]
    fn replies_do_not_copy_the_request_flags() {
        let mut data = Message::new(Kind::Data, 7, "hello");
        data.flags = 0x4000_0000;
        assert_eq!(reply_to(&data, Reply::Echo).unwrap().flags, FLAG_REPLY);
    }

    /// docs/wire.md's reply vector is what a listener answers to its Data
    /// vector: a peer written from the docs marks its replies as msg does.
    #[test]
    fn the_docs_carry_the_reply_vector() {
        let request = Message::new(Kind::Data, 1, "hello").with_timestamp(0x0102_0304_0506_0708);
        let mut bytes = Vec::new();
        msg_proto::encode(&reply_to(&request, Reply::Echo).unwrap(), &mut bytes).unwrap();
        assert_eq!(crate::ping::tests::doc_vector("Vector `data-reply`"), bytes);
    }

    /// Audit, round five: a datagram forged to come from one echoing
    /// listener had another answer it, and the first answer that, for
    /// ever. A reply is marked, and a marked message is never answered.
    #[test]
    fn a_reply_is_marked_and_never_answered() {
        let data = Message::new(Kind::Data, 7, "hello");
        for mode in [Reply::Echo, Reply::Upper] {
            let reply = reply_to(&data, mode).unwrap();
            assert_eq!(reply.flags & FLAG_REPLY, FLAG_REPLY);
            assert!(reply_to(&reply, Reply::Echo).is_none());
            assert!(reply_to(&reply, Reply::Upper).is_none());
        }
    }
}
