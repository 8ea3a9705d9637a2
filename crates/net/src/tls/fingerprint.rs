//! [`Fingerprint`]: the SHA-256 of a certificate, what a client pins
//! when it cannot know a listener's certificate in advance (a self-signed
//! one made at start), as ssh pins a host key.

use std::fmt;

use sha2::{Digest, Sha256};

use super::TlsError;

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
        // Hex digits only: `from_str_radix` takes a leading `+` too, so
        // `+3` pinned 03 (audit, round six).
        if digits.len() != 64 || !digits.iter().all(u8::is_ascii_hexdigit) {
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
            // `from_str_radix` reads "+3" as 3 (audit, round six).
            &format!("+3{}", &shown[2..]),
        ] {
            let err = bad.parse::<Fingerprint>().unwrap_err();
            assert!(matches!(err, TlsError::BadFingerprint(_)), "{bad}: {err}");
        }
        assert!(fp.matches(&fp));
        assert!(!fp.matches(&Fingerprint::of(b"another")));
    }
}
