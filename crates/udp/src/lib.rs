//! msg over UDP: one message per datagram.
//!
//! UDP keeps message boundaries for free: the kernel delivers each datagram
//! whole or not at all, never glued to the next and never in pieces. What it
//! does not do is carry more than one IP packet's worth, or promise delivery.
//! So this crate
//!
//! - sends each [`Message`](msg_proto::Message) as exactly one datagram (header and body),
//! - refuses a message over the datagram limit *before* the send call, with
//!   an error that names the size, the limit and the share of the header
//!   (and of an authentication trailer, when there is one): see [`Overhead`],
//! - receives into a 65,536-byte buffer so that nothing is ever truncated,
//! - drops (and counts, and logs) datagrams that are not valid msg messages,
//!   so that a stray packet never stops a listener.
//!
//! Loss is the caller's business: a receive waits until a message arrives,
//! so wrap it in a timeout where a reply may never come.
//!
//! The socket reuses one receive and one send buffer: a caller that drops
//! each received message before the next receive allocates nothing per
//! message.
//!
//! # Where things live
//!
//! - `limits.rs`: the limits ([`MAX_PAYLOAD_V4`], [`MAX_PAYLOAD_V6`],
//!   [`Family`]), what a datagram carries besides the body ([`Overhead`]) and
//!   the check against them ([`check_size`]).
//! - `socket.rs`: [`Socket`], the tokio socket; `error.rs`: [`Error`].
//! - `framing.rs`: [`Framing`], the header, the authentication trailer and
//!   the counts of what was dropped, with no socket and no runtime: the
//!   tokio [`Socket`] owns one, and so does msg-net's blocking engine.
//! - [`sync`]: runtime-free datagram I/O on a borrowed std socket (one
//!   datagram into a reused buffer, a batch of them, sleeping in the
//!   kernel or spinning), for msg-net's blocking engine; it calls down
//!   into `batch/` for the batches.
//! - [`group`]: one to many, multicast groups and broadcast: the
//!   receiver's join and shared port, the sender's TTL, interface and
//!   loopback.
//! - `buf.rs`: one receive into a buffer's spare capacity, below both
//!   `sync` and `batch/`.
//! - `sys.rs`: how the tokio socket waits for readiness, per platform;
//!   nothing in it is public.
//! - `batch/`: many datagrams per system call ([`Socket::send_batch`],
//!   [`Socket::recv_batch`]: `sendmmsg` and `recvmmsg` on Linux, with UDP
//!   GSO and GRO where the kernel offers them).

#![warn(missing_docs)]

mod auth;
mod batch;
mod buf;
mod error;
mod flood;
mod framing;
pub mod group;
mod limits;
mod socket;
pub mod sync;
mod sys;

pub use auth::{AuthRejections, MAX_REPLAY_SENDERS};
pub use batch::{CallCounts, MAX_BATCH, MAX_GSO_SEGMENTS, RecvBatch, SendBatch};
pub use buf::recv_into;
pub use error::Error;
pub use framing::Framing;
pub use limits::{Family, MAX_PAYLOAD_V4, MAX_PAYLOAD_V6, Overhead, RECV_BUF_LEN, check_size};
pub use socket::{Incoming, Socket};
#[cfg(unix)]
pub use sys::{OwnedSocket, Readiness};

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use msg_proto::Kind;
    use msg_proto::auth::UDP_TRAILER_LEN;
    use msg_proto::auth::{Role, Secret};
    use msg_proto::{HEADER_LEN, Message};
    use std::io;
    use std::net::SocketAddr;

    fn v4() -> SocketAddr {
        "127.0.0.1:9".parse().unwrap()
    }

    fn v6() -> SocketAddr {
        "[::1]:9".parse().unwrap()
    }

    #[test]
    fn limits_are_derived_as_documented() {
        assert_eq!(MAX_PAYLOAD_V4, 65_507);
        assert_eq!(MAX_PAYLOAD_V6, 65_527);
        assert_eq!(
            Family::of(&"[::ffff:127.0.0.1]:9".parse().unwrap()),
            Family::V4
        );
        assert_eq!(Family::of(&"[::1]:9".parse().unwrap()), Family::V6);
    }

    #[test]
    fn too_large_names_size_limit_and_header() {
        let err = check_size(70_000, Overhead::FRAMED, &v4()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "message is 70000 bytes; a UDP datagram holds at most 65507 bytes on IPv4 \
             (65479 for the body after a 28-byte header)"
        );
        let err = check_size(65_508, Overhead::RAW, &v4()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "message is 65508 bytes; a UDP datagram holds at most 65507 bytes on IPv4"
        );
        check_size(65_507, Overhead::RAW, &v4()).unwrap();
        check_size(65_479, Overhead::FRAMED, &v4()).unwrap();
        check_size(65_480, Overhead::FRAMED, &v4()).unwrap_err();
        check_size(65_499, Overhead::FRAMED, &v6()).unwrap();
    }

    #[test]
    fn too_large_counts_and_names_an_authentication_trailer() {
        let tagged = Overhead::framed_with_tag(48);
        let err = check_size(70_000, tagged, &v4()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "message is 70000 bytes; a UDP datagram holds at most 65507 bytes on IPv4 \
             (65431 for the body after a 28-byte header and a 48-byte authentication trailer)"
        );
        check_size(65_431, tagged, &v4()).unwrap();
        // Fits without the trailer, not with it.
        check_size(65_432, tagged, &v4()).unwrap_err();
        check_size(65_432, Overhead::FRAMED, &v4()).unwrap();
    }

    #[test]
    fn too_large_on_ipv6_names_its_own_limit() {
        let err = check_size(70_000, Overhead::FRAMED, &v6()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "message is 70000 bytes; a UDP datagram holds at most 65527 bytes on IPv6 \
             (65499 for the body after a 28-byte header)"
        );
        check_size(65_500, Overhead::FRAMED, &v6()).unwrap_err();
        let err = check_size(65_528, Overhead::RAW, &v6()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "message is 65528 bytes; a UDP datagram holds at most 65527 bytes on IPv6"
        );
    }

    #[test]
    fn max_body_is_the_payload_less_the_overhead() {
        assert_eq!(Overhead::RAW.max_body(Family::V4), 65_507);
        assert_eq!(Overhead::FRAMED.max_body(Family::V4), 65_479);
        assert_eq!(Overhead::FRAMED.max_body(Family::V6), 65_499);
        assert_eq!(Overhead::framed_with_tag(48).max_body(Family::V4), 65_431);
        assert_eq!(Overhead::framed_with_tag(70_000).max_body(Family::V6), 0);
    }

    #[tokio::test]
    async fn boundaries_survive_a_burst() {
        let mut server = Socket::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let mut client = Socket::connect(server.local_addr().unwrap()).await.unwrap();
        for seq in 0..50u64 {
            let body = vec![b'a' + (seq % 26) as u8; seq as usize * 7];
            client
                .send(&Message::new(Kind::Data, seq, body))
                .await
                .unwrap();
        }
        for seq in 0..50u64 {
            let (msg, _) = server.recv_from().await.unwrap();
            assert_eq!(msg.seq, seq);
            assert_eq!(msg.body.len(), seq as usize * 7);
        }
    }

    #[tokio::test]
    async fn the_largest_datagrams_arrive_whole() {
        let mut server = Socket::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let mut client = Socket::connect(server.local_addr().unwrap()).await.unwrap();
        client
            .send_raw_to(&[7; MAX_PAYLOAD_V4], server.local_addr().unwrap())
            .await
            .unwrap();
        let (raw, _) = server.recv_raw_from().await.unwrap();
        assert_eq!(raw.len(), MAX_PAYLOAD_V4);
        let body = vec![9; MAX_PAYLOAD_V4 - HEADER_LEN];
        client
            .send(&Message::new(Kind::Data, 1, body.clone()))
            .await
            .unwrap();
        let (msg, _) = server.recv_from().await.unwrap();
        assert_eq!(msg.body, body);
        let err = client
            .send(&Message::new(
                Kind::Data,
                2,
                vec![0; MAX_PAYLOAD_V4 - HEADER_LEN + 1],
            ))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::TooLarge { .. }), "{err}");
    }

    #[tokio::test]
    async fn a_clone_receives_what_is_sent_to_the_original() {
        let mut server = Socket::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let mut sender = Socket::connect(server.local_addr().unwrap()).await.unwrap();
        let mut receiver = sender.try_clone().unwrap();
        assert_eq!(receiver.peer(), sender.peer());
        assert_eq!(receiver.local_addr().unwrap(), sender.local_addr().unwrap());
        sender
            .send(&Message::new(Kind::Ping, 1, "ping"))
            .await
            .unwrap();
        let (ping, from) = server.recv_from().await.unwrap();
        server
            .send_to(
                &Message {
                    kind: Kind::Pong,
                    ..ping
                },
                from,
            )
            .await
            .unwrap();
        let (pong, _) = receiver.recv_from().await.unwrap();
        assert_eq!(
            (pong.kind, pong.seq, &pong.body[..]),
            (Kind::Pong, 1, &b"ping"[..])
        );
    }

    #[tokio::test]
    async fn nobody_listening_surfaces_as_an_error_on_receive() {
        // A port that was just free: the kernel answers with ICMP "port
        // unreachable", which wakes the receive as an error, not as data.
        let port = Socket::bind("127.0.0.1:0".parse().unwrap())
            .await
            .unwrap()
            .local_addr()
            .unwrap();
        let mut client = Socket::connect(port).await.unwrap();
        client
            .send(&Message::new(Kind::Ping, 1, "anyone?"))
            .await
            .unwrap();
        let err = tokio::time::timeout(std::time::Duration::from_secs(5), client.recv_from())
            .await
            .expect("the error wakes the receive")
            .unwrap_err();
        let Error::Recv(io) = &err else {
            panic!("{err}")
        };
        assert_eq!(io.kind(), io::ErrorKind::ConnectionRefused, "{err}");
    }

    #[tokio::test]
    async fn invalid_datagrams_are_counted_and_skipped() {
        let mut server = Socket::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let addr = server.local_addr().unwrap();
        let mut client = Socket::connect(addr).await.unwrap();
        client
            .send_raw_to(b"GET / HTTP/1.0\r\n\r\n", addr)
            .await
            .unwrap();
        client.send_raw_to(b"", addr).await.unwrap();
        client
            .send(&Message::new(Kind::Data, 3, "ok"))
            .await
            .unwrap();
        let (msg, _) = server.recv_from().await.unwrap();
        assert_eq!((msg.seq, &msg.body[..]), (3, &b"ok"[..]));
        assert_eq!(server.invalid_datagrams(), 2);
    }

    fn secret() -> Secret {
        Secret::new(b"s3cret".to_vec()).unwrap()
    }

    /// A listener and a client connected to it, both authenticated.
    async fn authenticated_pair() -> (Socket, Socket) {
        let mut server = Socket::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        server.authenticate(&secret(), Role::Server, [0xaa; 8]);
        let mut client = Socket::connect(server.local_addr().unwrap()).await.unwrap();
        client.authenticate(&secret(), Role::Client, [0xcc; 8]);
        (server, client)
    }

    /// A plain socket that plays the attacker on the path: it receives what
    /// a client sends and can send those bytes on, as they are or altered.
    async fn capture(client: &mut Socket, msg: &Message) -> (Socket, Bytes) {
        let mut tap = Socket::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        client
            .send_to(msg, tap.local_addr().unwrap())
            .await
            .unwrap();
        let (bytes, _) = tap.recv_raw_from().await.unwrap();
        (tap, bytes)
    }

    #[tokio::test]
    async fn an_authenticated_round_trip() {
        let (mut server, mut client) = authenticated_pair().await;
        assert!(server.is_authenticated() && client.is_authenticated());
        for seq in 0..3 {
            let ping = Message::new(Kind::Ping, seq, "ping");
            client.send(&ping).await.unwrap();
            let (got, from) = server.recv_from().await.unwrap();
            assert_eq!(got, ping);
            let pong = Message {
                kind: Kind::Pong,
                ..got
            };
            server.send_to(&pong, from).await.unwrap();
            assert_eq!(client.recv_from().await.unwrap().0, pong);
        }
        assert_eq!(server.auth_rejections(), AuthRejections::default());
        assert_eq!(client.auth_rejections(), AuthRejections::default());
        assert_eq!(server.invalid_datagrams(), 0);
    }

    #[tokio::test]
    async fn what_goes_out_is_tagged_and_what_comes_in_raw_is_not_checked() {
        let (mut server, mut client) = authenticated_pair().await;
        let msg = Message::new(Kind::Data, 1, "hello");
        let (_tap, bytes) = capture(&mut client, &msg).await;
        assert_eq!(bytes.len(), HEADER_LEN + 5 + UDP_TRAILER_LEN);
        assert_eq!(bytes[4] & 0x80, 0x80, "the AUTH flag is set");
        // Raw sends stay raw, and so do raw receives.
        client
            .send_raw_to(b"raw", server.local_addr().unwrap())
            .await
            .unwrap();
        assert_eq!(&server.recv_raw_from().await.unwrap().0[..], b"raw");
    }

    #[tokio::test]
    async fn a_replayed_datagram_is_dropped_and_counted() {
        let (mut server, mut client) = authenticated_pair().await;
        let addr = server.local_addr().unwrap();
        let msg = Message::new(Kind::Data, 1, "once");
        let (mut tap, bytes) = capture(&mut client, &msg).await;
        tap.send_raw_to(&bytes, addr).await.unwrap();
        tap.send_raw_to(&bytes, addr).await.unwrap();
        client
            .send(&Message::new(Kind::Data, 2, "next"))
            .await
            .unwrap();
        // The first copy is accepted: the source address is not
        // authenticated, and this session had not been heard from there.
        assert_eq!(server.recv_from().await.unwrap().0, msg);
        assert_eq!(server.recv_from().await.unwrap().0.seq, 2);
        assert_eq!(
            server.auth_rejections(),
            AuthRejections {
                replayed: 1,
                ..AuthRejections::default()
            }
        );
    }

    #[tokio::test]
    async fn waiting_datagrams_are_discarded_and_counted() {
        let socket = Socket::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let addr = socket.local_addr().unwrap();
        // As a listener's summary takes them: through a std handle.
        let server = socket.try_clone_std().unwrap();
        let discard_waiting = |max| sync::discard_waiting(&socket2::SockRef::from(&server), max);
        let sender = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        for len in [0, 1, 2000] {
            sender.send_to(&vec![7; len], addr).unwrap();
        }
        // Loopback delivers at once, but not in the same instant.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        let mut discarded = 0;
        while discarded < 3 && std::time::Instant::now() < deadline {
            discarded += discard_waiting(10);
        }
        assert_eq!(discarded, 3);
        assert_eq!(discard_waiting(10), 0);
    }

    #[tokio::test]
    async fn a_datagram_is_accepted_once_whatever_address_it_comes_from() {
        let (mut server, mut client) = authenticated_pair().await;
        let addr = server.local_addr().unwrap();
        let msg = Message::new(Kind::Data, 1, "once");
        let (mut tap, bytes) = capture(&mut client, &msg).await;
        tap.send_raw_to(&bytes, addr).await.unwrap();
        // The same datagram again from five new source ports: each would
        // have found an empty window if windows were kept per address.
        for _ in 0..5 {
            let mut other = Socket::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
            other.send_raw_to(&bytes, addr).await.unwrap();
        }
        client
            .send(&Message::new(Kind::Data, 2, "next"))
            .await
            .unwrap();
        assert_eq!(server.recv_from().await.unwrap().0, msg);
        // The sender's own next datagram, from its own address, is in the
        // same session: accepted.
        assert_eq!(server.recv_from().await.unwrap().0.seq, 2);
        assert_eq!(
            server.auth_rejections(),
            AuthRejections {
                replayed: 5,
                ..AuthRejections::default()
            }
        );
    }

    #[tokio::test]
    async fn a_bad_tag_and_an_untagged_message_are_dropped_and_counted() {
        let (mut server, mut client) = authenticated_pair().await;
        let addr = server.local_addr().unwrap();
        let (mut tap, bytes) = capture(&mut client, &Message::new(Kind::Data, 1, "body")).await;
        let mut altered = bytes.to_vec();
        altered[HEADER_LEN] ^= 0x01;
        tap.send_raw_to(&altered, addr).await.unwrap();
        // A tagged datagram cut short, and one with its tag cut off.
        tap.send_raw_to(&bytes[..bytes.len() - 1], addr)
            .await
            .unwrap();
        // A peer without the secret.
        tap.send_to(&Message::new(Kind::Data, 2, "plain"), addr)
            .await
            .unwrap();
        // Not a msg message at all: invalid, as without a secret.
        tap.send_raw_to(b"GET / HTTP/1.0\r\n\r\n", addr)
            .await
            .unwrap();
        client
            .send(&Message::new(Kind::Data, 3, "good"))
            .await
            .unwrap();
        assert_eq!(server.recv_from().await.unwrap().0.seq, 3);
        assert_eq!(
            server.auth_rejections(),
            AuthRejections {
                bad_tag: 2,
                replayed: 0,
                untagged: 1,
            }
        );
        assert_eq!(server.auth_rejections().total(), 3);
        assert_eq!(server.invalid_datagrams(), 1);
    }

    #[tokio::test]
    async fn a_client_refuses_its_own_datagrams_reflected_back() {
        let (_server, mut client) = authenticated_pair().await;
        let (mut tap, bytes) = capture(&mut client, &Message::new(Kind::Data, 1, "me")).await;
        let mut listener = Socket::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        listener.authenticate(&secret(), Role::Client, [0xdd; 8]);
        let addr = listener.local_addr().unwrap();
        tap.send_raw_to(&bytes, addr).await.unwrap();
        let mut server = Socket::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        server.authenticate(&secret(), Role::Server, [0xee; 8]);
        server
            .send_to(&Message::new(Kind::Data, 2, "from a server"), addr)
            .await
            .unwrap();
        assert_eq!(listener.recv_from().await.unwrap().0.seq, 2);
        assert_eq!(listener.auth_rejections().bad_tag, 1);
    }

    #[tokio::test]
    async fn a_listener_without_a_secret_drops_tagged_datagrams_as_invalid() {
        let mut server = Socket::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let addr = server.local_addr().unwrap();
        let mut client = Socket::connect(addr).await.unwrap();
        client.authenticate(&secret(), Role::Client, [0xcc; 8]);
        let (mut tap, bytes) = capture(&mut client, &Message::new(Kind::Data, 1, "x")).await;
        assert!(matches!(
            msg_proto::decode(bytes.clone()),
            Err(msg_proto::Error::NeedsSecret)
        ));
        tap.send_raw_to(&bytes, addr).await.unwrap();
        tap.send_to(&Message::new(Kind::Data, 2, "plain"), addr)
            .await
            .unwrap();
        assert_eq!(server.recv_from().await.unwrap().0.seq, 2);
        assert_eq!(server.invalid_datagrams(), 1);
        assert_eq!(server.auth_rejections(), AuthRejections::default());
    }

    #[tokio::test]
    async fn a_restarted_sender_with_a_new_session_is_heard_again() {
        let mut server = Socket::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        server.authenticate(&secret(), Role::Server, [0xaa; 8]);
        let addr = server.local_addr().unwrap();
        let mut first = Socket::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let local = first.local_addr().unwrap();
        first.authenticate(&secret(), Role::Client, [1; 8]);
        for seq in 0..3 {
            first
                .send_to(&Message::new(Kind::Data, seq, "first run"), addr)
                .await
                .unwrap();
            assert_eq!(server.recv_from().await.unwrap().0.seq, seq);
        }
        drop(first);

        // Same address, counter from 0 again. With the same session id its
        // first datagrams repeat counters the window holds: refused.
        let mut again = Socket::bind(local).await.unwrap();
        again.authenticate(&secret(), Role::Client, [1; 8]);
        again
            .send_to(&Message::new(Kind::Data, 10, "same session"), addr)
            .await
            .unwrap();
        drop(again);
        // With a new session id it starts a window of its own.
        let mut restarted = Socket::bind(local).await.unwrap();
        restarted.authenticate(&secret(), Role::Client, [2; 8]);
        restarted
            .send_to(&Message::new(Kind::Data, 20, "second run"), addr)
            .await
            .unwrap();
        let (msg, from) = server.recv_from().await.unwrap();
        assert_eq!((msg.seq, from), (20, local));
        assert_eq!(server.auth_rejections().replayed, 1);
    }

    #[tokio::test]
    async fn the_trailer_counts_against_the_datagram_limit() {
        let (mut server, mut client) = authenticated_pair().await;
        let largest = MAX_PAYLOAD_V4 - HEADER_LEN - UDP_TRAILER_LEN;
        assert_eq!(largest, 65_431);
        let msg = Message::new(Kind::Data, 1, vec![7; largest]);
        client.send(&msg).await.unwrap();
        assert_eq!(server.recv_from().await.unwrap().0, msg);
        let err = client
            .send(&Message::new(Kind::Data, 2, vec![7; largest + 1]))
            .await
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "message is 65432 bytes; a UDP datagram holds at most 65507 bytes on IPv4 \
             (65431 for the body after a 28-byte header and a 48-byte authentication trailer)"
        );
        // The refused message used no counter: the next one is not seen as
        // coming after a gap, nor refused.
        client
            .send(&Message::new(Kind::Data, 3, "small"))
            .await
            .unwrap();
        assert_eq!(server.recv_from().await.unwrap().0.seq, 3);
    }

    #[tokio::test]
    async fn a_clone_shares_the_keys_and_the_count_but_not_the_windows() {
        let (mut server, mut sender) = authenticated_pair().await;
        sender
            .send(&Message::new(Kind::Ping, 1, "before"))
            .await
            .unwrap();
        let (_, from) = server.recv_from().await.unwrap();
        let mut receiver = sender.try_clone().unwrap();
        assert!(receiver.is_authenticated());
        // The sender carries on in its session after the clone.
        sender
            .send(&Message::new(Kind::Ping, 2, "after"))
            .await
            .unwrap();
        assert_eq!(server.recv_from().await.unwrap().0.seq, 2);
        // The clone opens the server's replies.
        server
            .send_to(&Message::new(Kind::Pong, 2, "reply"), from)
            .await
            .unwrap();
        assert_eq!(receiver.recv_from().await.unwrap().0.seq, 2);
        // Why only one handle should send: the clone's copy of the counter
        // is where the sender's stood at the clone, already used since.
        receiver
            .send(&Message::new(Kind::Ping, 3, "from the clone"))
            .await
            .unwrap();
        sender
            .send(&Message::new(Kind::Ping, 4, "from the sender"))
            .await
            .unwrap();
        assert_eq!(server.recv_from().await.unwrap().0.seq, 4);
        assert_eq!(server.auth_rejections().replayed, 1);
    }
}
