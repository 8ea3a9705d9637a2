//! The file-transfer decoders on peer bytes (see `msg_fuzz::file` for the
//! input format): `FileHeader`, `FileEnd` and `FileResult::from_message`,
//! `FileName::new`, and a `Receiving` fed arbitrary chunk sequences.

#![no_main]

use std::path::{Component, Path};

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use msg_fuzz::file::{MESSAGE, NAME, RECEIVING, SELECTORS};
use msg_fuzz::{Reader, kind_and_body};
use msg_proto::file::{
    DIGEST_LEN, FileEnd, FileHeader, FileName, FileResult, HashAlgorithm, MAX_NAME_LEN,
    MAX_RESULT_TEXT, Receiving,
};
use msg_proto::{Kind, Message};

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    match selector % SELECTORS {
        MESSAGE => message(rest),
        NAME => name(rest),
        RECEIVING => receiving(rest),
        _ => unreachable!(),
    }
});

/// The three message decoders; what they accept round-trips.
fn message(data: &[u8]) {
    let Some(msg) = kind_and_body(data) else {
        return;
    };
    if let Ok(header) = FileHeader::from_message(&msg) {
        // Byte for byte, but for the mode bits the decoder drops.
        let mut again = header.to_message().body.to_vec();
        let mut original = msg.body.to_vec();
        again[9..11].fill(0);
        original[9..11].fill(0);
        assert_eq!(again, original);
        assert_eq!(FileHeader::from_message(&header.to_message()), Ok(header));
    }
    if let Ok(end) = FileEnd::from_message(&msg) {
        assert_eq!(end.to_message().body, msg.body);
    }
    if let Ok(result) = FileResult::from_message(&msg) {
        let text = match &result {
            FileResult::Saved { name } => name.as_str(),
            FileResult::Refused { reason } => reason.as_str(),
            _ => "",
        };
        // Invalid UTF-8 can read longer than the limit (U+FFFD is 3 bytes);
        // such a text is cut on the way out, by design.
        if text.len() <= MAX_RESULT_TEXT {
            assert_eq!(
                FileResult::from_message(&result.to_message()),
                Ok(result.clone())
            );
        }
        if !text.is_empty() && std::str::from_utf8(&msg.body[1..]).is_ok() {
            assert_eq!(result.to_message().body, msg.body);
        }
    }
}

/// An accepted name is exactly one normal path component: the receiver
/// joins it to its save directory and must stay inside it.
fn name(data: &[u8]) {
    let name = match std::str::from_utf8(data) {
        Ok(name) => name,
        Err(err) => std::str::from_utf8(&data[..err.valid_up_to()]).expect("valid prefix"),
    };
    if let Ok(file_name) = FileName::new(name) {
        assert_eq!(file_name.as_str(), name);
        let components: Vec<_> = Path::new(name).components().collect();
        assert_eq!(components, [Component::Normal(name.as_ref())]);
        assert!(name.len() <= MAX_NAME_LEN);
        assert!(!name.chars().any(|c| c.is_control() || c == '\\'));
        assert_eq!(
            Path::new("/save").join(name).parent(),
            Some(Path::new("/save"))
        );
    }
}

/// A transfer of the announced size, fed chunk after chunk and then ended:
/// it never hands out more than the size, hands out each accepted chunk
/// whole, leaves its count alone on a refused one (the receiver closes
/// there, but the state must not have moved), and ends well only on
/// exactly the size.
fn receiving(data: &[u8]) {
    let mut input = Reader::new(data);
    let size = input.u64().unwrap_or(0);
    let header = FileHeader {
        name: FileName::new("f").expect("a plain name"),
        size,
        algorithm: HashAlgorithm::Blake3,
        mode: 0o644,
    };
    let mut receiving = Receiving::new(header.clone());
    let mut total: u64 = 0;
    while let (Some(kind), Some(seq), Some(len)) = (input.u8(), input.u8(), input.u16()) {
        let Ok(kind) = Kind::try_from(kind) else {
            return;
        };
        let body = Bytes::copy_from_slice(input.take(usize::from(len)));
        let msg = Message::new(kind, u64::from(seq), body);
        let before = receiving.received();
        match receiving.on_chunk(&msg) {
            Ok(content) => {
                assert_eq!(content, &msg.body[..]);
                assert!(!content.is_empty());
                total += content.len() as u64;
                assert_eq!(receiving.received(), total);
                assert!(total <= size);
            }
            Err(_) => {
                // Refused, so not counted.
                assert_eq!(receiving.received(), before);
            }
        }
    }
    let digest = [0; DIGEST_LEN];
    let ended = receiving.on_end(&FileEnd { digest }.to_message(), &digest);
    assert_eq!(ended.is_ok(), total == size);
    if let Ok(ended) = ended {
        assert_eq!(ended, header);
    }
}
