//! The command line: every flag, its default and its help text.

use std::time::Duration;

use clap::{ArgAction, Args, Parser, Subcommand, ValueEnum};

use crate::bench::BenchArgs;

const EXAMPLES: &str = "\
Examples:
  msg listen --udp                         # print UDP messages sent to 127.0.0.1:9000
  msg send --udp 127.0.0.1:9000 hello      # send one
  msg listen --tcp --reply upper [::1]:9000
  msg send --tcp --reply [::1]:9000 hi there
  msg bench                                # UDP vs TCP, side by side, on loopback";

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
  msg bench --udp 127.0.0.1:9000           # against `msg listen --udp --reply echo`
  msg bench --mode throughput --json"
    )]
    Bench(BenchArgs),
}

/// Exactly one transport.
#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub(crate) struct TransportArg {
    /// Use UDP: one message per datagram
    #[arg(long)]
    pub(crate) udp: bool,

    /// Use TCP: a stream, each message behind a 4-byte length
    #[arg(long)]
    pub(crate) tcp: bool,
}

impl TransportArg {
    pub(crate) fn transport(&self) -> Transport {
        if self.udp {
            Transport::Udp
        } else {
            Transport::Tcp
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Transport {
    Udp,
    Tcp,
}

impl Transport {
    /// The name used in logs, tables and JSON.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Udp => "udp",
            Self::Tcp => "tcp",
        }
    }
}

/// TCP settings shared by send and listen.
#[derive(Debug, Args)]
pub(crate) struct TcpArgs {
    /// Largest TCP frame accepted or sent, in bytes (header included)
    #[arg(long, value_name = "BYTES", default_value_t = msg_tcp::DEFAULT_MAX_FRAME,
          value_parser = parse_max_frame)]
    pub(crate) max_frame: usize,

    /// Set TCP_NODELAY, so each message leaves at once (--nodelay=false lets
    /// Nagle's algorithm coalesce small writes)
    #[arg(long, value_name = "BOOL", default_value_t = true, action = ArgAction::Set,
          num_args = 0..=1, default_missing_value = "true", require_equals = true)]
    pub(crate) nodelay: bool,
}

impl TcpArgs {
    pub(crate) fn options(&self) -> msg_tcp::Options {
        msg_tcp::Options {
            max_frame: self.max_frame,
            nodelay: self.nodelay,
        }
    }
}

#[derive(Debug, Args)]
pub(crate) struct SendArgs {
    #[command(flatten)]
    pub(crate) transport: TransportArg,

    // (`help` rather than a doc comment: rustdoc would read "[::1]" as a link.)
    #[arg(value_name = "ADDR", value_parser = parse_host_port,
          help = "Where to send: HOST:PORT, e.g. 127.0.0.1:9000 or [::1]:9000")]
    pub(crate) addr: String,

    /// Messages to send, one per argument; with none, each line of stdin is
    /// one message
    #[arg(value_name = "MESSAGE")]
    pub(crate) messages: Vec<String>,

    /// Wait for a reply to each message and print it (an error after
    /// --timeout: a lost UDP reply never hangs)
    #[arg(long)]
    pub(crate) reply: bool,

    /// No header and no framing: the bytes alone, for netcat and socat
    #[arg(long)]
    pub(crate) raw: bool,

    /// How long to wait to connect and for each reply, e.g. 500ms, 2s
    #[arg(long, value_name = "DURATION", default_value = "2s", value_parser = humantime::parse_duration)]
    pub(crate) timeout: Duration,

    #[command(flatten)]
    pub(crate) tcp: TcpArgs,
}

#[derive(Debug, Args)]
pub(crate) struct ListenArgs {
    #[command(flatten)]
    pub(crate) transport: TransportArg,

    #[arg(value_name = "ADDR", default_value = "127.0.0.1:9000", value_parser = parse_host_port,
          help = "Where to listen: HOST:PORT, e.g. 127.0.0.1:9000 or [::1]:9000")]
    pub(crate) addr: String,

    /// Exit after N messages (with --raw over TCP: N reads)
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) count: Option<u64>,

    /// Answer each message
    #[arg(long, value_enum, default_value_t = Reply::None)]
    pub(crate) reply: Reply,

    /// No header and no framing: print the bytes as they arrive (over TCP,
    /// that shows the stream has no message boundaries)
    #[arg(long)]
    pub(crate) raw: bool,

    /// One JSON object per line: {"peer":..,"seq":..,"len":..,"body":..}
    /// ("body_b64" when the body is not UTF-8)
    #[arg(long)]
    pub(crate) json: bool,

    /// Poll the sockets in a loop instead of sleeping until a message
    /// arrives: lower latency when the peer runs on another core, at the
    /// cost of a core kept 100 % busy
    #[arg(long)]
    pub(crate) busy_poll: bool,

    #[command(flatten)]
    pub(crate) tcp: TcpArgs,
}

/// What a listener answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Reply {
    /// The same body back
    Echo,
    /// The body with ASCII letters upper-cased
    Upper,
    /// Nothing (pings are still answered)
    None,
}

impl Reply {
    /// The reply body for `body`, or `None` when there is no reply.
    pub(crate) fn answer(self, body: &bytes::Bytes) -> Option<bytes::Bytes> {
        match self {
            Self::Echo => Some(body.clone()),
            Self::Upper => Some(body.to_ascii_uppercase().into()),
            Self::None => None,
        }
    }
}

/// A frame must hold at least a header and its length must fit the `u32`
/// prefix.
fn parse_max_frame(s: &str) -> Result<usize, String> {
    let n: u64 = s
        .parse()
        .map_err(|_| format!("expected a number of bytes, got '{s}'"))?;
    let min = msg_proto::HEADER_LEN as u64;
    let max = u64::from(u32::MAX);
    if !(min..=max).contains(&n) {
        return Err(format!(
            "must be from {min} (one header) to {max} bytes, got {n}"
        ));
    }
    Ok(n as usize)
}

/// Accepts `HOST:PORT` with a numeric port and a non-empty host (IPv6
/// literals in brackets); resolving the host is left to run time, where a
/// failure is a runtime error rather than a usage error.
pub(crate) fn parse_host_port(s: &str) -> Result<String, String> {
    if s.parse::<std::net::SocketAddr>().is_ok() {
        return Ok(s.to_owned());
    }
    let usage = || format!("expected HOST:PORT such as 127.0.0.1:9000 or [::1]:9000, got '{s}'");
    let (host, port) = s.rsplit_once(':').ok_or_else(usage)?;
    if host.is_empty() || host.contains(':') || port.parse::<u16>().is_err() {
        return Err(usage());
    }
    Ok(s.to_owned())
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
    fn addresses() {
        for ok in [
            "127.0.0.1:9000",
            "[::1]:9000",
            "localhost:1",
            "example.com:65535",
        ] {
            assert_eq!(parse_host_port(ok).as_deref(), Ok(ok));
        }
        for bad in [
            "127.0.0.1",
            "::1:9000",
            ":9000",
            "host:",
            "host:65536",
            "host:x",
            "",
        ] {
            assert!(parse_host_port(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn nodelay_takes_an_explicit_value() {
        let cli = Cli::try_parse_from(["msg", "listen", "--tcp", "--nodelay=false"]).unwrap();
        let Command::Listen(args) = cli.command else {
            panic!("listen")
        };
        assert!(!args.tcp.nodelay);
        assert!(Cli::try_parse_from(["msg", "listen", "--tcp", "--udp"]).is_err());
        assert!(Cli::try_parse_from(["msg", "listen"]).is_err());
        assert!(Cli::try_parse_from(["msg", "listen", "--udp", "--count", "0"]).is_err());
    }
}
