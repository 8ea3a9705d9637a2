//! What a listener says when it stops: what it showed, from how many
//! peers, and every way a message can have gone missing on the way, each
//! counted apart, so that "sent N, printed M" always adds up.

use serde_json::{Value, json};

use crate::{CallCounts, Caps, Counted};

/// A listener's closing account.
#[derive(Debug, Clone, Copy)]
pub struct Summary {
    /// Messages, bytes, peers, and whether the peers hit the tally's cap
    /// ([`Tally::get`](crate::show::Tally::get)).
    pub tally: (u64, u64, usize, bool),
    /// What the serve loop counted.
    pub counted: Counted,
    /// Datagrams the kernel dropped, its receive buffer full.
    pub kernel_drops: Option<u64>,
    /// Datagrams that arrived and were dropped unread by the transport's
    /// own receive buffer (QUIC datagrams': [`BufferDrops`](crate::BufferDrops)).
    pub buffer_drops: Option<u64>,
    /// Datagrams dropped because the output did not keep up.
    pub output_drops: u64,
    /// Messages (and files) received and queued for the output, but not
    /// printed when the listener stopped: stdout was blocked, or the count
    /// was reached first.
    pub not_printed: u64,
    /// Datagrams that had arrived but were still waiting in the socket's
    /// receive buffer when the listener stopped.
    pub unread: Option<u64>,
    /// With batched receives: the calls, the datagrams they took, and how
    /// many of those came coalesced (GRO).
    pub recv_calls: Option<CallCounts>,
}

impl Summary {
    /// One line for people: `msg listen: 3 messages (15 bytes) from 1
    /// peer; dropped: ...`. A connection's losses are its own errors, so
    /// only a transport without connections lists the datagram drops;
    /// `raise_rcvbuf` is how the reader raises the receive buffer (the
    /// CLI's flag), shown beside the kernel's drops.
    #[must_use]
    pub fn line(&self, caps: Caps, raise_rcvbuf: &str) -> String {
        let (messages, bytes, peers, capped) = self.tally;
        let at_least = if capped { "at least " } else { "" };
        let mut line = format!(
            "msg listen: {} ({}) from {at_least}{}",
            count(messages, "message"),
            count(bytes, "byte"),
            count(peers as u64, "peer")
        );
        if caps.connections {
            line += &format!(", {}", count(self.counted.connections, "connection"));
        }
        let mut dropped = vec![format!("{} invalid", self.counted.invalid)];
        if !caps.connections {
            // Datagrams are authenticated one by one, and dropped one by
            // one; a connection that fails its handshake is counted as a
            // connection.
            dropped.push(format!("{} unauthenticated", self.counted.unauthenticated));
            if let Some(kernel) = self.kernel_drops {
                dropped.push(format!(
                    "{kernel} by the kernel (receive buffer full; {raise_rcvbuf})"
                ));
            }
            if let Some(buffer) = self.buffer_drops {
                dropped.push(format!(
                    "{buffer} by QUIC's receive buffer (they came faster than msg read them)"
                ));
            }
            dropped.push(format!(
                "{} by the output (not keeping up)",
                self.output_drops
            ));
        }
        if self.not_printed > 0 {
            dropped.push(format!(
                "{} queued but not printed when msg stopped",
                self.not_printed
            ));
        }
        if let Some(unread) = self.unread.filter(|&n| n > 0) {
            dropped.push(format!(
                "{unread} unread in the receive buffer when msg stopped"
            ));
        }
        line += &format!("; dropped: {}", dropped.join(", "));
        if let Some(calls) = self.recv_calls {
            line += &format!(
                "; {} in {} ({:.1} per call, {} coalesced by GRO)",
                count(calls.datagrams, "datagram"),
                count(calls.calls, "receive call"),
                calls.per_call().unwrap_or(0.0),
                calls.segmented
            );
        }
        line
    }

    /// The same as one JSON object, `{"summary": {...}}`: every count,
    /// `null` where the transport has no such count.
    #[must_use]
    pub fn json(&self) -> Value {
        let (messages, bytes, peers, _) = self.tally;
        let mut summary = json!({
            "summary": {
                "messages": messages,
                "bytes": bytes,
                "peers": peers,
                "connections": self.counted.connections,
                "invalid": self.counted.invalid,
                "unauthenticated": self.counted.unauthenticated,
                "kernel_drops": self.kernel_drops,
                "buffer_drops": self.buffer_drops,
                "output_drops": self.output_drops,
                "not_printed": self.not_printed,
                "unread": self.unread,
            }
        });
        if let Some(calls) = self.recv_calls {
            summary["summary"]["recv_calls"] = calls.calls.into();
            summary["summary"]["recv_datagrams"] = calls.datagrams.into();
            summary["summary"]["gro_datagrams"] = calls.segmented.into();
        }
        summary
    }
}

/// `n` and the noun, singular for one: `1 datagram`, `2 datagrams`.
#[must_use]
pub fn count(n: u64, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Transport;

    fn summary() -> Summary {
        Summary {
            tally: (3, 15, 1, false),
            counted: Counted::default(),
            kernel_drops: Some(2),
            buffer_drops: None,
            output_drops: 0,
            not_printed: 0,
            unread: Some(0),
            recv_calls: None,
        }
    }

    #[test]
    fn a_datagram_listener_lists_every_way_a_message_is_lost() {
        assert_eq!(
            summary().line(Transport::Udp.caps(), "--rcvbuf"),
            "msg listen: 3 messages (15 bytes) from 1 peer; dropped: 0 invalid, \
             0 unauthenticated, 2 by the kernel (receive buffer full; --rcvbuf), \
             0 by the output (not keeping up)"
        );
    }

    /// What arrived at a QUIC datagram listener and quinn dropped unread
    /// is counted with the rest (it was lost silently).
    #[test]
    fn a_quic_datagram_listener_counts_what_its_receive_buffer_dropped() {
        let mut s = summary();
        s.kernel_drops = None;
        s.buffer_drops = Some(134_616);
        assert_eq!(
            s.line(Transport::QuicDgram.caps(), "--rcvbuf"),
            "msg listen: 3 messages (15 bytes) from 1 peer; dropped: 0 invalid, \
             0 unauthenticated, 134616 by QUIC's receive buffer (they came faster than msg \
             read them), 0 by the output (not keeping up)"
        );
        assert_eq!(s.json()["summary"]["buffer_drops"], 134_616);
    }

    #[test]
    fn a_stream_listener_counts_connections_not_datagram_drops() {
        let line = summary().line(Transport::Tcp.caps(), "--rcvbuf");
        assert_eq!(
            line,
            "msg listen: 3 messages (15 bytes) from 1 peer, 0 connections; dropped: 0 invalid"
        );
    }

    #[test]
    fn json_has_every_key_and_null_where_there_is_no_count() {
        let mut s = summary();
        s.kernel_drops = None;
        let json = s.json();
        assert_eq!(json["summary"]["messages"], 3);
        assert_eq!(json["summary"]["kernel_drops"], Value::Null);
        assert_eq!(json["summary"]["buffer_drops"], Value::Null);
        assert!(json["summary"].get("recv_calls").is_none());
    }

    #[test]
    fn one_is_singular() {
        assert_eq!(count(1, "peer"), "1 peer");
        assert_eq!(count(0, "peer"), "0 peers");
        assert_eq!(count(2, "peer"), "2 peers");
    }
}
