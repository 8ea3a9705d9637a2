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
pub(crate) fn completions(
    args: &CompletionsArgs,
    mut command: clap::Command,
    out: &mut impl Write,
) -> io::Result<()> {
    clap_complete::generate(args.shell, &mut command, "msg", out);
    out.flush()
}

/// Writes the man page, in roff, to `out`: `msg` and, below it, each
/// subcommand's section, from `command` as for [`completions`].
pub(crate) fn man(command: &clap::Command, out: &mut impl Write) -> io::Result<()> {
    let man = clap_mangen::Man::new(command.clone());
    man.render_title(out)?;
    man.render_name_section(out)?;
    man.render_synopsis_section(out)?;
    man.render_description_section(out)?;
    man.render_options_section(out)?;
    man.render_subcommands_section(out)?;
    for sub in command.get_subcommands().filter(|sub| !sub.is_hide_set()) {
        let name = sub.get_name();
        writeln!(out, ".SH \"MSG {}\"", name.to_uppercase())?;
        let sub = sub.clone().bin_name(format!("msg {name}"));
        let page = clap_mangen::Man::new(sub);
        page.render_synopsis_section(out)?;
        page.render_description_section(out)?;
        page.render_options_section(out)?;
        page.render_extra_section(out)?;
    }
    man.render_extra_section(out)?;
    man.render_version_section(out)?;
    out.flush()
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
        ] {
            assert!(page.contains(needle), "no {needle:?} in the man page");
        }
    }
}
