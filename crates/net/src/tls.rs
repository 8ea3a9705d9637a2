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

use std::fmt;
use std::io;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

pub use msg_tcp::tls::TlsRecord;
use msg_tcp::{PeerAddr, Stream};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, OtherError, RootCertStore, SignatureScheme};
use sha2::{Digest, Sha256};
use tokio_rustls::{TlsAcceptor, TlsConnector, TlsStream};
use tracing::warn;

/// The largest private key file msg reads: an 8192-bit RSA key in PEM is
/// under 7 KiB.
pub const MAX_KEY_FILE: u64 = 64 * 1024;

/// The largest certificate or CA file msg reads: a whole system bundle is
/// about 200 KiB.
pub const MAX_CERT_FILE: u64 = 4 * 1024 * 1024;

/// How long a TLS handshake may take unless told otherwise: as long as
/// the secret's.
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = crate::auth::DEFAULT_HANDSHAKE_TIMEOUT;

/// The name a client checks when it has no host name to check: a Unix
/// socket's peer, or a listener reached by address whose certificate
/// names `localhost`.
pub const LOCAL_NAME: &str = "localhost";

/// The SHA-256 of a certificate (its DER bytes): what a client pins.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint([u8; 32]);

impl Fingerprint {
    /// The fingerprint of a certificate.
    pub fn of(der: &[u8]) -> Self {
        Self(Sha256::digest(der).into())
    }

    /// Whether two fingerprints are the same, comparing every byte
    /// whatever differs first, so that the time taken tells an attacker
    /// nothing about how much of a forged one is right.
    pub fn matches(&self, other: &Self) -> bool {
        let diff = self
            .0
            .iter()
            .zip(other.0.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b));
        std::hint::black_box(diff) == 0
    }
}

/// `AB:CD:...`, 32 upper-case hex pairs, as `openssl x509 -fingerprint
/// -sha256` prints it.
impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (n, byte) in self.0.iter().enumerate() {
            if n > 0 {
                f.write_str(":")?;
            }
            write!(f, "{byte:02X}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({self})")
    }
}

/// 64 hex digits, in either case, with or without `:` between pairs, and
/// with or without a `sha256:` (or openssl's `sha256 Fingerprint=`) in
/// front.
impl std::str::FromStr for Fingerprint {
    type Err = TlsError;

    fn from_str(text: &str) -> Result<Self, TlsError> {
        let bad = || TlsError::BadFingerprint(text.to_owned());
        let trimmed = text.trim();
        let lower = trimmed.to_ascii_lowercase();
        let hex = ["sha256 fingerprint=", "sha256:", "sha256="]
            .iter()
            .find_map(|prefix| lower.strip_prefix(prefix))
            .unwrap_or(&lower);
        let digits: Vec<u8> = hex.bytes().filter(|&b| b != b':').collect();
        if digits.len() != 64 {
            return Err(bad());
        }
        let mut bytes = [0u8; 32];
        for (byte, pair) in bytes.iter_mut().zip(digits.chunks(2)) {
            let pair = std::str::from_utf8(pair).map_err(|_| bad())?;
            *byte = u8::from_str_radix(pair, 16).map_err(|_| bad())?;
        }
        Ok(Self(bytes))
    }
}

/// What went wrong with TLS: setting it up (files, keys, roots) or a
/// handshake.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// A certificate, key or CA file could not be read.
    #[error("cannot read the {what} file {}: {source}", .path.display())]
    Read {
        /// Which file: "certificate", "key", "CA".
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// It is not a regular file.
    #[error("the {what} file {} is not a regular file ({kind})", .path.display())]
    NotRegular {
        /// Which file.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// What it is.
        kind: &'static str,
    },
    /// It is larger than such a file can be.
    #[error("the {what} file {} is {len} bytes; it may be at most {max}", .path.display())]
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
    #[error("the {what} file {} holds no PEM {expected}", .path.display())]
    NoPem {
        /// Which file.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// What was looked for: "certificate", "private key".
        expected: &'static str,
    },
    /// Its PEM does not parse.
    #[error("the {what} file {} is not valid PEM: {reason}", .path.display())]
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
    /// A CA file whose certificates rustls cannot use as roots.
    #[error("cannot use the CAs in {}: {reason}", .path.display())]
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
    /// A server name that is neither a DNS name nor an IP address.
    #[error("'{0}' is not a host name or an IP address a certificate can name")]
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

/// What is wrong with a peer's certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CertProblem {
    /// It expired.
    Expired {
        /// When (seconds since the epoch), if known.
        not_after: Option<u64>,
    },
    /// It is not valid yet.
    NotValidYet {
        /// From when, if known.
        not_before: Option<u64>,
    },
    /// It is for other names.
    WrongName {
        /// The name we checked.
        expected: String,
        /// The names it holds, if known.
        presented: Vec<String>,
    },
    /// No CA we trust signed it (it may be self-signed).
    UnknownIssuer,
    /// Its SHA-256 is not the one pinned.
    FingerprintMismatch {
        /// The pinned one.
        expected: Fingerprint,
    },
    /// Anything else webpki says.
    Other(String),
}

impl fmt::Display for CertProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let when = |secs: &Option<u64>| {
            secs.map(|s| {
                let time = std::time::UNIX_EPOCH + Duration::from_secs(s);
                format!(" on {}", humantime::format_rfc3339_seconds(time))
            })
            .unwrap_or_default()
        };
        match self {
            Self::Expired { not_after } => {
                write!(f, "the peer's certificate expired{}", when(not_after))
            }
            Self::NotValidYet { not_before } => write!(
                f,
                "the peer's certificate is not valid yet (from{})",
                when(not_before)
            ),
            Self::WrongName {
                expected,
                presented,
            } if presented.is_empty() => {
                write!(f, "the peer's certificate is not valid for {expected}")
            }
            Self::WrongName {
                expected,
                presented,
            } => write!(
                f,
                "the peer's certificate is not valid for {expected}; it names {}",
                presented.join(", ")
            ),
            Self::UnknownIssuer => f.write_str(
                "the peer's certificate is not signed by a CA this end trusts (a self-signed one?)",
            ),
            Self::FingerprintMismatch { expected } => write!(
                f,
                "the peer's certificate is not the one pinned (sha256 {expected})"
            ),
            Self::Other(text) => write!(f, "the peer's certificate was refused: {text}"),
        }
    }
}

/// The certificate a listener presents.
#[derive(Debug, Clone)]
pub enum Identity {
    /// A certificate chain and its private key, in PEM files.
    Files {
        /// The chain, the listener's own certificate first.
        cert: PathBuf,
        /// The private key.
        key: PathBuf,
    },
    /// A new key and self-signed certificate for these names (host names
    /// and IP addresses), made at start.
    SelfSigned {
        /// The names.
        names: Vec<String>,
    },
}

/// A listener's TLS.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// Its certificate.
    pub identity: Identity,
    /// Mutual TLS: every client must present a certificate signed by a
    /// CA in this PEM file.
    pub client_ca: Option<PathBuf>,
    /// How long a handshake may take.
    pub handshake_timeout: Duration,
}

/// A listener's TLS, ready to accept with.
#[derive(Clone)]
pub struct TlsServer {
    acceptor: TlsAcceptor,
    /// The same configuration, for QUIC's handshake (`quic.rs`).
    config: Arc<rustls::ServerConfig>,
    fingerprint: Fingerprint,
    timeout: Duration,
}

impl fmt::Debug for TlsServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsServer")
            .field("fingerprint", &self.fingerprint)
            .finish_non_exhaustive()
    }
}

/// The crypto provider: rustls's default, aws-lc-rs.
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

impl TlsServer {
    /// Reads or makes the certificate and key, and the client CAs.
    ///
    /// # Errors
    ///
    /// [`TlsError`] naming the file and what is wrong with it.
    pub fn new(options: &ServerOptions) -> Result<Self, TlsError> {
        let (chain, key) = match &options.identity {
            Identity::Files { cert, key } => (read_certs(cert, "certificate")?, read_key(key)?),
            Identity::SelfSigned { names } => {
                let made = rcgen::generate_simple_self_signed(names.clone())?;
                let key = PrivateKeyDer::try_from(made.signing_key.serialize_der())
                    .map_err(|err| TlsError::Handshake(err.to_owned()))?;
                (vec![made.cert.der().clone()], key)
            }
        };
        let fingerprint = Fingerprint::of(&chain[0]);
        let builder = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(TlsError::Identity)?;
        let builder = match &options.client_ca {
            Some(path) => {
                let roots = read_roots(path)?;
                let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                    Arc::new(roots),
                    provider(),
                )
                .build()
                .map_err(|err| TlsError::BadCa {
                    path: path.clone(),
                    reason: err.to_string(),
                })?;
                builder.with_client_cert_verifier(verifier)
            }
            None => builder.with_no_client_auth(),
        };
        let config = builder
            .with_single_cert(chain, key)
            .map_err(TlsError::Identity)?;
        let config = Arc::new(config);
        Ok(Self {
            acceptor: TlsAcceptor::from(Arc::clone(&config)),
            config,
            fingerprint,
            timeout: options.handshake_timeout,
        })
    }

    /// How long a handshake may take.
    pub fn handshake_timeout(&self) -> Duration {
        self.timeout
    }

    /// The rustls configuration TLS over a stream uses, for QUIC to
    /// derive its own from.
    pub fn rustls_config(&self) -> &rustls::ServerConfig {
        &self.config
    }

    /// The SHA-256 fingerprint of its certificate, for clients to pin.
    pub fn fingerprint(&self) -> Fingerprint {
        self.fingerprint
    }

    /// The server's side of the handshake over `stream`, within the
    /// timeout.
    pub(crate) async fn accept<S: Stream>(&self, stream: S) -> Result<TlsStream<S>, TlsError> {
        let accept = self.acceptor.accept(stream);
        match tokio::time::timeout(self.timeout, accept).await {
            Ok(Ok(stream)) => Ok(TlsStream::Server(stream)),
            Ok(Err(err)) => Err(handshake_error(&err, Peer::Client)),
            Err(_) => Err(TlsError::Timeout(self.timeout)),
        }
    }
}

/// How a client checks the listener's certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verify {
    /// Signed by a CA among the system's roots, for the name.
    System,
    /// Signed by a CA in this PEM file, for the name.
    Ca(PathBuf),
    /// Exactly this certificate, whatever it names and whenever it
    /// expires, as ssh pins a host key.
    Fingerprint(Fingerprint),
    /// Not at all: anyone on the path can read and change everything.
    /// Logs a warning at every handshake.
    Insecure,
}

/// A client's TLS.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// How to check the listener's certificate.
    pub verify: Verify,
    /// The name the certificate must hold (a host name or an IP address);
    /// `None`: the address connected to, or [`LOCAL_NAME`] for a Unix
    /// socket.
    pub server_name: Option<String>,
    /// Mutual TLS: the certificate (a PEM chain) and key to present.
    pub identity: Option<(PathBuf, PathBuf)>,
    /// How long a handshake may take.
    pub handshake_timeout: Duration,
}

/// A client's TLS, ready to connect with.
#[derive(Clone)]
pub struct TlsClient {
    connector: TlsConnector,
    /// The same configuration, for QUIC's handshake (`quic.rs`).
    config: Arc<rustls::ClientConfig>,
    server_name: Option<ServerName<'static>>,
    timeout: Duration,
}

impl fmt::Debug for TlsClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsClient")
            .field("server_name", &self.server_name)
            .finish_non_exhaustive()
    }
}

impl TlsClient {
    /// Reads the roots (the system's or a CA file) and the client
    /// certificate.
    ///
    /// # Errors
    ///
    /// [`TlsError`] naming the file and what is wrong with it.
    pub fn new(options: &ClientOptions) -> Result<Self, TlsError> {
        let provider = provider();
        let algorithms = provider.signature_verification_algorithms;
        let verifier: Arc<dyn ServerCertVerifier> = match &options.verify {
            Verify::System => Arc::new(Explained::new(system_roots()?, &provider)?),
            Verify::Ca(path) => Arc::new(Explained::new(read_roots(path)?, &provider)?),
            Verify::Fingerprint(pinned) => Arc::new(Pinned {
                pinned: Some(*pinned),
                algorithms,
            }),
            Verify::Insecure => Arc::new(Pinned {
                pinned: None,
                algorithms,
            }),
        };
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(TlsError::Identity)?
            .dangerous()
            .with_custom_certificate_verifier(verifier);
        let config = match &options.identity {
            Some((cert, key)) => builder
                .with_client_auth_cert(read_certs(cert, "client certificate")?, read_key(key)?)
                .map_err(TlsError::Identity)?,
            None => builder.with_no_client_auth(),
        };
        let server_name = options
            .server_name
            .as_deref()
            .map(|name| {
                ServerName::try_from(name.trim_start_matches('[').trim_end_matches(']'))
                    .map(|name| name.to_owned())
                    .map_err(|_| TlsError::BadName(name.to_owned()))
            })
            .transpose()?;
        let config = Arc::new(config);
        Ok(Self {
            connector: TlsConnector::from(Arc::clone(&config)),
            config,
            server_name,
            timeout: options.handshake_timeout,
        })
    }

    /// The client's side of the handshake over `stream`, connected to
    /// `addr`, within the timeout.
    pub(crate) async fn connect<S: Stream>(
        &self,
        stream: S,
        addr: &PeerAddr,
    ) -> Result<TlsStream<S>, TlsError> {
        let connect = self.connector.connect(self.name_for(addr), stream);
        match tokio::time::timeout(self.timeout, connect).await {
            Ok(Ok(stream)) => Ok(TlsStream::Client(stream)),
            Ok(Err(err)) => Err(handshake_error(&err, Peer::Listener)),
            Err(_) => Err(TlsError::Timeout(self.timeout)),
        }
    }
}

impl TlsClient {
    /// The name the listener's certificate must hold when connected to
    /// `addr`: the one given, or the address, or [`LOCAL_NAME`].
    pub(crate) fn name_for(&self, addr: &PeerAddr) -> ServerName<'static> {
        match (&self.server_name, addr.inet()) {
            (Some(name), _) => name.clone(),
            (None, Some(ip)) => ServerName::IpAddress(ip.ip().into()),
            (None, None) => ServerName::try_from(LOCAL_NAME).expect("a valid name"),
        }
    }

    /// The rustls configuration TLS over a stream uses, for QUIC to
    /// derive its own from.
    pub fn rustls_config(&self) -> &rustls::ClientConfig {
        &self.config
    }

    /// How long a handshake may take.
    pub(crate) fn handshake_timeout(&self) -> Duration {
        self.timeout
    }
}

/// The host a client checks the certificate for, from `HOST:PORT` as a
/// user wrote it: the host without brackets.
pub fn host_of(addr: &str) -> &str {
    let host = addr.rsplit_once(':').map_or(addr, |(host, _)| host);
    host.trim_start_matches('[').trim_end_matches(']')
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

/// A handshake's I/O error, with `peer` at the other end, as what went
/// wrong.
fn handshake_error(err: &io::Error, peer: Peer) -> TlsError {
    if let Some(tls) = err
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    {
        return match tls {
            rustls::Error::InvalidCertificate(CertificateError::Other(OtherError(other))) => {
                match other.downcast_ref::<Rejected>() {
                    Some(rejected) => TlsError::Certificate {
                        problem: rejected.problem.clone(),
                        fingerprint: rejected.fingerprint,
                    },
                    None => TlsError::Handshake(tls.to_string()),
                }
            }
            rustls::Error::InvalidMessage(_) | rustls::Error::InappropriateMessage { .. } => {
                TlsError::NotTls(peer)
            }
            rustls::Error::AlertReceived(alert) => TlsError::Refused(format!("{alert:?}")),
            other => TlsError::Handshake(other.to_string()),
        };
    }
    match err.kind() {
        io::ErrorKind::UnexpectedEof
        | io::ErrorKind::ConnectionReset
        | io::ErrorKind::BrokenPipe => TlsError::Closed(peer),
        _ => TlsError::Handshake(err.to_string()),
    }
}

/// Why our verifier refused a certificate, carried through rustls's error
/// to [`handshake_error`].
struct Rejected {
    problem: CertProblem,
    fingerprint: Fingerprint,
}

impl fmt::Display for Rejected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.problem, self.fingerprint)
    }
}

/// As [`TlsError::Certificate`] says it: rustls's own text of the error
/// (all QUIC's handshake gives back) shows this.
impl fmt::Debug for Rejected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}; the certificate it presented has sha256 fingerprint {}",
            self.problem, self.fingerprint
        )
    }
}

impl std::error::Error for Rejected {}

fn rejected(problem: CertProblem, fingerprint: Fingerprint) -> rustls::Error {
    rustls::Error::InvalidCertificate(CertificateError::Other(OtherError(Arc::new(Rejected {
        problem,
        fingerprint,
    }))))
}

/// webpki's verification (roots, name, dates), its refusals explained and
/// the presented certificate's fingerprint added.
#[derive(Debug)]
struct Explained(Arc<rustls::client::WebPkiServerVerifier>);

impl Explained {
    fn new(roots: RootCertStore, provider: &Arc<CryptoProvider>) -> Result<Self, TlsError> {
        rustls::client::WebPkiServerVerifier::builder_with_provider(
            Arc::new(roots),
            Arc::clone(provider),
        )
        .build()
        .map(Self)
        .map_err(|err| TlsError::Handshake(err.to_string()))
    }
}

fn unix_secs(time: &UnixTime) -> u64 {
    time.as_secs()
}

impl ServerCertVerifier for Explained {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let verified = self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now);
        let Err(rustls::Error::InvalidCertificate(err)) = verified else {
            return verified;
        };
        let problem = match err {
            CertificateError::Expired => CertProblem::Expired { not_after: None },
            CertificateError::ExpiredContext { not_after, .. } => CertProblem::Expired {
                not_after: Some(unix_secs(&not_after)),
            },
            CertificateError::NotValidYet => CertProblem::NotValidYet { not_before: None },
            CertificateError::NotValidYetContext { not_before, .. } => CertProblem::NotValidYet {
                not_before: Some(unix_secs(&not_before)),
            },
            CertificateError::NotValidForName => CertProblem::WrongName {
                expected: name_text(server_name),
                presented: Vec::new(),
            },
            CertificateError::NotValidForNameContext {
                expected,
                presented,
            } => CertProblem::WrongName {
                expected: name_text(&expected),
                presented,
            },
            CertificateError::UnknownIssuer => CertProblem::UnknownIssuer,
            other => CertProblem::Other(format!("{other:?}")),
        };
        Err(rejected(problem, Fingerprint::of(end_entity)))
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

pub(crate) fn name_text(name: &ServerName<'_>) -> String {
    match name {
        ServerName::DnsName(dns) => dns.as_ref().to_owned(),
        ServerName::IpAddress(ip) => IpAddr::from(*ip).to_string(),
        other => format!("{other:?}"),
    }
}

/// A pinned certificate: the peer's must have this fingerprint, and
/// nothing else about it is checked (its names, its dates, who signed
/// it), as an ssh client checks a known host's key. `None` pins nothing
/// at all: `--insecure`, which warns at every handshake. Either way the
/// handshake's signatures are checked, so the peer holds the key of the
/// certificate it showed.
#[derive(Debug)]
struct Pinned {
    pinned: Option<Fingerprint>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let presented = Fingerprint::of(end_entity);
        match &self.pinned {
            Some(pinned) if pinned.matches(&presented) => Ok(ServerCertVerified::assertion()),
            Some(pinned) => Err(rejected(
                CertProblem::FingerprintMismatch { expected: *pinned },
                presented,
            )),
            None => {
                warn!(
                    "TLS without verifying the peer's certificate (sha256 {presented}): anyone \
                     on the path can read and change everything"
                );
                Ok(ServerCertVerified::assertion())
            }
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// The system's root certificates.
fn system_roots() -> Result<RootCertStore, TlsError> {
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
fn read_roots(path: &Path) -> Result<RootCertStore, TlsError> {
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
fn read_certs(path: &Path, what: &'static str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bytes = read_small(path, what, MAX_CERT_FILE)?;
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
/// file, with a warning when others may read it, as ssh gives.
fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let what = "key";
    let bytes = read_small(path, what, MAX_KEY_FILE)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = std::fs::metadata(path) {
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                warn!(
                    "the key file {} is readable by others (mode {mode:03o}); chmod 600 it",
                    path.display()
                );
            }
        }
    }
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|err| match err {
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
    })
}

/// A regular file of at most `max` bytes, whole.
fn read_small(path: &Path, what: &'static str, max: u64) -> Result<Vec<u8>, TlsError> {
    let read = |source| TlsError::Read {
        what,
        path: path.to_owned(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(read)?;
    if !meta.is_file() {
        return Err(TlsError::NotRegular {
            what,
            path: path.to_owned(),
            kind: crate::secret::file_kind(&meta),
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
    let bytes = crate::secret::read_at_most(path, max).map_err(read)?;
    if bytes.len() as u64 > max {
        return Err(too_large(bytes.len() as u64));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fingerprint_reads_as_openssl_and_ssh_users_write_it() {
        let fp = Fingerprint::of(b"a certificate");
        let shown = fp.to_string();
        assert_eq!(shown.len(), 32 * 3 - 1, "{shown}");
        for text in [
            shown.clone(),
            shown.to_lowercase(),
            shown.replace(':', ""),
            format!("sha256 Fingerprint={shown}"),
            format!("SHA256:{}", shown.replace(':', "")),
        ] {
            assert_eq!(text.parse::<Fingerprint>().unwrap(), fp, "{text}");
        }
        for bad in [
            "",
            "AB:CD",
            &shown[3..],
            &format!("{shown}:00"),
            &shown.replace('A', "G"),
        ] {
            let err = bad.parse::<Fingerprint>().unwrap_err();
            assert!(matches!(err, TlsError::BadFingerprint(_)), "{bad}: {err}");
        }
        assert!(fp.matches(&fp));
        assert!(!fp.matches(&Fingerprint::of(b"another")));
    }

    #[test]
    fn the_host_of_an_address_is_checked_without_brackets() {
        assert_eq!(host_of("example.com:443"), "example.com");
        assert_eq!(host_of("[::1]:9000"), "::1");
        assert_eq!(host_of("127.0.0.1:1"), "127.0.0.1");
    }
}
