//! `Stats::parse` on an arbitrary pong body: never panics, refuses exactly
//! the bodies too short for the received count, and reads the counters it
//! accepts from where `Stats::to_body` writes them.

#![no_main]

use libfuzzer_sys::fuzz_target;
use msg_proto::Stats;

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
});
