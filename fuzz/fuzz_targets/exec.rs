//! The remote-command decoders on an arbitrary message (`kind || body`):
//! `Command::from_message`, `parse_output` and `Exit::from_message`. None
//! panics, and what they accept round-trips.

#![no_main]

use libfuzzer_sys::fuzz_target;
use msg_fuzz::kind_and_body;
use msg_proto::exec::{self, Command, Exit, MAX_EXIT_TEXT};

fuzz_target!(|data: &[u8]| {
    let Some(msg) = kind_and_body(data) else {
        return;
    };
    if let Ok(command) = Command::from_message(&msg) {
        // The encoding is canonical: an accepted body is the one the
        // command writes.
        assert_eq!(command.to_message().body, msg.body);
        assert!(!command.argv().is_empty());
        assert!(command.argv().iter().all(|arg| !arg.contains(&0)));
    }
    if let Ok((stream, bytes)) = exec::parse_output(&msg) {
        assert_eq!(exec::output(stream, &bytes).body, msg.body);
    }
    if let Ok(exit) = Exit::from_message(&msg) {
        // What `msg exec` does with a peer's verdict: its own exit code.
        let _ = exit.code();
        let text = match &exit {
            Exit::Refused(text) | Exit::Killed(text) => text.as_str(),
            _ => "",
        };
        // A text that invalid UTF-8 grew past the limit (each bad byte reads
        // as a 3-byte U+FFFD) is cut on the way out, by design.
        if text.len() <= MAX_EXIT_TEXT {
            assert_eq!(Exit::from_message(&exit.to_message()), Ok(exit.clone()));
        }
        // A body in the form the encoder writes comes back byte for byte.
        // The decoder ignores the fields an outcome does not use (the
        // number of a refusal, the text of an exit status), which the
        // encoder writes as 0 and empty.
        let (number, rest) = (&msg.body[1..5], &msg.body[5..]);
        let canonical = match exit {
            Exit::Exited(_) | Exit::Signaled(_) => rest.is_empty(),
            _ => number == [0; 4] && std::str::from_utf8(rest).is_ok(),
        };
        if canonical {
            assert_eq!(exit.to_message().body, msg.body);
        }
    }
});
