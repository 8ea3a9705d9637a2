//! `msg bench --plot FILE.svg` and `--hgrm DIR`: the latency
//! distributions, drawn and written out in HdrHistogram's format, checked
//! by parsing what was written.

mod support;

use std::path::{Path, PathBuf};

use quick_xml::Reader;
use quick_xml::events::Event;
use serde_json::Value;
use support::run;

/// Short runs: the contract, not the speed.
const QUICK: &[&str] = &[
    "--duration",
    "150ms",
    "--warmup",
    "20ms",
    "--pin",
    "off",
    "--runs",
    "1",
];

/// A fresh directory for this test's files.
fn scratch(name: &str) -> PathBuf {
    let dir = support::fresh_path(&format!("bench-plot-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Checks that `svg` is well-formed XML with one `<svg>` root; returns the
/// number of points of each `<polyline>`.
fn parse_svg(svg: &str) -> Vec<usize> {
    assert!(svg.starts_with("<svg"), "{}", &svg[..svg.len().min(200)]);
    let mut reader = Reader::from_str(svg);
    let mut depth = 0usize;
    let mut roots = 0;
    let mut polylines = Vec::new();
    // Bounded by the document: every event consumes some of it.
    loop {
        let event = reader
            .read_event()
            .unwrap_or_else(|err| panic!("not well-formed at {}: {err}", reader.buffer_position()));
        let element = match &event {
            Event::Start(e) | Event::Empty(e) => Some(e.clone()),
            _ => None,
        };
        if let Some(element) = element {
            if depth == 0 {
                roots += 1;
                assert_eq!(element.name().as_ref(), b"svg");
            }
            if element.name().as_ref() == b"polyline" {
                let points = element
                    .try_get_attribute("points")
                    .unwrap()
                    .expect("a polyline has points");
                let points = points.unescape_value().unwrap();
                polylines.push(points.split_whitespace().count());
            }
        }
        match event {
            Event::Start(_) => depth += 1,
            Event::End(_) => depth = depth.checked_sub(1).expect("an end tag with no start"),
            Event::Eof => break,
            _ => {}
        }
    }
    assert_eq!(depth, 0, "unclosed elements at the end");
    assert_eq!(roots, 1);
    polylines
}

/// One row of a `.hgrm` file.
#[derive(Debug)]
struct Row {
    value: f64,
    percentile: f64,
    total: u64,
}

/// A parsed `.hgrm` file: its rows and the footer's figures.
#[derive(Debug)]
struct Hgrm {
    rows: Vec<Row>,
    mean: f64,
    max: f64,
    count: u64,
}

/// Parses HdrHistogram's percentile distribution format, checking it as
/// it goes: the header, a blank line, rows of value, percentile, total
/// count and 1/(1-percentile) (the last row, at percentile 1, without the
/// fourth), then the `#[...]` footer.
fn parse_hgrm(path: &Path) -> Hgrm {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        ["Value", "Percentile", "TotalCount", "1/(1-Percentile)"]
    );
    assert_eq!(lines.next(), Some(""));
    let mut rows = Vec::new();
    let mut footer = Vec::new();
    for line in lines {
        if let Some(rest) = line.strip_prefix("#[") {
            footer.push(rest.strip_suffix(']').expect("a footer line ends with ]"));
            continue;
        }
        assert!(footer.is_empty(), "a row after the footer: {line}");
        let fields: Vec<&str> = line.split_whitespace().collect();
        let row = Row {
            value: fields[0].parse().unwrap(),
            percentile: fields[1].parse().unwrap(),
            total: fields[2].parse().unwrap(),
        };
        if row.percentile < 1.0 {
            assert_eq!(fields.len(), 4, "{line}");
            let inverse: f64 = fields[3].parse().unwrap();
            let expected = 1.0 / (1.0 - row.percentile);
            assert!((inverse - expected).abs() <= 0.01, "{line}");
        } else {
            assert_eq!(fields.len(), 3, "{line}");
        }
        rows.push(row);
    }
    // "Mean    =       11.732, StdDeviation   =        2.187"
    let pairs: Vec<(String, String)> = footer
        .iter()
        .flat_map(|line| line.split(", "))
        .map(|pair| {
            let (key, value) = pair.split_once('=').expect("KEY = VALUE");
            (key.trim().to_owned(), value.trim().to_owned())
        })
        .collect();
    let get = |key: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == key)
            .unwrap_or_else(|| panic!("no {key} in {footer:?}"))
            .1
            .clone()
    };
    for key in ["StdDeviation", "Buckets", "SubBuckets"] {
        get(key);
    }
    Hgrm {
        rows,
        mean: get("Mean").parse().unwrap(),
        max: get("Max").parse().unwrap(),
        count: get("Total count").parse().unwrap(),
    }
}

#[test]
fn plot_and_hgrm_hold_one_line_and_one_file_per_cell() {
    let dir = scratch("both");
    let svg = dir.join("latency.svg");
    let hgrm = dir.join("hgrm");
    let mut args = vec!["bench", "--json", "--sizes", "64,1024"];
    args.extend_from_slice(QUICK);
    let (svg_arg, hgrm_arg) = (svg.to_str().unwrap(), hgrm.to_str().unwrap());
    args.extend_from_slice(&["--plot", svg_arg, "--hgrm", hgrm_arg]);
    let finished = run(&args, None);
    assert_eq!(finished.code(), Some(0), "{}", finished.stderr);
    let doc: Value = serde_json::from_str(&finished.stdout).unwrap();
    let results = doc["results"].as_array().unwrap();
    assert_eq!(results.len(), 4);

    let text = std::fs::read_to_string(&svg).unwrap();
    let polylines = parse_svg(&text);
    // The axes and the grid are two-point polylines; each series has one
    // point per step along the x axis.
    let series: Vec<&usize> = polylines.iter().filter(|&&n| n > 2).collect();
    assert_eq!(series.len(), 4, "{polylines:?}");
    for legend in ["UDP 64 B", "UDP 1024 B", "TCP 64 B", "TCP 1024 B"] {
        assert!(text.contains(legend), "{legend} missing from the legend");
    }
    for tick in ["50%", "90%", "99%", "99.9%", "99.99%"] {
        assert!(text.contains(&format!("\n{tick}\n")), "no {tick} tick");
    }
    // One colour per size, one line style per transport: UDP solid, TCP
    // dashed (its two lines, and its two legend strokes).
    assert_eq!(text.matches("stroke-dasharray=\"9,5\"").count(), 4);
    // The y axis is labelled at least three times, whatever its range.
    let labels = text
        .split("<text")
        .filter_map(|t| {
            t.split_once('>')
                .and_then(|(_, rest)| rest.split_once("</text>"))
        })
        .filter(|(label, _)| label.trim().parse::<f64>().is_ok())
        .count();
    assert!(labels >= 3, "{labels} y labels");
    assert!(text.contains("pin off"), "the title names the placement");

    for result in results {
        let name = format!(
            "{}-{}.hgrm",
            result["transport"].as_str().unwrap(),
            result["size"]
        );
        let parsed = parse_hgrm(&hgrm.join(&name));
        // The file holds the table's run: as many samples, the same p50.
        assert_eq!(parsed.count, result["samples"].as_u64().unwrap(), "{name}");
        let last = parsed.rows.last().unwrap();
        assert_eq!((last.percentile, last.total), (1.0, parsed.count), "{name}");
        assert!(
            parsed.rows.windows(2).all(|w| w[0].value <= w[1].value
                && w[0].percentile <= w[1].percentile
                && w[0].total <= w[1].total),
            "{name}: rows out of order"
        );
        let p50 = parsed
            .rows
            .iter()
            .find(|r| r.percentile >= 0.5)
            .unwrap()
            .value;
        let table_p50 = result["p50_us"].as_f64().unwrap();
        assert!(
            (p50 - table_p50).abs() <= 0.1 + table_p50 * 0.01,
            "{name}: {p50} vs {table_p50}"
        );
        assert!(parsed.mean > 0.0 && parsed.mean <= parsed.max, "{name}");
        assert!((parsed.max - last.value).abs() < 1e-6, "{name}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn io_both_draws_and_writes_a_line_and_a_file_per_engine() {
    let dir = scratch("io-both");
    let svg = dir.join("latency.svg");
    let hgrm = dir.join("hgrm");
    let mut args = vec!["bench", "--io", "both", "--sizes", "64"];
    args.extend_from_slice(QUICK);
    let (svg_arg, hgrm_arg) = (svg.to_str().unwrap(), hgrm.to_str().unwrap());
    args.extend_from_slice(&["--plot", svg_arg, "--hgrm", hgrm_arg]);
    let finished = run(&args, None);
    assert_eq!(finished.code(), Some(0), "{}", finished.stderr);
    let text = std::fs::read_to_string(&svg).unwrap();
    let series = parse_svg(&text).into_iter().filter(|&n| n > 2).count();
    assert_eq!(series, 4, "two transports under two engines");
    let mut files: Vec<String> = std::fs::read_dir(&hgrm)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect();
    files.sort();
    assert_eq!(
        files,
        [
            "tcp-64-blocking.hgrm",
            "tcp-64-tokio.hgrm",
            "udp-64-blocking.hgrm",
            "udp-64-tokio.hgrm"
        ]
    );
    for engine in ["blocking", "tokio"] {
        for transport in ["UDP", "TCP"] {
            let legend = format!("{transport} 64 B {engine}");
            assert!(text.contains(&legend), "{legend} missing from the legend");
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn plot_and_hgrm_are_for_latency_only() {
    let dir = scratch("refused");
    let svg = dir.join("x.svg");
    for flag in ["--plot", "--hgrm"] {
        let finished = run(
            &["bench", "--mode", "throughput", flag, svg.to_str().unwrap()],
            None,
        );
        assert_eq!(finished.code(), Some(2), "{}", finished.stderr);
        assert!(
            finished
                .stderr
                .contains(&format!("{flag} shows round-trip times"))
                && finished.stderr.contains("--mode pingpong"),
            "{}",
            finished.stderr
        );
        assert!(finished.stdout.is_empty());
    }
    // A directory that is not there is found out before the run.
    support::assert_usage_error(
        &["bench", "--plot", "/nonexistent/dir/x.svg"],
        "/nonexistent/dir",
    );
    assert!(!svg.exists());
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The connect mode refuses `--plot` and `--hgrm` each by its own name
/// (it said "--plot and --hgrm does not go" of either alone), and an
/// `--hgrm` directory that cannot be made is found out before the run,
/// as `--plot`'s is (it was found after the whole measurement, exit 1)
/// (audit, round nine).
#[test]
fn hgrm_and_plot_are_refused_by_name_and_before_the_run() {
    let dir = scratch("hgrm-refused");
    let svg = dir.join("x.svg");
    for flag in ["--plot", "--hgrm"] {
        let finished = run(
            &["bench", "--mode", "connect", flag, svg.to_str().unwrap()],
            None,
        );
        assert_eq!(finished.code(), Some(2), "{}", finished.stderr);
        assert!(
            finished
                .stderr
                .contains(&format!("{flag} does not go with --mode connect")),
            "{}",
            finished.stderr
        );
        let other = if flag == "--plot" { "--hgrm" } else { "--plot" };
        assert!(!finished.stderr.contains(other), "{}", finished.stderr);
    }
    // A file where the directory would go: refused before anything is
    // measured.
    let file = dir.join("a-file");
    std::fs::write(&file, "").unwrap();
    for under in [file.clone(), file.join("hgrm")] {
        support::assert_usage_error(
            &["bench", "--hgrm", under.to_str().unwrap()],
            &format!(
                "--hgrm: {} is not a directory to write into",
                file.display()
            ),
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
