//! Flag groups that several subcommands share, their parsers, and the
//! usage-error type.

use std::fmt;
use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgAction, Args, ValueEnum};
use msg_net::group::{GroupOptions, Iface};
use msg_net::length::Framing;
use msg_net::limits::{DEFAULT_MAX_FRAME, TcpOptions};
use msg_net::secret::{SECRET_PIPE_TIMEOUT, SecretFileError};
use msg_net::tls::{
    self, ClientOptions, Fingerprint, Identity, ServerOptions, TlsClient, TlsServer, Verify,
};
use msg_net::{Auth, Caps, ConnectOptions, Limits, PeerAddr, Reply, Transport};
use msg_proto::auth::Secret;

use crate::output::Format;

/// An error in what the user asked for rather than in what happened: `main`
/// exits with 2 for it, as clap does for the errors it finds itself.
#[derive(Debug)]
pub(crate) struct UsageError(pub(crate) String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// A usage error, for arguments that are wrong only in combination.
pub(crate) fn usage(msg: impl Into<String>) -> anyhow::Error {
    UsageError(msg.into()).into()
}

/// The flags named on the command line, as against those left at their
/// defaults: clap's derive gives both as one value, and a flag that would
/// do nothing is refused only when the user named it (`--max-frame` on a
/// UDP send, say), never for its default.
#[derive(Debug, Default, Clone)]
pub(crate) struct Given(Vec<(clap::Id, String)>);

impl Given {
    /// What `matches`, a subcommand's, took from the command line or the
    /// environment: each flag's id, and its name as the user wrote it.
    pub(crate) fn of(command: &clap::Command, matches: &clap::ArgMatches) -> Self {
        use clap::parser::ValueSource;
        let named = |arg: &&clap::Arg| {
            let source = matches.value_source(arg.get_id().as_str());
            matches!(
                source,
                Some(ValueSource::CommandLine | ValueSource::EnvVariable)
            )
        };
        let flag = |arg: &clap::Arg| {
            let name = arg
                .get_long()
                .map_or_else(|| arg.get_id().to_string(), |long| format!("--{long}"));
            (arg.get_id().clone(), name)
        };
        Self(command.get_arguments().filter(named).map(flag).collect())
    }

    /// A usage error for the first of `ids` (flag ids, as the fields are
    /// named) given: `why` is told its name and says why it does nothing.
    pub(crate) fn refuse(
        &self,
        ids: &[&str],
        why: impl FnOnce(&str) -> String,
    ) -> anyhow::Result<()> {
        let first = ids
            .iter()
            .find_map(|id| self.0.iter().find(|(given, _)| given == id));
        match first {
            Some((_, name)) => Err(usage(why(name))),
            None => Ok(()),
        }
    }

    /// Refuses the flags that would do nothing over the transport, or
    /// with `raw`: a frame limit where there are no frames (a datagram, or
    /// the bytes alone), `--nodelay` where there is no Nagle's algorithm to
    /// turn off, and `--crlf` where stdin goes as read, with no lines.
    pub(crate) fn check_transport_flags(
        &self,
        (transport, chosen): (Transport, &str),
        raw: bool,
    ) -> anyhow::Result<()> {
        let caps = transport.caps();
        if !caps.connections {
            self.refuse(&["max_frame"], |flag| {
                format!(
                    "{flag} limits a connection's frames (--tcp, --unix, --seqpacket, --quic), \
                     and {chosen} has no connection: each message is one datagram, which the \
                     kernel limits; drop {flag}"
                )
            })?;
        }
        if raw {
            self.refuse(&["max_frame"], |flag| {
                format!(
                    "{flag} limits msg's frames, and --raw has none (the bytes alone); drop {flag}"
                )
            })?;
        }
        // Raw stdin goes as it is read over every transport (a datagram
        // a read, as nc sends it): there are no lines to strip.
        if raw {
            self.refuse(&["crlf"], |flag| {
                format!(
                    "{flag} strips the end of each stdin line, and --raw over {chosen} sends \
                     stdin as it is read, with no lines; drop {flag}"
                )
            })?;
        }
        if !caps.nagle {
            self.refuse(&["nodelay"], |flag| {
                format!(
                    "{flag} sets TCP_NODELAY, and {chosen} has no Nagle's algorithm to turn off \
                     (each write goes at once); drop {flag}"
                )
            })?;
        }
        Ok(())
    }
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

    /// Use a Unix stream socket, framed as TCP is: ADDR is its path, or
    /// @NAME in Linux's abstract namespace
    #[arg(long)]
    pub(crate) unix: bool,

    /// Use a Unix datagram socket (SOCK_DGRAM): one message per datagram,
    /// as UDP, that a full receiver never loses; ADDR is its path, or @NAME
    #[arg(long)]
    pub(crate) unix_dgram: bool,

    /// Use a Unix sequenced-packet socket (SOCK_SEQPACKET): a connection
    /// that keeps each send's boundary; ADDR is its path, or @NAME
    #[arg(long)]
    pub(crate) seqpacket: bool,

    /// Use QUIC: a connection over UDP, always encrypted (TLS 1.3, ALPN
    /// msg), each message framed on one stream as over TCP; the TLS flags
    /// apply as with --tls (a listener without --cert prints the
    /// fingerprint of a self-signed certificate to pin)
    #[arg(long)]
    pub(crate) quic: bool,

    /// Use QUIC datagrams (RFC 9221): each message in one DATAGRAM frame
    /// of a QUIC connection, framed as over UDP; unreliable (a lost one is
    /// lost), boundaries kept, encrypted, and no larger than one QUIC
    /// packet: the path MTU less QUIC's overhead (about 1,100 to 1,400
    /// bytes), a larger message refused naming the limit. The TLS flags
    /// apply as with --quic
    // In the TLS flags' group too, where the command has them.
    #[arg(long, group = "secure")]
    pub(crate) quic_datagrams: bool,
}

/// The transport of the first of `flags` that is set, with its flag; else
/// `default`, a command's transport when none of its flags is given.
pub(crate) fn chosen(
    flags: &[(bool, Transport, &'static str)],
    default: (Transport, &'static str),
) -> (Transport, &'static str) {
    flags
        .iter()
        .find_map(|&(set, transport, flag)| set.then_some((transport, flag)))
        .unwrap_or(default)
}

impl TransportArg {
    /// The transport chosen and the flag that chose it, as a message names
    /// it: one table, so that the two cannot disagree.
    fn chosen(&self) -> (Transport, &'static str) {
        chosen(
            &[
                (self.udp, Transport::Udp, "--udp"),
                (self.unix, Transport::Unix, "--unix"),
                (self.unix_dgram, Transport::UnixDgram, "--unix-dgram"),
                (self.seqpacket, Transport::Seqpacket, "--seqpacket"),
                (self.quic, Transport::Quic, "--quic"),
                (
                    self.quic_datagrams,
                    Transport::QuicDgram,
                    "--quic-datagrams",
                ),
            ],
            (Transport::Tcp, "--tcp"),
        )
    }

    /// The transport chosen and the flag that chose it.
    pub(crate) fn chosen_flag(&self) -> (Transport, &'static str) {
        self.chosen()
    }

    /// The flag that chose the transport, as a message names it.
    pub(crate) fn flag(&self) -> &'static str {
        self.chosen().1
    }

    pub(crate) fn transport(&self) -> Transport {
        self.chosen().0
    }
}

/// ADDR as `transport` reads it: `HOST:PORT` or `PORT`, or a Unix socket's
/// path; a usage error (exit 2) otherwise, before anything is bound or
/// sent.
pub(crate) fn parse_addr(transport: Transport, addr: &str) -> anyhow::Result<String> {
    transport
        .parse_addr(addr)
        .map_err(|err| usage(err.to_string()))
}

/// [`parse_addr`], for the peer a client reaches: port 0 is what a
/// listener binds to be given a free one, and no peer is there (a UDP send
/// to it failed as "the socket is not connected"; audit, round five).
pub(crate) fn parse_peer_addr(transport: Transport, addr: &str) -> anyhow::Result<String> {
    let parsed = parse_addr(transport, addr)?;
    let port = parsed.rsplit_once(':').map(|(_, port)| port);
    if transport.is_inet() && port == Some("0") {
        return Err(usage(format!(
            "{addr}: port 0 is for a listener, which the system then gives a free port; \
             name the port the peer listens on"
        )));
    }
    Ok(parsed)
}

/// `msg send` to a multicast group or a broadcast address.
#[derive(Debug, Args)]
#[command(next_help_heading = "One to many (UDP)")]
pub(crate) struct GroupArgs {
    /// A group's TTL (IPv6: hop limit): 0 stays on this host, 1 (the
    /// default, as the kernel's) stays on the link, no router forwards it
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(0..=255))]
    pub(crate) ttl: Option<u32>,

    /// Send to the group from this interface: its IPv4 address, its name
    /// (lo, eth0) or its index
    #[arg(long, value_name = "IFACE")]
    pub(crate) iface: Option<Iface>,

    /// Whether this host's own receivers of the group get a copy (the
    /// kernel's default: true)
    #[arg(long = "loop", value_name = "BOOL", action = ArgAction::Set)]
    pub(crate) loopback: Option<bool>,

    /// Allow ADDR to be a broadcast address (SO_BROADCAST); every host on
    /// the link gets it, and --reply waits for every answer
    #[arg(long)]
    pub(crate) broadcast: bool,
}

impl GroupArgs {
    /// The options, refused (exit 2) where they cannot apply to `addr`.
    pub(crate) fn options(&self, transport: Transport, addr: &str) -> anyhow::Result<GroupOptions> {
        let options = GroupOptions {
            iface: self.iface.clone(),
            source: None,
            ttl: self.ttl,
            loopback: self.loopback,
            broadcast: self.broadcast,
        };
        if options != GroupOptions::default() && !transport.caps().one_to_many {
            return Err(usage(format!(
                "--ttl, --iface, --loop and --broadcast are for --udp; {transport} has one peer"
            )));
        }
        if let Ok(dest) = addr.parse() {
            options
                .check_sender(dest)
                .map_err(|err| usage(crate::hint::group(&err)))?;
        }
        Ok(options)
    }
}

/// `msg listen` on a multicast group.
#[derive(Debug, Args)]
#[command(next_help_heading = "One to many (UDP)")]
pub(crate) struct JoinArgs {
    /// Join the group on this interface: its IPv4 address, its name (lo,
    /// eth0) or its index (needed where no route covers the group)
    #[arg(long, value_name = "IFACE")]
    pub(crate) iface: Option<Iface>,

    /// Take only what this host sends to the group (source-specific
    /// multicast, RFC 4607)
    #[arg(long, value_name = "ADDR")]
    pub(crate) source: Option<std::net::IpAddr>,
}

impl JoinArgs {
    /// The group to join and how, when `addr` is one (a UDP multicast
    /// address); a usage error for options that do not fit.
    pub(crate) fn group(
        &self,
        transport: Transport,
        addr: &PeerAddr,
    ) -> anyhow::Result<Option<(SocketAddr, GroupOptions)>> {
        let options = GroupOptions {
            iface: self.iface.clone(),
            source: self.source,
            ..GroupOptions::default()
        };
        match addr.inet().filter(|_| transport.caps().one_to_many) {
            Some(group) if group.ip().is_multicast() || options != GroupOptions::default() => {
                options
                    .check_receiver(group)
                    .map_err(|err| usage(crate::hint::group(&err)))?;
                Ok(Some((group, options)))
            }
            _ if options != GroupOptions::default() => Err(usage(format!(
                "--iface and --source join a multicast group, over --udp; {addr} is not one"
            ))),
            // A group takes datagrams only: a stream listener bound to one
            // waits for connections nobody can make (audit, round eleven:
            // `msg listen --tcp 239.255.0.1:9000` listened).
            _ if addr.inet().is_some_and(|a| a.ip().is_multicast()) => Err(usage(format!(
                "{addr} is a multicast group, which takes datagrams alone: listen on it with \
                 --udp; a {transport} listener needs a unicast address"
            ))),
            _ => Ok(None),
        }
    }
}

/// Connection settings shared by send and listen.
#[derive(Debug, Args)]
pub(crate) struct TcpArgs {
    /// Largest frame accepted or sent on a connection (TCP, Unix, seqpacket,
    /// QUIC), in bytes: the 28-byte header and the body, not the 4-byte
    /// length prefix
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_MAX_FRAME,
          value_parser = msg_net::limits::parse_max_frame)]
    pub(crate) max_frame: usize,

    /// Set TCP_NODELAY, so each message leaves at once (`--nodelay false`
    /// lets Nagle's algorithm coalesce small writes)
    // Always with a value, as `msg bench --nodelay` takes it: an optional
    // value would either swallow the address that follows (`--nodelay
    // 127.0.0.1:9000`) or, with require_equals, leave `--nodelay false` to
    // be read as the address.
    #[arg(long, value_name = "BOOL", default_value_t = true, action = ArgAction::Set)]
    pub(crate) nodelay: bool,
}

impl TcpArgs {
    pub(crate) fn options(&self) -> TcpOptions {
        TcpOptions {
            max_frame: self.max_frame,
            nodelay: self.nodelay,
            ..TcpOptions::default()
        }
    }
}

/// When bodies are shown escaped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum EscapeArg {
    /// When stdout is a terminal
    Auto,
    /// Always, into a pipe or a file too
    Always,
    /// Never: the bytes as they came, on a terminal too
    Never,
}

/// How bodies are printed: listen's messages, send's replies (--reply).
#[derive(Debug, Args)]
pub(crate) struct OutputArgs {
    /// Show control characters in bodies as escapes (`\n`, `\r`, `\x1b`;
    /// bytes that are not UTF-8 as `\xNN`), so that one message is one line
    /// and no peer can drive the terminal. `auto` escapes when stdout is a
    /// terminal; into a pipe or a file the bytes go unchanged
    #[arg(long, value_enum, value_name = "WHEN", default_value_t = EscapeArg::Auto)]
    pub(crate) escape: EscapeArg,

    /// End each body with a NUL byte instead of a newline, for exact
    /// machine reading (`xargs -0`); not with --json
    #[arg(short = '0', long)]
    pub(crate) null: bool,

    /// Show each body as a hex dump, as `hexdump -C` does: offsets, 16
    /// bytes a line, printable ASCII beside them, and the length last
    #[arg(long, conflicts_with_all = ["null", "escape"])]
    pub(crate) hex: bool,
}

impl OutputArgs {
    /// The format for bodies; a `stream` (raw TCP) gets nothing after each
    /// chunk.
    pub(crate) fn format(&self, json: bool, stream: bool) -> Format {
        let end = match (stream, self.null) {
            (true, _) => None,
            (false, true) => Some(b'\0'),
            (false, false) => Some(b'\n'),
        };
        let escape = match self.escape {
            EscapeArg::Auto => std::io::stdout().is_terminal(),
            EscapeArg::Always => true,
            EscapeArg::Never => false,
        };
        Format {
            json,
            end,
            escape,
            hex: self.hex,
            reads: false,
        }
    }
}

/// The shared secret, shared by send, listen and bench. It is read from a
/// file or the environment, never taken as a flag's value: `ps` shows every
/// process's arguments to every user.
#[derive(Debug, Args)]
pub(crate) struct AuthArgs {
    /// Authenticate with the shared secret in this file (or in the
    /// MSG_SECRET environment variable): a listener then accepts only peers
    /// that know it, and every message is tagged. One trailing newline is
    /// not part of the secret
    #[arg(long, value_name = "PATH")]
    pub(crate) secret_file: Option<PathBuf>,

    /// How long a connection's handshake (authentication, TLS, QUIC) may
    /// take before the peer is dropped
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = parse_positive_duration)]
    pub(crate) handshake_timeout: Duration,

    /// --secret-file may be a pipe (a FIFO, or <(command) in bash): read
    /// it within 5s. Without this flag only a regular file is read, so
    /// that a FIFO nobody writes to cannot hang msg silently
    #[arg(long, requires = "secret_file")]
    pub(crate) secret_pipe: bool,
}

/// Where a secret comes from when there is no --secret-file.
pub(crate) const SECRET_ENV: &str = "MSG_SECRET";

impl AuthArgs {
    /// The secret from --secret-file or MSG_SECRET, if either is given.
    ///
    /// # Errors
    ///
    /// A usage error naming the file (or the variable) when it cannot be
    /// read or is empty.
    pub(crate) fn auth(&self) -> anyhow::Result<Option<Auth>> {
        let read =
            msg_net::secret::read_secret(self.secret_file.as_deref(), self.secret_pipe, SECRET_ENV);
        let Some(bytes) = read.map_err(secret_error)? else {
            return Ok(None);
        };
        let secret = Secret::new(bytes).map_err(|err| usage(err.to_string()))?;
        Ok(Some(Auth {
            secret,
            handshake_timeout: self.handshake_timeout,
        }))
    }
}

/// Why a secret could not be read, as a usage error; a pipe not asked for
/// says which flag asks.
fn secret_error(err: SecretFileError) -> anyhow::Error {
    match err {
        SecretFileError::Pipe { path } => usage(format!(
            "the secret file {} is a pipe; add --secret-pipe to read a secret from one \
             (within {})",
            msg_net::text::path_text(&path),
            humantime::format_duration(SECRET_PIPE_TIMEOUT)
        )),
        other => usage(other.to_string()),
    }
}

pub(crate) fn parse_positive_duration(s: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(s).map_err(|err| err.to_string())?;
    if d.is_zero() {
        return Err("must be longer than zero".to_owned());
    }
    Ok(d)
}

/// What a listener answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ReplyArg {
    /// The same body back
    Echo,
    /// The body with ASCII letters upper-cased
    Upper,
    /// Nothing (pings are still answered)
    None,
}

impl From<ReplyArg> for Reply {
    fn from(arg: ReplyArg) -> Self {
        match arg {
            ReplyArg::Echo => Self::Echo,
            ReplyArg::Upper => Self::Upper,
            ReplyArg::None => Self::None,
        }
    }
}

/// How messages are told apart on a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum FramingArg {
    /// msg's frames: a 4-byte length, a 28-byte header, the body
    Msg,
    /// A bare 4-byte big-endian length and the body, for peers that are
    /// not msg (Python's struct.pack("!I", len(m)) + m, tokio-util's
    /// LengthDelimitedCodec)
    Length,
}

impl From<FramingArg> for Framing {
    fn from(arg: FramingArg) -> Self {
        match arg {
            FramingArg::Msg => Self::Msg,
            FramingArg::Length => Self::Length,
        }
    }
}

impl FramingArg {
    /// A usage error when `--framing length` meets a transport (`flag`,
    /// with its `caps`) or a flag it cannot work with: each of `conflicts`
    /// is whether a flag is set, and why it needs msg's frames.
    pub(crate) fn check(
        self,
        caps: Caps,
        flag: &str,
        conflicts: &[(bool, &str)],
    ) -> anyhow::Result<()> {
        if self == Self::Msg {
            return Ok(());
        }
        if caps.keeps_boundaries {
            return Err(usage(format!(
                "--framing length is for a byte stream (--tcp, --unix, --quic): {flag} already \
                 carries each message whole, in a datagram or packet of its own"
            )));
        }
        match conflicts.iter().find(|(set, _)| *set) {
            Some((_, why)) => Err(usage(format!("--framing length: {why}"))),
            None => Ok(()),
        }
    }
}

/// A client's modes checked together, for `msg send` and `msg connect`: a
/// secret needs a header to tag, so neither `--raw` nor `--framing length`
/// takes one, and the two are different framings; `more` adds what else
/// length framing cannot carry.
pub(crate) fn check_client_modes(
    raw: bool,
    framing: FramingArg,
    transport: &TransportArg,
    authenticated: bool,
    more: &[(bool, &str)],
) -> anyhow::Result<()> {
    if authenticated && raw {
        return Err(usage(
            "--raw has no header to authenticate: drop --raw, or the secret",
        ));
    }
    let mut conflicts = vec![(raw, LENGTH_NO_RAW), (authenticated, LENGTH_NO_SECRET)];
    conflicts.extend_from_slice(more);
    framing.check(transport.transport().caps(), transport.flag(), &conflicts)
}

/// What `--framing length` cannot carry, for [`FramingArg::check`].
pub(crate) const LENGTH_NO_RAW: &str =
    "--raw has no framing at all, and length framing is framing: pick one";
pub(crate) const LENGTH_NO_SECRET: &str = "a bare length and body have no header to \
     authenticate: drop the secret (--secret-file, MSG_SECRET), or use --framing msg";

/// TLS on a listener: `msg listen --tls`, and `--quic`, which is always
/// inside TLS: the flags below need one or the other (the group
/// `secure`).
#[derive(Debug, Args)]
#[command(next_help_heading = "TLS")]
#[command(group = clap::ArgGroup::new("secure").args(["tls", "quic"]).multiple(true))]
pub(crate) struct TlsListenArgs {
    /// Encrypt every connection with TLS (over --tcp, --unix or
    /// --seqpacket). Without --cert and --key, a new self-signed
    /// certificate is made at start and its SHA-256 fingerprint printed,
    /// for clients to pin with --tls-fingerprint
    #[arg(long)]
    pub(crate) tls: bool,

    /// The certificate chain to present, in PEM, this listener's own first
    #[arg(long, value_name = "PATH", requires_all = ["secure", "key"])]
    pub(crate) cert: Option<PathBuf>,

    /// The certificate's private key, in PEM (read as a secret file is: a
    /// regular file, with a warning when others may read it)
    #[arg(long, value_name = "PATH", requires_all = ["secure", "cert"])]
    pub(crate) key: Option<PathBuf>,

    /// Mutual TLS: serve only clients that present a certificate signed by
    /// a CA in this PEM file (msg send --client-cert)
    #[arg(long, value_name = "PATH", requires = "secure")]
    pub(crate) client_ca: Option<PathBuf>,
}

impl TlsListenArgs {
    /// The listener's TLS, for a listener on `addr` over `transport`; a
    /// usage error (exit 2) for a transport without streams or a file that
    /// cannot be used.
    pub(crate) fn server(
        &self,
        transport: Transport,
        addr: &PeerAddr,
        handshake_timeout: Duration,
    ) -> anyhow::Result<Option<TlsServer>> {
        if !self.tls && !transport.caps().encrypted {
            return Ok(None);
        }
        check_tls_transport(transport)?;
        let options = ServerOptions {
            identity: Identity::of(self.cert.clone().zip(self.key.clone()), addr),
            client_ca: self.client_ca.clone(),
            handshake_timeout,
        };
        TlsServer::new(&options)
            .map(Some)
            .map_err(|err| usage(err.to_string()))
    }
}

/// TLS on a client: `msg send --tls`, and connect, exec, bench; and
/// `--quic`, always inside TLS, as for a listener.
#[derive(Debug, Args)]
#[command(next_help_heading = "TLS")]
#[command(group = clap::ArgGroup::new("secure").args(["tls", "quic"]).multiple(true))]
pub(crate) struct TlsClientArgs {
    /// Encrypt the connection with TLS (over --tcp, --unix or
    /// --seqpacket), the listener's certificate checked against the
    /// system's CAs for the host in ADDR, or as the flags below say
    #[arg(long)]
    pub(crate) tls: bool,

    /// Trust the CAs in this PEM file instead of the system's
    #[arg(long, value_name = "PATH", requires = "secure",
          conflicts_with_all = ["tls_fingerprint", "insecure"])]
    pub(crate) ca: Option<PathBuf>,

    /// Trust exactly the certificate with this SHA-256 fingerprint (as
    /// msg listen --tls prints it, or openssl x509 -fingerprint -sha256),
    /// whatever it names or signed it, as ssh trusts a known host
    #[arg(long, value_name = "HEX", requires = "secure", conflicts_with = "insecure",
          value_parser = parse_fingerprint)]
    pub(crate) tls_fingerprint: Option<Fingerprint>,

    /// Check nothing about the listener's certificate: anyone on the path
    /// can then read and change everything. Warns at every connection
    #[arg(long, requires = "secure")]
    pub(crate) insecure: bool,

    /// The name the listener's certificate must hold, instead of the host
    /// in ADDR (localhost for a Unix socket)
    #[arg(long, value_name = "NAME", requires = "secure")]
    pub(crate) tls_name: Option<String>,

    /// Mutual TLS: present this certificate chain (PEM) to the listener
    #[arg(long, value_name = "PATH", requires_all = ["secure", "client_key"])]
    pub(crate) client_cert: Option<PathBuf>,

    /// The private key of --client-cert, in PEM
    #[arg(long, value_name = "PATH", requires_all = ["secure", "client_cert"])]
    pub(crate) client_key: Option<PathBuf>,
}

impl TlsClientArgs {
    /// The client's TLS for `addr` over `transport`; a usage error (exit
    /// 2) for a transport without streams or a file that cannot be used.
    pub(crate) fn client(
        &self,
        transport: Transport,
        addr: &str,
        handshake_timeout: Duration,
    ) -> anyhow::Result<Option<TlsClient>> {
        if !self.tls && !transport.caps().encrypted {
            return Ok(None);
        }
        check_tls_transport(transport)?;
        let options = ClientOptions {
            verify: Verify::of(self.ca.clone(), self.tls_fingerprint, self.insecure),
            server_name: tls::server_name(self.tls_name.as_deref(), transport, addr),
            identity: self.client_cert.clone().zip(self.client_key.clone()),
            handshake_timeout,
        };
        TlsClient::new(&options)
            .map(Some)
            .map_err(|err| usage(err.to_string()))
    }
}

/// How a client (`msg send`, `msg connect`, `msg exec`) reaches its
/// listener: how long it waits, the stream's settings, the secret and TLS.
#[derive(Debug, Args)]
pub(crate) struct ClientArgs {
    /// How long to wait to connect (and authenticate), and for each reply,
    /// e.g. 500ms, 2s (for a file's verdict, a second more per MiB, up to
    /// 64 s more). A listener that takes nothing sent to it for the longer
    /// of this and 30s (stopped, or not reading) ends the send with an
    /// error
    #[arg(long, value_name = "DURATION", default_value = "2s", value_parser = parse_positive_duration)]
    pub(crate) timeout: Duration,

    #[command(flatten)]
    pub(crate) tcp: TcpArgs,

    #[command(flatten)]
    pub(crate) auth: AuthArgs,

    #[command(flatten)]
    pub(crate) tls: TlsClientArgs,
}

impl ClientArgs {
    /// The options of a connection to `addr` over `transport`: a usage
    /// error for a secret or TLS that cannot be used.
    pub(crate) fn options(
        &self,
        transport: Transport,
        addr: &str,
    ) -> anyhow::Result<ConnectOptions> {
        Ok(ConnectOptions {
            tcp: TcpOptions {
                // A msg listener drops a frame that stalls for its frame
                // timeout (30s unless told otherwise): waiting longer to
                // write one would wait for nothing.
                write_timeout: Some(self.timeout.max(Limits::default().frame_timeout)),
                ..self.tcp.options()
            },
            timeout: Some(self.timeout),
            auth: self.auth.auth()?,
            tls: self
                .tls
                .client(transport, addr, self.auth.handshake_timeout)?,
            ..ConnectOptions::default()
        })
    }
}

/// TLS runs over a reliable connection, every byte in order; datagrams
/// would need DTLS.
fn check_tls_transport(transport: Transport) -> anyhow::Result<()> {
    // QUIC's own TLS: --tls beside --quic or --quic-datagrams says nothing
    // more.
    if transport.caps().carries_files() || transport.caps().encrypted {
        Ok(())
    } else {
        Err(usage(format!(
            "--tls runs over a stream (--tcp, --unix or --seqpacket), not {transport} \
             (datagrams would need DTLS, which msg does not do)"
        )))
    }
}

fn parse_fingerprint(text: &str) -> Result<Fingerprint, String> {
    text.parse().map_err(|err: tls::TlsError| err.to_string())
}
