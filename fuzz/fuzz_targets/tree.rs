//! The folder and resume decoders on peer bytes (see `msg_fuzz::tree` for
//! the input format): `TreeStart`, `TreeEntry`, `FileOffer` and `FileFrom`
//! on each message, and one `TreeReceiving` fed all of them in order.

#![no_main]

use std::path::{Component, Path};

use libfuzzer_sys::fuzz_target;
use msg_fuzz::tree::messages;
use msg_proto::file::{FileFrom, FileOffer};
use msg_proto::tree::{TreeEntry, TreeReceiving, TreeStart, TreeStep};

fuzz_target!(|data: &[u8]| {
    let Some((size, messages)) = messages(data) else {
        return;
    };
    let mut tree = TreeReceiving::new();
    let mut announced = 0u64;
    let mut content = 0u64;
    for msg in &messages {
        if let Ok(start) = TreeStart::from_message(msg) {
            assert_eq!(TreeStart::from_message(&start.to_message()), Ok(start));
        }
        if let Ok(entry) = TreeEntry::from_message(msg) {
            // An accepted path never leaves the folder it is joined to.
            for part in Path::new(entry.path.as_str()).components() {
                assert!(matches!(part, Component::Normal(_)));
            }
            assert_eq!(TreeEntry::from_message(&entry.to_message()), Ok(entry));
        }
        if let Ok(offer) = FileOffer::from_message(msg, size) {
            assert!((1..=size).contains(&offer.offset));
        }
        if let Ok(from) = FileFrom::from_message(msg, size) {
            assert!(from.offset == 0 || from.offset == size);
        }
        match tree.on_message(msg) {
            Ok(TreeStep::File(entry)) => {
                announced = entry.size;
                content = 0;
            }
            // A file refused for itself (its path) still has content,
            // bounded by its own size: the entry's bytes 3..11.
            Ok(TreeStep::Refused { .. }) if tree.in_file() => {
                announced = u64::from_be_bytes(msg.body[3..11].try_into().unwrap());
                content = 0;
            }
            Ok(TreeStep::Content(bytes)) => {
                content += bytes.len() as u64;
                assert!(content <= announced);
            }
            Ok(_) => {}
            Err(_) => return,
        }
    }
});
