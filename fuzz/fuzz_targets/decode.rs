//! `msg_proto::decode` on arbitrary bytes: a UDP datagram or a TCP frame
//! as a peer could send it. Never panics, and whatever decodes re-encodes
//! to the very same bytes (one message, one encoding).

#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let header = msg_proto::decode_header(data);
    if let Ok(msg) = msg_proto::decode(Bytes::copy_from_slice(data)) {
        assert_eq!(header.map(|h| h.body_len as usize), Ok(msg.body.len()));
        let mut again = Vec::new();
        msg_proto::encode(&msg, &mut again).expect("a decoded body fits a u32");
        assert_eq!(again, data);
    }
});
