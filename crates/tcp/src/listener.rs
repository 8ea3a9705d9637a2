//! [`Listener`]: a listening socket whose accepted streams come out as
//! [`Connection`]s with the listener's [`Options`].

use std::io;
use std::net::SocketAddr;

use tokio::net::{TcpListener, TcpStream};

use crate::{Connection, Error, Options};

/// A listening socket that yields framed connections.
#[derive(Debug)]
pub struct Listener {
    inner: TcpListener,
    options: Options,
}

impl Listener {
    /// Listens on `addr` (port 0 picks a free port).
    ///
    /// # Errors
    ///
    /// [`Error::Bind`], for example when the address is in use.
    pub async fn bind(addr: SocketAddr, options: Options) -> Result<Self, Error> {
        let inner = listen(addr).map_err(|source| Error::Bind { addr, source })?;
        Ok(Self { inner, options })
    }

    /// The local address.
    ///
    /// # Errors
    ///
    /// The operating system's, rarely.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }

    /// Accepts the next connection.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] (for example when out of file descriptors; the listener
    /// itself stays usable).
    pub async fn accept(&self) -> Result<Connection, Error> {
        let (stream, _) = self.accept_stream().await?;
        Connection::new(stream, self.options)
    }

    /// Accepts the next connection as a plain stream, unframed: for a peer
    /// that speaks raw bytes (netcat), or a caller that frames it later
    /// with [`Connection::new`] and [`Listener::options`].
    ///
    /// # Errors
    ///
    /// [`Error::Io`], as for [`Listener::accept`].
    pub async fn accept_stream(&self) -> Result<(TcpStream, SocketAddr), Error> {
        Ok(self.inner.accept().await?)
    }

    /// The options each accepted [`Connection`] gets.
    pub fn options(&self) -> Options {
        self.options
    }
}

/// [`tcp::listen`](crate::tcp::listen) (its backlog, `SO_REUSEADDR`), the
/// socket handed to tokio.
fn listen(addr: SocketAddr) -> io::Result<TcpListener> {
    let listener = crate::tcp::listen(addr)?;
    listener.set_nonblocking(true)?;
    TcpListener::from_std(listener)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use msg_proto::{Kind, Message};
    use std::time::Duration;

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
