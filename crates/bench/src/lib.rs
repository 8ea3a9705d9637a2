//! msg's measurement engine: the same payloads over UDP datagrams, over
//! length-framed TCP and over a Unix stream socket (any of msg-net's
//! [`Transport`]s), measured side by side in one run.
//!
//! A [`Plan`] says what to measure; [`run()`] carries it out and returns
//! [`Results`]; the [`report`] turns those into a table, JSON, a plot or
//! `.hgrm` files. This crate parses no flags and draws no progress bars
//! (CI checks that neither clap nor indicatif is among its dependencies):
//! the `msg bench` binary turns its flags into a plan and shows progress
//! through [`Progress`]. Its errors ([`Error`]) never name a flag; the
//! binary adds those.
//!
//! # Layout
//!
//! - [`plan`](Plan): [`Plan`], [`Engine`], [`Batch`], and
//!   [`Plan::check`], what makes no sense together.
//! - [`defaults`]: what a plan measures where its caller names nothing:
//!   the transports (each once; a reversed stream's over connections),
//!   the sizes, the placement.
//! - `settings`: what one run is told, made by the plan and read by the
//!   engines: where ([`Transport`] and address, an IP address and port or
//!   a path, with the size check, [`Oversize`]), how ([`Mode`], timeouts,
//!   batching).
//! - [`run`](run()): the built-in listeners started, the interleaved U T
//!   U T (U T X ...) schedule over the engines, one [`Measured`] cell per
//!   transport, size, engine, secret and impairment.
//! - `engine`: one file per engine, each measuring one run into an
//!   [`Outcome`]: `tokio` (closed loop, open loop at a rate, throughput),
//!   `batched` (UDP throughput, many datagrams per system call),
//!   `blocking` (std sockets on the calling thread).
//! - `flows`: parallel flows, N streams of one run at once, a thread each
//!   on the blocking engine and a future each on tokio, and their sum.
//! - `cpu`: what a run cost in CPU time, user and system, on the
//!   client's threads (`getrusage(RUSAGE_THREAD)`) and in the built-in
//!   listeners (the process's less the client's).
//! - [`connect`]: what a connection costs: per cycle a new socket,
//!   connect, one request and reply, close, the transports interleaved
//!   (its own plan, [`connect::Cycles`], and report).
//! - [`clients`]: N connections at once (TCP, or any transport with
//!   connections), a load with its own plan ([`clients::Load`]) and
//!   report.
//! - [`multicast`]: one sender and N receivers of a multicast group
//!   (built-in threads, or remote `msg listen`s), each receiver's round
//!   trips or count of a stream, with a plan ([`multicast::Fanout`]) and
//!   report of its own.
//! - `servers`: the built-in echo listeners of each engine (msg-net's
//!   serve loops), on threads of their own: on 127.0.0.1 for an IP
//!   transport, and for one addressed by a path (a Unix socket) in a
//!   private temporary directory (`sockdir`), removed with them, or by
//!   [`remove_on_signal`]'s thread when the run is interrupted.
//!
//! Nothing here asks which transport it measures: the engines, the
//! listeners and the report ask a transport what it can do
//! ([`Transport::caps`]: whether it loses messages, batches, has
//! connections or `TCP_INFO`) and how its addresses are written
//! ([`Transport::is_inet`], [`Transport::listen_addr`]), so that a new
//! transport of msg-net is measured once its name is in the plan.
//! - `pace`: a sub-millisecond timer for the open loop, and the fixed-rate
//!   schedule.
//! - [`pin`](Placement): where the client and the listeners run.
//! - [`impair`](Impairment): netem's words, and the kernel mechanisms
//!   (nftables, tbf, netem) that carry each out on `lo`; `netns` (Linux),
//!   the private network namespace they are applied in, which the caller
//!   runs itself again inside (`rerun_private`, `check_private`).
//! - [`report`]: the table and the JSON (medians of the runs, the spread,
//!   each transport's ratio to UDP), the SVG plot and the `.hgrm` files.
//! - [`error`](Error): the crate's error type, with [`RunError`], why a
//!   run stopped as it measured, for its source (and `netns`'s own, for
//!   the namespace).
//!
//! ```text
//!   msg (cli: flags, progress bar) ──> msg-bench ──> msg-net ──> ...
//!                                                 └──────────> msg-proto
//! ```
//!
//! # Example
//!
//! A short ping-pong over UDP against the built-in listeners:
//!
//! ```no_run
//! use std::time::Duration;
//! use msg_bench::{Plan, report};
//! use msg_bench::Transport;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let plan = Plan {
//!     transports: vec![Transport::Udp],
//!     sizes: vec![64],
//!     warmup: Duration::from_millis(20),
//!     duration: Duration::from_millis(100),
//!     runs: 1,
//!     ..Plan::default()
//! };
//! let results = msg_bench::run(&plan, &mut ())?;
//! report::write_table(&mut std::io::stdout(), &plan, &results)?;
//! # Ok(())
//! # }
//! ```

#![warn(missing_docs)]

pub mod clients;
pub mod connect;
mod cpu;
pub mod defaults;
mod engine;
mod error;
mod flows;
mod impair;
mod interval;
pub mod meta;
pub mod multicast;
mod pace;
mod pin;
mod plan;
pub mod report;
mod run;
mod servers;
mod settings;
mod sockdir;

pub use cpu::{Cpu, Usage};
pub use engine::batched::Calls;
pub use engine::{ImpossibleCounts, Kernel, Outcome, TcpFigures};
pub use error::{Error, RunError};
#[cfg(target_os = "linux")]
pub use impair::netns;
pub use impair::{Impairment, check_impairable};
pub use interval::{Interval, IntervalOf, TcpInterval};
pub use msg_net::{Auth, Transport};
pub use pin::{Pin, Placement};
pub use plan::{
    Batch, DEFAULT_SIZES, DEFAULT_TIMEOUT, Direction, Engine, MAX_PARALLEL, MAX_SIZE, MIN_DURATION,
    MIN_INTERVAL, Mode, Plan, SizeError, parse_interval, parse_seconds, parse_size,
};
pub use run::{Measured, Progress, Results, run};
pub use settings::Oversize;
pub use sockdir::remove_on_signal;
