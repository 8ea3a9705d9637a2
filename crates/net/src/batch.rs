//! Batched UDP: many datagrams per system call, on both ends.
//!
//! - [`Link::send_batch`]: a client's burst of messages in as few calls as
//!   the platform allows (`sendmmsg` on Linux).
//! - The serve loop of a datagram listener with
//!   [`ServeConfig::udp_batch`](crate::ServeConfig::udp_batch) set
//!   (`serve/datagram.rs`), taking up to that many datagrams per
//!   `recvmmsg`, and answering each as the plain loop does. Where the
//!   kernel offers it, the socket also takes GSO runs coalesced (GRO), so
//!   that a sender's run of datagrams arrives in one receive slot; the
//!   transport cuts it apart again.
//!
//! Each datagram is still a message of its own: batching changes how many
//! system calls carry them, not what arrives, what is lost, or the order.

use msg_proto::Message;

use crate::{Error, Link, SendBatch};

impl Link {
    /// Sends `msgs` in order: over UDP as one datagram each, batched into
    /// as few system calls as the platform allows (counted in `batch`);
    /// over TCP one frame each, as [`Link::send`] does (TCP batches in the
    /// kernel already, and `batch` counts nothing).
    ///
    /// # Errors
    ///
    /// As [`Link::send`]: a message too large (over UDP nothing of its
    /// group of up to [`MAX_BATCH`](crate::MAX_BATCH) is sent), or the send
    /// failed.
    pub async fn send_batch(
        &mut self,
        msgs: &[Message],
        batch: &mut SendBatch,
    ) -> Result<(), Error> {
        if let Some(socket) = self.udp_socket() {
            socket.send_batch(msgs, batch).await?;
            return Ok(());
        }
        for msg in msgs {
            self.send(msg).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use msg_proto::Kind;

    use crate::{ConnectOptions, Counters, Events, Listener, Reply, ServeConfig, Transport, serve};

    use super::*;

    /// A batched listener counts every discard of a batched stream and
    /// answers pings and data as the plain one does.
    #[tokio::test]
    async fn a_batched_listener_serves_as_the_plain_one() {
        let listener = Listener::bind(
            Transport::Udp,
            "127.0.0.1:0".parse::<std::net::SocketAddr>().unwrap(),
            msg_tcp::Options::default(),
        )
        .await
        .unwrap();
        let addr = listener.local_addr().unwrap();
        let counters = Arc::new(Counters::default());
        let config = ServeConfig {
            reply: Reply::Echo,
            udp_batch: 16,
            counters: Arc::clone(&counters),
            ..ServeConfig::default()
        };
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve(listener, config, Events::discard(), async {
            let _ = stopped.await;
        }));

        let mut link = Link::connect(Transport::Udp, addr, &ConnectOptions::default())
            .await
            .unwrap();
        let discards: Vec<Message> = (1..=40)
            .map(|seq| Message::new(Kind::Discard, seq, "x"))
            .collect();
        let mut batch = SendBatch::new();
        link.send_batch(&discards, &mut batch).await.unwrap();
        assert_eq!(batch.counts().datagrams, 40);
        // The stats ping queues behind the discards: a loopback socket
        // keeps them in order.
        link.send(&crate::ping::stats_request(41)).await.unwrap();
        let pong = tokio::time::timeout(Duration::from_secs(5), link.recv())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        let stats = crate::ping::parse_stats(&pong).unwrap();
        assert_eq!((stats.received, stats.reordered), (40, 0));
        link.send(&Message::new(Kind::Data, 42, "echo me"))
            .await
            .unwrap();
        let echo = link.recv().await.unwrap().unwrap();
        assert_eq!(&echo.body[..], b"echo me");

        let calls = counters.udp_recv_calls();
        assert!(calls.datagrams >= 41, "{calls:?}");
        if cfg!(target_os = "linux") {
            assert!(calls.datagrams > calls.calls, "{calls:?}");
        }
        stop.send(()).unwrap();
        server.await.unwrap().unwrap();
    }
}
