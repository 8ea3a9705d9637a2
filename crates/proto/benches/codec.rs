//! The hot functions of the wire format, per message: `cargo bench -p msg-proto`.
//!
//! Every message msg sends is encoded once and decoded once; these measure
//! that cost alone, without sockets.

use bytes::{Bytes, BytesMut};
use divan::{Bencher, black_box};
use msg_proto::{HEADER_LEN, Kind, Message, decode, encode};

fn main() {
    divan::main();
}

const SIZES: [usize; 3] = [64, 1024, 65_000];

fn message(size: usize) -> Message {
    Message::new(Kind::Ping, 7, vec![b'm'; size]).with_timestamp(123_456_789)
}

/// Encode into a reused buffer, then decode the frozen bytes back: what one
/// hop costs the two ends together.
#[divan::bench(args = SIZES)]
fn encode_then_decode(bencher: Bencher<'_, '_>, size: usize) {
    let msg = message(size);
    let mut buf = BytesMut::with_capacity(HEADER_LEN + size);
    bencher
        .counter(divan::counter::BytesCount::new(HEADER_LEN + size))
        .bench_local(|| {
            buf.clear();
            encode(black_box(&msg), &mut buf).unwrap();
            // `split().freeze()` hands the bytes over as a receiver gets
            // them; the buffer's allocation comes back on the next clear
            // once the decoded message is dropped.
            let decoded = decode(buf.split().freeze()).unwrap();
            black_box(decoded.seq)
        });
}

#[divan::bench(args = SIZES)]
fn encode_only(bencher: Bencher<'_, '_>, size: usize) {
    let msg = message(size);
    let mut buf = BytesMut::with_capacity(HEADER_LEN + size);
    bencher.bench_local(|| {
        buf.clear();
        encode(black_box(&msg), &mut buf).unwrap();
        black_box(buf.len())
    });
}

#[divan::bench(args = SIZES)]
fn decode_only(bencher: Bencher<'_, '_>, size: usize) {
    let mut buf = BytesMut::new();
    encode(&message(size), &mut buf).unwrap();
    let bytes: Bytes = buf.freeze();
    bencher.bench_local(|| black_box(decode(black_box(bytes.clone())).unwrap().seq));
}
