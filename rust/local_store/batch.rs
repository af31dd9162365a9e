//! What a call is asked (one `Request` per blob) and what it answers (one `Outcome`
//! each), and whose fault a failure is (invariant 10, at the door).

use std::io;
use std::path::{Path, PathBuf};

use crate::error::CoreError;
use crate::hash::{FileDigest, Md5Digest};

/// One blob to store.
#[derive(Clone, Debug)]
pub struct Request {
    pub source: PathBuf,
    /// The MD5 the caller took; `None` hashes the source while storing it.
    pub md5: Option<Md5Digest>,
    /// The size the caller hashed: a source of another size is refused.
    pub size: Option<u64>,
    /// The mtime the caller hashed at: a source modified since is refused.
    pub mtime_ns: Option<i64>,
    /// The caller owns the source (a snapshot): link it into place when it is on the
    /// store's filesystem, instead of copying it (the caller removes its own name).
    pub take: bool,
    /// A snapshot in the spool: no component of its path may be a symbolic link.
    pub snapshot: bool,
}

/// How a source changed since the caller looked at it.
#[derive(Debug)]
pub struct Change {
    pub expected: u64,
    pub actual: u64,
    /// What changed, when it is not the size (`expected` and `actual` are then 0).
    pub what: Option<&'static str>,
}

/// Why a request was not stored.
#[derive(Debug)]
pub enum Fault {
    /// The source is missing, unreadable or not a regular file (names the source).
    Source(CoreError),
    /// The source is not what the caller hashed, or changed while it was copied.
    Changed(Change),
    /// The store could not be written (names the file or directory in the store).
    Store(CoreError),
}

/// What became of one request.
#[derive(Debug)]
pub enum Status {
    /// A new blob, named in this call.
    Stored,
    /// The blob was already in the store (or named by an earlier request of the call):
    /// nothing was written and the source was left alone.
    Present,
    /// Ready to be named, by a later call that takes `Outcome::staged` (asked for with
    /// `name: false`).
    Staged,
    /// Another request of the batch failed, so none was named; nothing of this one is
    /// left behind.
    NotStored,
    Failed(Fault),
}

/// One result per request.
#[derive(Debug)]
pub struct Outcome {
    /// The blob's MD5: the caller's, or the one taken here; `None` if the source
    /// failed before it was read.
    pub md5: Option<Md5Digest>,
    /// For requests without a digest: what was read (its MD5 and the source's stat).
    pub hashed: Option<FileDigest>,
    pub status: Status,
    /// For `Staged`: the file to rename into place (a copy in `tmp/`, or the source).
    pub staged: Option<PathBuf>,
}

/// Every request failed the same way (the store's directory cannot be used).
pub(super) fn all_failed(requests: &[Request], fault: impl Fn() -> Fault) -> Vec<Outcome> {
    let failed = |r: &Request| Outcome {
        md5: r.md5,
        hashed: None,
        status: Status::Failed(fault()),
        staged: None,
    };
    requests.iter().map(failed).collect()
}

/// The same error again, for a failure that every request of the batch shares.
pub(super) fn copy_of(error: &io::Error) -> io::Error {
    match error.raw_os_error() {
        Some(errno) => io::Error::from_raw_os_error(errno),
        None => io::Error::new(error.kind(), error.to_string()),
    }
}

pub(super) fn store_fault(path: &Path, error: io::Error) -> Fault {
    Fault::Store(CoreError::io(path, error))
}

pub(super) fn source_fault(path: &Path, error: io::Error) -> Fault {
    Fault::Source(CoreError::io(path, error))
}

pub(super) fn changed_size(expected: u64, actual: u64) -> Fault {
    Fault::Changed(Change {
        expected,
        actual,
        what: None,
    })
}

pub(super) fn changed(what: &'static str) -> Fault {
    Fault::Changed(Change {
        expected: 0,
        actual: 0,
        what: Some(what),
    })
}
