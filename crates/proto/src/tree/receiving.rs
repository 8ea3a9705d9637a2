//! The receiver's side: [`TreeReceiving`], which checks a folder transfer
//! message by message and says what each means ([`TreeStep`]).

use super::messages::RawEntry;
use super::*;

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
