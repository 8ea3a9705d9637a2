//! TLS on every stream transport: a listener's certificate (from PEM
//! files, or self-signed at start), how a client verifies it (the
//! system's roots, a CA file, a pinned fingerprint, or not at all), a
//! client's certificate for mutual TLS, and each side's handshake within a
//! timeout.
//!
//! TLS is a layer, not a transport: the session runs over any kind of
//! stream (`stream.rs` wraps a TCP, Unix or seqpacket stream in it right
//! after connecting or accepting), and msg's frames, the secret's
//! handshake, files and commands run over the session unchanged. rustls
//! with its default provider (aws-lc-rs) does the cryptography.
//!
//! What TLS adds to a secret, and what it does not, is in docs/auth.md.
//!
//! - A listener with [`Identity::SelfSigned`] makes a new key and
//!   certificate at every start; a client cannot know it in advance, so it
//!   pins its [`Fingerprint`] (SHA-256 of the certificate, as `openssl x509
//!   -fingerprint -sha256` prints it), as ssh pins a host key.
//! - Every certificate error names what is wrong (expired, for another
//!   name, from an unknown CA, another fingerprint) and the fingerprint the
//!   peer presented.
//! - A private key is read as a secret is (a small regular file, a warning
//!   when others may read it), never from a command line.
//!
//! # Where things live
//!
//! - `config.rs`: [`TlsServer`] and [`TlsClient`], what a listener and a
//!   client are told ([`ServerOptions`], [`ClientOptions`]), rustls's
//!   configuration made from it, and each side's handshake.
//! - `verify.rs`: how a client checks a listener's certificate (webpki
//!   explained, or a pinned [`Fingerprint`]), and a failed handshake told
//!   as [`TlsError`].
//! - `problem.rs`: a refused certificate in words: [`CertProblem`], and
//!   [`ClientRefused`], a listener's refusal of this client's.
//! - `fingerprint.rs`: [`Fingerprint`], what is pinned.
//! - `files.rs`: certificates, keys and CAs read from PEM files, and the
//!   system's roots.

use std::fmt;
use std::io;
use std::path::PathBuf;
use std::time::Duration;

use msg_tcp::PeerAddr;
pub use msg_tcp::tls::TlsRecord;

mod config;
mod files;
mod fingerprint;
mod problem;
mod verify;

pub use config::{ClientOptions, Identity, ServerOptions, TlsClient, TlsServer, Verify};
pub use fingerprint::Fingerprint;
pub(crate) use problem::alert_received;
pub(crate) use problem::alert_refusal;
pub(crate) use problem::name_text;
pub use problem::{CertProblem, ClientRefused, client_refused};

/// The largest private key file msg reads: an 8192-bit RSA key in PEM is
/// under 7 KiB.
pub const MAX_KEY_FILE: u64 = 64 * 1024;

/// The largest certificate or CA file msg reads: a whole system bundle is
/// about 200 KiB.
pub const MAX_CERT_FILE: u64 = 4 * 1024 * 1024;

/// How long a TLS handshake may take unless told otherwise: as long as
/// the secret's.
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = crate::auth::DEFAULT_HANDSHAKE_TIMEOUT;

/// How much plaintext a session takes in one write, sealed into records
/// that wait for the socket (rustls's default is 64 KiB): room for a
/// 64 KiB message with its frame's 32-byte head, so that all its records
/// leave in one system call, not 64 KiB and then a record of 32 bytes in
/// a second; a file's 1 MiB chunk in 8 writes rather than 16. It is also
/// what a session holds sealed but unsent for a peer that does not read,
/// so twice the default and no more.
pub const SEND_BUFFER: usize = 128 * 1024;

/// The name a client checks when it has no host name to check: a Unix
/// socket's peer, or a listener reached by address whose certificate
/// names `localhost`.
pub const LOCAL_NAME: &str = "localhost";

/// What went wrong with TLS: setting it up (files, keys, roots) or a
/// handshake.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// A certificate, key or CA file could not be read.
    #[error("cannot read the {what} file {}: {source}", crate::text::path_text(.path))]
    Read {
        /// Which file: "certificate", "key", "CA".
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// Another user owns it (neither this one nor root): whoever owns a
    /// key, a certificate or a CA file decides whom a peer is trusted as.
    #[error(
        "the {what} file {} belongs to uid {uid}: it must be this user's (uid {us}) or root's, \
         since whoever may change it decides whom this end trusts or is",
        crate::text::path_text(.path)
    )]
    NotOwned {
        /// Which file.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// Its owner.
        uid: u32,
        /// This process's effective user.
        us: u32,
    },
    /// Group or others may write it.
    #[error(
        "the {what} file {} may be written by others (mode {mode:03o}), who would decide whom \
         this end trusts or is; chmod go-w it",
        crate::text::path_text(.path)
    )]
    Writable {
        /// Which file.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// A directory on its way that others could change: they could put
    /// another file in its place.
    #[error(
        "the {what} file {} is in a folder others could change: {dir}, who could put another \
         file in its place; chmod go-w that folder (or keep the file elsewhere)",
        crate::text::path_text(.path)
    )]
    OpenDir {
        /// Which file.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The directory, and who else could change it (`/srv/keys may
        /// be written by others (mode 777)`).
        dir: String,
    },
    /// It is not a regular file.
    #[error("the {what} file {} is not a regular file ({kind})", crate::text::path_text(.path))]
    NotRegular {
        /// Which file.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// What it is.
        kind: &'static str,
    },
    /// It is larger than such a file can be.
    #[error("the {what} file {} is {len} bytes; it may be at most {max}", crate::text::path_text(.path))]
    TooLarge {
        /// Which file.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// Its size.
        len: u64,
        /// The limit.
        max: u64,
    },
    /// It holds nothing of what it should, in PEM.
    #[error("the {what} file {} holds no PEM {expected}", crate::text::path_text(.path))]
    NoPem {
        /// Which file.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// What was looked for: "certificate", "private key".
        expected: &'static str,
    },
    /// It holds a private key encrypted with a passphrase, which msg does
    /// not ask for.
    #[error(
        "the key file {} holds an encrypted private key; msg reads an unencrypted one (openssl \
         pkey -in KEY -out PLAIN.key makes one; keep it owner-only)",
        crate::text::path_text(.0)
    )]
    EncryptedKey(PathBuf),
    /// It holds a private key of a kind or size TLS here does not sign
    /// with.
    #[error(
        "the key file {} holds a private key TLS cannot sign with here: it takes RSA of at least \
         2048 bits, ECDSA on P-256, P-384 or P-521, or Ed25519 (openssl genpkey -algorithm \
         ed25519 -out KEY makes one)",
        crate::text::path_text(.0)
    )]
    UnusableKey(PathBuf),
    /// Its PEM does not parse.
    #[error("the {what} file {} is not valid PEM: {reason}", crate::text::path_text(.path))]
    BadPem {
        /// Which file.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The parser's words.
        reason: String,
    },
    /// rustls refused the certificate and key (they do not go together,
    /// say, or the key's kind is not supported).
    #[error("cannot use the certificate and key: {0}")]
    Identity(rustls::Error),
    /// rustls refused the certificate and key files given: the files, and
    /// why in this end's words (rustls says "invalid peer certificate" of
    /// our own; audit, round six).
    #[error(
        "cannot use the certificate {} with the key {}: {reason}",
        crate::text::path_text(.cert),
        crate::text::path_text(.key)
    )]
    Pair {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A CA file whose certificates rustls cannot use as roots.
    #[error("cannot use the CAs in {}: {reason}", crate::text::path_text(.path))]
    BadCa {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The self-signed certificate could not be made.
    #[error("cannot make a self-signed certificate: {0}")]
    SelfSigned(#[from] rcgen::Error),
    /// The system has no root certificates msg can find.
    #[error("no system root certificates found{}", if .0.is_empty() { String::new() } else { format!(" ({})", .0) })]
    NoSystemRoots(String),
    /// A fingerprint that is not 32 bytes in hex.
    #[error("expected a SHA-256 fingerprint, 64 hex digits (AB:CD:... or abcd...), got '{0}'")]
    BadFingerprint(String),
    /// A server name that is neither a DNS name nor an IP address (shown
    /// escaped: control characters in it reached the terminal; audit,
    /// round six).
    #[error(
        "'{}' is not a host name or an IP address a certificate can name",
        crate::text::printable(.0.as_bytes())
    )]
    BadName(String),
    /// The handshake did not complete in time.
    #[error("no TLS handshake within {}", humantime::format_duration(*.0))]
    Timeout(Duration),
    /// The peer closed the connection during the handshake.
    #[error("the {0} closed the connection during the TLS handshake")]
    Closed(Peer),
    /// What the peer sent is no TLS.
    #[error("the {0} does not speak TLS (what it sent is no TLS record)")]
    NotTls(Peer),
    /// The peer's certificate was refused.
    #[error("{problem}; the certificate it presented has sha256 fingerprint {fingerprint}")]
    Certificate {
        /// What is wrong with it.
        problem: CertProblem,
        /// The fingerprint of the certificate it presented.
        fingerprint: Fingerprint,
    },
    /// A client gave no certificate to a listener that serves only clients
    /// with one (mutual TLS).
    #[error(
        "the client presented no certificate, and this listener serves only clients with one \
         signed by a CA it trusts (mutual TLS)"
    )]
    NoClientCertificate,
    /// A listener refused a client's certificate (mutual TLS).
    #[error("{0}: the client is refused (mutual TLS)")]
    ClientCertificate(CertProblem),
    /// The peer refused the handshake, with this alert.
    #[error("the peer refused the TLS handshake: {0}")]
    Refused(String),
    /// A transport that is always encrypted (a benchmark's `tls`), given
    /// no TLS settings.
    #[error("{0} needs TLS settings: a certificate to serve, a way to check one to connect")]
    Needed(crate::Transport),
    /// Any other failure of the handshake.
    #[error("TLS handshake failed: {0}")]
    Handshake(String),
}

/// Who the other end of a handshake is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Peer {
    /// A listener: we are the client.
    Listener,
    /// A client: we are the listener.
    Client,
}

impl fmt::Display for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Listener => "listener",
            Self::Client => "client",
        })
    }
}

/// The host a client checks the certificate for, from `HOST:PORT` as a
/// user wrote it: the host without brackets.
pub fn host_of(addr: &str) -> &str {
    let host = addr.rsplit_once(':').map_or(addr, |(host, _)| host);
    host.trim_start_matches('[').trim_end_matches(']')
}

/// The name a client checks the certificate for: the one `asked` for, or
/// else the host in `addr` over an IP transport; none for a Unix socket's
/// path, whose listener's certificate is checked for [`LOCAL_NAME`].
pub fn server_name(asked: Option<&str>, transport: crate::Transport, addr: &str) -> Option<String> {
    match asked {
        Some(name) => Some(name.to_owned()),
        None if transport.is_inet() => Some(host_of(addr).to_owned()),
        None => None,
    }
}

/// The names a self-signed certificate holds for a listener on `addr`:
/// `localhost`, loopback's addresses and the address itself (unless it is
/// unspecified, `0.0.0.0`, which names no host).
pub fn self_signed_names(addr: &PeerAddr) -> Vec<String> {
    let mut names = vec![
        LOCAL_NAME.to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ];
    if let Some(ip) = addr.inet().map(|a| a.ip()) {
        if !ip.is_unspecified() && !ip.is_loopback() {
            names.push(ip.to_string());
        }
    }
    names
}

/// A listener's TLS with a new self-signed certificate for [`LOCAL_NAME`],
/// and a client's that pins it, each handshake within `timeout`: both
/// ends in one process (a benchmark's built-in listeners, tests), where
/// no CA has anything to say.
///
/// # Errors
///
/// [`TlsError::SelfSigned`] when the certificate cannot be made.
pub fn pinned_pair(timeout: Duration) -> Result<(TlsServer, TlsClient), TlsError> {
    let server = TlsServer::new(&ServerOptions {
        identity: Identity::SelfSigned {
            names: vec![LOCAL_NAME.to_owned()],
        },
        client_ca: None,
        handshake_timeout: timeout,
    })?;
    let client = TlsClient::new(&ClientOptions {
        verify: Verify::Fingerprint(server.fingerprint()),
        server_name: None,
        identity: None,
        handshake_timeout: timeout,
    })?;
    Ok((server, client))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_host_of_an_address_is_checked_without_brackets() {
        assert_eq!(host_of("example.com:443"), "example.com");
        assert_eq!(host_of("[::1]:9000"), "::1");
        assert_eq!(host_of("127.0.0.1:1"), "127.0.0.1");
    }
}
