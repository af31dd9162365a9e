//! MD5 of whole files, as W&B records it, many files per call across threads.

use std::borrow::Borrow;
use std::cell::RefCell;
use std::fs::{File, Metadata};
use std::io::{self, Read};
use std::os::unix::fs::MetadataExt;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

use md5_many::Md5State;

use crate::caller::{open_source, Caller};
use crate::error::{AtPath, CoreError, Result};
use crate::hash_lanes::{hash_jobs, Job, Lanes};
use crate::progress::{self, Counted, Counter};

/// Read buffer per thread: large enough that the read syscalls cost little next to
/// hashing what they return.
pub const BUF_SIZE: usize = 1 << 20;

/// Files larger than this get a sequential-readahead hint.
const FADVISE_MIN: u64 = 4 * BUF_SIZE as u64;

pub type Md5Digest = [u8; 16];

/// What the core knows of one file after reading it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileDigest {
    pub path: PathBuf,
    pub md5: Md5Digest,
    /// The number of bytes hashed (the file's length when it was read).
    pub size: u64,
    pub mtime_ns: i64,
    pub inode: u64,
}

/// The stat fields artisync records for a file: modification time in ns and inode.
pub fn mtime_ns_inode(meta: &Metadata) -> (i64, u64) {
    (meta.mtime() * 1_000_000_000 + meta.mtime_nsec(), meta.ino())
}

thread_local! {
    // One buffer per worker thread, reused across files: allocating 1 MiB per
    // 4 KiB file would cost more than hashing it.
    static BUFFER: RefCell<Vec<u8>> = RefCell::new(vec![0; BUF_SIZE]);
}

/// Run `f` with this thread's read buffer.
pub fn with_buffer<R>(f: impl FnOnce(&mut [u8]) -> R) -> R {
    BUFFER.with(|cell| match cell.try_borrow_mut() {
        Ok(mut buf) => f(&mut buf),
        // Re-entered on the same thread (not expected): use a private buffer.
        Err(_) => f(&mut vec![0; BUF_SIZE]),
    })
}

/// Read `reader` to its end, returning the MD5 and the number of bytes read.
pub fn md5_stream(mut reader: impl Read) -> io::Result<(Md5Digest, u64)> {
    with_buffer(|buf| {
        let mut hasher = Md5State::new();
        let mut total = 0u64;
        loop {
            match reader.read(buf) {
                Ok(0) => break,
                Ok(n) => {
                    hasher.update(&buf[..n]);
                    total += n as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
        Ok((hasher.finalize(), total))
    })
}

/// Tell the kernel a large file will be read front to back, so readahead grows.
pub fn advise_sequential(file: &File, len: u64) {
    if len >= FADVISE_MIN {
        // Advice only: a failure changes nothing but speed.
        unsafe {
            libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_SEQUENTIAL);
        }
    }
}

/// Large copies go this much at a time, each piece's writeback started once copied.
pub const WRITEBACK_PIECE: u64 = 64 << 20;

/// Start writing `len` bytes of `file` from `offset` back to disk, without waiting:
/// a later sync then finds them on disk or on their way instead of writing them all.
pub fn start_writeback(file: &File, offset: u64, len: u64) {
    // Advice only: an error here is the later sync's to report.
    unsafe {
        libc::sync_file_range(
            file.as_raw_fd(),
            offset as libc::off64_t,
            len as libc::off64_t,
            libc::SYNC_FILE_RANGE_WRITE,
        );
    }
}

/// Open `path` for reading and stat the opened file, refusing what is not stored
/// content (directories, FIFOs, devices, the kernel's files: see `caller`).
pub fn open_regular(path: &Path) -> Result<(File, Metadata)> {
    open_source(None, path, false)
}

/// Hash one file. The stat comes from the opened file, so it describes the bytes read.
/// Bytes are added to `progress` as they are hashed (every buffer), the file once done.
pub fn hash_file(path: &Path, progress: Option<&Counter>) -> Result<FileDigest> {
    hash_file_as(None, path, progress)
}

/// [`hash_file`], opened with `caller`'s rights.
pub fn hash_file_as(
    caller: Option<&Caller>,
    path: &Path,
    progress: Option<&Counter>,
) -> Result<FileDigest> {
    let (file, meta) = open_source(caller, path, false)?;
    advise_sequential(&file, meta.len());
    // No more than the stat said: a file that keeps growing is not read without end.
    let limited = Read::take(&file, meta.len());
    let (md5, size) = md5_stream(Counted::new(limited, progress)).at(path)?;
    if size != meta.len() {
        return Err(changed(path));
    }
    let digest = unchanged(path, &file, &meta, md5)?;
    progress::add_file(progress);
    Ok(digest)
}

/// The digest of `file`, opened at `path` with the stat `meta` and read to `meta.len()`,
/// or an error if its stat says it changed meanwhile.
fn unchanged(path: &Path, file: &File, meta: &Metadata, md5: Md5Digest) -> Result<FileDigest> {
    let (mtime_ns, inode) = mtime_ns_inode(meta);
    let now = file.metadata().at(path)?;
    if now.len() != meta.len() || mtime_ns_inode(&now).0 != mtime_ns {
        return Err(changed(path));
    }
    Ok(FileDigest {
        path: path.to_path_buf(),
        md5,
        size: meta.len(),
        mtime_ns,
        inode,
    })
}

fn changed(path: &Path) -> CoreError {
    let message = "it changed while it was read; leave it unchanged until it is committed";
    CoreError::io(path, io::Error::new(io::ErrorKind::InvalidData, message))
}

/// Hash many files on the current rayon pool, many at once in SIMD lanes (`hash_lanes`).
/// Results keep the order of `paths`; on failure the error of the first failing path
/// (in that order) is returned. Each file is opened with `caller`'s rights.
pub fn hash_files(
    caller: Option<&Caller>,
    paths: &[PathBuf],
    progress: Option<&Counter>,
    lanes: Lanes,
) -> Result<Vec<FileDigest>> {
    let jobs: Vec<WholeFile> = paths
        .iter()
        .map(|path| WholeFile {
            caller,
            path,
            progress,
        })
        .collect();
    hash_jobs(lanes, &jobs, progress).into_iter().collect()
}

/// One file hashed whole, as [`hash_file_as`] hashes it.
struct WholeFile<'a> {
    caller: Option<&'a Caller>,
    path: &'a Path,
    progress: Option<&'a Counter>,
}

/// A file being hashed, and its stat when it was opened.
struct Opened(File, Metadata);

impl Borrow<File> for Opened {
    fn borrow(&self) -> &File {
        &self.0
    }
}

impl Job for WholeFile<'_> {
    type Open = Opened;
    type Out = FileDigest;

    fn open(&self) -> Result<(Opened, u64, u64)> {
        let (file, meta) = open_source(self.caller, self.path, false)?;
        advise_sequential(&file, meta.len());
        // No more than the stat said: a file that keeps growing is not read without end.
        let len = meta.len();
        Ok((Opened(file, meta), 0, len))
    }

    fn read_error(&self, err: io::Error) -> CoreError {
        if err.kind() == io::ErrorKind::UnexpectedEof {
            changed(self.path)
        } else {
            CoreError::io(self.path, err)
        }
    }

    fn finish(&self, Opened(file, meta): Opened, md5: Md5Digest) -> Result<FileDigest> {
        let digest = unchanged(self.path, &file, &meta, md5)?;
        progress::add_file(self.progress);
        Ok(digest)
    }
}

/// Run `f` on a pool of `threads` workers, or on rayon's global pool (one worker per
/// core) when `threads` is `None`.
pub fn on_pool<R: Send>(threads: Option<usize>, f: impl FnOnce() -> Result<R> + Send) -> Result<R> {
    match threads {
        None => f(),
        Some(0) => Err(CoreError::InvalidArgument(
            "threads must be at least 1 (or None for one per core)".into(),
        )),
        Some(n) => rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build()
            .map_err(|e| CoreError::InvalidArgument(format!("cannot start {n} threads: {e}")))?
            .install(f),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use md5::{Digest, Md5};
    use std::io::Write;

    fn md5_of(data: &[u8]) -> Md5Digest {
        Md5::digest(data).into()
    }

    #[test]
    fn digests_match_a_one_shot_md5_around_the_buffer_size() {
        let dir = tempfile::tempdir().unwrap();
        for len in [0, 1, BUF_SIZE - 1, BUF_SIZE, BUF_SIZE + 1, 3 * BUF_SIZE + 7] {
            let data: Vec<u8> = (0..len).map(|i| (i * 31 % 251) as u8).collect();
            let path = dir.path().join(format!("f{len}"));
            File::create(&path).unwrap().write_all(&data).unwrap();
            let d = hash_file(&path, None).unwrap();
            assert_eq!(d.md5, md5_of(&data), "len {len}");
            assert_eq!(d.size, len as u64);
        }
    }

    #[test]
    fn a_file_that_grows_while_it_is_hashed_is_an_error_not_an_endless_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("growing");
        std::fs::write(&path, vec![7u8; 3 * BUF_SIZE]).unwrap();
        let writer = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let grow = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut writer = writer;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    writer.write_all(&[1u8; 4096]).unwrap();
                }
            })
        };
        while std::fs::metadata(&path).unwrap().len() <= 3 * BUF_SIZE as u64 {
            std::thread::yield_now(); // the writer is under way
        }
        let outcome = hash_file(&path, None);
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        grow.join().unwrap();
        let error = outcome.unwrap_err().to_string();
        assert!(error.contains("changed while it was read"), "{error}");
    }

    #[test]
    fn hashing_a_directory_is_an_eisdir_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        match hash_file(dir.path(), None) {
            Err(CoreError::Io { path, source }) => {
                assert_eq!(path, dir.path());
                assert_eq!(source.raw_os_error(), Some(libc::EISDIR));
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn hash_files_keeps_input_order_and_reports_the_first_failure() {
        let dir = tempfile::tempdir().unwrap();
        let paths: Vec<PathBuf> = (0..50)
            .map(|i| {
                let p = dir.path().join(format!("{i}"));
                std::fs::write(&p, i.to_string()).unwrap();
                p
            })
            .collect();
        let counter = Counter::new();
        let out = hash_files(None, &paths, Some(&counter), Lanes::best()).unwrap();
        let total: usize = (0..50).map(|i: usize| i.to_string().len()).sum();
        assert_eq!((counter.bytes(), counter.files()), (total as u64, 50));
        for (i, d) in out.iter().enumerate() {
            assert_eq!(d.path, paths[i]);
            assert_eq!(d.md5, md5_of(i.to_string().as_bytes()));
        }
        let mut bad = paths.clone();
        bad.insert(10, dir.path().join("missing-a"));
        bad.insert(20, dir.path().join("missing-b"));
        match hash_files(None, &bad, None, Lanes::best()) {
            Err(CoreError::Io { path, .. }) => assert!(path.ends_with("missing-a")),
            other => panic!("unexpected {other:?}"),
        }
    }
}
