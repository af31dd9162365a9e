//! Naming: the batch's bytes made durable (one `syncfs`, or an `fsync` per file), then
//! each blob given its name under `blobs/md5/<hex[:2]>/<hex>`, in request order
//! (invariants 3, 4 and 5, at the door).

use std::collections::BTreeSet;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use crate::error::CoreError;
use crate::hash::Md5Digest;

use super::batch::{source_fault, store_fault, Fault, Outcome, Request, Status};
use super::in_place::Budget;
use super::layout::{blob_path, is_complete, Layout};
use super::stage::{copy_to_tmp, stored_already, Plan, Staged};
use super::sync::{fsync_path, syncfs};

/// Put the bytes of every file about to be named on disk: one `syncfs` on the store's
/// filesystem, or an `fsync` of each file.
pub(super) fn make_durable(
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

/// Hard-link each snapshot to take at its blob name, on the pool: links, unlike
/// cross-directory renames, do not take the filesystem's one rename lock, so threads
/// help. The snapshot keeps its own name until its staging area goes. One that cannot
/// be linked is left to `take` (which reports why). Called before the syncfs only
/// under a journal that names each snapshot (invariant 4).
pub(super) fn link_snapshots(layout: &Layout, requests: &[Request], staged: &mut [Staged]) {
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
            let found = fs::metadata(&blob).ok().filter(is_complete);
            if let (io::ErrorKind::AlreadyExists, Some(found)) = (error.kind(), found) {
                s.plan = stored_already(request, &found);
            }
        });
}

/// Give every staged file its blob name, in request order; stop at the first failure.
/// The batch is durable already (`make_durable`).
pub(super) fn name_all(
    layout: &Layout,
    requests: &[Request],
    mut staged: Vec<Staged>,
) -> Vec<Outcome> {
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

/// Stop before naming: report each file to rename, for a later call to take.
pub(super) fn hand_over(
    layout: &Layout,
    requests: &[Request],
    staged: Vec<Staged>,
) -> Vec<Outcome> {
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

/// Name copies a `put_blobs` call with `name: false` staged in `tmp/`, each `(md5,
/// copy)`: make them durable (one `syncfs`, or an `fsync` each), then rename each to
/// its blob name (replacing one stored meanwhile: the same bytes), in order. Returns how
/// many were named: all, or those before the first failure, which is returned too. A
/// copy that was not named is removed; `journal` goes only once all are durable and
/// named (invariant 5). Every failure is the store's: the copies are its own files.
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
        Some(libc::ENOENT) if fs::metadata(source).is_err() => Err(source_fault(source, error)),
        _ => Err(store_fault(blob, error)),
    }
}
