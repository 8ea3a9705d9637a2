//! `msg demo`: lessons that run on loopback, in one process, and show the
//! bytes. The lessons live in msg-demo; this is their flags and where they
//! are printed.
//!
//! - `sticky`: why TCP needs framing. Raw TCP glues two writes into one read
//!   and cuts one write into many; msg's length prefix gives the messages
//!   back; UDP keeps each datagram whole but limits its size.
//! - `unix`: a full receiver. UDP loses what does not fit, silently; a Unix
//!   datagram socket refuses or holds the sender instead (EAGAIN), loses
//!   nothing, and takes datagrams as large as the sender's send buffer.
//!   Linux only.
//! - `reuseaddr`: a server that closes first leaves its port in TIME_WAIT;
//!   a new listener there needs SO_REUSEADDR; two UDP receivers share a
//!   port with SO_REUSEPORT. Linux only.
//! - `hol`: head-of-line blocking. One packet dropped in a private network
//!   namespace: the later messages on a TCP connection sent before its
//!   retransmission came wait for it, and over QUIC only its own stream
//!   does. Linux only, as root.

use std::io::Write;

use anyhow::Context;
use clap::{ArgAction, Args, Subcommand};

#[derive(Debug, Args)]
pub(crate) struct DemoArgs {
    #[command(subcommand)]
    demo: Demo,
}

#[derive(Debug, Subcommand)]
enum Demo {
    /// Show "sticky packets": what each read returns over raw TCP, framed
    /// TCP and UDP, with the bytes
    #[command(after_help = "\
Examples:
  msg demo sticky                  # the four parts, explained
  msg demo sticky --nodelay false  # the same with Nagle's algorithm on
  msg demo sticky --json           # every read as data, bytes in base64")]
    Sticky(StickyArgs),
    /// Show a full receiver: UDP loses datagrams silently, a Unix datagram
    /// socket pushes back on the sender (EAGAIN) and loses none; and how
    /// large each datagram can be (Linux only)
    #[command(after_help = "\
Examples:
  msg demo unix         # the four parts, explained
  msg demo unix --json  # each part's numbers")]
    Unix(JsonArgs),
    /// Show a server's port held in TIME_WAIT, refused without SO_REUSEADDR,
    /// bound with it; two UDP receivers on one port (SO_REUSEPORT); Linux only
    #[command(after_help = "\
Examples:
  msg demo reuseaddr         # both parts, explained (Linux only)
  msg demo reuseaddr --json  # each step's numbers and errors")]
    Reuseaddr(JsonArgs),
    /// Show head-of-line blocking: in a private network namespace one
    /// packet is dropped; over one TCP connection the later messages sent
    /// before its retransmission came wait for it, over QUIC only its own
    /// stream does (Linux, as root)
    #[command(after_help = "\
Examples:
  sudo msg demo hol         # both parts, every message's delay
  sudo msg demo hol --json  # the same as data")]
    Hol(JsonArgs),
}

#[derive(Debug, Args)]
struct StickyArgs {
    /// Set TCP_NODELAY on the demo's TCP sockets, so each write leaves at
    /// once (`--nodelay false`, or `--nodelay=false`, turns Nagle's
    /// algorithm on: a small write then waits for the previous one's
    /// acknowledgement)
    // The value may follow as the next word, as it does for every other
    // subcommand's --nodelay: `msg demo sticky` takes no positional
    // argument it could swallow.
    #[arg(long, value_name = "BOOL", default_value_t = true, action = ArgAction::Set,
          num_args = 0..=1, default_missing_value = "true")]
    nodelay: bool,

    /// Print every read as one JSON document (part, transport, step, read
    /// number, length, bytes in base64) instead of the explained text
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct JsonArgs {
    /// Print each part's numbers, and the errors' text, as one JSON
    /// document instead of the explained text
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(args: DemoArgs) -> anyhow::Result<()> {
    let mut out = std::io::BufWriter::new(crate::output::stdout());
    match args.demo {
        Demo::Sticky(args) => {
            let lesson = msg_demo::sticky::run(args.nodelay)?;
            if args.json {
                lesson.write_json(&mut out)
            } else {
                lesson.write_text_naming(&mut out, crate::hint::NAGLE_ON)
            }
        }
        Demo::Unix(args) => msg_demo::unix::run()?.write(&mut out, args.json),
        Demo::Reuseaddr(args) => msg_demo::reuse::run()?.write(&mut out, args.json),
        Demo::Hol(args) => msg_demo::hol::run()?.write(&mut out, args.json),
    }
    .and_then(|()| out.flush())
    .context("cannot write to stdout")
}
