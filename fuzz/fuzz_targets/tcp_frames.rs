//! `msg_tcp::Codec`'s decoder on an arbitrary TCP stream, arriving in
//! arbitrary pieces (see `msg_fuzz::tcp_frames` for the input format), with
//! the small limit or the default one, plain or verifying tags.
//!
//! Checks that it never panics, that the frames it returns re-encode to
//! exactly the bytes they came from, that `decode_eof` names a cut frame,
//! and that the buffer never grows past what arrived plus one frame:
//!
//! `capacity <= 2 * (fed + LENGTH_PREFIX_LEN + max_frame)`
//!
//! where `fed` is every byte handed to the buffer so far. Why that bound:
//! a `BytesMut` grows only when what is asked for does not fit, and then to
//! at most twice its old allocation or what is asked for, whichever is
//! larger. What is asked for is the bytes already in the allocation (read
//! or not, so at most `fed`) plus either the next piece (also within
//! `fed`) or what `decode` reserves for the rest of the frame whose prefix
//! it has read, at most `LENGTH_PREFIX_LEN + max_frame` (more than that is
//! refused before reserving). The old allocation was smaller than the ask,
//! so the new one is under twice `fed + LENGTH_PREFIX_LEN + max_frame`. A
//! decoder that reserved what a hostile prefix announces before checking it
//! against the limit would break the bound by gigabytes with the small
//! limit.

#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use msg_fuzz::tcp_frames::{DEFAULT_LIMIT, MAX_PIECES, OPENER, SMALL_MAX_FRAME};
use msg_fuzz::{FRAME_KEY, Reader};
use msg_proto::auth::{FrameOpener, FrameSealer};
use msg_tcp::{Codec, DEFAULT_MAX_FRAME, Error, LENGTH_PREFIX_LEN};
use tokio_util::codec::{Decoder, Encoder};

fuzz_target!(|data: &[u8]| {
    let mut input = Reader::new(data);
    let flags = input.u8().unwrap_or(0);
    let count = input.u8().unwrap_or(0) % (MAX_PIECES + 1);
    let pieces = input.take(usize::from(count));
    let stream = input.rest();

    let max_frame = if flags & DEFAULT_LIMIT != 0 {
        DEFAULT_MAX_FRAME
    } else {
        SMALL_MAX_FRAME
    };
    let authenticated = flags & OPENER != 0;
    let mut codec = Codec::new(max_frame);
    if authenticated {
        codec.set_opener(FrameOpener::new(&FRAME_KEY));
    }
    let bound = |fed: usize| 2 * (fed + LENGTH_PREFIX_LEN + max_frame);

    let mut buf = BytesMut::new();
    let mut fed = 0;
    let mut decoded = Vec::new();
    // How much of the stream the decoded frames took.
    let mut consumed = 0;
    let mut lengths = pieces.iter().map(|&len| usize::from(len) + 1).cycle();
    let mut failed = false;
    'feed: while fed < stream.len() {
        let len = lengths.next().unwrap_or(stream.len());
        let piece = &stream[fed..(fed + len).min(stream.len())];
        buf.extend_from_slice(piece);
        fed += piece.len();
        assert!(
            buf.capacity() <= bound(fed),
            "{} > {}",
            buf.capacity(),
            bound(fed)
        );
        loop {
            let result = codec.decode(&mut buf);
            assert!(
                buf.capacity() <= bound(fed),
                "{} > {}",
                buf.capacity(),
                bound(fed)
            );
            match result {
                Ok(Some(msg)) => {
                    decoded.push(msg);
                    consumed = fed - buf.len();
                }
                Ok(None) => break,
                // The stream is corrupt: a connection would close here.
                Err(_) => {
                    failed = true;
                    break 'feed;
                }
            }
        }
    }
    if !failed {
        // Everything whole was decoded above, so at EOF what is left is a
        // cut frame or nothing.
        let left = buf.len();
        match codec.decode_eof(&mut buf) {
            Ok(None) => assert_eq!(left, 0),
            Err(Error::ClosedMidFrame { buffered }) => {
                assert!(left > 0);
                assert_eq!(buffered, left);
            }
            other => panic!("decode_eof after decode said None: {other:?}"),
        }
    }

    // One message, one frame: re-encoding (and re-tagging, from the same
    // counter) what was decoded gives back the bytes it came from.
    let mut encoder = Codec::new(max_frame);
    if authenticated {
        encoder.set_sealer(FrameSealer::new(&FRAME_KEY));
    }
    let mut again = BytesMut::new();
    for msg in &decoded {
        encoder.encode(msg, &mut again).expect("it fit as a frame");
    }
    assert_eq!(again[..], stream[..consumed]);
});
