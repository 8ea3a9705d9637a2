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

mod messages;
mod path;
mod receiving;

pub use messages::{EntryKind, TreeEntry, TreeStart};
pub use path::{PathProblem, TreePath};
pub use receiving::{TreeReceiving, TreeStep};

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
