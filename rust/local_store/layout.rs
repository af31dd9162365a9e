//! Where the local store keeps what: blob names, temporary names, journals; and how a
//! reader tells a whole blob from one still being written (invariant 1, at the door).

use std::collections::HashMap;
use std::ffi::OsString;
use std::fs::{self, Metadata};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::caller::Caller;
use crate::hash::{Md5Digest, BUF_SIZE};
use crate::parts::hex;
use crate::progress::{self, Counter};

/// Files up to this size are read into the thread's buffer once, hashed from it and
/// written from it; larger ones go through the kernel (`copy_file_range`).
pub const SMALL: u64 = BUF_SIZE as u64;

/// Where a store keeps its blobs and temporary files, and how it makes them durable.
#[derive(Clone, Debug)]
pub struct Layout {
    /// `blobs/md5` under the store's root.
    pub blobs: PathBuf,
    /// The store's `tmp/`, on the same filesystem.
    pub tmp: PathBuf,
    /// Unique to this call among every writer of the store: temporary names carry it.
    pub tag: String,
    /// `syncfs` once for the batch; false: `fsync` each file before its rename (the
    /// caller then syncs the directories that received renames).
    pub syncfs: bool,
    /// Write small blobs straight at their names (`in_place`), under a journal; only
    /// with `syncfs` (without it every file is fsynced before its rename anyway).
    pub in_place: bool,
    /// Bytes (and files) hashed and stored so far, for a caller showing progress: they
    /// move while one large file is hashed and copied.
    pub hashed: Option<Arc<Counter>>,
    pub stored: Option<Arc<Counter>>,
    /// Sources are opened with this user's rights (`None`: the daemon's own); such a
    /// source is always copied, never taken: its owner could still change it.
    pub caller: Option<Caller>,
    /// Snapshot directories found with (`true`) or without a link on their path.
    pub linkless_dirs: Arc<Mutex<HashMap<PathBuf, bool>>>,
}

/// Where the blob with MD5 `md5` lives under `blobs` (`blobs/md5` of a store).
pub fn blob_path(blobs: &Path, md5: &Md5Digest) -> PathBuf {
    let name = hex(md5);
    blobs.join(&name[..2]).join(name)
}

/// Where a batch tagged `tag` keeps its journal.
pub fn journal_path(tmp: &Path, tag: &str) -> PathBuf {
    tmp.join(format!("{tag}.blobs"))
}

impl Layout {
    pub fn blob_path(&self, md5: &Md5Digest) -> PathBuf {
        blob_path(&self.blobs, md5)
    }

    /// This call's journal (see `in_place`).
    pub fn journal_path(&self) -> PathBuf {
        journal_path(&self.tmp, &self.tag)
    }

    /// Blobs go to their names under a journal (written in place, snapshots linked)
    /// before the batch's syncfs, rather than renamed after it (invariant 4).
    pub(super) fn journaled(&self) -> bool {
        self.in_place && self.syncfs
    }

    /// One more blob of `len` bytes is in (or found already stored).
    pub(super) fn count_stored(&self, len: u64) {
        progress::add_bytes(self.stored.as_deref(), len);
        progress::add_file(self.stored.as_deref());
    }

    pub(super) fn tmp_path(&self, md5: &Md5Digest, index: usize) -> PathBuf {
        let mut name = OsString::from(hex(md5));
        name.push(format!(".{}.{index}", self.tag));
        self.tmp.join(name)
    }
}

/// The 16 bytes of an MD5 written as 32 lower-case hex digits; `None` otherwise.
pub fn parse_md5_hex(text: &str) -> Option<Md5Digest> {
    let digits = text.as_bytes();
    if digits.len() != 32 {
        return None;
    }
    let value = |d: u8| match d {
        b'0'..=b'9' => Some(d - b'0'),
        b'a'..=b'f' => Some(d - b'a' + 10),
        _ => None,
    };
    let mut md5 = [0u8; 16];
    for (byte, pair) in md5.iter_mut().zip(digits.chunks_exact(2)) {
        *byte = value(pair[0])? << 4 | value(pair[1])?;
    }
    Some(md5)
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

#[cfg(test)]
mod tests {
    use super::*;
    use md5::{Digest, Md5};

    #[test]
    fn md5_hex_parses_lower_case_digits_only() {
        let md5: Md5Digest = Md5::digest(b"x").into();
        assert_eq!(parse_md5_hex(&hex(&md5)), Some(md5));
        assert_eq!(parse_md5_hex(&hex(&md5).to_uppercase()), None);
        assert_eq!(parse_md5_hex("0123"), None);
        assert_eq!(parse_md5_hex(&"g".repeat(32)), None);
    }
}
