//! The connect mode in process over TLS and QUIC, against its built-in
//! listeners on loopback: which times each transport has, and its JSON.
//! Not how fast anything is.

use hdrhistogram::Histogram;
use serde_json::Value;

use super::*;

/// A short plan: the contract, not the speed.
fn plan(transports: &[Transport]) -> Cycles {
    Cycles {
        transports: transports.to_vec(),
        warmup: Duration::from_millis(10),
        duration: Duration::from_millis(100),
        runs: 2,
        ..Cycles::default()
    }
}

/// The median of `histogram`, or `None` when nothing was recorded.
fn p50(histogram: &Histogram<u64>) -> Option<u64> {
    (!histogram.is_empty()).then(|| histogram.value_at_quantile(0.5))
}

#[test]
fn tls_and_quic_cycles_have_a_handshake_and_quic_no_connect() {
    let transports = [Transport::Tcp, Transport::Tls, Transport::Quic];
    let results = run(&plan(&transports), &mut ()).unwrap();
    let measured: Vec<Transport> = results.cells.iter().map(|c| c.transport).collect();
    assert_eq!(measured, transports);
    for cell in &results.cells {
        assert_eq!(cell.runs.len(), 2, "{:?}", cell.transport);
        for run in &cell.runs {
            let what = cell.transport;
            assert!(run.cycles > 0, "{what}: no cycle");
            assert_eq!(run.lost, 0, "{what}");
            // Every cycle's times were recorded, or none.
            for recorded in [&run.handshake, &run.connect, &run.exchange, &run.cycle] {
                let len = recorded.len();
                assert!(
                    len == 0 || len == run.cycles,
                    "{what}: {len} of {}",
                    run.cycles
                );
            }
            let (connect, handshake) = (p50(&run.connect), p50(&run.handshake));
            match what {
                Transport::Tcp => assert!(connect.is_some() && handshake.is_none()),
                Transport::Tls => assert!(connect.is_some() && handshake.is_some()),
                // No connect(): QUIC's handshake is its first packet on.
                _ => assert!(connect.is_none() && handshake.is_some()),
            }
            // The cycle holds its parts: the sum of their medians is no
            // time of its own, but no part's median outlasts the cycle's.
            let cycle = p50(&run.cycle).unwrap();
            for part in [connect, handshake, p50(&run.exchange)]
                .into_iter()
                .flatten()
            {
                assert!(part <= cycle, "{what}: {part} ns of a {cycle} ns cycle");
            }
        }
    }

    let mut json = Vec::new();
    crate::report::connect::write_json(&mut json, None, &plan(&transports), &results).unwrap();
    let doc: Value = serde_json::from_slice(&json).unwrap();
    for result in doc["results"].as_array().unwrap() {
        let transport = result["transport"].as_str().unwrap();
        let has = |key: &str| result.get(key).is_some();
        // TCP's keys unchanged; the handshake's only where there is one.
        assert_eq!(has("handshake_p50_us"), transport != "tcp", "{result}");
        assert_eq!(has("handshake_p99_us"), transport != "tcp", "{result}");
        assert_eq!(result["connect_p50_us"].is_null(), transport == "quic");
        assert!(
            result["exchange_p50_us"].as_f64().unwrap() > 0.0,
            "{result}"
        );
        // TLS's connection is TCP's: its close is said.
        let close = matches!(transport, "tcp" | "tls");
        assert_eq!(result["close"].is_string(), close, "{result}");
    }

    let mut table = Vec::new();
    crate::report::connect::write_table(&mut table, &plan(&transports), &results).unwrap();
    let table = String::from_utf8(table).unwrap();
    assert!(table.contains("handshake p50"), "{table}");
    assert!(table.contains("no session resumed"), "{table}");
}

#[test]
fn quic_datagrams_are_refused_naming_quic() {
    let err = run(&plan(&[Transport::QuicDgram]), &mut ()).unwrap_err();
    assert!(matches!(err, Error::NotInConnectMode(Transport::QuicDgram)));
    assert!(err.to_string().contains("quic's"), "{err}");
}

#[test]
fn the_table_has_no_handshake_columns_without_tls_or_quic() {
    let plan = plan(&[Transport::Udp]);
    let results = run(&plan, &mut ()).unwrap();
    let mut table = Vec::new();
    crate::report::connect::write_table(&mut table, &plan, &results).unwrap();
    let table = String::from_utf8(table).unwrap();
    assert!(!table.contains("handshake p50"), "{table}");
    assert_eq!(engines(&plan), ["blocking"]);
}
