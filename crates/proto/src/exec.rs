//! Remote commands, sans-IO: the request, the output, the input and the
//! end of a command run by `msg listen --exec` for `msg exec`.
//!
//! The tutorial's remote command server hands whatever arrives to a shell
//! and decodes the output as text. msg sends an **argv**, a list of byte
//! strings that the listener passes to the program as they are, with no
//! shell in between (a user who wants one asks for it: `sh -c '...'`), and
//! streams the output back as **bytes**, never decoded, so output in any
//! encoding arrives unchanged.
//!
//! ```text
//! client                                   listener (after authentication)
//!   Command        argv                ──>   checks it, runs it
//!   CommandInput   stdin bytes, ...    ──>   (an empty one closes stdin)
//!                                      <──   CommandOutput  1 stdout / 2 stderr, bytes
//!                                            (empty, every BEAT of silence)
//!                                      <──   CommandExit    exited, signaled, refused or killed
//! ```

use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::{Kind, Message};

/// While a command runs and writes nothing, the listener sends an empty
/// `CommandOutput` (a stream byte, no bytes) once this long has passed
/// since it last sent anything: the client's only way to tell a command
/// that is quiet (`sleep 60`) from a listener that is stopped or gone
/// without a close. The kernel answers for a stopped process (TCP's
/// acknowledgements, keepalives), so nothing below this layer can tell.
pub const BEAT: Duration = Duration::from_secs(5);

/// The most arguments a command may have, program included.
pub const MAX_ARGS: usize = 4096;

/// The largest `Command` body: the whole argv with its lengths.
pub const MAX_COMMAND_LEN: usize = 64 * 1024;

/// The longest text a `CommandExit` carries.
pub const MAX_EXIT_TEXT: usize = 1024;

/// Everything that can be wrong with a command's messages.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ExecError {
    /// A message of another kind where a command message was due.
    #[error("expected {expected:?}, got {found:?}")]
    UnexpectedKind {
        /// What was due.
        expected: Kind,
        /// What came.
        found: Kind,
    },
    /// A command with no program.
    #[error("the command is empty")]
    Empty,
    /// More arguments than [`MAX_ARGS`].
    #[error("the command has {count} arguments; the limit is {MAX_ARGS}")]
    TooManyArgs {
        /// How many.
        count: usize,
    },
    /// A body over its limit.
    #[error("{what} is {len} bytes; the limit is {max}")]
    TooLong {
        /// Which body.
        what: &'static str,
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A body that ends inside a field, or has bytes after its last.
    #[error("{what} is malformed: {problem}")]
    Malformed {
        /// Which body.
        what: &'static str,
        /// What is wrong.
        problem: &'static str,
    },
    /// An argument with a NUL byte, which no program can receive.
    #[error("argument {index} contains a NUL byte")]
    Nul {
        /// Its position, 0 for the program.
        index: usize,
    },
    /// An output stream other than stdout (1) or stderr (2).
    #[error("unknown output stream {0}; expected 1 (stdout) or 2 (stderr)")]
    UnknownStream(u8),
    /// An exit outcome this version does not know.
    #[error("unknown command outcome {0}")]
    UnknownOutcome(u8),
}

/// A command to run: the program and its arguments, as bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    argv: Vec<Vec<u8>>,
}

impl Command {
    /// A command of `argv` (the program first).
    ///
    /// # Errors
    ///
    /// [`ExecError::Empty`], [`ExecError::TooManyArgs`], [`ExecError::Nul`]
    /// or [`ExecError::TooLong`] (over [`MAX_COMMAND_LEN`] encoded).
    pub fn new(argv: Vec<Vec<u8>>) -> Result<Self, ExecError> {
        if argv.is_empty() {
            return Err(ExecError::Empty);
        }
        if argv.len() > MAX_ARGS {
            return Err(ExecError::TooManyArgs { count: argv.len() });
        }
        if let Some(index) = argv.iter().position(|arg| arg.contains(&0)) {
            return Err(ExecError::Nul { index });
        }
        let len = 2 + argv.iter().map(|arg| 4 + arg.len()).sum::<usize>();
        if len > MAX_COMMAND_LEN {
            return Err(ExecError::TooLong {
                what: "the command",
                len,
                max: MAX_COMMAND_LEN,
            });
        }
        Ok(Self { argv })
    }

    /// The program and its arguments.
    pub fn argv(&self) -> &[Vec<u8>] {
        &self.argv
    }

    /// The program.
    pub fn program(&self) -> &[u8] {
        &self.argv[0]
    }

    /// The `Command` message: the number of arguments (u16), then each as a
    /// u32 length and its bytes, all big-endian.
    pub fn to_message(&self) -> Message {
        let mut body = BytesMut::new();
        body.put_u16(u16::try_from(self.argv.len()).expect("at most MAX_ARGS"));
        for arg in &self.argv {
            body.put_u32(u32::try_from(arg.len()).expect("at most MAX_COMMAND_LEN"));
            body.put_slice(arg);
        }
        Message::new(Kind::Command, 0, body.freeze())
    }

    /// Reads a `Command` message, checking every length against what
    /// arrived before using it.
    ///
    /// # Errors
    ///
    /// The kind, a body over [`MAX_COMMAND_LEN`], a malformed body, or
    /// anything [`Command::new`] refuses.
    pub fn from_message(msg: &Message) -> Result<Self, ExecError> {
        expect(msg, Kind::Command)?;
        let what = "the command";
        if msg.body.len() > MAX_COMMAND_LEN {
            return Err(ExecError::TooLong {
                what,
                len: msg.body.len(),
                max: MAX_COMMAND_LEN,
            });
        }
        let mut body = &msg.body[..];
        let short = ExecError::Malformed {
            what,
            problem: "it ends inside a field",
        };
        if body.remaining() < 2 {
            return Err(short);
        }
        let count = usize::from(body.get_u16());
        if count > MAX_ARGS {
            return Err(ExecError::TooManyArgs { count });
        }
        // Each argument needs at least its 4-byte length: a count that the
        // body cannot hold is refused before anything is reserved for it.
        if count * 4 > body.remaining() {
            return Err(short);
        }
        let mut argv = Vec::with_capacity(count);
        for _ in 0..count {
            if body.remaining() < 4 {
                return Err(short);
            }
            let len = body.get_u32() as usize;
            if len > body.remaining() {
                return Err(short);
            }
            argv.push(body[..len].to_vec());
            body.advance(len);
        }
        if body.has_remaining() {
            return Err(ExecError::Malformed {
                what,
                problem: "bytes follow the last argument",
            });
        }
        Self::new(argv)
    }
}

/// Which of a command's outputs a piece of output is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stream {
    /// Standard output (1).
    Stdout = 1,
    /// Standard error (2).
    Stderr = 2,
}

/// A piece of output: a `CommandOutput` message is the stream byte, then
/// the bytes as the command wrote them.
pub fn output(stream: Stream, bytes: &[u8]) -> Message {
    let mut body = BytesMut::with_capacity(1 + bytes.len());
    body.put_u8(stream as u8);
    body.put_slice(bytes);
    Message::new(Kind::CommandOutput, 0, body.freeze())
}

/// Reads a `CommandOutput` message: which stream, and its bytes (a slice
/// of the message, not a copy).
///
/// # Errors
///
/// The kind, an empty body, or an unknown stream.
pub fn parse_output(msg: &Message) -> Result<(Stream, Bytes), ExecError> {
    expect(msg, Kind::CommandOutput)?;
    let stream = match msg.body.first() {
        Some(1) => Stream::Stdout,
        Some(2) => Stream::Stderr,
        Some(&other) => return Err(ExecError::UnknownStream(other)),
        None => {
            return Err(ExecError::Malformed {
                what: "a command output",
                problem: "it has no stream byte",
            });
        }
    };
    Ok((stream, msg.body.slice(1..)))
}

/// A piece of stdin for the command; empty `bytes` close its stdin.
pub fn input(bytes: Bytes) -> Message {
    Message::new(Kind::CommandInput, 0, bytes)
}

/// How a command ended.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Exit {
    /// It exited with this status.
    Exited(i32),
    /// A signal ended it.
    Signaled(i32),
    /// It was not run: why (not allowed, too many running, cannot start).
    Refused(String),
    /// The listener stopped it: why (a limit it passed).
    Killed(String),
}

const EXITED: u8 = 0;
const SIGNALED: u8 = 1;
const REFUSED: u8 = 2;
const KILLED: u8 = 3;

impl Exit {
    /// The exit code a shell would give: the status, or 128 plus the
    /// signal, or 1 for a command that did not run or was stopped.
    ///
    /// The numbers are the peer's, so any `i32` may arrive: a signal so
    /// large that 128 plus it overflows gives `i32::MAX`.
    pub fn code(&self) -> i32 {
        match self {
            Self::Exited(code) => *code,
            // Saturating: the fuzzer sent Signaled(i32::MAX), which
            // overflowed (a panic in a debug build of `msg exec`).
            Self::Signaled(signal) => 128_i32.saturating_add(*signal),
            Self::Refused(_) | Self::Killed(_) => 1,
        }
    }

    /// The `CommandExit` message: an outcome byte (0 exited, 1 signaled, 2
    /// refused, 3 killed), a big-endian i32 (the status or the signal, else
    /// 0), then UTF-8 text (the reason, else empty), at most
    /// [`MAX_EXIT_TEXT`] bytes.
    pub fn to_message(&self) -> Message {
        let (outcome, number, text) = match self {
            Self::Exited(code) => (EXITED, *code, ""),
            Self::Signaled(signal) => (SIGNALED, *signal, ""),
            Self::Refused(reason) => (REFUSED, 0, reason.as_str()),
            Self::Killed(reason) => (KILLED, 0, reason.as_str()),
        };
        let mut end = text.len().min(MAX_EXIT_TEXT);
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        let mut body = BytesMut::with_capacity(5 + end);
        body.put_u8(outcome);
        body.put_i32(number);
        body.put_slice(&text.as_bytes()[..end]);
        Message::new(Kind::CommandExit, 0, body.freeze())
    }

    /// Reads a `CommandExit` message. Invalid UTF-8 in the text reads as
    /// U+FFFD: the outcome matters more than the wording.
    ///
    /// # Errors
    ///
    /// The kind, a short body, a text over [`MAX_EXIT_TEXT`], or an
    /// unknown outcome.
    pub fn from_message(msg: &Message) -> Result<Self, ExecError> {
        expect(msg, Kind::CommandExit)?;
        let what = "a command exit";
        if msg.body.len() < 5 {
            return Err(ExecError::Malformed {
                what,
                problem: "it is shorter than 5 bytes",
            });
        }
        let text = &msg.body[5..];
        if text.len() > MAX_EXIT_TEXT {
            return Err(ExecError::TooLong {
                what,
                len: text.len(),
                max: MAX_EXIT_TEXT,
            });
        }
        let number = i32::from_be_bytes(msg.body[1..5].try_into().expect("4 bytes"));
        let text = String::from_utf8_lossy(text).into_owned();
        // A status is 8 bits and a signal 1 to 127 wherever a command
        // runs (a shell reports 128 plus it, in 8 bits too): anything
        // else would come out of `msg exec` as some other code, 0 among
        // them (128 + -128), a success the command never had.
        match msg.body[0] {
            EXITED if !(0..=255).contains(&number) => Err(ExecError::Malformed {
                what,
                problem: "its exit status is not 0 to 255",
            }),
            SIGNALED if !(1..=127).contains(&number) => Err(ExecError::Malformed {
                what,
                problem: "its signal is not 1 to 127",
            }),
            EXITED => Ok(Self::Exited(number)),
            SIGNALED => Ok(Self::Signaled(number)),
            REFUSED => Ok(Self::Refused(text)),
            KILLED => Ok(Self::Killed(text)),
            other => Err(ExecError::UnknownOutcome(other)),
        }
    }
}

fn expect(msg: &Message, expected: Kind) -> Result<(), ExecError> {
    if msg.kind == expected {
        Ok(())
    } else {
        Err(ExecError::UnexpectedKind {
            expected,
            found: msg.kind,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn argv(args: &[&[u8]]) -> Vec<Vec<u8>> {
        args.iter().map(|arg| arg.to_vec()).collect()
    }

    #[test]
    fn a_command_round_trips_byte_for_byte() {
        let command = Command::new(argv(&[b"printf", b"\xff\xfe%s", b"", b"caf\xc3\xa9"])).unwrap();
        let msg = command.to_message();
        assert_eq!(
            &msg.body[..],
            b"\x00\x04\x00\x00\x00\x06printf\x00\x00\x00\x04\xff\xfe%s\x00\x00\x00\x00\x00\x00\x00\x05caf\xc3\xa9"
        );
        assert_eq!(Command::from_message(&msg).unwrap(), command);
        assert_eq!(command.program(), b"printf");
    }

    #[test]
    fn docs_carry_the_vector() {
        let msg = Command::new(argv(&[b"echo", b"hi"])).unwrap().to_message();
        let mut bytes = Vec::new();
        crate::encode(&msg, &mut bytes).unwrap();
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let doc = include_str!("../../../docs/wire.md");
        let doc_hex: String = doc
            .split("\n## Commands")
            .nth(1)
            .expect("docs/wire.md has a Commands section")
            .split("```hex")
            .nth(1)
            .and_then(|rest| rest.split("```").next())
            .expect("the Commands section has a ```hex block")
            .chars()
            .filter(char::is_ascii_hexdigit)
            .collect();
        assert_eq!(doc_hex, hex);
    }

    #[test]
    fn bad_commands_are_refused() {
        assert_eq!(Command::new(vec![]), Err(ExecError::Empty));
        assert_eq!(
            Command::new(argv(&[b"ls", b"a\0b"])),
            Err(ExecError::Nul { index: 1 })
        );
        assert!(matches!(
            Command::new(vec![vec![b'a'; MAX_COMMAND_LEN]]),
            Err(ExecError::TooLong { .. })
        ));
        let body = |bytes: &'static [u8]| Message::new(Kind::Command, 0, bytes);
        // A count the body cannot hold is refused before any allocation.
        assert!(matches!(
            Command::from_message(&body(b"\xff\xff")),
            Err(ExecError::TooManyArgs { count: 65535 })
        ));
        assert!(matches!(
            Command::from_message(&body(b"\x00\x02\x00\x00\x00\x01a")),
            Err(ExecError::Malformed { .. })
        ));
        assert!(matches!(
            Command::from_message(&body(b"\x00\x01\x00\x00\x00\x01ab")),
            Err(ExecError::Malformed { .. })
        ));
        assert!(matches!(
            Command::from_message(&body(b"\x00\x00")),
            Err(ExecError::Empty)
        ));
        assert!(matches!(
            Command::from_message(&Message::new(Kind::Data, 0, "x")),
            Err(ExecError::UnexpectedKind { .. })
        ));
    }

    #[test]
    fn output_keeps_its_stream_and_bytes() {
        let msg = output(Stream::Stderr, b"\xc4\xe3\xba\xc3"); // GBK, untouched
        let (stream, bytes) = parse_output(&msg).unwrap();
        assert_eq!(
            (stream, &bytes[..]),
            (Stream::Stderr, &b"\xc4\xe3\xba\xc3"[..])
        );
        assert_eq!(
            parse_output(&Message::new(Kind::CommandOutput, 0, "\x03x")),
            Err(ExecError::UnknownStream(3))
        );
        assert!(parse_output(&Message::new(Kind::CommandOutput, 0, "")).is_err());
    }

    #[test]
    fn exits_round_trip_and_map_to_shell_codes() {
        for (exit, code) in [
            (Exit::Exited(0), 0),
            (Exit::Exited(7), 7),
            (Exit::Signaled(15), 143),
            (Exit::Refused("not allowed".into()), 1),
            (Exit::Killed("ran past 60s".into()), 1),
        ] {
            assert_eq!(Exit::from_message(&exit.to_message()).unwrap(), exit);
            assert_eq!(exit.code(), code);
        }
        let long = Exit::Killed("é".repeat(MAX_EXIT_TEXT)).to_message();
        assert!(long.body.len() <= 5 + MAX_EXIT_TEXT);
        assert!(Exit::from_message(&long).is_ok());
        assert_eq!(
            Exit::from_message(&Message::new(Kind::CommandExit, 0, "\x09\x00\x00\x00\x00")),
            Err(ExecError::UnknownOutcome(9))
        );
    }

    #[test]
    fn a_peers_huge_signal_does_not_overflow_the_exit_code() {
        // Found by the `exec` fuzz target: outcome 1 (signaled), signal
        // 0x7fffffff, and 128 + it overflowed. Such a signal is refused
        // now; the code of one made here still saturates.
        let msg = Message::new(Kind::CommandExit, 0, &b"\x01\x7f\xff\xff\xff"[..]);
        assert!(Exit::from_message(&msg).is_err());
        assert_eq!(Exit::Signaled(i32::MAX).code(), i32::MAX);
        assert_eq!(Exit::Signaled(i32::MIN).code(), i32::MIN + 128);
    }

    #[test]
    fn a_status_or_signal_no_command_can_have_is_refused() {
        let exit = |outcome: u8, number: i32| {
            let mut body = vec![outcome];
            body.extend_from_slice(&number.to_be_bytes());
            Exit::from_message(&Message::new(Kind::CommandExit, 0, body))
        };
        // 128 + -128 would have been exit code 0: a success.
        for (outcome, number) in [(1, -128), (1, 0), (1, 128), (0, -1), (0, 256)] {
            assert!(
                matches!(exit(outcome, number), Err(ExecError::Malformed { .. })),
                "{outcome} {number}"
            );
        }
        assert_eq!(exit(1, 9).unwrap().code(), 137);
        assert_eq!(exit(1, 127).unwrap().code(), 255);
        assert_eq!(exit(0, 255).unwrap().code(), 255);
        assert_eq!(exit(0, 0).unwrap().code(), 0);
    }

    proptest! {
        #[test]
        fn arbitrary_bodies_never_panic(body in proptest::collection::vec(any::<u8>(), 0..512)) {
            for kind in [Kind::Command, Kind::CommandOutput, Kind::CommandExit] {
                let msg = Message::new(kind, 0, body.clone());
                let _ = Command::from_message(&msg);
                let _ = parse_output(&msg);
                if let Ok(exit) = Exit::from_message(&msg) {
                    // What `msg exec` does with the peer's verdict.
                    let _ = exit.code();
                }
            }
        }

        #[test]
        fn any_valid_command_round_trips(
            args in proptest::collection::vec(
                proptest::collection::vec(1u8.., 0..64), 1..16),
        ) {
            let command = Command::new(args).unwrap();
            prop_assert_eq!(Command::from_message(&command.to_message()).unwrap(), command);
        }
    }
}
