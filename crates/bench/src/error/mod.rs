//! The error type of this crate, [`Error`], and the reasons a run stops
//! as it measures, [`RunError`] (in `run`), which it wraps.
//!
//! Messages say what went wrong in the benchmark's own words, never in a
//! command line's: the binary above knows which of its flags led there and
//! adds that (and makes the plan's refusals usage errors).

use std::io;
use std::path::PathBuf;
use std::process::ExitStatus;
use std::time::Duration;

use humantime::format_duration;
use msg_net::{PeerAddr, Transport};

mod run;

pub use run::RunError;

/// What can go wrong in planning, running or reporting a benchmark.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The plan has nothing to measure along one of its dimensions.
    #[error("nothing to measure: the plan has no {0}")]
    Empty(&'static str),
    /// Every size is over every transport's limit: no run could send one
    /// message (a run of error rows alone exited 0; audit, round five).
    #[error("nothing to measure: every size is over its transport's limit ({0})")]
    NothingFits(String),
    /// Busy polling with the client and the listeners on one core, where
    /// each spinner would hold up the other.
    #[error(
        "busy polling needs the client and the listeners on different cores: \
         on one core each spinner would hold up the other"
    )]
    BusyPollOnOneCore,
    /// Busy polling with both engines, whose listeners share a core.
    #[error(
        "busy polling cannot measure both engines at once: the tokio listeners spin all the \
         time and would hold up the blocking ones on their core"
    )]
    BusyPollBothEngines,
    /// Batching asked of a ping-pong, which has one message in flight.
    #[error(
        "batching needs a one-way stream (throughput mode): a ping-pong has one message in \
         flight, nothing to batch"
    )]
    BatchNeedsThroughput,
    /// Batching asked of no transport that batches (TCP, a Unix socket).
    #[error(
        "batching sends UDP datagrams many per system call; a stream (TCP, a Unix socket) \
         needs no batching (it already carries many messages per write)"
    )]
    BatchNeedsUdp,
    /// The blocking engine was asked for something only the tokio engine
    /// measures (the reason names it).
    #[error("the blocking engine does {0}")]
    NotInBlockingEngine(&'static str),
    /// Parallel flows asked of a ping-pong.
    #[error(
        "parallel flows are throughput streams: a ping-pong measures one message in flight \
         on one connection"
    )]
    ParallelNeedsThroughput,
    /// Parallel flows of a batched stream: the built-in listener's
    /// receive calls are counted for all flows at once.
    #[error(
        "parallel flows are not batched: the listener's receive calls would be counted for \
         all flows at once"
    )]
    ParallelBatched,
    /// Parallel flows under an impairment: the kernel's counters are the
    /// namespace's, not a flow's.
    #[error(
        "parallel flows are not impaired: the kernel's counters are the namespace's, not a \
         flow's"
    )]
    ParallelImpaired,
    /// A reverse (or bidirectional) run of anything but a throughput
    /// stream.
    #[error("a reverse stream is a throughput run (the listener sends, the client counts)")]
    ReverseNeedsThroughput,
    /// A reverse run over a transport without connections: a listener
    /// that streamed to a datagram's source address would stream to
    /// whoever a forger names.
    #[error(
        "{0} has no connections, and a listener streams back over a connection only: over \
         datagrams a forged source address would aim the stream at anyone"
    )]
    ReverseNeedsConnections(Transport),
    /// A reverse run with what it does not measure: pacing, batching,
    /// impairments.
    #[error("a reverse stream is measured {0}")]
    ReverseWith(&'static str),
    /// A reverse run longer than a listener streams for one request.
    #[error(
        "a reverse stream lasts at most {}, the longest a listener streams for one request",
        humantime::format_duration(msg_proto::SendRequest::MAX_DURATION)
    )]
    ReverseTooLong,
    /// More parallel flows than [`MAX_PARALLEL`](crate::plan::MAX_PARALLEL).
    #[error("{0} parallel flows is over the most a run makes, {max}", max = crate::plan::MAX_PARALLEL)]
    TooManyFlows(u32),
    /// Impairments with a remote listener: they are made inside a network
    /// namespace from which it cannot be reached.
    #[error(
        "impairments are measured against the built-in listeners inside a network namespace \
         of their own, from which a remote listener cannot be reached"
    )]
    ImpairRemote,
    /// Impairments with a transport no network interface carries: the
    /// kernel impairs `lo`, which a Unix socket never crosses.
    #[error(
        "impairments act on the loopback interface, which {0} never crosses (a Unix socket \
         goes from process to process inside the kernel): measured, it would show nothing \
         of the impairment"
    )]
    ImpairNotInet(Transport),
    /// Pinning was asked for where the CPUs cannot be listed.
    #[error("cannot list the CPUs this process may use")]
    NoCpuList,
    /// Pinning across cores with fewer than two.
    #[error("pinning across cores needs two CPUs; this process may use {available}")]
    TooFewCpus {
        /// How many this process may use.
        available: usize,
    },
    /// A malformed impairment SPEC (the text says what is wrong).
    #[error("{0}")]
    Impairment(String),
    /// A program an impairment needs is not installed.
    #[error(
        "the impairment '{spec}' needs the program '{program}', which is not installed \
         (the package {package})"
    )]
    MissingProgram {
        /// The impairment, as the report names it.
        spec: String,
        /// `nft` or `tc`.
        program: &'static str,
        /// The package that has it.
        package: &'static str,
    },
    /// The kernel has no queueing discipline an impairment needs.
    #[error(
        "the impairment '{spec}' needs the {qdisc} queueing discipline (sch_{qdisc}, {config}), \
         which this kernel has not and which {words} need; tc says: {stderr}"
    )]
    NoQdisc {
        /// The impairment, as the report names it.
        spec: String,
        /// `netem` or `tbf`.
        qdisc: &'static str,
        /// The kernel option that builds it.
        config: &'static str,
        /// The words of the SPEC that need it.
        words: &'static str,
        /// What `tc` said.
        stderr: String,
    },
    /// `nft` or `tc` could not be run, fed or waited for.
    #[error("cannot {action} {program}")]
    Program {
        /// `run`, `write to`, `wait for`.
        action: &'static str,
        /// `nft` or `tc`.
        program: &'static str,
        /// Why.
        source: io::Error,
    },
    /// `nft` or `tc` failed.
    #[error("{command} failed ({status}): {stderr}")]
    ProgramFailed {
        /// The program and its arguments.
        command: String,
        /// How it exited.
        status: ExitStatus,
        /// What it said.
        stderr: String,
    },
    /// One measured run failed; the source says why.
    #[error("{label} {size}-byte run against {addr}")]
    Run {
        /// `udp`, `tcp+auth`, ...
        label: String,
        /// The payload size.
        size: usize,
        /// The listener.
        addr: PeerAddr,
        /// Why.
        source: Box<Self>,
    },
    /// One of the `clients` failed; the source says why.
    #[error("client {index} of {total}")]
    Client {
        /// Which, from 1.
        index: u32,
        /// Of how many.
        total: u32,
        /// Why.
        source: Box<Self>,
    },
    /// A client could not connect; the source says why.
    #[error("connecting {clients} clients to {addr}")]
    Connecting {
        /// How many were connecting.
        clients: u32,
        /// To where.
        addr: PeerAddr,
        /// Why.
        source: Box<Self>,
    },
    /// A transport the connect mode does not measure: QUIC datagrams,
    /// whose connection and handshake are QUIC's.
    #[error(
        "the connect mode does not measure {0}: its connection and handshake are quic's, \
         which it measures"
    )]
    NotInConnectMode(Transport),
    /// TLS against a remote listener: the benchmark measures it against
    /// its built-in listener, whose certificate it pins.
    #[error(
        "tls and quic are measured against the built-in listener only, whose certificate the benchmark pins"
    )]
    TlsRemote,
    /// A `clients` load over a transport whose peers do not connect.
    #[error("a clients load opens connections, and {0} has none to open")]
    ClientsNeedConnections(Transport),
    /// The clients ended before each said whether it connected.
    #[error("the clients stopped before connecting")]
    ClientsStopped,
    /// A client's task panicked or was cancelled.
    #[error("a client task failed")]
    ClientTask(#[source] tokio::task::JoinError),
    /// The hard open-file limit leaves no room for the clients' sockets.
    #[error(
        "{clients} clients need about {needed} open files ({why}), and the hard limit \
         (RLIMIT_NOFILE) is {hard}: raise it (ulimit -Hn as root, LimitNOFILE= in a \
         systemd unit) or use fewer clients"
    )]
    OpenFiles {
        /// How many clients.
        clients: u32,
        /// Descriptors needed.
        needed: u64,
        /// The hard limit.
        hard: u64,
        /// What the descriptors are for.
        why: String,
    },
    /// A `connect` cycle failed; the source says why.
    #[error("{transport} connect cycle")]
    Cycle {
        /// The transport.
        transport: Transport,
        /// Why.
        source: Box<Self>,
    },
    /// No ephemeral port was free: TIME_WAIT holds them.
    #[error(
        "no ephemeral port is free: each FIN-closed connection holds its port in TIME_WAIT \
         for {} (net.ipv4.tcp_tw_reuse is {tw_reuse}), and there are {ports}; close with a \
         RST, which leaves no TIME_WAIT, or set net.ipv4.tcp_tw_reuse=1",
        format_duration(*.held)
    )]
    PortsExhausted {
        /// How many ephemeral ports there are.
        ports: u32,
        /// How long a closed connection holds one.
        held: Duration,
        /// `net.ipv4.tcp_tw_reuse`.
        tw_reuse: u8,
    },
    /// TCP Fast Open cannot be measured (the text says why).
    #[error("{0}")]
    FastOpen(String),
    /// A thread could not be started.
    #[error("cannot start {what}")]
    Thread {
        /// Which.
        what: &'static str,
        /// Why.
        source: io::Error,
    },
    /// The built-in listeners' thread ended before it said where they
    /// listen.
    #[error("the built-in listeners did not start")]
    ListenersDidNotStart,
    /// A built-in listener's task panicked.
    #[error("a built-in listener's task failed")]
    ListenerTask(#[source] tokio::task::JoinError),
    /// A built-in listener stopped serving.
    #[error("built-in {transport} listener")]
    Listener {
        /// Its transport.
        transport: Transport,
        /// Why.
        source: msg_net::Error,
    },
    /// No address of a host name with several could be connected to.
    #[error("cannot connect to {name} at any of its {count} addresses: {failures}")]
    Connect {
        /// The `HOST:PORT`.
        name: String,
        /// How many addresses it has.
        count: usize,
        /// Each address's failure, `; `-separated.
        failures: String,
    },
    /// The plot could not be drawn.
    #[error("cannot draw the plot: {0}")]
    Plot(String),
    /// A file could not be written.
    #[error("cannot write {}", msg_net::text::path_text(.path))]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// A directory could not be made.
    #[error("cannot create {}", msg_net::text::path_text(.path))]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// A multicast group was asked for and this is no group.
    #[error("{0} is not a multicast group (224.0.0.0/4, ff00::/8)")]
    NotAGroup(String),
    /// A group measured with no receivers, or too many.
    #[error(
        "a group is measured with 1 to {max} receivers, not {0}",
        max = crate::multicast::MAX_RECEIVERS
    )]
    Receivers(u32),
    /// Remote receivers of a group without a port.
    #[error(
        "remote receivers listen on a port of the group: give it, {0}:PORT (the port they joined)"
    )]
    GroupNeedsPort(std::net::IpAddr),
    /// A message too large for one datagram to the group.
    #[error("a {size}-byte message does not fit one datagram to the group: at most {max} bytes")]
    GroupOversize {
        /// The payload size asked for.
        size: usize,
        /// The largest that fits.
        max: usize,
    },
    /// A group could not be joined, or its sender set up.
    #[error(transparent)]
    Group(#[from] msg_net::group::GroupError),
    /// A send to the group failed (`ENETUNREACH`: no route to it and no
    /// interface named).
    #[error("cannot send to the group {group}")]
    GroupSend {
        /// The group.
        group: std::net::SocketAddr,
        /// Why.
        source: io::Error,
    },
    /// A built-in receiver of a group stopped with an error, or panicked
    /// (no source).
    #[error("built-in receiver {id} stopped")]
    Receiver {
        /// Which, from 1.
        id: usize,
        /// Why.
        source: Option<io::Error>,
    },
    /// A receiver of a group whose answers are no result: a pong of
    /// another length than its ping (a pong echoes the ping's body, and
    /// the round trip is timed for those bytes), or statistics that
    /// cannot be true. The other receivers' figures would be, but a run
    /// that left one out unsaid would not be the run asked for.
    #[error("receiver {id} of the group, at {addr}")]
    GroupAnswer {
        /// Which, from 1.
        id: u32,
        /// Where it answers from.
        addr: std::net::SocketAddr,
        /// What was wrong.
        source: RunError,
    },
    /// Why a run, a connect cycle or a client stopped as it measured
    /// (the source of [`Error::Run`], [`Error::Cycle`], [`Error::Client`]).
    #[error(transparent)]
    Measuring(#[from] RunError),
    /// msg-net's error: a link, a listener, a name that does not resolve.
    #[error(transparent)]
    Net(#[from] msg_net::Error),
    /// A statistics pong that does not parse.
    #[error(transparent)]
    Proto(#[from] msg_proto::Error),
    /// Any other operating-system error (a timer, a runtime).
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// `err` and its sources, `: `-separated, as `anyhow` shows a chain: for
/// logs, and for the failures of [`Error::Connect`].
pub(crate) fn chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
