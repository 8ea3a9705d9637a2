//! A [`Link`] split into its halves, [`Tx`] and [`Rx`], for a session
//! that sends and receives at once (`msg connect`).

use super::*;

impl Link {
    /// Halves that can be used at once (by two futures joined in one
    /// task), for a sender that must not wait for replies. Over UDP the
    /// second is a duplicated descriptor with a registration of its own,
    /// so each arriving datagram wakes two; only a caller that splits pays
    /// that.
    ///
    /// # Errors
    ///
    /// Over UDP, the operating system's (out of descriptors).
    pub fn split(self) -> Result<(Tx, Rx), Error> {
        Ok(match self.inner {
            Inner::Datagram(socket) => {
                let receiver = socket.try_clone()?;
                (
                    Tx(TxInner::Datagram(socket)),
                    Rx(RxInner::Datagram(receiver)),
                )
            }
            Inner::UnixDatagram(socket) => {
                let receiver = socket.try_clone()?;
                (
                    Tx(TxInner::UnixDatagram(socket)),
                    Rx(RxInner::UnixDatagram(receiver)),
                )
            }
            Inner::QuicDatagram(socket) => {
                let receiver = socket.try_clone();
                (
                    Tx(TxInner::QuicDatagram(socket)),
                    Rx(RxInner::QuicDatagram(receiver)),
                )
            }
            Inner::Stream(conn) => {
                let (read, write) = conn.into_split();
                (Tx(TxInner::Stream(write)), Rx(RxInner::Stream(read)))
            }
        })
    }
}

/// How long a QUIC datagram client waits for what it sent to leave, or
/// for its close to.
const QUIC_FLUSH_WAIT: Duration = Duration::from_secs(1);

/// The sending half of a split [`Link`].
#[derive(Debug)]
pub struct Tx(TxInner);

#[derive(Debug)]
enum TxInner {
    Datagram(msg_udp::Socket),
    UnixDatagram(UnixDgram),
    QuicDatagram(QuicDgram),
    Stream(msg_tcp::WriteHalf<AnyStream>),
}

impl Tx {
    /// Ends the sending side of a stream: the peer reads the end after the
    /// last message (a half-close: its replies still arrive); a datagram
    /// link has nothing to end.
    ///
    /// # Errors
    ///
    /// A failed flush or shutdown.
    pub async fn finish(&mut self) -> Result<(), Error> {
        match &mut self.0 {
            TxInner::Stream(write) => write.shutdown().await?,
            // Queued in quinn, sent from its task: out before the caller
            // goes on (and, ending, exits).
            TxInner::QuicDatagram(socket) => socket.flush(QUIC_FLUSH_WAIT).await,
            TxInner::Datagram(_) | TxInner::UnixDatagram(_) => {}
        }
        Ok(())
    }

    /// Ends the session, once nothing more is awaited from the peer: a
    /// QUIC connection is closed, and its listener told (waiting at most a
    /// second for that to go out), which would otherwise hold it until its
    /// idle timeout; the others end when dropped.
    pub async fn close(self) {
        if let TxInner::QuicDatagram(socket) = self.0 {
            socket.close(QUIC_FLUSH_WAIT).await;
        }
    }

    /// As [`Link::tcp_info`].
    ///
    /// # Errors
    ///
    /// As [`Link::tcp_info`].
    pub fn tcp_info(&self) -> Result<Option<TcpInfo>, Error> {
        match &self.0 {
            TxInner::Stream(write) => AnyWriter::tcp_info(write.get_ref()),
            TxInner::Datagram(_) | TxInner::UnixDatagram(_) | TxInner::QuicDatagram(_) => Ok(None),
        }
    }

    /// As [`Link::send`].
    ///
    /// # Errors
    ///
    /// As [`Link::send`].
    pub async fn send(&mut self, msg: &Message) -> Result<(), Error> {
        match &mut self.0 {
            TxInner::Datagram(socket) => socket.send(msg).await?,
            TxInner::UnixDatagram(socket) => socket.send(msg).await?,
            TxInner::QuicDatagram(socket) => socket.send(msg).await?,
            TxInner::Stream(write) => write.write_message(msg).await?,
        }
        Ok(())
    }
}

/// The receiving half of a split [`Link`].
#[derive(Debug)]
pub struct Rx(RxInner);

#[derive(Debug)]
enum RxInner {
    Datagram(msg_udp::Socket),
    UnixDatagram(UnixDgram),
    QuicDatagram(QuicDgram),
    Stream(msg_tcp::ReadHalf<AnyStream>),
}

impl Rx {
    /// As [`Link::recv`].
    ///
    /// # Errors
    ///
    /// As [`Link::recv`].
    pub async fn recv(&mut self) -> Result<Option<Message>, Error> {
        Ok(match &mut self.0 {
            RxInner::Datagram(socket) => Some(socket.recv_from().await?.0),
            RxInner::UnixDatagram(socket) => Some(socket.recv().await?),
            RxInner::QuicDatagram(socket) => Some(socket.recv().await?),
            RxInner::Stream(read) => read.read_message().await?,
        })
    }

    /// Bytes of a frame begun and not yet whole (over a stream; a
    /// datagram is whole or not there).
    pub fn unfinished(&self) -> usize {
        match &self.0 {
            RxInner::Stream(read) => read.buffered(),
            _ => 0,
        }
    }
}
