//! The batched engine: a UDP throughput stream sent N datagrams per
//! system call (`sendmmsg`), and received by the built-in listener up to
//! [`MAX_BATCH`](msg_net::MAX_BATCH) per call (`recvmmsg`).
//!
//! Each datagram is still a `Discard` with its own sequence number, so
//! loss and reordering are counted from `seq` by the listener as without
//! batching. What batching changes is how many system calls carry them,
//! and that is what the report adds: datagrams per send call, counted by
//! the client, and datagrams per receive call, read in this process from
//! the built-in listener's counters (against a remote listener there is
//! nothing to read: "n/a").
//!
//! Where the kernel offers them (Linux 4.18 and 5.0), the stream also
//! uses UDP segmentation offload, as iperf3 and quinn do: each batch of
//! equal-sized datagrams goes to the kernel as one GSO send, and the
//! built-in listener takes such runs coalesced (GRO) and cuts them apart
//! again. On the wire, and to any other receiver, they are the same
//! datagrams. Without GSO ([`Batch::gso`](crate::Batch::gso)) the batches
//! go out with `sendmmsg` alone; the "offload" column says what each run
//! used.
//!
//! At a rate, the stream is paced: each batch leaves when the first of
//! its messages is due, so the rate holds on average and the datagrams
//! leave in bursts of N, as iperf3's paced bursts do.
//!
//! The built-in listener batches its receives only for a batched plan,
//! which is only for throughput: `msg listen` and every ping-pong keep one
//! `recvfrom` per datagram, so the latency figures measure the path they
//! always did, and a listener that is not asked to does not hold 64
//! receive slots of 64 KiB each.

use std::time::{Duration, Instant};

use bytes::Bytes;
use msg_net::{CallCounts, Link, PeerAddr, SendBatch};
use msg_proto::{Kind, Message};

use super::tokio::Peer;
use super::{Drops, Outcome, UDP_DRAIN};
use crate::cpu::Sample;
use crate::error::Error;
use crate::interval::{Sink, Ticker};
use crate::pace::{Pacer, next_send};
use crate::settings::{Batching, Settings, Target};

/// What the system calls of one run moved.
#[derive(Debug, Clone, Copy)]
pub struct Calls {
    /// The client's sends.
    pub send: CallCounts,
    /// The listener's receives, when it is the built-in one.
    pub recv: Option<CallCounts>,
}

impl Outcome {
    /// A batched stream's calls, both engines'. A GSO run crosses loopback
    /// as one packet, and a full receive queue drops it whole and counts
    /// it once: the socket's count is then of runs, not datagrams, and is
    /// not shown as drops (audit, round fifteen: exactly an eighth of what
    /// was lost with --batch 8).
    pub(crate) fn batched(&mut self, calls: Calls) {
        if calls.send.segmented > 0 {
            self.drops = None;
            self.drops_span = None;
        }
        self.calls = Some(calls);
    }
}

/// The `Discard`s of one batch, made once per run: their bodies share one
/// buffer, so numbering a batch allocates nothing.
pub(super) struct Discards {
    msgs: Vec<Message>,
}

impl Discards {
    /// `size` discards of `discard`'s body.
    pub(super) fn new(discard: &Message, size: usize) -> Self {
        let msgs = (0..size)
            .map(|_| Message::new(Kind::Discard, 0, discard.body.clone()))
            .collect();
        Self { msgs }
    }

    /// The next batch, numbered on from `discard.seq`, which is left at
    /// the last number used.
    pub(super) fn next(&mut self, discard: &mut Message) -> &[Message] {
        for msg in &mut self.msgs {
            discard.seq += 1;
            msg.seq = discard.seq;
        }
        &self.msgs
    }
}

/// The call counts when a measurement starts, on both sides.
pub(super) struct CallsBefore {
    send: CallCounts,
    recv: Option<CallCounts>,
}

impl Batching {
    /// The counts of `send` and of the built-in listener at `addr` now.
    pub(super) fn before(&self, addr: &PeerAddr, send: &SendBatch) -> CallsBefore {
        CallsBefore {
            send: send.counts(),
            recv: self.recv_counts(addr),
        }
    }

    /// What the calls moved since `before`.
    pub(super) fn since(&self, addr: &PeerAddr, send: &SendBatch, before: &CallsBefore) -> Calls {
        Calls {
            send: send.counts().since(&before.send),
            recv: self
                .recv_counts(addr)
                .zip(before.recv)
                .map(|(now, before)| now.since(&before)),
        }
    }
}

/// Sends `Discard`s for `duration`, `size` per call, as fast as the
/// socket takes them or, with `pacer`, at its rate in messages per second
/// (each batch leaves when its first message is due, as iperf3 paces its
/// bursts); returns how many were sent. `discard` carries the body and
/// the last sequence number used.
async fn stream(
    link: &mut Link,
    discard: &mut Message,
    (start, duration): (Instant, Duration),
    size: usize,
    batch: &mut SendBatch,
    mut pacer: Option<&mut (Pacer, u64)>,
    mut ticker: Option<&mut Ticker<'_>>,
) -> Result<u64, Error> {
    let mut discards = Discards::new(discard, size);
    let end = start + duration;
    let mut sent = 0;
    // What the ticker is shown: the messages sent so far (UDP: no TCP_INFO).
    let mut so_far = Outcome::new();
    loop {
        let next = next_send(pacer.as_deref_mut(), start, sent, end).await?;
        if let Some(ticker) = ticker.as_deref_mut() {
            so_far.sent = sent;
            if next >= end {
                ticker.finish(next, &so_far, false, None);
            } else if ticker.due(next) {
                ticker.tick(next, &so_far, false, None);
            }
        }
        if next >= end {
            break;
        }
        let msgs = discards.next(discard);
        link.send_batch(msgs, batch).await?;
        sent += msgs.len() as u64;
    }
    Ok(sent)
}

/// A throughput run over UDP, batched: the stream sent many datagrams
/// per call, and the calls counted on both sides where they can be.
pub(super) async fn throughput(
    peer: &mut Peer,
    target: &Target,
    body: Bytes,
    settings: &Settings,
    sink: Sink<'_>,
) -> Result<Outcome, Error> {
    let batching = settings.batch.as_ref().expect("called for a batched run");
    let mut send_batch = SendBatch::new().with_gso(batching.gso);
    let mut discard = Message::new(Kind::Discard, 0, body);
    let size = batching.size;
    let mut pacer = match settings.rate {
        Some(rate) => Some((Pacer::new()?, rate)),
        None => None,
    };
    let warm = stream(
        &mut peer.link,
        &mut discard,
        (Instant::now(), settings.warmup),
        size,
        &mut send_batch,
        pacer.as_mut(),
        None,
    )
    .await?;
    let before = peer.stats().await?;
    let addr = &target.addr;
    let calls_before = batching.before(addr, &send_batch);

    let drops = Drops::start(target);
    let cpu = Sample::now();
    let start = Instant::now();
    // One end for the ticker and the stream: the intervals end with it.
    let mut ticker = Ticker::new(settings.interval, start, &Outcome::new(), None, sink)
        .until(start + settings.duration);
    let sent = stream(
        &mut peer.link,
        &mut discard,
        (start, settings.duration),
        size,
        &mut send_batch,
        pacer.as_mut(),
        Some(&mut ticker),
    )
    .await?;
    // As without batching: what the receiver has not taken by the end of
    // the stream is lost.
    let elapsed = start.elapsed();
    tokio::time::sleep(UDP_DRAIN).await;
    let after = peer.stats().await?;
    let mut outcome = Outcome::streamed(warm, sent, &before, &after, elapsed)?;
    outcome.cpu = cpu.and_then(|cpu| cpu.elapsed());
    Drops::end(drops.as_ref(), &mut outcome);
    outcome.batched(batching.since(addr, &send_batch, &calls_before));
    Ok(outcome)
}
