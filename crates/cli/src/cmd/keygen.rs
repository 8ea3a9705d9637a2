//! `msg keygen [FILE]`: a new shared secret, as text that survives a
//! shell (`$(cat FILE)` drops NUL bytes, which raw random bytes hold one
//! time in eight).

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;

/// Options of `msg keygen`.
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  msg keygen ~/.msg-secret                         # a new secret, mode 0600; never overwrites
  msg listen --tcp --secret-file ~/.msg-secret
  MSG_SECRET=$(cat ~/.msg-secret) msg send --tcp 127.0.0.1:9000 hi
  msg keygen                                       # print one instead")]
pub(crate) struct KeygenArgs {
    /// Write the secret to this new file, readable by its owner only
    /// (mode 0600); an existing file is an error, never overwritten.
    /// Without it the secret goes to stdout
    #[arg(value_name = "FILE")]
    file: Option<PathBuf>,
}

/// Makes the secret and writes it to the file, or to stdout.
pub(crate) fn run(args: &KeygenArgs) -> anyhow::Result<()> {
    let secret = msg_net::secret::new_secret();
    match &args.file {
        // Its text says why already (the OS's error); as a chain the
        // cause would be said twice.
        Some(path) => msg_net::secret::create_secret_file(path, &secret)
            .map_err(|err| anyhow::anyhow!("{err}"))?,
        None => {
            let mut out = crate::output::stdout();
            out.write_all(secret.as_bytes())
                .and_then(|()| out.flush())
                .context("cannot write to stdout")?;
        }
    }
    Ok(())
}
