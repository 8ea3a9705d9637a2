//! Certificates, private keys and CAs from PEM files (each a small
//! regular file, a key read as a secret is), and the system's roots.

use std::path::Path;

use rustls::RootCertStore;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tracing::warn;

use super::{MAX_CERT_FILE, MAX_KEY_FILE, TlsError};
use crate::private_file::OthersWrite;

/// The system's root certificates.
pub(super) fn system_roots() -> Result<RootCertStore, TlsError> {
    let found = rustls_native_certs::load_native_certs();
    let mut roots = RootCertStore::empty();
    roots.add_parsable_certificates(found.certs);
    if roots.is_empty() {
        let errors: Vec<String> = found.errors.iter().map(ToString::to_string).collect();
        return Err(TlsError::NoSystemRoots(errors.join("; ")));
    }
    Ok(roots)
}

/// The CAs in a PEM file, as roots.
pub(super) fn read_roots(path: &Path) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    let (added, ignored) = roots.add_parsable_certificates(read_certs(path, "CA")?);
    if added == 0 {
        return Err(TlsError::BadCa {
            path: path.to_owned(),
            reason: format!("none of its {ignored} certificates can be a root"),
        });
    }
    Ok(roots)
}

/// The certificates in a PEM file, in order.
pub(super) fn read_certs(
    path: &Path,
    what: &'static str,
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let (bytes, _) = read_small(path, what, MAX_CERT_FILE)?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| TlsError::BadPem {
            what,
            path: path.to_owned(),
            reason: err.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsError::NoPem {
            what,
            path: path.to_owned(),
            expected: "certificate",
        });
    }
    Ok(certs)
}

/// A private key from a PEM file, read as a secret is: a small regular
/// file, refused when others may write it, with a warning when others may
/// read it, as ssh gives.
pub(super) fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let what = "key";
    let (bytes, meta) = read_small(path, what, MAX_KEY_FILE)?;
    if let Some(mode) = crate::private_file::readable_mode(&meta) {
        warn!(
            "the key file {} is readable by others (mode {mode:03o}); chmod 600 it",
            crate::text::path_text(path)
        );
    }
    let key = PrivateKeyDer::from_pem_slice(&bytes).map_err(|err| match err {
        // PKCS#8's encrypted form, or OpenSSL's older one: rustls reads
        // neither, and "no private key" would send the user looking for
        // the wrong thing.
        rustls::pki_types::pem::Error::NoItemsFound
            if bytes.windows(9).any(|w| w == b"ENCRYPTED") =>
        {
            TlsError::EncryptedKey(path.to_owned())
        }
        rustls::pki_types::pem::Error::NoItemsFound => TlsError::NoPem {
            what,
            path: path.to_owned(),
            expected: "private key",
        },
        err => TlsError::BadPem {
            what,
            path: path.to_owned(),
            reason: err.to_string(),
        },
    })?;
    // Loaded once here, as the certificate's would be, so that a key of a
    // kind or size TLS does not sign with (RSA under 2048 bits, DSA, an
    // unnamed curve) is named with its file and what is taken, not as
    // rustls's "unexpected error" once paired with the certificate.
    let provider = super::config::provider();
    if provider
        .key_provider
        .load_private_key(key.clone_key())
        .is_err()
    {
        return Err(TlsError::UnusableKey(path.to_owned()));
    }
    Ok(key)
}

/// A regular file of at most `max` bytes, whole, and what it is.
///
/// Opened once, without waiting for a writer, and examined through the
/// descriptor: a FIFO put in its place after a look by path would have
/// hung msg in `open` (audit, round four). A file that anyone but this
/// user (and root) may change is refused, as a secret file is: a key, a
/// certificate or a CA file decides whom this end trusts or is.
fn read_small(
    path: &Path,
    what: &'static str,
    max: u64,
) -> Result<(Vec<u8>, std::fs::Metadata), TlsError> {
    use std::io::Read;
    let read = |source| TlsError::Read {
        what,
        path: path.to_owned(),
        source,
    };
    let file = crate::private_file::open_nonblocking(path).map_err(read)?;
    let meta = file.metadata().map_err(read)?;
    if !meta.is_file() {
        return Err(TlsError::NotRegular {
            what,
            path: path.to_owned(),
            kind: crate::private_file::file_kind(&meta),
        });
    }
    let too_large = |len| TlsError::TooLarge {
        what,
        path: path.to_owned(),
        len,
        max,
    };
    if meta.len() > max {
        return Err(too_large(meta.len()));
    }
    match crate::private_file::who_else_writes(&meta) {
        Some(OthersWrite::Owner { uid, us }) => {
            return Err(TlsError::NotOwned {
                what,
                path: path.to_owned(),
                uid,
                us,
            });
        }
        Some(OthersWrite::Mode(mode)) => {
            return Err(TlsError::Writable {
                what,
                path: path.to_owned(),
                mode,
            });
        }
        None => {}
    }
    if let Some(dir) = crate::private_file::who_else_replaces(path) {
        return Err(TlsError::OpenDir {
            what,
            path: path.to_owned(),
            dir: dir.to_string(),
        });
    }
    let mut bytes = Vec::new();
    file.take(max + 1).read_to_end(&mut bytes).map_err(read)?;
    if bytes.len() as u64 > max {
        return Err(too_large(bytes.len() as u64));
    }
    Ok((bytes, meta))
}
