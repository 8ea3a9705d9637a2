//! `Stats::parse` on an arbitrary pong body: never panics, refuses exactly
//! the bodies too short for the received count, and reads the counters it
//! accepts from where `Stats::to_body` writes them. The reverse stream's
//! bodies too (`SendRequest::parse`, `Streamed::parse`): a listener reads
//! the first from any peer, a client the second.

#![no_main]

use libfuzzer_sys::fuzz_target;
use msg_proto::{SendRequest, Stats, Streamed};

fuzz_target!(|body: &[u8]| {
    match Stats::parse(body) {
        Ok(stats) => {
            assert!(body.len() >= 8);
            let written = stats.to_body();
            // A body of 8 to 15 bytes (an older receiver's, or a cut one)
            // reads `reordered` as 0; bytes past 16 are ignored.
            if body.len() >= Stats::BODY_LEN {
                assert_eq!(written[..], body[..Stats::BODY_LEN]);
            } else {
                assert_eq!(written[..8], body[..8]);
                assert_eq!(stats.reordered, 0);
            }
        }
        Err(_) => assert!(body.len() < 8),
    }
    if let Ok(request) = SendRequest::parse(body, 1 << 24) {
        assert!(!request.duration.is_zero() && request.duration <= SendRequest::MAX_DURATION);
        assert_eq!(request.to_body()[..12], body[..12]);
    }
    if let Ok(streamed) = Streamed::parse(body) {
        assert_eq!(streamed.to_body()[..8], body[..8]);
    }
});
