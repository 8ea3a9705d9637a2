//! What a plan measures where its caller names nothing: the transports,
//! the sizes and where the two sides run. The rules are the measurement's
//! (a reversed stream comes back over a connection only; pinning one core
//! means something only when both sides are this process's), so they live
//! here, not in whatever turns a command line into a [`Plan`](crate::Plan).

use crate::{DEFAULT_SIZES, Direction, Pin, Transport};

/// The transports to measure: those `named`, each once, in their order;
/// with none named, the default pair, UDP and TCP, of which a stream
/// turned around (`direction` reverse or both ways) keeps those with
/// connections, as iperf3 does: only a connection carries a listener's
/// stream back.
#[must_use]
pub fn transports(named: &[Transport], direction: Direction) -> Vec<Transport> {
    if named.is_empty() {
        let turned = direction != Direction::Forward;
        return Transport::INET
            .into_iter()
            .filter(|transport| !turned || transport.caps().connections)
            .collect();
    }
    named.iter().fold(Vec::new(), |mut once, &transport| {
        if !once.contains(&transport) {
            once.push(transport);
        }
        once
    })
}

/// The payload sizes to measure: those `named` ([`DEFAULT_SIZES`] when
/// none are), a size repeated next to itself measured once.
#[must_use]
pub fn sizes(named: Option<&[usize]>) -> Vec<usize> {
    let mut sizes = named.unwrap_or(&DEFAULT_SIZES).to_vec();
    sizes.dedup();
    sizes
}

/// Where the client and the listeners run when nobody says: on one core
/// against the built-in listeners, which are this process's threads;
/// unpinned against a `remote` listener, whose process is not this one to
/// place.
#[must_use]
pub fn pin(remote: bool) -> Pin {
    if remote { Pin::Off } else { Pin::Same }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn named_transports_are_measured_once_each_in_their_order() {
        let named = [Transport::Tcp, Transport::Udp, Transport::Tcp];
        assert_eq!(
            transports(&named, Direction::Forward),
            [Transport::Tcp, Transport::Udp]
        );
    }

    #[test]
    fn the_default_pair_turned_around_keeps_the_one_with_connections() {
        assert_eq!(transports(&[], Direction::Forward), Transport::INET);
        for direction in [Direction::Reverse, Direction::Bidir] {
            assert_eq!(transports(&[], direction), [Transport::Tcp]);
        }
        // Named, UDP stays, for the plan's check to refuse in its words.
        assert_eq!(
            transports(&[Transport::Udp], Direction::Reverse),
            [Transport::Udp]
        );
    }

    #[test]
    fn sizes_default_and_repeats_side_by_side_go() {
        assert_eq!(sizes(None), DEFAULT_SIZES);
        assert_eq!(sizes(Some(&[64, 64, 1024, 64])), [64, 1024, 64]);
        assert_eq!(pin(false), Pin::Same);
        assert_eq!(pin(true), Pin::Off);
    }
}
