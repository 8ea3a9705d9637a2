//! Where each run goes: the built-in listeners of each engine started,
//! or a remote listener's addresses resolved (with several, the first
//! that connects), a target per engine and stream, and the words that
//! name them in the report. Apart from the schedule (`mod.rs`), which
//! only measures the targets it is given.

use msg_net::connect::{self, ConnectError};
use msg_net::{Link, PeerAddr, Transport};

use crate::error::Error;
use crate::plan::{Engine, Plan};
use crate::servers;
use crate::settings::{Batching, Target};

/// The built-in listeners of each engine the plan measures, if any.
#[derive(Debug)]
pub(super) struct Listeners {
    tokio: Option<servers::Servers>,
    blocking: Option<servers::BlockingServers>,
}

impl Listeners {
    pub(super) async fn start(plan: &Plan, streams: &[(Transport, bool)]) -> Result<Self, Error> {
        let builtin = plan.builtin();
        let core = plan.placement.listener_core();
        let udp_batch = if plan.batch.is_some() {
            msg_net::MAX_BATCH
        } else {
            0
        };
        let blocking = if builtin && plan.engines.contains(&Engine::Blocking) {
            Some(
                servers::BlockingServers::start(
                    streams,
                    core,
                    plan.nodelay,
                    plan.busy_poll,
                    plan.auth.as_ref(),
                    udp_batch,
                )
                .await?,
            )
        } else {
            None
        };
        let tokio = if builtin && plan.engines.contains(&Engine::Tokio) {
            Some(servers::Servers::start_batched(
                streams,
                core,
                plan.nodelay,
                plan.busy_poll,
                plan.auth.clone(),
                udp_batch,
            )?)
        } else {
            None
        };
        Ok(Self { tokio, blocking })
    }

    /// How a batched run is sent, and the built-in listeners' counters.
    pub(super) fn batching(&self, plan: &Plan) -> Option<Batching> {
        plan.batch.map(|batch| Batching {
            size: batch.size,
            gso: batch.gso,
            listeners: self
                .tokio
                .as_ref()
                .map(|servers| servers.bound().counters())
                .into_iter()
                .chain(
                    self.blocking
                        .as_ref()
                        .map(|servers| servers.bound().counters()),
                )
                .flatten()
                .collect(),
        })
    }
}

/// Where each engine measures each stream (transport, with the secret or
/// without).
pub(super) async fn targets(
    plan: &Plan,
    streams: &[(Transport, bool)],
    listeners: &Listeners,
) -> Result<Vec<(Engine, Target)>, Error> {
    // A remote listener's addresses, as each transport reads ADDR (a host
    // name's in the resolver's order, a path as it is).
    let mut remote: Vec<(Transport, Vec<PeerAddr>)> = Vec::new();
    if let Some(addr) = &plan.remote {
        for &transport in &plan.transports {
            remote.push((transport, transport.connect_addrs(addr).await?));
        }
    }
    let mut targets = Vec::with_capacity(streams.len() * plan.engines.len());
    for (&engine, &(transport, authenticated)) in plan
        .engines
        .iter()
        .flat_map(|engine| streams.iter().map(move |stream| (engine, stream)))
    {
        let target = |addr, drops| Target {
            transport,
            addr,
            nodelay: plan.nodelay,
            auth: plan.auth.clone().filter(|_| authenticated),
            drops,
        };
        let remote = remote.iter().find(|(t, _)| *t == transport);
        let (addr, drops) = match (&listeners.tokio, &plan.remote, remote) {
            _ if engine == Engine::Blocking && plan.builtin() => {
                let blocking = listeners
                    .blocking
                    .as_ref()
                    .expect("started for the blocking engine")
                    .bound();
                (
                    blocking.addr(transport, authenticated),
                    blocking.kernel_drops(transport, authenticated),
                )
            }
            (Some(listeners), _, _) => (
                listeners.bound().addr(transport, authenticated),
                listeners.bound().kernel_drops(transport, authenticated),
            ),
            (None, _, Some((_, addrs))) if addrs.len() == 1 => (addrs[0].clone(), None),
            // A name with several addresses: measure the first that
            // connects, as msg send would use.
            (None, Some(name), Some((_, addrs))) => {
                let first = target(addrs[0].clone(), None);
                (connect_first(name, addrs, transport, &first).await?, None)
            }
            _ => unreachable!("either built-in listeners or a remote one"),
        };
        targets.push((engine, target(addr, drops)));
    }
    Ok(targets)
}

/// The first of `addrs` (never empty) that `target`'s transport connects
/// to, in the resolver's order (msg-net's `connect_first`); with one
/// address, its error as it is.
pub(crate) async fn connect_first(
    name: &str,
    addrs: &[PeerAddr],
    transport: Transport,
    target: &Target,
) -> Result<PeerAddr, Error> {
    let options = target.connect_options();
    match connect::connect_first(name, addrs, |addr| Link::connect(transport, addr, &options)).await
    {
        Ok((_, reached)) => Ok(reached),
        Err(ConnectError::All {
            name,
            count,
            failures,
        }) => Err(Error::Connect {
            name,
            count,
            failures,
        }),
        Err(ConnectError::One(err) | ConnectError::Resolve(err)) => Err(err.into()),
        // A reason of a later msg-net, said as it says it.
        Err(other) => Err(Error::Connect {
            name: name.to_owned(),
            count: addrs.len(),
            failures: other.to_string(),
        }),
    }
}

pub(super) fn describe(targets: &[(Engine, Target)]) -> String {
    let both = targets.iter().any(|(engine, _)| *engine != targets[0].0);
    let addrs: Vec<String> = targets
        .iter()
        .map(|(engine, t)| match both {
            true => format!("{} {} {}", t.label(), engine.name(), t.addr),
            false => format!("{} {}", t.label(), t.addr),
        })
        .collect();
    addrs.join(", ")
}
