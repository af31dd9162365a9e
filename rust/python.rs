//! The Python face of the core: argument conversion, GIL release, error mapping.
//! Policy (what to hash, when to retry) stays in Python; this file only adapts.

use std::ffi::OsStr;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use pyo3::create_exception;
use pyo3::exceptions::{PyOSError, PyValueError};
use pyo3::prelude::*;

use crate::error::CoreError;
use crate::hash_lanes::Lanes;
use crate::local_store as store;
use crate::walk as tree;
use crate::{caller, copy, fetch, hash, parts, progress};

create_exception!(
    _core,
    SymlinkLoopError,
    PyOSError,
    "Following a symlink leads back to a directory that contains it (errno ELOOP)."
);

impl From<CoreError> for PyErr {
    fn from(err: CoreError) -> PyErr {
        match err {
            // OSError(errno, strerror, filename) becomes the matching subclass
            // (FileNotFoundError, PermissionError, ...) with `filename` set.
            CoreError::Io { path, source } => match source.raw_os_error() {
                Some(errno) => {
                    PyOSError::new_err((errno, strerror(&source), path.into_os_string()))
                }
                None => PyOSError::new_err(format!("{}: {}", path.display(), source)),
            },
            CoreError::SymlinkLoop { link, target } => SymlinkLoopError::new_err((
                libc::ELOOP,
                format!("symlink loop: it leads back to {}", target.display()),
                link.into_os_string(),
            )),
            CoreError::InvalidArgument(msg) => PyValueError::new_err(msg),
        }
    }
}

/// The OS's text for an error, without Rust's " (os error N)" suffix.
fn strerror(err: &io::Error) -> String {
    let text = err.to_string();
    match text.rfind(" (os error ") {
        Some(i) => text[..i].to_string(),
        None => text,
    }
}

/// A file's MD5 and stat, as read by the core.
#[pyclass(frozen, module = "artisync._core")]
pub struct FileDigest(hash::FileDigest);

#[pymethods]
impl FileDigest {
    /// The path as given (relative to the root for tree calls).
    #[getter]
    fn path(&self) -> &OsStr {
        self.0.path.as_os_str()
    }
    /// Base64 of the 16 raw MD5 bytes: the entry digest W&B writes in manifests.
    #[getter]
    fn digest(&self) -> String {
        BASE64.encode(self.0.md5)
    }
    /// The same MD5 as 32 lower-case hex digits: the store's blob name.
    #[getter]
    fn md5_hex(&self) -> String {
        parts::hex(&self.0.md5)
    }
    #[getter]
    fn size(&self) -> u64 {
        self.0.size
    }
    #[getter]
    fn mtime_ns(&self) -> i64 {
        self.0.mtime_ns
    }
    #[getter]
    fn inode(&self) -> u64 {
        self.0.inode
    }
    fn __repr__(&self) -> String {
        format!(
            "FileDigest(path={:?}, digest={:?}, size={})",
            self.0.path,
            BASE64.encode(self.0.md5),
            self.0.size
        )
    }
}

/// One regular file found by `walk`.
#[pyclass(frozen, module = "artisync._core")]
pub struct WalkEntry(tree::WalkEntry);

#[pymethods]
impl WalkEntry {
    /// Relative to the walked root, `/`-separated.
    #[getter]
    fn path(&self) -> &OsStr {
        self.0.path.as_os_str()
    }
    #[getter]
    fn size(&self) -> u64 {
        self.0.size
    }
    #[getter]
    fn mtime_ns(&self) -> i64 {
        self.0.mtime_ns
    }
    #[getter]
    fn inode(&self) -> u64 {
        self.0.inode
    }
    fn __repr__(&self) -> String {
        format!("WalkEntry(path={:?}, size={})", self.0.path, self.0.size)
    }
}

/// Per-part MD5s of a file and the multipart ETag they give.
#[pyclass(frozen, module = "artisync._core")]
pub struct PartDigests(parts::PartDigests);

#[pymethods]
impl PartDigests {
    /// Base64 MD5 of each part, ready for a `Content-MD5` header.
    #[getter]
    fn parts(&self) -> Vec<String> {
        self.0.parts.iter().map(|p| BASE64.encode(p)).collect()
    }
    /// S3's ETag of the completed multipart upload, `"<hex>-<count>"` without quotes.
    #[getter]
    fn etag(&self) -> String {
        self.0.etag()
    }
    #[getter]
    fn part_size(&self) -> u64 {
        self.0.part_size
    }
    #[getter]
    fn size(&self) -> u64 {
        self.0.size
    }
    fn __repr__(&self) -> String {
        format!(
            "PartDigests(size={}, part_size={}, etag={:?})",
            self.0.size,
            self.0.part_size,
            self.0.etag()
        )
    }
}

/// What `copy_verify_many` did with one file.
#[pyclass(frozen, module = "artisync._core")]
pub struct PlacedFile(fetch::Placed);

#[pymethods]
impl PlacedFile {
    /// The bytes had the expected MD5 and the destination now holds them.
    #[getter]
    fn written(&self) -> bool {
        self.0.written
    }
    /// The MD5 of the bytes read from the source, as 32 lower-case hex digits.
    #[getter]
    fn md5_hex(&self) -> String {
        parts::hex(&self.0.md5)
    }
    #[getter]
    fn size(&self) -> u64 {
        self.0.size
    }
    #[getter]
    fn mtime_ns(&self) -> i64 {
        self.0.mtime_ns
    }
    #[getter]
    fn ctime_ns(&self) -> i64 {
        self.0.ctime_ns
    }
    #[getter]
    fn inode(&self) -> u64 {
        self.0.inode
    }
    fn __repr__(&self) -> String {
        format!(
            "PlacedFile(written={}, md5_hex={:?}, size={})",
            self.0.written,
            parts::hex(&self.0.md5),
            self.0.size
        )
    }
}

/// Copy each `(src, dst, md5_hex)` to a temporary name beside `dst` while hashing it,
/// and rename it to `dst` only if its MD5 is `md5_hex`. One result per item: a
/// `PlacedFile`, or the `OSError` that item failed with.
#[pyfunction]
#[pyo3(signature = (items, *, tag, threads=None))]
fn copy_verify_many(
    py: Python<'_>,
    items: Vec<(PathBuf, PathBuf, String)>,
    tag: String,
    threads: Option<usize>,
) -> PyResult<Vec<Py<PyAny>>> {
    if tag.is_empty() || tag.contains('/') || tag.contains('\0') {
        return Err(PyValueError::new_err(format!(
            "tag {tag:?} must be a non-empty file-name fragment"
        )));
    }
    let placements = items
        .into_iter()
        .map(|(src, dst, md5_hex)| {
            let md5 = fetch::parse_md5_hex(&md5_hex).ok_or_else(|| {
                PyValueError::new_err(format!(
                    "{md5_hex:?} (for {}) is not an MD5: expected 32 hex digits",
                    dst.display()
                ))
            })?;
            Ok(fetch::Placement { src, dst, md5 })
        })
        .collect::<PyResult<Vec<_>>>()?;
    let results =
        py.detach(|| hash::on_pool(threads, || Ok(fetch::copy_verify_many(&placements, &tag))))?;
    results
        .into_iter()
        .map(|r| match r {
            Ok(placed) => Ok(Py::new(py, PlacedFile(placed))?.into_any()),
            Err(e) => Ok(PyErr::from(e).into_value(py).into_any()),
        })
        .collect()
}

/// Bytes and files done so far by the calls it is given to (`progress=`): the core
/// adds while the call runs, with the GIL released, and Python reads at any time.
#[pyclass(frozen, module = "artisync._core")]
pub struct Progress(Arc<progress::Counter>);

#[pymethods]
impl Progress {
    #[new]
    fn new() -> Self {
        Progress(Arc::new(progress::Counter::new()))
    }
    /// Bytes read (hashed, or copied while hashed) so far.
    #[getter]
    fn bytes(&self) -> u64 {
        self.0.bytes()
    }
    /// Files finished so far.
    #[getter]
    fn files(&self) -> u64 {
        self.0.files()
    }
    /// Add work done outside the core (e.g. bytes a Python upload loop sent).
    #[pyo3(signature = (bytes, files=0))]
    fn add(&self, bytes: u64, files: u64) {
        self.0.add_bytes(bytes);
        self.0.add_files(files);
    }
    fn __repr__(&self) -> String {
        format!(
            "Progress(bytes={}, files={})",
            self.0.bytes(),
            self.0.files()
        )
    }
}

/// The counter behind an optional `progress=` argument, to move into a GIL-free call.
/// `(uid, gid, groups)`: the user whose rights a call reads with.
type CallerArg = (u32, u32, Vec<u32>);

fn to_caller((uid, gid, groups): CallerArg) -> caller::Caller {
    caller::Caller { uid, gid, groups }
}

/// Whether this process can read files with `caller`'s rights (it has CAP_SETUID and
/// CAP_SETGID, as root or through the unit's ambient capabilities).
#[pyfunction]
fn can_act_as(py: Python<'_>, caller: CallerArg) -> bool {
    let caller = to_caller(caller);
    py.detach(|| caller::can_act_as(&caller))
}

fn counter_of(progress: Option<&Bound<'_, Progress>>) -> Option<Arc<progress::Counter>> {
    progress.map(|p| Arc::clone(&p.get().0))
}

/// The SIMD level called `simd` (None: the CPU's best).
fn lanes_of(simd: Option<&str>) -> PyResult<Lanes> {
    Ok(simd
        .map(Lanes::named)
        .transpose()?
        .unwrap_or_else(Lanes::best))
}

/// The SIMD levels `simd=` can name on this CPU, best first ("scalar" last).
#[pyfunction]
fn simd_levels() -> Vec<&'static str> {
    Lanes::names()
}

/// MD5, size, mtime_ns and inode of each file, in the order given.
#[pyfunction]
#[pyo3(signature = (paths, *, threads=None, progress=None, caller=None, simd=None))]
fn hash_files(
    py: Python<'_>,
    paths: Vec<PathBuf>,
    threads: Option<usize>,
    progress: Option<&Bound<'_, Progress>>,
    caller: Option<CallerArg>,
    simd: Option<&str>,
) -> PyResult<Vec<FileDigest>> {
    let counter = counter_of(progress);
    let caller = caller.map(to_caller);
    let lanes = lanes_of(simd)?;
    let digests = py.detach(|| {
        hash::on_pool(threads, || {
            hash::hash_files(caller.as_ref(), &paths, counter.as_deref(), lanes)
        })
    })?;
    Ok(digests.into_iter().map(FileDigest).collect())
}

/// Copy `src` to the new file `dst` and hash it in the same read pass.
#[pyfunction]
#[pyo3(signature = (src, dst, *, fsync=false, progress=None))]
fn copy_and_hash(
    py: Python<'_>,
    src: PathBuf,
    dst: PathBuf,
    fsync: bool,
    progress: Option<&Bound<'_, Progress>>,
) -> PyResult<FileDigest> {
    let counter = counter_of(progress);
    Ok(FileDigest(py.detach(|| {
        copy::copy_and_hash_counted(&src, &dst, fsync, counter.as_deref())
    })?))
}

/// Copy every regular file under `src_root` into `dst_root`, hashing each in one pass.
#[pyfunction]
#[pyo3(signature = (src_root, dst_root, *, follow_symlinks=true, threads=None, fsync=false, progress=None))]
fn copy_tree_and_hash(
    py: Python<'_>,
    src_root: PathBuf,
    dst_root: PathBuf,
    follow_symlinks: bool,
    threads: Option<usize>,
    fsync: bool,
    progress: Option<&Bound<'_, Progress>>,
) -> PyResult<Vec<FileDigest>> {
    let counter = counter_of(progress);
    let digests = py.detach(|| {
        hash::on_pool(threads, || {
            copy::copy_tree_and_hash(
                &src_root,
                &dst_root,
                follow_symlinks,
                fsync,
                counter.as_deref(),
            )
        })
    })?;
    Ok(digests.into_iter().map(FileDigest).collect())
}

/// Per-part MD5s of `path` cut into `part_size`-byte parts, and the multipart ETag.
#[pyfunction]
#[pyo3(signature = (path, part_size, *, threads=None, simd=None))]
fn part_md5s(
    py: Python<'_>,
    path: PathBuf,
    part_size: u64,
    threads: Option<usize>,
    simd: Option<&str>,
) -> PyResult<PartDigests> {
    let lanes = lanes_of(simd)?;
    Ok(PartDigests(py.detach(|| {
        hash::on_pool(threads, || parts::part_md5s(&path, part_size, lanes))
    })?))
}

/// Base64 MD5 of `length` bytes of `path` from `offset` (one part of an upload).
#[pyfunction]
fn part_md5(py: Python<'_>, path: PathBuf, offset: u64, length: u64) -> PyResult<String> {
    let digest = py.detach(|| parts::part_md5(&path, offset, length))?;
    Ok(BASE64.encode(digest))
}

/// Every regular file under `root`, with relative paths and stat, sorted by path.
#[pyfunction]
#[pyo3(signature = (root, follow_symlinks=true, *, threads=None))]
fn walk(
    py: Python<'_>,
    root: PathBuf,
    follow_symlinks: bool,
    threads: Option<usize>,
) -> PyResult<Vec<WalkEntry>> {
    let entries = py.detach(|| hash::on_pool(threads, || tree::walk(&root, follow_symlinks)))?;
    Ok(entries.into_iter().map(WalkEntry).collect())
}

/// A directory listing kept in Rust, handed to Python a run at a time: a million
/// entries cost about half what they would as Python objects.
#[pyclass(module = "artisync._core")]
pub struct WalkListing {
    /// In reverse order: `take` pops runs off the end.
    rest: Vec<tree::WalkEntry>,
    total_size: u64,
}

#[pymethods]
impl WalkListing {
    fn __len__(&self) -> usize {
        self.rest.len()
    }
    /// Bytes in all the files listed (taken or not).
    #[getter]
    fn total_size(&self) -> u64 {
        self.total_size
    }
    /// The next `n` entries at most, in path order; empty once all are taken.
    fn take(&mut self, n: usize) -> Vec<WalkEntry> {
        let keep = self.rest.len().saturating_sub(n);
        let run: Vec<WalkEntry> = self.rest.drain(keep..).rev().map(WalkEntry).collect();
        if self.rest.capacity() > 2 * self.rest.len() + 1024 {
            self.rest.shrink_to_fit(); // what was handed out is not kept twice
        }
        run
    }
}

/// Like `walk`, but the entries stay in Rust until taken.
#[pyfunction]
#[pyo3(signature = (root, follow_symlinks=true, *, threads=None, caller=None))]
fn walk_listing(
    py: Python<'_>,
    root: PathBuf,
    follow_symlinks: bool,
    threads: Option<usize>,
    caller: Option<CallerArg>,
) -> PyResult<WalkListing> {
    let caller = caller.map(to_caller);
    let mut entries = py.detach(|| {
        hash::on_pool(threads, || {
            tree::walk_as(caller.as_ref(), &root, follow_symlinks)
        })
    })?;
    let total_size = entries.iter().map(|e| e.size).sum();
    entries.reverse();
    Ok(WalkListing {
        rest: entries,
        total_size,
    })
}

/// What `put_blobs` did with one request.
#[pyclass(frozen, module = "artisync._core")]
pub struct BlobOutcome {
    status: &'static str,
    staged: Option<PathBuf>,
    md5_hex: Option<String>,
    hashed: Option<Py<FileDigest>>,
    error: Option<Py<PyAny>>,
    change: Option<(u64, u64, Option<&'static str>)>,
}

#[pymethods]
impl BlobOutcome {
    /// `stored`, `present`, `staged`, `not_stored`, or whose fault it failed by:
    /// `source`, `changed` or `store`.
    #[getter]
    fn status(&self) -> &'static str {
        self.status
    }
    /// For `staged`: the file a later call renames into place.
    #[getter]
    fn staged(&self) -> Option<&OsStr> {
        self.staged.as_ref().map(|p| p.as_os_str())
    }
    /// The blob's MD5 as 32 lower-case hex digits, if known.
    #[getter]
    fn md5_hex(&self) -> Option<String> {
        self.md5_hex.clone()
    }
    /// For a request without a digest: the MD5 and stat of what was read.
    #[getter]
    fn hashed(&self, py: Python<'_>) -> Option<Py<FileDigest>> {
        self.hashed.as_ref().map(|h| h.clone_ref(py))
    }
    /// The `OSError` of a `source` or `store` failure, naming the file it concerns.
    #[getter]
    fn error(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        self.error.as_ref().map(|e| e.clone_ref(py))
    }
    /// For `changed`: the size expected and found, or (0, 0) and what changed.
    #[getter]
    fn change(&self) -> Option<(u64, u64, Option<&'static str>)> {
        self.change
    }
    fn __repr__(&self) -> String {
        format!(
            "BlobOutcome(status={:?}, md5_hex={:?})",
            self.status, self.md5_hex
        )
    }
}

/// `OSError(errno, strerror, filename)` for a failure of one request.
fn request_error(py: Python<'_>, err: CoreError) -> Py<PyAny> {
    if let CoreError::Io { path, source } = &err {
        if source.raw_os_error().is_none() {
            let errno = match source.kind() {
                io::ErrorKind::InvalidInput => libc::EINVAL,
                _ => libc::EIO,
            };
            let args = (errno, source.to_string(), path.clone().into_os_string());
            return PyOSError::new_err(args).into_value(py).into_any();
        }
    }
    PyErr::from(err).into_value(py).into_any()
}

impl BlobOutcome {
    fn new(py: Python<'_>, outcome: store::Outcome) -> PyResult<Self> {
        let (status, error, change) = match outcome.status {
            store::Status::Stored => ("stored", None, None),
            store::Status::Present => ("present", None, None),
            store::Status::Staged => ("staged", None, None),
            store::Status::NotStored => ("not_stored", None, None),
            store::Status::Failed(store::Fault::Source(e)) => {
                ("source", Some(request_error(py, e)), None)
            }
            store::Status::Failed(store::Fault::Store(e)) => {
                ("store", Some(request_error(py, e)), None)
            }
            store::Status::Failed(store::Fault::Changed(c)) => {
                ("changed", None, Some((c.expected, c.actual, c.what)))
            }
        };
        Ok(BlobOutcome {
            status,
            staged: outcome.staged,
            md5_hex: outcome.md5.as_ref().map(|m| parts::hex(m)),
            hashed: outcome
                .hashed
                .map(|d| Py::new(py, FileDigest(d)))
                .transpose()?,
            error,
            change,
        })
    }
}

/// Store many blobs in the local store's layout; one `BlobOutcome` per request.
#[pyfunction]
#[pyo3(signature = (blobs, tmp, requests, *, tag, name=true, syncfs=true, in_place=true, threads=None, hashed=None, stored=None, caller=None))]
#[allow(clippy::too_many_arguments, clippy::type_complexity)] // the Python signature
fn put_blobs(
    py: Python<'_>,
    blobs: PathBuf,
    tmp: PathBuf,
    requests: Vec<(
        PathBuf,
        Option<String>,
        Option<u64>,
        Option<i64>,
        bool,
        bool,
    )>,
    tag: String,
    name: bool,
    syncfs: bool,
    in_place: bool,
    threads: Option<usize>,
    hashed: Option<&Bound<'_, Progress>>,
    stored: Option<&Bound<'_, Progress>>,
    caller: Option<CallerArg>,
) -> PyResult<Vec<BlobOutcome>> {
    if tag.is_empty() || tag.contains('/') || tag.contains('\0') {
        return Err(PyValueError::new_err(format!(
            "tag {tag:?} must be a non-empty file-name fragment"
        )));
    }
    let requests = requests
        .into_iter()
        .map(|(source, md5_hex, size, mtime_ns, take, snapshot)| {
            let md5 = match md5_hex {
                None => None,
                Some(text) => Some(store::parse_md5_hex(&text).ok_or_else(|| {
                    PyValueError::new_err(format!(
                        "{text:?} (for {}) is not an MD5: expected 32 lower-case hex digits",
                        source.display()
                    ))
                })?),
            };
            Ok(store::Request {
                source,
                md5,
                size,
                mtime_ns,
                take,
                snapshot,
            })
        })
        .collect::<PyResult<Vec<_>>>()?;
    let layout = store::Layout {
        blobs,
        tmp,
        tag,
        syncfs,
        in_place,
        hashed: counter_of(hashed),
        stored: counter_of(stored),
        caller: caller.map(to_caller),
        linkless_dirs: Default::default(),
    };
    let outcomes =
        py.detach(|| hash::on_pool(threads, || Ok(store::put_blobs(&layout, &requests, name))))?;
    outcomes
        .into_iter()
        .map(|o| BlobOutcome::new(py, o))
        .collect()
}

/// Name the copies `put_blobs(name=False)` staged: durable first, then renamed into
/// place in order (those written in place only made durable), and the batch's
/// `journal` removed; how many, or the first failure as an `OSError` naming its path.
#[pyfunction]
#[pyo3(signature = (blobs, copies, *, syncfs=true, journal=None))]
fn name_blobs(
    py: Python<'_>,
    blobs: PathBuf,
    copies: Vec<(String, PathBuf)>,
    syncfs: bool,
    journal: Option<PathBuf>,
) -> PyResult<usize> {
    let copies = copies
        .into_iter()
        .map(|(md5_hex, copy)| match store::parse_md5_hex(&md5_hex) {
            Some(md5) => Ok((md5, copy)),
            None => Err(PyValueError::new_err(format!(
                "{md5_hex:?} (for {}) is not an MD5: expected 32 lower-case hex digits",
                copy.display()
            ))),
        })
        .collect::<PyResult<Vec<_>>>()?;
    match py.detach(|| store::name_blobs(&blobs, syncfs, &copies, journal.as_deref())) {
        (named, None) => Ok(named),
        (_, Some(error)) => Err(error.into()),
    }
}

/// `syncfs(2)` of the filesystem holding `path`, with the GIL released: everything dirty
/// on it is on disk when this returns (invariant 3 of `local_store`). A writeback error
/// anywhere on the filesystem (EIO, ENOSPC) is raised as an `OSError` naming `path`.
#[pyfunction]
fn sync_filesystem(py: Python<'_>, path: PathBuf) -> PyResult<()> {
    py.detach(|| store::syncfs(&path))
        .map_err(|e| CoreError::io(&path, e).into())
}

/// Start writing back everything dirty on the filesystem holding `path` (`syncfs`) on
/// a detached thread, and return at once; while one runs, another call does nothing.
/// Errors are left to whoever syncs for durability.
#[pyfunction]
fn start_writeback(path: PathBuf) {
    store::start_syncfs(path);
}

/// The journal a `put_blobs` call tagged `tag` keeps in `tmp` while it writes small
/// blobs straight at their names.
#[pyfunction]
fn blob_journal(tmp: PathBuf, tag: &str) -> PathBuf {
    store::journal_path(&tmp, tag)
}

/// After a crash: re-hash the blobs a leftover `journal` names and remove those that
/// are not whole; how many were removed. The caller syncs, then removes the journal.
#[pyfunction]
fn recover_blobs(py: Python<'_>, blobs: PathBuf, journal: PathBuf) -> PyResult<usize> {
    py.detach(|| store::recover(&blobs, &journal))
        .map_err(|e| CoreError::io(&journal, e).into())
}

// Manifests (rust/manifest.rs): the daemon's version entries written from columns.

use crate::manifest;
use pyo3::types::PyBytes;

/// The plain entries of a manifest, from the columns `daemon/version_entries.py`
/// keeps: `paths` (ASCII, end to end), `ends` and `sizes` (native int64s, as
/// `array("q").tobytes()` gives them), `md5` (16 raw bytes each). Returns the
/// `contents` members, the artifact digest's lines, and `None`; or, for two entries
/// no version may hold, `(b"", b"", (i, j))`: `i == j` for a path entry `i` repeats,
/// else entry `i` is a file where entry `j` needs a directory.
#[pyfunction]
#[allow(clippy::type_complexity)]
fn manifest_contents(
    py: Python<'_>,
    paths: &[u8],
    ends: &[u8],
    md5: &[u8],
    sizes: &[u8],
) -> PyResult<(Py<PyBytes>, Py<PyBytes>, Option<(usize, usize)>)> {
    let int64s = |column: &[u8]| -> PyResult<Vec<i64>> {
        if !column.len().is_multiple_of(8) {
            return Err(PyValueError::new_err(
                "an int64 column's length is not a multiple of 8",
            ));
        }
        Ok(column
            .chunks_exact(8)
            .map(|b| i64::from_ne_bytes(b.try_into().expect("8 bytes")))
            .collect())
    };
    let ends: Vec<usize> = int64s(ends)?
        .into_iter()
        .map(|end| usize::try_from(end).unwrap_or(usize::MAX))
        .collect();
    let sizes = int64s(sizes)?;
    let fits =
        ends.windows(2).all(|w| w[0] <= w[1]) && ends.last().is_none_or(|&e| e <= paths.len());
    if md5.len() != 16 * ends.len() || sizes.len() != ends.len() || !fits || !paths.is_ascii() {
        return Err(PyValueError::new_err(
            "manifest columns disagree: one end, 16 MD5 bytes and one size per ASCII path",
        ));
    }
    let written = py.detach(|| manifest::write_plain(paths, &ends, md5, &sizes));
    Ok(match written {
        Ok(w) => (
            PyBytes::new(py, &w.contents).unbind(),
            PyBytes::new(py, &w.lines).unbind(),
            None,
        ),
        Err(clash) => {
            let pair = match clash {
                manifest::Clash::Duplicate(i) => (i, i),
                manifest::Clash::FileIsDirectory(file, inside) => (file, inside),
            };
            (
                PyBytes::new(py, b"").unbind(),
                PyBytes::new(py, b"").unbind(),
                Some(pair),
            )
        }
    })
}

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("SymlinkLoopError", m.py().get_type::<SymlinkLoopError>())?;
    m.add_class::<FileDigest>()?;
    m.add_class::<WalkEntry>()?;
    m.add_class::<PartDigests>()?;
    m.add_class::<PlacedFile>()?;
    m.add_class::<BlobOutcome>()?;
    m.add_class::<Progress>()?;
    m.add_function(wrap_pyfunction!(hash_files, m)?)?;
    m.add_function(wrap_pyfunction!(simd_levels, m)?)?;
    m.add_function(wrap_pyfunction!(can_act_as, m)?)?;
    m.add_function(wrap_pyfunction!(copy_and_hash, m)?)?;
    m.add_function(wrap_pyfunction!(copy_tree_and_hash, m)?)?;
    m.add_function(wrap_pyfunction!(part_md5s, m)?)?;
    m.add_function(wrap_pyfunction!(part_md5, m)?)?;
    m.add_function(wrap_pyfunction!(walk, m)?)?;
    m.add_function(wrap_pyfunction!(walk_listing, m)?)?;
    m.add_class::<WalkListing>()?;
    m.add_function(wrap_pyfunction!(copy_verify_many, m)?)?;
    m.add_function(wrap_pyfunction!(put_blobs, m)?)?;
    m.add_function(wrap_pyfunction!(name_blobs, m)?)?;
    m.add_function(wrap_pyfunction!(blob_journal, m)?)?;
    m.add_function(wrap_pyfunction!(start_writeback, m)?)?;
    m.add_function(wrap_pyfunction!(sync_filesystem, m)?)?;
    m.add_function(wrap_pyfunction!(recover_blobs, m)?)?;
    // Manifests.
    m.add_function(wrap_pyfunction!(manifest_contents, m)?)?;
    Ok(())
}
