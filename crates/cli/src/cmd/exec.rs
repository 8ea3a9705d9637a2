//! `msg exec ADDR -- CMD [ARGS]...`: run a command on a `msg listen --tcp
//! --exec` and exit as it did.

use std::ffi::OsString;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use msg_net::connect::connect_any;
use msg_net::text::printable;
use msg_net::{Link, Transport, exec};
use msg_proto::exec::Exit;

use crate::args::{ClientArgs, Given, chosen, parse_peer_addr, usage};
use crate::hint;
use crate::output::stderr_line;

/// Options of `msg exec`.
#[derive(Debug, Args)]
#[command(mut_arg("timeout", |arg| arg.help(
    "How long to wait to connect and authenticate, e.g. 500ms, 2s (the command itself may run \
     as long as the listener's --exec-timeout)"
)))]
#[command(after_help = "\
Examples:
  msg listen --tcp --exec --secret-file ~/.msg-secret     # on the host that runs them
  msg exec --secret-file ~/.msg-secret 127.0.0.1:9000 -- uname -a
  echo hi | msg exec --secret-file s 127.0.0.1:9000 -- tr a-z A-Z  # stdin goes to the command
  msg exec --secret-file s 127.0.0.1:9000 -- sh -c 'ls | wc -l'    # a shell only when asked for
The secret is the same file on both hosts (or MSG_SECRET): no command runs without it.")]
pub(crate) struct ExecArgs {
    #[arg(
        value_name = "ADDR",
        help = "The listener (msg listen --tcp --exec): HOST:PORT; with --unix, the socket's path"
    )]
    pub(crate) addr: String,

    /// Reach the listener over a Unix stream socket (msg listen --unix
    /// PATH --exec): ADDR is its path
    #[arg(long, conflicts_with = "seqpacket")]
    pub(crate) unix: bool,

    /// Reach the listener over a Unix sequenced-packet socket (msg listen
    /// --seqpacket PATH --exec): ADDR is its path
    #[arg(long)]
    pub(crate) seqpacket: bool,

    /// Reach the listener over QUIC (msg listen --quic ADDR --exec),
    /// checking its certificate as --tls does
    #[arg(long, conflicts_with_all = ["unix", "seqpacket"])]
    pub(crate) quic: bool,

    /// The program and its arguments, after `--`; run as they are, with no
    /// shell (ask for one: `-- sh -c '...'`)
    #[arg(value_name = "COMMAND", required = true, last = true, num_args = 1..)]
    pub(crate) command: Vec<OsString>,

    #[command(flatten)]
    pub(crate) client: ClientArgs,

    /// The flags named on the command line (`cli::parse`).
    #[arg(skip)]
    pub(crate) given: Given,
}

/// Runs the command remotely, its output on ours, its stdin from ours; the
/// exit code is the command's (128 + the signal that killed it, as shells
/// give; 1 when the listener refused or stopped it).
pub(crate) async fn run(args: ExecArgs) -> anyhow::Result<ExitCode> {
    if args.client.auth.auth()?.is_none() {
        return Err(usage(
            "msg exec needs the listener's secret: --secret-file PATH or MSG_SECRET",
        ));
    }
    let command = exec::command(&args.command).map_err(|err| usage(err.to_string()))?;
    // Known before anything is sent, as `msg send` knows its messages: a
    // command over the frame limit is a usage error, not a failure after
    // connecting (audit, round five).
    let body = command.to_message().body.len();
    let max_frame = args.client.tcp.max_frame;
    let tag = msg_proto::auth::TAG_LEN;
    let overhead = msg_proto::HEADER_LEN + tag;
    if max_frame < overhead {
        return Err(usage(format!(
            "--max-frame {max_frame} holds no message with a secret: its {}-byte header and \
             {tag}-byte tag alone are {overhead} bytes",
            msg_proto::HEADER_LEN
        )));
    }
    if overhead + body > max_frame {
        let limit = msg_net::limits::BodyLimit::msg_framed(max_frame, true);
        return Err(usage(hint::message_too_large(&limit, body)));
    }
    let (transport, flag) = chosen(
        &[
            (args.unix, Transport::Unix, "--unix"),
            (args.seqpacket, Transport::Seqpacket, "--seqpacket"),
            (args.quic, Transport::Quic, "--quic"),
        ],
        (exec::transport(), "--tcp"),
    );
    args.given.check_transport_flags((transport, flag), false)?;
    let addr = parse_peer_addr(transport, &args.addr)?;
    let options = args.client.options(transport, &addr)?;
    let (link, addr) = connect_any(transport, &addr, |addr| {
        Link::connect(transport, addr, &options)
    })
    .await?;
    let stdin = exec::stdin_pieces(std::io::stdin());
    let exit = exec::run(
        link,
        &command,
        stdin,
        &mut tokio::io::stdout(),
        &mut tokio::io::stderr(),
        exec::SILENCE,
    )
    .await
    .with_context(|| format!("cannot run the command on {addr}"))?;
    // The listener wrote these reasons: shown escaped, as a body would be,
    // so that a hostile listener cannot drive the terminal, and with the
    // flag that would change them named.
    match &exit {
        Exit::Refused(reason) => {
            stderr_line(format_args!(
                "msg: the listener refused the command: {}",
                hint::peer_text(&printable(reason.as_bytes()))
            ));
        }
        Exit::Killed(reason) => {
            stderr_line(format_args!(
                "msg: {}",
                hint::peer_text(&printable(reason.as_bytes()))
            ));
        }
        _ => {}
    }
    Ok(ExitCode::from(u8::try_from(exit.code()).unwrap_or(u8::MAX)))
}
