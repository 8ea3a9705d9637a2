//! The top of the command line: `msg`, its global flags and its
//! subcommands. Each subcommand's own flags live beside its code in `cmd/`,
//! and the groups they share in `args`.

use clap::{ArgAction, Args, CommandFactory, FromArgMatches, Parser, Subcommand};

use crate::args::Given;

use crate::cmd::bench::BenchArgs;
use crate::cmd::completions::{CompletionsArgs, ManArgs};
use crate::cmd::connect::ConnectArgs;
use crate::cmd::demo::DemoArgs;
use crate::cmd::exec::ExecArgs;
use crate::cmd::keygen::KeygenArgs;
use crate::cmd::listen::ListenArgs;
use crate::cmd::send::SendArgs;

const EXAMPLES: &str = "\
Examples:
  msg listen --udp                         # print UDP messages sent to 127.0.0.1:9000
  msg send --udp 127.0.0.1:9000 hello      # send one
  msg listen --tcp --reply upper [::1]:9000
  msg send --tcp --reply [::1]:9000 hi there
  msg connect --tcp [::1]:9000             # a session: stdin lines out, replies in
  msg bench                                # UDP vs TCP, side by side, on loopback
  msg demo sticky                          # why TCP needs framing, with the bytes
  msg demo unix                            # UDP loses, a Unix datagram socket pushes back
  msg demo reuseaddr                       # TIME_WAIT, SO_REUSEADDR and SO_REUSEPORT
  sudo msg demo hol                        # head-of-line blocking: TCP vs QUIC streams";

/// Send messages over UDP and TCP, and measure how the two differ.
///
/// UDP keeps each message whole in one datagram (at most 65,507 bytes on
/// IPv4) but may lose it; TCP never loses bytes but is a stream, so msg
/// frames each message with a 4-byte length.
#[derive(Debug, Parser)]
#[command(name = "msg", version, after_help = EXAMPLES)]
pub(crate) struct Cli {
    #[command(flatten)]
    pub(crate) verbosity: Verbosity,

    #[command(subcommand)]
    pub(crate) command: Command,
}

/// `msg`'s command line, with the flags its subcommand was given (not
/// left at their defaults) told to the subcommands that refuse a flag
/// that would do nothing.
pub(crate) fn parse() -> Result<Cli, clap::Error> {
    let mut command = Cli::command();
    let matches = command.try_get_matches_from_mut(std::env::args_os())?;
    let mut cli = Cli::from_arg_matches(&matches).map_err(|err| err.format(&mut command))?;
    if let Some((name, sub)) = matches.subcommand() {
        let given = command
            .find_subcommand(name)
            .map(|command| Given::of(command, sub))
            .unwrap_or_default();
        match &mut cli.command {
            Command::Send(args) => args.given = given,
            Command::Connect(args) => args.given = given,
            Command::Listen(args) => args.given = given,
            Command::Exec(args) => args.given = given,
            _ => {}
        }
    }
    Ok(cli)
}

/// Log levels: logs go to stderr; stdout carries only data.
#[derive(Debug, Args)]
pub(crate) struct Verbosity {
    /// More logging on stderr (-v info, -vv debug, -vvv trace); RUST_LOG
    /// overrides
    #[arg(short, long, action = ArgAction::Count, global = true)]
    pub(crate) verbose: u8,

    /// Only errors on stderr
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub(crate) quiet: bool,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Send messages to a listener
    #[command(after_help = "\
Examples:
  msg send --udp 127.0.0.1:9000 hello world     # two messages, two datagrams
  printf 'a\\nb\\n' | msg send --tcp 127.0.0.1:9000 # each stdin line is a message
  msg send --tcp --reply [::1]:9000 ping        # wait for and print the reply
  msg send --udp --raw 127.0.0.1:9000 hi        # plain datagram, for socat/netcat")]
    Send(SendArgs),
    /// A two-way session, as netcat holds one: stdin lines to the peer,
    /// the peer's messages to stdout as they arrive
    #[command(after_help = "\
Examples:
  msg connect --tcp 127.0.0.1:9000           # against `msg listen --tcp --reply upper`
  printf 'a\\nb\\n' | msg connect --udp 127.0.0.1:9000
  msg connect --tcp --raw 127.0.0.1:7        # bytes both ways, like nc
  msg connect --tcp --framing length 127.0.0.1:9000   # a length-prefixed peer")]
    Connect(ConnectArgs),
    /// Receive messages and print each body on its own line
    #[command(after_help = "\
Examples:
  msg listen --udp                         # 127.0.0.1:9000
  msg listen --tcp --reply echo [::1]:9000 # an echo server
  msg listen --udp --json --count 10       # one JSON object per message, then exit
  msg listen --udp --raw                   # accepts `printf hi | socat - UDP:127.0.0.1:9000`")]
    Listen(ListenArgs),
    /// Measure UDP and TCP side by side: round-trip latency and throughput
    #[command(
        args_override_self = true,
        after_help = "\
Examples:
  msg bench                                # both transports, built-in listeners, loopback
  msg bench --tcp --sizes 64,1024 --runs 5
  msg bench --udp 127.0.0.1:9000           # against a `msg listen --udp` there (any --reply)
  msg bench --mode throughput --json"
    )]
    Bench(BenchArgs),
    /// Run a command on an authenticated `msg listen --tcp --exec`
    Exec(ExecArgs),
    /// Lessons on loopback, with the bytes: `msg demo sticky` shows why TCP
    /// needs framing and UDP does not, `msg demo unix` what a full receiver
    /// does to UDP and to a Unix datagram socket, `msg demo reuseaddr` why a
    /// restarted server needs SO_REUSEADDR and what SO_REUSEPORT shares,
    /// `msg demo hol` how one lost packet holds up later TCP messages but
    /// only its own QUIC stream
    Demo(DemoArgs),
    /// Make a new shared secret for --secret-file or MSG_SECRET: 32 random
    /// bytes as 64 hex digits (the text is the secret)
    Keygen(KeygenArgs),
    /// Print a shell completion script, e.g. `msg completions bash > /etc/bash_completion.d/msg`
    Completions(CompletionsArgs),
    /// Print the man page (roff), e.g. `msg man | man -l -`
    Man(ManArgs),
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn nodelay_takes_an_explicit_value() {
        for nodelay in [&["--nodelay=false"][..], &["--nodelay", "false"]] {
            let cli =
                Cli::try_parse_from(["msg", "listen", "--tcp"].iter().chain(nodelay)).unwrap();
            let Command::Listen(args) = cli.command else {
                panic!("listen")
            };
            assert!(!args.tcp.nodelay, "{nodelay:?}");
            assert_eq!(args.addr().unwrap(), "127.0.0.1:9000", "{nodelay:?}");
        }
        // A missing value is reported against --nodelay, not the address.
        let err = Cli::try_parse_from(["msg", "listen", "--tcp", "--nodelay", "127.0.0.1:9"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("--nodelay"), "{err}");
        assert!(Cli::try_parse_from(["msg", "listen", "--tcp", "--udp"]).is_err());
        assert!(Cli::try_parse_from(["msg", "listen"]).is_err());
        assert!(Cli::try_parse_from(["msg", "listen", "--udp", "--count", "0"]).is_err());
    }
}
