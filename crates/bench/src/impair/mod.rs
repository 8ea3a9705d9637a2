//! Impairments: what a lossy, slow or jittery network does to each
//! transport, made by the kernel at the packet level on the loopback of a
//! private network namespace (the binary makes it, and runs the benchmark
//! inside).
//!
//! SPEC uses netem's words: `loss 2%`, `rate 100mbit`, `delay 5ms 1ms`,
//! `reorder 1%`, `duplicate 1%`, in any combination. Each is carried out by
//! the kernel mechanism that does it on the running kernel:
//!
//! - **loss**: an nftables rule on the *input* hook,
//!   `numgen random mod 100 < N drop`. Not on the output hook: there a
//!   dropped UDP send fails with `EPERM` in the sender, which no network
//!   does. On `lo` every packet is received once, so the rule drops N % of
//!   the packets in *each* direction: a UDP ping-pong loses a round trip
//!   with probability 1 − (1 − N/100)², a one-way stream N % of its
//!   datagrams. It needs no netem, so it works on kernels built without it.
//! - **rate**: a token-bucket qdisc (`tbf`) on `lo`.
//! - **delay** (with jitter), **reorder**, **duplicate**: `netem`, where
//!   the kernel has `sch_netem`. Where it does not, the run is refused with
//!   what is missing: never a silent run without the impairment.
//!
//! The rules are made with the `nft` and `tc` programs (nftables and
//! iproute2), whose status and error output are checked. Rust has no
//! netlink crate that speaks both nf_tables expressions (`numgen`) and
//! qdisc options (`tbf`, `netem`), and these two programs are the kernel
//! projects' own front ends.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use crate::Transport;
use crate::error::Error;

mod kernel;
#[cfg(target_os = "linux")]
pub mod netns;

/// Whether an impaired run can measure `transports` (against a `remote`
/// listener, or the built-in ones): the built-in ones only, since the
/// private network namespace it runs in reaches no other, and only
/// transports that cross the network interface (lo) the kernel impairs.
/// [`Plan::check`](crate::Plan::check) asks it too; a caller that enters
/// the namespace asks first.
///
/// # Errors
///
/// [`Error::ImpairRemote`], [`Error::ImpairNotInet`].
pub fn check_impairable(remote: bool, transports: &[Transport]) -> Result<(), Error> {
    if remote {
        return Err(Error::ImpairRemote);
    }
    // A socket addressed by a path never crosses lo: measured, it would
    // show nothing of the impairment.
    match transports.iter().find(|t| !t.is_inet()) {
        Some(&transport) => Err(Error::ImpairNotInet(transport)),
        None => Ok(()),
    }
}

/// A share of packets, in hundredths of a percent (`2.5%` is 250).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Percent(u32);

impl Percent {
    pub(crate) fn as_f64(self) -> f64 {
        f64::from(self.0) / 100.0
    }

    fn parse(word: &str) -> Option<Self> {
        let number = word.strip_suffix('%')?;
        let (whole, frac) = number.split_once('.').unwrap_or((number, ""));
        if whole.is_empty()
            || frac.len() > 2
            || !(whole.bytes().chain(frac.bytes())).all(|b| b.is_ascii_digit())
        {
            return None;
        }
        let whole: u32 = whole.parse().ok()?;
        let frac: u32 = format!("{frac:0<2}").parse().ok()?;
        let hundredths = whole.checked_mul(100)?.checked_add(frac)?;
        (hundredths <= 10_000).then_some(Self(hundredths))
    }
}

impl fmt::Display for Percent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (whole, frac) = (self.0 / 100, self.0 % 100);
        match frac {
            0 => write!(f, "{whole}%"),
            _ if frac % 10 == 0 => write!(f, "{whole}.{}%", frac / 10),
            _ => write!(f, "{whole}.{frac:02}%"),
        }
    }
}

/// One impairment, in netem's words (`loss 2% delay 5ms`): parsed with
/// [`FromStr`], shown in a canonical spelling with [`Display`](fmt::Display).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Impairment {
    /// Share of packets dropped at the input hook, each direction.
    pub(crate) loss: Option<Percent>,
    /// Bits per second through `lo`.
    pub(crate) rate: Option<u64>,
    /// Added to every packet, and the jitter around it.
    pub(crate) delay: Option<(Duration, Duration)>,
    pub(crate) reorder: Option<Percent>,
    pub(crate) duplicate: Option<Percent>,
}

/// The words SPEC knows, for error messages.
const WORDS: &str = "loss 2%, rate 100mbit, delay 5ms [1ms], reorder 1%, duplicate 1%";

impl FromStr for Impairment {
    type Err = Error;

    /// # Errors
    ///
    /// [`Error::Impairment`], saying what is wrong with the SPEC.
    fn from_str(spec: &str) -> Result<Self, Error> {
        parse_spec(spec).map_err(Error::Impairment)
    }
}

/// Parses a SPEC; the error says what is wrong with it.
pub(crate) fn parse_spec(spec: &str) -> Result<Impairment, String> {
    let words: Vec<&str> = spec.split_whitespace().collect();
    if words.is_empty() {
        return Err(format!(
            "an empty impairment; expected netem's words: {WORDS}"
        ));
    }
    let mut imp = Impairment {
        loss: None,
        rate: None,
        delay: None,
        reorder: None,
        duplicate: None,
    };
    let mut i = 0;
    while i < words.len() {
        let word = words[i];
        let value = words.get(i + 1).copied();
        let percent = |what: &str| {
            value.and_then(Percent::parse).ok_or_else(|| {
                format!(
                    "'{what}' wants a percentage from 0% to 100% (at most two decimals), like '{what} 1%'; got {}",
                    value.map_or("nothing".to_owned(), |v| format!("'{v}'"))
                )
            })
        };
        let repeated = |seen: bool| {
            if seen {
                Err(format!("'{word}' is given twice"))
            } else {
                Ok(())
            }
        };
        match word {
            "loss" => {
                repeated(imp.loss.is_some())?;
                imp.loss = Some(percent("loss")?);
            }
            "reorder" => {
                repeated(imp.reorder.is_some())?;
                imp.reorder = Some(percent("reorder")?);
            }
            "duplicate" => {
                repeated(imp.duplicate.is_some())?;
                imp.duplicate = Some(percent("duplicate")?);
            }
            "rate" => {
                repeated(imp.rate.is_some())?;
                let rate = value.and_then(parse_rate).ok_or_else(|| {
                    format!(
                        "'rate' wants a rate like 100mbit, 500kbit or 10mbps (bytes); got {}",
                        value.map_or("nothing".to_owned(), |v| format!("'{v}'"))
                    )
                })?;
                imp.rate = Some(rate);
            }
            "delay" => {
                repeated(imp.delay.is_some())?;
                let delay = value.and_then(parse_time).ok_or_else(|| {
                    format!(
                        "'delay' wants a time like 5ms or 500us, then optionally the jitter; got {}",
                        value.map_or("nothing".to_owned(), |v| format!("'{v}'"))
                    )
                })?;
                // An optional second time is the jitter.
                let jitter = words.get(i + 2).and_then(|w| parse_time(w));
                if jitter.is_some() {
                    i += 1;
                }
                let jitter = jitter.unwrap_or(Duration::ZERO);
                if jitter > delay {
                    return Err(format!(
                        "a jitter ({}) larger than the delay ({}) would make negative delays",
                        fmt_time(jitter),
                        fmt_time(delay)
                    ));
                }
                imp.delay = Some((delay, jitter));
            }
            other => {
                return Err(format!(
                    "unknown word '{other}'; an impairment is made of netem's words: {WORDS}"
                ));
            }
        }
        i += 2;
    }
    if imp.reorder.is_some() && imp.delay.is_none_or(|(d, _)| d.is_zero()) {
        // netem reorders by sending some packets at once while the others
        // wait out the delay: without a delay nothing would be reordered.
        return Err(
            "'reorder' needs a delay to reorder against (netem sends the reordered packets at \
             once and delays the rest): add e.g. 'delay 5ms'"
                .to_owned(),
        );
    }
    Ok(imp)
}

/// A tc rate: a number and bit, kbit, mbit, gbit (bits per second) or bps,
/// kbps, mbps, gbps (bytes per second), as tc spells them.
fn parse_rate(word: &str) -> Option<u64> {
    let lower = word.to_ascii_lowercase();
    let split = lower.find(|c: char| !c.is_ascii_digit() && c != '.')?;
    let (number, unit) = lower.split_at(split);
    let number: f64 = number.parse().ok()?;
    let per_s = match unit {
        "bit" => 1.0,
        "kbit" => 1e3,
        "mbit" => 1e6,
        "gbit" => 1e9,
        "bps" => 8.0,
        "kbps" => 8e3,
        "mbps" => 8e6,
        "gbps" => 8e9,
        _ => return None,
    };
    let bits = (number * per_s).round();
    // tbf needs at least a few bytes a second; 100 Gbit/s is past lo.
    (8.0..=100e9).contains(&bits).then_some(bits as u64)
}

/// A tc time: a number and s, ms or us.
fn parse_time(word: &str) -> Option<Duration> {
    let split = word.find(|c: char| !c.is_ascii_digit() && c != '.')?;
    let (number, unit) = word.split_at(split);
    let number: f64 = number.parse().ok()?;
    let secs = match unit {
        "s" => number,
        "ms" => number / 1e3,
        "us" | "µs" => number / 1e6,
        _ => return None,
    };
    (0.0..=60.0)
        .contains(&secs)
        .then(|| Duration::from_secs_f64(secs))
}

fn fmt_time(t: Duration) -> String {
    let us = t.as_micros();
    if us % 1000 == 0 {
        format!("{}ms", us / 1000)
    } else {
        format!("{us}us")
    }
}

fn fmt_rate(bits: u64) -> String {
    match bits {
        b if b % 1_000_000_000 == 0 => format!("{}gbit", b / 1_000_000_000),
        b if b % 1_000_000 == 0 => format!("{}mbit", b / 1_000_000),
        b if b % 1000 == 0 => format!("{}kbit", b / 1000),
        b => format!("{b}bit"),
    }
}

impl fmt::Display for Impairment {
    /// The SPEC in a canonical spelling: what the table's rows are called.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut words = Vec::new();
        if let Some(loss) = self.loss {
            words.push(format!("loss {loss}"));
        }
        if let Some(rate) = self.rate {
            words.push(format!("rate {}", fmt_rate(rate)));
        }
        if let Some((delay, jitter)) = self.delay {
            if jitter.is_zero() {
                words.push(format!("delay {}", fmt_time(delay)));
            } else {
                words.push(format!("delay {} {}", fmt_time(delay), fmt_time(jitter)));
            }
        }
        if let Some(reorder) = self.reorder {
            words.push(format!("reorder {reorder}"));
        }
        if let Some(duplicate) = self.duplicate {
            words.push(format!("duplicate {duplicate}"));
        }
        f.write_str(&words.join(" "))
    }
}

impl Impairment {
    /// The time a packet may spend in the impaired network one way, at
    /// most: delay plus jitter, and a full rate-limiting queue.
    pub fn one_way_delay(&self) -> Duration {
        let delay = self.delay.map_or(Duration::ZERO, |(d, j)| d + j);
        let queue = self.tbf().map_or(Duration::ZERO, |(rate, _, limit)| {
            Duration::from_secs_f64(limit as f64 * 8.0 / rate as f64)
        });
        delay + queue
    }

    /// tbf's rate (bits/s), bucket and queue (bytes). The bucket must hold
    /// the largest packet: lo's MTU is 64 KiB, and tbf drops a packet
    /// larger than its bucket. The queue holds 50 ms at the rate (and at
    /// least two buckets); beyond it tbf drops, as a router's full queue
    /// does.
    fn tbf(&self) -> Option<(u64, u64, u64)> {
        let rate = self.rate?;
        let bytes_per_s = rate / 8;
        let burst = (bytes_per_s / 100).max(70_000);
        let limit = (bytes_per_s / 20).max(2 * burst);
        Some((rate, burst, limit))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_in_netem_words() {
        let imp = parse_spec("loss 2%").unwrap();
        assert_eq!(imp.loss, Some(Percent(200)));
        assert_eq!(imp.to_string(), "loss 2%");
        let imp = parse_spec("  delay 5ms 1ms   rate 100mbit loss 0.5% reorder 1% duplicate 1.25%")
            .unwrap();
        assert_eq!(
            imp.delay,
            Some((Duration::from_millis(5), Duration::from_millis(1)))
        );
        assert_eq!(imp.rate, Some(100_000_000));
        assert_eq!(
            imp.to_string(),
            "loss 0.5% rate 100mbit delay 5ms 1ms reorder 1% duplicate 1.25%"
        );
        assert_eq!(parse_spec("rate 10mbps").unwrap().rate, Some(80_000_000));
        assert_eq!(
            parse_spec("delay 500us").unwrap().delay,
            Some((Duration::from_micros(500), Duration::ZERO))
        );
        assert_eq!(parse_spec("loss 100%").unwrap().loss, Some(Percent(10_000)));
        assert_eq!(parse_spec("loss 0%").unwrap().loss, Some(Percent(0)));
    }

    #[test]
    fn malformed_specs_say_what_is_wrong() {
        for (spec, says) in [
            ("", "empty"),
            ("loss", "wants a percentage"),
            ("loss 5", "wants a percentage"),
            ("loss 101%", "wants a percentage"),
            ("loss -1%", "wants a percentage"),
            ("loss 1.234%", "at most two decimals"),
            ("loss 1% loss 2%", "twice"),
            ("rate fast", "wants a rate"),
            ("rate 100", "wants a rate"),
            ("delay soon", "wants a time"),
            ("delay 1ms 5ms", "larger than the delay"),
            ("reorder 1%", "needs a delay"),
            ("jitter 1ms", "unknown word 'jitter'"),
        ] {
            let err = parse_spec(spec).unwrap_err();
            assert!(err.contains(says), "{spec:?}: {err}");
        }
    }
}
