//! `--batch N`: a UDP throughput stream sent N datagrams per system call
//! (`sendmmsg`), and received by the built-in listener up to
//! [`MAX_BATCH`] per call (`recvmmsg`).
//!
//! Each datagram is still a `Discard` with its own sequence number, so
//! loss and reordering are counted from `seq` by the listener as without
//! batching. What batching changes is how many system calls carry them,
//! and that is what the report adds: datagrams per send call, counted by
//! the client, and datagrams per receive call, read in this process from
//! the built-in listener's counters (against a remote listener there is
//! nothing to read: "n/a").
//!
//! The built-in listener batches its receives only when `--batch` is
//! given, and `--batch` is only for throughput: `msg listen` and every
//! ping-pong keep one `recvfrom` per datagram, so the latency figures
//! measure the path they always did, and a listener that is not asked to
//! does not hold 64 receive slots of 64 KiB each.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use msg_net::{CallCounts, Counters, Link, SendBatch};
use msg_proto::{Kind, Message};
use serde::Serialize;

pub(crate) use msg_net::MAX_BATCH;

/// How a throughput run is batched.
#[derive(Debug)]
pub(crate) struct Batching {
    /// Datagrams per send call.
    pub(crate) size: usize,
    /// The built-in listeners' counters, by address.
    pub(crate) listeners: Vec<(SocketAddr, Arc<Counters>)>,
}

impl Batching {
    /// The receive-side counts of the built-in listener at `addr` now;
    /// `None` for a remote listener.
    pub(crate) fn recv_counts(&self, addr: SocketAddr) -> Option<CallCounts> {
        self.listeners
            .iter()
            .find(|(at, _)| *at == addr)
            .map(|(_, counters)| counters.udp_recv_calls())
    }
}

/// What the system calls of one run moved.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Calls {
    /// The client's sends.
    pub(crate) send: CallCounts,
    /// The listener's receives, when it is the built-in one.
    pub(crate) recv: Option<CallCounts>,
}

/// The `--batch` figures of a UDP cell in the JSON.
#[derive(Debug, Serialize)]
pub(crate) struct Json {
    batch: usize,
    datagrams_per_send_call: Option<f64>,
    /// null against a remote listener.
    datagrams_per_recv_call: Option<f64>,
}

impl Json {
    pub(crate) fn new(size: usize, calls: &Calls) -> Self {
        let hundredth = |v: f64| (v * 100.0).round() / 100.0;
        Self {
            batch: size,
            datagrams_per_send_call: calls.send.per_call().map(hundredth),
            datagrams_per_recv_call: calls.recv.and_then(|c| c.per_call()).map(hundredth),
        }
    }
}

/// The table's columns for the batch figures, after UDP's own.
pub(crate) const COLUMNS: [&str; 2] = ["dgram/send", "dgram/recv"];

/// The table cells for `calls` (or dashes where a run has none).
pub(crate) fn cells(calls: Option<&Calls>) -> [String; 2] {
    let per = |counts: Option<CallCounts>| {
        counts
            .and_then(|c| c.per_call())
            .map_or_else(|| "n/a".to_owned(), |v| format!("{v:.1}"))
    };
    match calls {
        Some(calls) => [per(Some(calls.send)), per(calls.recv)],
        None => ["-".to_owned(), "-".to_owned()],
    }
}

/// Sends `Discard`s for `duration`, `size` per call, as fast as the
/// socket takes them; returns how many were sent. `discard` carries the
/// body and the last sequence number used.
pub(crate) async fn stream(
    link: &mut Link,
    discard: &mut Message,
    duration: Duration,
    size: usize,
    batch: &mut SendBatch,
) -> anyhow::Result<u64> {
    let body: Bytes = discard.body.clone();
    // One allocation per run, not per batch: the bodies share one buffer.
    let mut msgs: Vec<Message> = (0..size)
        .map(|_| Message::new(Kind::Discard, 0, body.clone()))
        .collect();
    let end = Instant::now() + duration;
    let mut sent = 0;
    while Instant::now() < end {
        for msg in &mut msgs {
            discard.seq += 1;
            msg.seq = discard.seq;
        }
        link.send_batch(&msgs, batch).await?;
        sent += msgs.len() as u64;
    }
    Ok(sent)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_say_n_a_without_the_listener_counts() {
        let calls = Calls {
            send: CallCounts {
                calls: 10,
                datagrams: 320,
            },
            recv: None,
        };
        assert_eq!(cells(Some(&calls)), ["32.0".to_owned(), "n/a".to_owned()]);
        assert_eq!(cells(None), ["-".to_owned(), "-".to_owned()]);
        let json = serde_json::to_value(Json::new(32, &calls)).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"batch": 32, "datagrams_per_send_call": 32.0, "datagrams_per_recv_call": null})
        );
    }
}
