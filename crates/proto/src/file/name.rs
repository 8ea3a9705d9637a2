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
        }
        if name.len() > MAX_NAME_LEN {
            return Err(refuse(NameProblem::TooLong { len: name.len() }));
        }
        Ok(Self(name.to_owned()))
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
