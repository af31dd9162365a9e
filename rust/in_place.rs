//! Small blobs written straight at their final names, without a temporary file and a
//! rename each: on this project's VM the 10,000 cross-directory renames of a
//! 10,000-file version cost as much as creating the files (15-25 µs each).
//!
//! Two things keep a blob written in place from ever being trusted before it is whole:
//!
//! - **the mode**: it is created with no permission bits and given its final mode only
//!   once every byte is written, so a reader (another batch of this daemon, another
//!   host on a shared directory) that finds it meanwhile sees an incomplete blob and
//!   neither trusts it nor removes it ([`is_complete`]);
//! - **a journal per batch** in the store's `tmp/`: the MD5 of every blob the batch
//!   is about to write in place, on disk (file and directory fsynced) before the first
//!   of them is created, and removed only once a `syncfs` has put them on disk. After a
//!   crash (kill -9 mid-write, or a power cut that kept a name but not its bytes),
//!   [`recover`] re-hashes the blobs a leftover journal names and removes every one
//!   that is not whole, before the store takes any work.
//!
//! A complete blob is never removed here once written: another batch may already
//! trust it.

use std::fs::{self, File, Metadata, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use rayon::prelude::*;

use crate::hash::{md5_stream, Md5Digest};
use crate::parts::hex;
use crate::store::{blob_path, parse_md5_hex};

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

/// A blob file that has its permission bits is whole: an in-place write gives them
/// last. Every other writer (rename of a complete file) makes it whole at once.
pub fn is_complete(meta: &Metadata) -> bool {
    meta.mode() & 0o777 != 0
}

/// The blob at `path` is there and whole.
pub fn present(path: &Path) -> bool {
    fs::metadata(path).is_ok_and(|m| is_complete(&m))
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

/// Where a batch tagged `tag` keeps its journal.
pub fn journal_path(tmp: &Path, tag: &str) -> PathBuf {
    tmp.join(format!("{tag}.blobs"))
}

/// Write the journal of the blobs about to be written in place, durably: the file and
/// the directory entry that names it are on disk when this returns.
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

/// Create the blob at `blob` (and its fan-out directory if missing) with `bytes`.
/// A failure leaves at most an incomplete file, which nobody trusts and [`recover`]
/// removes.
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
    crate::store::close(file)?;
    Ok(Written::Whole)
}

/// After a crash: re-hash every blob the journal names and remove those that are
/// incomplete or not what their name says. Returns how many were removed; the caller
/// makes the removals durable before it removes the journal.
pub fn recover(blobs: &Path, journal: &Path) -> io::Result<usize> {
    let mut md5s = Vec::new();
    for line in BufReader::new(File::open(journal)?).lines() {
        // A torn last line is a blob whose write never began: nothing to check.
        if let Some(md5) = parse_md5_hex(line?.trim()) {
            md5s.push(md5);
        }
    }
    let removed = md5s
        .par_iter()
        .map(|md5| {
            let path = blob_path(blobs, md5);
            let meta = match fs::metadata(&path) {
                Ok(meta) => meta,
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
                Err(e) => return Err(e),
            };
            if is_complete(&meta) && md5_stream(File::open(&path)?)?.0 == *md5 {
                return Ok(0);
            }
            match fs::remove_file(&path) {
                Ok(()) => Ok(1),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(0),
                Err(e) => Err(e),
            }
        })
        .collect::<io::Result<Vec<usize>>>()?;
    Ok(removed.into_iter().sum())
}

/// An unfinished in-place write at `path`: `bytes` without permission bits.
#[cfg(test)]
pub(crate) fn leave_incomplete(path: &Path, bytes: &[u8]) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, bytes).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(0o000)).unwrap();
}

#[cfg(test)]
mod tests {
    use super::*;
    use md5::{Digest, Md5};

    #[test]
    fn a_blob_written_in_place_is_whole_only_once_written() {
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
    fn recovery_removes_what_a_journal_names_that_is_not_whole() {
        let dir = tempfile::tempdir().unwrap();
        let (blobs, tmp) = (dir.path().join("blobs"), dir.path().join("tmp"));
        fs::create_dir(&blobs).unwrap();
        fs::create_dir(&tmp).unwrap();
        let md5 = |data: &[u8]| -> Md5Digest { Md5::digest(data).into() };
        let (good, torn, unfinished, absent, unlisted) = (
            md5(b"good"),
            md5(b"torn"),
            md5(b"unfinished"),
            md5(b"absent"),
            md5(b"unlisted"),
        );
        write(&blob_path(&blobs, &good), b"good").unwrap();
        write(&blob_path(&blobs, &torn), b"to").unwrap(); // whole mode, wrong bytes
        write(&blob_path(&blobs, &unlisted), b"nope").unwrap();
        leave_incomplete(&blob_path(&blobs, &unfinished), b"unfinished");
        let journal = journal_path(&tmp, "t");
        write_journal(&journal, [good, torn, unfinished, absent].iter()).unwrap();
        assert_eq!(recover(&blobs, &journal).unwrap(), 2);
        assert!(present(&blob_path(&blobs, &good)));
        assert!(!blob_path(&blobs, &torn).exists());
        assert!(!blob_path(&blobs, &unfinished).exists());
        assert!(blob_path(&blobs, &unlisted).exists()); // not the journal's to judge
    }

    #[test]
    fn the_budget_runs_out() {
        let budget = Budget::new();
        assert!(budget.take(BUDGET - 10));
        assert!(!budget.take(11));
        assert!(budget.take(10));
    }
}
