//! Each latency histogram in HdrHistogram's percentile
//! distribution format (`.hgrm`), which HdrHistogram's own plotter and
//! the tools built on it read.
//!
//! The format, as the Java library's `outputPercentileDistribution`
//! writes it (values here in microseconds):
//!
//! ```text
//!        Value     Percentile TotalCount 1/(1-Percentile)
//!
//!       11.007 0.000000000000          1           1.00
//!       11.503 0.500000000000      31236           2.00
//!          ...
//!      247.295 1.000000000000      62468
//! #[Mean    =       11.732, StdDeviation   =        2.187]
//! #[Max     =      247.295, Total count    =        62468]
//! #[Buckets =           27, SubBuckets     =         2048]
//! ```
//!
//! Each row is a value, the fraction of samples at or below it, how many
//! those are, and 1/(1−percentile), the x axis of the usual plot; the last
//! row (percentile 1) has no fourth column. Rows step through the
//! percentiles halving the distance to 100 % each time, five rows per
//! halving, as the Java default does.

use std::fmt::Write as _;

use hdrhistogram::Histogram;

/// Rows per halving of the distance to the 100th percentile (the Java
/// library's default).
const TICKS_PER_HALF_DISTANCE: u32 = 5;

/// Nanoseconds per microsecond: samples are recorded in ns, written in µs.
const SCALE: f64 = 1000.0;

/// `hist` (nanoseconds) as the text of a `.hgrm` file, values in µs.
pub(crate) fn render(hist: &Histogram<u64>) -> String {
    let digits = usize::from(hist.sigfig());
    let mut out = String::new();
    // Writing to a String cannot fail.
    let _ = writeln!(
        out,
        "{:>12} {:>14} {:>10} {:>14}\n",
        "Value", "Percentile", "TotalCount", "1/(1-Percentile)"
    );
    let mut total = 0u64;
    for step in hist.iter_quantiles(TICKS_PER_HALF_DISTANCE) {
        total += step.count_since_last_iteration();
        let value = step.value_iterated_to() as f64 / SCALE;
        let quantile = step.quantile_iterated_to();
        if quantile < 1.0 {
            let _ = writeln!(
                out,
                "{value:12.digits$} {quantile:2.12} {total:10} {:14.2}",
                1.0 / (1.0 - quantile)
            );
        } else {
            let _ = writeln!(out, "{value:12.digits$} {quantile:2.12} {total:10}");
        }
    }
    let _ = writeln!(
        out,
        "#[Mean    = {:12.digits$}, StdDeviation   = {:12.digits$}]",
        hist.mean() / SCALE,
        hist.stdev() / SCALE
    );
    let _ = writeln!(
        out,
        "#[Max     = {:12.digits$}, Total count    = {:12}]",
        hist.max() as f64 / SCALE,
        hist.len()
    );
    let _ = writeln!(
        out,
        "#[Buckets = {:12}, SubBuckets     = {:12}]",
        hist.buckets(),
        sub_buckets(hist.sigfig())
    );
    out
}

/// The sub-buckets per bucket of a histogram with `sigfig` significant
/// digits: the power of two that resolves 2 × 10^sigfig values one by one
/// (2048 for 3 digits), as HdrHistogram sizes them.
fn sub_buckets(sigfig: u8) -> u64 {
    let single_unit = 2 * 10u64.pow(u32::from(sigfig));
    single_unit.next_power_of_two()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_distribution_reads_as_hdrhistogram_writes_it() {
        let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).unwrap();
        for us in 1..=100u64 {
            hist.record(us * 1000).unwrap();
        }
        let text = render(&hist);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "       Value     Percentile TotalCount 1/(1-Percentile)"
        );
        assert_eq!(lines[1], "");
        assert_eq!(
            lines[2],
            "       1.000 0.000000000000          1           1.00"
        );
        let last = lines[lines.len() - 4];
        assert_eq!(last, "     100.031 1.000000000000        100");
        assert_eq!(
            lines[lines.len() - 3],
            "#[Mean    =       50.504, StdDeviation   =       28.866]"
        );
        assert_eq!(
            lines[lines.len() - 2],
            "#[Max     =      100.031, Total count    =          100]"
        );
        assert!(lines[lines.len() - 1].ends_with("SubBuckets     =         2048]"));
        assert_eq!(sub_buckets(3), 2048);
        assert_eq!(sub_buckets(2), 256);
    }
}
