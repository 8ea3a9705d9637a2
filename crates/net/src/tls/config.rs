//! A listener's and a client's TLS: what each is told, the rustls
//! configuration made from it, and each side's handshake within its
//! timeout.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use msg_tcp::{PeerAddr, Stream};
use rustls::client::danger::ServerCertVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{PrivateKeyDer, ServerName};
use tokio_rustls::{TlsAcceptor, TlsConnector, TlsStream};
use tracing::warn;

use super::files::{read_certs, read_key, read_roots, system_roots};
use super::verify::{Explained, Pinned, handshake_error};
use super::{Fingerprint, LOCAL_NAME, Peer, SEND_BUFFER, TlsError};

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

impl Identity {
    /// A listener's certificate: the chain and key in `files`, or else a
    /// new self-signed one for the names of a listener on `addr`.
    pub fn of(files: Option<(PathBuf, PathBuf)>, addr: &PeerAddr) -> Self {
        match files {
            Some((cert, key)) => Self::Files { cert, key },
            None => Self::SelfSigned {
                names: super::self_signed_names(addr),
            },
        }
    }
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
pub(super) fn provider() -> Arc<CryptoProvider> {
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
            Identity::Files { cert, key } => {
                let chain = read_certs(cert, "certificate")?;
                if let Some(warning) = dates_warning(&chain[0], std::time::SystemTime::now()) {
                    warn!(
                        "the certificate {} {warning}: every client that checks it will refuse it",
                        crate::text::path_text(cert)
                    );
                }
                (chain, read_key(key)?)
            }
            Identity::SelfSigned { names } => {
                let made = rcgen::generate_simple_self_signed(names.clone())?;
                let key = PrivateKeyDer::try_from(made.signing_key.serialize_der())
                    .map_err(|err| TlsError::Handshake(err.to_owned()))?;
                (vec![made.cert.der().clone()], key)
            }
        };
        let fingerprint = Fingerprint::of(&chain[0]);
        let chain_len = chain.len();
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
        let config =
            builder
                .with_single_cert(chain, key)
                .map_err(|err| match &options.identity {
                    Identity::Files { cert, key } => pair_error(cert, key, chain_len, &err),
                    Identity::SelfSigned { .. } => TlsError::Identity(err),
                })?;
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
            Ok(Ok(mut stream)) => {
                stream.get_mut().1.set_buffer_limit(Some(SEND_BUFFER));
                Ok(TlsStream::Server(stream))
            }
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

impl Verify {
    /// How a client checks the listener's certificate, from what it was
    /// told: not at all when `insecure`, else against the `pinned`
    /// fingerprint, else by the CAs in the file `ca`, else by the
    /// system's roots.
    pub fn of(ca: Option<PathBuf>, pinned: Option<Fingerprint>, insecure: bool) -> Self {
        match (ca, pinned, insecure) {
            (_, _, true) => Self::Insecure,
            (_, Some(pinned), _) => Self::Fingerprint(pinned),
            (Some(ca), _, _) => Self::Ca(ca),
            (None, None, false) => Self::System,
        }
    }
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
            Some((cert, key)) => {
                let chain = read_certs(cert, "client certificate")?;
                let chain_len = chain.len();
                builder
                    .with_client_auth_cert(chain, read_key(key)?)
                    .map_err(|err| pair_error(cert, key, chain_len, &err))?
            }
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
            Ok(Ok(mut stream)) => {
                stream.get_mut().1.set_buffer_limit(Some(SEND_BUFFER));
                Ok(TlsStream::Client(stream))
            }
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

/// rustls's refusal of this end's own certificate and key, with the files:
/// its words for a certificate are a peer's ("invalid peer certificate:
/// BadEncoding"), where here the certificate is ours.
/// What is wrong with a listener's own certificate's dates at `now`, if
/// anything: `expired on DATE`, `is not valid until DATE`. A certificate
/// that does not parse here says nothing: rustls says what it makes of it.
fn dates_warning(cert: &[u8], now: std::time::SystemTime) -> Option<String> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert).ok()?;
    let validity = parsed.validity();
    let now = i64::try_from(now.duration_since(std::time::UNIX_EPOCH).ok()?.as_secs()).ok()?;
    let date = |secs: i64| {
        let secs = u64::try_from(secs).unwrap_or(0);
        humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + Duration::from_secs(secs))
    };
    let (not_before, not_after) = (
        validity.not_before.timestamp(),
        validity.not_after.timestamp(),
    );
    if now > not_after {
        Some(format!("expired on {}", date(not_after)))
    } else if now < not_before {
        Some(format!("is not valid until {}", date(not_before)))
    } else {
        None
    }
}

fn pair_error(
    cert: &std::path::Path,
    key: &std::path::Path,
    chain: usize,
    err: &rustls::Error,
) -> TlsError {
    let reason = match err {
        rustls::Error::InvalidCertificate(problem) => {
            format!("the certificate is not one rustls can use ({problem:?})")
        }
        // rustls checks the key against the chain's first certificate: a
        // chain in the wrong order (its CA first) reads as a key of the
        // wrong certificate (audit, round nine: `KeyMismatch` alone).
        rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch) if chain > 1 => {
            "the key is not the first certificate's: a chain goes the certificate the key is \
             for first, then each issuer (KeyMismatch)"
                .to_owned()
        }
        rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch) => {
            "the key is not this certificate's (KeyMismatch)".to_owned()
        }
        other => other.to_string(),
    };
    TlsError::Pair {
        cert: cert.to_owned(),
        key: key.to_owned(),
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A certificate valid from `from` to `until` (years), DER.
    fn certificate(from: i32, until: i32) -> Vec<u8> {
        let mut params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
        params.not_before = rcgen::date_time_ymd(from, 1, 1);
        params.not_after = rcgen::date_time_ymd(until, 1, 1);
        let key = rcgen::KeyPair::generate().unwrap();
        params.self_signed(&key).unwrap().der().to_vec()
    }

    /// A listener's own certificate out of its dates is said at start:
    /// expired, or not valid yet; one within them, or one that does not
    /// parse, says nothing.
    #[test]
    fn a_listeners_certificate_out_of_its_dates_is_said() {
        let now = std::time::UNIX_EPOCH + Duration::from_secs(1_800_000_000); // 2027
        assert_eq!(
            dates_warning(&certificate(2019, 2020), now).as_deref(),
            Some("expired on 2020-01-01T00:00:00Z")
        );
        assert_eq!(
            dates_warning(&certificate(2030, 2031), now).as_deref(),
            Some("is not valid until 2030-01-01T00:00:00Z")
        );
        assert_eq!(dates_warning(&certificate(2026, 2028), now), None);
        assert_eq!(dates_warning(b"not a certificate", now), None);
    }
}
