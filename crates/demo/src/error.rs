//! [`Error`]: why a lesson could not be shown.

use std::io;

/// Why a demo failed: a socket call, a transport's error, or a step that
/// did not go as the lesson needs, each within its part.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A step failed; the source says why.
    #[error("{what}")]
    Context {
        /// What was being done: "cannot write", "part 1 (raw TCP)".
        what: String,
        /// Why it failed.
        source: Box<Self>,
    },
    /// The operating system's error.
    #[error(transparent)]
    Io(#[from] io::Error),
    /// msg-tcp's error.
    #[error(transparent)]
    Tcp(#[from] msg_tcp::Error),
    /// msg-udp's error.
    #[error(transparent)]
    Udp(#[from] msg_udp::Error),
    /// The lesson shows what only some platforms do.
    #[error("the {lesson} lesson runs only on {needs}")]
    Unsupported {
        /// Which lesson: "unix".
        lesson: &'static str,
        /// Where it runs, and why only there.
        needs: &'static str,
    },
    /// A program the lesson runs is not installed: where it runs, it is
    /// what is missing, and its package is where to get it.
    #[error(
        "the {lesson} lesson runs {program}, {why}, but {program} is missing: install {package}"
    )]
    Missing {
        /// Which lesson: "hol".
        lesson: &'static str,
        /// The program not found on PATH: "ip".
        program: &'static str,
        /// What the lesson runs it for: "to bring its namespace's loopback up".
        why: &'static str,
        /// The package that has it: "iproute2".
        package: &'static str,
    },
    /// Something did not happen as the lesson needs (a connection closed
    /// early, bytes that did not arrive in time).
    #[error("{0}")]
    Broken(String),
}

/// This crate's results.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Says what was being done when a step failed, as `anyhow`'s context
/// does in the binary.
pub(crate) trait Context<T> {
    /// The error, wrapped with `what`.
    fn what(self, what: &str) -> Result<T>;
    /// As [`Context::what`], made only on failure.
    fn with_what(self, what: impl FnOnce() -> String) -> Result<T>;
    /// The error, wrapped with the part it happened in.
    fn part(self, part: &str) -> Result<T>;
}

impl<T, E: Into<Error>> Context<T> for std::result::Result<T, E> {
    fn what(self, what: &str) -> Result<T> {
        self.with_what(|| what.to_owned())
    }

    fn with_what(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|err| Error::Context {
            what: what(),
            source: Box::new(err.into()),
        })
    }

    fn part(self, part: &str) -> Result<T> {
        self.what(part)
    }
}

impl<T> Context<T> for Option<T> {
    fn what(self, what: &str) -> Result<T> {
        self.ok_or_else(|| Error::Broken(what.to_owned()))
    }

    fn with_what(self, what: impl FnOnce() -> String) -> Result<T> {
        self.ok_or_else(|| Error::Broken(what()))
    }

    fn part(self, part: &str) -> Result<T> {
        self.what(part)
    }
}
