//! `msg demo`: lessons that run on loopback, in one process, and show the
//! bytes.
//!
//! - `sticky`: why TCP needs framing. Raw TCP glues two writes into one read
//!   and cuts one write into many; msg's length prefix gives the messages
//!   back; UDP keeps each datagram whole but limits its size.
//!
//! This is the one place in the binary that calls msg-tcp and msg-udp
//! directly rather than through msg-net: a demo of the codec has to show
//! the codec. `.ci/run` fails if any other file under `crates/cli/src`
//! names them.

use clap::{Args, Subcommand};

mod sticky;

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
  msg demo sticky --nodelay=false  # the same with Nagle's algorithm on
  msg demo sticky --json           # every read as data, bytes in base64")]
    Sticky(sticky::StickyArgs),
}

pub(crate) fn run(args: DemoArgs) -> anyhow::Result<()> {
    match args.demo {
        Demo::Sticky(args) => sticky::run(&args),
    }
}
