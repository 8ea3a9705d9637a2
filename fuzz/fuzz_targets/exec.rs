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
        // A body whose text is UTF-8 and means something comes back as it was.
        if !text.is_empty() && std::str::from_utf8(&msg.body[5..]).is_ok() {
            assert_eq!(exit.to_message().body, msg.body);
        }
    }
});
