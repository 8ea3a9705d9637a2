//! The secret and what is derived from it: [`Secret`], which keys the
//! handshake's proofs (HMAC-SHA256) and every derivation (HKDF-SHA256);
//! the [`Role`] each end plays; and the [`SessionKeys`] a TCP handshake
//! agrees on, one per direction, which make a connection's sealer and
//! opener. Apart from `mod.rs`, which keeps what every part shares (the
//! lengths, the labels, the errors and the tagged message's checks), and
//! from the handshake that uses them, because they are the one place the
//! secret's bytes are read.

use std::fmt;

use hkdf::Hkdf;
use hmac::Mac;
use sha2::Sha256;

use super::{
    AuthError, FrameOpener, FrameSealer, HmacSha256, KEY_LEN, NONCE_LEN, TCP_CLIENT_TO_SERVER,
    TCP_SERVER_TO_CLIENT,
};
/// The shared secret: at least one byte, any bytes.
///
/// Its [`fmt::Debug`] prints nothing of it (not even its length), so it
/// cannot leak through a log line or a panic message.
#[derive(Clone)]
pub struct Secret(Box<[u8]>);

impl Secret {
    /// Wraps the secret's bytes.
    ///
    /// The bytes are used as they are: a caller reading a file decides
    /// whether a trailing newline is part of the secret.
    ///
    /// # Errors
    ///
    /// [`AuthError::EmptySecret`] if `bytes` is empty.
    pub fn new(bytes: Vec<u8>) -> Result<Self, AuthError> {
        if bytes.is_empty() {
            return Err(AuthError::EmptySecret);
        }
        Ok(Self(bytes.into_boxed_slice()))
    }

    /// HMAC-SHA256 keyed with the secret over `parts`, concatenated.
    pub(super) fn proof(&self, parts: &[&[u8]]) -> HmacSha256 {
        let mut mac = keyed(&self.0);
        for part in parts {
            mac.update(part);
        }
        mac
    }

    /// HKDF-SHA256 with the secret as input keying material.
    pub(super) fn derive(&self, salt: &[u8], info: &[u8]) -> [u8; KEY_LEN] {
        let mut key = [0u8; KEY_LEN];
        Hkdf::<Sha256>::new(Some(salt), &self.0)
            .expand(info, &mut key)
            .expect("32 bytes is far below HKDF-SHA256's 8160-byte limit");
        key
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// A keyed HMAC-SHA256 state.
pub(super) fn keyed(key: &[u8]) -> HmacSha256 {
    HmacSha256::new_from_slice(key).expect("HMAC takes a key of any length")
}

/// Which end of an exchange: the side that connects or sends first (`msg
/// send`, `msg bench`), or the side that listens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// `msg send`, `msg bench`: connects, or sends the first datagram.
    Client,
    /// `msg listen`: accepts, or answers datagrams.
    Server,
}

/// The two per-direction keys a finished TCP handshake agrees on.
///
/// One key per direction so that a frame a peer sent can never be echoed
/// back to it as one from the other side: its own opener would check it
/// under the other key.
#[derive(Clone)]
pub struct SessionKeys {
    client_to_server: [u8; KEY_LEN],
    server_to_client: [u8; KEY_LEN],
}

impl SessionKeys {
    /// Derives both keys. The salt holds both nonces, so every handshake
    /// yields fresh keys even though the secret never changes, and frames
    /// recorded from one connection verify on no other.
    pub(super) fn derive(secret: &Secret, nc: &[u8; NONCE_LEN], ns: &[u8; NONCE_LEN]) -> Self {
        let mut salt = [0u8; 2 * NONCE_LEN];
        salt[..NONCE_LEN].copy_from_slice(nc);
        salt[NONCE_LEN..].copy_from_slice(ns);
        Self {
            client_to_server: secret.derive(&salt, TCP_CLIENT_TO_SERVER),
            server_to_client: secret.derive(&salt, TCP_SERVER_TO_CLIENT),
        }
    }

    /// The key of frames from client to server (`k_cs`).
    pub fn client_to_server(&self) -> &[u8; KEY_LEN] {
        &self.client_to_server
    }

    /// The key of frames from server to client (`k_sc`).
    pub fn server_to_client(&self) -> &[u8; KEY_LEN] {
        &self.server_to_client
    }

    /// The sealer for the frames that `us` writes.
    pub fn sealer(&self, us: Role) -> FrameSealer {
        FrameSealer::new(self.sending_key(us))
    }

    /// The opener for the frames that `us` reads (the peer's sealer's key).
    pub fn opener(&self, us: Role) -> FrameOpener {
        let peer = match us {
            Role::Client => Role::Server,
            Role::Server => Role::Client,
        };
        FrameOpener::new(self.sending_key(peer))
    }

    fn sending_key(&self, sender: Role) -> &[u8; KEY_LEN] {
        match sender {
            Role::Client => &self.client_to_server,
            Role::Server => &self.server_to_client,
        }
    }
}

impl fmt::Debug for SessionKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionKeys(..)")
    }
}
