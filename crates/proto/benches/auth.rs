//! What authentication adds per message: `cargo bench -p msg-proto --bench auth`.
//!
//! Each iteration seals a message into a reused buffer and opens it again,
//! as the two ends of one hop would; compare with `encode_then_decode` in
//! `codec.rs` for the plain cost. HMAC-SHA256 runs over header and body, so
//! the cost grows with the body: the 64-byte case is the fixed price of the
//! tag, the 64 KiB case the per-byte price of hashing.

use bytes::BytesMut;
use divan::{Bencher, black_box};
use msg_proto::auth::{
    DatagramOpener, DatagramSealer, FrameOpener, FrameSealer, KEY_LEN, ReplayWindow, Role, Secret,
    TAG_LEN, UDP_TRAILER_LEN,
};
use msg_proto::{HEADER_LEN, Kind, Message};

fn main() {
    divan::main();
}

const SIZES: [usize; 2] = [64, 64 * 1024];

fn message(size: usize) -> Message {
    Message::new(Kind::Discard, 7, vec![b'm'; size]).with_timestamp(123_456_789)
}

/// A TCP frame: seal with one side's key and counter, open with the
/// other's.
#[divan::bench(args = SIZES)]
fn frame_seal_then_open(bencher: Bencher<'_, '_>, size: usize) {
    let msg = message(size);
    let key = [7u8; KEY_LEN];
    let mut sealer = FrameSealer::new(&key);
    let mut opener = FrameOpener::new(&key);
    let mut buf = BytesMut::with_capacity(HEADER_LEN + size + TAG_LEN);
    bencher
        .counter(divan::counter::BytesCount::new(HEADER_LEN + size))
        .bench_local(|| {
            buf.clear();
            sealer.seal(black_box(&msg), &mut buf).unwrap();
            let opened = opener.open(buf.split().freeze()).unwrap();
            black_box(opened.seq)
        });
}

/// A UDP datagram: seal, open, and the replay window's check, as a listener
/// does for each datagram.
#[divan::bench(args = SIZES)]
fn datagram_seal_then_open(bencher: Bencher<'_, '_>, size: usize) {
    let msg = message(size);
    let secret = Secret::new(b"bench secret".to_vec()).unwrap();
    let mut sealer = DatagramSealer::new(&secret, Role::Client, [1; 8]);
    let opener = DatagramOpener::new(&secret, Role::Client);
    let mut window = ReplayWindow::new();
    let mut buf = BytesMut::with_capacity(HEADER_LEN + size + UDP_TRAILER_LEN);
    bencher
        .counter(divan::counter::BytesCount::new(HEADER_LEN + size))
        .bench_local(|| {
            buf.clear();
            sealer.seal(black_box(&msg), &mut buf).unwrap();
            let opened = opener.open(buf.split().freeze()).unwrap();
            window.check_and_set(opened.counter).unwrap();
            black_box(opened.message.seq)
        });
}
