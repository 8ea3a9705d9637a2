//! How each transport's cycle goes ([`Way`]), the engine it runs on, and
//! its client ([`Cycler`]).

use msg_net::Transport;

use super::quic::QuicClient;
use super::stream::Client;
use super::{Cycles, Run};
use crate::error::Error;
use crate::plan::Engine;

/// How a cycle goes over a transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Way {
    /// The kernel's socket, a new one per cycle, with TLS over it or not.
    Socket { tls: bool },
    /// A new QUIC connection from one quinn endpoint.
    Quic,
}

impl Way {
    /// The connect mode's own protocol code, below msg's links, names the
    /// transport it drives: a QUIC connection is not a socket.
    pub(super) fn of(transport: Transport) -> Result<Self, Error> {
        match transport {
            Transport::Quic => Ok(Self::Quic),
            // Its connection and handshake are QUIC's: measured as quic.
            Transport::QuicDgram => Err(Error::NotInConnectMode(transport)),
            other => Ok(Self::Socket {
                tls: other.caps().encrypted,
            }),
        }
    }
}

/// The engines a plan's cycles run on, as the report's meta names them:
/// blocking calls, and over QUIC quinn on a tokio runtime on the client's
/// thread.
pub fn engines(plan: &Cycles) -> Vec<&'static str> {
    let mut engines = vec![Engine::Blocking.name()];
    if plan.transports.iter().any(|&t| engine(t) == Engine::Tokio) {
        engines.push(Engine::Tokio.name());
    }
    engines
}

pub(super) fn engine(transport: Transport) -> Engine {
    match Way::of(transport) {
        Ok(Way::Quic) => Engine::Tokio,
        _ => Engine::Blocking,
    }
}

/// One transport's client.
#[derive(Debug)]
pub(super) enum Cycler {
    Socket(Client),
    Quic(QuicClient),
}

impl Cycler {
    pub(super) fn cycle(&mut self, run: &mut Run) -> Result<(), Error> {
        match self {
            Self::Socket(client) => client.cycle(run),
            Self::Quic(client) => client.cycle(run),
        }
    }

    pub(super) fn listener(&self) -> String {
        match self {
            Self::Socket(client) => client.endpoint.to_string(),
            Self::Quic(client) => client.to_string(),
        }
    }
}
