//! Small blobs written straight at their final names, without a temporary file and a
//! rename each: for a version of many small files the cross-directory renames cost as
//! much as creating the files. What makes that safe is written at the door
//! (invariants 1, 2, 5 and 7); this module holds the journal and the write itself.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use crate::hash::Md5Digest;
use crate::parts::hex;

use super::layout::is_complete;
use super::sync::close;

/// Files up to this size are written in place; above it a rename is cheap next to the
/// copy, and the bytes would be held in memory between the read and the write.
pub const MAX_SIZE: u64 = 64 << 10;

/// Bytes one call may hold between reading its small files and writing them in place;
/// the rest of the batch goes through `tmp/` as before.
pub const BUDGET: u64 = 64 << 20;

/// What each call may still hold for in-place writes.
pub struct Budget(AtomicU64);

impl Budget {
    pub fn new() -> Self {
        Budget(AtomicU64::new(BUDGET))
    }

    /// None at all: every small file goes through `tmp/`.
    pub fn empty() -> Self {
        Budget(AtomicU64::new(0))
    }

    /// Reserve `len` bytes for one file, if the budget has them.
    pub fn take(&self, len: u64) -> bool {
        self.0
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| {
                left.checked_sub(len)
            })
            .is_ok()
    }
}

impl Default for Budget {
    fn default() -> Self {
        Self::new()
    }
}

/// The mode a finished blob gets: what `0o644` becomes under the process's umask,
/// never without the owner's read bit (that would read as incomplete).
fn finished_mode() -> u32 {
    static MODE: OnceLock<u32> = OnceLock::new();
    *MODE.get_or_init(|| {
        let umask = fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|status| {
                let line = status.lines().find(|l| l.starts_with("Umask:"))?;
                u32::from_str_radix(line["Umask:".len()..].trim(), 8).ok()
            })
            .unwrap_or(0o022);
        (0o644 & !umask) | 0o400
    })
}

/// Write the journal of the blobs about to be written in place, durably: the file and
/// the directory entry that names it are on disk when this returns (invariant 2).
pub fn write_journal<'a>(
    journal: &Path,
    md5s: impl Iterator<Item = &'a Md5Digest>,
) -> io::Result<()> {
    let mut text = String::new();
    for md5 in md5s {
        text.push_str(&hex(md5));
        text.push('\n');
    }
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .open(journal)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()?;
    let dir = journal.parent().expect("a journal lives in tmp/");
    File::open(dir)?.sync_all()
}

/// What an in-place write found.
#[derive(Debug, PartialEq, Eq)]
pub enum Written {
    /// The blob is written, whole (not durable until the next `syncfs`).
    Whole,
    /// A whole blob was there already.
    Present,
    /// An incomplete file is there: another writer's, or a crashed one's. The caller
    /// stores the blob another way (a complete copy renamed over it).
    Busy,
}

/// Create the blob at `blob` (and its fan-out directory if missing) with `bytes`,
/// giving it its permission bits last (invariant 1). A failure leaves at most an
/// incomplete file, which nobody trusts and `cleanup::recover` removes.
pub fn write(blob: &Path, bytes: &[u8]) -> io::Result<Written> {
    let create = || {
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o000)
            .open(blob)
    };
    let mut file = match create() {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            match fs::create_dir(blob.parent().expect("a blob path has a parent")) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(e),
            }
            create()?
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            let meta = fs::metadata(blob)?;
            return Ok(if is_complete(&meta) {
                Written::Present
            } else {
                Written::Busy
            });
        }
        Err(e) => return Err(e),
    };
    file.write_all(bytes)?;
    file.set_permissions(fs::Permissions::from_mode(finished_mode()))?;
    close(file)?;
    Ok(Written::Whole)
}

/// An unfinished in-place write at `path`: `bytes` without permission bits.
#[cfg(test)]
pub(super) fn leave_incomplete(path: &Path, bytes: &[u8]) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, bytes).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(0o000)).unwrap();
}

#[cfg(test)]
mod tests {
    use super::super::layout::{blob_path, present};
    use super::*;
    use md5::{Digest, Md5};

    #[test]
    fn invariant_no_mode_bits_means_incomplete() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = dir.path().join("blobs");
        fs::create_dir(&blobs).unwrap();
        let md5: Md5Digest = Md5::digest(b"abc").into();
        let blob = blob_path(&blobs, &md5);
        assert!(!present(&blob));
        assert_eq!(write(&blob, b"abc").unwrap(), Written::Whole);
        assert!(present(&blob));
        assert_eq!(fs::read(&blob).unwrap(), b"abc");
        assert_eq!(write(&blob, b"abc").unwrap(), Written::Present);
        // An incomplete file (mode 0) is somebody's write in progress.
        let other: Md5Digest = Md5::digest(b"xyz").into();
        let busy = blob_path(&blobs, &other);
        leave_incomplete(&busy, b"x");
        assert!(!present(&busy));
        assert_eq!(write(&busy, b"xyz").unwrap(), Written::Busy);
    }

    #[test]
    fn the_budget_runs_out() {
        let budget = Budget::new();
        assert!(budget.take(BUDGET - 10));
        assert!(!budget.take(11));
        assert!(budget.take(10));
    }
}
