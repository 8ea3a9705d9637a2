//! The folder's messages: its [`TreeStart`] (totals and name) and each
//! [`TreeEntry`] (a file or a folder, its mode, size and path).

use super::*;

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
pub(super) struct RawEntry {
    pub(super) kind: EntryKind,
    pub(super) mode: u32,
    pub(super) size: u64,
    pub(super) path: Result<String, FileError>,
}

impl RawEntry {
    /// What breaks the stream is an error here; what concerns this entry
    /// alone (its path) is kept for [`RawEntry::checked`].
    pub(super) fn from_message(msg: &Message) -> Result<Self, FileError> {
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

    pub(super) fn checked(self) -> Result<TreeEntry, FileError> {
        Ok(TreeEntry {
            kind: self.kind,
            mode: self.mode,
            size: self.size,
            path: TreePath::new(&self.path?)?,
        })
    }

    /// The path as it came, for a refusal.
    pub(super) fn shown_path(&self) -> String {
        match &self.path {
            Ok(path) => path.clone(),
            Err(FileError::BadPath { path, .. }) => path.clone(),
            Err(_) => String::new(),
        }
    }
}
