//! The local store's batch put: many blobs per call, their bytes on disk before any
//! gets its final name, each failure reported on its item and blamed on the right side.
//!
//! For each request, spread over the rayon pool: skip it if its blob is already there;
//! else copy its source into `tmp/` (a small file is read into a buffer and written; a
//! large one is copied in the kernel), or, for a snapshot the store may take, plan to
//! hard-link the source itself into place (renamed where it cannot be linked). A
//! request without a digest is hashed on the way: a small file is read once for both,
//! a large one is hashed while the kernel copies it (and the copy dropped if its blob
//! is there). A small file (up to 64 KiB) is instead
//! kept in memory and, once the batch's journal is on disk, written straight at its
//! final name (see `in_place`). Then, if no request failed, one `syncfs` (or an
//! `fsync` per file where the caller asks for it), and the renames into
//! `blobs/md5/<hex[:2]>/<hex>`, in request order.
//!
//! Whose fault a failure is decides what the daemon does, so it is kept exact: the
//! source (missing, unreadable, not a regular file, changed) is the submission's
//! fault; anything in the store's directory is the store's.

use std::collections::{BTreeSet, HashMap};
use std::ffi::OsString;
use std::fs::{self, File, Metadata, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::thread;

use md5::{Digest, Md5};
use rayon::prelude::*;

use crate::caller::{dir_has_no_link, open_source, Caller};
use crate::error::CoreError;
use crate::hash::{
    advise_sequential, mtime_ns_inode, start_writeback, with_buffer, FileDigest, Md5Digest,
    BUF_SIZE, WRITEBACK_PIECE,
};
use crate::in_place::{self, Budget, Written};
use crate::parts::hex;
use crate::progress::{self, Counted, Counter};

/// Files up to this size are read into the thread's buffer once, hashed from it and
/// written from it; larger ones go through the kernel (`copy_file_range`).
pub const SMALL: u64 = BUF_SIZE as u64;

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

impl Layout {
    pub fn blob_path(&self, md5: &Md5Digest) -> PathBuf {
        blob_path(&self.blobs, md5)
    }

    /// Blobs go to their names under a journal (written in place, snapshots linked)
    /// before the batch's syncfs, rather than renamed after it.
    fn journaled(&self) -> bool {
        self.in_place && self.syncfs
    }

    /// One more blob of `len` bytes is in (or found already stored).
    fn count_stored(&self, len: u64) {
        progress::add_bytes(self.stored.as_deref(), len);
        progress::add_file(self.stored.as_deref());
    }

    fn tmp_path(&self, md5: &Md5Digest, index: usize) -> PathBuf {
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

/// What the first pass made of a request, before anything is named.
enum Plan {
    Present,
    /// Rename this file of ours in `tmp/`.
    Tmp(PathBuf),
    /// Write these bytes at the blob's name, once the journal is on disk.
    InPlace(Vec<u8>),
    /// At the blob's name (written in place, or a snapshot linked): nothing to rename,
    /// but not durable yet.
    Written,
    /// Link (or rename) the caller's source itself.
    Take,
    Failed(Fault),
}

struct Staged {
    md5: Option<Md5Digest>,
    hashed: Option<FileDigest>,
    plan: Plan,
}

impl Staged {
    fn failed(md5: Option<Md5Digest>, hashed: Option<FileDigest>, fault: Fault) -> Self {
        Staged {
            md5,
            hashed,
            plan: Plan::Failed(fault),
        }
    }

    fn outcome(self, status: Status, staged: Option<PathBuf>) -> Outcome {
        Outcome {
            md5: self.md5,
            hashed: self.hashed,
            status,
            staged,
        }
    }
}

/// Store every request (see the module docs), on the current rayon pool. Never fails as
/// a whole: each outcome says what became of its request. If any request fails before
/// the renames, nothing of the batch is named and its temporary files are removed; a
/// rename that fails stops the renames there (those done stay done).
///
/// With `name: false` the call stops before making anything durable: each request to
/// store is `Staged`, and a later call takes its `staged` file (`take: true`).
pub fn put_blobs(layout: &Layout, requests: &[Request], name: bool) -> Vec<Outcome> {
    let dev = match fs::metadata(&layout.blobs) {
        Ok(meta) => meta.dev(),
        Err(e) => return all_failed(requests, || store_fault(&layout.blobs, copy_of(&e))),
    };
    let budget = Budget::new();
    let mut staged: Vec<Staged> = requests
        .par_iter()
        .enumerate()
        .map(|(index, request)| stage(layout, dev, &budget, index, request))
        .collect();
    drop_duplicates(&mut staged);
    let failed = |staged: &[Staged]| staged.iter().any(|s| matches!(s.plan, Plan::Failed(_)));
    if failed(&staged) {
        return abandon(staged, None);
    }
    if let Err((path, error)) = write_in_place(layout, requests, &mut staged) {
        return abandon(staged, Some((&path, &error)));
    }
    if failed(&staged) {
        return abandon(staged, None);
    }
    if !name {
        return hand_over(layout, requests, staged);
    }
    if let Err((path, error)) = make_durable(layout, requests, &staged) {
        return abandon(staged, Some((&path, &error)));
    }
    let outcomes = name_all(layout, requests, staged);
    // Whatever was written in place is on disk: its journal has done its job.
    let _ = fs::remove_file(in_place::journal_path(&layout.tmp, &layout.tag));
    outcomes
}

/// Journal the blobs planned in place, then write each at its name (on the pool). A
/// blob whose name holds another writer's incomplete file goes through `tmp/` instead.
/// Fails only if the journal cannot be written: then nothing was written in place.
fn write_in_place(
    layout: &Layout,
    requests: &[Request],
    staged: &mut [Staged],
) -> Result<(), (PathBuf, io::Error)> {
    // Under the journal, snapshots are linked before the syncfs, not after: a power cut
    // that kept a link but not the bytes is what the next start's check removes.
    let link_early = layout.journaled();
    let planned = staged
        .iter()
        .filter(|s| {
            matches!(s.plan, Plan::InPlace(_)) || link_early && matches!(s.plan, Plan::Take)
        })
        .filter_map(|s| s.md5.as_ref());
    if planned.clone().next().is_none() {
        return Ok(());
    }
    let journal = in_place::journal_path(&layout.tmp, &layout.tag);
    if let Err(e) = in_place::write_journal(&journal, planned) {
        let _ = fs::remove_file(&journal);
        return Err((journal, e));
    }
    staged.par_iter_mut().enumerate().for_each(|(index, s)| {
        let (Plan::InPlace(bytes), Some(md5)) = (&s.plan, s.md5) else {
            return;
        };
        let blob = layout.blob_path(&md5);
        let plan = match in_place::write(&blob, bytes) {
            Ok(Written::Whole) => Plan::Written,
            Ok(Written::Present) => Plan::Present,
            Ok(Written::Busy) => {
                write_copy(layout, &md5, index, bytes).map_or_else(Plan::Failed, Plan::Tmp)
            }
            Err(e) => Plan::Failed(store_fault(&blob, e)),
        };
        s.plan = plan;
    });
    if link_early {
        link_snapshots(layout, requests, staged);
    }
    Ok(())
}

fn all_failed(requests: &[Request], fault: impl Fn() -> Fault) -> Vec<Outcome> {
    let failed = |r: &Request| Outcome {
        md5: r.md5,
        hashed: None,
        status: Status::Failed(fault()),
        staged: None,
    };
    requests.iter().map(failed).collect()
}

/// The same error again, for a failure that every request of the batch shares.
fn copy_of(error: &io::Error) -> io::Error {
    match error.raw_os_error() {
        Some(errno) => io::Error::from_raw_os_error(errno),
        None => io::Error::new(error.kind(), error.to_string()),
    }
}

fn store_fault(path: &Path, error: io::Error) -> Fault {
    Fault::Store(CoreError::io(path, error))
}

fn source_fault(path: &Path, error: io::Error) -> Fault {
    Fault::Source(CoreError::io(path, error))
}

fn changed_size(expected: u64, actual: u64) -> Fault {
    Fault::Changed(Change {
        expected,
        actual,
        what: None,
    })
}

fn changed(what: &'static str) -> Fault {
    Fault::Changed(Change {
        expected: 0,
        actual: 0,
        what: Some(what),
    })
}

/// The first pass over one request: everything but naming.
fn stage(layout: &Layout, dev: u64, budget: &Budget, index: usize, request: &Request) -> Staged {
    let md5 = request.md5;
    if let Some(md5) = md5.filter(|_| layout.caller.is_none()) {
        let md5 = &md5;
        let staged = |plan| Staged {
            md5: Some(*md5),
            hashed: None,
            plan,
        };
        // A snapshot on the store's filesystem is linked at its name when the batch is
        // named, and the link finds a blob already there: no need to look for it now.
        let take = request.take && layout.caller.is_none();
        let source = take.then(|| fs::symlink_metadata(&request.source));
        if let Some(Ok(meta)) = &source {
            if let Err(fault) = check_source(&request.source, meta, request.size) {
                return Staged::failed(Some(*md5), None, fault);
            }
            // Only a file with no other name is taken: through another, its content
            // could change after it is committed.
            if meta.dev() == dev && meta.nlink() == 1 && no_link_on_path(layout, request) {
                return staged(Plan::Take);
            }
        }
        // A snapshot taken by rename before a restart has no source any more: the blob
        // being there is the whole answer.
        let blob = fs::metadata(layout.blob_path(md5)).ok();
        if let Some(blob) = blob.filter(in_place::is_complete) {
            return staged(stored_already(request, &blob));
        }
        if let Some(Err(error)) = source {
            return Staged::failed(Some(*md5), None, source_fault(&request.source, error));
        }
        // On another filesystem than the store's, a snapshot is copied now, under this
        // batch's one syncfs.
    }
    match copy_to_tmp(layout, budget, index, request) {
        Ok((md5, hashed, plan)) => Staged {
            md5: Some(md5),
            hashed,
            plan,
        },
        Err((hashed, fault)) => {
            Staged::failed(md5.or(hashed.as_ref().map(|h| h.md5)), hashed, fault)
        }
    }
}

/// A snapshot's path has no symbolic link on it (a link where the SDK made a
/// directory would make the store take a file from elsewhere): its directory is
/// checked once per call (the file itself was `lstat`ed as a regular file).
fn no_link_on_path(layout: &Layout, request: &Request) -> bool {
    if !request.snapshot {
        return true;
    }
    let Some(dir) = request.source.parent() else {
        return false;
    };
    let mut checked = layout
        .linkless_dirs
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if let Some(&fine) = checked.get(dir) {
        return fine;
    }
    let fine = dir_has_no_link(dir);
    checked.insert(dir.to_path_buf(), fine);
    fine
}

fn exists(path: &Path) -> bool {
    fs::metadata(path).is_ok()
}

fn check_source(path: &Path, meta: &Metadata, size: Option<u64>) -> Result<(), Fault> {
    if meta.is_dir() {
        return Err(source_fault(
            path,
            io::Error::from_raw_os_error(libc::EISDIR),
        ));
    }
    if !meta.is_file() {
        return Err(Fault::Source(CoreError::io(
            path,
            io::Error::new(io::ErrorKind::InvalidInput, "not a regular file"),
        )));
    }
    match size {
        Some(size) if size != meta.len() => Err(changed_size(size, meta.len())),
        _ => Ok(()),
    }
}

type Copied = (Md5Digest, Option<FileDigest>, Plan);
type CopyError = (Option<FileDigest>, Fault);

/// Copy the request's source into a new file in `tmp/`, hashing it if it has no digest
/// or is read for a caller (whose digest is then only a claim, checked here); a source
/// whose digest turns out to be stored already is not kept (a small one is not even
/// written).
fn copy_to_tmp(
    layout: &Layout,
    budget: &Budget,
    index: usize,
    request: &Request,
) -> Result<Copied, CopyError> {
    let (Some(claimed), Some(_)) = (request.md5, &layout.caller) else {
        return copy_to_tmp_trusting(layout, budget, index, request);
    };
    let hashing = Request {
        md5: None,
        ..request.clone()
    };
    let (md5, hashed, plan) = copy_to_tmp_trusting(layout, budget, index, &hashing)?;
    if md5 == claimed {
        return Ok((md5, hashed, plan));
    }
    if let Plan::Tmp(tmp) = plan {
        let _ = fs::remove_file(tmp);
    }
    Err((
        hashed,
        changed("its content does not match the digest it was logged with"),
    ))
}

fn copy_to_tmp_trusting(
    layout: &Layout,
    budget: &Budget,
    index: usize,
    request: &Request,
) -> Result<Copied, CopyError> {
    let src = &request.source;
    let fail = |fault| (None, fault);
    // Opened with the caller's rights, never blocking on a FIFO, refusing anything but
    // a regular file (and, for a snapshot, any symbolic link on the way).
    let (file, meta) = open_source(layout.caller.as_ref(), src, request.snapshot)
        .map_err(|e| fail(Fault::Source(e)))?;
    check_source(src, &meta, request.size).map_err(fail)?;
    let (mtime_ns, inode) = mtime_ns_inode(&meta);
    if request.mtime_ns.is_some_and(|m| m != mtime_ns) {
        return Err(fail(changed("it was modified after it was hashed")));
    }
    let len = meta.len();
    advise_sequential(&file, len);
    let source = Source {
        path: src,
        file: &file,
        len,
        mtime_ns,
    };
    let read = |md5| FileDigest {
        path: src.clone(),
        md5,
        size: len,
        mtime_ns,
        inode,
    };
    if len <= SMALL {
        with_buffer(|buf| {
            let bytes = source.read_all(&mut buf[..len as usize]).map_err(fail)?;
            let (md5, hashed) = match request.md5 {
                Some(md5) => (md5, None),
                None => {
                    let md5 = Md5::digest(bytes).into();
                    progress::add_bytes(layout.hashed.as_deref(), len);
                    progress::add_file(layout.hashed.as_deref());
                    (md5, Some(read(md5)))
                }
            };
            let fail = |fault| (hashed.clone(), fault);
            source.check_unmodified().map_err(fail)?;
            if hashed.is_some() && in_place::present(&layout.blob_path(&md5)) {
                layout.count_stored(len);
                return Ok((md5, hashed, Plan::Present));
            }
            if layout.journaled() && len <= in_place::MAX_SIZE && budget.take(len) {
                layout.count_stored(len); // as good as written: only the journal is first
                return Ok((md5, hashed, Plan::InPlace(bytes.to_vec())));
            }
            let tmp = write_copy(layout, &md5, index, bytes).map_err(fail)?;
            layout.count_stored(len);
            Ok((md5, hashed, Plan::Tmp(tmp)))
        })
    } else {
        let Some(md5) = request.md5 else {
            return copy_while_hashing(layout, index, &source, read);
        };
        let tmp = layout.tmp_path(&md5, index);
        let stored = layout.stored.as_deref();
        write_tmp(&tmp, |out| source.copy_into(out, &tmp, stored)).map_err(fail)?;
        if let Err(fault) = source.check_unmodified() {
            let _ = fs::remove_file(&tmp);
            return Err(fail(fault));
        }
        progress::add_file(stored);
        Ok((md5, None, Plan::Tmp(tmp)))
    }
}

/// A large source without a digest: hashed on this thread while the kernel copies it
/// into `tmp/` on another, so the file is read once (both readers share the page cache)
/// and the call takes about as long as the hash alone, where hashing and then copying
/// took both times (1 GiB: 3.7-3.9 s for the two, against ~2 s). If the blob turns out
/// to be stored already the copy is dropped: a wasted copy into the page cache, never
/// a failure (a full disk while copying a blob that is there is not an error).
fn copy_while_hashing(
    layout: &Layout,
    index: usize,
    source: &Source,
    read: impl Fn(Md5Digest) -> FileDigest,
) -> Result<Copied, CopyError> {
    let tmp = layout.tmp_path(&[0; 16], index);
    let stored = layout.stored.as_deref();
    let mut digest = None;
    let copied = write_tmp(&tmp, |out| {
        thread::scope(|scope| {
            let copier = scope.spawn(|| source.copy_into(out, &tmp, stored));
            digest = Some(source.hash(layout.hashed.as_deref()));
            copier.join().unwrap_or_else(|_| {
                Err(store_fault(
                    &tmp,
                    io::Error::other("the copy thread panicked"),
                ))
            })
        })
    });
    let discard = |tmp: &Path| {
        if copied.is_ok() {
            let _ = fs::remove_file(tmp);
        }
    };
    let md5 = match digest.expect("the hash ran") {
        Ok(md5) => md5,
        Err(fault) => {
            discard(&tmp);
            return Err((None, fault));
        }
    };
    progress::add_file(layout.hashed.as_deref());
    let hashed = Some(read(md5));
    if let Err(fault) = source.check_unmodified() {
        discard(&tmp);
        return Err((hashed, fault));
    }
    if in_place::present(&layout.blob_path(&md5)) {
        discard(&tmp);
        progress::add_file(stored); // its bytes were counted as the copy went
        return Ok((md5, hashed, Plan::Present));
    }
    copied.map_err(|fault| (hashed.clone(), fault))?;
    progress::add_file(stored);
    Ok((md5, hashed, Plan::Tmp(tmp)))
}

/// A copy of `bytes` in `tmp/`, to rename into place later.
fn write_copy(
    layout: &Layout,
    md5: &Md5Digest,
    index: usize,
    bytes: &[u8],
) -> Result<PathBuf, Fault> {
    let tmp = layout.tmp_path(md5, index);
    write_tmp(&tmp, |mut out| {
        out.write_all(bytes).map_err(|e| store_fault(&tmp, e))
    })?;
    Ok(tmp)
}

/// What to make of a request whose blob is stored already: nothing to do, if the blob
/// has the size the caller recorded (a wrong one would go into the manifest unchecked).
fn stored_already(request: &Request, blob: &Metadata) -> Plan {
    match request.size.filter(|&size| size != blob.len()) {
        Some(size) => Plan::Failed(changed_size(size, blob.len())),
        None => Plan::Present,
    }
}

/// Create `tmp` and fill it with `fill`, which blames its own failures; the file is
/// removed on any failure, and failing to create or close it is the store's fault.
fn write_tmp(tmp: &Path, fill: impl FnOnce(&File) -> Result<(), Fault>) -> Result<(), Fault> {
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .open(tmp)
        .map_err(|e| store_fault(tmp, e))?;
    let written = fill(&file).and_then(|()| {
        // Some filesystems (NFS) report a failed write only when the file is closed.
        close(file).map_err(|e| store_fault(tmp, e))
    });
    if written.is_err() {
        let _ = fs::remove_file(tmp);
    }
    written
}

pub(crate) fn close(file: File) -> io::Result<()> {
    let fd = std::os::unix::io::IntoRawFd::into_raw_fd(file);
    if unsafe { libc::close(fd) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// An opened source and the stat it was opened with.
struct Source<'a> {
    path: &'a Path,
    file: &'a File,
    len: u64,
    mtime_ns: i64,
}

impl Source<'_> {
    /// Fill `buf` (the file's length, at most `SMALL`) from the start of the file.
    fn read_all<'b>(&self, buf: &'b mut [u8]) -> Result<&'b [u8], Fault> {
        let mut filled = 0;
        while filled < buf.len() {
            match self.file.read_at(&mut buf[filled..], filled as u64) {
                Ok(0) => return Err(changed_size(self.len, filled as u64)),
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(source_fault(self.path, e)),
            }
        }
        Ok(buf)
    }

    /// The MD5 of the file's first `len` bytes (what the stat said it holds).
    fn hash(&self, hashed: Option<&Counter>) -> Result<Md5Digest, Fault> {
        let (md5, n) = crate::hash::md5_stream(Counted::new(self.file.take(self.len), hashed))
            .map_err(|e| source_fault(self.path, e))?;
        if n != self.len {
            return Err(changed_size(self.len, n));
        }
        Ok(md5)
    }

    /// The bytes copied must be the bytes hashed: a source modified meanwhile is refused.
    fn check_unmodified(&self) -> Result<(), Fault> {
        let meta = self
            .file
            .metadata()
            .map_err(|e| source_fault(self.path, e))?;
        if mtime_ns_inode(&meta).0 != self.mtime_ns {
            return Err(changed("it was modified while it was copied"));
        }
        Ok(())
    }

    /// Copy the file's first `len` bytes into `out` in the kernel (`copy_file_range`,
    /// which reflinks where it can), through the buffer where the kernel cannot.
    fn copy_into(&self, out: &File, tmp: &Path, stored: Option<&Counter>) -> Result<(), Fault> {
        let mut offset = 0u64;
        let mut in_kernel = true;
        while offset < self.len {
            let want = (self.len - offset).min(WRITEBACK_PIECE) as usize;
            if in_kernel {
                let mut from = offset as libc::loff_t;
                let n = unsafe {
                    libc::copy_file_range(
                        self.file.as_raw_fd(),
                        &mut from,
                        out.as_raw_fd(),
                        std::ptr::null_mut(),
                        want,
                        0,
                    )
                };
                if n < 0 {
                    let e = io::Error::last_os_error();
                    let unsupported = [libc::EXDEV, libc::ENOSYS, libc::EINVAL, libc::EOPNOTSUPP];
                    if e.kind() == io::ErrorKind::Interrupted {
                        continue;
                    }
                    if offset == 0 && unsupported.contains(&e.raw_os_error().unwrap_or(0)) {
                        in_kernel = false;
                        continue;
                    }
                    return Err(self.blame(offset, e, tmp));
                }
                if n == 0 {
                    if offset == 0 {
                        // Some filesystems (procfs, older FUSE and NFS) answer 0 for a
                        // file that has bytes: read them ourselves.
                        in_kernel = false;
                        continue;
                    }
                    return Err(changed_size(self.len, offset));
                }
                // The batch's syncfs then finds a large file mostly on disk.
                start_writeback(out, offset, n as u64);
                offset += n as u64;
                progress::add_bytes(stored, n as u64);
            } else {
                offset = self.copy_through_buffer(offset, out, tmp, stored)?;
            }
        }
        Ok(())
    }

    fn copy_through_buffer(
        &self,
        mut offset: u64,
        mut out: &File,
        tmp: &Path,
        stored: Option<&Counter>,
    ) -> Result<u64, Fault> {
        with_buffer(|buf| {
            while offset < self.len {
                let want = ((self.len - offset) as usize).min(buf.len());
                let n = match self.file.read_at(&mut buf[..want], offset) {
                    Ok(0) => return Err(changed_size(self.len, offset)),
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(source_fault(self.path, e)),
                };
                out.write_all(&buf[..n]).map_err(|e| store_fault(tmp, e))?;
                offset += n as u64;
                progress::add_bytes(stored, n as u64);
            }
            Ok(offset)
        })
    }

    /// `copy_file_range` reports read and write errors alike: the source is at fault
    /// if it cannot be read where the copy stopped, else the store is. Wrongly blaming
    /// the store holds back one collection with retries; wrongly blaming the source
    /// would reject a version for a full disk.
    fn blame(&self, offset: u64, error: io::Error, tmp: &Path) -> Fault {
        let mut probe = [0u8; 1];
        match self.file.read_at(&mut probe, offset) {
            Err(_) => source_fault(self.path, error),
            Ok(_) => store_fault(tmp, error),
        }
    }
}

/// A later request for a blob an earlier one stores is `Present`: its copy goes.
fn drop_duplicates(staged: &mut [Staged]) {
    let mut first: HashMap<Md5Digest, usize> = HashMap::new();
    for (i, s) in staged.iter_mut().enumerate() {
        let Some(md5) = s.md5 else { continue };
        if !matches!(s.plan, Plan::Tmp(_) | Plan::Take | Plan::InPlace(_)) {
            continue;
        }
        if first.insert(md5, i).is_some() {
            if let Plan::Tmp(tmp) = &s.plan {
                let _ = fs::remove_file(tmp);
            }
            s.plan = Plan::Present;
        }
    }
}

/// Stop before naming: report each file to rename, for a later call to take.
fn hand_over(layout: &Layout, requests: &[Request], staged: Vec<Staged>) -> Vec<Outcome> {
    let outcome = |(mut s, request): (Staged, &Request)| {
        match std::mem::replace(&mut s.plan, Plan::Present) {
            Plan::Tmp(tmp) => s.outcome(Status::Staged, Some(tmp)),
            Plan::Take => s.outcome(Status::Staged, Some(request.source.clone())),
            // At its name already: naming it only makes it durable.
            Plan::Written => {
                let md5 = s.md5.expect("a blob written in place has a digest");
                s.outcome(Status::Staged, Some(layout.blob_path(&md5)))
            }
            _ => s.outcome(Status::Present, None), // a batch with a failure is abandoned
        }
    };
    staged.into_iter().zip(requests).map(outcome).collect()
}

/// Name nothing of the batch: remove its temporary files; the requests to name are
/// `NotStored`, or fail with `failure` when the batch could not be made durable.
fn abandon(staged: Vec<Staged>, failure: Option<(&Path, &io::Error)>) -> Vec<Outcome> {
    let not_named = || match failure {
        Some((path, error)) => Status::Failed(store_fault(path, copy_of(error))),
        None => Status::NotStored,
    };
    let outcome = |mut s: Staged| {
        let status = match std::mem::replace(&mut s.plan, Plan::Present) {
            Plan::Present => Status::Present,
            Plan::Tmp(tmp) => {
                let _ = fs::remove_file(tmp);
                not_named()
            }
            Plan::Take | Plan::InPlace(_) => not_named(),
            // Whole at its name: kept (another batch may trust it); its journal stays
            // until the daemon's next start checks it.
            Plan::Written => Status::NotStored,
            Plan::Failed(fault) => Status::Failed(fault),
        };
        s.outcome(status, None)
    };
    staged.into_iter().map(outcome).collect()
}

/// Put the bytes of every file about to be named on disk: one `syncfs` on the store's
/// filesystem, or an `fsync` of each file.
fn make_durable(
    layout: &Layout,
    requests: &[Request],
    staged: &[Staged],
) -> Result<(), (PathBuf, io::Error)> {
    let to_name: Vec<&Path> = staged
        .iter()
        .zip(requests)
        .filter_map(|(s, r)| match &s.plan {
            Plan::Tmp(tmp) => Some(tmp.as_path()),
            Plan::Take => Some(r.source.as_path()),
            Plan::Written => Some(layout.blobs.as_path()), // in-place files need the syncfs
            _ => None,
        })
        .collect();
    if to_name.is_empty() {
        return Ok(());
    }
    if layout.syncfs {
        return syncfs(&layout.blobs).map_err(|e| (layout.blobs.clone(), e));
    }
    to_name
        .par_iter()
        .try_for_each(|path| fsync_path(path).map_err(|e| (path.to_path_buf(), e)))
}

/// `syncfs(2)`: write out everything dirty on the filesystem holding `path`. A
/// writeback error anywhere on it (EIO, ENOSPC) surfaces here.
pub fn syncfs(path: &Path) -> io::Result<()> {
    let dir = File::open(path)?;
    if unsafe { libc::syncfs(dir.as_raw_fd()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn fsync_path(path: &Path) -> io::Result<()> {
    File::open(path)?.sync_all()
}

/// Hard-link each snapshot to take at its blob name, on the pool: links, unlike
/// cross-directory renames, do not take the filesystem's one rename lock, so two
/// threads name twice as many. The snapshot keeps its own name until its staging area
/// goes. One that cannot be linked is left to `take` (which reports why).
fn link_snapshots(layout: &Layout, requests: &[Request], staged: &mut [Staged]) {
    let mut made: BTreeSet<PathBuf> = BTreeSet::new();
    for s in staged.iter() {
        if let (Plan::Take, Some(md5)) = (&s.plan, &s.md5) {
            if make_dir(&layout.blob_path(md5), &mut made).is_err() {
                return;
            }
        }
    }
    staged
        .par_iter_mut()
        .zip(requests.par_iter())
        .for_each(|(s, request)| {
            let (Plan::Take, Some(md5)) = (&s.plan, s.md5) else {
                return;
            };
            let blob = layout.blob_path(&md5);
            let error = match fs::hard_link(&request.source, &blob) {
                Ok(()) => {
                    s.plan = Plan::Written;
                    return;
                }
                Err(e) => e,
            };
            let found = fs::metadata(&blob).ok().filter(in_place::is_complete);
            if let (io::ErrorKind::AlreadyExists, Some(found)) = (error.kind(), found) {
                s.plan = stored_already(request, &found);
            }
        });
}

/// Give every staged file its blob name, in request order; stop at the first failure.
fn name_all(layout: &Layout, requests: &[Request], mut staged: Vec<Staged>) -> Vec<Outcome> {
    if !layout.journaled() {
        link_snapshots(layout, requests, &mut staged); // durable first, then linked
    }
    let mut made: BTreeSet<PathBuf> = BTreeSet::new();
    let mut stopped = false;
    let mut name = |mut s: Staged, request: &Request| {
        let status = match std::mem::replace(&mut s.plan, Plan::Present) {
            Plan::Present => Status::Present,
            Plan::Failed(fault) => Status::Failed(fault),
            Plan::Written => Status::Stored,
            Plan::Tmp(tmp) if stopped => {
                let _ = fs::remove_file(tmp);
                Status::NotStored
            }
            Plan::Take if stopped => Status::NotStored,
            plan => {
                let md5 = s.md5.expect("a staged file has a digest");
                let blob = layout.blob_path(&md5);
                let named = make_dir(&blob, &mut made)
                    .map_err(Fault::Store)
                    .and_then(|()| match &plan {
                        Plan::Tmp(tmp) => rename_ours(tmp, &blob),
                        _ => take(layout, &request.source, &md5, &blob),
                    });
                stopped = named.is_err();
                named.map_or_else(Status::Failed, |()| Status::Stored)
            }
        };
        s.outcome(status, None)
    };
    staged
        .into_iter()
        .zip(requests)
        .map(|(s, request)| name(s, request))
        .collect()
}

/// Name copies a `put_blobs` call with `name: false` staged in `tmp/`, each `(md5,
/// copy)`: make them durable (one `syncfs`, or an `fsync` each), then rename each to
/// its blob name (replacing one stored meanwhile: the same bytes), in order. Returns how
/// many were named: all, or those before the first failure, which is returned too. A
/// copy that was not named is removed. Every failure is the store's: the copies are its
/// own files.
pub fn name_blobs(
    blobs: &Path,
    syncfs_once: bool,
    copies: &[(Md5Digest, PathBuf)],
    journal: Option<&Path>,
) -> (usize, Option<CoreError>) {
    let durable = if syncfs_once {
        syncfs(blobs).map_err(|e| CoreError::io(blobs, e))
    } else {
        copies
            .par_iter()
            .try_for_each(|(_, copy)| fsync_path(copy).map_err(|e| CoreError::io(copy, e)))
    };
    let mut made: BTreeSet<PathBuf> = BTreeSet::new();
    let mut named = 0;
    let mut failure = durable.err();
    if failure.is_none() {
        for (md5, copy) in copies {
            let blob = blob_path(blobs, md5);
            if *copy == blob {
                named += 1; // written in place: durable now, nothing to rename
                continue;
            }
            let renamed = make_dir(&blob, &mut made)
                .and_then(|()| fs::rename(copy, &blob).map_err(|e| CoreError::io(&blob, e)));
            if let Err(e) = renamed {
                failure = Some(e);
                break;
            }
            named += 1;
        }
    }
    for (md5, copy) in &copies[named..] {
        if *copy != blob_path(blobs, md5) {
            let _ = fs::remove_file(copy);
        }
    }
    if let (None, Some(journal)) = (&failure, journal) {
        let _ = fs::remove_file(journal);
    }
    (named, failure)
}

/// The blob's fan-out directory, created once per call.
fn make_dir(blob: &Path, made: &mut BTreeSet<PathBuf>) -> Result<(), CoreError> {
    let dir = blob.parent().expect("a blob path has a parent");
    if made.contains(dir) {
        return Ok(());
    }
    match fs::create_dir(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(CoreError::io(dir, e)),
    }
    made.insert(dir.to_path_buf());
    Ok(())
}

fn rename_ours(tmp: &Path, blob: &Path) -> Result<(), Fault> {
    fs::rename(tmp, blob).map_err(|e| {
        let _ = fs::remove_file(tmp);
        store_fault(blob, e)
    })
}

/// Rename the caller's source into place; across filesystems after all (a bind mount
/// of the same one), copy it with one `fsync` rather than another `syncfs`.
fn take(layout: &Layout, source: &Path, md5: &Md5Digest, blob: &Path) -> Result<(), Fault> {
    let error = match fs::rename(source, blob) {
        Ok(()) => return Ok(()),
        Err(e) => e,
    };
    match error.raw_os_error() {
        Some(libc::EXDEV) => {
            let request = Request {
                source: source.to_path_buf(),
                md5: Some(*md5),
                size: None,
                mtime_ns: None,
                take: false,
                snapshot: true,
            };
            let tmp = match copy_to_tmp(layout, &Budget::empty(), usize::MAX, &request) {
                Ok((_, _, Plan::Tmp(tmp))) => tmp,
                Ok(_) => unreachable!("a request with a digest is always copied"),
                Err((_, fault)) => return Err(fault),
            };
            if let Err(e) = fsync_path(&tmp) {
                let _ = fs::remove_file(&tmp);
                return Err(store_fault(&tmp, e));
            }
            rename_ours(&tmp, blob)
        }
        Some(libc::ENOENT) if !exists(source) => Err(source_fault(source, error)),
        _ => Err(store_fault(blob, error)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    struct Store {
        _dir: tempfile::TempDir,
        root: PathBuf,
        layout: Layout,
    }

    fn store() -> Store {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        let layout = Layout {
            blobs: root.join("blobs"),
            tmp: root.join("tmp"),
            tag: "test".into(),
            syncfs: true,
            in_place: false,
            caller: None,
            linkless_dirs: Default::default(),
            hashed: None,
            stored: None,
        };
        fs::create_dir(&layout.blobs).unwrap();
        fs::create_dir(&layout.tmp).unwrap();
        fs::create_dir(root.join("src")).unwrap();
        Store {
            _dir: dir,
            root,
            layout,
        }
    }

    impl Store {
        fn source(&self, name: &str, data: &[u8]) -> (PathBuf, Md5Digest) {
            let path = self.root.join("src").join(name);
            fs::write(&path, data).unwrap();
            (path, Md5::digest(data).into())
        }
        fn tmp_entries(&self) -> usize {
            fs::read_dir(&self.layout.tmp).unwrap().count()
        }
        fn blob(&self, md5: &Md5Digest) -> Option<Vec<u8>> {
            fs::read(self.layout.blob_path(md5)).ok()
        }
    }

    fn request(source: &Path, md5: Option<Md5Digest>) -> Request {
        Request {
            source: source.to_path_buf(),
            md5,
            size: None,
            mtime_ns: None,
            take: false,
            snapshot: false,
        }
    }

    fn data(len: usize, seed: u8) -> Vec<u8> {
        (0..len).map(|i| (i % 251) as u8 ^ seed).collect()
    }

    #[test]
    fn every_size_class_is_stored_under_its_md5_with_its_content() {
        let s = store();
        let sizes = [
            0,
            5,
            SMALL as usize,
            SMALL as usize + 1,
            3 * SMALL as usize + 7,
        ];
        let sources: Vec<_> = sizes
            .iter()
            .enumerate()
            .map(|(i, &len)| s.source(&format!("f{i}"), &data(len, i as u8)))
            .collect();
        let requests: Vec<_> = sources.iter().map(|(p, m)| request(p, Some(*m))).collect();

        let outcomes = put_blobs(&s.layout, &requests, true);

        for ((path, md5), outcome) in sources.iter().zip(&outcomes) {
            assert!(matches!(outcome.status, Status::Stored), "{outcome:?}");
            assert_eq!(s.blob(md5).unwrap(), fs::read(path).unwrap());
        }
        assert_eq!(s.tmp_entries(), 0);
        let again = put_blobs(&s.layout, &requests, true);
        assert!(again.iter().all(|o| matches!(o.status, Status::Present)));
    }

    #[test]
    fn a_request_without_a_digest_is_hashed_and_duplicates_are_stored_once() {
        let s = store();
        let (small, small_md5) = s.source("small", b"read once");
        let (twin, _) = s.source("twin", b"read once");
        let (large, large_md5) = s.source("large", &data(2 * SMALL as usize + 3, 7));
        let requests = [
            request(&small, None),
            request(&twin, None),
            request(&large, None),
        ];

        let outcomes = put_blobs(&s.layout, &requests, true);

        let statuses: Vec<_> = outcomes.iter().map(|o| format!("{:?}", o.status)).collect();
        assert_eq!(statuses, ["Stored", "Present", "Stored"]);
        for (outcome, md5) in outcomes.iter().zip([small_md5, small_md5, large_md5]) {
            let hashed = outcome.hashed.as_ref().unwrap();
            assert_eq!((outcome.md5, hashed.md5), (Some(md5), md5));
        }
        assert_eq!(outcomes[2].hashed.as_ref().unwrap().size, 2 * SMALL + 3);
        assert_eq!(s.blob(&large_md5).unwrap(), fs::read(&large).unwrap());
        assert_eq!(s.tmp_entries(), 0);
        let again = put_blobs(&s.layout, &[request(&small, None)], false);
        assert!(
            matches!(again[0].status, Status::Present),
            "nothing is copied"
        );
    }

    #[test]
    fn a_large_source_hashed_while_copied_keeps_no_copy_when_its_blob_is_stored() {
        let s = store();
        let content = data(3 * SMALL as usize + 11, 9);
        let (first, md5) = s.source("first", &content);
        let (second, _) = s.source("second", &content);
        let (twin, _) = s.source("twin", &content);

        let stored = put_blobs(&s.layout, &[request(&first, None)], true);
        let again = put_blobs(
            &s.layout,
            &[request(&second, None), request(&twin, None)],
            true,
        );

        assert!(matches!(stored[0].status, Status::Stored), "{stored:?}");
        let statuses: Vec<_> = again.iter().map(|o| format!("{:?}", o.status)).collect();
        assert_eq!(statuses, ["Present", "Present"]);
        assert_eq!(again[0].hashed.as_ref().unwrap().md5, md5);
        assert_eq!(s.blob(&md5).unwrap(), content);
        assert_eq!(
            s.tmp_entries(),
            0,
            "the copies of a stored blob are dropped"
        );
    }

    #[test]
    fn a_snapshot_on_the_same_filesystem_is_linked_into_place() {
        let s = store();
        let (path, md5) = s.source("snapshot", b"staged");
        let inode = fs::metadata(&path).unwrap().ino();
        let take = Request {
            take: true,
            size: Some(6),
            ..request(&path, Some(md5))
        };

        let outcomes = put_blobs(&s.layout, &[take], true);

        assert!(matches!(outcomes[0].status, Status::Stored));
        let blob = s.layout.blob_path(&md5);
        assert_eq!(fs::metadata(blob).unwrap().ino(), inode);
    }

    #[test]
    fn a_snapshot_behind_a_symlinked_directory_is_neither_taken_nor_read() {
        let s = store();
        let (path, md5) = s.source("elsewhere", b"not a snapshot");
        let linked = s.root.join("staging");
        std::os::unix::fs::symlink(path.parent().unwrap(), &linked).unwrap();
        let take = Request {
            take: true,
            snapshot: true,
            ..request(&linked.join("elsewhere"), Some(md5))
        };

        let outcomes = put_blobs(&s.layout, &[take], true);

        match &outcomes[0].status {
            Status::Failed(Fault::Source(e)) => {
                assert!(e.to_string().contains("symbolic link"), "{e}")
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(!s.layout.blob_path(&md5).exists());
        assert_eq!(fs::metadata(&path).unwrap().nlink(), 1, "never linked");
    }

    #[test]
    fn staging_names_nothing_until_a_later_call_names_the_copies() {
        let s = store();
        let (path, md5) = s.source("f", b"copied now, named later");

        let staged = put_blobs(&s.layout, &[request(&path, None)], false);

        assert!(matches!(staged[0].status, Status::Staged));
        assert!(s.blob(&md5).is_none());
        let copy = staged[0].staged.clone().unwrap();
        assert!(copy.starts_with(&s.layout.tmp));
        let (named, failure) = name_blobs(&s.layout.blobs, true, &[(md5, copy)], None);
        assert_eq!((named, failure.is_none()), (1, true));
        assert_eq!(s.blob(&md5).unwrap(), b"copied now, named later");
        assert_eq!(s.tmp_entries(), 0);
    }

    #[test]
    fn naming_staged_copies_stops_at_a_failure_and_removes_what_is_left() {
        let s = store();
        let files = [b"first".as_slice(), b"second", b"third"];
        let requests: Vec<_> = files
            .iter()
            .enumerate()
            .map(|(i, data)| request(&s.source(&format!("f{i}"), data).0, None))
            .collect();
        let staged = put_blobs(&s.layout, &requests, false);
        let copies: Vec<_> = staged
            .iter()
            .map(|o| (o.md5.unwrap(), o.staged.clone().unwrap()))
            .collect();
        fs::remove_file(&copies[1].1).unwrap(); // gone before it is named

        let (named, failure) = name_blobs(&s.layout.blobs, true, &copies, None);

        assert_eq!(named, 1);
        match failure {
            Some(CoreError::Io { path, source }) => {
                assert_eq!(path, s.layout.blob_path(&copies[1].0));
                assert_eq!(source.raw_os_error(), Some(libc::ENOENT));
            }
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(s.blob(&copies[0].0).unwrap(), b"first");
        assert!(s.blob(&copies[2].0).is_none());
        assert_eq!(s.tmp_entries(), 0, "the copy not named is removed");
    }

    #[test]
    fn one_failed_request_names_nothing_of_the_batch_and_leaves_no_copy() {
        let s = store();
        let (good, good_md5) = s.source("good", b"fine");
        let missing = s.root.join("src").join("missing");
        let requests = [
            request(&good, Some(good_md5)),
            request(&missing, Some([0; 16])),
        ];

        let outcomes = put_blobs(&s.layout, &requests, true);

        assert!(matches!(outcomes[0].status, Status::NotStored));
        match &outcomes[1].status {
            Status::Failed(Fault::Source(CoreError::Io { path, source })) => {
                assert_eq!(path, &missing);
                assert_eq!(source.raw_os_error(), Some(libc::ENOENT));
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(s.blob(&good_md5).is_none());
        assert_eq!(s.tmp_entries(), 0);
    }

    #[test]
    fn a_source_that_is_not_what_was_hashed_is_refused() {
        let s = store();
        let (path, md5) = s.source("f", b"twelve bytes");
        let mtime_ns = mtime_ns_inode(&fs::metadata(&path).unwrap()).0;
        let fifo = s.root.join("src").join("fifo");
        let c_fifo = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(c_fifo.as_ptr(), 0o644) }, 0);
        let cases = [
            Request {
                size: Some(4),
                ..request(&path, Some(md5))
            },
            Request {
                mtime_ns: Some(mtime_ns + 1),
                ..request(&path, Some(md5))
            },
            request(&s.root, None),
            request(&fifo, None),
        ];

        let found: Vec<String> = cases
            .iter()
            .map(|r| {
                match put_blobs(&s.layout, std::slice::from_ref(r), true)
                    .remove(0)
                    .status
                {
                    Status::Failed(Fault::Changed(c)) => {
                        format!("{} {} {:?}", c.expected, c.actual, c.what)
                    }
                    Status::Failed(Fault::Source(CoreError::Io { source, .. })) => {
                        source.to_string()
                    }
                    other => format!("{other:?}"),
                }
            })
            .collect();

        assert_eq!(found[0], "4 12 None");
        assert_eq!(
            found[1],
            "0 0 Some(\"it was modified after it was hashed\")"
        );
        assert!(found[2].starts_with("Is a directory"), "{}", found[2]);
        assert_eq!(found[3], "a FIFO (named pipe), not a file");
        assert_eq!(s.tmp_entries(), 0);
    }

    #[test]
    fn a_missing_tmp_directory_is_the_stores_fault_naming_the_copy() {
        let s = store();
        let (path, md5) = s.source("f", b"data");
        fs::remove_dir(&s.layout.tmp).unwrap();

        let outcome = put_blobs(&s.layout, &[request(&path, Some(md5))], true).remove(0);

        match outcome.status {
            Status::Failed(Fault::Store(CoreError::Io { path, .. })) => {
                assert!(path.starts_with(&s.layout.tmp), "{path:?}")
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn without_syncfs_each_copy_is_fsynced_and_stored() {
        let mut s = store();
        s.layout.syncfs = false;
        let (path, md5) = s.source("f", b"fsynced");

        let outcomes = put_blobs(&s.layout, &[request(&path, Some(md5))], true);

        assert!(matches!(outcomes[0].status, Status::Stored));
        assert_eq!(s.blob(&md5).unwrap(), b"fsynced");
    }

    fn open_source(s: &Store, len: usize) -> (PathBuf, File) {
        let (path, _) = s.source("big", &data(len, 3));
        let file = File::open(&path).unwrap();
        (path, file)
    }

    #[test]
    fn a_source_shorter_than_its_stat_is_a_change_not_a_short_blob() {
        let s = store();
        let (path, file) = open_source(&s, 3 << 20);
        let source = Source {
            path: &path,
            file: &file,
            len: 4 << 20, // what the stat said before the file was cut
            mtime_ns: 0,
        };
        let tmp = s.layout.tmp.join("out");
        let out = File::create(&tmp).unwrap();

        match source.copy_into(&out, &tmp, None) {
            Err(Fault::Changed(c)) => assert_eq!((c.expected, c.actual), (4 << 20, 3 << 20)),
            other => panic!("unexpected {other:?}"),
        }
        let mut buf = vec![0; 5 << 20];
        assert!(matches!(
            source.read_all(&mut buf[..4 << 20]),
            Err(Fault::Changed(Change { actual, .. })) if actual == 3 << 20
        ));
    }

    #[test]
    fn a_failed_kernel_copy_is_blamed_on_the_side_that_cannot_be_used() {
        let s = store();
        let (path, _) = open_source(&s, 2 << 20);
        let tmp = s.layout.tmp.join("out");
        fs::write(&tmp, b"").unwrap();
        // The source cannot be read (opened write-only): its fault.
        let unreadable = OpenOptions::new().write(true).open(&path).unwrap();
        let writable = OpenOptions::new().write(true).open(&tmp).unwrap();
        let source = Source {
            path: &path,
            file: &unreadable,
            len: 2 << 20,
            mtime_ns: 0,
        };
        assert!(matches!(
            source.copy_into(&writable, &tmp, None),
            Err(Fault::Source(CoreError::Io { path: p, .. })) if p == path
        ));
        // The copy cannot be written (opened read-only): the store's fault.
        let readable = File::open(&path).unwrap();
        let read_only = File::open(&tmp).unwrap();
        let source = Source {
            file: &readable,
            ..source
        };
        assert!(matches!(
            source.copy_into(&read_only, &tmp, None),
            Err(Fault::Store(CoreError::Io { path: p, .. })) if p == tmp
        ));
    }

    #[test]
    fn an_unreadable_source_is_its_own_fault() {
        if unsafe { libc::geteuid() } == 0 {
            return; // root reads anything: covered by the Python tests with dropped caps
        }
        let s = store();
        let (path, md5) = s.source("secret", b"data");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o000)).unwrap();

        let outcome = put_blobs(&s.layout, &[request(&path, Some(md5))], true).remove(0);

        assert!(matches!(outcome.status, Status::Failed(Fault::Source(_))));
    }

    #[test]
    fn md5_hex_parses_lower_case_digits_only() {
        let md5: Md5Digest = Md5::digest(b"x").into();
        assert_eq!(parse_md5_hex(&hex(&md5)), Some(md5));
        assert_eq!(parse_md5_hex(&hex(&md5).to_uppercase()), None);
        assert_eq!(parse_md5_hex("0123"), None);
        assert_eq!(parse_md5_hex(&"g".repeat(32)), None);
    }

    fn in_place(s: &Store) -> Layout {
        Layout {
            in_place: true,
            ..s.layout.clone()
        }
    }

    fn journal(layout: &Layout) -> PathBuf {
        in_place::journal_path(&layout.tmp, &layout.tag)
    }

    #[test]
    fn small_files_are_written_at_their_names_under_a_journal_removed_once_durable() {
        let s = store();
        let layout = in_place(&s);
        let (small, small_md5) = s.source("small", b"small");
        let big_data = data(in_place::MAX_SIZE as usize + 1, 3);
        let (big, big_md5) = s.source("big", &big_data);

        let outcomes = put_blobs(&layout, &[request(&small, None), request(&big, None)], true);

        assert!(outcomes.iter().all(|o| matches!(o.status, Status::Stored)));
        assert_eq!(s.blob(&small_md5).unwrap(), b"small");
        assert_eq!(s.blob(&big_md5).unwrap(), big_data);
        let mode = fs::metadata(layout.blob_path(&small_md5)).unwrap().mode() & 0o777;
        assert!(mode & 0o400 != 0 && mode & 0o022 == 0, "mode {mode:o}");
        assert_eq!(s.tmp_entries(), 0, "no copy and no journal left");
    }

    #[test]
    fn staged_in_place_blobs_are_named_by_making_them_durable() {
        let s = store();
        let layout = in_place(&s);
        let (path, md5) = s.source("f", b"written at its name");

        let staged = put_blobs(&layout, &[request(&path, None)], false);

        assert!(matches!(staged[0].status, Status::Staged));
        let copy = staged[0].staged.clone().unwrap();
        assert_eq!(copy, layout.blob_path(&md5));
        assert!(
            journal(&layout).exists(),
            "the journal waits for the syncfs"
        );
        let (named, failure) =
            name_blobs(&layout.blobs, true, &[(md5, copy)], Some(&journal(&layout)));
        assert_eq!((named, failure.is_none()), (1, true));
        assert_eq!(s.blob(&md5).unwrap(), b"written at its name");
        assert_eq!(s.tmp_entries(), 0);
    }

    #[test]
    fn under_a_journal_snapshots_are_linked_before_the_sync() {
        let s = store();
        let layout = in_place(&s);
        let (path, md5) = s.source("snapshot", b"staged by the SDK");
        let take = Request {
            take: true,
            size: Some(17),
            ..request(&path, Some(md5))
        };

        let staged = put_blobs(&layout, std::slice::from_ref(&take), false);

        // Linked already, and named in the journal until a sync makes it durable.
        assert!(matches!(staged[0].status, Status::Staged));
        assert_eq!(staged[0].staged, Some(layout.blob_path(&md5)));
        let inode = fs::metadata(&path).unwrap().ino();
        assert_eq!(fs::metadata(layout.blob_path(&md5)).unwrap().ino(), inode);
        let listed = fs::read_to_string(journal(&layout)).unwrap();
        assert_eq!(listed, format!("{}\n", hex(&md5)));
        let (named, failure) = name_blobs(
            &layout.blobs,
            true,
            &[(md5, layout.blob_path(&md5))],
            Some(&journal(&layout)),
        );
        assert_eq!((named, failure.is_none()), (1, true));
        assert_eq!(s.tmp_entries(), 0);
        // Taken again (the same snapshot logged twice): the link finds it stored.
        let again = put_blobs(&layout, &[take], true);
        assert!(matches!(again[0].status, Status::Present));
    }

    #[test]
    fn an_incomplete_file_at_the_name_is_replaced_by_a_whole_copy() {
        let s = store();
        let layout = in_place(&s);
        let (path, md5) = s.source("f", b"the whole blob");
        let blob = layout.blob_path(&md5);
        in_place::leave_incomplete(&blob, b"the wh"); // a crashed writer's

        let outcomes = put_blobs(&layout, &[request(&path, Some(md5))], true);

        assert!(matches!(outcomes[0].status, Status::Stored));
        assert_eq!(s.blob(&md5).unwrap(), b"the whole blob");
        assert!(in_place::present(&blob));
        assert_eq!(s.tmp_entries(), 0);
    }

    #[test]
    fn a_batch_failing_before_its_writes_leaves_nothing_in_place() {
        let s = store();
        let layout = in_place(&s);
        let (good, good_md5) = s.source("good", b"fine");
        let (changed, _) = s.source("changed", b"0123456789");
        let mut wrong_size = request(&changed, None);
        wrong_size.size = Some(3);

        let outcomes = put_blobs(&layout, &[request(&good, None), wrong_size], true);

        assert!(matches!(
            outcomes[1].status,
            Status::Failed(Fault::Changed(_))
        ));
        // Failed before any write: nothing in place, no journal.
        assert!(s.blob(&good_md5).is_none());
        assert_eq!(s.tmp_entries(), 0);
    }
}
