//! Making a new secret: [`new_secret`], and [`create_secret_file`], which
//! writes it where only its owner may read it.

use std::io;
use std::path::Path;

use super::SecretFileError;

/// How many random bytes a new secret holds: as many as the keys HKDF
/// derives from it.
pub const NEW_SECRET_BYTES: usize = 32;

/// A new secret: [`NEW_SECRET_BYTES`] random bytes from the operating
/// system's generator, as lower-case hex, and a newline.
///
/// Text, because raw bytes do not survive a shell: `$(cat file)` drops
/// NUL bytes and trailing newlines, so one random key in eight came out
/// shorter than the file. The hex text itself is the secret, not decoded,
/// as every secret is its bytes: a file read with [`read_secret_file`](super::read_secret_file) or
/// an environment variable then gives the same 64 bytes.
#[must_use]
pub fn new_secret() -> String {
    use std::fmt::Write;
    let bytes: [u8; NEW_SECRET_BYTES] = crate::auth::random();
    let mut text = String::with_capacity(2 * NEW_SECRET_BYTES + 1);
    for byte in bytes {
        let _ = write!(text, "{byte:02x}");
    }
    text.push('\n');
    text
}

/// Writes `secret` to a new file at `path`, readable and writable by its
/// owner only (mode 0600, whatever the umask); an existing file is left
/// as it is.
///
/// # Errors
///
/// [`SecretFileError::Exists`] when `path` exists (even as a dangling
/// symlink), [`SecretFileError::Write`] when it cannot be written (a
/// partly written file is removed).
pub fn create_secret_file(path: &Path, secret: &str) -> Result<(), SecretFileError> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        // Never readable by others, not even between create and chmod.
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(|source| {
        if source.kind() == io::ErrorKind::AlreadyExists {
            SecretFileError::Exists {
                path: path.to_owned(),
            }
        } else {
            SecretFileError::Write {
                path: path.to_owned(),
                source,
            }
        }
    })?;
    let written = (|| {
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            // The umask may have taken bits from 0600; the owner needs both.
            file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        }
        file.write_all(secret.as_bytes())?;
        file.sync_all()
    })();
    written.map_err(|source| {
        let _ = std::fs::remove_file(path);
        SecretFileError::Write {
            path: path.to_owned(),
            source,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_secret_is_64_lower_case_hex_digits_and_a_newline() {
        let secret = new_secret();
        let hex = secret.strip_suffix('\n').unwrap();
        assert_eq!(hex.len(), 2 * NEW_SECRET_BYTES, "{secret:?}");
        assert!(
            hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')),
            "{secret:?}"
        );
        assert_ne!(new_secret(), secret);
    }
}
