//! What a refused certificate is told as: a listener's refusal of this
//! client's (the TLS alert, after the handshake), and webpki's verdict on
//! a listener's in this crate's words, names and texts from the
//! certificate made printable. `verify.rs` makes the verdicts.

use std::fmt;
use std::io;
use std::net::IpAddr;
use std::time::Duration;

use rustls::pki_types::{ServerName, UnixTime};
use rustls::{CertificateError, OtherError};

use super::Fingerprint;

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
            Self::NotValidYet { not_before: None } => {
                f.write_str("the peer's certificate is not valid yet")
            }
            Self::NotValidYet {
                not_before: Some(secs),
            } => {
                let from = std::time::UNIX_EPOCH + Duration::from_secs(*secs);
                write!(
                    f,
                    "the peer's certificate is not valid yet (valid from {})",
                    humantime::format_rfc3339_seconds(from)
                )
            }
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

/// A listener's refusal of this client's certificate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClientRefused {
    /// The listener asks every client for a certificate, and this one
    /// gave none.
    #[error("the listener requires a client certificate, and this client gave none")]
    NoCertificate,
    /// The listener refused the certificate given: the TLS alert's name
    /// (`UnknownCA`, `CertificateExpired`, ...).
    #[error("the listener refused this client's certificate ({0})")]
    Certificate(String),
}

/// What a listener's TLS alert says of this client's certificate, where
/// it came after the handshake: in TLS 1.3 a client's handshake ends
/// before the listener has checked its certificate, so a refusal reaches
/// the client at its first read, as an I/O error that carries the alert
/// (`received fatal alert: CertificateRequired`, said as it was).
pub fn client_refused(err: &io::Error) -> Option<ClientRefused> {
    let rustls::Error::AlertReceived(alert) = err.get_ref()?.downcast_ref::<rustls::Error>()?
    else {
        return None;
    };
    alert_refusal(*alert)
}

/// Whether `err` is a TLS alert the peer sent (a refusal of any kind),
/// for a read whose other failures go unsaid: a raw stream's drain.
pub(crate) fn alert_received(err: &io::Error) -> bool {
    let rustls = err
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>());
    matches!(rustls, Some(rustls::Error::AlertReceived(_)))
}

/// What `alert`, received, says of this client's certificate, if it is
/// a refusal of it: TLS's alert, or the one QUIC's connection close
/// carries (`quic/stream.rs`).
pub(crate) fn alert_refusal(alert: rustls::AlertDescription) -> Option<ClientRefused> {
    use rustls::AlertDescription as A;
    match alert {
        A::CertificateRequired => Some(ClientRefused::NoCertificate),
        A::BadCertificate
        | A::UnsupportedCertificate
        | A::CertificateRevoked
        | A::CertificateExpired
        | A::CertificateUnknown
        | A::UnknownCA
        | A::AccessDenied
        // A handshake's signature that did not verify: after the client's
        // handshake, the one on its certificate (a CA of the same name
        // with another key) or on its proof of the key.
        | A::DecryptError => Some(ClientRefused::Certificate(format!("{alert:?}"))),
        _ => None,
    }
}

/// What a certificate error says, in this crate's words; names and texts
/// that come from the certificate are made printable.
pub(super) fn problem_of(err: CertificateError, server_name: &ServerName<'_>) -> CertProblem {
    problem(err, Some(server_name))
}

/// What a listener's verifier said of a client's certificate (mutual
/// TLS), in this crate's words. A client's names are not checked, so no
/// name is expected of it.
pub(super) fn client_problem(err: CertificateError) -> CertProblem {
    problem(err, None)
}

/// [`problem_of`], and [`client_problem`] without a name.
fn problem(err: CertificateError, server_name: Option<&ServerName<'_>>) -> CertProblem {
    match err {
        CertificateError::Expired => CertProblem::Expired { not_after: None },
        CertificateError::ExpiredContext { not_after, .. } => CertProblem::Expired {
            not_after: Some(unix_secs(&not_after)),
        },
        CertificateError::NotValidYet => CertProblem::NotValidYet { not_before: None },
        CertificateError::NotValidYetContext { not_before, .. } => CertProblem::NotValidYet {
            not_before: Some(unix_secs(&not_before)),
        },
        CertificateError::NotValidForName => match server_name {
            Some(name) => CertProblem::WrongName {
                expected: name_text(name),
                presented: Vec::new(),
            },
            None => CertProblem::Other(refusal_words(&CertificateError::NotValidForName)),
        },
        CertificateError::NotValidForNameContext {
            expected,
            presented,
        } => CertProblem::WrongName {
            expected: name_text(&expected),
            // The certificate's own names, as webpki read them (any
            // bytes a subjectAltName held): made printable.
            presented: presented
                .iter()
                .map(|name| crate::text::printable(bare_name(name).as_bytes()))
                .collect(),
        },
        CertificateError::UnknownIssuer => CertProblem::UnknownIssuer,
        other => CertProblem::Other(refusal_words(&other)),
    }
}

/// The rest of webpki's refusals in words: those rustls names
/// (`BadSignature`), and those it passes on as webpki's own error
/// (`Other(OtherError(CaUsedAsEndEntity))` in its Debug text, all a
/// user saw before). One this does not know is shown by its name, made
/// printable.
fn refusal_words(err: &CertificateError) -> String {
    let name = match err {
        // webpki's error displays as its Debug: the variant's name, and
        // any context in brackets after it.
        CertificateError::Other(OtherError(inner)) => inner.to_string(),
        other => format!("{other:?}"),
    };
    let variant = name
        .split(|c: char| !c.is_ascii_alphanumeric())
        .next()
        .unwrap_or_default();
    let words = match variant {
        "BadEncoding" | "BadDer" | "BadDerTime" => "it is not a well-formed X.509 certificate",
        "BadSignature" | "InvalidSignatureForPublicKey" => {
            "its signature does not verify with its issuer's key"
        }
        "UnsupportedSignatureAlgorithm"
        | "UnsupportedSignatureAlgorithmContext"
        | "UnsupportedSignatureAlgorithmForPublicKey"
        | "UnsupportedSignatureAlgorithmForPublicKeyContext" => {
            "it is signed with an algorithm this end does not verify"
        }
        "InvalidPurpose"
        | "InvalidPurposeContext"
        | "RequiredEkuNotFound"
        | "RequiredEkuNotFoundContext" => {
            "its extended key usage is for another use (a server needs serverAuth, a client \
             clientAuth)"
        }
        "Revoked" | "CertRevoked" => "it is revoked",
        "UnhandledCriticalExtension" | "UnsupportedCriticalExtension" => {
            "it has a critical extension this end does not know"
        }
        "CaUsedAsEndEntity" => {
            "it is a CA's certificate (basicConstraints CA:TRUE) presented as the peer's own; a \
             peer presents a certificate its CA issued, not the CA's"
        }
        "EndEntityUsedAsCa" => {
            "a certificate of its chain that is no CA's (CA:FALSE) issued another in it"
        }
        "PathLenConstraintViolated" => {
            "its chain is longer than a CA's pathLenConstraint in it allows"
        }
        "NameConstraintViolation" => "it names what its CA's name constraints forbid",
        "MaximumPathDepthExceeded" | "MaximumPathBuildCallsExceeded" => {
            "its chain is too long to verify"
        }
        "UnsupportedCertVersion" => "it is not an X.509 v3 certificate",
        _ => return crate::text::printable(name.as_bytes()),
    };
    words.to_owned()
}

/// A name as webpki writes one a certificate presents (its `Debug`:
/// `DnsName("localhost")`, `IpAddress(127.0.0.1)`), as a user writes it:
/// an IPv6 address in its usual short form, `::1` where webpki wrote
/// `0::1` (audit, round nine).
fn bare_name(name: &str) -> String {
    if let Some(dns) = name
        .strip_prefix("DnsName(\"")
        .and_then(|rest| rest.strip_suffix("\")"))
    {
        return dns.to_owned();
    }
    match name
        .strip_prefix("IpAddress(")
        .and_then(|rest| rest.strip_suffix(')'))
    {
        Some(ip) => ip
            .parse::<IpAddr>()
            .map_or_else(|_| ip.to_owned(), |ip| ip.to_string()),
        None => name.to_owned(),
    }
}

fn unix_secs(time: &UnixTime) -> u64 {
    time.as_secs()
}

pub(crate) fn name_text(name: &ServerName<'_>) -> String {
    match name {
        ServerName::DnsName(dns) => dns.as_ref().to_owned(),
        ServerName::IpAddress(ip) => IpAddr::from(*ip).to_string(),
        other => format!("{other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    /// webpki's names as a user writes them, IPv6 in its short form.
    #[test]
    fn names_read_as_a_user_writes_them() {
        assert_eq!(bare_name("DnsName(\"localhost\")"), "localhost");
        assert_eq!(bare_name("IpAddress(127.0.0.1)"), "127.0.0.1");
        assert_eq!(bare_name("IpAddress(0::1)"), "::1");
        assert_eq!(bare_name("IpAddress(0::ffff:7f00:1)"), "::ffff:127.0.0.1");
        assert_eq!(bare_name("Other"), "Other");
    }

    use super::*;

    /// The names a certificate presents are its issuer's choice, any bytes
    /// a subjectAltName holds: they reach no terminal as they came.
    #[test]
    fn a_certificates_names_are_shown_escaped() {
        let err = CertificateError::NotValidForNameContext {
            expected: ServerName::try_from("msg.example").unwrap(),
            presented: vec!["ok.example".to_owned(), "\u{1b}[2Jforged\nline".to_owned()],
        };
        let text = problem_of(err, &ServerName::try_from("msg.example").unwrap()).to_string();
        assert_eq!(
            text,
            r"the peer's certificate is not valid for msg.example; it names ok.example, \x1b[2Jforged\nline"
        );
    }

    /// webpki writes the names a certificate presents as its `Debug`
    /// does; they are shown as a user writes them (audit, round four).
    #[test]
    fn a_certificates_names_and_dates_read_as_a_user_writes_them() {
        let err = CertificateError::NotValidForNameContext {
            expected: ServerName::try_from("msg.example").unwrap(),
            presented: vec![
                "DnsName(\"localhost\")".to_owned(),
                "IpAddress(127.0.0.1)".to_owned(),
            ],
        };
        let text = problem_of(err, &ServerName::try_from("msg.example").unwrap()).to_string();
        assert!(text.ends_with("it names localhost, 127.0.0.1"), "{text}");
        let early = CertProblem::NotValidYet {
            not_before: Some(2_208_988_800),
        };
        assert_eq!(
            early.to_string(),
            "the peer's certificate is not valid yet (valid from 2040-01-01T00:00:00Z)"
        );
    }
    /// webpki's own error, as rustls passes it on, displays as its Debug.
    #[derive(Debug)]
    struct Webpki(&'static str);

    impl fmt::Display for Webpki {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.0)
        }
    }

    impl std::error::Error for Webpki {}

    /// The refusals webpki and rustls name read in words, not as
    /// `Other(OtherError(CaUsedAsEndEntity))`; one not known is shown by
    /// its name, escaped (audit, round six).
    #[test]
    fn the_other_refusals_read_in_words() {
        let words = |err: CertificateError| {
            problem_of(err, &ServerName::try_from("msg.example").unwrap()).to_string()
        };
        let webpki = |name| CertificateError::Other(OtherError(Arc::new(Webpki(name))));
        assert_eq!(
            words(webpki("CaUsedAsEndEntity")),
            "the peer's certificate was refused: it is a CA's certificate (basicConstraints \
             CA:TRUE) presented as the peer's own; a peer presents a certificate its CA issued, \
             not the CA's"
        );
        assert!(
            words(webpki(
                "UnsupportedSignatureAlgorithmForPublicKeyContext { .. }"
            ))
            .ends_with("signed with an algorithm this end does not verify")
        );
        assert!(words(CertificateError::BadSignature).ends_with("with its issuer's key"));
        assert_eq!(
            words(webpki("SomethingNew(\u{1b}[2J)")),
            r"the peer's certificate was refused: SomethingNew(\x1b[2J)"
        );
    }
}
