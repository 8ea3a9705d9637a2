//! msg-demo: lessons that run on loopback, in one process, and show the
//! bytes.
//!
//! - [`sticky`]: why TCP needs framing. Raw TCP glues two writes into one
//!   read and cuts one write into many; msg's length prefix gives the
//!   messages back; UDP keeps each datagram whole but limits its size.
//! - [`unix`]: a full receiver. UDP drops what does not fit, silently; a
//!   Unix datagram socket keeps boundaries too but refuses or holds the
//!   sender instead (EAGAIN), loses nothing, and takes datagrams as large
//!   as the sender's send buffer, not 65,507 bytes. Linux only.
//! - [`reuse`]: `msg demo reuseaddr`. A server that closes first leaves
//!   its port in TIME_WAIT, and a new listener there needs SO_REUSEADDR;
//!   two UDP receivers with SO_REUSEPORT share one port's datagrams.
//!   Linux only.
//! - [`hol`]: head-of-line blocking. In a private network namespace one
//!   packet is dropped: over one TCP connection the later messages sent
//!   before its retransmission came wait for it, over QUIC only its own
//!   stream does. Linux only, as root.
//!
//! This is the one crate above the transports that calls msg-tcp and
//! msg-udp directly rather than through msg-net: a demo of the codec has
//! to show the codec. It parses no flags (the `msg demo` subcommand does)
//! and returns what happened, which it renders as text or JSON into any
//! writer.
//!
//! ```no_run
//! let lesson = msg_demo::sticky::run(true)?;
//! lesson.write_text(&mut std::io::stdout())?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![warn(missing_docs)]

mod error;
pub mod hol;
pub mod reuse;
pub mod sticky;
mod text;
pub mod unix;

pub use error::{Error, Result};
