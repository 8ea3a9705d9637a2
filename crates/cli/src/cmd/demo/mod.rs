//! `msg demo`: lessons that run on loopback, in one process, and show the
//! bytes. The lessons live in msg-demo; this is their flags and where they
//! are printed.
//!
//! - `sticky`: why TCP needs framing. Raw TCP glues two writes into one read
//!   and cuts one write into many; msg's length prefix gives the messages
//!   back; UDP keeps each datagram whole but limits its size.

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

pub(crate) fn run(args: DemoArgs) -> anyhow::Result<()> {
    match args.demo {
        Demo::Sticky(args) => {
            let lesson = msg_demo::sticky::run(args.nodelay)?;
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            if args.json {
                lesson.write_json(&mut out)
            } else {
                lesson.write_text_naming(&mut out, crate::hint::NAGLE_ON)
            }
            .and_then(|()| out.flush())
            .context("cannot write to stdout")
        }
    }
}
