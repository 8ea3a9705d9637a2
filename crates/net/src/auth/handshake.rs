//! The TCP handshake without I/O, as both engines hold it: [`Handshake`]
//! steps msg-proto's state machines on what each read got and says what
//! to write next ([`Step`]), or what to tell the peer on the way out
//! ([`Failed`]). Apart from the tokio driver in `mod.rs` because the
//! blocking engine drives the same steps over std sockets
//! (`blocking/auth.rs`); neither driver decides anything the handshake
//! does.

use msg_proto::auth::{
    AuthError, ClientAwaitResult, ClientHandshake, NONCE_LEN, Secret, ServerAwaitProof,
    ServerHandshake, SessionKeys,
};
use msg_proto::{Kind, Message};

use super::{AuthFailure, NEEDS_SECRET, printable, random};
use crate::Error;
use crate::text::error_message;

/// What a handshake driver does next, after [`Handshake`]'s step.
#[derive(Debug)]
pub(crate) struct Step {
    /// Write this message first, if any.
    pub(crate) send: Option<Message>,
    /// Then read the next message for [`Handshake::on_read`], or install
    /// these keys and resume the connection's own frame limit.
    pub(crate) then: Then,
}

/// What follows a [`Step`]'s message.
#[derive(Debug)]
pub(crate) enum Then {
    /// Read the next message.
    Read,
    /// The handshake succeeded.
    Done(SessionKeys),
}

/// A failed handshake: what to tell the peer first (best effort: the
/// failure is what gets logged, whether or not the peer hears of it), and
/// the failure.
#[derive(Debug)]
pub(crate) struct Failed {
    pub(crate) tell: Option<Message>,
    pub(crate) error: Error,
}

// Boxed where returned: a failure is rare, and a large `Err` would make
// every step's result as large.
impl From<Error> for Box<Failed> {
    fn from(error: Error) -> Self {
        Self::new(Failed { tell: None, error })
    }
}

impl From<AuthFailure> for Box<Failed> {
    fn from(failure: AuthFailure) -> Self {
        Error::Auth(failure).into()
    }
}

/// Either side of the TCP handshake as both engines hold it, without I/O:
/// msg-proto's state machines, plus what a listener tells a peer that is
/// not running the handshake and how a read's outcome (the end of the
/// stream, an oversized frame, an `Error` from the peer) ends it. The
/// tokio driver ([`client`](super::client), [`server`](super::server))
/// and the blocking one only move its messages, apply
/// [`MAX_HANDSHAKE_FRAME`](msg_proto::auth::MAX_HANDSHAKE_FRAME)
/// meanwhile, and keep the deadline.
#[derive(Debug)]
pub(crate) struct Handshake {
    state: State,
}

#[derive(Debug)]
enum State {
    ClientAwaitsResponse(ClientHandshake),
    ClientAwaitsResult(ClientAwaitResult),
    ServerAwaitsChallenge(ServerHandshake),
    ServerAwaitsProof(ServerAwaitProof),
    Over,
}

impl Handshake {
    /// The client's side, with a fresh nonce: its first step sends the
    /// challenge.
    pub(crate) fn client(secret: &Secret) -> (Self, Step) {
        let (handshake, challenge) = ClientHandshake::start(secret, random::<NONCE_LEN>());
        let state = State::ClientAwaitsResponse(handshake);
        (Self { state }, send_then_read(challenge))
    }

    /// The server's side, with a fresh nonce: its first step reads.
    pub(crate) fn server(secret: &Secret) -> (Self, Step) {
        let state = State::ServerAwaitsChallenge(ServerHandshake::new(secret, random()));
        let step = Step {
            send: None,
            then: Then::Read,
        };
        (Self { state }, step)
    }

    /// The next step, given what the last read got: a message, the end of
    /// the stream (`Ok(None)`), or the read's error.
    ///
    /// # Errors
    ///
    /// [`Failed`], after which the handshake is over.
    pub(crate) fn on_read(
        &mut self,
        read: Result<Option<Message>, msg_tcp::Error>,
    ) -> Result<Step, Box<Failed>> {
        let state = std::mem::replace(&mut self.state, State::Over);
        if let State::ServerAwaitsChallenge(handshake) = state {
            return self.on_challenge(read, handshake);
        }
        let msg = handshake_message(read)?;
        match state {
            State::ClientAwaitsResponse(handshake) => {
                let (proof, awaiting) = handshake.on_response(&msg).map_err(AuthFailure::from)?;
                self.state = State::ClientAwaitsResult(awaiting);
                Ok(send_then_read(proof))
            }
            State::ClientAwaitsResult(awaiting) => {
                let keys = awaiting.on_result(&msg).map_err(AuthFailure::from)?;
                Ok(Step {
                    send: None,
                    then: Then::Done(keys),
                })
            }
            State::ServerAwaitsProof(awaiting) => {
                let (verdict, keys) = awaiting.on_proof(&msg);
                match keys {
                    Ok(keys) => Ok(Step {
                        send: Some(verdict),
                        then: Then::Done(keys),
                    }),
                    Err(err) => Err(Box::new(Failed {
                        tell: Some(verdict),
                        error: Error::Auth(err.into()),
                    })),
                }
            }
            // Drivers stop at the first `Done` or failure.
            State::ServerAwaitsChallenge(_) | State::Over => {
                unreachable!("a handshake is not stepped once it is over")
            }
        }
    }

    /// The server's first read: a peer that starts with anything but the
    /// challenge is told that a secret is needed.
    fn on_challenge(
        &mut self,
        read: Result<Option<Message>, msg_tcp::Error>,
        handshake: ServerHandshake,
    ) -> Result<Step, Box<Failed>> {
        let needs_secret = |error| {
            Box::new(Failed {
                tell: Some(error_message(NEEDS_SECRET)),
                error,
            })
        };
        let challenge = match handshake_message(read) {
            Ok(challenge) => challenge,
            // Larger than any handshake message: a client that sends
            // without a secret. Tell it, as for a small message.
            Err(failed) if refused_frame(&failed.error).is_some() => {
                return Err(needs_secret(failed.error));
            }
            Err(failed) => return Err(failed),
        };
        if challenge.kind != Kind::AuthChallenge {
            // Say why once, so the client can tell its user; nothing it
            // sent is looked at.
            return Err(needs_secret(Error::Auth(AuthFailure::Protocol(
                AuthError::UnexpectedKind {
                    expected: Kind::AuthChallenge,
                    found: challenge.kind,
                },
            ))));
        }
        let (response, awaiting) = handshake
            .on_challenge(&challenge)
            .map_err(AuthFailure::from)?;
        self.state = State::ServerAwaitsProof(awaiting);
        Ok(send_then_read(response))
    }
}

fn send_then_read(msg: Message) -> Step {
    Step {
        send: Some(msg),
        then: Then::Read,
    }
}

/// A read's outcome as a handshake message: an end of the stream, a frame
/// over the handshake's limit or an `Error` from the peer ends the
/// handshake.
fn handshake_message(
    read: Result<Option<Message>, msg_tcp::Error>,
) -> Result<Message, Box<Failed>> {
    let msg = match read {
        Ok(Some(msg)) => msg,
        Ok(None) => return Err(AuthFailure::Closed.into()),
        Err(msg_tcp::Error::FrameTooLarge { len, max }) => {
            return Err(AuthFailure::FrameTooLarge { len, max }.into());
        }
        Err(err) => return Err(Error::from(err).into()),
    };
    if msg.kind == Kind::Error {
        return Err(AuthFailure::Peer(printable(&msg.body)).into());
    }
    Ok(msg)
}

/// How many bytes of a refused frame to let arrive before closing, after
/// a handshake failed with `failure` (see
/// [`drain_refused`](super::drain_refused)).
pub(crate) fn refused_frame(failure: &Error) -> Option<usize> {
    match failure {
        Error::Auth(AuthFailure::FrameTooLarge { len, .. }) => Some(*len),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use msg_proto::auth::{MAX_HANDSHAKE_FRAME, Role};

    fn secret(bytes: &[u8]) -> Secret {
        Secret::new(bytes.to_vec()).unwrap()
    }

    /// Hands `step`'s message to `peer`, as a driver would after writing
    /// and reading it.
    fn deliver(step: &Step, peer: &mut Handshake) -> Result<Step, Box<Failed>> {
        peer.on_read(Ok(Some(step.send.clone().expect("a message to send"))))
    }

    #[test]
    fn both_sides_agree_without_io() {
        let (mut client, first) = Handshake::client(&secret(b"s"));
        let (mut server, wait) = Handshake::server(&secret(b"s"));
        assert!(wait.send.is_none() && matches!(wait.then, Then::Read));
        let response = deliver(&first, &mut server).unwrap();
        let proof = deliver(&response, &mut client).unwrap();
        let verdict = deliver(&proof, &mut server).unwrap();
        let Then::Done(server_keys) = &verdict.then else {
            panic!("the server is done once it sends the verdict")
        };
        let done = deliver(&verdict, &mut client).unwrap();
        let Then::Done(client_keys) = &done.then else {
            panic!("the client is done on the verdict")
        };
        assert!(done.send.is_none());
        let mut frame = bytes::BytesMut::new();
        let msg = Message::new(Kind::Data, 1, "tagged");
        client_keys
            .sealer(Role::Client)
            .seal(&msg, &mut frame)
            .unwrap();
        let opened = server_keys.opener(Role::Server).open(frame.freeze());
        assert_eq!(opened.unwrap(), msg);
    }

    #[test]
    fn a_server_tells_a_peer_without_a_secret_and_a_client_checks_the_server_first() {
        for read in [
            Ok(Some(Message::new(Kind::Data, 1, "hi"))),
            Err(msg_tcp::Error::FrameTooLarge {
                len: 1 << 20,
                max: MAX_HANDSHAKE_FRAME,
            }),
        ] {
            let (mut server, _) = Handshake::server(&secret(b"s"));
            let failed = server.on_read(read).unwrap_err();
            assert_eq!(failed.tell.unwrap().body, NEEDS_SECRET.as_bytes());
            assert!(matches!(failed.error, Error::Auth(_)), "{}", failed.error);
        }
        let (mut client, first) = Handshake::client(&secret(b"one"));
        let (mut server, _) = Handshake::server(&secret(b"two"));
        let response = deliver(&first, &mut server).unwrap();
        let failed = deliver(&response, &mut client).unwrap_err();
        assert!(failed.tell.is_none(), "the client says nothing more");
        assert!(matches!(
            failed.error,
            Error::Auth(AuthFailure::Protocol(AuthError::ServerUnproven))
        ));
    }

    #[test]
    fn reads_that_end_a_handshake() {
        let (mut client, _) = Handshake::client(&secret(b"s"));
        let failed = client.on_read(Ok(None)).unwrap_err();
        assert!(matches!(failed.error, Error::Auth(AuthFailure::Closed)));
        let (mut client, _) = Handshake::client(&secret(b"s"));
        let failed = client
            .on_read(Ok(Some(error_message("go away"))))
            .unwrap_err();
        assert!(
            matches!(&failed.error, Error::Auth(AuthFailure::Peer(text)) if text == "go away"),
            "{}",
            failed.error
        );
        assert_eq!(refused_frame(&failed.error), None);
        let too_large = Error::Auth(AuthFailure::FrameTooLarge { len: 7, max: 1 });
        assert_eq!(refused_frame(&too_large), Some(7));
    }
}
