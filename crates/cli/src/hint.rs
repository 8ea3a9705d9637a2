//! The flags behind what msg's libraries report, named in one place.
//!
//! The libraries state a condition and its limit in their own words: they
//! have no command line. Where one of msg's flags sets that limit, or
//! changes the outcome, this module adds it: to an error on its way to
//! stderr ([`chain`]).

use std::error::Error as StdError;

use msg_net::Transport;
use msg_net::limits::{BodyLimit, SetBy};

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
    if let Some(err) = err.downcast_ref::<msg_tcp::Error>() {
        return tcp(err);
    }
    if let Some(msg_proto::Error::NeedsSecret) = err.downcast_ref::<msg_proto::Error>() {
        return Some(
            "this peer uses a secret; start msg listen with --secret-file or MSG_SECRET".to_owned(),
        );
    }
    None
}

fn net(err: &msg_net::Error) -> Option<String> {
    match err {
        msg_net::Error::Tcp(tcp_err) => tcp(tcp_err),
        _ => None,
    }
}

fn tcp(err: &msg_tcp::Error) -> Option<String> {
    match *err {
        msg_tcp::Error::TooLarge {
            body,
            max_frame,
            tag,
        } => BodyLimit::of(Transport::Tcp, None, max_frame, tag > 0, false)
            .map(|limit| message_too_large(&limit, body)),
        _ => None,
    }
}

/// Where a body limit comes from, as the user knows it: " on IPv4", ",
/// set by --max-frame".
pub(crate) fn set_by(set_by: SetBy) -> String {
    match set_by {
        SetBy::Family(family) => format!(" on {family}"),
        SetBy::MaxFrame => ", set by --max-frame".to_owned(),
    }
}

/// A message of `len` bytes, over `limit`: what it is, what holds at most
/// what, and what sets that.
pub(crate) fn message_too_large(limit: &BodyLimit, len: usize) -> String {
    let BodyLimit {
        max,
        carrier,
        total,
        set_by: source,
        overhead,
        ..
    } = limit;
    let source = set_by(*source);
    let body = if overhead.is_empty() {
        String::new()
    } else {
        format!(" ({max} for the body after {overhead})")
    };
    format!("message is {len} bytes; {carrier} holds at most {total} bytes{source}{body}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shown(err: impl Into<anyhow::Error>) -> String {
        chain(&err.into())
    }

    #[test]
    fn errors_name_the_flag_that_sets_their_limit() {
        let too_large = msg_tcp::Error::TooLarge {
            body: 100,
            max_frame: 100,
            tag: 0,
        };
        assert_eq!(
            shown(msg_net::Error::Tcp(too_large)),
            "message is 100 bytes; a TCP frame holds at most 100 bytes, set by --max-frame \
             (72 for the body after a 28-byte header)"
        );
        let too_large = msg_tcp::Error::TooLarge {
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
            shown(msg_tcp::Error::Decode(msg_proto::Error::NeedsSecret)),
            "invalid message: this peer uses a secret; start msg listen with --secret-file or \
             MSG_SECRET"
        );
        // Any other error is shown as it is.
        assert_eq!(
            shown(anyhow::anyhow!("inner").context("outer")),
            "outer: inner"
        );
    }
}
