//! The blocking engine: one closed-loop ping-pong on the calling thread
//! over a `msg_net::blocking::Link` (std sockets, a blocking `recv`, or
//! busy polling a `recv` with `MSG_DONTWAIT` in a loop), timed and checked
//! as the tokio engine's closed loop is; or a throughput stream, one
//! blocking `send` per message as sockperf's throughput mode makes,
//! counted by the listener as the tokio engine's stream is.
//!
//! With a secret it authenticates as the tokio link does (over TCP the
//! same handshake, over UDP the same tagged datagrams); a batched UDP
//! stream goes out through msg-udp's runtime-free `sendmmsg` (and GSO),
//! counted as the tokio engine's batched stream is.
//!
//! Its built-in listeners (`msg_net::blocking::serve`, a thread for UDP
//! and one to accept TCP, plus one per connection) are in `servers`. The
//! open loop, pacing and impairments stay on tokio
//! ([`Plan::check`](crate::Plan::check) refuses them here).

use std::thread;
use std::time::Instant;

use bytes::Bytes;
use msg_net::blocking::{self, LinkOptions, Received};
use msg_net::limits::TcpOptions;
use msg_net::ping::{Ask, Done, Next, PingClient};
use msg_net::{PeerAddr, SendBatch, Transport};
use msg_proto::{Kind, Message};

use super::batched::Discards;
use super::{Drops, Outcome, UDP_DRAIN};
use crate::cpu::Sample;
use crate::engine::start::Start;
use crate::error::{Error, RunError};
use crate::interval::{Sink, Ticker};
use crate::settings::{Batching, Mode, Settings, Target};

/// Measures one run of `size`-byte messages against `target` on this
/// thread: a closed-loop ping-pong, or a throughput stream.
///
/// # Errors
///
/// As the tokio client's: the target cannot be reached, closes the
/// connection, answers what was not asked, or (over TCP) does not answer
/// within the timeout.
pub(crate) fn measure(
    target: &Target,
    size: usize,
    settings: &Settings,
    busy_poll: bool,
    sink: Sink<'_>,
) -> Result<Outcome, Error> {
    let link = connect(target, settings, busy_poll)?;
    measure_on(link, target, size, settings, None, sink)
}

/// A connection (or a connected socket) to `target`, authenticated if it
/// has a secret.
///
/// # Errors
///
/// When the target cannot be reached or refuses the handshake.
pub(crate) fn connect(
    target: &Target,
    settings: &Settings,
    busy_poll: bool,
) -> Result<blocking::Link, Error> {
    let options = LinkOptions {
        tcp: TcpOptions {
            nodelay: target.nodelay,
            ..TcpOptions::default()
        },
        // Each send's limit too: over a transport that loses nothing, a
        // listener that lags is waited for as a late reply is. UDP's
        // 200 ms here failed a throughput run whose listener paused for
        // 200 ms (`timed out`; audit, round eight).
        timeout: settings.reply_timeout(target.transport),
        busy_poll,
    };
    let mut link = blocking::Link::connect(target.transport, target.addr.clone(), &options)?;
    if let Some(auth) = &target.auth {
        link.authenticate(auth)?;
    }
    Ok(link)
}

/// As [`measure`], over `link`, made by [`connect`].
///
/// # Errors
///
/// As [`measure`].
pub(crate) fn measure_on(
    link: blocking::Link,
    target: &Target,
    size: usize,
    settings: &Settings,
    start: Option<&Start>,
    sink: Sink<'_>,
) -> Result<Outcome, Error> {
    let body = Bytes::from(vec![b'm'; size]);
    let mut peer = Peer {
        link,
        client: PingClient::new(
            target.transport,
            settings.reply_timeout(target.transport),
            body.clone(),
        ),
        transport: target.transport,
        settings,
        arrived: None,
        ping: None,
    };
    if settings.mode == Mode::Pingpong {
        // Framed once: each round trip writes only the ping's header anew,
        // and takes its pong from the bytes as they arrived.
        peer.ping = peer.link.prepare(peer.client.ping())?;
    }
    if settings.mode == Mode::Throughput {
        let batching = settings
            .batch
            .as_ref()
            .filter(|_| target.transport.caps().batches);
        let drops = || Drops::start(target);
        return throughput(
            &mut peer,
            (body, start),
            batching.map(|b| (b, &target.addr)),
            drops,
            sink,
        );
    }
    let warm_until = Instant::now() + settings.warmup;
    loop {
        let now = peer.arrived.take().unwrap_or_else(Instant::now);
        if now >= warm_until {
            break;
        }
        peer.exchange(now)?;
    }
    let mut outcome = Outcome::new();
    let cpu = Sample::now();
    let start = Instant::now();
    let end = start + settings.duration;
    let mut ticker =
        Ticker::new(settings.interval, start, &outcome, peer.tcp_info()?, sink).until(end);
    peer.arrived = None;
    loop {
        // The clock is read once per round trip, as bench/floor.c reads
        // it: the reply's arrival starts the next ping (the histogram's
        // record in between counts towards it). A second read here cost
        // a `clock_gettime` and the arithmetic around it, about 70
        // instructions of a round trip's 2,500 in user space.
        let mut now = peer.arrived.take().unwrap_or_else(Instant::now);
        if now >= end {
            outcome.elapsed = now - start;
            ticker.finish(now, &outcome, true, peer.tcp_info()?);
            outcome.cpu = cpu.and_then(|cpu| cpu.elapsed());
            return Ok(outcome);
        }
        if ticker.due(now) {
            ticker.tick(now, &outcome, true, peer.tcp_info()?);
            // The next round trip starts after the tick, not before it.
            now = Instant::now();
        }
        outcome.sent += 1;
        if let Some(rtt) = peer.exchange(now)? {
            outcome.record(rtt);
        }
    }
}

/// One throughput run: `Discard`s for the duration, each one `send` that
/// blocks while the send buffer is full (as sockperf's throughput client
/// does), or with `batching` many per `sendmmsg`, between two statistics
/// pings that ask the listener what it counted. Loss is what was sent and
/// not counted, as on tokio.
fn throughput(
    peer: &mut Peer,
    (body, start): (Bytes, Option<&Start>),
    batching: Option<(&Batching, &PeerAddr)>,
    drops: impl Fn() -> Option<Drops>,
    sink: Sink<'_>,
) -> Result<Outcome, Error> {
    let settings = peer.settings;
    let mut discard = Message::new(Kind::Discard, 0, body);
    let mut batched = batching.map(|(batching, addr)| Batched {
        discards: Discards::new(&discard, batching.size),
        send: SendBatch::new().with_gso(batching.gso),
        batching,
        addr,
    });
    let warmup = super::warm_up_for(settings, start.map(|start| start.warm_until));
    let warm = peer.stream(
        &mut discard,
        Instant::now() + warmup,
        batched.as_mut(),
        None,
    )?;
    let before = peer.stats()?;
    if let Some(start) = start {
        start.counted()?;
    }
    let calls_before = batched.as_ref().map(|b| b.batching.before(b.addr, &b.send));
    let drops = drops();
    let cpu = Sample::now();
    let start = Instant::now();
    let tcp = peer.tcp_info()?;
    // One end for the ticker and the stream: the intervals end with it.
    let end = start + settings.duration;
    let mut ticker = Ticker::new(settings.interval, start, &Outcome::new(), tcp, sink).until(end);
    let sent = peer.stream(&mut discard, end, batched.as_mut(), Some(&mut ticker))?;
    // As on tokio: over UDP the rate at the receiver is what arrived over
    // the time of sending (what it has not taken by then is lost); over
    // TCP, which loses nothing, it counts until the listener has answered
    // the statistics ping queued behind the stream.
    let udp_elapsed = (!peer.transport.caps().reliable).then(|| {
        let elapsed = start.elapsed();
        thread::sleep(UDP_DRAIN);
        elapsed
    });
    let after = peer.stats()?;
    let elapsed = udp_elapsed.unwrap_or_else(|| start.elapsed());
    let mut outcome = Outcome::streamed(warm, sent, &before, &after, elapsed)?;
    outcome.check_stream(peer.transport.caps().reliable)?;
    // Until the listener has answered the last statistics ping: what it
    // spent taking the stream in is counted whole.
    outcome.cpu = cpu.and_then(|cpu| cpu.elapsed());
    Drops::end(drops.as_ref(), &mut outcome);
    if let Some((b, before)) = batched.zip(calls_before) {
        outcome.batched(b.batching.since(b.addr, &b.send, &before));
    }
    Ok(outcome)
}

/// A batched stream's state: its messages, its send buffer and counts,
/// and where the listener's counts are read.
struct Batched<'a> {
    discards: Discards,
    send: SendBatch,
    batching: &'a Batching,
    addr: &'a PeerAddr,
}

/// The connection and the client's side of the conversation on it.
struct Peer<'a> {
    link: blocking::Link,
    client: PingClient,
    transport: Transport,
    settings: &'a Settings,
    /// When the last reply arrived, if the last round trip got one.
    arrived: Option<Instant>,
    /// The ping, framed once ([`blocking::Link::prepare`]): a ping-pong's
    /// round trips are sent from it and their pongs read undecoded
    /// ([`PingClient::on_pong_bytes`]). `None` over an authenticated link,
    /// and in a throughput run.
    ping: Option<blocking::Prepared>,
}

impl Peer<'_> {
    /// Sends `Discard`s until `end` (the ticker's, when it has one), as
    /// fast as the socket takes them, one per `send` or a batch per
    /// `sendmmsg`; returns how many.
    fn stream(
        &mut self,
        discard: &mut Message,
        end: Instant,
        mut batched: Option<&mut Batched<'_>>,
        mut ticker: Option<&mut Ticker<'_>>,
    ) -> Result<u64, Error> {
        let mut sent = 0;
        // What the ticker is shown: the messages sent so far.
        let mut so_far = Outcome::new();
        // The clock is read once per up to 64 small sends (64 KiB at
        // most): a read costs about as much as encoding a small message,
        // and 64 sends of one take microseconds. A batch is one call.
        let stride = match batched {
            Some(_) => 1,
            None => (65_536 / (discard.body.len() + msg_proto::HEADER_LEN)).clamp(1, 64),
        };
        loop {
            for _ in 0..stride {
                match &mut batched {
                    Some(batched) => {
                        let msgs = batched.discards.next(discard);
                        self.link.send_batch(msgs, &mut batched.send)?;
                        sent += msgs.len() as u64;
                    }
                    None => {
                        discard.seq += 1;
                        self.link.send(discard)?;
                        sent += 1;
                    }
                }
            }
            let now = Instant::now();
            if let Some(ticker) = ticker.as_deref_mut() {
                so_far.sent = sent;
                if now >= end {
                    ticker.finish(now, &so_far, false, self.tcp_info()?);
                } else if ticker.due(now) {
                    ticker.tick(now, &so_far, false, self.tcp_info()?);
                }
            }
            if now >= end {
                return Ok(sent);
            }
        }
    }

    /// `TCP_INFO` over TCP, for the intervals.
    fn tcp_info(&self) -> Result<Option<msg_net::TcpInfo>, Error> {
        if self.settings.interval.is_none() {
            return Ok(None);
        }
        Ok(self.link.tcp_info().map_err(RunError::TcpInfo)?)
    }

    /// Carries out `ask`: sends what the client says, and hands it what
    /// arrives by its deadlines, or that nothing did. A ping that
    /// [`Self::ping`] holds goes out from its bytes and its pong is timed
    /// from its bytes; anything else arrives decoded, as it is.
    fn drive(&mut self, ask: Ask) -> Result<Done, Error> {
        let Self {
            link,
            client,
            settings,
            transport,
            arrived,
            ping,
        } = self;
        let mut next = match (ask, ping.as_mut()) {
            (Ask::Ping(sent), Some(ping)) => {
                let header = client.start_ping(sent)?;
                link.send_prepared(ping, &header)?;
                client.on_sent(Instant::now)
            }
            (ask, _) => client.start(ask),
        };
        loop {
            next = match next {
                Next::Send(msg) => {
                    link.send(msg)?;
                    client.on_sent(Instant::now)
                }
                Next::Recv(deadline) => match receive(link, client, ping.is_some(), deadline)? {
                    Reply::Pong { rtt, at } => {
                        *arrived = Some(at);
                        return Ok(Done::RoundTrip(Some(rtt)));
                    }
                    Reply::Other(Received::Message(reply)) => {
                        let now = Instant::now();
                        *arrived = Some(now);
                        client.on_reply(&reply, now)
                    }
                    Reply::Other(Received::Closed) => return Err(RunError::ListenerClosed.into()),
                    // One receive waits at most the link's timeout (UDP's,
                    // 200 ms), and a reliable transport's deadline is
                    // later (5 s): until then nothing is only nothing yet.
                    // Taken for the deadline, a listener paused for 200 ms
                    // failed the run, "no answer to ping N within 5s"
                    // (audit, round five).
                    Reply::Other(Received::Nothing) if Instant::now() < deadline => {
                        Ok(Next::Recv(deadline))
                    }
                    Reply::Other(Received::Nothing) => client.on_deadline(),
                }
                .map_err(|err| Error::client(err, settings.reply_timeout(*transport)))?,
                Next::Done(done) => return Ok(done),
            };
        }
    }

    /// What the listener has counted: a statistics ping, sent again (up to
    /// a bound) while its answer does not come, as it can be lost over UDP
    /// behind the stream it asks about.
    fn stats(&mut self) -> Result<msg_net::Stats, Error> {
        Ok(self.drive(Ask::Stats)?.stats())
    }

    /// One round trip, the ping leaving at `sent`: its time in
    /// nanoseconds, or `None` if lost (UDP).
    fn exchange(&mut self, sent: Instant) -> Result<Option<u64>, Error> {
        Ok(self.drive(Ask::Ping(sent))?.round_trip())
    }
}

/// What [`receive`] got.
enum Reply {
    /// The pong to the ping in flight, read from its bytes: the round
    /// trip's time in nanoseconds, and when it arrived.
    Pong { rtt: u64, at: Instant },
    /// Anything else, as [`blocking::Link::recv`] has it.
    Other(Received),
}

/// The next reply by `deadline`: with `undecoded`, a pong to the ping in
/// flight is taken from its bytes ([`PingClient::on_pong_bytes`]), and
/// only what is not is decoded.
fn receive(
    link: &mut blocking::Link,
    client: &mut PingClient,
    undecoded: bool,
    deadline: Instant,
) -> Result<Reply, Error> {
    if !undecoded {
        return Ok(Reply::Other(link.recv(deadline)?));
    }
    let mut pong = None;
    let mut take = |message: &[u8]| {
        let at = Instant::now();
        pong = client.on_pong_bytes(message, at).map(|rtt| (rtt, at));
        pong.is_some()
    };
    Ok(match link.recv_or(deadline, &mut take)? {
        Some(other) => Reply::Other(other),
        None => {
            let (rtt, at) = pong.expect("a message is taken only as the pong");
            Reply::Pong { rtt, at }
        }
    })
}
