//! A batched run's figures: datagrams per send and per receive call, and
//! the offloads that carried them, as table cells and JSON keys.

use msg_net::CallCounts;
use serde::Serialize;

use crate::engine::batched::Calls;

/// The batch figures of a UDP cell in the JSON.
#[derive(Debug, Serialize)]
pub(crate) struct Json {
    batch: usize,
    datagrams_per_send_call: Option<f64>,
    /// null against a remote listener.
    datagrams_per_recv_call: Option<f64>,
    /// Some datagrams went to the kernel as GSO runs (`UDP_SEGMENT`).
    gso: bool,
    /// Some arrived coalesced (`UDP_GRO`); null against a remote listener.
    gro: Option<bool>,
}

impl Json {
    pub(crate) fn new(size: usize, calls: &Calls) -> Self {
        let hundredth = |v: f64| (v * 100.0).round() / 100.0;
        Self {
            batch: size,
            datagrams_per_send_call: calls.send.per_call().map(hundredth),
            datagrams_per_recv_call: calls.recv.and_then(|c| c.per_call()).map(hundredth),
            gso: calls.send.segmented > 0,
            gro: calls.recv.map(|c| c.segmented > 0),
        }
    }
}

/// The table's columns for the batch figures, after UDP's own.
pub(crate) const COLUMNS: [&str; 3] = ["dgram/send", "dgram/recv", "offload"];

/// The table cells for `calls` (or dashes where a run has none).
pub(crate) fn cells(calls: Option<&Calls>) -> [String; 3] {
    let per = |counts: Option<CallCounts>| {
        counts
            .and_then(|c| c.per_call())
            .map_or_else(|| "n/a".to_owned(), |v| format!("{v:.1}"))
    };
    match calls {
        Some(calls) => [per(Some(calls.send)), per(calls.recv), offload(calls)],
        None => ["-".to_owned(), "-".to_owned(), "-".to_owned()],
    }
}

/// Which offloads carried the run: GSO on the way out, GRO on the way in
/// (unknown for a remote listener, whose dgram/recv says n/a already).
fn offload(calls: &Calls) -> String {
    let gso = calls.send.segmented > 0;
    let gro = calls.recv.is_some_and(|c| c.segmented > 0);
    match (gso, gro) {
        (true, true) => "GSO+GRO",
        (true, false) => "GSO",
        (false, true) => "GRO",
        (false, false) => "none",
    }
    .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_say_n_a_without_the_listener_counts() {
        let calls = Calls {
            send: CallCounts {
                calls: 10,
                datagrams: 320,
                segmented: 0,
            },
            recv: None,
        };
        assert_eq!(cells(Some(&calls)), ["32.0", "n/a", "none"]);
        assert_eq!(cells(None), ["-", "-", "-"]);
        let json = serde_json::to_value(Json::new(32, &calls)).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"batch": 32, "datagrams_per_send_call": 32.0,
                "datagrams_per_recv_call": null, "gso": false, "gro": null})
        );
    }

    #[test]
    fn the_offload_cell_names_what_carried_the_run() {
        let counts = |calls, datagrams, segmented| CallCounts {
            calls,
            datagrams,
            segmented,
        };
        let both = Calls {
            send: counts(10, 320, 320),
            recv: Some(counts(12, 320, 300)),
        };
        assert_eq!(cells(Some(&both))[2], "GSO+GRO");
        let json = serde_json::to_value(Json::new(32, &both)).unwrap();
        assert_eq!((&json["gso"], &json["gro"]), (&true.into(), &true.into()));
        let send_only = Calls {
            send: counts(10, 320, 320),
            recv: Some(counts(300, 320, 0)),
        };
        assert_eq!(cells(Some(&send_only))[2], "GSO");
        let remote = Calls {
            send: counts(10, 320, 320),
            recv: None,
        };
        assert_eq!(cells(Some(&remote))[2], "GSO");
        let json = serde_json::to_value(Json::new(32, &remote)).unwrap();
        assert!(json["gro"].is_null(), "{json}");
    }
}
