//! msg-demo: lessons that run on loopback, in one process, and show the
//! bytes.
//!
//! - [`sticky`]: why TCP needs framing. Raw TCP glues two writes into one
//!   read and cuts one write into many; msg's length prefix gives the
//!   messages back; UDP keeps each datagram whole but limits its size.
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
pub mod sticky;
mod text;

pub use error::{Error, Result};
