//! The lesson, run in-process: what it must show every time.

use super::*;

#[test]
fn time_wait_holds_the_port_and_reuseport_shares_it() {
    for _ in 0..5 {
        check(&run().unwrap());
    }
}

fn check(lesson: &Lesson) {
    // 1. The server's end in TIME_WAIT on its own port; without
    // SO_REUSEADDR the port is refused, with it bound.
    let restart = &lesson.time_wait;
    assert!(restart.time_wait && restart.reads >= 1, "{restart:?}");
    let entry = restart
        .entries
        .iter()
        .find(|e| e.state == "TIME-WAIT")
        .expect("a TIME_WAIT entry");
    assert_eq!(entry.st, "06");
    assert_eq!(entry.local, format!("127.0.0.1:{}", restart.port));
    assert_eq!(entry.remote, format!("127.0.0.1:{}", restart.client_port));
    let timer = entry.timer_ms.expect("TIME_WAIT's timer");
    assert!(timer > 0 && timer <= 60_000, "{entry:?}");
    let without = &restart.without_reuseaddr;
    assert!(!without.ok && without.in_use, "{without:?}");
    let error = without.error.as_deref().unwrap();
    assert!(error.contains("Address already in use"), "{error}");
    assert!(restart.with_reuseaddr.ok, "{:?}", restart.with_reuseaddr);

    // 2. Both receivers got some, together all, nobody twice; each
    // sender's datagrams to one receiver; a third bind refused.
    let shared = &lesson.reuseport;
    let [one, two] = shared.received;
    assert!(one > 0 && two > 0, "{shared:?}");
    assert_eq!(one + two, shared.sent, "{shared:?}");
    assert_eq!(shared.sent, shared.senders * PER_SENDER);
    assert_eq!(shared.senders, shared.rounds * SENDERS);
    assert_eq!((shared.duplicates, shared.garbled), (0, 0), "{shared:?}");
    assert_eq!(shared.split_flows, 0, "{shared:?}");
    assert_eq!(shared.flows.len(), shared.senders);
    assert!(
        shared.without_reuseport.in_use && !shared.without_reuseport.ok,
        "{:?}",
        shared.without_reuseport
    );
}

#[test]
fn the_text_shows_each_step() {
    let lesson = run().unwrap();
    let mut text = Vec::new();
    lesson.write(&mut text, false).unwrap();
    let text = String::from_utf8(text).unwrap();
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    for part in 1..=2 {
        assert!(text.contains(&format!("\nPart {part}. ")), "{text}");
    }
    let port = lesson.time_wait.port;
    assert!(
        flat.contains(&format!(
            "TIME-WAIT 0 0 127.0.0.1:{port} 127.0.0.1:{}",
            lesson.time_wait.client_port
        )),
        "{text}"
    );
    assert!(
        flat.contains("refused, EADDRINUSE: Address already in use (os error 98)"),
        "{text}"
    );
    assert!(
        flat.contains("the same with SO_REUSEADDR bound and listening"),
        "{text}"
    );
    assert!(flat.contains("each by one receiver only"), "{text}");
    assert!(
        text.lines().all(|line| line.chars().count() <= 78),
        "{text}"
    );
}

#[test]
fn the_json_has_each_steps_numbers_and_errors() {
    let lesson = run().unwrap();
    let mut json = Vec::new();
    lesson.write(&mut json, true).unwrap();
    let doc: serde_json::Value = serde_json::from_slice(&json).unwrap();
    assert_eq!(doc["time_wait"]["without_reuseaddr"]["ok"], false);
    assert_eq!(doc["time_wait"]["with_reuseaddr"]["ok"], true);
    assert_eq!(doc["time_wait"]["entries"][0]["state"], "TIME-WAIT");
    assert_eq!(
        doc["reuseport"]["sent"],
        doc["reuseport"]["received"][0].as_u64().unwrap()
            + doc["reuseport"]["received"][1].as_u64().unwrap()
    );
    assert!(json.ends_with(b"}\n"));
}

/// Where the kernel kept no TIME_WAIT entry, the text says so instead of
/// claiming what it did not show.
#[test]
fn no_time_wait_is_said_not_hidden() {
    let mut lesson = run().unwrap();
    lesson.time_wait.time_wait = false;
    lesson.time_wait.entries.clear();
    lesson.time_wait.without_reuseaddr = Bind {
        ok: true,
        error: None,
        in_use: false,
    };
    let mut text = Vec::new();
    lesson.write_text(&mut text).unwrap();
    let text = String::from_utf8(text).unwrap();
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(flat.contains("No TIME_WAIT entry was seen"), "{text}");
    assert!(flat.contains("(nothing)"), "{text}");
    assert!(!flat.contains("alone holds the port"), "{text}");
}
