//! What a listener tells its peer when it refuses or ends something.
//!
//! Each text states the condition and its limit, never the command-line
//! flag that sets it: this crate has no command line. A client that has one
//! (msg's) recognises these texts and adds the flag (the texts arrive made
//! safe to print, see [`text`](crate::text); these are printable already).
//! A fixed text is a `&str`; one with a value in it (a count, a duration,
//! a name) is a [`Template`], which both writes the text and finds the
//! value in it again.

/// A listener with a secret, to a peer that starts with anything but the
/// handshake, before it closes the connection.
pub const NEEDS_SECRET: &str = "this listener needs a secret";

/// A listener without a secret, to a peer that starts a handshake.
pub const HAS_NO_SECRET: &str = "this listener has no secret";

/// A listener that runs no commands, to a peer that sends one.
pub const RUNS_NO_COMMANDS: &str = "this listener runs no commands";

/// A listener that saves no files, to a peer that sends one.
pub const SAVES_NO_FILES: &str = "this listener saves no files";

/// A blocking-engine listener, to a peer that sends a file or a command.
pub const BLOCKING_ENGINE: &str =
    "this listener takes no files or commands: it runs on the blocking engine";

/// A blocking-engine listener, to a peer that asks it to stream back (a
/// reverse throughput run).
pub const BLOCKING_NO_STREAM: &str =
    "this listener does not stream back: it runs on the blocking engine";

/// A full listener, to the connection past its most: the most. Written
/// by [`max_conns`], which words a most of one apart.
pub const MAX_CONNS: Template = Template {
    before: "this listener serves at most ",
    after: " connections at once; try again later",
};

/// A full listener that serves one connection at a time (`msg listen
/// --once`, or a most of one), to the next.
pub const ONE_AT_A_TIME: &str = "this listener serves one connection at a time; try again later";

/// What a full listener that serves at most `max` connections tells the
/// next: [`MAX_CONNS`], or [`ONE_AT_A_TIME`] for one.
#[must_use]
pub fn max_conns(max: usize) -> String {
    match max {
        1 => ONE_AT_A_TIME.to_owned(),
        max => MAX_CONNS.format(max),
    }
}

/// Why a full listener refused a connection, for its own log: `max`
/// open, or its one (audit, round thirteen: `1 are open, the most this
/// listener takes`).
pub(crate) fn full(max: usize) -> String {
    match max {
        1 => "this listener serves one connection at a time, and one is open".to_owned(),
        max => format!("{max} are open, the most this listener serves at once"),
    }
}

/// A listener out of file descriptors, to the connection it took with its
/// last one (see [`Spare`](crate::open_files::Spare)).
pub const NO_DESCRIPTORS: &str = "this listener cannot take another connection now (it is out of file descriptors); try again later";

/// A blocking-engine listener that cannot start the thread a connection
/// is served on (the system's or the user's limit on threads reached).
pub const NO_THREAD: &str = "this listener cannot start a thread for the connection now (a limit on threads); try again later";

/// A listener whose save directory was removed after it started (one
/// made again at the same path is another directory, which it does not
/// use: it opened its own once, at start).
pub const SAVE_DIR_REMOVED: &str = "the listener's save directory was removed after it started; it \
     saves nowhere else until it is started again";

/// A listener with a secret whose handshake turns all stayed taken for as
/// long as a new connection may wait for one: the number of turns. Said
/// so that the client hears why, not a reset (its first bytes are read
/// and dropped first).
pub const HANDSHAKES_BUSY: Template = Template {
    before: "this listener has ",
    after: " handshakes under way, the most it makes at once; try again later",
};

/// A Unix listener that serves only some users, to a process of another
/// (or of one the kernel did not name): the uid, or `unknown`.
pub const UID_NOT_ALLOWED: Template = Template {
    before: "this listener does not serve uid ",
    after: "",
};

/// A listener closing a connection whose frame is over its largest: the
/// largest, in bytes. Said (and the frame's bytes read and dropped, within
/// the frame timeout) so that the sender hears why, not a reset, and a
/// `msg send` whose message was too large does not exit as if it arrived.
pub const FRAME_TOO_LARGE: Template = Template {
    before: "a frame is over this listener's limit of ",
    after: " bytes: closing",
};

/// A listener closing a connection that sent nothing for its idle
/// timeout: the timeout.
pub const IDLE: Template = Template {
    before: "idle for ",
    after: ": closing",
};

/// A file whose name is taken, at a listener that does not overwrite: the
/// name.
pub const FILE_EXISTS: Template = Template {
    before: "",
    after: " already exists there, and the listener does not overwrite",
};

/// A file sent with resuming asked for, whose partial file another
/// connection is writing: the name.
pub const RESUME_BUSY: Template = Template {
    before: "",
    after: " is being received on another connection; try again once that one ends",
};

/// A sender that does not answer an offer to resume in time: the wait.
pub const RESUME_NO_ANSWER: Template = Template {
    before: "no answer to the offer to resume within ",
    after: "",
};

/// A folder entry (or the folder itself) whose name is taken by
/// something that is not a folder: the path.
pub const NOT_A_FOLDER: Template = Template {
    before: "",
    after: " exists and is not a folder",
};

/// A folder entry below a part that is a symbolic link or a file, which
/// the receiver does not follow.
pub const NOT_A_FOLDER_PART: &str = "a part of the path is a symbolic link or not a folder";

/// A folder entry whose folder neither came before it nor was there.
pub const NO_FOLDER: &str = "its folder was not sent before it";

/// A program the listener does not run: its name.
pub const PROGRAM_NOT_ALLOWED: Template = Template {
    before: "",
    after: " is not one of the programs this listener runs",
};

/// A command past the most the listener runs at once: the most.
pub const COMMANDS_RUNNING: Template = Template {
    before: "this listener runs at most ",
    after: " at once, and that many are running",
};

/// A command killed at its timeout: the timeout.
pub const COMMAND_TIMEOUT: Template = Template {
    before: "the command ran past ",
    after: " and was killed",
};

/// A command killed for writing more than its cap: the cap, in bytes.
pub const COMMAND_OUTPUT: Template = Template {
    before: "the command wrote more than ",
    after: " bytes and was killed",
};

/// A text with one value in it: what comes `before` the value, and what
/// `after`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Template {
    /// The text before the value.
    pub before: &'static str,
    /// The text after the value.
    pub after: &'static str,
}

impl Template {
    /// The text with `value` in it.
    pub fn format(&self, value: impl std::fmt::Display) -> String {
        format!("{}{value}{}", self.before, self.after)
    }

    /// The value in `text`, when `text` is this template's, with a value
    /// that is not empty.
    pub fn value<'a>(&self, text: &'a str) -> Option<&'a str> {
        text.strip_prefix(self.before)?
            .strip_suffix(self.after)
            .filter(|value| !value.is_empty())
    }

    /// `text`, when it is this template's, with what `insert` makes of its
    /// value put into the text after the value, before the first `at` (at
    /// the end for ""): how a caller adds its own words (the CLI, a flag)
    /// to a refusal written without them.
    pub fn insert(&self, text: &str, at: &str, insert: impl Fn(&str) -> String) -> Option<String> {
        let value = self.value(text)?;
        let split = if at.is_empty() {
            self.after.len()
        } else {
            self.after.find(at)?
        };
        let (head, tail) = self.after.split_at(split);
        Some(format!(
            "{}{value}{head}{}{tail}",
            self.before,
            insert(value)
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_template_finds_its_value_again() {
        let text = MAX_CONNS.format(8);
        assert_eq!(
            text,
            "this listener serves at most 8 connections at once; try again later"
        );
        assert_eq!(MAX_CONNS.value(&text), Some("8"));
        assert_eq!(
            FILE_EXISTS.value(&FILE_EXISTS.format("a.txt")),
            Some("a.txt")
        );
        assert_eq!(MAX_CONNS.value(NEEDS_SECRET), None);
        assert_eq!(FILE_EXISTS.value(FILE_EXISTS.after), None, "no name");
    }

    #[test]
    fn a_caller_inserts_its_words_where_it_says() {
        let text = MAX_CONNS.format(8);
        assert_eq!(
            MAX_CONNS.insert(&text, ";", |max| format!(" (max {max})")),
            Some(
                "this listener serves at most 8 connections at once (max 8); try again later"
                    .to_owned()
            )
        );
        assert_eq!(
            MAX_CONNS.insert(&text, "", |_| "!".to_owned()),
            Some(format!("{text}!"))
        );
        assert_eq!(MAX_CONNS.insert(NEEDS_SECRET, "", |_| "!".to_owned()), None);
    }

    /// A peer written from docs/wire.md alone must recognise every text a
    /// listener sends: each is there, exactly, with its value named.
    #[test]
    fn the_wire_docs_carry_every_text() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/wire.md");
        let docs = std::fs::read_to_string(path).expect("docs/wire.md");
        let texts = [
            NEEDS_SECRET.to_owned(),
            HAS_NO_SECRET.to_owned(),
            RUNS_NO_COMMANDS.to_owned(),
            SAVES_NO_FILES.to_owned(),
            BLOCKING_ENGINE.to_owned(),
            BLOCKING_NO_STREAM.to_owned(),
            MAX_CONNS.format("N"),
            HANDSHAKES_BUSY.format("N"),
            UID_NOT_ALLOWED.format("UID"),
            IDLE.format("D"),
            FRAME_TOO_LARGE.format("M"),
            FILE_EXISTS.format("NAME"),
            RESUME_BUSY.format("NAME"),
            RESUME_NO_ANSWER.format("D"),
            NOT_A_FOLDER.format("PATH"),
            NOT_A_FOLDER_PART.to_owned(),
            NO_FOLDER.to_owned(),
            PROGRAM_NOT_ALLOWED.format("PROGRAM"),
            COMMANDS_RUNNING.format("N"),
            COMMAND_TIMEOUT.format("D"),
            COMMAND_OUTPUT.format("N"),
        ];
        for text in texts {
            assert!(
                docs.contains(&format!("`{text}`")),
                "docs/wire.md lacks `{text}`"
            );
        }
    }
}
