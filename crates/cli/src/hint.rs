//! The flags behind what msg's libraries say, named in one place.
//!
//! The libraries state a condition and its limit in their own words: they
//! have no command line. Where one of msg's flags sets that limit, or
//! changes the outcome, this module names it.

/// What turns Nagle's algorithm on, for `msg demo sticky`'s text.
pub(crate) const NAGLE_ON: &str = "--nodelay=false";
