//! Every authentication decoder on peer bytes (see `msg_fuzz::auth` for the
//! input format): the four handshake steps, `FrameOpener::open` frame after
//! frame, `DatagramOpener::open`, and `ReplayWindow` against a model.
//!
//! Keys and nonces are fixed, so a seed holding the right proof or tag
//! reaches the success paths, and the fuzzer mutates from there.

#![no_main]

use std::collections::HashSet;

use bytes::{Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;
use msg_fuzz::auth::{CHALLENGE, DATAGRAM, FRAMES, PROOF, RESPONSE, RESULT, SELECTORS, WINDOW};
use msg_fuzz::{FRAME_KEY, NC, NS, Reader, kind_and_body, secret};
use msg_proto::auth::{
    AuthError, ClientHandshake, DatagramOpener, FrameOpener, FrameSealer, NONCE_LEN, REPLAY_WINDOW,
    ReplayWindow, Role, ServerHandshake, TAG_LEN, UDP_TRAILER_LEN,
};
use msg_proto::{HEADER_LEN, Kind};

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    match selector % SELECTORS {
        CHALLENGE => challenge(rest),
        RESPONSE => response(rest),
        PROOF => proof(rest),
        RESULT => result(rest),
        FRAMES => frames(rest),
        DATAGRAM => datagram(rest),
        WINDOW => window(rest),
        _ => unreachable!(),
    }
});

/// The server reads a challenge; an accepted one yields a response that
/// the client whose nonce it carried accepts.
fn challenge(data: &[u8]) {
    let Some(msg) = kind_and_body(data) else {
        return;
    };
    let s = secret();
    if let Ok((response, _)) = ServerHandshake::new(&s, NS).on_challenge(&msg) {
        assert_eq!(response.body.len(), NONCE_LEN + TAG_LEN);
        let nc: [u8; NONCE_LEN] = msg.body[..].try_into().expect("accepted: one nonce");
        let (client, _) = ClientHandshake::start(&s, nc);
        assert!(client.on_response(&response).is_ok());
    }
}

/// The client reads the server's response; an accepted one carries a server
/// nonce under which the server accepts the client's proof.
fn response(data: &[u8]) {
    let Some(msg) = kind_and_body(data) else {
        return;
    };
    let s = secret();
    let (client, challenge) = ClientHandshake::start(&s, NC);
    if let Ok((proof, _)) = client.on_response(&msg) {
        let ns: [u8; NONCE_LEN] = msg.body[..NONCE_LEN].try_into().expect("accepted");
        let (_, server) = ServerHandshake::new(&s, ns)
            .on_challenge(&challenge)
            .expect("an honest challenge");
        assert!(server.on_proof(&proof).1.is_ok());
    }
}

/// The server reads the client's proof: it answers a verdict whatever
/// arrives, and accepts exactly when it hands out keys.
fn proof(data: &[u8]) {
    let Some(msg) = kind_and_body(data) else {
        return;
    };
    let s = secret();
    let (_, challenge) = ClientHandshake::start(&s, NC);
    let (_, server) = ServerHandshake::new(&s, NS)
        .on_challenge(&challenge)
        .expect("an honest challenge");
    let (verdict, keys) = server.on_proof(&msg);
    assert_eq!(verdict.kind, Kind::AuthResult);
    assert_eq!(&verdict.body[..], [u8::from(keys.is_err())]);
}

/// The client reads the server's verdict.
fn result(data: &[u8]) {
    let Some(msg) = kind_and_body(data) else {
        return;
    };
    let s = secret();
    let (client, challenge) = ClientHandshake::start(&s, NC);
    let (response, _) = ServerHandshake::new(&s, NS)
        .on_challenge(&challenge)
        .expect("an honest challenge");
    let (_, client) = client.on_response(&response).expect("an honest server");
    let keys = client.on_result(&msg);
    assert_eq!(
        keys.is_ok(),
        msg.kind == Kind::AuthResult && msg.body[..] == [0]
    );
}

/// One connection's frames through one opener, until the first that fails
/// (a connection closes there). Each opened frame re-seals, from the same
/// counter, to exactly its bytes.
fn frames(data: &[u8]) {
    let mut input = Reader::new(data);
    let mut opener = FrameOpener::new(&FRAME_KEY);
    let mut sealer = FrameSealer::new(&FRAME_KEY);
    while !input.is_empty() {
        let len = input.u16().map_or(usize::MAX, usize::from);
        let frame = Bytes::copy_from_slice(input.take(len));
        let Ok(msg) = opener.open(frame.clone()) else {
            return;
        };
        assert_eq!(frame.len(), HEADER_LEN + msg.body.len() + TAG_LEN);
        let mut again = BytesMut::new();
        sealer.seal(&msg, &mut again).expect("it was sealed once");
        assert_eq!(again, frame);
    }
}

/// One datagram from a client.
fn datagram(data: &[u8]) {
    let opener = DatagramOpener::new(&secret(), Role::Client);
    if let Ok(opened) = opener.open(Bytes::copy_from_slice(data)) {
        assert_eq!(
            data.len(),
            HEADER_LEN + opened.message.body.len() + UDP_TRAILER_LEN
        );
        assert_eq!(
            &data[HEADER_LEN..][..opened.message.body.len()],
            opened.message.body
        );
    }
}

/// A replay window against a model that remembers every counter it
/// accepted: a counter is accepted exactly when it is new and less than
/// `REPLAY_WINDOW` behind the highest; otherwise the error says which.
fn window(data: &[u8]) {
    let mut input = Reader::new(data);
    let base = input.u64().unwrap_or(0);
    let mut window = ReplayWindow::new();
    let mut accepted = HashSet::new();
    let mut highest: Option<u64> = None;
    while let Some(step) = input.u16() {
        let counter = highest
            .unwrap_or(base)
            .saturating_add_signed(i64::from(step as i16));
        let expected = match highest {
            Some(h) if counter <= h && h - counter >= REPLAY_WINDOW => Err(AuthError::TooOld {
                counter,
                highest: h,
            }),
            _ if accepted.contains(&counter) => Err(AuthError::Replayed { counter }),
            _ => Ok(()),
        };
        assert_eq!(window.check(counter), expected, "check {counter}");
        assert_eq!(window.check_and_set(counter), expected, "set {counter}");
        if expected.is_ok() {
            accepted.insert(counter);
            let h = highest.map_or(counter, |h| h.max(counter));
            highest = Some(h);
            // Forget what the window may forget, so the model stays small.
            accepted.retain(|&c| h - c < REPLAY_WINDOW);
        }
        assert_eq!(window.highest(), highest);
    }
}
