//! Where a folder's file is written until it checks out, and how it gets
//! its name: a file without a name (Linux's `O_TMPFILE`), or a partial
//! file beside the final name, renamed into place.

use std::fs;
use std::os::fd::{BorrowedFd, OwnedFd};

#[cfg(not(any(target_os = "linux", target_os = "android")))]
use rustix::fs::AtFlags;
use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;

use super::super::{PARTIAL_PREFIX, PARTIAL_RANDOM};

/// Makes a file without a name in `dir`, with the entry's mode and the
/// owner's read and write (the umask or a default ACL may take bits away;
/// the mode is set again at the end, unless the writer knows that none
/// were taken).
#[cfg(any(target_os = "linux", target_os = "android"))]
pub(super) fn create_unnamed(dir: BorrowedFd<'_>, mode: u32) -> Result<OwnedFd, Errno> {
    let flags = OFlags::WRONLY | OFlags::TMPFILE | OFlags::CLOEXEC;
    let mode = Mode::from_raw_mode(mode & super::super::mode_mask()) | Mode::RUSR | Mode::WUSR;
    rustix::fs::openat(dir, ".", flags, mode)
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub(super) fn create_unnamed(_dir: BorrowedFd<'_>, _mode: u32) -> Result<OwnedFd, Errno> {
    Err(Errno::OPNOTSUPP)
}

/// The process's umask, from `/proc/self/status` (asking `umask(2)` would
/// set it, for a moment, for every thread); `None` when not found there.
pub(super) fn process_umask() -> Option<u32> {
    let status = fs::read_to_string("/proc/self/status").ok()?;
    let line = status
        .lines()
        .find_map(|line| line.strip_prefix("Umask:"))?;
    u32::from_str_radix(line.trim(), 8).ok()
}

/// Whether the folder `dir` has no default ACL (or its file system none).
#[cfg(any(target_os = "linux", target_os = "android"))]
pub(super) fn no_default_acl(dir: &OwnedFd) -> bool {
    matches!(
        rustix::fs::fgetxattr_query(dir, "system.posix_acl_default"),
        Err(Errno::NODATA | Errno::OPNOTSUPP)
    )
}

/// Files without a name are Linux's: never asked elsewhere.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub(super) fn no_default_acl(_dir: &OwnedFd) -> bool {
    false
}

/// Makes a partial file in `dir` under a fresh name of the form the stale
/// cleanup knows: the name, and the open file.
pub(in crate::file) fn create_partial(dir: BorrowedFd<'_>) -> Result<(String, OwnedFd), Errno> {
    loop {
        let name = partial_name();
        let flags =
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        match rustix::fs::openat(dir, name.as_str(), flags, Mode::RUSR | Mode::WUSR) {
            Ok(fd) => return Ok((name, fd)),
            Err(Errno::EXIST) => continue,
            Err(err) => return Err(err),
        }
    }
}

/// `.msg-partial-` and six random letters or digits.
pub(super) fn partial_name() -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let mut random = [0u8; PARTIAL_RANDOM];
    // Without randomness the name is still tried until it is free.
    let _ = getrandom::fill(&mut random);
    let suffix: String = random
        .iter()
        .map(|b| char::from(ALPHABET[usize::from(*b) % ALPHABET.len()]))
        .collect();
    format!("{PARTIAL_PREFIX}{suffix}")
}

/// Renames the partial file to its final name in the same folder; without
/// `overwrite`, never over a file that appeared meanwhile.
pub(in crate::file) fn rename_into_place(
    dir: &OwnedFd,
    partial: &str,
    name: &str,
    overwrite: bool,
) -> Result<(), Errno> {
    if overwrite {
        return rustix::fs::renameat(dir, partial, dir, name);
    }
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        rustix::fs::renameat_with(dir, partial, dir, name, rustix::fs::RenameFlags::NOREPLACE)
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    {
        // A link fails on an existing name, as RENAME_NOREPLACE does.
        rustix::fs::linkat(dir, partial, dir, name, AtFlags::empty())?;
        rustix::fs::unlinkat(dir, partial, AtFlags::empty())
    }
}
