//! [`serve`]: accept, dispatch each message by kind, answer, report.
//!
//! Written once per family:
//!
//! - `datagram.rs`: over UDP one socket serves every peer in one loop
//!   (plain, or batched with `recvmmsg` and GRO): a datagram is a whole
//!   message, so there is nothing per peer to keep but a counter.
//! - `stream/`: every kind of stream. Each connection gets a task of its
//!   own, so a slow or broken client stalls only itself; a peer that sends
//!   bad bytes is dropped, logged, and everyone else goes on being served.
//!   From the accept down (the limits, refusals, the handshake, files,
//!   commands) a connection is any byte stream msg-tcp can frame; which
//!   kind it is matters only to the crate's `stream/`. `mod.rs` accepts
//!   within the limits; `connection.rs` serves one connection let in.
//! - `config.rs`: [`ServeConfig`], what both are told.
//!
//! What a message gets (`respond.rs`) and when a stream peer has been idle
//! or slow too long (`deadlines.rs`) are decided without I/O, in modules
//! of their own that the blocking engine's serve loops use too.

/// How long a listener (either engine) reads and drops a frame over its
/// limit after saying so: what a sender had in flight arrives in far less,
/// and a peer that announced gigabytes and sends nothing holds its task no
/// longer.
pub(crate) const REFUSED_FRAME_DRAIN: Duration = Duration::from_secs(1);

mod config;
mod datagram;
mod stream;

use std::future::Future;
use std::time::Duration;

use msg_proto::auth::Role;

use crate::dgram::Datagrams;
use crate::listener::Bound;
use crate::{BusyPoll, Error, Events, Listener, auth, raw};

pub use config::ServeConfig;
pub(crate) use config::UidRefused;

/// Serves `listener` until `shutdown` completes, the receiving end of
/// `events` is gone (over UDP), or a fatal error.
///
/// Dropping the returned future stops every connection it serves.
///
/// # Errors
///
/// A failed receive on the UDP socket. TCP connections that fail are
/// logged and dropped, and the listener goes on.
pub async fn serve(
    listener: Listener,
    config: ServeConfig,
    events: Events,
    shutdown: impl Future<Output = ()>,
) -> Result<(), Error> {
    if listener.transport().caps().encrypted && config.tls.is_none() {
        return Err(crate::tls::TlsError::Needed(listener.transport()).into());
    }
    let _spinning = config.busy_poll.then(BusyPoll::start);
    let quic = listener.quic_endpoint();
    let serving = async {
        match listener.inner {
            Bound::Datagram(socket) if config.raw => {
                raw::serve_udp(socket, config.reply, events).await
            }
            Bound::Datagram(mut socket) => {
                if let Some(auth) = &config.auth {
                    socket.authenticate(&auth.secret, Role::Server, auth::session_id());
                }
                if config.udp_batch > 1 {
                    datagram::serve_batched(socket, &config, events).await
                } else {
                    datagram::serve(socket, &config, events).await
                }
            }
            Bound::UnixDatagram(mut socket) => {
                if config.asks_senders() {
                    socket.ask_senders(&config.allow_uids)?;
                }
                if config.raw {
                    return raw::serve_udp(socket, config.reply, events).await;
                }
                if let Some(auth) = &config.auth {
                    Datagrams::authenticate(
                        &mut socket,
                        &auth.secret,
                        Role::Server,
                        auth::session_id(),
                    );
                }
                datagram::serve(socket, &config, events).await
            }
            Bound::QuicDatagram(mut socket) => {
                let tls = config
                    .tls
                    .as_ref()
                    .expect("an encrypted transport's TLS is checked above");
                socket.start(tls, &config.limits)?;
                if config.raw {
                    return raw::serve_udp(socket, config.reply, events).await;
                }
                if let Some(auth) = &config.auth {
                    Datagrams::authenticate(
                        &mut socket,
                        &auth.secret,
                        Role::Server,
                        auth::session_id(),
                    );
                }
                datagram::serve(socket, &config, events).await
            }
            Bound::Stream(listener) => stream::serve(listener, config, events).await,
        }
    };
    let served = tokio::select! {
        result = serving => result,
        () = shutdown => Ok(()),
    };
    // QUIC's close is a packet its endpoint's task sends: a listener that
    // exits without waiting (its `--count` reached) left its clients to
    // find out at their idle timeout, a minute later.
    if let Some(endpoint) = quic {
        endpoint.close(0u32.into(), b"the listener stopped");
        let _ = tokio::time::timeout(QUIC_CLOSE_WAIT, endpoint.wait_idle()).await;
    }
    served
}

/// How long a QUIC listener that stops waits for its clients to be told.
const QUIC_CLOSE_WAIT: Duration = Duration::from_secs(1);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ConnectOptions, Event, Link, Reply, Transport};
    use msg_proto::{Kind, Message};

    /// `serve` in-process, over both transports: a ping is answered, a
    /// data message is reported, and shutdown ends it.
    #[tokio::test]
    async fn serves_in_process_until_shutdown() {
        for transport in [Transport::Udp, Transport::Tcp] {
            let listener = Listener::bind(
                transport,
                "127.0.0.1:0".parse::<std::net::SocketAddr>().unwrap(),
                msg_tcp::Options::default(),
            )
            .await
            .unwrap();
            let addr = listener.local_addr().unwrap();
            let (events, mut received) = Events::channel();
            let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
            let config = ServeConfig {
                reply: Reply::Echo,
                ..ServeConfig::default()
            };
            let server = tokio::spawn(serve(listener, config, events, async {
                let _ = stopped.await;
            }));

            let mut link = Link::connect(transport, addr, &ConnectOptions::default())
                .await
                .unwrap();
            link.send(&Message::new(Kind::Ping, 1, "p")).await.unwrap();
            let pong = link.recv().await.unwrap().unwrap();
            assert_eq!((pong.kind, pong.seq), (Kind::Pong, 1), "{transport}");
            link.send(&Message::new(Kind::Data, 2, "d")).await.unwrap();
            let echo = link.recv().await.unwrap().unwrap();
            assert_eq!((echo.kind, &echo.body[..]), (Kind::Data, &b"d"[..]));
            let delivered = received.try_recv().expect("reported after the reply");
            let Event::Message { seq, body, .. } = &delivered.event else {
                panic!("a message, not {:?}", delivered.event)
            };
            assert_eq!((*seq, &body[..]), (Some(2), &b"d"[..]));

            stop.send(()).unwrap();
            server.await.unwrap().unwrap();
        }
    }
}
