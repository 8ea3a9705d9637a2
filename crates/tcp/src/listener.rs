//! [`Listener`]: a listening socket whose accepted streams come out as
//! [`Connection`]s with the listener's [`Options`].
//!
//! Generic over what it listens with, as a connection is over its stream:
//! accepting asks only [`Accept`]. Binding is each kind's own (TCP's,
//! [`Listener::bind`], is in `tcp.rs`).

use std::future::poll_fn;

use tokio::net::TcpListener;

use crate::{Accept, Connection, Error, Options, PeerAddr};

/// A listening socket that yields framed connections; a TCP one unless
/// said otherwise.
#[derive(Debug)]
pub struct Listener<L = TcpListener> {
    pub(crate) inner: L,
    options: Options,
}

impl<L: Accept> Listener<L> {
    /// Listens with `inner`, already bound and listening; each accepted
    /// connection gets `options`.
    pub fn new(inner: L, options: Options) -> Self {
        Self { inner, options }
    }

    /// Accepts the next connection.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] (for example when out of file descriptors; the listener
    /// itself stays usable).
    pub async fn accept(&self) -> Result<Connection<L::Stream>, Error> {
        let (stream, _) = self.accept_stream().await?;
        Connection::new(stream, self.options)
    }

    /// Accepts the next connection as a plain stream, unframed: for a peer
    /// that speaks raw bytes (netcat), or a caller that frames it later
    /// with [`Connection::new`] and [`Listener::options`]. Cancel-safe, as
    /// tokio's accepts are.
    ///
    /// # Errors
    ///
    /// [`Error::Io`], as for [`Listener::accept`].
    pub async fn accept_stream(&self) -> Result<(L::Stream, PeerAddr), Error> {
        Ok(poll_fn(|cx| self.inner.poll_accept(cx)).await?)
    }

    /// The options each accepted [`Connection`] gets.
    pub fn options(&self) -> Options {
        self.options
    }

    /// The socket it listens with.
    pub fn get_ref(&self) -> &L {
        &self.inner
    }

    /// The socket it listens with, for a caller that wraps it (in a type
    /// that covers several kinds of listener, say).
    pub fn into_inner(self) -> L {
        self.inner
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use msg_proto::{Kind, Message};
    use std::time::Duration;
    use tokio::net::TcpStream;

    #[tokio::test]
    async fn a_connection_round_trips_and_sees_clean_eof() {
        let listener = Listener::bind("127.0.0.1:0".parse().unwrap(), Options::default())
            .await
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let mut conn = listener.accept().await.unwrap();
            assert!(conn.get_ref().nodelay().unwrap());
            while let Some(msg) = conn.read_message().await.unwrap() {
                conn.write_message(&msg).await.unwrap();
            }
        });
        let mut client = Connection::connect(addr, Options::default()).await.unwrap();
        for seq in 0..20 {
            let msg = Message::new(Kind::Data, seq, Bytes::from(vec![seq as u8; 3000]));
            client.write_message(&msg).await.unwrap();
            assert_eq!(client.read_message().await.unwrap(), Some(msg));
        }
        drop(client);
        server.await.unwrap();
    }

    /// A burst of connections that nobody has accepted yet all complete:
    /// with std's backlog of 128 the 130th SYN was dropped, and its
    /// connect waited for retries that a full queue kept dropping.
    #[tokio::test]
    async fn a_burst_of_connections_fits_the_backlog() {
        const BURST: usize = 300;
        let listener = Listener::bind("127.0.0.1:0".parse().unwrap(), Options::default())
            .await
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let mut waiting = Vec::with_capacity(BURST);
        for n in 0..BURST {
            // Far above a loopback connect, and above the first SYN retry.
            let connect = tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(addr));
            match connect.await {
                Ok(stream) => waiting.push(stream.unwrap()),
                Err(_) => panic!("connection {n} of {BURST} waited 5 s: the backlog is full"),
            }
        }
        drop(listener);
    }
}
