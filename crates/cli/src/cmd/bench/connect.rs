//! `msg bench --mode connect`: the flags that make sense for it, turned
//! into msg-bench's [`Cycles`], and its report.

use std::io::Write;

use anyhow::Context;

use msg_bench::connect::{self, Close, Cycles};
use msg_bench::meta::Meta;
use msg_bench::{Pin, Placement, report};
use msg_net::Transport;

use super::{Bar, BenchArgs, CloseArg, STDOUT, error, one_size};
use crate::args::usage;

/// Runs the connect mode and prints its report.
pub(super) fn run(args: &BenchArgs, transports: Vec<Transport>) -> anyhow::Result<()> {
    // What measures something else, refused rather than ignored.
    for (given, flag, why) in [
        (
            args.addr.is_some(),
            "ADDR",
            "the connect mode measures its built-in listeners (a stream's serves one connection \
             after another, as netperf's TCP_CRR server does)",
        ),
        (
            args.rate.is_some(),
            "--rate",
            "each cycle starts when the last ends",
        ),
        (
            args.io.is_some(),
            "--io",
            "each cycle is blocking system calls on one thread",
        ),
        (
            args.busy_poll,
            "--busy-poll",
            "each cycle sleeps in the kernel as a new connection does",
        ),
        (
            !args.impair.is_empty(),
            "--impair",
            "the connect mode runs on the machine's loopback",
        ),
        (
            args.batch.is_some(),
            "--batch",
            "one request per connection, nothing to batch",
        ),
        (
            args.parallel > 1,
            "--parallel",
            "each cycle is one connection after another, on one thread",
        ),
        // Each named alone: the user gave one, and "--plot and --hgrm
        // does not go" named one that was not given (audit, round nine).
        (
            args.plot.is_some(),
            "--plot",
            "it draws round-trip times; the connect mode's three times are in the table \
             and the JSON",
        ),
        (
            args.hgrm.is_some(),
            "--hgrm",
            "it writes round-trip times; the connect mode's three times are in the table \
             and the JSON",
        ),
        (
            args.auth.auth()?.is_some(),
            "a secret",
            "the connect mode measures the transport's handshake, not msg's",
        ),
    ] {
        if given {
            return Err(usage(format!(
                "{flag} does not go with --mode connect: {why}"
            )));
        }
    }
    // As --tfo is refused without TCP (audit, round fifteen: --close fin
    // --udp was taken without a word).
    if args.close.is_some() && !transports.iter().any(|t| t.caps().tcp_info) {
        return Err(usage(
            "--close sets how TCP connections close, and no TCP is measured: add tcp to \
             --transports (or --tcp), or drop --close",
        ));
    }
    let size = one_size(args, "--mode connect", connect::DEFAULT_SIZE)?;
    // The connect mode measures its built-in listeners only.
    let pin = args.pin.map_or(msg_bench::defaults::pin(false), Pin::from);
    let plan = Cycles {
        transports,
        size,
        close: match args.close {
            None => connect::DEFAULT_CLOSE,
            Some(CloseArg::Fin) => Close::Fin,
            Some(CloseArg::Rst) => Close::Rst,
        },
        tfo: args.tfo,
        warmup: args.warmup,
        duration: args.duration,
        runs: args.runs,
        placement: Placement::new(pin).map_err(error)?,
        timeout: args.timeout.unwrap_or(connect::DEFAULT_TIMEOUT),
        interval: args.interval,
    };
    let meta = Meta::collect(
        plan.placement.to_string(),
        connect::engines(&plan),
        std::env::args().collect(),
    );
    let lines = args.json && args.interval.is_some();
    if lines {
        let shape = report::intervals::Shape::from(&plan);
        report::intervals::write_start(&mut crate::output::stdout(), &meta, &shape)
            .context(STDOUT)?;
    }
    let results = connect::run(&plan, &mut Bar::new(args.json)).map_err(error)?;
    let mut out = crate::output::stdout();
    if args.json {
        let meta = (!lines).then_some(&meta);
        report::connect::write_json(&mut out, meta, &plan, &results).context(STDOUT)?;
    } else {
        report::connect::write_table(&mut out, &plan, &results).context(STDOUT)?;
    }
    out.flush().context(STDOUT)?;
    Ok(())
}
