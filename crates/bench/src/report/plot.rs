//! The latency distributions behind the table, drawn as an SVG and
//! written out as `.hgrm` files.
//!
//! The plot is HdrHistogram's: the x axis is 1/(1−p) on a log scale, so
//! that p50, p90, p99, p99.9 and p99.99 sit one step apart and the tail
//! gets as much room as the median; the y axis is the round-trip time in
//! µs, on a log scale too (unlike HdrHistogram's plotter), because on
//! loopback the tail is ten or a hundred times the median and a linear
//! axis would flatten the 2 µs between UDP and TCP into one line.
//!
//! One line per cell of the table (transport, with or without the secret,
//! size, and, where a run has more than one, the engine and the
//! impairment), each drawn from the cell's median run, the run whose
//! figures the table shows. A cell is a [`Series`] whose label is a list
//! of parts, so a dimension is one more part, and two cells never share a
//! legend or a file.
//!
//! The SVG comes from `plotters`' SVG backend with no system library:
//! text is written as SVG `<text>` for the viewer to set in its own
//! sans-serif font.

use std::path::Path;

use hdrhistogram::Histogram;
use plotters::coord::combinators::{BindKeyPoints, IntoLogRange};
use plotters::prelude::*;

use super::hgrm;
use crate::engine::Outcome;
use crate::error::Error;
use crate::impair::Impairment;
use crate::pin::Placement;
use crate::run::Measured;

/// The lowest percentile drawn, as 1/(1−p): p50.
const X_FROM: f64 = 2.0;
/// The highest, as 1/(1−p): p99.99.
const X_TO: f64 = 10_000.0;
/// Where the x axis is labelled: p50, p90, p99, p99.9, p99.99.
const X_TICKS: [f64; 5] = [2.0, 10.0, 100.0, 1_000.0, 10_000.0];
/// Points per line, evenly spaced on the log axis: smooth enough to show
/// the histogram's steps.
const POINTS: u32 = 400;
/// The picture's size in pixels.
const SIZE: (u32, u32) = (960, 600);
/// Line colours, one per size, told apart on screen and in print (Tableau
/// 10); past ten sizes a line takes another pair of colour and style
/// ([`looks`]).
const COLORS: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

/// Line styles, one per transport (and whatever else tells cells of one
/// size apart: the secret, the engine, the impairment), as SVG dash
/// patterns: solid, dashed, dotted, dash-dot, long dashes. A colour says
/// the size and a style the transport, so that UDP and TCP of one size are
/// visibly a pair; past ten sizes or five styles a line takes the next
/// pair not yet drawn ([`looks`]).
const DASHES: [Option<&str>; 5] = [
    None,
    Some("9,5"),
    Some("2,4"),
    Some("9,4,2,4"),
    Some("16,6"),
];

/// Each style's lines are drawn at a width of their own, `STYLE_WIDTH +
/// style`, never used otherwise, and the SVG is rewritten afterwards into
/// width 2 with the style's dash pattern: plotters' SVG backend draws
/// every line solid, and its dashed series are many short lines.
const STYLE_WIDTH: u32 = 40;

/// The width every series is shown at.
const LINE_WIDTH: u32 = 2;

/// One line of the plot, and one `.hgrm` file.
#[derive(Debug)]
pub(crate) struct Series<'a> {
    /// What tells this line from the others, most significant first:
    /// `["udp", "64 B"]`, `["tcp+auth", "1024 B"]`, `["udp", "64 B",
    /// "tokio"]`, `["tcp", "64 B", "loss 5%"]`.
    pub(crate) labels: Vec<String>,
    /// Round-trip times in nanoseconds.
    pub(crate) latency: &'a Histogram<u64>,
}

impl Series<'_> {
    /// What the line style tells apart: every label but the size (the
    /// transport, and the secret, engine or impairment after it).
    fn style_key(&self) -> String {
        self.labels
            .iter()
            .enumerate()
            .filter(|&(i, _)| i != 1)
            .map(|(_, label)| label.as_str())
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// The legend's text: `UDP 64 B`.
    fn legend(&self) -> String {
        let mut parts = self.labels.iter();
        let first = parts.next().map(|t| t.to_uppercase()).unwrap_or_default();
        std::iter::once(first)
            .chain(parts.cloned())
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// A file name stem: `udp-64`, `tcp-auth-1024`.
    fn stem(&self) -> String {
        self.labels
            .iter()
            .map(|part| {
                let part: String = part
                    .trim_end_matches(" B")
                    .chars()
                    .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
                    .collect();
                part.trim_matches('-').to_owned()
            })
            .collect::<Vec<_>>()
            .join("-")
    }
}

/// A series per measured cell with samples, from its median run (ranked
/// by p50, as the table does); `impairments` names the cells measured
/// under impairment.
pub(crate) fn series<'a>(measured: &'a [Measured], impairments: &[Impairment]) -> Vec<Series<'a>> {
    let engines: std::collections::BTreeSet<_> = measured.iter().map(|c| c.engine).collect();
    measured
        .iter()
        .filter_map(|cell| {
            let run = median_run(cell.runs.as_deref().ok()?)?;
            let transport = if cell.authenticated {
                format!("{}+auth", cell.transport)
            } else {
                cell.transport.to_string()
            };
            let mut labels = vec![transport, format!("{} B", cell.size)];
            if engines.len() > 1 {
                labels.push(cell.engine.name().to_owned());
            }
            if let Some(impairment) = cell.impairment.and_then(|i| impairments.get(i)) {
                labels.push(impairment.to_string());
            }
            Some(Series {
                labels,
                latency: &run.latency,
            })
        })
        .collect()
}

fn median_run(runs: &[Outcome]) -> Option<&Outcome> {
    let mut ranked: Vec<&Outcome> = runs.iter().filter(|r| !r.latency.is_empty()).collect();
    ranked.sort_by_key(|r| r.latency.value_at_quantile(0.5));
    ranked.get(ranked.len().checked_sub(1)? / 2).copied()
}

/// `x` = 1/(1−p) as a percentile: 2 is `50%`, 1000 is `99.9%`.
fn percentile_label(x: f64) -> String {
    let percent = 100.0 * (1.0 - 1.0 / x);
    // As many decimals as the nines need: 99.99 has two.
    let decimals = (x.log10().round() as i32 - 2).max(0) as usize;
    format!("{percent:.decimals$}%")
}

/// Where the y axis is labelled between `low` and `high` (µs): 1, 2 and 5
/// of each decade, or every digit (1, 2, 3, ... 9) where that gives fewer
/// than three, as it does for a range such as 2 to 9 µs, which a log axis
/// labelled at powers of ten alone leaves blank; the range's own ends
/// where even that gives fewer than two.
fn y_ticks(low: f64, high: f64) -> Vec<f64> {
    match y_steps(low, high) {
        Some(steps) => ticks_of(steps, low, high),
        // Narrower than one digit step (all within 2.1 to 2.9 µs): the ends.
        None => vec![low, high],
    }
}

const COARSE: &[f64] = &[1.0, 2.0, 5.0];
const FINE: &[f64] = &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0];

/// The steps of each decade [`y_ticks`] labels `low` to `high` at: 1, 2
/// and 5 where that gives three labels, every digit where that gives two;
/// `None` where neither does.
fn y_steps(low: f64, high: f64) -> Option<&'static [f64]> {
    [COARSE, FINE]
        .into_iter()
        .zip([3, 2])
        .find(|&(steps, least)| ticks_of(steps, low, high).len() >= least)
        .map(|(steps, _)| steps)
}

/// `steps` of each decade, from `low` to `high`.
fn ticks_of(steps: &[f64], low: f64, high: f64) -> Vec<f64> {
    let first = low.log10().floor() as i32;
    let last = high.log10().ceil() as i32;
    (first..=last)
        .flat_map(|decade| steps.iter().map(move |step| step * 10f64.powi(decade)))
        .filter(|tick| (low..=high).contains(tick))
        .collect()
}

/// The y axis for values from `bottom` to `top` (µs): its range, a
/// margin either side, and its labels ([`y_ticks`]). The axis starts at
/// a label, the step at or below `bottom`'s margin, so that no value, and
/// no median, lies below the lowest label: from 13 to 250 µs the axis
/// starts at 10, where it started at 10.4 with 20 the lowest label, and
/// medians of 13 to 16 µs sat in a band without one (audit, round nine).
fn y_axis(bottom: f64, top: f64) -> (f64, f64, Vec<f64>) {
    let (low, high) = (bottom * 0.8, top * 1.25);
    let Some(steps) = y_steps(low, high) else {
        return (low, high, vec![low, high]);
    };
    let decade = 10f64.powi(low.log10().floor() as i32);
    let below = steps
        .iter()
        .rev()
        .map(|step| step * decade)
        .find(|&tick| tick <= low)
        .unwrap_or(low);
    (below, high, y_ticks(below, high))
}

/// How many decimals every y label has: as many as the finest of `ticks`
/// needs (`0.5` one, `20` none), at most two, so that the labels of one
/// axis read alike (`10`, `20`, `50`, not `20.0`, `50.0`, `100`).
fn y_decimals(ticks: &[f64]) -> usize {
    let needs = |tick: f64| {
        (0..2)
            .find(|&d| {
                let scaled = tick * 10f64.powi(d as i32);
                (scaled - scaled.round()).abs() < 1e-6 * scaled.max(1.0)
            })
            .unwrap_or(2)
    };
    ticks.iter().map(|&tick| needs(tick)).max().unwrap_or(0)
}

/// Each line's colour and dash pattern (indices into [`COLORS`] and
/// [`DASHES`]): the size's colour and the style's pattern, or where that
/// pair is already drawn (past ten sizes or five styles) the next pair
/// that is not, so that no two lines of a plot look alike (they did past
/// five styles; audit, round nine) until every one of the 50 pairs is
/// taken.
fn looks(series: &[Series<'_>]) -> Vec<(usize, usize)> {
    let sizes = first_seen(series, |s| s.labels.get(1).cloned());
    let styles = first_seen(series, |s| Some(s.style_key()));
    let (colors, dashes) = (COLORS.len(), DASHES.len());
    let mut taken: Vec<(usize, usize)> = Vec::new();
    sizes
        .zip(styles)
        .map(|(size, style)| {
            let wanted = (size % colors, style % dashes);
            // Every pair once: the style's next patterns, then the next
            // colour's.
            let pick = (0..colors * dashes)
                .map(|k| ((wanted.0 + k / dashes) % colors, (wanted.1 + k) % dashes))
                .find(|pair| !taken.contains(pair))
                .unwrap_or(wanted);
            taken.push(pick);
            pick
        })
        .collect()
}

/// The points of one line: (1/(1−p), µs) from p50 to p99.99.
fn points(latency: &Histogram<u64>) -> Vec<(f64, f64)> {
    (0..POINTS)
        .map(|i| {
            let x = X_FROM * (X_TO / X_FROM).powf(f64::from(i) / f64::from(POINTS - 1));
            let p = 1.0 - 1.0 / x;
            (x, latency.value_at_quantile(p) as f64 / 1000.0)
        })
        .collect()
}

/// Draws `series` as an SVG into `path`, titled with the placement, what
/// was measured and the date.
///
/// # Errors
///
/// When the file cannot be written.
pub(crate) fn draw(
    path: &Path,
    series: &[Series<'_>],
    placement: &Placement,
    what: &str,
) -> Result<(), Error> {
    let svg =
        render(series, &title(placement, what)).map_err(|err| Error::Plot(err.to_string()))?;
    std::fs::write(path, svg).map_err(|source| Error::Write {
        path: path.to_owned(),
        source,
    })
}

fn title(placement: &Placement, what: &str) -> String {
    let now = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    // "2026-11-25T09:41:07Z" as "2026-11-25 09:41 UTC".
    let date = format!("{} {} UTC", &now[..10], &now[11..16]);
    format!("msg bench: {what}; {placement}; {date}")
}

fn render(series: &[Series<'_>], title: &str) -> Result<String, Box<dyn std::error::Error>> {
    let lines: Vec<Vec<(f64, f64)>> = series.iter().map(|s| points(s.latency)).collect();
    let values = || lines.iter().flatten().map(|&(_, us)| us.max(0.001));
    let top = values().fold(1.0, f64::max);
    let bottom = values().fold(top, f64::min);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE)?;
        let (low, high, ticks) = y_axis(bottom, top);
        let decimals = y_decimals(&ticks);
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 16))
            .margin(16)
            .margin_right(40)
            .x_label_area_size(48)
            .y_label_area_size(64)
            .build_cartesian_2d(
                (X_FROM..X_TO).log_scale().with_key_points(X_TICKS.to_vec()),
                (low..high).log_scale().with_key_points(ticks),
            )?;
        chart
            .configure_mesh()
            .x_desc("percentile (x axis: 1/(1-p), log scale)")
            .y_desc("round-trip time (µs, log scale)")
            .x_label_formatter(&|x| percentile_label(*x))
            .y_label_formatter(&|y| format!("{y:.decimals$}"))
            .draw()?;
        for ((line, s), (color, style)) in lines.into_iter().zip(series).zip(looks(series)) {
            let marked = COLORS[color].stroke_width(STYLE_WIDTH + style as u32);
            chart
                .draw_series(LineSeries::new(line, marked))?
                .label(s.legend())
                // A short stroke in the line's colour and style: two
                // points, so never taken for a series.
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 24, y)], marked));
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()?;
        root.present()?;
    }
    Ok(styled(&svg))
}

/// The index of each series' key among the keys in the order they first
/// appear: sizes `64, 1024, 64, 1024` are `0, 1, 0, 1`.
fn first_seen<'a>(
    series: &'a [Series<'_>],
    key: impl Fn(&Series<'_>) -> Option<String> + 'a,
) -> impl Iterator<Item = usize> + 'a {
    let mut seen: Vec<Option<String>> = Vec::new();
    series.iter().map(move |s| {
        let k = key(s);
        seen.iter().position(|x| *x == k).unwrap_or_else(|| {
            seen.push(k);
            seen.len() - 1
        })
    })
}

/// The SVG with each style's marker width turned into the shown width and
/// its dash pattern.
fn styled(svg: &str) -> String {
    let mut svg = svg.to_owned();
    for (style, dashes) in DASHES.iter().enumerate() {
        let marker = format!("stroke-width=\"{}\"", STYLE_WIDTH + style as u32);
        let shown = match dashes {
            None => format!("stroke-width=\"{LINE_WIDTH}\""),
            Some(dashes) => {
                format!("stroke-width=\"{LINE_WIDTH}\" stroke-dasharray=\"{dashes}\"")
            }
        };
        svg = svg.replace(&marker, &shown);
    }
    svg
}

/// Writes each series as `DIR/<stem>.hgrm`; returns the paths written.
///
/// # Errors
///
/// When the directory cannot be made or a file cannot be written.
pub(crate) fn write_hgrm(
    dir: &Path,
    series: &[Series<'_>],
) -> Result<Vec<std::path::PathBuf>, Error> {
    std::fs::create_dir_all(dir).map_err(|source| Error::CreateDir {
        path: dir.to_owned(),
        source,
    })?;
    series
        .iter()
        .map(|s| {
            let path = dir.join(format!("{}.hgrm", s.stem()));
            match std::fs::write(&path, hgrm::render(s.latency)) {
                Ok(()) => Ok(path),
                Err(source) => Err(Error::Write { path, source }),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_narrow_range_is_labelled_at_every_digit_a_wide_one_at_1_2_5() {
        assert_eq!(y_ticks(1.6, 9.5), [2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0]);
        assert_eq!(y_ticks(3.0, 120.0), [5.0, 10.0, 20.0, 50.0, 100.0]);
        assert_eq!(y_ticks(2.1, 2.9), [2.1, 2.9], "no digit inside: the ends");
    }

    /// The axis starts at a label at or below every value, the labels at
    /// most 2.5 times apart, and every label has as many decimals as the
    /// others: medians of 13 to 16 µs once sat below the lowest label,
    /// 20.0 (then 50.0 and 100) (audit, round nine).
    #[test]
    fn no_median_lies_below_the_lowest_label_and_labels_read_alike() {
        for (bottom, top) in [
            (13.0, 250.0),
            (13.0, 16.0),
            (2.0, 9.0),
            (0.4, 3.0),
            (95.0, 4000.0),
        ] {
            let (low, high, ticks) = y_axis(bottom, top);
            assert_eq!(ticks[0], low, "{bottom}: {ticks:?}");
            assert!(low <= bottom && high >= top, "{bottom}: {ticks:?}");
            assert!(
                ticks.windows(2).all(|w| w[1] / w[0] <= 2.5 + 1e-9),
                "{ticks:?}"
            );
        }
        let (_, _, ticks) = y_axis(13.0, 250.0);
        assert_eq!(ticks, [10.0, 20.0, 50.0, 100.0, 200.0]);
        assert_eq!(y_decimals(&ticks), 0);
        assert_eq!(y_decimals(&[0.5, 1.0, 2.0]), 1);
        assert_eq!(y_decimals(&[2.13, 2.87]), 2);
    }

    /// Thirty lines, past ten sizes and past five styles: no two share
    /// their colour and their dash pattern (past five styles they did).
    #[test]
    fn every_line_of_a_plot_looks_different() {
        let hist = Histogram::<u64>::new(3).unwrap();
        for (transports, sizes) in [(2, 15), (7, 4), (3, 10)] {
            let series: Vec<Series<'_>> = (0..transports)
                .flat_map(|t| (0..sizes).map(move |size| (t, size)))
                .map(|(t, size)| Series {
                    labels: vec![format!("t{t}"), format!("{size} B")],
                    latency: &hist,
                })
                .collect();
            let looks = looks(&series);
            let mut distinct = looks.clone();
            distinct.sort_unstable();
            distinct.dedup();
            assert_eq!(
                distinct.len(),
                looks.len(),
                "{transports}x{sizes}: {looks:?}"
            );
            // Within ten sizes and five styles, the size's colour and the
            // transport's style, as before.
            if sizes <= COLORS.len() && transports <= DASHES.len() {
                let expected: Vec<(usize, usize)> = (0..transports)
                    .flat_map(|t| (0..sizes).map(move |size| (size, t)))
                    .collect();
                assert_eq!(looks, expected);
            }
        }
    }

    /// As drawn: thirty lines of medians 13 to 16 µs are thirty pairs of
    /// colour and dash pattern, the lowest y label is at or below every
    /// median, and the y labels have one format (`10`, `20`, `50`).
    #[test]
    fn a_drawn_plot_tells_every_line_apart_and_labels_every_median() {
        let hists: Vec<Histogram<u64>> = (0..15u64)
            .map(|i| {
                let mut hist = Histogram::<u64>::new(3).unwrap();
                for v in 0..100u64 {
                    hist.record(13_000 + i * 200 + v * if v > 98 { 2_000 } else { 1 })
                        .unwrap();
                }
                hist
            })
            .collect();
        let series: Vec<Series<'_>> = ["udp", "tcp"]
            .iter()
            .flat_map(|t| hists.iter().enumerate().map(move |(i, h)| (t, i, h)))
            .map(|(t, i, latency)| Series {
                labels: vec![(*t).to_owned(), format!("{} B", 64 * (i + 1))],
                latency,
            })
            .collect();
        let svg = render(&series, "a title").unwrap();
        let mut strokes: Vec<(String, Option<String>)> = svg
            .split("<polyline")
            .skip(1)
            .filter_map(|element| {
                let points = element.split(" points=\"").nth(1)?.split('"').next()?;
                let attribute = |name: &str| {
                    Some(
                        element
                            .split(&format!("{name}=\""))
                            .nth(1)?
                            .split('"')
                            .next()?
                            .to_owned(),
                    )
                };
                (points.split_whitespace().count() > 2)
                    .then(|| Some((attribute("stroke")?, attribute("stroke-dasharray"))))
                    .flatten()
            })
            .collect();
        assert_eq!(strokes.len(), 30);
        strokes.sort_unstable();
        strokes.dedup();
        assert_eq!(strokes.len(), 30, "{strokes:?}");
        let labels: Vec<&str> = svg
            .split("<text")
            .filter_map(|t| t.split_once('>')?.1.split_once("</text>"))
            .map(|(label, _)| label.trim())
            .filter(|label| label.parse::<f64>().is_ok())
            .collect();
        let values: Vec<f64> = labels.iter().map(|l| l.parse().unwrap()).collect();
        let lowest = values.iter().copied().fold(f64::INFINITY, f64::min);
        assert!(lowest <= 13.0, "{labels:?}");
        let decimals = |label: &str| label.split_once('.').map_or(0, |(_, d)| d.len());
        assert!(
            labels.iter().all(|l| decimals(l) == decimals(labels[0])),
            "{labels:?}"
        );
    }

    #[test]
    fn the_x_axis_reads_as_percentiles() {
        let labels: Vec<String> = X_TICKS.iter().map(|&x| percentile_label(x)).collect();
        assert_eq!(labels, ["50%", "90%", "99%", "99.9%", "99.99%"]);
    }

    #[test]
    fn labels_name_each_line_and_file() {
        let hist = Histogram::<u64>::new(3).unwrap();
        let s = Series {
            labels: vec!["tcp+auth".to_owned(), "1024 B".to_owned()],
            latency: &hist,
        };
        assert_eq!(s.legend(), "TCP+AUTH 1024 B");
        assert_eq!(s.stem(), "tcp-auth-1024");
        let s = Series {
            labels: vec!["udp".to_owned(), "64 B".to_owned(), "loss 5%".to_owned()],
            latency: &hist,
        };
        assert_eq!(s.legend(), "UDP 64 B loss 5%");
        assert_eq!(s.stem(), "udp-64-loss-5");
    }

    /// A measured cell of one run with a few samples.
    fn cell(
        transport: msg_net::Transport,
        engine: crate::Engine,
        impairment: Option<usize>,
    ) -> Measured {
        let mut outcome = Outcome::new();
        for rtt in [10_000, 11_000, 12_000] {
            outcome.record(rtt);
        }
        Measured {
            transport,
            engine,
            authenticated: false,
            size: 64,
            runs: Ok(vec![outcome]),
            impairment,
        }
    }

    #[test]
    fn engines_and_impairments_get_lines_of_their_own() {
        use crate::Engine::{Blocking, Tokio};
        use msg_net::Transport::{Tcp, Udp};
        let legends = |measured: &[Measured], impairments: &[Impairment]| -> Vec<String> {
            series(measured, impairments)
                .iter()
                .map(Series::legend)
                .collect()
        };
        // One engine: no engine in the legend, as before.
        let one = [cell(Udp, Blocking, None), cell(Tcp, Blocking, None)];
        assert_eq!(legends(&one, &[]), ["UDP 64 B", "TCP 64 B"]);
        // --io both: a line per engine.
        let both = [cell(Udp, Blocking, None), cell(Udp, Tokio, None)];
        assert_eq!(legends(&both, &[]), ["UDP 64 B blocking", "UDP 64 B tokio"]);
        // --impair twice: a line per impairment, named as the table names it.
        let impairments = [
            crate::impair::parse_spec("loss 1%").unwrap(),
            crate::impair::parse_spec("loss 5%").unwrap(),
        ];
        let impaired = [cell(Tcp, Tokio, Some(0)), cell(Tcp, Tokio, Some(1))];
        let names = legends(&impaired, &impairments);
        assert_eq!(names.len(), 2);
        assert!(names[0].starts_with("TCP 64 B loss 1"), "{names:?}");
        assert!(names[1].starts_with("TCP 64 B loss 5"), "{names:?}");
        let stems: Vec<String> = series(&impaired, &impairments)
            .iter()
            .map(Series::stem)
            .collect();
        assert_ne!(stems[0], stems[1]);
    }

    /// A Unix socket beside UDP and TCP: a line of its own, in the size's
    /// colour and a style of its own, and a file of its own.
    #[test]
    fn a_third_transport_gets_a_line_a_colour_and_a_file() {
        use crate::Engine::Blocking;
        use msg_net::Transport::{Tcp, Udp, Unix};
        let measured = [
            cell(Udp, Blocking, None),
            cell(Tcp, Blocking, None),
            cell(Unix, Blocking, None),
        ];
        let series = series(&measured, &[]);
        let legends: Vec<String> = series.iter().map(Series::legend).collect();
        assert_eq!(legends, ["UDP 64 B", "TCP 64 B", "UNIX 64 B"]);
        let stems: Vec<String> = series.iter().map(Series::stem).collect();
        assert_eq!(stems, ["udp-64", "tcp-64", "unix-64"]);
        let svg = render(&series, "a title").unwrap();
        // Each series' colour and dash pattern (none: solid).
        let strokes: Vec<(&str, Option<&str>)> = svg
            .split("<polyline")
            .skip(1)
            .filter_map(|element| {
                let points = element.split(" points=\"").nth(1)?.split('"').next()?;
                let attribute = |name: &str| {
                    element
                        .split(&format!("{name}=\""))
                        .nth(1)?
                        .split('"')
                        .next()
                };
                (points.split_whitespace().count() > 2)
                    .then(|| Some((attribute("stroke")?, attribute("stroke-dasharray"))))
                    .flatten()
            })
            .collect();
        assert_eq!(strokes.len(), 3, "{strokes:?}");
        assert!(
            strokes.iter().all(|(color, _)| *color == strokes[0].0),
            "{strokes:?}"
        );
        let dashes: Vec<Option<&str>> = strokes.iter().map(|(_, dashes)| *dashes).collect();
        assert_eq!(dashes, [None, Some("9,5"), Some("2,4")]);
    }

    #[test]
    fn one_polyline_per_series() {
        let mut a = Histogram::<u64>::new(3).unwrap();
        let mut b = Histogram::<u64>::new(3).unwrap();
        for v in 1..1000u64 {
            a.record(10_000 + v).unwrap();
            b.record(12_000 + 3 * v).unwrap();
        }
        let series = [
            Series {
                labels: vec!["udp".to_owned(), "64 B".to_owned()],
                latency: &a,
            },
            Series {
                labels: vec!["tcp".to_owned(), "64 B".to_owned()],
                latency: &b,
            },
        ];
        let svg = render(&series, "a title").unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..100]);
        // The mesh is drawn with two-point polylines; the series have one
        // point per step.
        let long = svg
            .split("<polyline")
            .skip(1)
            .filter_map(|element| element.split(" points=\"").nth(1)?.split('"').next())
            .filter(|points| points.split_whitespace().count() > 2)
            .count();
        assert_eq!(long, 2, "{svg}");
        for label in ["50%", "90%", "99%", "99.9%", "99.99%"] {
            assert!(svg.contains(&format!("\n{label}\n")), "{label}: {svg}");
        }
    }
}
