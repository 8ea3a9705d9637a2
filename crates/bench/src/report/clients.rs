//! The report of a `clients` load: a one-row table and a line on memory,
//! or one JSON object.

use std::io::{self, Write};

use serde::Serialize;

use super::{Table, fmt_count, fmt_us, hundredth, json_us, tenth, us};
use crate::clients::{Load, Measured, Results};
use crate::meta::Meta;
use msg_net::{PeerAddr, Transport};

/// Writes the load's report as a table, with a line on memory, to `out`.
///
/// # Errors
///
/// When `out` cannot be written.
pub fn write_table(out: &mut dyn Write, load: &Load, results: &Results) -> io::Result<()> {
    Report::new(load, results).write_table(out)
}

/// Writes the load's report as one JSON document,
/// `{"meta":{...},"results":[{...}]}`, and a newline, to `out`.
///
/// # Errors
///
/// When `out` cannot be written.
pub fn write_json(
    out: &mut dyn Write,
    meta: &Meta,
    load: &Load,
    results: &Results,
) -> io::Result<()> {
    Report::new(load, results).write_json(out, meta)
}

/// Everything the report says.
#[derive(Debug)]
struct Report<'a> {
    load: &'a Load,
    transport: Transport,
    addr: &'a PeerAddr,
    builtin: bool,
    measured: &'a Measured,
}

/// The JSON object of a `clients` run: exactly these keys.
#[derive(Debug, Serialize)]
struct Record {
    mode: &'static str,
    transport: &'static str,
    /// Present, and true, only with a secret.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    authenticated: bool,
    /// `built-in` or `remote`: whether the memory figures include the
    /// listener.
    listener: &'static str,
    clients: u32,
    size: usize,
    connect_ms: f64,
    connections_per_s: f64,
    samples: u64,
    msgs_per_s: f64,
    p50_us: Option<f64>,
    p90_us: Option<f64>,
    p99_us: Option<f64>,
    max_us: Option<f64>,
    rss_start_kib: Option<u64>,
    rss_open_kib: Option<u64>,
    rss_peak_kib: Option<u64>,
}

impl<'a> Report<'a> {
    fn new(load: &'a Load, results: &'a Results) -> Self {
        Self {
            load,
            transport: results.transport,
            addr: &results.addr,
            builtin: results.builtin,
            measured: &results.measured,
        }
    }

    fn connections_per_s(&self) -> f64 {
        f64::from(self.load.clients) / self.measured.connect.as_secs_f64().max(1e-9)
    }

    fn msgs_per_s(&self) -> f64 {
        self.measured.latency.len() as f64 / self.load.duration.as_secs_f64()
    }

    fn quantile(&self, q: f64) -> Option<f64> {
        let latency = &self.measured.latency;
        (!latency.is_empty()).then(|| us(latency.value_at_quantile(q)))
    }

    fn record(&self) -> Record {
        let measured = self.measured;
        let memory = &measured.memory;
        Record {
            mode: "clients",
            transport: self.transport.name(),
            authenticated: measured.authenticated,
            listener: if self.builtin { "built-in" } else { "remote" },
            clients: self.load.clients,
            size: self.load.size,
            connect_ms: tenth(measured.connect.as_secs_f64() * 1e3),
            connections_per_s: tenth(self.connections_per_s()),
            samples: measured.latency.len(),
            msgs_per_s: tenth(self.msgs_per_s()),
            p50_us: self.quantile(0.5).map(hundredth),
            p90_us: self.quantile(0.9).map(hundredth),
            p99_us: self.quantile(0.99).map(hundredth),
            max_us: (!measured.latency.is_empty()).then(|| json_us(measured.latency.max())),
            rss_start_kib: memory.start_kib,
            rss_open_kib: memory.open_kib,
            rss_peak_kib: memory.peak_kib,
        }
    }

    fn write_json(&self, mut out: &mut dyn Write, meta: &Meta) -> io::Result<()> {
        #[derive(Serialize)]
        struct Document<'a> {
            meta: &'a Meta,
            results: [Record; 1],
        }
        serde_json::to_writer(
            &mut out,
            &Document {
                meta,
                results: [self.record()],
            },
        )?;
        writeln!(out)?;
        out.flush()?;
        Ok(())
    }

    fn write_table(&self, out: &mut dyn Write) -> io::Result<()> {
        let load = self.load;
        let measured = self.measured;
        let whose = if self.builtin {
            format!(
                "{}, built-in listener on {} {} (msg listen's serve loop, one thread, in this process)",
                crate::report::between(&[self.transport]),
                self.transport,
                self.addr
            )
        } else {
            format!("against {}", self.addr)
        };
        writeln!(
            out,
            "msg bench: {} {} {} at once, each a ping-pong with one message in flight; {whose}{}",
            load.clients,
            self.transport.name().to_uppercase(),
            // "1 TCP clients" read wrong (audit, round nine).
            if load.clients == 1 {
                "client"
            } else {
                "clients"
            },
            if measured.authenticated {
                ", authenticated (every message tagged)"
            } else {
                ""
            }
        )?;
        writeln!(
            out,
            "all connect at once, then {} after {} warm-up with every connection open; {} B messages, round-trip times in µs",
            humantime::format_duration(load.duration),
            humantime::format_duration(load.warmup),
            load.size,
        )?;
        writeln!(out)?;
        let cell = |v: Option<f64>| v.map_or("-".to_owned(), fmt_us);
        let table = Table {
            groups: vec![(String::new(), 3), ("all clients".to_owned(), 5)],
            header: [
                "clients",
                "connect ms",
                "conn/s",
                "msg/s",
                "p50",
                "p90",
                "p99",
                "max",
            ]
            .map(str::to_owned)
            .to_vec(),
            rows: vec![vec![
                load.clients.to_string(),
                format!("{:.1}", measured.connect.as_secs_f64() * 1e3),
                fmt_count(self.connections_per_s()),
                fmt_count(self.msgs_per_s()),
                cell(self.quantile(0.5)),
                cell(self.quantile(0.9)),
                cell(self.quantile(0.99)),
                cell((!measured.latency.is_empty()).then(|| us(measured.latency.max()))),
            ]],
        };
        write!(out, "{}", table.render())?;
        writeln!(out)?;
        writeln!(out, "{}", self.memory_line())?;
        out.flush()?;
        Ok(())
    }

    /// What the memory figures are, and what they say per connection.
    fn memory_line(&self) -> String {
        let memory = &self.measured.memory;
        let (Some(start), Some(open), Some(peak)) =
            (memory.start_kib, memory.open_kib, memory.peak_kib)
        else {
            return "memory: not measured (no /proc/self/status here)".to_owned();
        };
        let mib = |kib: u64| kib as f64 / 1024.0;
        let (whose, ends) = if self.builtin {
            (
                "this process, the clients and the built-in listener",
                "both ends",
            )
        } else {
            ("this process, the clients alone", "the client's end")
        };
        format!(
            "memory ({whose}): VmRSS {:.1} MiB before connecting, {:.1} MiB with {} {} open \
             (about {:.1} KiB per connection, {ends}); peak VmHWM {:.1} MiB",
            mib(start),
            mib(open),
            self.load.clients,
            if self.load.clients == 1 {
                "connection"
            } else {
                "connections"
            },
            open.saturating_sub(start) as f64 / f64::from(self.load.clients),
            mib(peak),
        )
    }
}
