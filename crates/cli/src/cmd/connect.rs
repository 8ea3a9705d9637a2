//! `msg connect`: a session with one peer, as netcat holds one: each line
//! of stdin goes to the peer (raw: the bytes as read), and what the peer
//! sends is printed as it arrives, both at once.
//!
//! The halves, and the session held to its end, are msg-net's
//! [`session`]: when stdin ends the sending half is closed (a half-close
//! over TCP), and what the peer still sends is printed until it closes
//! too, or sends nothing for `--wait`. The lines are read as `msg send` reads
//! them ([`Source`]).

use std::io;
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;
use msg_net::Event;
use msg_net::connect::connect_any;
use msg_net::limits::Family;
use msg_net::session::{self, HoldError, Incoming, Mode};
use tracing::warn;

use crate::args::{
    ClientArgs, FramingArg, Given, OutputArgs, TransportArg, check_client_modes, parse_peer_addr,
};
use crate::cmd::send::Source;
use crate::output;

#[derive(Debug, Args)]
#[command(mut_arg("timeout", |arg| arg.help(
    "How long to wait to connect (and authenticate), e.g. 500ms, 2s (--wait bounds the replies)"
)))]
pub(crate) struct ConnectArgs {
    #[command(flatten)]
    pub(crate) transport: TransportArg,

    #[arg(
        value_name = "ADDR",
        help = "The peer: HOST:PORT, e.g. 127.0.0.1:9000 or [::1]:9000; with --unix, the socket's path"
    )]
    pub(crate) addr: String,

    /// No header and no framing, for netcat and socat: stdin goes as it
    /// is read, newlines and all (over datagrams and seqpacket, each read
    /// one datagram, as nc sends them). The peer's bytes are printed as
    /// they arrive
    #[arg(long)]
    pub(crate) raw: bool,

    /// How messages are told apart on a byte stream (TCP, Unix, QUIC): `msg`
    /// frames, or `length`, a bare 4-byte big-endian length and the body
    #[arg(long, value_enum, value_name = "FRAMING", default_value_t = FramingArg::Msg)]
    pub(crate) framing: FramingArg,

    /// Strip "\r\n" from the end of each stdin line, not only "\n"
    #[arg(long)]
    pub(crate) crlf: bool,

    /// Once stdin ends, how long the peer may send nothing before the
    /// session ends: what it sends is printed until it closes, or is quiet
    /// this long
    #[arg(long, value_name = "DURATION", default_value = "2s", value_parser = humantime::parse_duration)]
    pub(crate) wait: Duration,

    /// One JSON object per line: {"peer":..,"seq":..,"len":..,"body":..}
    /// ("body_b64" when the body is not UTF-8; no "seq" with --raw or
    /// --framing length, which number nothing)
    #[arg(long, conflicts_with_all = ["null", "hex"])]
    pub(crate) json: bool,

    #[command(flatten)]
    pub(crate) output: OutputArgs,

    #[command(flatten)]
    pub(crate) client: ClientArgs,

    /// The flags named on the command line (`cli::parse`).
    #[arg(skip)]
    pub(crate) given: Given,
}

pub(crate) async fn run(args: ConnectArgs) -> anyhow::Result<()> {
    let transport = args.transport.transport();
    let addr = parse_peer_addr(transport, &args.addr)?;
    let caps = transport.caps();
    args.given
        .check_transport_flags(args.transport.chosen_flag(), args.raw)?;
    let options = &args.client.options(transport, &addr)?;
    let authenticated = options.auth.is_some();
    check_client_modes(args.raw, args.framing, &args.transport, authenticated, &[])?;
    let mode = if args.raw {
        Mode::Raw
    } else {
        Mode::Framed(args.framing.into())
    };
    let (halves, addr) = connect_any(transport, &addr, |addr| {
        session::open(transport, addr, mode, options)
    })
    .await?;
    let limit = msg_net::length::Framing::from(args.framing).body_limit(
        transport,
        addr.inet().as_ref().map(Family::of),
        args.client.tcp.max_frame,
        authenticated,
        args.raw,
    );
    let mut source = Source::new(&[], limit, args.crlf, args.raw);
    // Raw TCP has no messages: its bytes are printed as they come, with
    // nothing after each read.
    let printer = args
        .output
        .format(args.json, args.raw && !caps.keeps_boundaries);
    // Printed from a thread of its own, as a listener prints: a stdout
    // that stops draining then blocks that thread, and `--wait` still
    // ends the session.
    let (printing, events) = output::start_printing(printer, None)?;
    let shown = async |incoming: Incoming| {
        let event = Event::Message {
            peer: addr.clone(),
            seq: incoming.seq,
            body: incoming.body,
        };
        match events.deliver(event).await {
            true => Ok(()),
            // The thread stopped: its own error is read below.
            false => Err(io::Error::from(io::ErrorKind::BrokenPipe)),
        }
    };
    let held = session::hold(halves, source.bodies(), shown, args.wait).await;
    // The queue's last sender: the printing thread ends once it has
    // printed what is queued. Kept, it waited out its second and warned
    // that stdout was blocked after every session (audit, round six).
    drop(events);
    let mut ended = printing.close();
    // What stopped the printing thread (stdout closed, a full disk) says
    // more than the session's end it caused.
    let drained = ended.drain().await.context("cannot write to stdout")?;
    if !drained && held.is_err() {
        warn!("stdout is blocked: exiting without printing what is queued");
    }
    held.map_err(|err| match err {
        HoldError::Body(err) => source.error(err),
        HoldError::Recv(err) => err.into(),
        HoldError::Shown(err) => err.into(),
        err @ HoldError::Unfinished { .. } => anyhow::anyhow!("{err} (msg connect --wait)"),
        err => err.into(),
    })?;
    // What the peer sent and stdout did not take is lost: not a success
    // (audit, round ten: a reader that paused past --wait got 64 KiB of
    // 2 MB, and msg exited 0).
    if !drained {
        anyhow::bail!(
            "stdout is blocked: exiting without printing what is queued (it took nothing for a \
             second after the session ended)"
        );
    }
    Ok(())
}
