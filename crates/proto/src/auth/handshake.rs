//! The TCP handshake: [`ClientHandshake`] and [`ServerHandshake`], each
//! step consuming its state, and the [`SessionKeys`] they yield.

use bytes::Bytes;

use super::*;

/// A handshake message: header fields zero, so that nothing but the body
/// carries meaning (and nothing unauthenticated could).
pub(super) fn handshake_message(kind: Kind, body: impl Into<Bytes>) -> Message {
    Message::new(kind, 0, body)
}

/// Checks a handshake message's kind and body length: a short body must fail
/// here, typed, before any slicing could panic.
fn expect(msg: &Message, kind: Kind, what: &'static str, len: usize) -> Result<(), AuthError> {
    if msg.kind != kind {
        return Err(AuthError::UnexpectedKind {
            expected: kind,
            found: msg.kind,
        });
    }
    if msg.body.len() != len {
        return Err(AuthError::BadLength {
            what,
            len: msg.body.len(),
            expected: len,
        });
    }
    Ok(())
}

/// The client's side of the TCP handshake, before the server has answered.
#[derive(Debug)]
pub struct ClientHandshake {
    secret: Secret,
    nc: [u8; NONCE_LEN],
}

impl ClientHandshake {
    /// Starts a handshake with the client's nonce `nc`, which must be fresh
    /// random bytes (a repeated nonce lets a recorded server answer pass),
    /// and returns the [`Kind::AuthChallenge`] to send.
    pub fn start(secret: &Secret, nc: [u8; NONCE_LEN]) -> (Self, Message) {
        let challenge = handshake_message(Kind::AuthChallenge, nc.to_vec());
        let state = Self {
            secret: secret.clone(),
            nc,
        };
        (state, challenge)
    }

    /// Checks the server's [`Kind::AuthResponse`] (`Ns || proof_s`) and
    /// returns the client's own proof to send.
    ///
    /// The client proves itself only after the server has: a client talking
    /// to an impostor gives away nothing the impostor could use.
    ///
    /// # Errors
    ///
    /// [`AuthError::UnexpectedKind`], [`AuthError::BadLength`], or
    /// [`AuthError::ServerUnproven`]; after any of them the client must send
    /// nothing more and close.
    pub fn on_response(self, msg: &Message) -> Result<(Message, ClientAwaitResult), AuthError> {
        expect(
            msg,
            Kind::AuthResponse,
            "the server's response body",
            NONCE_LEN + TAG_LEN,
        )?;
        let (ns, proof_s) = msg.body.split_at(NONCE_LEN);
        let ns: [u8; NONCE_LEN] = ns.try_into().expect("split at NONCE_LEN");
        self.secret
            .proof(&[SERVER_PROOF_LABEL, &self.nc, &ns])
            .verify_slice(proof_s)
            .map_err(|_| AuthError::ServerUnproven)?;
        let proof_c = self
            .secret
            .proof(&[CLIENT_PROOF_LABEL, &self.nc, &ns])
            .finalize()
            .into_bytes();
        let keys = SessionKeys::derive(&self.secret, &self.nc, &ns);
        Ok((
            handshake_message(Kind::AuthResponse, proof_c.to_vec()),
            ClientAwaitResult { keys },
        ))
    }
}

/// The client's side of the TCP handshake after it sent its proof.
#[derive(Debug)]
pub struct ClientAwaitResult {
    keys: SessionKeys,
}

impl ClientAwaitResult {
    /// Reads the server's [`Kind::AuthResult`] and, if accepted, hands over
    /// the session keys.
    ///
    /// # Errors
    ///
    /// [`AuthError::Rejected`] if the server refused the proof,
    /// [`AuthError::BadVerdict`] for a verdict byte other than 0 or 1, or
    /// [`AuthError::UnexpectedKind`] / [`AuthError::BadLength`].
    pub fn on_result(self, msg: &Message) -> Result<SessionKeys, AuthError> {
        expect(msg, Kind::AuthResult, "the server's verdict", 1)?;
        match msg.body[0] {
            ACCEPTED => Ok(self.keys),
            REJECTED => Err(AuthError::Rejected),
            verdict => Err(AuthError::BadVerdict { verdict }),
        }
    }
}

/// The server's side of the TCP handshake, before the client's challenge.
#[derive(Debug)]
pub struct ServerHandshake {
    secret: Secret,
    ns: [u8; NONCE_LEN],
}

impl ServerHandshake {
    /// A handshake with the server's nonce `ns`, which must be fresh random
    /// bytes: it is what makes a recorded client proof worthless here.
    pub fn new(secret: &Secret, ns: [u8; NONCE_LEN]) -> Self {
        Self {
            secret: secret.clone(),
            ns,
        }
    }

    /// Reads the client's [`Kind::AuthChallenge`] (`Nc`) and returns the
    /// [`Kind::AuthResponse`] to send: `Ns || proof_s`.
    ///
    /// # Errors
    ///
    /// [`AuthError::UnexpectedKind`] or [`AuthError::BadLength`]; the server
    /// then closes without answering.
    pub fn on_challenge(self, msg: &Message) -> Result<(Message, ServerAwaitProof), AuthError> {
        expect(
            msg,
            Kind::AuthChallenge,
            "the client's challenge body",
            NONCE_LEN,
        )?;
        let nc: [u8; NONCE_LEN] = msg.body[..].try_into().expect("length checked");
        let proof_s = self
            .secret
            .proof(&[SERVER_PROOF_LABEL, &nc, &self.ns])
            .finalize()
            .into_bytes();
        let mut body = Vec::with_capacity(NONCE_LEN + TAG_LEN);
        body.extend_from_slice(&self.ns);
        body.extend_from_slice(&proof_s);
        let state = ServerAwaitProof {
            secret: self.secret,
            nc,
            ns: self.ns,
        };
        Ok((handshake_message(Kind::AuthResponse, body), state))
    }
}

/// The server's side of the TCP handshake after it sent its proof.
#[derive(Debug)]
pub struct ServerAwaitProof {
    secret: Secret,
    nc: [u8; NONCE_LEN],
    ns: [u8; NONCE_LEN],
}

impl ServerAwaitProof {
    /// Reads the client's proof and returns the [`Kind::AuthResult`] to send
    /// whatever happened, with the session keys if the proof holds.
    ///
    /// The verdict goes out even on failure so that the client can tell
    /// "wrong secret" from a network fault; the server then closes.
    ///
    /// # Errors
    ///
    /// In the second element: [`AuthError::ClientUnproven`],
    /// [`AuthError::UnexpectedKind`] or [`AuthError::BadLength`]; the first
    /// element is then a rejection.
    pub fn on_proof(self, msg: &Message) -> (Message, Result<SessionKeys, AuthError>) {
        let verdict =
            expect(msg, Kind::AuthResponse, "the client's proof", TAG_LEN).and_then(|()| {
                self.secret
                    .proof(&[CLIENT_PROOF_LABEL, &self.nc, &self.ns])
                    .verify_slice(&msg.body)
                    .map_err(|_| AuthError::ClientUnproven)
            });
        match verdict {
            Ok(()) => (
                handshake_message(Kind::AuthResult, &[ACCEPTED][..]),
                Ok(SessionKeys::derive(&self.secret, &self.nc, &self.ns)),
            ),
            Err(err) => (
                handshake_message(Kind::AuthResult, &[REJECTED][..]),
                Err(err),
            ),
        }
    }
}
