//! How a client checks a listener's certificate (webpki's verdict
//! explained, or a pinned fingerprint), and what a failed handshake is
//! told as; the words for a refused certificate are `problem.rs`'s.

use std::fmt;
use std::io;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, OtherError, RootCertStore, SignatureScheme};
use tracing::warn;

use super::problem::{CertProblem, client_problem, problem_of};
use super::{Fingerprint, Peer, TlsError};

/// A handshake's I/O error, with `peer` at the other end, as what went
/// wrong.
pub(super) fn handshake_error(err: &io::Error, peer: Peer) -> TlsError {
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
            rustls::Error::AlertReceived(alert) => TlsError::Refused(alert_words(*alert)),
            // A peer that speaks only an older TLS, or none of the same
            // ciphers: rustls's words were its enum's names (audit, round
            // nine: a TLS 1.1 peer gave `ProtocolVersion`).
            rustls::Error::PeerIncompatible(why) => TlsError::Handshake(incompatible(peer, why)),
            // A listener's refusals of a client's certificate (mutual
            // TLS), in this crate's words: rustls's are "peer sent no
            // certificates" and "invalid peer certificate: UnknownIssuer"
            // (audit, round nine).
            rustls::Error::NoCertificatesPresented if peer == Peer::Client => {
                TlsError::NoClientCertificate
            }
            rustls::Error::InvalidCertificate(cert) if peer == Peer::Client => {
                TlsError::ClientCertificate(client_problem(cert.clone()))
            }
            other => TlsError::Handshake(other.to_string()),
        };
    }
    // Mid-handshake, a bare end is a leaving too.
    if err.kind() == io::ErrorKind::UnexpectedEof || crate::error::peer_left(err) {
        TlsError::Closed(peer)
    } else {
        TlsError::Handshake(err.to_string())
    }
}

/// What a TLS alert the peer sent says, where its name alone does not.
fn alert_words(alert: rustls::AlertDescription) -> String {
    use rustls::AlertDescription as A;
    match alert {
        A::ProtocolVersion => {
            "it has no TLS version in common with msg, which speaks TLS 1.2 and 1.3 \
             (ProtocolVersion)"
                .to_owned()
        }
        A::HandshakeFailure | A::InsufficientSecurity => {
            format!("it has no cipher suite or key exchange in common with msg ({alert:?})")
        }
        other => format!("{other:?}"),
    }
}

/// Why `peer` and this end cannot agree, where rustls gives its enum's
/// name.
fn incompatible(peer: Peer, why: &rustls::PeerIncompatible) -> String {
    use rustls::PeerIncompatible as P;
    let what = match why {
        P::ServerDoesNotSupportTls12Or13
        | P::SupportedVersionsExtensionRequired
        | P::Tls12NotOffered
        | P::Tls12NotOfferedOrEnabled
        | P::ServerTlsVersionIsDisabledByOurConfig
        // What a TLS 1.1 client's hello lacks (seen from openssl
        // s_client -tls1_1).
        | P::SignatureAlgorithmsExtensionRequired => {
            "no TLS version in common (msg speaks TLS 1.2 and 1.3)"
        }
        P::NoCipherSuitesInCommon => "no cipher suite in common",
        P::NoKxGroupsInCommon => "no key exchange group in common",
        P::NoSignatureSchemesInCommon | P::NoCertificateRequestSignatureSchemesInCommon => {
            "no signature scheme in common"
        }
        _ => "it does not follow TLS as msg does",
    };
    format!("the {peer} and msg cannot agree: {what} ({why:?})")
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
pub(super) struct Explained(Arc<rustls::client::WebPkiServerVerifier>);

impl Explained {
    pub(super) fn new(
        roots: RootCertStore,
        provider: &Arc<CryptoProvider>,
    ) -> Result<Self, TlsError> {
        rustls::client::WebPkiServerVerifier::builder_with_provider(
            Arc::new(roots),
            Arc::clone(provider),
        )
        .build()
        .map(Self)
        .map_err(|err| TlsError::Handshake(err.to_string()))
    }
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
        let problem = problem_of(err, server_name);
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

/// A pinned certificate: the peer's must have this fingerprint, and
/// nothing else about it is checked (its names, its dates, who signed
/// it), as an ssh client checks a known host's key. `None` pins nothing
/// at all: `--insecure`, which warns at every handshake. Either way the
/// handshake's signatures are checked, so the peer holds the key of the
/// certificate it showed.
#[derive(Debug)]
pub(super) struct Pinned {
    pub(super) pinned: Option<Fingerprint>,
    pub(super) algorithms: WebPkiSupportedAlgorithms,
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A handshake's failure as rustls hands it over: inside an I/O error.
    fn failed(err: rustls::Error) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidData, err)
    }

    /// A listener's refusals of a client's certificate are said in this
    /// crate's words, where its log showed rustls's ("peer sent no
    /// certificates", "invalid peer certificate: UnknownIssuer"; audit,
    /// round nine); a client's view of the same errors is unchanged.
    #[test]
    fn a_listeners_refusals_of_a_client_certificate_are_worded() {
        let none = handshake_error(
            &failed(rustls::Error::NoCertificatesPresented),
            Peer::Client,
        );
        assert_eq!(
            none.to_string(),
            "the client presented no certificate, and this listener serves only clients with \
             one signed by a CA it trusts (mutual TLS)"
        );
        let stranger = rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer);
        assert_eq!(
            handshake_error(&failed(stranger.clone()), Peer::Client).to_string(),
            "the peer's certificate is not signed by a CA this end trusts (a self-signed one?): \
             the client is refused (mutual TLS)"
        );
        let expired = rustls::Error::InvalidCertificate(CertificateError::Expired);
        assert_eq!(
            handshake_error(&failed(expired), Peer::Client).to_string(),
            "the peer's certificate expired: the client is refused (mutual TLS)"
        );
        assert!(matches!(
            handshake_error(&failed(stranger), Peer::Listener),
            TlsError::Handshake(_)
        ));
    }

    /// A peer of an older TLS, or of other ciphers, is said as such, not
    /// by rustls's enum names alone (audit, round nine: `ProtocolVersion`).
    #[test]
    fn a_peer_with_no_version_or_cipher_in_common_is_said_so() {
        let refused = rustls::Error::AlertReceived(rustls::AlertDescription::ProtocolVersion);
        assert_eq!(
            handshake_error(&failed(refused), Peer::Listener).to_string(),
            "the peer refused the TLS handshake: it has no TLS version in common with msg, which \
             speaks TLS 1.2 and 1.3 (ProtocolVersion)"
        );
        let old = rustls::Error::PeerIncompatible(rustls::PeerIncompatible::Tls12NotOffered);
        assert_eq!(
            handshake_error(&failed(old), Peer::Client).to_string(),
            "TLS handshake failed: the client and msg cannot agree: no TLS version in common \
             (msg speaks TLS 1.2 and 1.3) (Tls12NotOffered)"
        );
        let ciphers =
            rustls::Error::PeerIncompatible(rustls::PeerIncompatible::NoCipherSuitesInCommon);
        assert!(
            handshake_error(&failed(ciphers), Peer::Listener)
                .to_string()
                .contains("the listener and msg cannot agree: no cipher suite in common")
        );
    }
}
