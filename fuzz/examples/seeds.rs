//! Writes the seed corpus, `corpus/<target>/seed-*`: a few valid encodings
//! per target, in each target's input format (see `src/lib.rs`), so that
//! the fuzzer starts past the magic bytes, the lengths and the tags.
//!
//! ```sh
//! cargo run --manifest-path fuzz/Cargo.toml --example seeds
//! ```
//!
//! The files are committed; run this again after changing a format.

use std::fs;
use std::path::Path;

use bytes::{Bytes, BytesMut};
use msg_fuzz::{FRAME_KEY, NC, NS, kind_and_body_bytes, secret, tcp_frames};
use msg_proto::auth::{ClientHandshake, DatagramSealer, FrameSealer, Role, ServerHandshake};
use msg_proto::exec::{self, Command, Exit, Stream};
use msg_proto::file::{self, FileEnd, FileHeader, FileName, FileResult, HashAlgorithm};
use msg_proto::{Kind, Message, Stats};
use msg_tcp::Codec;
use tokio_util::codec::Encoder;

fn main() -> std::io::Result<()> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    let targets: [(&str, Vec<(&str, Vec<u8>)>); 7] = [
        ("decode", decode()),
        ("tcp_frames", tcp()),
        ("stats", stats()),
        ("auth", auth()),
        ("file", file()),
        ("exec", exec()),
        ("tree", tree()),
    ];
    for (target, seeds) in targets {
        let dir = root.join(target);
        fs::create_dir_all(&dir)?;
        for (name, bytes) in seeds {
            fs::write(dir.join(format!("seed-{name}")), bytes)?;
        }
    }
    Ok(())
}

fn wire(msg: &Message) -> Vec<u8> {
    let mut out = Vec::new();
    msg_proto::encode(msg, &mut out).unwrap();
    out
}

fn frames(max_frame: usize, sealed: bool, msgs: &[Message]) -> Vec<u8> {
    let mut codec = Codec::new(max_frame);
    if sealed {
        codec.set_sealer(FrameSealer::new(&FRAME_KEY));
    }
    let mut out = BytesMut::new();
    for msg in msgs {
        codec.encode(msg, &mut out).unwrap();
    }
    out.to_vec()
}

fn hello_header() -> FileHeader {
    FileHeader {
        name: FileName::new("hello.txt").unwrap(),
        size: 5,
        algorithm: HashAlgorithm::Blake3,
        mode: 0o644,
    }
}

fn decode() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        (
            "data-hello",
            wire(&Message::new(Kind::Data, 1, "hello").with_timestamp(0x0102_0304_0506_0708)),
        ),
        (
            "ping-empty",
            wire(&Message::new(Kind::Ping, 7, Bytes::new())),
        ),
        (
            "pong-stats",
            wire(&Message::new(
                Kind::Pong,
                7,
                Stats {
                    received: 3,
                    reordered: 1,
                }
                .to_body()
                .to_vec(),
            )),
        ),
        ("file-header", wire(&hello_header().to_message())),
        ("error", wire(&Message::new(Kind::Error, 0, "bad request"))),
    ]
}

fn tcp() -> Vec<(&'static str, Vec<u8>)> {
    use tcp_frames::{DEFAULT_LIMIT, OPENER, SMALL_MAX_FRAME, input};
    let small = [
        Message::new(Kind::Data, 1, "first"),
        Message::new(Kind::Ping, 2, Bytes::new()),
    ];
    let plain = frames(SMALL_MAX_FRAME, false, &small);
    let sealed = frames(SMALL_MAX_FRAME, true, &small);
    let mut cut = frames(
        tcp_frames::SMALL_MAX_FRAME * 10,
        false,
        &[Message::new(Kind::Data, 3, vec![b'x'; 300])],
    );
    cut.extend_from_slice(&plain[..plain.len() - 3]);
    vec![
        ("plain-glued", input(0, &[], &plain)),
        ("plain-split", input(0, &[0, 2, 6, 30], &plain)),
        ("sealed-glued", input(OPENER, &[], &sealed)),
        (
            "sealed-split",
            input(OPENER | DEFAULT_LIMIT, &[3, 0, 40], &sealed),
        ),
        ("default-limit-cut", input(DEFAULT_LIMIT, &[99], &cut)),
        ("over-limit", input(0, &[], b"\x00\x00\x00\x65ms\x01\x01")),
        (
            "huge-prefix",
            input(DEFAULT_LIMIT, &[1], b"\xff\xff\xff\xffms"),
        ),
    ]
}

fn stats() -> Vec<(&'static str, Vec<u8>)> {
    let body = Stats {
        received: 1000,
        reordered: 7,
    }
    .to_body();
    let mut longer = body.to_vec();
    longer.extend_from_slice(b"later counters");
    vec![
        ("current", body.to_vec()),
        ("old", body[..8].to_vec()),
        ("longer", longer),
    ]
}

fn auth() -> Vec<(&'static str, Vec<u8>)> {
    use msg_fuzz::auth::{CHALLENGE, DATAGRAM, FRAMES, PROOF, RESPONSE, RESULT, WINDOW};
    let s = secret();
    let (client, challenge) = ClientHandshake::start(&s, NC);
    let (response, server) = ServerHandshake::new(&s, NS)
        .on_challenge(&challenge)
        .unwrap();
    let (proof, _) = client.on_response(&response).unwrap();
    let (accepted, _) = server.on_proof(&proof);
    let step = |selector: u8, msg: &Message| {
        let mut out = vec![selector];
        out.extend(kind_and_body_bytes(msg));
        out
    };

    let mut frames = vec![FRAMES];
    let mut sealer = FrameSealer::new(&FRAME_KEY);
    for (seq, body) in [(1, "hello"), (2, "")] {
        let mut frame = BytesMut::new();
        sealer
            .seal(&Message::new(Kind::Data, seq, body), &mut frame)
            .unwrap();
        frames.extend((frame.len() as u16).to_be_bytes());
        frames.extend_from_slice(&frame);
    }

    let mut datagram = BytesMut::new();
    DatagramSealer::new(&s, Role::Client, [1, 2, 3, 4, 5, 6, 7, 8])
        .seal(&Message::new(Kind::Discard, 9, "payload"), &mut datagram)
        .unwrap();
    let mut datagram_seed = vec![DATAGRAM];
    datagram_seed.extend_from_slice(&datagram);

    let mut window = vec![WINDOW];
    window.extend(5000u64.to_be_bytes());
    for step in [0i16, 5, -3, -1, -2, 1024, -1023, -1024, -1025, 0, 3000, -1] {
        window.extend(step.to_be_bytes());
    }

    vec![
        ("challenge", step(CHALLENGE, &challenge)),
        ("response", step(RESPONSE, &response)),
        ("proof", step(PROOF, &proof)),
        ("result-accepted", step(RESULT, &accepted)),
        (
            "result-rejected",
            step(RESULT, &Message::new(Kind::AuthResult, 0, &b"\x01"[..])),
        ),
        ("frames", frames),
        ("datagram", datagram_seed),
        ("window", window),
    ]
}

fn file() -> Vec<(&'static str, Vec<u8>)> {
    use msg_fuzz::file::{MESSAGE, NAME, RECEIVING};
    let message = |msg: &Message| {
        let mut out = vec![MESSAGE];
        out.extend(kind_and_body_bytes(msg));
        out
    };
    let name = |name: &str| {
        let mut out = vec![NAME];
        out.extend_from_slice(name.as_bytes());
        out
    };
    let transfer = |size: u64, chunks: &[&[u8]]| {
        let mut out = vec![RECEIVING];
        out.extend(size.to_be_bytes());
        for (seq, content) in chunks.iter().enumerate() {
            out.push(Kind::FileChunk.into());
            out.push(seq as u8);
            out.extend((content.len() as u16).to_be_bytes());
            out.extend_from_slice(content);
        }
        out
    };
    vec![
        ("header", message(&hello_header().to_message())),
        (
            "end",
            message(
                &FileEnd {
                    digest: [7; file::DIGEST_LEN],
                }
                .to_message(),
            ),
        ),
        (
            "saved",
            message(
                &FileResult::Saved {
                    name: "hello (1).txt".into(),
                }
                .to_message(),
            ),
        ),
        (
            "refused",
            message(
                &FileResult::Refused {
                    reason: "hash mismatch".into(),
                }
                .to_message(),
            ),
        ),
        ("ready", message(&FileResult::Ready.to_message())),
        ("name", name("hello.txt")),
        ("name-hidden", name(".profile")),
        ("name-dots", name("...")),
        ("name-unicode", name("ünïcödé report.pdf")),
        ("name-path", name("../etc/passwd")),
        ("transfer", transfer(5, &[b"hel", b"lo"])),
        ("transfer-too-long", transfer(3, &[b"ab", b"cd"])),
        ("transfer-empty", transfer(0, &[])),
    ]
}

fn exec() -> Vec<(&'static str, Vec<u8>)> {
    let command = Command::new(vec![
        b"printf".to_vec(),
        b"%s\\n".to_vec(),
        b"caf\xc3\xa9".to_vec(),
    ])
    .unwrap();
    vec![
        ("command", kind_and_body_bytes(&command.to_message())),
        (
            "stdout",
            kind_and_body_bytes(&exec::output(Stream::Stdout, b"hello\n")),
        ),
        (
            "stderr",
            kind_and_body_bytes(&exec::output(Stream::Stderr, b"\xc4\xe3")),
        ),
        ("exited", kind_and_body_bytes(&Exit::Exited(3).to_message())),
        (
            "signaled",
            kind_and_body_bytes(&Exit::Signaled(15).to_message()),
        ),
        (
            "refused",
            kind_and_body_bytes(&Exit::Refused("not allowed".into()).to_message()),
        ),
        (
            "killed",
            kind_and_body_bytes(&Exit::Killed("ran past 60s".into()).to_message()),
        ),
    ]
}

fn tree() -> Vec<(&'static str, Vec<u8>)> {
    use bytes::Bytes;
    use msg_fuzz::tree::bytes;
    use msg_proto::file::{FileFrom, FileOffer};
    use msg_proto::tree::{EntryKind, TreeEntry, TreePath, TreeStart, tree_end};
    let entry = |kind, path: &str, size| {
        TreeEntry {
            kind,
            mode: 0o644,
            size,
            path: TreePath::new(path).expect("a valid path"),
        }
        .to_message()
    };
    let start = TreeStart {
        name: FileName::new("photos").expect("a plain name"),
        mode: 0o755,
        files: 1,
        folders: 1,
        bytes: 5,
    };
    let digest = [7; file::DIGEST_LEN];
    vec![
        (
            "tree",
            bytes(
                5,
                &[
                    start.to_message(),
                    entry(EntryKind::Folder, "2024", 0),
                    entry(EntryKind::File, "2024/a.jpg", 5),
                    file::chunk(0, Bytes::from_static(b"hello")),
                    FileEnd { digest }.to_message(),
                    tree_end(),
                ],
            ),
        ),
        (
            "resume",
            bytes(
                5,
                &[
                    FileOffer { offset: 3, digest }.to_message(),
                    FileFrom { offset: 3 }.to_message(),
                ],
            ),
        ),
    ]
}
