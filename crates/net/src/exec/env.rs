//! The environment a command starts with: never the listener's own, which
//! may hold secrets (the shared one among them), but a few variables that
//! say where programs are and whose and which language this is, and those
//! the caller names.

use std::ffi::OsString;

/// What every command's environment holds, as the listener has them.
pub const BASE_ENV: [&str; 5] = ["PATH", "HOME", "USER", "LOGNAME", "LANG"];

/// Why a variable cannot be passed on.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EnvError {
    /// The variable that holds the shared secret: any command could send
    /// it to its client.
    #[error(
        "{0}: the secret is never passed to commands (any command could send it to its client)"
    )]
    Secret(String),
    /// Empty, or with `=` or NUL in it.
    #[error("expected a variable's name, got {0:?}")]
    NotAName(String),
}

/// [`BASE_ENV`] and `names`, with the values the listener has (a variable
/// it does not have is not set); `secret` is the variable that holds the
/// shared secret, which is refused.
///
/// # Errors
///
/// [`EnvError`] for the secret's variable or what is not a name.
pub fn environment(names: &[String], secret: &str) -> Result<Vec<(OsString, OsString)>, EnvError> {
    let mut all: Vec<&str> = BASE_ENV.to_vec();
    for name in names {
        if name == secret {
            return Err(EnvError::Secret(name.clone()));
        }
        if name.is_empty() || name.contains(['=', '\0']) {
            return Err(EnvError::NotAName(name.clone()));
        }
        if !all.contains(&name.as_str()) {
            all.push(name);
        }
    }
    Ok(all
        .into_iter()
        .filter_map(|name| Some((OsString::from(name), std::env::var_os(name)?)))
        .collect())
}

/// The directory commands start in: `dir`, absolute (a command that
/// changes directory must not change what the next one starts in), and
/// checked at start to be a directory, not at the first command.
///
/// # Errors
///
/// The operating system's; `NotADirectory` for anything else there.
pub fn work_dir(dir: &std::path::Path) -> std::io::Result<std::path::PathBuf> {
    let absolute = dir.canonicalize()?;
    if !absolute.is_dir() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::NotADirectory,
            "not a directory",
        ));
    }
    Ok(absolute)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked_and_the_secret_refused() {
        let names = |n: &[&str]| n.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert_eq!(
            environment(&names(&["MSG_SECRET"]), "MSG_SECRET"),
            Err(EnvError::Secret("MSG_SECRET".into()))
        );
        for bad in ["", "A=B", "A\0"] {
            assert!(matches!(
                environment(&names(&[bad]), "MSG_SECRET"),
                Err(EnvError::NotAName(_))
            ));
        }
        // PATH is there on any machine this runs on, once, asked or not.
        let env = environment(&names(&["PATH", "NOT_SET_ANYWHERE_1234"]), "S").unwrap();
        assert_eq!(env.iter().filter(|(k, _)| k == "PATH").count(), 1);
        assert!(!env.iter().any(|(k, _)| k == "NOT_SET_ANYWHERE_1234"));
    }
}
