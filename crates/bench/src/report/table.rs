//! The comparison table: a row per size (and secret, engine,
//! impairment), a column group per transport, and the ratios.

use std::io::{self, Write};

use super::text::Table;
use super::{Report, Summary, batch, fmt_count, fmt_us, per_packet_loss, percent, summarise, us};
use crate::engine::Outcome;
use crate::plan::{Direction, Engine, Mode};
use msg_net::Transport;

impl Report<'_> {
    pub(super) fn write_table(&self, out: &mut dyn Write) -> io::Result<()> {
        for line in self.title() {
            writeln!(out, "{line}")?;
        }
        writeln!(out)?;
        write!(out, "{}", self.table().render())?;
        for cell in self.measured {
            if let Err(oversize) = &cell.runs {
                if cell.impairment.is_some_and(|i| i > 0) {
                    // Said once, under the first impairment's rows.
                    continue;
                }
                let message = &oversize.message;
                let auth = if cell.authenticated { "+auth" } else { "" };
                let engine = match self.engines().len() {
                    2 => format!(" ({})", cell.engine.name()),
                    _ => String::new(),
                };
                writeln!(
                    out,
                    "{}{auth}{engine} {} B: {message}",
                    cell.transport, cell.size
                )?;
            }
        }
        if !self.impairments.is_empty() {
            writeln!(out)?;
            for line in self.impairment_notes() {
                writeln!(out, "{line}")?;
            }
        }
        if let Some((note, cpu)) = self.cpu_table() {
            writeln!(out)?;
            writeln!(out, "{note}")?;
            write!(out, "{}", cpu.render())?;
        }
        out.flush()?;
        Ok(())
    }

    fn table(&self) -> Table {
        let transports = self.transports();
        let variants = self.variants();
        // With both, each authenticated row also shows what the secret
        // costs: auth/plain of the p50 (or msg/s), per transport.
        let cost = variants.len() == 2;
        // With both engines, each tokio row shows what the runtime adds.
        let engines = self.engines();
        let runtime_cost = engines.len() == 2 && self.mode == Mode::Pingpong;
        let columns: &[&str] = match self.mode {
            Mode::Pingpong => &["p50", "p50 range", "p90", "p99", "p99.9", "max", "msg/s"],
            Mode::Throughput => &[
                "msg/s", "range", "MB/s", "Gbit/s", "sent", "received", "lost %",
            ],
        };
        let extra: &[&str] = match (self.mode, self.batch) {
            (Mode::Pingpong, _) => &["lost"],
            (Mode::Throughput, None) => &["reordered", "drops"],
            (Mode::Throughput, Some(_)) => {
                let [send, recv, offload] = batch::COLUMNS;
                &["reordered", "drops", send, recv, offload]
            }
        };
        let impaired = !self.impairments.is_empty();
        let mut table = Table::default();
        let mut groups = vec![(String::new(), if impaired { 2 } else { 1 })];
        let mut header = vec!["size".to_owned()];
        if impaired {
            header.insert(0, "impairment".to_owned());
        }
        // A transport that can lose messages gets the loss columns.
        let width_of = |transport: Transport| {
            columns.len()
                + if transport.caps().reliable {
                    0
                } else {
                    extra.len()
                }
        };
        for &transport in &transports {
            let impaired_columns = self.impaired_columns(transport);
            groups.push((
                transport.name().to_uppercase(),
                width_of(transport) + impaired_columns.len(),
            ));
            header.extend(columns.iter().map(|c| (*c).to_owned()));
            if !transport.caps().reliable {
                header.extend(extra.iter().map(|c| (*c).to_owned()));
            }
            header.extend(impaired_columns.iter().map(|c| (*c).to_owned()));
        }
        // Each other transport against the base (UDP when measured), one
        // column each: tcp/udp, unix/udp.
        let base = Self::base(&transports);
        let others: Vec<Transport> = transports
            .iter()
            .copied()
            .filter(|&t| Some(t) != base)
            .collect();
        let ratios = match base {
            Some(base) => others.iter().map(|&other| (base, other)).collect(),
            None => Vec::new(),
        };
        let figure = match self.mode {
            Mode::Pingpong => "p50",
            Mode::Throughput => "msg/s",
        };
        if !ratios.is_empty() {
            groups.push((String::new(), ratios.len()));
            header.extend(
                ratios
                    .iter()
                    .map(|(base, other)| format!("{other}/{base} {figure}")),
            );
        }
        if cost {
            groups.push((format!("auth/plain {figure}"), transports.len()));
            header.extend(transports.iter().map(|t| t.name().to_owned()));
        }
        if runtime_cost {
            groups.push(("tokio-blocking p50 µs".to_owned(), transports.len()));
            header.extend(transports.iter().map(|t| t.name().to_owned()));
        }
        table.groups = groups;
        table.header = header;

        let mut sizes: Vec<usize> = self.measured.iter().map(|c| c.size).collect();
        sizes.sort_unstable();
        sizes.dedup();
        // Sizes in the order they were measured.
        sizes.sort_by_key(|&size| self.measured.iter().position(|c| c.size == size));
        let phases: Vec<Option<usize>> = if impaired {
            (0..self.impairments.len()).map(Some).collect()
        } else {
            vec![None]
        };
        let mut rows = Vec::new();
        for &phase in &phases {
            for &size in &sizes {
                for &auth in &variants {
                    rows.extend(engines.iter().map(|&engine| (phase, size, auth, engine)));
                }
            }
        }
        for (phase, size, authenticated, engine) in rows {
            let mut label = if authenticated && cost {
                format!("{size} auth")
            } else {
                size.to_string()
            };
            if engines.len() == 2 {
                label = format!("{label} {}", engine.name());
            }
            let mut row = vec![label];
            if let Some(i) = phase {
                row.insert(0, self.impairments[i].to_string());
            }
            let mut measured_runs = Vec::new();
            // Each transport's median run and width, for the flows' rows.
            let mut medians = Vec::new();
            for &transport in &transports {
                let Some(cell) = self.measured.iter().find(|c| {
                    c.impairment == phase
                        && c.size == size
                        && c.transport == transport
                        && c.authenticated == authenticated
                        && c.engine == engine
                }) else {
                    continue;
                };
                let width = width_of(transport);
                let impaired_width = self.impaired_columns(transport).len();
                match &cell.runs {
                    Err(oversize) => {
                        row.push(format!("exceeds {}", oversize.limit));
                        row.extend((1..width + impaired_width).map(|_| "-".to_owned()));
                        medians.push((transport, None, width + impaired_width));
                    }
                    Ok(runs) => {
                        let summary = summarise(self.mode, runs);
                        let median = summary.as_ref().map(|s| s.median);
                        medians.push((transport, median, width + impaired_width));
                        row.extend(self.cells(transport, size, summary.as_ref(), width));
                        row.extend(self.impaired_cells(transport, summary.as_ref()));
                        measured_runs.push((transport, runs));
                    }
                }
            }
            let runs_of = |transport: Transport| {
                measured_runs
                    .iter()
                    .find(|(t, _)| *t == transport)
                    .map(|(_, runs)| *runs)
            };
            for &(base, other) in &ratios {
                row.push(match (runs_of(base), runs_of(other)) {
                    (Some(base), Some(other)) => self
                        .ratio(base, other)
                        .map_or("-".to_owned(), |r| format!("{r:.2}")),
                    _ => "-".to_owned(),
                });
            }
            if cost {
                for &transport in &transports {
                    let plain = self.runs(phase, size, transport, false, engine);
                    let tagged = self.runs(phase, size, transport, true, engine);
                    row.push(match (authenticated, plain, tagged) {
                        (true, Some(plain), Some(tagged)) => self
                            .ratio(plain, tagged)
                            .map_or("-".to_owned(), |r| format!("{r:.2}")),
                        _ => "-".to_owned(),
                    });
                }
            }
            if runtime_cost {
                for &transport in &transports {
                    let blocking =
                        self.runs(phase, size, transport, authenticated, Engine::Blocking);
                    let tokio = self.runs(phase, size, transport, authenticated, Engine::Tokio);
                    row.push(match (engine, blocking, tokio) {
                        (Engine::Tokio, Some(blocking), Some(tokio)) => self
                            .runtime_cost(blocking, tokio)
                            .map_or("-".to_owned(), |d| format!("{d:+.1}")),
                        _ => "-".to_owned(),
                    });
                }
            }
            let columns = row.len();
            table.rows.push(row);
            let flows = self.flow_rows(size, &medians);
            table.rows.extend(flows.into_iter().map(|mut flow| {
                flow.resize(columns, "-".to_owned());
                flow
            }));
        }
        table
    }

    /// Parallel flows: under a size's row (their sum), a row per flow,
    /// `SIZE #N` (`SIZE #N fwd` and `rev` with `--bidir`), from each
    /// transport's median run.
    fn flow_rows(
        &self,
        size: usize,
        medians: &[(Transport, Option<&Outcome>, usize)],
    ) -> Vec<Vec<String>> {
        let count = medians
            .iter()
            .filter_map(|(_, run, _)| run.map(|r| r.flows.len()))
            .max()
            .unwrap_or(0);
        (0..count)
            .map(|i| {
                // Both ways at once: which way each flow went.
                let way = match (self.direction, i % 2) {
                    (Direction::Bidir, 0) => " fwd",
                    (Direction::Bidir, _) => " rev",
                    _ => "",
                };
                let mut row = vec![format!("{size} #{}{way}", i + 1)];
                for &(transport, run, width) in medians {
                    match run.and_then(|r| r.flows.get(i)) {
                        Some(flow) => {
                            let rate = flow.msgs_per_s();
                            let summary = Summary {
                                median: flow,
                                min: rate,
                                max: rate,
                            };
                            let mut cells = self.cells(transport, size, Some(&summary), width);
                            // One run's flow: no range across runs.
                            cells[1] = "-".to_owned();
                            cells.resize(width, "-".to_owned());
                            row.extend(cells);
                        }
                        None => row.extend((0..width).map(|_| "-".to_owned())),
                    }
                }
                row
            })
            .collect()
    }

    fn cells(
        &self,
        transport: Transport,
        size: usize,
        summary: Option<&Summary<'_>>,
        width: usize,
    ) -> Vec<String> {
        let Some(summary) = summary else {
            return vec!["-".to_owned(); width];
        };
        let batch_cells = self.batch.is_some() && self.mode == Mode::Throughput;
        let run = summary.median;
        let mut cells = match self.mode {
            Mode::Pingpong if run.latency.is_empty() => {
                // The figures only: UDP's lost column is added below.
                let mut cells =
                    vec!["-".to_owned(); width - usize::from(!transport.caps().reliable)];
                cells[0] = "all lost".to_owned();
                cells
            }
            Mode::Pingpong => vec![
                fmt_us(us(run.latency.value_at_quantile(0.5))),
                format!("{}-{}", fmt_us(summary.min), fmt_us(summary.max)),
                fmt_us(us(run.latency.value_at_quantile(0.9))),
                fmt_us(us(run.latency.value_at_quantile(0.99))),
                fmt_us(us(run.latency.value_at_quantile(0.999))),
                fmt_us(us(run.latency.max())),
                fmt_count(run.msgs_per_s()),
            ],
            Mode::Throughput => {
                let bytes = run.msgs_per_s() * size as f64;
                vec![
                    fmt_count(run.msgs_per_s()),
                    format!("{}-{}", fmt_count(summary.min), fmt_count(summary.max)),
                    format!("{:.1}", bytes / 1e6),
                    format!("{:.2}", bytes * 8.0 / 1e9),
                    run.sent.to_string(),
                    run.received.to_string(),
                    format!("{:.1}", percent(run.lost(), run.sent)),
                ]
            }
        };
        if !transport.caps().reliable {
            match self.mode {
                Mode::Pingpong => cells.push(run.lost().to_string()),
                Mode::Throughput => {
                    cells.push(run.reordered.to_string());
                    // The receiving socket's, read where it is in this
                    // process.
                    cells.push(match (run.drops, self.builtin) {
                        (Some(drops), _) => drops.to_string(),
                        (None, true) => "-".to_owned(),
                        (None, false) => "n/a".to_owned(),
                    });
                }
            }
            if batch_cells {
                cells.extend(batch::cells(run.calls.as_ref()));
            }
        }
        cells
    }

    /// The cells of [`Report::impaired_columns`], from the median run.
    fn impaired_cells(&self, transport: Transport, summary: Option<&Summary<'_>>) -> Vec<String> {
        let columns = self.impaired_columns(transport);
        let Some(run) = summary.map(|s| s.median) else {
            return vec!["-".to_owned(); columns.len()];
        };
        let kernel = run.kernel.unwrap_or_default();
        if columns.is_empty() {
            return Vec::new();
        }
        if !transport.caps().reliable {
            let first = match self.mode {
                Mode::Pingpong => format!("{:.1}", percent(run.lost(), run.sent)),
                Mode::Throughput => kernel.udp_overflow.to_string(),
            };
            let per_packet = per_packet_loss(self.mode, run)
                .map_or("-".to_owned(), |p| format!("{:.1}", p * 100.0));
            return vec![first, per_packet];
        }
        match kernel.tcp {
            Some(tcp) => vec![
                tcp.retrans.to_string(),
                fmt_us(tcp.rtt.as_secs_f64() * 1e6),
                format!("{:.0}", tcp.rto.as_secs_f64() * 1e3),
            ],
            None => vec!["-".to_owned(); columns.len()],
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::engine::Outcome;
    use crate::plan::Plan;
    use crate::run::{Measured, Results};

    /// A cell of one run whose round trips all take `us` µs.
    fn cell(transport: Transport, us: u64) -> Measured {
        let mut outcome = Outcome::new();
        for _ in 0..10 {
            outcome.record(us * 1000);
        }
        outcome.elapsed = Duration::from_millis(1);
        Measured {
            transport,
            engine: Engine::Blocking,
            authenticated: false,
            size: 64,
            runs: Ok(vec![outcome]),
            impairment: None,
        }
    }

    /// The table's lines, for `transports` in the plan's order.
    fn table(transports: &[Transport], measured: Vec<Measured>) -> Vec<String> {
        let plan = Plan {
            transports: transports.to_vec(),
            runs: 1,
            ..Plan::default()
        };
        let results = Results {
            measured,
            listeners: "on loopback".to_owned(),
        };
        let mut out = Vec::new();
        super::super::write_table(&mut out, &plan, &results).unwrap();
        String::from_utf8(out)
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// The last `n` cells of the row that starts with `label`.
    fn last_cells(lines: &[String], label: &str, n: usize) -> Vec<String> {
        let row = lines
            .iter()
            .find(|l| l.split_whitespace().next() == Some(label))
            .unwrap_or_else(|| panic!("no row {label} in {lines:#?}"));
        let cells: Vec<&str> = row.split_whitespace().collect();
        cells[cells.len() - n..]
            .iter()
            .map(|c| (*c).to_owned())
            .collect()
    }

    #[test]
    fn every_transport_is_compared_with_udp_whatever_the_order() {
        use Transport::{Tcp, Udp, Unix};
        let lines = table(
            &[Unix, Tcp, Udp],
            vec![cell(Unix, 5), cell(Tcp, 15), cell(Udp, 10)],
        );
        let header = lines.iter().find(|l| l.trim_start().starts_with("size"));
        let header = header.unwrap_or_else(|| panic!("no header in {lines:#?}"));
        assert!(header.ends_with("unix/udp p50  tcp/udp p50"), "{lines:#?}");
        assert_eq!(last_cells(&lines, "64", 2), ["0.50", "1.50"]);
        assert!(
            lines[1].contains("UNIX, TCP and UDP interleaved"),
            "{lines:#?}"
        );

        // UDP and TCP: one ratio column, as it always was.
        let lines = table(&[Udp, Tcp], vec![cell(Udp, 10), cell(Tcp, 15)]);
        assert!(lines[1].contains("UDP and TCP interleaved"), "{lines:#?}");
        let header = lines.iter().find(|l| l.trim_start().starts_with("size"));
        assert!(
            header.unwrap().ends_with("msg/s  tcp/udp p50"),
            "{lines:#?}"
        );
        assert_eq!(last_cells(&lines, "64", 1), ["1.50"]);

        // Without UDP, the first in Transport::ALL's order is the base.
        let lines = table(&[Unix, Tcp], vec![cell(Unix, 5), cell(Tcp, 15)]);
        assert_eq!(last_cells(&lines, "64", 1), ["0.33"]);
        assert!(
            lines.iter().any(|l| l.ends_with("unix/tcp p50")),
            "{lines:#?}"
        );

        // One transport: nothing to compare.
        let lines = table(&[Unix], vec![cell(Unix, 5)]);
        assert!(lines[1].contains("UNIX alone"), "{lines:#?}");
        let header = lines.iter().find(|l| l.trim_start().starts_with("size"));
        assert!(header.unwrap().ends_with("msg/s"), "{lines:#?}");
    }
}
