//! TLS in the connect mode: the built-in listener's certificate and the
//! client that pins it, as `msg bench`'s other modes use them (msg-net's
//! [`TlsServer`](msg_net::tls::TlsServer) and
//! [`TlsClient`](msg_net::tls::TlsClient)), driven by blocking calls on
//! the cycle's socket, as the rest of the cycle is.
//!
//! The client resumes no session: every cycle makes a full TLS 1.3
//! handshake (key exchange, the listener's certificate and its signature
//! checked), as each `msg` process does, since its sessions die with it.
//! A resumed handshake would skip the certificate and its signature, and
//! measure a cost no msg client pays.

use std::io;
use std::ops::DerefMut;
use std::sync::Arc;

use msg_net::tls::LOCAL_NAME;
use rustls::client::Resumption;
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, ConnectionCommon, ServerConfig, ServerConnection};
use socket2::Socket;

/// The listener's configuration and the client's, from the built-in
/// listeners' TLS: the same self-signed certificate, its fingerprint
/// pinned, with session resumption off on the client.
pub(crate) fn configs() -> (Arc<ServerConfig>, Arc<ClientConfig>) {
    let (server, client) = crate::servers::builtin_tls();
    let mut client = client.rustls_config().clone();
    client.resumption = Resumption::disabled();
    (Arc::new(server.rustls_config().clone()), Arc::new(client))
}

/// The client's side of the handshake on `socket`, connected: each read
/// and write bounded by the socket's timeouts.
pub(super) fn connect(config: &Arc<ClientConfig>, socket: &Socket) -> io::Result<ClientConnection> {
    // The certificate holds LOCAL_NAME; the pinned check reads no name.
    let name = ServerName::try_from(LOCAL_NAME).expect("a valid name");
    let mut session = ClientConnection::new(Arc::clone(config), name).map_err(io::Error::other)?;
    handshake(session.deref_mut(), socket)?;
    Ok(session)
}

/// The listener's side of the handshake on `socket`, accepted.
pub(super) fn accept(config: &Arc<ServerConfig>, socket: &Socket) -> io::Result<ServerConnection> {
    let mut session = ServerConnection::new(Arc::clone(config)).map_err(io::Error::other)?;
    handshake(session.deref_mut(), socket)?;
    Ok(session)
}

/// Drives `session`'s handshake to its end: `complete_io` reads and
/// writes until the handshake is over (for the client its Finished sent,
/// for the listener its session tickets too), or fails.
fn handshake<D>(session: &mut ConnectionCommon<D>, socket: &Socket) -> io::Result<()> {
    let mut plain = socket;
    session.complete_io(&mut plain)?;
    if session.is_handshaking() {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    Ok(())
}

/// The client's end of the session: a close_notify, as msg's client sends
/// at its end; unsent, the listener sees the connection's end instead.
pub(super) fn close(session: &mut ClientConnection, socket: &Socket) {
    session.send_close_notify();
    let mut plain = socket;
    let _ = session.write_tls(&mut plain);
}
