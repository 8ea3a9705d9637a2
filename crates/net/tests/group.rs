//! Receivers of one multicast group on one host, in both engines, batched
//! and not: they share the group's port, and each answers from a port of
//! its own, so a one-to-many sender hears each apart. With a secret on
//! every side, every answer passes authentication (its tag is keyed by
//! the address, whichever socket sends it).
//!
//! On the host's loopback: naming 127.0.0.1 as the interface on both
//! sides needs no route.

use std::collections::HashSet;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use msg_net::group::{GroupOptions, Iface};
use msg_net::{Auth, Events, Listener, Reply, ServeConfig, blocking, serve};
use msg_proto::auth::{Role, Secret};
use msg_proto::{Kind, Message};

const WAIT: Duration = Duration::from_secs(5);

fn on_lo() -> GroupOptions {
    GroupOptions {
        iface: Some(Iface::Addr(Ipv4Addr::LOCALHOST.into())),
        ..GroupOptions::default()
    }
}

fn config(secret: &Secret, udp_batch: usize) -> ServeConfig {
    ServeConfig {
        reply: Reply::Echo,
        auth: Some(Auth::new(secret.clone())),
        udp_batch,
        ..ServeConfig::default()
    }
}

/// A joined listener served on a thread of its own until stopped.
struct Joined {
    stop: Box<dyn FnOnce() + Send>,
    thread: JoinHandle<()>,
}

impl Joined {
    /// The tokio engine's listener of `group`; the group with its port.
    fn tokio(group: SocketAddr, config: ServeConfig) -> (SocketAddr, Self) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        // Registering the sockets needs the runtime.
        let listener = runtime
            .block_on(async { Listener::join(group, &on_lo()) })
            .unwrap();
        let group = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = thread::spawn(move || {
            let stopped = async {
                let _ = stopped.await;
            };
            runtime
                .block_on(serve(listener, config, Events::discard(), stopped))
                .unwrap();
        });
        let stop = Box::new(move || {
            let _ = stop.send(());
        });
        (group, Self { stop, thread })
    }

    /// The blocking engine's listener of `group`.
    fn blocking(group: SocketAddr, config: ServeConfig) -> Self {
        let listener = blocking::Listener::join(group, &on_lo()).unwrap();
        assert_eq!(listener.local_addr().unwrap(), group);
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = thread::spawn(move || {
            blocking::serve(&listener, &config, &Events::discard(), &flag).unwrap();
        });
        let stop = Box::new(move || stop.store(true, Ordering::Relaxed));
        Self { stop, thread }
    }

    fn stop(self) {
        (self.stop)();
        self.thread.join().unwrap();
    }
}

#[test]
fn every_receiver_on_one_host_answers_from_a_port_of_its_own() {
    let secret = Secret::new(b"one group, four receivers".to_vec()).unwrap();
    let (group, first) = Joined::tokio("239.255.77.21:0".parse().unwrap(), config(&secret, 1));
    let (_, second) = Joined::tokio(group, config(&secret, 8));
    let listeners = [
        first,
        second,
        Joined::blocking(group, config(&secret, 1)),
        Joined::blocking(group, config(&secret, 8)),
    ];

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let heard = runtime.block_on(async {
        let mut sender = msg_udp::Socket::one_to_many(group, &on_lo()).unwrap();
        sender.authenticate(&secret, Role::Client, [0x5e; 8]);
        sender
            .send(&Message::new(Kind::Data, 1, "to all"))
            .await
            .unwrap();
        let mut heard = HashSet::new();
        while heard.len() < listeners.len() {
            let recv = tokio::time::timeout(WAIT, sender.recv_from());
            let (echo, from) = recv.await.expect("every receiver answers").unwrap();
            assert_eq!(&echo.body[..], b"to all");
            assert_eq!(from.ip(), Ipv4Addr::LOCALHOST);
            assert_ne!(from.port(), group.port(), "not from the shared port");
            assert!(heard.insert(from), "{from} answered twice");
        }
        assert_eq!(sender.auth_rejections().total(), 0);
        heard
    });
    assert_eq!(heard.len(), 4);
    for listener in listeners {
        listener.stop();
    }
}
