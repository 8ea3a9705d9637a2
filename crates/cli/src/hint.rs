//! The flags behind what msg's libraries report, named in one place.
//!
//! The libraries state a condition and its limit in their own words: they
//! have no command line. Where one of msg's flags sets that limit, or
//! changes the outcome, this module adds it: to an error on its way to
//! stderr ([`chain`]), and to a text a listener sent its peer
//! ([`peer_text`]), which msg-net writes without flags (its `refusal`
//! texts) and which this recognises.

use std::error::Error as StdError;

use humantime::format_duration;
use msg_net::file::FileError;
use msg_net::limits::{BodyLimit, SetBy};
use msg_net::refusal::{self, Template};

/// What turns Nagle's algorithm on, for `msg demo sticky`'s text.
pub(crate) const NAGLE_ON: &str = "--nodelay=false";

/// `err` as `{err:#}` shows it (each cause after a ": "), with the flags
/// behind the libraries' errors named.
pub(crate) fn chain(err: &anyhow::Error) -> String {
    let mut text = String::new();
    for (n, cause) in err.chain().enumerate() {
        if n > 0 {
            text.push_str(": ");
        }
        text.push_str(&self::text(cause));
    }
    text
}

/// `err` and its causes as [`chain`] shows them, for an error that is not
/// an `anyhow::Error`: a listener's log of a connection it dropped.
pub(crate) fn chain_of(err: &(dyn StdError + 'static)) -> String {
    let mut out = listener_text(err);
    let mut source = err.source();
    while let Some(cause) = source {
        out.push_str(": ");
        out.push_str(&listener_text(cause));
        source = cause.source();
    }
    out
}

/// [`text`], for a listener's log: a listener's writes are bounded by its
/// own flag, not a client's.
fn listener_text(err: &(dyn StdError + 'static)) -> String {
    let stalled = match err.downcast_ref::<msg_net::Error>() {
        Some(msg_net::Error::Tcp(err)) => Some(err),
        _ => err.downcast_ref::<msg_net::StreamError>(),
    };
    match stalled {
        Some(msg_net::StreamError::WriteStalled { after }) => format!(
            "the peer took nothing written to it for {} (--frame-timeout): closed",
            format_duration(*after)
        ),
        _ => text(err),
    }
}

/// One error's text (not its causes'), with its flag named when it is a
/// library error that has one.
pub(crate) fn text(err: &(dyn StdError + 'static)) -> String {
    hinted(err).unwrap_or_else(|| err.to_string())
}

/// One error's text with its flag named; `None` for an error that names
/// none, whose own text is right as it is.
fn hinted(err: &(dyn StdError + 'static)) -> Option<String> {
    if let Some(err) = err.downcast_ref::<msg_net::Error>() {
        return net(err);
    }
    // The cause of a wrapping error (`cannot receive the reply: ...`),
    // boxed.
    if let Some(err) = err.downcast_ref::<Box<msg_net::Error>>() {
        return net(err);
    }
    // A connect to a name with one address: the error as it is.
    if let Some(msg_net::connect::ConnectError::One(err)) =
        err.downcast_ref::<msg_net::connect::ConnectError<msg_net::Error>>()
    {
        return net(err);
    }
    if let Some(err) = err.downcast_ref::<msg_net::StreamError>() {
        return tcp(err);
    }
    if let Some(err) = err.downcast_ref::<msg_net::DatagramError>() {
        return datagram(err);
    }
    // A bench run's cause (`udp 64-byte run against ...: ...`), boxed.
    if let Some(msg_bench::Error::Net(err)) =
        err.downcast_ref::<Box<msg_bench::Error>>().map(|b| &**b)
    {
        return net(err);
    }
    if let Some(err) = err.downcast_ref::<FileError>() {
        return file(err);
    }
    if let Some(err) = err.downcast_ref::<msg_net::auth::AuthFailure>() {
        return match err {
            msg_net::auth::AuthFailure::Peer(text) => ending_with_peer_text(err, text),
            _ => None,
        };
    }
    // A listener's refusal of this client's certificate, which TLS 1.3
    // delivers after the handshake, at the first read.
    if let Some(refused) = err
        .downcast_ref::<std::io::Error>()
        .and_then(msg_net::tls::client_refused)
    {
        return Some(client_refused(&refused));
    }
    if let Some(msg_proto::Error::NeedsSecret) = err.downcast_ref::<msg_proto::Error>() {
        // Either side meets it: a listener reading a tagged message, or a
        // client reading a tagged reply, so the hint names neither.
        return Some(
            "this peer uses a secret; start this side with the same one (--secret-file or \
             MSG_SECRET)"
                .to_owned(),
        );
    }
    None
}

/// A listener's refusal of this client's certificate, with the flags
/// that give one.
fn client_refused(refused: &msg_net::tls::ClientRefused) -> String {
    let what = match refused {
        msg_net::tls::ClientRefused::NoCertificate => "--client-cert and --client-key",
        _ => "--client-cert: one its --client-ca signed, in date",
    };
    format!("{refused} ({what})")
}

fn net(err: &msg_net::Error) -> Option<String> {
    use msg_net::Error as E;
    match err {
        E::Tcp(tcp_err) => tcp(tcp_err),
        E::File(file_err) => file(file_err),
        E::Peer(text) => ending_with_peer_text(err, text),
        E::Idle { after } => Some(format!(
            "idle for {} (--idle-timeout): closed",
            format_duration(*after)
        )),
        E::FrameTimeout { after } => Some(format!(
            "a frame did not complete within {} (--frame-timeout): closed",
            format_duration(*after)
        )),
        E::NotInBlockingEngine(_) => Some(format!("{err} (--io tokio)")),
        // A raw stream's drain that met the listener's refusal.
        E::Io(io) => msg_net::tls::client_refused(io).map(|refused| client_refused(&refused)),
        E::Udp(udp) => datagram(udp),
        E::Tls(tls_err) => tls(tls_err),
        E::Quic(msg_net::quic::QuicError::ClientRefused(refused)) => Some(client_refused(refused)),
        E::Quic(msg_net::quic::QuicError::ClosedBy { reason, .. }) => {
            ending_with_peer_text(err, reason)
        }
        E::Quic(msg_net::quic::QuicError::Timeout { .. }) => Some(format!(
            "{err} (is it msg listen --quic? a UDP listener, or nobody, answers no QUIC \
             handshake)"
        )),
        _ => None,
    }
}

/// What to do about a TLS failure, with the flags that do it.
fn tls(err: &msg_net::tls::TlsError) -> Option<String> {
    use msg_net::tls::{CertProblem, Peer, TlsError as E};
    let fix = match err {
        E::NotTls(Peer::Listener) => "is it msg listen without --tls, or no TLS at all?",
        // A TLS listener with no handshake turn free for the handshake
        // timeout closes the connection too, having read nothing.
        E::Closed(Peer::Listener) => {
            "is it msg listen without --tls, or no TLS at all? Or a TLS listener with as many \
             handshakes under way as it makes at once (msg listen --max-handshakes)"
        }
        E::NotTls(Peer::Client) => "a client without --tls?",
        // A plain raw listener takes a ClientHello as data and answers
        // nothing (audit, round thirteen: the timeout alone was said).
        E::Timeout(_) => {
            "is the other end plain, without TLS? A plain raw peer takes the handshake as data \
             and answers nothing"
        }
        E::Certificate { problem, .. } => match problem {
            CertProblem::UnknownIssuer => {
                "pin this certificate with --tls-fingerprint, or give its CA with --ca"
            }
            CertProblem::WrongName { .. } => {
                "connect by a name it holds, or check it for one with --tls-name"
            }
            CertProblem::FingerprintMismatch { .. } => {
                "a new certificate, or someone in the middle: pin the new one with \
                 --tls-fingerprint only once you know which"
            }
            // What `openssl req -x509` makes by default: one certificate
            // that is its own CA, given to --ca and presented too (audit,
            // round thirteen: refused, with no way out said).
            CertProblem::Other(words) if words.contains("basicConstraints CA:TRUE") => {
                "a self-made certificate such as openssl req -x509 makes is a CA's: pin it with \
                 --tls-fingerprint (the listener logs it), or present one that CA issued"
            }
            _ => return None,
        },
        _ => return None,
    };
    Some(format!("{err} ({fix})"))
}

/// What a group or a broadcast address needs that it did not get.
fn datagram(err: &msg_net::DatagramError) -> Option<String> {
    use msg_net::DatagramError as E;
    let ipv6 = match err {
        E::Group(msg_net::group::GroupError::Join { group, .. }) => group.is_ipv6(),
        E::Send { addr, .. } => addr.is_ipv6(),
        _ => false,
    };
    let fix = if err.no_route_to_group() && ipv6 {
        // An IPv4 route, or an address for an interface, does nothing for
        // an IPv6 group (audit, round eleven: both were the hint).
        "no route covers the group here: name the interface by its name or index with --iface \
         (eth0, say)"
    } else if err.no_route_to_group() {
        "no route covers the group here: name the interface with --iface (--iface lo for this \
         host alone), or add a route, e.g. ip route add 224.0.0.0/4 dev lo"
    } else if err.no_route_for_broadcast() {
        // The bare `Network is unreachable` of a host with no default
        // route said nothing of why a broadcast has none (audit, round
        // eleven).
        "the limited broadcast leaves by the interface of the route that covers it, the default \
         one unless another is added, and this host has none: send to a subnet's broadcast \
         address instead (ip -br addr shows each interface's), or add a route, e.g. ip route \
         add 255.255.255.255 dev eth0"
    } else if err.needs_broadcast() {
        "a broadcast address? send to one with --broadcast"
    } else if let msg_net::DatagramError::Group(err) = err {
        return Some(group(err));
    } else if refused(err) {
        "nothing receives there: its host answered a datagram sent there with ICMP 'port \
         unreachable'"
    } else {
        return None;
    };
    Some(format!("{err} ({fix})"))
}

/// Whether a UDP socket's call failed with `ECONNREFUSED`: the peer's host
/// answered an earlier datagram with ICMP "port unreachable", which Linux
/// reports at the connected socket's next call. The system's own words,
/// `Connection refused`, read as TCP's and say nothing of where (audit,
/// round nine).
fn refused(err: &msg_net::DatagramError) -> bool {
    use msg_net::DatagramError as E;
    match err {
        E::Recv(source) | E::Send { source, .. } => {
            source.kind() == std::io::ErrorKind::ConnectionRefused
        }
        _ => false,
    }
}

/// A group's option error, with the flag that fixes it.
pub(crate) fn group(err: &msg_net::group::GroupError) -> String {
    use msg_net::group::GroupError as E;
    match err {
        E::NeedsInterface { .. } | E::Ipv6InterfaceAddress { .. } => format!("{err} (--iface)"),
        E::SourceNotUnicast { .. } => format!("--source: {err}"),
        E::BroadcastToGroup { .. } => format!("--broadcast: {err}; drop --broadcast"),
        E::NoIpv6Broadcast { .. } => format!("--broadcast is IPv4's: {err}"),
        E::NotAGroup { .. } => {
            format!("--ttl, --iface, --loop and --source are for a group: {err}")
        }
        _ => err.to_string(),
    }
}

fn tcp(err: &msg_net::StreamError) -> Option<String> {
    match *err {
        msg_net::StreamError::TooLarge {
            body,
            max_frame,
            tag,
        } => Some(message_too_large(
            &BodyLimit::msg_framed(max_frame, tag > 0),
            body,
        )),
        msg_net::StreamError::BodyTooLarge { body, max_frame } => Some(message_too_large(
            &BodyLimit::length_framed(max_frame),
            body,
        )),
        // A write or read that meets the peer's reset (audit, round
        // twelve: a bare `Connection reset by peer` or `Broken pipe` under
        // `cannot send message N`).
        msg_net::StreamError::Io(ref io) if msg_net::peer_left(io) => Some(format!(
            "{err} (the peer had closed the connection: what was sent from then on did not \
                 arrive)"
        )),
        // A client's writes wait the longer of its --timeout and 30s (a
        // listener's log words its own, in `listener_text`).
        msg_net::StreamError::WriteStalled { after } => Some(format!(
            "the listener took nothing sent to it for {} (the longer of --timeout and 30s): \
             is it stopped, or not reading?",
            format_duration(after)
        )),
        // The first bytes of TLS, where a frame's length belonged: a
        // ClientHello reaches a listener, an alert a client.
        msg_net::StreamError::Tls(record) => Some(format!(
            "{err} ({})",
            if record == msg_net::tls::TlsRecord::Handshake {
                "start msg listen with --tls"
            } else {
                "add --tls"
            }
        )),
        // A length that reads as text: a peer that does not frame at all
        // (an SSH or SMTP server's greeting, an HTTP answer), whose first
        // four bytes were taken for a length (audit, round eight).
        msg_net::StreamError::FrameTooLarge { len, .. } => {
            let first = u32::try_from(len).ok()?.to_be_bytes();
            first
                .iter()
                .all(|&byte| byte.is_ascii_graphic() || byte == b' ')
                .then(|| {
                    format!(
                        "{err} (its first bytes, \"{}\", read as a length: a peer that is not \
                         msg? --raw shows the bytes as they come)",
                        String::from_utf8_lossy(&first)
                    )
                })
        }
        // A whole frame arrived (its length matched the bytes behind it)
        // and held no msg header: most likely a peer that sends a bare
        // length and its bytes, as most length-prefixed protocols do.
        msg_net::StreamError::Decode(
            msg_proto::Error::Truncated { .. }
            | msg_proto::Error::BadMagic { .. }
            | msg_proto::Error::UnknownVersion { .. },
        ) => Some(format!(
            "{err} (a bare length and its bytes, with no msg header? --framing length \
             reads those, --raw shows the bytes as they come)"
        )),
        _ => None,
    }
}

fn file(err: &FileError) -> Option<String> {
    match err {
        FileError::Refused { reason, .. } => ending_with_peer_text(err, reason),
        FileError::Unexpected { found } => Some(format!(
            "the receiver answered {found:?} to a file transfer: is it msg listen --save-dir?"
        )),
        FileError::NeedsTcp => Some(
            "files need --tcp, --unix, --seqpacket or --quic: a file must arrive whole, on a connection"
                .to_owned(),
        ),
        _ => None,
    }
}

/// `err`'s text, which ends in the peer's `text`, with that text hinted.
fn ending_with_peer_text(err: &dyn std::fmt::Display, text: &str) -> Option<String> {
    let hinted = hinted_peer_text(text)?;
    let shown = err.to_string();
    Some(format!("{}{hinted}", shown.strip_suffix(text)?))
}

/// A text a listener sent (already made safe to print), with the flag
/// that would change the answer named when msg-net's listener wrote it.
pub(crate) fn peer_text(text: &str) -> String {
    hinted_peer_text(text).unwrap_or_else(|| text.to_owned())
}

/// A fixed refusal and what follows it.
const FIXED: [(&str, &str); 4] = [
    (
        refusal::NEEDS_SECRET,
        "; start msg send with --secret-file or MSG_SECRET",
    ),
    (
        refusal::HAS_NO_SECRET,
        "; start msg listen with --secret-file or MSG_SECRET, or send without one",
    ),
    (
        refusal::RUNS_NO_COMMANDS,
        "; start it with --exec and a secret",
    ),
    (
        refusal::SAVES_NO_FILES,
        "; start msg listen with --save-dir DIR",
    ),
];

/// A refusal with a value in it, where in its text after the value the
/// flag goes (before the first `at`; at the end for ""), and the flag
/// given the value.
type Placed = (Template, &'static str, fn(&str) -> String);

const PLACED: [Placed; 9] = [
    (refusal::MAX_CONNS, ";", |max| {
        format!(" (--max-conns {max})")
    }),
    (refusal::HANDSHAKES_BUSY, ";", |max| {
        format!(" (--max-handshakes {max})")
    }),
    (refusal::FRAME_TOO_LARGE, ":", |_| {
        " (msg listen --max-frame)".to_owned()
    }),
    (refusal::IDLE, "", |_| " (--idle-timeout)".to_owned()),
    (refusal::FILE_EXISTS, "overwrite", |_| "--".to_owned()),
    (refusal::PROGRAM_NOT_ALLOWED, "", |_| {
        " (--exec-allow)".to_owned()
    }),
    (refusal::COMMANDS_RUNNING, "", |max| {
        format!(" (--exec-max {max})")
    }),
    (refusal::COMMAND_TIMEOUT, " and was killed", |_| {
        " (--exec-timeout)".to_owned()
    }),
    (refusal::COMMAND_OUTPUT, " and was killed", |_| {
        " (--exec-max-output)".to_owned()
    }),
];

fn hinted_peer_text(text: &str) -> Option<String> {
    if let Some((_, hint)) = FIXED.iter().find(|(fixed, _)| *fixed == text) {
        return Some(format!("{text}{hint}"));
    }
    if text == refusal::ONE_AT_A_TIME {
        return Some(
            "this listener serves one connection at a time (msg listen --once, or \
             --max-conns 1); try again later"
                .to_owned(),
        );
    }
    if text == refusal::BLOCKING_ENGINE {
        return Some(
            "this listener (msg listen --io blocking) takes no files or commands; \
             start it with --io tokio"
                .to_owned(),
        );
    }
    PLACED
        .iter()
        .find_map(|(template, at, flag)| template.insert(text, at, flag))
}

/// Where a body limit comes from, as the user knows it: " on IPv4", ",
/// set by --max-frame".
pub(crate) fn set_by(set_by: SetBy) -> String {
    match set_by {
        SetBy::Family(family) => format!(" on {family}"),
        SetBy::MaxFrame => ", set by --max-frame".to_owned(),
        set_by @ SetBy::SendBuffer => set_by.words(),
    }
}

/// A message of `len` bytes, over `limit`: what it is, what holds at most
/// what, and what sets that.
pub(crate) fn message_too_large(limit: &BodyLimit, len: usize) -> String {
    limit.refusal(len, &set_by(limit.set_by))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn shown(err: impl Into<anyhow::Error>) -> String {
        chain(&err.into())
    }

    /// Audit, round four: a TLS listener with no handshake turn free
    /// closes a waiting client too, which was told only that the listener
    /// might not be TLS.
    #[test]
    fn a_tls_listener_that_closed_the_handshake_may_have_been_busy() {
        let closed = shown(msg_net::Error::from(msg_net::tls::TlsError::Closed(
            msg_net::tls::Peer::Listener,
        )));
        assert!(
            closed.contains("is it msg listen without --tls"),
            "{closed}"
        );
        assert!(closed.contains("(msg listen --max-handshakes)"), "{closed}");
    }

    /// A CA's own certificate presented as the peer's (openssl req -x509's
    /// default) is pointed at pinning.
    #[test]
    fn a_ca_certificate_as_the_peers_own_is_pointed_at_pinning() {
        let fingerprint: msg_net::tls::Fingerprint = "00".repeat(32).parse().unwrap();
        let err = msg_net::Error::from(msg_net::tls::TlsError::Certificate {
            problem: msg_net::tls::CertProblem::Other(
                "it is a CA's certificate (basicConstraints CA:TRUE) presented as the peer's own"
                    .to_owned(),
            ),
            fingerprint,
        });
        let text = shown(err);
        assert!(
            text.contains("pin it with --tls-fingerprint (the listener logs it)"),
            "{text}"
        );
    }

    #[test]
    fn a_bare_length_prefix_at_a_msg_peer_names_both_ways_out() {
        for decoded in [
            msg_proto::Error::Truncated { len: 5 },
            msg_proto::Error::BadMagic { found: *b"{\"" },
            msg_proto::Error::UnknownVersion { version: 9 },
        ] {
            let cause = decoded.to_string();
            let err = msg_net::Error::Tcp(msg_net::StreamError::Decode(decoded));
            // As a listener logs it, and as the CLI reports it.
            for text in [chain_of(&err), shown(err)] {
                assert!(text.starts_with("invalid message ("), "{text}");
                assert!(text.contains("--framing length"), "{text}");
                assert!(text.contains("--raw"), "{text}");
                assert!(text.ends_with(&format!("): {cause}")), "{text}");
            }
        }
        // Any other bad frame is only what it is.
        let other = msg_net::StreamError::Decode(msg_proto::Error::UnknownKind { kind: 0x7f });
        assert!(!shown(other).contains("--framing"));
        assert_eq!(
            shown(msg_net::StreamError::BodyTooLarge {
                body: 10,
                max_frame: 4
            }),
            "message is 10 bytes; a length-prefixed frame holds at most 4 bytes, set by --max-frame"
        );
    }

    #[test]
    fn errors_name_the_flag_that_sets_their_limit() {
        let after = Duration::from_secs(300);
        assert_eq!(
            shown(msg_net::Error::Idle { after }),
            "idle for 5m (--idle-timeout): closed"
        );
        let after = Duration::from_millis(500);
        assert_eq!(
            shown(anyhow::Error::new(msg_net::Error::FrameTimeout { after }).context("serving")),
            "serving: a frame did not complete within 500ms (--frame-timeout): closed"
        );
        assert_eq!(
            shown(msg_net::Error::NotInBlockingEngine("files")),
            "the blocking engine does not do files: use the tokio engine (--io tokio)"
        );
        let too_large = msg_net::StreamError::TooLarge {
            body: 100,
            max_frame: 100,
            tag: 0,
        };
        assert_eq!(
            shown(msg_net::Error::Tcp(too_large)),
            "message is 100 bytes; a TCP frame holds at most 100 bytes, set by --max-frame \
             (72 for the body after a 28-byte header)"
        );
        let too_large = msg_net::StreamError::TooLarge {
            body: 41,
            max_frame: 100,
            tag: msg_proto::auth::TAG_LEN,
        };
        assert_eq!(
            shown(too_large),
            "message is 41 bytes; a TCP frame holds at most 100 bytes, set by --max-frame \
             (40 for the body after a 28-byte header and a 32-byte tag)"
        );
        assert_eq!(
            shown(msg_net::Error::File(FileError::NeedsTcp)),
            "files need --tcp, --unix, --seqpacket or --quic: a file must arrive whole, on a connection"
        );
        assert_eq!(
            shown(FileError::Unexpected {
                found: msg_proto::Kind::Pong
            }),
            "the receiver answered Pong to a file transfer: is it msg listen --save-dir?"
        );
        assert_eq!(
            shown(msg_net::StreamError::Decode(msg_proto::Error::NeedsSecret)),
            "invalid message: this peer uses a secret; start this side with the same one \
             (--secret-file or MSG_SECRET)"
        );
        // Any other error is shown as it is.
        assert_eq!(
            shown(anyhow::anyhow!("inner").context("outer")),
            "outer: inner"
        );
    }

    #[test]
    fn a_listener_s_refusals_name_the_flag() {
        let said = |text: &str| shown(msg_net::Error::Peer(text.to_owned()));
        assert_eq!(
            said(refusal::NEEDS_SECRET),
            "the listener says: this listener needs a secret; start msg send with --secret-file \
             or MSG_SECRET"
        );
        assert_eq!(
            said(&refusal::MAX_CONNS.format(2)),
            "the listener says: this listener serves at most 2 connections at once \
             (--max-conns 2); try again later"
        );
        assert_eq!(
            said(&refusal::IDLE.format("5m")),
            "the listener says: idle for 5m: closing (--idle-timeout)"
        );
        assert_eq!(
            said(refusal::BLOCKING_ENGINE),
            "the listener says: this listener (msg listen --io blocking) takes no files or \
             commands; start it with --io tokio"
        );
        assert_eq!(
            shown(msg_net::auth::AuthFailure::Peer(
                refusal::HAS_NO_SECRET.to_owned()
            )),
            "the peer says: this listener has no secret; start msg listen with --secret-file or \
             MSG_SECRET, or send without one"
        );
        let refused = |reason: String| {
            shown(FileError::Refused {
                name: "a.txt".to_owned(),
                reason,
            })
        };
        assert_eq!(
            refused(refusal::SAVES_NO_FILES.to_owned()),
            "the receiver refused a.txt: this listener saves no files; start msg listen with \
             --save-dir DIR"
        );
        assert_eq!(
            refused(refusal::FILE_EXISTS.format("a.txt")),
            "the receiver refused a.txt: a.txt already exists there, and the listener does not \
             --overwrite"
        );
        // What msg exec shows.
        assert_eq!(
            peer_text(refusal::RUNS_NO_COMMANDS),
            "this listener runs no commands; start it with --exec and a secret"
        );
        assert_eq!(
            peer_text(&refusal::PROGRAM_NOT_ALLOWED.format("sh")),
            "sh is not one of the programs this listener runs (--exec-allow)"
        );
        assert_eq!(
            peer_text(&refusal::COMMANDS_RUNNING.format(4)),
            "this listener runs at most 4 at once, and that many are running (--exec-max 4)"
        );
        assert_eq!(
            peer_text(&refusal::COMMAND_TIMEOUT.format("300ms")),
            "the command ran past 300ms (--exec-timeout) and was killed"
        );
        assert_eq!(
            peer_text(&refusal::COMMAND_OUTPUT.format(1000)),
            "the command wrote more than 1000 bytes (--exec-max-output) and was killed"
        );
        // Another listener's words, or an older msg's (which named its
        // flags itself), are shown as they came.
        for text in [
            "no",
            "this listener serves at most 2 connections at once (--max-conns 2); try again later",
            "this listener needs a secret; start msg send with --secret-file or MSG_SECRET",
        ] {
            assert_eq!(peer_text(text), text);
        }
    }
}
