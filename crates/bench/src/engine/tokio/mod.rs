//! The tokio engine: one measured run over msg-net's [`Link`], a fresh
//! connection, a warm-up, then the measurement.
//!
//! - Closed loop (`pingpong`): one `Ping` in flight; the round trip runs from
//!   its send timestamp to the `Pong`, which carries the timestamp back.
//! - Open loop (`pingpong` at a rate): pings leave on a fixed schedule
//!   whatever the replies do, each stamped with its *intended* send time,
//!   so a stall shows up in every message it delays instead of hiding in the
//!   one that was late (coordinated omission, as wrk2 and HdrHistogram
//!   describe it).
//! - `throughput`: a one-way stream of `Discard` messages; a statistics ping
//!   (`FLAG_STATS`) before and after asks the listener how many arrived and
//!   how many came out of order.
//!
//! Over UDP a reply that does not come within the timeout counts as lost
//! and the run goes on; over TCP nothing is lost, so a missing reply is an
//! error.

use std::time::{Duration, Instant};

use bytes::Bytes;
use msg_net::ping::{Ask, Done, Next, PingClient};
use msg_net::{Link, Stats, TcpInfo, Transport};
use tokio::time::timeout_at;

use super::{Drops, Outcome, Snapshot, batched};
use crate::cpu::Sample;
use crate::engine::start::AsyncStart;
use crate::error::{Error, RunError};
use crate::interval::{Sink, Ticker};
use crate::settings::{Direction, Mode, Settings, Target};

mod open_loop;
mod stream;

use open_loop::open_loop;
use stream::{reverse, throughput};

/// Measures one run of `size`-byte messages against `target`.
///
/// # Errors
///
/// When the target cannot be reached, closes the connection, answers what
/// was not asked, or (over TCP) does not answer within the timeout.
pub(crate) async fn measure(
    target: &Target,
    size: usize,
    settings: &Settings,
    sink: Sink<'_>,
) -> Result<Outcome, Error> {
    let link = connect(target).await?;
    measure_on(link, target, size, settings, settings.direction, None, sink).await
}

/// A link to `target`, authenticated if it has a secret.
///
/// # Errors
///
/// When the target cannot be reached or refuses the handshake.
pub(crate) async fn connect(target: &Target) -> Result<Link, Error> {
    Ok(Link::connect(
        target.transport,
        target.addr.clone(),
        &target.connect_options(),
    )
    .await?)
}

/// As [`measure`], over `link`, made by [`connect`], the stream going
/// `direction` (forward or reverse: a flow of a bidirectional run is one
/// of the two).
///
/// # Errors
///
/// As [`measure`].
pub(crate) async fn measure_on(
    link: Link,
    target: &Target,
    size: usize,
    settings: &Settings,
    direction: Direction,
    start: Option<&AsyncStart>,
    sink: Sink<'_>,
) -> Result<Outcome, Error> {
    let caps = target.transport.caps();
    let timeout = settings.reply_timeout(target.transport);
    let body = Bytes::from(vec![b'm'; size]);
    let mut peer = Peer::new(link, target.transport, timeout, body.clone());
    let outcome = match (settings.mode, settings.rate) {
        (Mode::Pingpong, None) => closed_loop(&mut peer, settings, sink).await,
        (Mode::Pingpong, Some(rate)) => {
            return open_loop(peer, body, settings, rate, sink).await;
        }
        (Mode::Throughput, _) if direction == Direction::Reverse => {
            reverse(&mut peer, size, settings, start.is_some(), sink).await
        }
        (Mode::Throughput, _) if caps.batches && settings.batch.is_some() => {
            batched::throughput(&mut peer, target, body, settings, sink).await
        }
        (Mode::Throughput, rate) => {
            let drops = || Drops::start(target);
            throughput(&mut peer, body, settings, (rate, start), drops, sink).await
        }
    };
    end(peer.link).await;
    outcome
}

/// How long a run's end waits for the listener's (see [`end`]).
pub(super) const END_WAIT: Duration = Duration::from_secs(1);

/// Ends a run's connection. A TLS session ends with close_notify, which
/// a listener checks for: a bare close reads as a session cut on the path
/// (audit, round nine), and the built-in listener warned of every TLS
/// run. The other streams end as they are dropped, with a FIN.
async fn end(link: Link) {
    if link.transport() == Transport::Tls {
        // Every message had its answer or is counted lost already.
        let _ = link.close(END_WAIT, true).await;
    }
}

/// The connection and the client's side of the conversation on it.
#[derive(Debug)]
pub(crate) struct Peer {
    pub(super) link: Link,
    client: PingClient,
    transport: Transport,
    timeout: Duration,
}

impl Peer {
    /// Pings carrying `body` over `link`, their pongs waited for up to
    /// `timeout`.
    pub(crate) fn new(link: Link, transport: Transport, timeout: Duration, body: Bytes) -> Self {
        Self {
            link,
            client: PingClient::new(transport, timeout, body),
            transport,
            timeout,
        }
    }

    /// Carries out `ask`: sends what the client says, and hands it what
    /// arrives by its deadlines, or that nothing did.
    async fn drive(&mut self, ask: Ask) -> Result<Done, Error> {
        let Self {
            link,
            client,
            timeout,
            ..
        } = self;
        let mut next = client.start(ask);
        loop {
            next = match next {
                Next::Send(msg) => {
                    link.send(msg).await?;
                    client.on_sent(Instant::now)
                }
                Next::Recv(deadline) => match timeout_at(deadline.into(), link.recv()).await {
                    Ok(reply) => {
                        let reply = reply?.ok_or(RunError::ListenerClosed)?;
                        client.on_reply(&reply, Instant::now())
                    }
                    Err(_) => client.on_deadline(),
                }
                .map_err(|err| Error::client(err, *timeout))?,
                Next::Done(done) => return Ok(done),
            };
        }
    }

    /// One round trip, the ping leaving now (`sent`, read by the caller);
    /// its time in nanoseconds, or `None` if lost.
    pub(crate) async fn exchange(&mut self, sent: Instant) -> Result<Option<u64>, Error> {
        Ok(self.drive(Ask::Ping(sent)).await?.round_trip())
    }

    /// The kernel's counters now, under an impairment.
    pub(super) fn snapshot(&self, settings: &Settings) -> Result<Option<Snapshot>, Error> {
        if !settings.impaired {
            return Ok(None);
        }
        Snapshot::take(self.link.tcp_info()).map(Some)
    }

    /// `TCP_INFO` over TCP, for the intervals (none without them).
    pub(super) fn tcp_info(&self, settings: &Settings) -> Result<Option<TcpInfo>, Error> {
        if settings.interval.is_none() {
            return Ok(None);
        }
        Ok(self.link.tcp_info().map_err(RunError::TcpInfo)?)
    }

    /// Asks the listener how many `Discard`s it has counted from us.
    pub(super) async fn stats(&mut self) -> Result<Stats, Error> {
        Ok(self.drive(Ask::Stats).await?.stats())
    }
}

async fn closed_loop(
    peer: &mut Peer,
    settings: &Settings,
    sink: Sink<'_>,
) -> Result<Outcome, Error> {
    let warm_until = Instant::now() + settings.warmup;
    loop {
        // One clock read per round trip serves as both the send time and
        // the loop's check.
        let now = Instant::now();
        if now >= warm_until {
            break;
        }
        peer.exchange(now).await?;
    }
    let before = peer.snapshot(settings)?;
    let mut outcome = Outcome::new();
    let cpu = Sample::now();
    let start = Instant::now();
    let end = start + settings.duration;
    let tcp = peer.tcp_info(settings)?;
    let mut ticker = Ticker::new(settings.interval, start, &outcome, tcp, sink).until(end);
    loop {
        let mut now = Instant::now();
        if now >= end {
            ticker.finish(now, &outcome, true, peer.tcp_info(settings)?);
            outcome.elapsed = now - start;
            outcome.cpu = cpu.and_then(|cpu| cpu.elapsed());
            outcome.kernel = before
                .map(|b| Ok::<_, Error>(b.until(&Snapshot::take(peer.link.tcp_info())?)))
                .transpose()?;
            return Ok(outcome);
        }
        if ticker.due(now) {
            ticker.tick(now, &outcome, true, peer.tcp_info(settings)?);
            // The next round trip starts after the tick, not before it.
            now = Instant::now();
        }
        outcome.sent += 1;
        if let Some(rtt) = peer.exchange(now).await? {
            outcome.record(rtt);
        }
    }
}
