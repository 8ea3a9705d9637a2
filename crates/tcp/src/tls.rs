//! TLS over any [`Stream`]: a session is a byte stream with no message
//! boundaries, as the socket under it is, so msg's frames (and the
//! handshake, files and commands above them) go through it unchanged.
//!
//! This file only makes tokio-rustls's stream a [`Stream`]; certificates,
//! verification and the handshake's timeout are msg-net's (`tls/`),
//! which knows what a user asked for. The record layer's first bytes are
//! recognised here too ([`looks_like_tls`]), so that a framed reader that
//! meets a TLS peer says so instead of reporting a frame of 352 MB.

use std::io;

use tokio_rustls::TlsStream;

use crate::{Options, PeerAddr, Stream};

/// A TLS session over any kind of stream, client or server side.
impl<S: Stream + std::fmt::Debug> Stream for TlsStream<S> {
    // rustls keeps one state for both directions, so the halves share it
    // behind tokio's lock; a frame is one write either way.
    type Reader = tokio::io::ReadHalf<Self>;
    type Writer = tokio::io::WriteHalf<Self>;

    fn apply(&self, options: &Options) -> io::Result<()> {
        self.get_ref().0.apply(options)
    }

    fn peer_addr(&self) -> io::Result<PeerAddr> {
        self.get_ref().0.peer_addr()
    }

    fn into_split(self) -> (Self::Reader, Self::Writer) {
        tokio::io::split(self)
    }

    fn input_waiting(&self) -> bool {
        // Records not yet read from the socket. (A record rustls already
        // decrypted is handed to the next read at once, which the
        // connection's buffer then counts.)
        self.get_ref().0.input_waiting()
    }
}

/// Whether the first four bytes of a stream are a TLS record's header
/// rather than a length prefix: a content type (20 change_cipher_spec, 21
/// alert, 22 handshake, 23 application data), then a 3.x version
/// (`03 01` in a ClientHello, `03 03` after it). As a length they read as
/// 335 to 403 MB, past any frame limit but a deliberately huge one, so a
/// reader checks this only for a length over its limit.
pub fn looks_like_tls(prefix: [u8; 4]) -> Option<TlsRecord> {
    if prefix[1] != 0x03 || prefix[2] > 0x04 {
        return None;
    }
    match prefix[0] {
        0x15 => Some(TlsRecord::Alert),
        0x16 => Some(TlsRecord::Handshake),
        0x14 | 0x17 => Some(TlsRecord::Other),
        _ => None,
    }
}

/// The kind of TLS record a peer sent where a frame was expected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsRecord {
    /// A handshake record: a client's ClientHello, where a listener
    /// expected a frame.
    Handshake,
    /// An alert: a TLS listener refusing what it read (our plain frame).
    Alert,
    /// Any other record.
    Other,
}

impl std::fmt::Display for TlsRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Handshake => "a TLS handshake",
            Self::Alert => "a TLS alert",
            Self::Other => "a TLS record",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_records_are_told_from_length_prefixes() {
        // A ClientHello's record header, and a TLS 1.2 alert's.
        assert_eq!(
            looks_like_tls([0x16, 0x03, 0x01, 0x02]),
            Some(TlsRecord::Handshake)
        );
        assert_eq!(
            looks_like_tls([0x15, 0x03, 0x03, 0x00]),
            Some(TlsRecord::Alert)
        );
        // A msg frame's prefix, and an SSLv2-looking one.
        assert_eq!(looks_like_tls([0x00, 0x00, 0x00, 0x21]), None);
        assert_eq!(looks_like_tls([0x16, 0x02, 0x00, 0x00]), None);
    }
}
