//! The lesson, run in-process: what it must show every time, and its text
//! for either limit a Unix sender meets.

use super::*;

#[test]
fn udp_loses_silently_and_unix_loses_nothing() {
    for _ in 0..3 {
        let lesson = run().unwrap();
        check(&lesson);
    }
}

fn check(lesson: &Lesson) {
    // 1. UDP: every send succeeded, and the small buffer lost most.
    let udp = &lesson.udp;
    assert_eq!(udp.sent, COUNT);
    assert_eq!(udp.sent, udp.received + udp.lost, "{udp:?}");
    assert!(udp.received > 0, "{udp:?}");
    // Nothing read while 2 MB were sent into a 64 KiB buffer: never all.
    assert!(udp.lost > 0, "{udp:?}");
    assert!(udp.whole, "{udp:?}");
    assert!(udp.rcvbuf >= RCVBUF, "{udp:?}");
    let runs: usize = udp.received_runs.iter().map(|[a, b]| b - a + 1).sum();
    assert_eq!(runs, udp.received, "{udp:?}");
    let drops = udp
        .kernel_drops
        .expect("SO_MEMINFO counts the socket's drops");
    assert!(drops > 0 && drops <= udp.lost as u64, "{udp:?}");

    // 2. Unix datagram: pushed back, nothing lost, all in order.
    let unix = &lesson.unix;
    assert!(unix.accepted > 0 && unix.accepted < COUNT, "{unix:?}");
    assert_eq!(unix.accepted_bytes, unix.accepted * LEN);
    assert!(unix.refused.contains("os error 11"), "{unix:?}");
    assert_eq!(unix.received, unix.accepted, "{unix:?}");
    assert_eq!(unix.lost, 0);
    assert!(unix.in_order && unix.whole, "{unix:?}");
    if unix.full == Full::Queue {
        assert_eq!(Some(unix.accepted - 1), unix.max_dgram_qlen, "{unix:?}");
    }
    // It waited for room, and no longer than it was told to (with slack
    // for a busy machine).
    let blocked = &unix.blocked;
    assert!(blocked.error.contains("os error 11"), "{blocked:?}");
    assert!(blocked.waited_ms >= 50.0, "{blocked:?}");
    assert!(blocked.waited_ms < 2_000.0, "{blocked:?}");

    // 3. Sizes: UDP's fixed, a Unix datagram's SO_SNDBUF less 32, growing
    // with it.
    let sizes = &lesson.sizes;
    assert_eq!(sizes.udp.largest, 65_507);
    assert!(sizes.udp.sndbuf > 65_508, "{sizes:?}");
    assert!(sizes.udp.refused.contains("os error 90"), "{sizes:?}");
    assert_eq!(sizes.unix.len(), 1 + SNDBUFS.len());
    for size in &sizes.unix {
        assert_eq!(size.largest, size.sndbuf - 32, "{size:?}");
        assert!(size.refused.contains("os error 90"), "{size:?}");
    }
    let (small, large) = (&sizes.unix[1], &sizes.unix[2]);
    assert_eq!(small.sndbuf_asked, Some(SNDBUFS[0]));
    assert!(large.largest > small.largest, "{sizes:?}");
    assert!(large.largest > 65_507, "{sizes:?}");

    // 4. SOCK_SEQPACKET: two records, as sent.
    assert_eq!(lesson.seqpacket.received_b64, lesson.seqpacket.sent_b64);
}

#[test]
fn the_json_has_each_parts_numbers() {
    let lesson = run().unwrap();
    let mut json = Vec::new();
    lesson.write_json(&mut json).unwrap();
    let doc: serde_json::Value = serde_json::from_slice(&json).unwrap();
    assert_eq!(doc["udp"]["sent"], COUNT);
    assert_eq!(doc["unix"]["lost"], 0);
    assert_eq!(doc["sizes"]["udp"]["largest"], 65_507);
    assert_eq!(doc["seqpacket"]["received_b64"][0], "aGVsbG8=");
    assert!(json.ends_with(b"}\n"));
}

/// The text for both limits, on made-up numbers: the queue's, as on a
/// kernel left at its default (10), and the send buffer's, as where
/// systemd raises the queue to 512.
#[test]
fn the_text_names_the_limit_that_filled() {
    for (full, accepted, says) in [
        (Full::Queue, 11, "more than net.unix.max_dgram_qlen (10)"),
        (Full::SendBuffer, 93, "about 2290 bytes each here"),
    ] {
        let lesson = made_up(full, accepted);
        let mut text = Vec::new();
        lesson.write_text(&mut text).unwrap();
        let text = String::from_utf8(text).unwrap();
        let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(flat.contains(says), "{text}");
        assert!(
            flat.contains(&format!(
                "after {accepted} datagrams ({accepted}000 bytes), send"
            )),
            "{text}"
        );
        assert!(
            flat.contains("1972 lost") || flat.contains("lost: 1972"),
            "{text}"
        );
        assert!(flat.contains("\"00011 ab\"..."), "{text}");
        assert!(flat.contains("212960 bytes (SO_SNDBUF - 32)"), "{text}");
        assert!(flat.contains("\"hello\", then \"egg\""), "{text}");
        for part in 1..=4 {
            assert!(text.contains(&format!("\nPart {part}. ")), "{text}");
        }
        assert!(
            text.lines().all(|line| line.chars().count() <= 78),
            "{text}"
        );
    }
}

fn made_up(full: Full, accepted: usize) -> Lesson {
    let qlen = match full {
        Full::Queue => 10,
        Full::SendBuffer => 512,
    };
    Lesson {
        udp: Lost {
            len: LEN,
            rcvbuf_asked: RCVBUF,
            rcvbuf: 2 * RCVBUF,
            sent: COUNT,
            received: 28,
            lost: COUNT - 28,
            whole: true,
            received_runs: vec![[1, 28]],
            kernel_drops: Some(1972),
            last: numbered(28),
        },
        unix: PushedBack {
            len: LEN,
            sndbuf: 212_992,
            max_dgram_qlen: Some(qlen),
            accepted,
            accepted_bytes: accepted * LEN,
            refused: "Resource temporarily unavailable (os error 11)".to_owned(),
            full,
            blocked: Blocked {
                timeout_ms: 100,
                waited_ms: 100.2,
                error: "Resource temporarily unavailable (os error 11)".to_owned(),
            },
            received: accepted,
            lost: 0,
            in_order: true,
            whole: true,
            last: numbered(11),
        },
        sizes: Sizes {
            udp: UdpSize {
                sndbuf: 131_072,
                largest: 65_507,
                refused: "Message too long (os error 90)".to_owned(),
            },
            unix: vec![UnixSize {
                sndbuf_asked: None,
                sndbuf: 212_992,
                largest: 212_960,
                refused: "Message too long (os error 90)".to_owned(),
                probes: 21,
            }],
        },
        seqpacket: Records {
            sent_b64: RECORDS.iter().map(|r| r.to_vec()).collect(),
            received_b64: RECORDS.iter().map(|r| r.to_vec()).collect(),
        },
    }
}
