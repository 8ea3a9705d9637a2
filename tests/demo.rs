//! `msg demo sticky`: the effect it shows must be there every time, not
//! most times, with Nagle's algorithm off and on.

mod support;

use base64::Engine;
use serde_json::Value;
use support::run;

const LARGE: usize = 1024 * 1024;

/// Runs `msg demo sticky <args>` and returns its stdout.
fn sticky(args: &[&str]) -> String {
    let mut all = vec!["demo", "sticky"];
    all.extend_from_slice(args);
    let out = run(&all, None);
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
    out.stdout
}

/// The bytes of each read of `step` in `part`, in order.
fn reads(doc: &Value, part: u64, step: &str) -> Vec<Vec<u8>> {
    let records: Vec<&Value> = doc["reads"]
        .as_array()
        .expect("a reads array")
        .iter()
        .filter(|r| r["part"] == part && r["step"] == step)
        .collect();
    records
        .iter()
        .enumerate()
        .map(|(i, r)| {
            assert_eq!(r["read"], i + 1, "{r}");
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(r["bytes_b64"].as_str().expect("bytes_b64"))
                .expect("valid base64");
            assert_eq!(r["len"], bytes.len(), "{r}");
            bytes
        })
        .collect()
}

fn lens(reads: &[Vec<u8>]) -> Vec<usize> {
    reads.iter().map(Vec::len).collect()
}

/// What every run must show, whatever the timing.
fn check(doc: &Value, nodelay: bool) {
    assert_eq!(doc["nodelay"], nodelay);
    // The glue was waited for, not hoped for.
    #[cfg(unix)]
    assert_eq!(doc["arrangement"], "FIONREAD");

    // 1. Raw TCP: two writes, one read; one write, many reads.
    assert_eq!(reads(doc, 1, "two small writes"), [b"helloegg".to_vec()]);
    let large = reads(doc, 1, "one large write");
    assert!(large.len() > 1, "{:?}", lens(&large));
    assert_eq!(large.concat().len(), LARGE, "{:?}", lens(&large));

    // 2. Framed TCP: the messages as sent.
    assert_eq!(
        reads(doc, 2, "two small writes"),
        [b"hello".to_vec(), b"egg".to_vec()]
    );
    assert_eq!(lens(&reads(doc, 2, "one large write")), [LARGE]);

    // 3. UDP: one datagram per receive; too large is refused.
    assert_eq!(
        reads(doc, 3, "two small writes"),
        [b"hello".to_vec(), b"egg".to_vec()]
    );
    assert!(reads(doc, 3, "one large write").is_empty());
    let refused = doc["refused"].as_array().expect("a refused array");
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert_eq!(refused[0]["part"], 3);
    assert_eq!(refused[0]["len"], 70_000);
    let error = refused[0]["error"].as_str().unwrap();
    assert!(error.contains("65507"), "{error}");

    // 4. Asking for 2 bytes gets 2; the rest comes next.
    assert_eq!(
        reads(doc, 4, "a read too small"),
        [b"he".to_vec(), b"lloegg".to_vec()]
    );
}

#[test]
fn every_run_shows_the_glue_and_the_boundaries() {
    for _ in 0..20 {
        let doc: Value = serde_json::from_str(&sticky(&["--json"])).expect("one JSON document");
        check(&doc, true);
    }
}

#[test]
fn with_nagle_on_too() {
    for _ in 0..5 {
        let doc: Value = serde_json::from_str(&sticky(&["--json", "--nodelay=false"]))
            .expect("one JSON document");
        check(&doc, false);
    }
}

#[test]
fn the_text_says_how_the_timing_was_arranged_and_what_nagle_changes() {
    let text = sticky(&[]);
    assert!(text.contains("How the timing is arranged"), "{text}");
    #[cfg(unix)]
    assert!(text.contains("FIONREAD said all 8 bytes"), "{text}");
    assert!(text.contains("Nagle's algorithm is off"), "{text}");
    for part in 1..=4 {
        assert!(text.contains(&format!("Part {part}. ")), "{text}");
    }
    assert!(text.contains("read 1: 8 bytes \"helloegg\""), "{text}");
    assert!(text.contains("65507"), "{text}");
    // Escaped: nothing but newlines below the space character.
    assert!(
        text.chars().all(|c| c == '\n' || !c.is_control()),
        "{text:?}"
    );

    let text = sticky(&["--nodelay=false"]);
    assert!(text.contains("Nagle's algorithm is on"), "{text}");
    assert!(text.contains("ACK"), "{text}");
}

/// `--nodelay false`, as the other subcommands and the README spell it,
/// works here too, as do `--nodelay=false` and a bare `--nodelay`.
#[test]
fn nodelay_takes_its_value_as_the_next_word_too() {
    for (args, nodelay) in [
        (&["--json", "--nodelay", "false"][..], false),
        (&["--nodelay", "true", "--json"][..], true),
        (&["--nodelay", "--json"][..], true),
    ] {
        let doc: Value = serde_json::from_str(&sticky(args)).expect("one JSON document");
        assert_eq!(doc["nodelay"], nodelay, "{args:?}");
    }
}
