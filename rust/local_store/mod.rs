//! The local store's write protocol: many blobs per call, each on disk before any name
//! points at it, each failure reported on its request and blamed on the right side.
//!
//! This folder owns the protocol; the Python `LocalStore` (python/artisync/store/local.py)
//! owns the policy around it (how many files a call, when to sync, which errors to
//! retry) and calls in through `_core.put_blobs`, `name_blobs`, `syncfs` and
//! `recover_in_place`. docs/decisions.md, "The local store's durability protocol lives
//! in Rust", says why.
//!
//! # A call
//!
//! For each request, spread over the rayon pool ([`stage`]): skip it if its blob is
//! already whole at its name; else copy its source into `tmp/` (a small file read into
//! a buffer and written, a large one copied in the kernel, hashed on the way when it
//! has no digest), or, for a snapshot the store may take, plan to link the source
//! itself into place. A small file is instead kept in memory to be written straight at
//! its name under the batch's journal ([`in_place`]). Then, if no request failed, the
//! bytes are made durable and every blob named, in request order ([`name`]). With
//! `name: false` the call stops before that: the caller checks the digests, and a later
//! [`name_blobs`] names the copies.
//!
//! # The invariants
//!
//! Each is guarded by the test named after it. A change here that breaks one of them
//! can leave, after a crash, a name that readers trust on bytes that are not its own.
//!
//! 1. **No permission bits means incomplete.** A file at a blob name without permission
//!    bits is somebody's write in progress: never trusted as stored, never used, and
//!    replaced by a whole copy when a writer needs the name
//!    ([`layout::is_complete`]; `in_place::tests::invariant_no_mode_bits_means_incomplete`,
//!    `tests::invariant_no_mode_bits_a_whole_copy_replaces_the_file`).
//! 2. **The journal before an in-place write.** The MD5 of every blob a batch writes at
//!    its name (or links early, see 4) is on disk, file and directory synced, before the
//!    first of them is created (`tests::invariant_journal_before_an_in_place_write`).
//! 3. **Bytes on disk before a name.** No rename gives a blob its name before its bytes
//!    are durable: one `syncfs` of the store's filesystem per batch, or an `fsync` of
//!    each file where the caller asks for it. Else ext4's delayed allocation lets a power
//!    cut leave an empty file at a name that would then be trusted forever
//!    (`tests::invariant_bytes_on_disk_before_a_name_fsync_each`,
//!    `tests::invariant_bytes_on_disk_before_a_name_staged_copies_wait`).
//! 4. **Link early only under a journal, before the batch's sync.** A snapshot is linked
//!    at its name before the `syncfs` (instead of renamed after it) only when the batch
//!    is journaled, so that a power cut that kept a link but not its bytes is found by
//!    the check of 7 (`tests::invariant_link_early_only_under_a_journal`).
//! 5. **The journal goes last.** A journal is removed only once everything it names is
//!    durable and named (`tests::invariant_journal_goes_once_durable`).
//! 6. **All or nothing before naming.** If any request of a batch fails before the
//!    renames, nothing of it is named and its copies in `tmp/` are removed; a rename that
//!    fails stops the renames there, those done stay done
//!    (`tests::invariant_one_failure_names_nothing_of_the_batch`,
//!    `tests::invariant_one_failure_writes_nothing_in_place`,
//!    `tests::invariant_a_failed_rename_stops_the_renames`).
//! 7. **After a crash, what a journal names is checked.** Before the store takes work,
//!    every blob a leftover journal names is hashed again and removed unless it is whole
//!    and its bytes are its name ([`recover`];
//!    `recover::tests::invariant_recovery_removes_what_is_not_whole`). The Python side
//!    then removes `tmp/`'s leftovers.
//! 8. **The stored bytes are the hashed bytes.** A source whose size or modification
//!    time is not what was hashed, or that reads short, is a change of the source and
//!    stores nothing (`source::tests::invariant_stored_bytes_are_the_hashed_bytes_a_short_source_is_a_change`,
//!    `tests::invariant_stored_bytes_are_the_hashed_bytes`).
//! 9. **Only a file nobody else can reach is taken.** A snapshot is linked into the store
//!    only if it is on the store's filesystem, has no other name, and is reached through
//!    no symbolic link; else it is copied like any source
//!    (`tests::invariant_only_an_unreachable_snapshot_is_taken`).
//! 10. **Blame falls on the side that failed.** A source that is missing, unreadable, not
//!     a regular file or changed is the submission's fault; anything in the store's
//!     directory is the store's (`source::tests::invariant_blame_falls_on_the_side_that_failed`,
//!     `tests::invariant_blame_a_missing_tmp_is_the_stores`,
//!     `tests::invariant_blame_an_unreadable_source_is_its_own`).
//!
//! # The writeback hint
//!
//! [`start_syncfs`] starts the writeback of a filesystem in the background, without
//! waiting: the SDK calls it once a snapshot is written, so that the daemon's `syncfs`
//! of 3 finds the bytes mostly on disk. It is a hint for speed; durability never
//! depends on it.

use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use rayon::prelude::*;

mod batch;
pub mod in_place;
mod layout;
mod name;
mod recover;
mod source;
mod stage;
mod sync;

#[cfg(test)]
mod tests;

pub use batch::{Change, Fault, Outcome, Request, Status};
pub use layout::{blob_path, journal_path, parse_md5_hex, Layout, SMALL};
pub use name::name_blobs;
pub use recover::recover;
pub use sync::{start_syncfs, syncfs};

use batch::{all_failed, copy_of, store_fault};
use in_place::{Budget, Written};
use name::{hand_over, link_snapshots, make_durable, name_all};
use stage::{drop_duplicates, stage, write_copy, Plan, Staged};

/// Store every request (see "A call" above), on the current rayon pool. Never fails as
/// a whole: each outcome says what became of its request (invariants 6 and 10).
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
    // Whatever was written in place is on disk and named: the journal goes (invariant 5).
    let _ = fs::remove_file(layout.journal_path());
    outcomes
}

/// Journal the blobs planned in place, then write each at its name (on the pool). A
/// blob whose name holds another writer's incomplete file goes through `tmp/` instead.
/// Fails only if the journal cannot be written: then nothing was written in place
/// (invariant 2).
fn write_in_place(
    layout: &Layout,
    requests: &[Request],
    staged: &mut [Staged],
) -> Result<(), (PathBuf, io::Error)> {
    // Under the journal, snapshots are linked before the syncfs, not after (invariant 4).
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
    let journal = layout.journal_path();
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

/// Nothing of the batch is named (invariant 6): its copies in `tmp/` go, and each
/// outcome says why.
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
            // until the daemon's next start checks it (invariant 7).
            Plan::Written => Status::NotStored,
            Plan::Failed(fault) => Status::Failed(fault),
        };
        s.outcome(status, None)
    };
    staged.into_iter().map(outcome).collect()
}
