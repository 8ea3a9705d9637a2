//! Folders, sans-IO: the three messages that carry a folder and all it
//! holds over one connection, the validated [`TreePath`] that keeps every
//! entry inside the folder, and [`TreeReceiving`], which checks the stream
//! of entries as it arrives.
//!
//! ```text
//! sender                                              receiver
//!   | TreeStart   name, mode, files, folders, bytes     |
//!   |-------------------------------------------------->|
//!   |                FileResult  2 ready / 1 refused    |
//!   |<--------------------------------------------------|
//!   | TreeEntry   folder "a"                            |  (no waiting: the
//!   | TreeEntry   file "a/x", size                      |   sender streams
//!   | FileChunk … FileEnd  (exactly as for one file)    |   every entry, and
//!   | TreeEntry   …                                     |   the verdicts
//!   | TreeEnd                                           |   come back in the
//!   |-------------------------------------------------->|   same order)
//!   |      FileResult  per entry: 0 saved / 1 refused   |
//!   |      FileResult  0 saved: the folder's name       |  (answers TreeEnd)
//!   |<--------------------------------------------------|
//! ```
//!
//! A refused entry does not end the transfer: its content (which follows
//! all the same) is checked and thrown away, and the next entry is taken.
//! Only bytes that break the stream (a chunk out of order or past its size,
//! a message of the wrong kind, a body of the wrong length) end it.
//!
//! Paths are relative to the folder, `/`-separated, each part a
//! [`FileName`]: no `..`, no `.`, no empty part, no absolute path, no
//! backslash or control character. The receiver still opens each part
//! itself without following a symbolic link, since what is on its disk is
//! not the sender's to vouch for.

use std::fmt;

use bytes::{BufMut, Bytes, BytesMut};

use crate::file::{
    FileEnd, FileError, FileHeader, FileName, HashAlgorithm, NameProblem, Receiving,
};
use crate::{Kind, Message};

/// The longest [`TreePath`], in bytes: 4096 (`PATH_MAX` on Linux).
pub const MAX_PATH_LEN: usize = 4096;

/// kind (1) + mode (2) + size (8) + path length (2).
const ENTRY_FIXED_LEN: usize = 13;

/// files (8) + folders (8) + bytes (8) + mode (2) + name length (2).
const START_FIXED_LEN: usize = 28;

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

/// What a [`TreeEntry`] is. On the wire one byte: `1` file, `2` folder;
/// any other is decoded (so that the receiver can refuse that entry alone
/// and go on) as [`EntryKind::Other`], which carries no content.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EntryKind {
    /// A regular file: its content follows, as chunks and an end.
    File,
    /// A folder to make.
    Folder,
    /// A type this version does not save (a link, a device...).
    Other(u8),
}

impl From<EntryKind> for u8 {
    fn from(kind: EntryKind) -> Self {
        match kind {
            EntryKind::File => 1,
            EntryKind::Folder => 2,
            EntryKind::Other(byte) => byte,
        }
    }
}

impl From<u8> for EntryKind {
    fn from(byte: u8) -> Self {
        match byte {
            1 => Self::File,
            2 => Self::Folder,
            other => Self::Other(other),
        }
    }
}

/// The body of a [`Kind::TreeStart`]: the folder about to be sent.
///
/// ```text
///  0               8               16              24      26      28
/// +---------------+---------------+---------------+-------+-------+------
/// |     files     |    folders    |     bytes     | mode  |namelen| name
/// |    u64 BE     |    u64 BE     |    u64 BE     |u16 BE |u16 BE |
/// +---------------+---------------+---------------+-------+-------+------
/// ```
///
/// The counts are for a progress bar and a summary: a receiver never
/// allocates by them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeStart {
    /// The folder's name, saved as a folder of that name in the save
    /// directory.
    pub name: FileName,
    /// Its permission bits (as [`FileHeader::mode`]).
    pub mode: u32,
    /// How many files follow.
    pub files: u64,
    /// How many folders follow (the folder itself not counted).
    pub folders: u64,
    /// The files' content, in bytes.
    pub bytes: u64,
}

impl TreeStart {
    /// The [`Kind::TreeStart`] message, `seq` 0.
    pub fn to_message(&self) -> Message {
        let name = self.name.as_str().as_bytes();
        let mut body = BytesMut::with_capacity(START_FIXED_LEN + name.len());
        body.put_u64(self.files);
        body.put_u64(self.folders);
        body.put_u64(self.bytes);
        // Cannot truncate: permission bits fit in 16.
        body.put_u16((self.mode & 0o7777) as u16);
        // Cannot truncate: a FileName is at most 255 bytes.
        body.put_u16(name.len() as u16);
        body.put_slice(name);
        Message::new(Kind::TreeStart, 0, body.freeze())
    }

    /// Reads a [`Kind::TreeStart`] message; `mode` comes out masked to
    /// [`MODE_MASK`](crate::file::MODE_MASK).
    ///
    /// # Errors
    ///
    /// [`FileError::UnexpectedKind`], [`FileError::BodyTooShort`],
    /// [`FileError::BadLength`] or [`FileError::BadName`].
    pub fn from_message(msg: &Message) -> Result<Self, FileError> {
        crate::file::expect_kind(msg, Kind::TreeStart)?;
        let (fixed, name) = split_fixed::<START_FIXED_LEN>(&msg.body, "a folder start body")?;
        let u64_at = |at: usize| u64::from_be_bytes(fixed[at..at + 8].try_into().expect("8"));
        Ok(Self {
            files: u64_at(0),
            folders: u64_at(8),
            bytes: u64_at(16),
            mode: u32::from(u16::from_be_bytes([fixed[24], fixed[25]])) & crate::file::MODE_MASK,
            name: FileName::new(utf8_name(name)?)?,
        })
    }
}

/// The body of a [`Kind::TreeEntry`]: one folder or file of the tree.
///
/// ```text
///  0   1       3               11      13
/// +---+-------+---------------+-------+----------------
/// |knd| mode  |     size      |pathlen|  path ...
/// |u8 |u16 BE |    u64 BE     |u16 BE |  (pathlen bytes of UTF-8)
/// +---+-------+---------------+-------+----------------
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeEntry {
    /// A file or a folder.
    pub kind: EntryKind,
    /// Its permission bits (as [`FileHeader::mode`]).
    pub mode: u32,
    /// A file's content length; 0 for anything else.
    pub size: u64,
    /// Where it goes, relative to the folder.
    pub path: TreePath,
}

impl TreeEntry {
    /// The [`Kind::TreeEntry`] message, `seq` 0.
    pub fn to_message(&self) -> Message {
        let path = self.path.as_str().as_bytes();
        let mut body = BytesMut::with_capacity(ENTRY_FIXED_LEN + path.len());
        body.put_u8(self.kind.into());
        // Cannot truncate: permission bits fit in 16.
        body.put_u16((self.mode & 0o7777) as u16);
        body.put_u64(self.size);
        // Cannot truncate: a TreePath is at most MAX_PATH_LEN bytes.
        body.put_u16(path.len() as u16);
        body.put_slice(path);
        Message::new(Kind::TreeEntry, 0, body.freeze())
    }

    /// Reads a [`Kind::TreeEntry`] message, strictly: an unknown kind or a
    /// bad path is an error here. [`TreeReceiving`] reads the same body but
    /// refuses such an entry alone.
    ///
    /// # Errors
    ///
    /// [`FileError::UnexpectedKind`], [`FileError::BodyTooShort`],
    /// [`FileError::BadLength`], [`FileError::ContentOfNoFile`],
    /// [`FileError::UnknownEntryType`] or [`FileError::BadPath`].
    pub fn from_message(msg: &Message) -> Result<Self, FileError> {
        let raw = RawEntry::from_message(msg)?;
        if let EntryKind::Other(found) = raw.kind {
            return Err(FileError::UnknownEntryType { found });
        }
        raw.checked()
    }
}

/// An entry's fixed fields, read before its path is judged.
struct RawEntry {
    kind: EntryKind,
    mode: u32,
    size: u64,
    path: Result<String, FileError>,
}

impl RawEntry {
    /// What breaks the stream is an error here; what concerns this entry
    /// alone (its path) is kept for [`RawEntry::checked`].
    fn from_message(msg: &Message) -> Result<Self, FileError> {
        crate::file::expect_kind(msg, Kind::TreeEntry)?;
        let (fixed, path) = split_fixed::<ENTRY_FIXED_LEN>(&msg.body, "a folder entry body")?;
        let kind = EntryKind::from(fixed[0]);
        let size = u64::from_be_bytes(fixed[3..11].try_into().expect("8 bytes"));
        if kind != EntryKind::File && size != 0 {
            return Err(FileError::ContentOfNoFile {
                kind: fixed[0],
                size,
            });
        }
        let path = std::str::from_utf8(path)
            .map(str::to_owned)
            .map_err(|_| FileError::BadPath {
                path: String::from_utf8_lossy(path).into_owned(),
                reason: PathProblem::NotUtf8,
            });
        Ok(Self {
            kind,
            mode: u32::from(u16::from_be_bytes([fixed[1], fixed[2]])) & crate::file::MODE_MASK,
            size,
            path,
        })
    }

    fn checked(self) -> Result<TreeEntry, FileError> {
        Ok(TreeEntry {
            kind: self.kind,
            mode: self.mode,
            size: self.size,
            path: TreePath::new(&self.path?)?,
        })
    }

    /// The path as it came, for a refusal.
    fn shown_path(&self) -> String {
        match &self.path {
            Ok(path) => path.clone(),
            Err(FileError::BadPath { path, .. }) => path.clone(),
            Err(_) => String::new(),
        }
    }
}

/// The [`Kind::TreeEnd`] message: no body.
pub fn tree_end() -> Message {
    Message::new(Kind::TreeEnd, 0, Bytes::new())
}

/// A body's fixed part and the name after it, whose length is the fixed
/// part's last two bytes; exactly that long.
fn split_fixed<'b, const N: usize>(
    body: &'b [u8],
    what: &'static str,
) -> Result<(&'b [u8; N], &'b [u8]), FileError> {
    let Some((fixed, rest)) = body.split_first_chunk::<N>() else {
        return Err(FileError::BodyTooShort {
            what,
            len: body.len(),
            min: N,
        });
    };
    let len = usize::from(u16::from_be_bytes([fixed[N - 2], fixed[N - 1]]));
    if rest.len() != len {
        return Err(FileError::BadLength {
            what,
            len: body.len(),
            expected: N + len,
        });
    }
    Ok((fixed, rest))
}

fn utf8_name(name: &[u8]) -> Result<&str, FileError> {
    std::str::from_utf8(name).map_err(|_| FileError::BadName {
        name: String::from_utf8_lossy(name).into_owned(),
        reason: NameProblem::NotUtf8,
    })
}

/// What the next message of a folder transfer means for the receiver.
#[derive(Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TreeStep<'m> {
    /// A folder to make.
    Folder(TreeEntry),
    /// A file to save: its content follows ([`TreeStep::Content`], then
    /// [`TreeStep::FileEnd`]).
    File(TreeEntry),
    /// An entry refused for itself (its path, its type): answer the
    /// reason and go on. When it was a file its content still follows,
    /// checked as any file's, for the caller to throw away.
    Refused {
        /// The path as it came (escape it to show it).
        path: String,
        /// Why.
        reason: FileError,
    },
    /// The next piece of the current file's content, checked against its
    /// size before it is handed out.
    Content(&'m [u8]),
    /// The current file's end, its size checked (a short file is this
    /// entry's refusal, not the stream's); the digest is the caller's to
    /// check ([`FileEnd::check`]) against what it hashed.
    FileEnd(Result<FileEnd, FileError>),
    /// [`Kind::TreeEnd`]: the folder is complete.
    End,
}

/// The receiver's side of one folder transfer, from after its
/// [`TreeStart`] to its [`Kind::TreeEnd`]: it checks each message and says
/// what it means, keeping a file's chunks in order and within its size
/// exactly as [`Receiving`] does for a single file.
///
/// An error from [`TreeReceiving::on_message`] breaks the stream: the
/// caller refuses and closes. A [`TreeStep::Refused`] or a failed
/// [`TreeStep::FileEnd`] is one entry's: the caller answers it and reads
/// on.
#[derive(Debug, Clone, Default)]
pub struct TreeReceiving {
    /// The file whose content is arriving, if any.
    file: Option<Receiving>,
    /// Whether [`Kind::TreeEnd`] came.
    ended: bool,
}

impl TreeReceiving {
    /// A transfer whose [`TreeStart`] was accepted.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether a file's content is arriving.
    pub fn in_file(&self) -> bool {
        self.file.is_some()
    }

    /// Checks the next message and says what it is.
    ///
    /// # Errors
    ///
    /// What breaks the stream: a message of a kind this step does not
    /// take, a chunk out of order, empty, too large or past the file's
    /// size, an entry body of the wrong length or a non-file with
    /// content, anything after [`Kind::TreeEnd`].
    pub fn on_message<'m>(&mut self, msg: &'m Message) -> Result<TreeStep<'m>, FileError> {
        if self.ended {
            return Err(FileError::UnexpectedKind {
                expected: Kind::TreeEntry,
                found: msg.kind,
            });
        }
        if let Some(file) = &mut self.file {
            if msg.kind == Kind::FileEnd {
                let file = self.file.take().expect("a file is arriving");
                return Ok(TreeStep::FileEnd(file.end(msg).map(|(_, end)| end)));
            }
            return file.on_chunk(msg).map(TreeStep::Content);
        }
        match msg.kind {
            Kind::TreeEnd if msg.body.is_empty() => {
                self.ended = true;
                Ok(TreeStep::End)
            }
            Kind::TreeEnd => Err(FileError::BadLength {
                what: "a folder end body",
                len: msg.body.len(),
                expected: 0,
            }),
            _ => self.on_entry(msg),
        }
    }

    fn on_entry(&mut self, msg: &Message) -> Result<TreeStep<'static>, FileError> {
        let raw = RawEntry::from_message(msg)?;
        if raw.kind == EntryKind::File {
            // Followed by its content whatever becomes of it: count it
            // under a stand-in name until its end.
            self.file = Some(Receiving::new(FileHeader {
                name: FileName::new("entry").expect("a plain name"),
                size: raw.size,
                algorithm: HashAlgorithm::Blake3,
                mode: raw.mode,
            }));
        }
        if let EntryKind::Other(found) = raw.kind {
            return Ok(TreeStep::Refused {
                path: raw.shown_path(),
                reason: FileError::UnknownEntryType { found },
            });
        }
        let path = raw.shown_path();
        match raw.checked() {
            Ok(entry) if entry.kind == EntryKind::File => Ok(TreeStep::File(entry)),
            Ok(entry) => Ok(TreeStep::Folder(entry)),
            Err(reason) => Ok(TreeStep::Refused { path, reason }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::file::{DIGEST_LEN, chunk};
    use proptest::prelude::*;

    fn entry(kind: EntryKind, path: &str, size: u64) -> TreeEntry {
        TreeEntry {
            kind,
            mode: 0o644,
            size,
            path: TreePath::new(path).unwrap(),
        }
    }

    fn refusal(path: &str) -> PathProblem {
        match TreePath::new(path) {
            Err(FileError::BadPath { path: got, reason }) => {
                assert_eq!(got, path);
                reason
            }
            other => panic!("{path:?} was not refused: {other:?}"),
        }
    }

    #[test]
    fn hostile_paths_are_refused_with_the_right_reason() {
        assert_eq!(refusal("../x"), PathProblem::Dots);
        assert_eq!(refusal("/etc/x"), PathProblem::Absolute);
        assert_eq!(refusal("a/../../x"), PathProblem::Dots);
        assert_eq!(refusal("a/./x"), PathProblem::Dots);
        assert_eq!(refusal("a//x"), PathProblem::EmptyPart);
        assert_eq!(refusal("a/"), PathProblem::EmptyPart);
        assert_eq!(refusal(""), PathProblem::Empty);
        assert_eq!(
            refusal("a\\..\\x"),
            PathProblem::Part(NameProblem::Separator('\\'))
        );
        assert_eq!(
            refusal("a/\x1b[2J"),
            PathProblem::Part(NameProblem::Control('\x1b'))
        );
        assert_eq!(
            refusal(&"a/".repeat(2049)[..4097]),
            PathProblem::TooLong { len: 4097 }
        );
        assert_eq!(
            TreePath::new("../x").unwrap_err().to_string(),
            r#"refused path "../x": it has a '.' or '..' part"#
        );
        for path in ["a", "a/b/c.txt", ".hidden/x", "a b/...", "ünï/cödé"] {
            assert_eq!(TreePath::new(path).unwrap().as_str(), path);
        }
        assert_eq!(
            TreePath::new("a/b/c.txt").unwrap().file_name().as_str(),
            "c.txt"
        );
    }

    /// The vectors printed in `docs/wire.md`: the start of a folder
    /// `photos` (mode 0o755, 2 files, 1 folder, 10 bytes) and its entry
    /// for the file `2024/a.jpg` (mode 0o644, 4 bytes), as whole messages.
    const START_VECTOR: &[u8] = b"\x6d\x73\x01\x14\x00\x00\x00\x00\
        \x00\x00\x00\x00\x00\x00\x00\x00\
        \x00\x00\x00\x00\x00\x00\x00\x00\
        \x00\x00\x00\x22\
        \x00\x00\x00\x00\x00\x00\x00\x02\
        \x00\x00\x00\x00\x00\x00\x00\x01\
        \x00\x00\x00\x00\x00\x00\x00\x0a\
        \x01\xed\x00\x06photos";
    const ENTRY_VECTOR: &[u8] = b"\x6d\x73\x01\x15\x00\x00\x00\x00\
        \x00\x00\x00\x00\x00\x00\x00\x00\
        \x00\x00\x00\x00\x00\x00\x00\x00\
        \x00\x00\x00\x17\
        \x01\x01\xa4\x00\x00\x00\x00\x00\
        \x00\x00\x04\x00\x0a2024/a.jpg";

    fn encoded(msg: &Message) -> Vec<u8> {
        let mut buf = BytesMut::new();
        crate::encode(msg, &mut buf).unwrap();
        buf.to_vec()
    }

    fn start() -> TreeStart {
        TreeStart {
            name: FileName::new("photos").unwrap(),
            mode: 0o755,
            files: 2,
            folders: 1,
            bytes: 10,
        }
    }

    #[test]
    fn start_and_entry_encode_to_the_documented_vectors() {
        assert_eq!(encoded(&start().to_message()), START_VECTOR);
        let decoded = crate::decode(Bytes::from_static(START_VECTOR)).unwrap();
        assert_eq!(TreeStart::from_message(&decoded), Ok(start()));
        let file = entry(EntryKind::File, "2024/a.jpg", 4);
        assert_eq!(encoded(&file.to_message()), ENTRY_VECTOR);
        let decoded = crate::decode(Bytes::from_static(ENTRY_VECTOR)).unwrap();
        assert_eq!(TreeEntry::from_message(&decoded), Ok(file));
        assert_eq!(
            encoded(&tree_end()),
            b"\x6d\x73\x01\x16\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0"
        );
    }

    #[test]
    fn docs_carry_the_vectors() {
        let blocks = crate::doc::vectors_after("\n## Folders");
        for vector in [START_VECTOR, ENTRY_VECTOR] {
            let hex = crate::doc::hex(vector);
            assert!(blocks.contains(&hex), "{hex} not in {blocks:?}");
        }
    }

    #[test]
    fn a_tree_is_read_entry_by_entry_and_a_bad_entry_refused_alone() {
        let mut tree = TreeReceiving::new();
        let folder = entry(EntryKind::Folder, "a", 0);
        assert_eq!(
            tree.on_message(&folder.to_message()),
            Ok(TreeStep::Folder(folder))
        );
        let file = entry(EntryKind::File, "a/x", 3);
        assert_eq!(
            tree.on_message(&file.to_message()),
            Ok(TreeStep::File(file))
        );
        let bytes = chunk(0, Bytes::from_static(b"abc"));
        assert_eq!(tree.on_message(&bytes), Ok(TreeStep::Content(b"abc")));
        let end = FileEnd {
            digest: [1; DIGEST_LEN],
        };
        assert_eq!(
            tree.on_message(&end.to_message()),
            Ok(TreeStep::FileEnd(Ok(end)))
        );
        // A hostile path: refused, its content still counted, then on.
        let mut hostile = entry(EntryKind::File, "x", 2).to_message().body.to_vec();
        hostile.truncate(ENTRY_FIXED_LEN);
        hostile[11..13].copy_from_slice(&4u16.to_be_bytes());
        hostile.extend(b"../x");
        let hostile = Message::new(Kind::TreeEntry, 0, hostile);
        let step = tree.on_message(&hostile);
        assert!(
            matches!(&step, Ok(TreeStep::Refused { path, .. }) if path == "../x"),
            "{step:?}"
        );
        assert!(tree.in_file());
        assert_eq!(
            tree.on_message(&chunk(0, Bytes::from_static(b"ab"))),
            Ok(TreeStep::Content(b"ab"))
        );
        assert!(matches!(
            tree.on_message(&end.to_message()),
            Ok(TreeStep::FileEnd(Ok(_)))
        ));
        // A link (type 3): refused, no content.
        let mut link = entry(EntryKind::Folder, "l", 0).to_message().body.to_vec();
        link[0] = 3;
        assert!(matches!(
            tree.on_message(&Message::new(Kind::TreeEntry, 0, link)),
            Ok(TreeStep::Refused {
                reason: FileError::UnknownEntryType { found: 3 },
                ..
            })
        ));
        // Short content: that file's refusal, and the stream goes on.
        let short = entry(EntryKind::File, "s", 5);
        tree.on_message(&short.to_message()).unwrap();
        tree.on_message(&chunk(0, Bytes::from_static(b"ab")))
            .unwrap();
        assert!(matches!(
            tree.on_message(&end.to_message()),
            Ok(TreeStep::FileEnd(Err(FileError::TooShort { .. })))
        ));
        assert_eq!(tree.on_message(&tree_end()), Ok(TreeStep::End));
        assert!(tree.on_message(&folder_message()).is_err());
    }

    /// Found by fuzzing (the harness, not this code, was wrong): a file
    /// refused for its path still has content, bounded by its own size,
    /// not by the last accepted file's.
    #[test]
    fn a_refused_files_content_is_bounded_by_its_own_size() {
        let mut tree = TreeReceiving::new();
        let mut body = entry(EntryKind::File, "x", 5).to_message().body.to_vec();
        body.truncate(ENTRY_FIXED_LEN);
        body[11..13].copy_from_slice(&2u16.to_be_bytes());
        body.extend([0x00, 0xff]);
        let refused = Message::new(Kind::TreeEntry, 16, body);
        let step = tree.on_message(&refused);
        assert!(matches!(step, Ok(TreeStep::Refused { .. })), "{step:?}");
        assert_eq!(
            tree.on_message(&chunk(0, Bytes::from_static(b"abcd"))),
            Ok(TreeStep::Content(b"abcd"))
        );
        assert!(matches!(
            tree.on_message(&chunk(1, Bytes::from_static(b"ef"))),
            Err(FileError::TooLong { .. })
        ));
    }

    fn folder_message() -> Message {
        entry(EntryKind::Folder, "b", 0).to_message()
    }

    #[test]
    fn what_breaks_the_stream_is_an_error() {
        let mut tree = TreeReceiving::new();
        // A folder that announces content.
        let mut body = folder_message().body.to_vec();
        body[3..11].copy_from_slice(&1u64.to_be_bytes());
        assert_eq!(
            tree.on_message(&Message::new(Kind::TreeEntry, 0, body)),
            Err(FileError::ContentOfNoFile { kind: 2, size: 1 })
        );
        // A chunk between entries.
        assert!(
            tree.on_message(&chunk(0, Bytes::from_static(b"x")))
                .is_err()
        );
        // Past a file's size.
        tree.on_message(&entry(EntryKind::File, "f", 1).to_message())
            .unwrap();
        assert!(matches!(
            tree.on_message(&chunk(0, Bytes::from_static(b"xy"))),
            Err(FileError::TooLong { .. })
        ));
    }

    fn any_kind() -> impl Strategy<Value = Kind> {
        proptest::sample::select(Kind::ALL.to_vec())
    }

    proptest! {
        #[test]
        fn arbitrary_messages_never_panic_and_never_pass_a_size(
            messages in proptest::collection::vec(
                (
                    prop_oneof![3 => Just(Kind::TreeEntry), 3 => Just(Kind::FileChunk), 1 => any_kind()],
                    0u64..3,
                    proptest::collection::vec(any::<u8>(), 0..40),
                ),
                0..12,
            ),
        ) {
            let mut tree = TreeReceiving::new();
            let mut announced = 0u64;
            let mut content = 0u64;
            for (kind, seq, body) in messages {
                let msg = Message::new(kind, seq, body);
                let _ = TreeStart::from_message(&msg);
                if let Ok(entry) = TreeEntry::from_message(&msg) {
                    prop_assert_eq!(TreeEntry::from_message(&entry.to_message()), Ok(entry));
                }
                match tree.on_message(&msg) {
                    Ok(TreeStep::File(entry)) => {
                        announced = entry.size;
                        content = 0;
                    }
                    Ok(TreeStep::Content(bytes)) => {
                        content += bytes.len() as u64;
                        prop_assert!(content <= announced);
                    }
                    Ok(TreeStep::Folder(entry)) => prop_assert_eq!(entry.size, 0),
                    Ok(_) => {}
                    Err(_) => break,
                }
            }
        }

        #[test]
        fn an_accepted_path_joins_under_its_folder(
            path in prop_oneof![any::<String>(), "[./\\\\a\\x00]{0,8}"],
        ) {
            use std::path::{Component, Path};
            if let Ok(tree_path) = TreePath::new(&path) {
                for component in Path::new(tree_path.as_str()).components() {
                    prop_assert!(matches!(component, Component::Normal(_)), "{:?}", component);
                }
                prop_assert!(Path::new("/save").join(tree_path.as_str()).starts_with("/save"));
            }
        }

        #[test]
        fn any_valid_start_and_entry_round_trip(
            name in "[a-z]{1,20}",
            files in any::<u64>(),
            bytes in any::<u64>(),
            mode in 0u32..=0o777,
            parts in proptest::collection::vec("[a-z0-9 ._-]{1,12}", 1..5),
        ) {
            let start = TreeStart { name: FileName::new(&name).unwrap(), mode, files, folders: files / 2, bytes };
            prop_assert_eq!(TreeStart::from_message(&start.to_message()), Ok(start));
            if let Ok(path) = TreePath::new(&parts.join("/")) {
                let file = TreeEntry { kind: EntryKind::File, mode, size: bytes, path };
                prop_assert_eq!(TreeEntry::from_message(&file.to_message()), Ok(file));
            }
        }
    }
}
