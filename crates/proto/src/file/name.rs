//! A file's name as it travels: one path component, checked before
//! anything is written.

use std::fmt;

use super::{FileError, MAX_NAME_LEN};

/// Why [`FileName::new`] refused a name; the `reason` of
/// [`FileError::BadName`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum NameProblem {
    /// The name is empty.
    Empty,
    /// The name is `.` or `..`, which name the save directory or its parent.
    Dots,
    /// The name contains `/` or `\`, a path separator on Unix or Windows.
    Separator(char),
    /// The name contains a control character (`NUL`, escape, newline, ...):
    /// a path ends at `NUL`, and the others rewrite a terminal that prints
    /// the name.
    Control(char),
    /// The name is over [`MAX_NAME_LEN`] bytes.
    TooLong {
        /// Its length in bytes.
        len: usize,
    },
    /// The name's bytes are not UTF-8.
    NotUtf8,
    /// The name begins as a receiver's own files in the save directory do
    /// (one of [`RESERVED_PREFIXES`]): a peer's file of that name could
    /// take the place of another transfer's partial file.
    Reserved(&'static str),
    /// The name contains a character that changes how the rest is shown
    /// without being seen itself (a bidirectional override, a zero-width
    /// space, a line separator): `invoice\u{202e}fdp.exe` shows as
    /// `invoiceexe.pdf`.
    Invisible(char),
}

/// The beginnings of the names a receiver gives its own files in the save
/// directory: a file being received (`.msg-partial-` and 6 random
/// characters), a partial file kept for resuming (`.msg-resume-` and 32 hex
/// digits), the check that the directory is writable (`.msg-check-`). A
/// peer's name may not begin with one, compared without regard to ASCII
/// case (a case-insensitive file system would take `.MSG-PARTIAL-x` for
/// `.msg-partial-x`).
pub const RESERVED_PREFIXES: [&str; 3] = [PARTIAL_PREFIX, KEPT_PREFIX, CHECK_PREFIX];

/// A file being received, before it is renamed into place.
pub const PARTIAL_PREFIX: &str = ".msg-partial-";

/// A partial file kept for the sender to resume.
pub const KEPT_PREFIX: &str = ".msg-resume-";

/// The file a receiver makes, and removes, to check that it can write.
pub const CHECK_PREFIX: &str = ".msg-check-";

/// Whether `c` hides itself and changes how the characters around it are
/// shown: the bidirectional controls (Unicode's `Bidi_Control`), the line
/// and paragraph separators, the zero-width space and word joiner, and the
/// byte-order mark. The zero-width joiner and non-joiner stay: scripts
/// (Persian, the Indic ones) and emoji need them.
fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{061c}'
            | '\u{200b}'
            | '\u{200e}'
            | '\u{200f}'
            | '\u{2028}'..='\u{202e}'
            | '\u{2060}'
            | '\u{2066}'..='\u{2069}'
            | '\u{feff}'
    )
}

impl fmt::Display for NameProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `{:?}` on a char escapes it like `escape_debug`: '\\', '\0',
        // '\u{1b}', so the reason is as safe to print as the name.
        match self {
            Self::Empty => f.write_str("it is empty"),
            Self::Dots => f.write_str("it names a directory, not a file"),
            Self::Separator(c) => write!(f, "it contains {c:?}"),
            Self::Control(c) => write!(f, "it contains the control character {c:?}"),
            Self::TooLong { len } => {
                write!(f, "it is {len} bytes; the limit is {MAX_NAME_LEN}")
            }
            Self::NotUtf8 => f.write_str("it is not UTF-8"),
            Self::Reserved(prefix) => write!(
                f,
                "it begins with {prefix:?}, as the receiver's own files in the save directory do"
            ),
            Self::Invisible(c) => write!(
                f,
                "it contains {}, which is not seen and changes how the rest of the name is shown",
                c.escape_unicode()
            ),
        }
    }
}

/// A file name that is safe to create inside the save directory: one path
/// component, and nothing else.
///
/// This is what keeps a peer from writing outside the save directory. The
/// receiver never uses the sender's path, only this validated single
/// component, which it joins to a directory of its own choosing. A name is
/// refused if it
///
/// - is empty, `.` or `..` (the directory itself or its parent);
/// - contains `/` or `\`, on every platform, so that a name accepted on one
///   is never a path on another;
/// - contains a control character ([`char::is_control`]): `NUL` ends a path
///   in the kernel's eyes, and escape sequences or newlines would rewrite the
///   terminal of whoever lists the directory or reads the log;
/// - contains a character that is not seen and changes how the rest is
///   shown (a bidirectional override, a zero-width space: see
///   [`NameProblem::Invisible`]), so that a name reads as what it is;
/// - begins as the receiver's own files do ([`RESERVED_PREFIXES`]), so that
///   no peer's file takes the place of another transfer's partial one;
/// - is longer than [`MAX_NAME_LEN`] bytes.
///
/// Leading and trailing spaces and names of three or more dots are ordinary
/// names on Unix and are accepted; so are hidden names such as `.profile`.
/// Windows-only hazards (`C:x`, a drive-relative path; `CON`; a trailing
/// dot) are not checked here: a Windows receiver must refuse them itself.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FileName(String);

impl FileName {
    /// Validates `name` as a single path component.
    ///
    /// # Errors
    ///
    /// [`FileError::BadName`] with the first problem found: emptiness,
    /// dots, the first separator or control character, then the length.
    pub fn new(name: &str) -> Result<Self, FileError> {
        let refuse = |reason| FileError::BadName {
            name: name.to_owned(),
            reason,
        };
        if name.is_empty() {
            return Err(refuse(NameProblem::Empty));
        }
        if name == "." || name == ".." {
            return Err(refuse(NameProblem::Dots));
        }
        for c in name.chars() {
            if c == '/' || c == '\\' {
                return Err(refuse(NameProblem::Separator(c)));
            }
            if c.is_control() {
                return Err(refuse(NameProblem::Control(c)));
            }
            if is_invisible(c) {
                return Err(refuse(NameProblem::Invisible(c)));
            }
        }
        let start = name.as_bytes();
        if let Some(prefix) = RESERVED_PREFIXES.into_iter().find(|prefix| {
            start
                .get(..prefix.len())
                .is_some_and(|start| start.eq_ignore_ascii_case(prefix.as_bytes()))
        }) {
            return Err(refuse(NameProblem::Reserved(prefix)));
        }
        if name.len() > MAX_NAME_LEN {
            return Err(refuse(NameProblem::TooLong { len: name.len() }));
        }
        Ok(Self(name.to_owned()))
    }

    /// As [`FileName::new`], for a name's bytes (from the wire, or as the
    /// operating system holds it): bytes that are not UTF-8 are refused as
    /// such, shown with U+FFFD in their place.
    ///
    /// # Errors
    ///
    /// [`FileError::BadName`]: [`NameProblem::NotUtf8`], or
    /// [`FileName::new`]'s.
    pub fn from_bytes(name: &[u8]) -> Result<Self, FileError> {
        let name = std::str::from_utf8(name).map_err(|_| FileError::BadName {
            name: String::from_utf8_lossy(name).into_owned(),
            reason: NameProblem::NotUtf8,
        })?;
        Self::new(name)
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The name, as an owned string.
    pub fn into_string(self) -> String {
        self.0
    }
}

impl AsRef<str> for FileName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}
