//! [`TreePath`]: a path inside the folder, checked part by part before
//! anything is made.

use super::*;

/// Why [`TreePath::new`] refused a path; the `reason` of
/// [`FileError::BadPath`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PathProblem {
    /// The path is empty.
    Empty,
    /// The path starts with `/`.
    Absolute,
    /// A part is empty (`a//b`, or a `/` at the end).
    EmptyPart,
    /// A part is `.` or `..`: the folder itself, or a way out of it.
    Dots,
    /// A part that [`FileName::new`] refuses for another reason.
    Part(NameProblem),
    /// The path is over [`MAX_PATH_LEN`] bytes.
    TooLong {
        /// Its length in bytes.
        len: usize,
    },
    /// The path's bytes are not UTF-8.
    NotUtf8,
}

impl fmt::Display for PathProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => f.write_str("it is empty"),
            Self::Absolute => f.write_str("it is absolute"),
            Self::EmptyPart => f.write_str("it has an empty part"),
            Self::Dots => f.write_str("it has a '.' or '..' part"),
            Self::Part(problem) => write!(f, "a part of it is refused: {problem}"),
            Self::TooLong { len } => write!(f, "it is {len} bytes; the limit is {MAX_PATH_LEN}"),
            Self::NotUtf8 => f.write_str("it is not UTF-8"),
        }
    }
}

/// A path inside the folder being sent: one or more [`FileName`]s joined
/// by `/`, so that joined part by part to a folder it never leaves it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TreePath(String);

impl TreePath {
    /// Validates `path`.
    ///
    /// # Errors
    ///
    /// [`FileError::BadPath`] with the first problem found.
    pub fn new(path: &str) -> Result<Self, FileError> {
        let refuse = |reason| FileError::BadPath {
            path: path.to_owned(),
            reason,
        };
        if path.is_empty() {
            return Err(refuse(PathProblem::Empty));
        }
        if path.starts_with('/') {
            return Err(refuse(PathProblem::Absolute));
        }
        if path.len() > MAX_PATH_LEN {
            return Err(refuse(PathProblem::TooLong { len: path.len() }));
        }
        for part in path.split('/') {
            match FileName::new(part) {
                Ok(_) => {}
                Err(FileError::BadName { reason, .. }) => {
                    return Err(refuse(match reason {
                        NameProblem::Empty => PathProblem::EmptyPart,
                        NameProblem::Dots => PathProblem::Dots,
                        other => PathProblem::Part(other),
                    }));
                }
                Err(other) => return Err(other),
            }
        }
        Ok(Self(path.to_owned()))
    }

    /// The path.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Its parts, in order; each a valid [`FileName`].
    pub fn parts(&self) -> impl Iterator<Item = &str> {
        self.0.split('/')
    }

    /// Its last part.
    pub fn file_name(&self) -> FileName {
        let last = self.0.rsplit('/').next().unwrap_or_default();
        FileName::new(last).expect("every part was validated")
    }
}

impl fmt::Display for TreePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
