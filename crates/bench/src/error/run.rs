//! Why a run stopped as it measured: what the listener answered, or did
//! not, what a `connect` cycle's `connect()` and handshake met, a
//! `TCP_INFO` that cannot be read; and msg-net's ping errors in these
//! words. Apart from [`Error`] because none of these stands alone: each
//! is the source of the error that says which run, cycle or client it
//! was ([`Error::Run`], [`Error::Cycle`], [`Error::Client`]).

use std::io;
use std::time::Duration;

use humantime::format_duration;
use msg_proto::Kind;

use super::Error;

/// What stopped a run, a connect cycle or a client as it measured (the
/// source of [`Error::Run`], [`Error::Cycle`] or [`Error::Client`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunError {
    /// The listener closed a TCP connection in the middle of a run.
    #[error("the listener closed the connection")]
    ListenerClosed,
    /// Over TCP, a reply did not come within the timeout.
    #[error("no answer to ping {seq} within {}", format_duration(*.within))]
    NoAnswer {
        /// The ping.
        seq: u64,
        /// How long it had.
        within: Duration,
    },
    /// Over TCP, only a late reply came before the deadline (blocking
    /// engine).
    #[error("no answer to ping {seq} in time")]
    Late {
        /// The ping.
        seq: u64,
    },
    /// A ping that got no answer where none may be lost (`clients`).
    #[error("no answer")]
    Lost,
    /// The listener answered none of the statistics requests.
    #[error(
        "no answer to {attempts} statistics requests in {}, each waiting twice as long as the one before",
        format_duration(*.waited)
    )]
    NoStats {
        /// How many were sent.
        attempts: u32,
        /// How long they waited in all.
        waited: Duration,
    },
    /// Over TCP, the statistics request was not answered within its own
    /// wait, longer than a ping's (it queues behind the stream it asks
    /// about).
    #[error("no answer to the statistics request within {}", format_duration(*.waited))]
    StatsUnanswered {
        /// How long it waited.
        waited: Duration,
    },
    /// Another parallel flow failed before every flow had its first
    /// statistics: that flow's own error is the one a run reports.
    #[error("another parallel flow failed")]
    OtherFlowFailed,
    /// The parallel flows' first statistics did not all come in time.
    #[error(
        "the parallel flows did not all have their first statistics within {}",
        format_duration(*.within)
    )]
    FlowsNotCounted {
        /// How long the flows that had theirs waited for the others.
        within: Duration,
    },
    /// A pong whose body is another length than its ping's, which a pong
    /// echoes: msg-net's [`PongError::BodyLength`](msg_net::ping::PongError::BodyLength),
    /// found by either loop.
    #[error(transparent)]
    PongLength(msg_net::ping::PongError),
    /// In the open loop, a reply to no ping sent.
    #[error(
        "expected a pong to one of pings 0..{sent}, got {kind:?} {seq}: is the peer `msg listen`?"
    )]
    UnexpectedPong {
        /// Pings sent so far.
        sent: u64,
        /// What came.
        kind: Kind,
        /// Its sequence number.
        seq: u64,
    },
    /// In the open loop over a transport that loses and duplicates
    /// nothing, a second pong to one ping.
    #[error(
        "the listener answered ping {seq} twice: over a transport that neither loses nor \
         duplicates messages, each ping has one pong; is the peer msg listen?"
    )]
    AnsweredTwice {
        /// The ping.
        seq: u64,
    },
    /// The open loop could not keep its schedule: fewer pings went while
    /// it measured than its rate asked for, so the latencies, counted
    /// from each ping's intended time, would be mostly the sender's own
    /// lateness, and the pings it never sent would count nowhere.
    #[error(
        "the open loop fell behind its schedule: it sent {sent} pings in {}, where {rate} \
         msg/s asks for {asked}; this machine sent about {achieved} msg/s this way: lower the \
         rate",
        format_duration(*.within)
    )]
    BehindSchedule {
        /// The rate asked for, per second.
        rate: u64,
        /// Pings sent, warm-up and measurement.
        sent: u64,
        /// Pings the schedule had for them.
        asked: u64,
        /// The warm-up and the measurement.
        within: Duration,
        /// Pings sent per second, from the start to the last send.
        achieved: u64,
    },
    /// Over TCP, the open loop ended with pings unanswered.
    #[error(
        "{lost} of {sent} pings were not answered within {} of the last send",
        format_duration(*.within)
    )]
    Unanswered {
        /// Pings unanswered.
        lost: u64,
        /// Pings sent while measuring.
        sent: u64,
        /// How long the last one had.
        within: Duration,
    },
    /// A stream over a transport that loses nothing whose two ends'
    /// counts differ: the peer counts otherwise than msg listen does, or
    /// says what did not happen.
    #[error(
        "over a transport that loses nothing, {}: the two counts must agree; is the peer msg \
         listen?",
        if *.reverse {
            format!("the listener says it sent {sent} messages and {received} arrived")
        } else {
            format!("the listener counted {received} messages of the {sent} sent")
        }
    )]
    CountsDisagree {
        /// Messages sent (by the client, or by the listener of a reverse
        /// stream, in its own words).
        sent: u64,
        /// Messages counted at the receiving end.
        received: u64,
        /// Whether the listener sent.
        reverse: bool,
    },
    /// A stream's statistics that cannot be true over any transport, the
    /// listener's two replies compared: what is wrong with them.
    #[error("the listener's statistics cannot be true: {0}; is the peer msg listen?")]
    ImpossibleCounts(crate::engine::ImpossibleCounts),
    /// A message of a reverse stream whose body is not the size asked
    /// for: counted, an empty one made 428,808 MB/s of 65,000-byte ones.
    #[error(
        "the listener streamed message {seq} with a {len}-byte body where {size}-byte ones were \
         asked for; is the peer msg listen?"
    )]
    StreamedSize {
        /// Its sequence number.
        seq: u64,
        /// Its body's length.
        len: usize,
        /// The size asked for.
        size: u32,
    },
    /// The listener answered a request to stream with a plain pong: it
    /// does not know the request (an older msg).
    #[error(
        "the listener answered the request to stream back with a plain pong: it does not \
         stream back (a msg listen from before reverse streams, or not msg)"
    )]
    NoStreamBack,
    /// A reply that answers no ping in flight.
    #[error(transparent)]
    Pong(#[from] msg_net::ping::UnexpectedReply),
    /// The kernel's `TCP_INFO` could not be read.
    #[error("cannot read TCP_INFO")]
    TcpInfo(#[source] msg_net::Error),
    /// A `connect` cycle's connect() failed.
    #[error("cannot connect to {addr}")]
    CycleConnect {
        /// The listener, with its transport.
        addr: String,
        /// Why.
        source: io::Error,
    },
    /// A `connect` cycle's TLS handshake failed.
    #[error("TLS handshake with {addr}")]
    CycleHandshake {
        /// The listener, with its transport.
        addr: String,
        /// Why: rustls's error inside an `InvalidData` one, or the socket's.
        source: io::Error,
    },
}

impl Error {
    /// Why msg-net's ping client gave up, in this crate's words:
    /// `timeout` is how long a reply had.
    pub(crate) fn client(err: msg_net::ping::ClientError, timeout: Duration) -> Self {
        use msg_net::ping::ClientError;
        match err {
            ClientError::Pong(err) => Self::pong(err, timeout),
            ClientError::NoStats { attempts } => RunError::NoStats {
                attempts,
                waited: msg_net::ping::stats_waited(timeout),
            }
            .into(),
            ClientError::StatsUnanswered { waited } => RunError::StatsUnanswered { waited }.into(),
            ClientError::Stats(err) => Self::Proto(err),
            // ClientError is non-exhaustive: a reason of a later version.
            other => Self::Net(msg_net::Error::Peer(other.to_string())),
        }
    }

    /// A failed wait for a pong, in this crate's words: `timeout` is how
    /// long a reply had.
    pub(crate) fn pong(err: msg_net::ping::PongError, timeout: Duration) -> Self {
        use msg_net::ping::PongError;
        match err {
            // As the listener said it, made safe to print.
            PongError::Refused(text) => Self::Net(msg_net::Error::Peer(text)),
            PongError::Unexpected(unexpected) => RunError::Pong(unexpected).into(),
            PongError::NoAnswer { seq } => RunError::NoAnswer {
                seq,
                within: timeout,
            }
            .into(),
            PongError::Late { seq } => RunError::Late { seq }.into(),
            err @ PongError::BodyLength { .. } => RunError::PongLength(err).into(),
            // PongError is non-exhaustive: a reason of a later version.
            other => Self::Net(msg_net::Error::Peer(other.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unanswered_statistics_request_is_named_with_its_own_wait() {
        // Over TCP it said `no answer to ping 1 within 5s`, after 10 s
        // (audit, round six).
        let err = msg_net::ping::ClientError::StatsUnanswered {
            waited: Duration::from_secs(10),
        };
        assert_eq!(
            Error::client(err, Duration::from_secs(5)).to_string(),
            "no answer to the statistics request within 10s"
        );
    }
}
