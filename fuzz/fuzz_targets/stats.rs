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
            let known = body.len().min(Stats::BODY_LEN);
            // An 8-byte (older) body reads `reordered` as 0, which writes as
            // eight zero bytes; a longer tail is ignored.
            assert_eq!(written[..known], body[..known]);
            if body.len() < Stats::BODY_LEN {
                assert_eq!(stats.reordered, 0);
            }
        }
        Err(_) => assert!(body.len() < 8),
    }
});
