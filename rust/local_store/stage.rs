//! The first pass over each request, on the rayon pool: everything but naming. A
//! blob already stored is skipped; a snapshot the store may take is planned to be
//! linked; anything else is copied into `tmp/` (hashed on the way when it has no
//! digest), or, when small, kept in memory to be written at its name under the
//! batch's journal (see `in_place`).

use std::collections::HashMap;
use std::fs::{self, File, Metadata, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::thread;

use crate::caller::{dir_has_no_link, open_source};
use crate::error::CoreError;
use crate::hash::{advise_sequential, mtime_ns_inode, with_buffer, FileDigest, Md5Digest};
use crate::progress;

use super::batch::{
    changed, changed_size, source_fault, store_fault, Fault, Outcome, Request, Status,
};
use super::in_place::{self, Budget};
use super::layout::{is_complete, present, Layout, SMALL};
use super::source::Source;
use super::sync::close;

/// What the first pass made of a request, before anything is named.
pub(super) enum Plan {
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

/// One request after the first pass.
pub(super) struct Staged {
    pub md5: Option<Md5Digest>,
    pub hashed: Option<FileDigest>,
    pub plan: Plan,
}

impl Staged {
    fn failed(md5: Option<Md5Digest>, hashed: Option<FileDigest>, fault: Fault) -> Self {
        Staged {
            md5,
            hashed,
            plan: Plan::Failed(fault),
        }
    }

    pub fn outcome(self, status: Status, staged: Option<PathBuf>) -> Outcome {
        Outcome {
            md5: self.md5,
            hashed: self.hashed,
            status,
            staged,
        }
    }
}

/// The first pass over one request: everything but naming.
pub(super) fn stage(
    layout: &Layout,
    dev: u64,
    budget: &Budget,
    index: usize,
    request: &Request,
) -> Staged {
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
            // Only a file with no other name is taken (invariant 9).
            if meta.dev() == dev && meta.nlink() == 1 && no_link_on_path(layout, request) {
                return staged(Plan::Take);
            }
        }
        // A snapshot taken by rename before a restart has no source any more: the blob
        // being there is the whole answer.
        let blob = fs::metadata(layout.blob_path(md5)).ok();
        if let Some(blob) = blob.filter(is_complete) {
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

pub(super) type Copied = (Md5Digest, Option<FileDigest>, Plan);
pub(super) type CopyError = (Option<FileDigest>, Fault);

/// Copy the request's source into a new file in `tmp/`, hashing it if it has no digest
/// or is read for a caller (whose digest is then only a claim, checked here); a source
/// whose digest turns out to be stored already is not kept (a small one is not even
/// written).
pub(super) fn copy_to_tmp(
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
                    let md5 = md5_many::md5(bytes);
                    progress::add_bytes(layout.hashed.as_deref(), len);
                    progress::add_file(layout.hashed.as_deref());
                    (md5, Some(read(md5)))
                }
            };
            let fail = |fault| (hashed.clone(), fault);
            source.check_unmodified().map_err(fail)?;
            if hashed.is_some() && present(&layout.blob_path(&md5)) {
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
/// would take both times. If the blob turns out to be stored already the copy is
/// dropped: a wasted copy into the page cache, never a failure (a full disk while
/// copying a blob that is there is not an error).
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
    if present(&layout.blob_path(&md5)) {
        discard(&tmp);
        progress::add_file(stored); // its bytes were counted as the copy went
        return Ok((md5, hashed, Plan::Present));
    }
    copied.map_err(|fault| (hashed.clone(), fault))?;
    progress::add_file(stored);
    Ok((md5, hashed, Plan::Tmp(tmp)))
}

/// A copy of `bytes` in `tmp/`, to rename into place later.
pub(super) fn write_copy(
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
pub(super) fn stored_already(request: &Request, blob: &Metadata) -> Plan {
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
    let written = fill(&file).and_then(|()| close(file).map_err(|e| store_fault(tmp, e)));
    if written.is_err() {
        let _ = fs::remove_file(tmp);
    }
    written
}

/// A later request for a blob an earlier one stores is `Present`: its copy goes.
pub(super) fn drop_duplicates(staged: &mut [Staged]) {
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
