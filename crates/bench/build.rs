//! Puts the git commit msg is built from into `MSG_COMMIT`, for the
//! `"meta"` object of `msg bench --json` (`src/meta.rs`). A build outside
//! a git checkout (a crate tarball, git missing) gets none, and the field
//! is null: never a guess.

use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

fn main() {
    let commit = git(&["rev-parse", "--short=12", "HEAD"]).unwrap_or_default();
    println!("cargo:rustc-env=MSG_COMMIT={commit}");
    // Built again when HEAD moves: a commit, a checkout. (In a worktree
    // HEAD is the worktree's own; the branches are the common directory's.)
    if let Some(dir) = git(&["rev-parse", "--absolute-git-dir"]) {
        println!("cargo:rerun-if-changed={dir}/HEAD");
    }
    if let Some(common) = git(&["rev-parse", "--path-format=absolute", "--git-common-dir"]) {
        // Only paths that exist: Cargo runs a build script again on every
        // build while one it names is missing.
        for path in [
            format!("{common}/refs/heads"),
            format!("{common}/packed-refs"),
        ] {
            if std::path::Path::new(&path).exists() {
                println!("cargo:rerun-if-changed={path}");
            }
        }
    }
    println!("cargo:rerun-if-changed=build.rs");
}
