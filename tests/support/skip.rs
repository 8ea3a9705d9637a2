//! A test that cannot run here (a tool missing, no root) says so where
//! `cargo test` shows it. Shared by every test target in the workspace:
//! tests/support includes it, and the crates' own tests include it by
//! path (`#[path = "../../../tests/support/skip.rs"]`).

use std::io::Write;

/// Reports that the running test skipped itself, or a part of itself, and
/// why, as a `SKIP <test>: <why>` line on stderr: `cargo test 2>&1 | grep
/// SKIP` lists what a run did not check.
///
/// It writes to the stderr handle directly, not with `eprintln!`: libtest
/// captures the print macros of a test that passes and never shows them,
/// so a skipped test would look like a test that ran. The test's name is
/// its thread's, which libtest names after the test.
pub(crate) fn skip(why: &str) {
    let thread = std::thread::current();
    let test = thread.name().unwrap_or("a test");
    // Nothing to do when stderr is closed: the test still passes.
    let _ = writeln!(std::io::stderr().lock(), "SKIP {test}: {why}");
}
