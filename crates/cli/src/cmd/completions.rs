//! `msg completions SHELL` and `msg man`: generated from the very clap
//! definitions that parse the command line, so they cannot drift from it
//! (as ripgrep and fd ship theirs).

use std::io::{self, Write};

use clap::Args;
use clap_complete::Shell;

/// Options of `msg completions`.
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  msg completions bash > ~/.local/share/bash-completion/completions/msg
  msg completions zsh > ~/.zfunc/_msg
  msg completions fish > ~/.config/fish/completions/msg.fish")]
pub(crate) struct CompletionsArgs {
    /// The shell to complete for
    #[arg(value_enum)]
    shell: Shell,
}

/// Options of `msg man` (none).
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  msg man | man -l -
  msg man > /usr/local/share/man/man1/msg.1")]
pub(crate) struct ManArgs {}

/// Writes the completion script for `args.shell` to `out`, from
/// `command`, msg's whole command line (`Cli::command()`).
///
/// Made in memory first: clap_complete panics on a write that fails (a
/// closed pipe, a full disk), where an error is due (exit 1, or 0 for a
/// closed pipe, as every other command says it).
pub(crate) fn completions(
    args: &CompletionsArgs,
    mut command: clap::Command,
    out: &mut impl Write,
) -> io::Result<()> {
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut command, "msg", &mut script);
    out.write_all(&script)?;
    out.flush()
}

/// Writes the man page, in roff, to `out`: `msg` and, below it, each
/// subcommand's section, from `command` as for [`completions`].
///
/// One page for the whole tool, as git's and cargo's are not: clap_mangen
/// would link `msg-send(1)` pages that nobody installs, and render each
/// `Examples:` block as an "EXTRA" paragraph that roff refills into one
/// line. So the subcommands are listed here with where to read on, and
/// the examples go verbatim (`.nf`) into EXAMPLES sections; EXIT STATUS,
/// ENVIRONMENT and FILES follow, as man-pages(7) orders them.
pub(crate) fn man(command: &clap::Command, out: &mut impl Write) -> io::Result<()> {
    let man = clap_mangen::Man::new(command.clone());
    man.render_title(out)?;
    man.render_name_section(out)?;
    man.render_synopsis_section(out)?;
    man.render_description_section(out)?;
    man.render_options_section(out)?;
    let subs: Vec<&clap::Command> = command
        .get_subcommands()
        .filter(|sub| !sub.is_hide_set())
        .collect();
    writeln!(out, ".SH COMMANDS")?;
    for sub in &subs {
        let name = sub.get_name();
        let about = sub.get_about().map(ToString::to_string).unwrap_or_default();
        writeln!(out, ".TP\n\\fBmsg {}\\fR", roff(name))?;
        writeln!(
            out,
            "{} (see MSG {} below)",
            roff(&about),
            name.to_uppercase()
        )?;
    }
    for sub in &subs {
        let name = sub.get_name();
        writeln!(out, ".SH \"MSG {}\"", name.to_uppercase())?;
        let sub = (*sub).clone().bin_name(format!("msg {name}"));
        let page = clap_mangen::Man::new(sub.clone());
        page.render_synopsis_section(out)?;
        page.render_description_section(out)?;
        page.render_options_section(out)?;
        examples(out, &sub, ".SS EXAMPLES")?;
    }
    examples(out, command, ".SH EXAMPLES")?;
    out.write_all(TRAILER.as_bytes())?;
    man.render_version_section(out)?;
    out.flush()
}

/// What every page of a command-line tool should say, and clap knows
/// nothing of: EXIT STATUS, ENVIRONMENT, FILES, in roff.
const TRAILER: &str = include_str!("man-trailer.roff");

/// `command`'s `Examples:` block (its `after_help`), under `heading`,
/// line for line: roff would otherwise fill the lines into one.
fn examples(out: &mut impl Write, command: &clap::Command, heading: &str) -> io::Result<()> {
    let Some(text) = command.get_after_help().map(ToString::to_string) else {
        return Ok(());
    };
    let body = text.strip_prefix("Examples:\n").unwrap_or(&text);
    writeln!(out, "{heading}\n.nf")?;
    for line in body.lines() {
        writeln!(out, "{}", roff(line))?;
    }
    writeln!(out, ".fi")
}

/// `text` safe inside a roff line: backslashes and hyphens escaped, and a
/// leading `.` or `'` (a request) neutralised.
fn roff(text: &str) -> String {
    let escaped = text.replace('\\', "\\e").replace('-', "\\-");
    if escaped.starts_with('.') || escaped.starts_with('\'') {
        format!("\\&{escaped}")
    } else {
        escaped
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::Cli;
    use clap::CommandFactory;

    #[test]
    fn every_shell_gets_a_script_that_names_the_subcommands() {
        for shell in [
            Shell::Bash,
            Shell::Zsh,
            Shell::Fish,
            Shell::PowerShell,
            Shell::Elvish,
        ] {
            let mut out = Vec::new();
            completions(&CompletionsArgs { shell }, Cli::command(), &mut out).unwrap();
            let script = String::from_utf8(out).unwrap();
            for word in ["listen", "bench", "max-frame"] {
                assert!(script.contains(word), "{shell}: no {word}");
            }
        }
    }

    #[test]
    fn the_man_page_has_every_subcommand_and_flag() {
        let mut out = Vec::new();
        man(&Cli::command(), &mut out).unwrap();
        let page = String::from_utf8(out).unwrap();
        assert!(page.starts_with(".ie") || page.starts_with(".TH"), "roff");
        for needle in [
            ".TH msg 1",
            "MSG SEND",
            "MSG LISTEN",
            "MSG BENCH",
            "MSG KEYGEN",
            "max\\-frame",
            "busy\\-poll",
            ".SH EXAMPLES",
            ".SS EXAMPLES",
            ".SH \"EXIT STATUS\"",
            ".SH ENVIRONMENT",
            "MSG_SECRET",
            ".SH FILES",
            "msg send \\-\\-udp 127.0.0.1:9000 hello world",
        ] {
            assert!(page.contains(needle), "no {needle:?} in the man page");
        }
        // No page is referred to that is not installed, and no example is
        // left to roff's filling under a heading of clap's.
        assert!(!page.contains("msg\\-send(1)"), "a dangling reference");
        assert!(!page.contains(".SH EXTRA"), "examples under EXTRA");
    }
}
