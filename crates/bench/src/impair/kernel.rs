//! How the kernel carries an impairment out on `lo`: an nftables rule for
//! loss, a `tbf` qdisc for a rate, `netem` for the rest; made and removed
//! with the `nft` and `tc` programs, whose errors name what is missing.

use std::io::Write;
use std::process::{Command, Stdio};

use super::{Impairment, fmt_time};
use crate::error::Error;

/// The nftables table msg makes (and removes) in its namespace.
const TABLE: &str = "msg_impair";

/// The loopback device, the only one in the namespace.
const DEV: &str = "lo";

impl Impairment {
    fn needs_netem(&self) -> bool {
        self.delay.is_some() || self.reorder.is_some() || self.duplicate.is_some()
    }

    /// The nftables ruleset for the loss, if any: `numgen random mod 100`
    /// for whole percentages, `mod 10000` for hundredths.
    fn ruleset(&self) -> Option<String> {
        let loss = self.loss?;
        let (modulo, below) = if loss.0 % 100 == 0 {
            (100, loss.0 / 100)
        } else {
            (10_000, loss.0)
        };
        Some(format!(
            "table inet {TABLE} {{\n\
             \tchain input {{\n\
             \t\ttype filter hook input priority 0; policy accept;\n\
             \t\tnumgen random mod {modulo} < {below} counter drop\n\
             \t}}\n\
             }}\n"
        ))
    }

    /// The tc commands for rate, delay, reorder and duplicate, in order.
    fn qdiscs(&self) -> Vec<Vec<String>> {
        let mut commands = Vec::new();
        let words = |s: &str| s.split(' ').map(str::to_owned).collect::<Vec<_>>();
        if self.needs_netem() {
            let mut netem = words(&format!("qdisc add dev {DEV} root handle 1: netem"));
            if let Some((delay, jitter)) = self.delay {
                netem.extend(words(&format!("delay {}", fmt_time(delay))));
                if !jitter.is_zero() {
                    netem.push(fmt_time(jitter));
                }
            }
            if let Some(reorder) = self.reorder {
                netem.extend(["reorder".to_owned(), reorder.to_string()]);
            }
            if let Some(duplicate) = self.duplicate {
                netem.extend(["duplicate".to_owned(), duplicate.to_string()]);
            }
            commands.push(netem);
        }
        if let Some((rate, burst, limit)) = self.tbf() {
            let parent = if self.needs_netem() {
                "parent 1:1 handle 10:"
            } else {
                "root handle 10:"
            };
            commands.push(words(&format!(
                "qdisc add dev {DEV} {parent} tbf rate {rate}bit burst {burst} limit {limit}"
            )));
        }
        commands
    }

    /// What is applied, in words, for the report: one line per mechanism.
    pub fn applied(&self) -> Vec<String> {
        let mut lines = Vec::new();
        if let Some(ruleset) = self.ruleset() {
            let rule = ruleset
                .lines()
                .find(|l| l.contains("numgen"))
                .unwrap_or_default()
                .trim()
                .to_owned();
            lines.push(format!("nft: inet {TABLE} input hook: {rule}"));
        }
        for command in self.qdiscs() {
            lines.push(format!("tc {}", command.join(" ")));
        }
        lines
    }

    /// Applies the impairment to `lo`. Call only inside a network
    /// namespace made for the purpose: it changes `lo` for every process
    /// in the namespace.
    ///
    /// # Errors
    ///
    /// [`Error::MissingProgram`] or [`Error::NoQdisc`] when a program or a
    /// kernel feature the SPEC needs is missing; otherwise the program's
    /// own error.
    pub fn apply(&self) -> Result<(), Error> {
        if let Some(ruleset) = self.ruleset() {
            run("nft", &["-f", "-"], Some(&ruleset), self)?;
        }
        for command in self.qdiscs() {
            let args: Vec<&str> = command.iter().map(String::as_str).collect();
            run("tc", &args, None, self)?;
        }
        Ok(())
    }

    /// Removes what [`Impairment::apply`] made, so that the next SPEC
    /// starts from a plain `lo`.
    ///
    /// # Errors
    ///
    /// As [`Impairment::apply`].
    pub fn clear(&self) -> Result<(), Error> {
        if self.loss.is_some() {
            run("nft", &["delete", "table", "inet", TABLE], None, self)?;
        }
        if !self.qdiscs().is_empty() {
            run("tc", &["qdisc", "del", "dev", DEV, "root"], None, self)?;
        }
        Ok(())
    }
}

/// Runs `nft` or `tc`, checks its status, and turns its error output into
/// a message that names what is missing.
fn run(
    program: &'static str,
    args: &[&str],
    stdin: Option<&str>,
    imp: &Impairment,
) -> Result<(), Error> {
    let package = match program {
        "nft" => "nftables",
        _ => "iproute2",
    };
    let mut child = Command::new(program)
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| {
            if source.kind() == std::io::ErrorKind::NotFound {
                Error::MissingProgram {
                    spec: imp.to_string(),
                    program,
                    package,
                }
            } else {
                Error::Program {
                    action: "run",
                    program,
                    source,
                }
            }
        })?;
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(text.as_bytes())
            .map_err(|source| Error::Program {
                action: "write to",
                program,
                source,
            })?;
    }
    let output = child.wait_with_output().map_err(|source| Error::Program {
        action: "wait for",
        program,
        source,
    })?;
    if output.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    let stderr = stderr.trim().trim_end_matches('.');
    if program == "tc" && stderr.contains("qdisc kind is unknown") {
        let qdisc = if args.contains(&"netem") {
            "netem"
        } else {
            "tbf"
        };
        let config = if qdisc == "netem" {
            "CONFIG_NET_SCH_NETEM"
        } else {
            "CONFIG_NET_SCH_TBF"
        };
        let words = if qdisc == "netem" {
            "delay, jitter, reorder and duplicate"
        } else {
            "rate"
        };
        return Err(Error::NoQdisc {
            spec: imp.to_string(),
            qdisc,
            config,
            words,
            stderr: stderr.to_owned(),
        });
    }
    Err(Error::ProgramFailed {
        command: format!("{program} {}", args.join(" ")),
        status: output.status,
        stderr: stderr.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use crate::impair::parse_spec;

    #[test]
    fn loss_is_an_nftables_rule_on_the_input_hook() {
        let ruleset = parse_spec("loss 5%").unwrap().ruleset().unwrap();
        assert!(ruleset.contains("hook input"), "{ruleset}");
        assert!(
            ruleset.contains("numgen random mod 100 < 5 counter drop"),
            "{ruleset}"
        );
        let ruleset = parse_spec("loss 0.25%").unwrap().ruleset().unwrap();
        assert!(ruleset.contains("mod 10000 < 25 "), "{ruleset}");
        assert!(parse_spec("loss 5%").unwrap().qdiscs().is_empty());
    }

    #[test]
    fn rate_is_tbf_and_the_rest_netem_above_it() {
        let rate = parse_spec("rate 100mbit").unwrap().qdiscs();
        assert_eq!(rate.len(), 1);
        assert_eq!(
            rate[0].join(" "),
            "qdisc add dev lo root handle 10: tbf rate 100000000bit burst 125000 limit 625000"
        );
        let both = parse_spec("delay 5ms 1ms rate 1mbit").unwrap().qdiscs();
        assert_eq!(
            both[0].join(" "),
            "qdisc add dev lo root handle 1: netem delay 5ms 1ms"
        );
        assert!(both[1].join(" ").starts_with(
            "qdisc add dev lo parent 1:1 handle 10: tbf rate 1000000bit burst 70000 "
        ));
    }
}
