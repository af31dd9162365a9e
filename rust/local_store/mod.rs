//! The local store's write protocol: many blobs per call, each on disk before any name
//! points at it, each failure reported on its request and blamed on the right side.
//!
//! This folder owns the protocol, and this comment is the one place its rules are
//! written; everything else (`store/local.py`, `sdk/client.py`, the modules here)
//! points at them by number. The Python `LocalStore` (python/artisync/store/local.py)
//! owns the policy around it (how many files a call, when to sync, which errors to
//! retry, when to check what a crash left) and calls in through `_core.put_blobs`,
//! `name_blobs`, `sync_filesystem` and `recover_blobs`. docs/decisions.md, "The local
//! store's durability protocol lives in Rust", says why.
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
//! Each is guarded by the tests named after it: Rust tests under `local_store`, Python
//! tests in `tests/`. A change here that breaks one of them can leave, after a crash, a
//! name that readers trust on bytes that are not its own.
//!
//! 1. **No permission bits means incomplete.** A file at a blob name without permission
//!    bits is somebody's write in progress: never trusted as stored (`has_blobs` reads
//!    this rule too), never used, and replaced by a whole copy when a writer needs the
//!    name ([`layout::is_complete`]; `in_place::tests::invariant_no_mode_bits_means_incomplete`,
//!    `tests::invariants::invariant_no_mode_bits_a_whole_copy_replaces_the_file`,
//!    `test_store_local.py::test_invariant_no_mode_bits_means_incomplete_a_failed_write_is_not_trusted`).
//! 2. **The journal before an in-place write.** The MD5 of every blob a batch writes at
//!    its name (or links early, see 4) is on disk, file and directory synced, before the
//!    first of them is created; a journal that cannot be written fails the batch with
//!    nothing written in place (`tests::invariants::invariant_journal_before_an_in_place_write`,
//!    `test_store_local.py::test_invariant_bytes_on_disk_before_a_name_with_syncfs`).
//! 3. **Bytes on disk before a name.** No rename gives a blob its name before its bytes
//!    are durable: one `syncfs` of the store's filesystem per batch, or an `fsync` of
//!    each file where the caller asks for it. Else ext4's delayed allocation lets a power
//!    cut leave an empty file at a name that would then be trusted forever. The names
//!    themselves become durable at the caller's next sync (`LocalStore.sync`, before a
//!    registry commit; without `syncfs`, an `fsync` of each directory renamed into)
//!    (`tests::invariants::invariant_bytes_on_disk_before_a_name_fsync_each`,
//!    `tests::invariants::invariant_bytes_on_disk_before_a_name_staged_copies_wait`,
//!    `test_store_local.py::test_invariant_bytes_on_disk_before_a_name_with_syncfs`,
//!    `test_store_local.py::test_invariant_bytes_on_disk_before_a_name_without_syncfs`).
//! 4. **Link early only under a journal, before the batch's sync.** A snapshot is linked
//!    at its name before the `syncfs` (instead of renamed after it) only when the batch
//!    is journaled, so that a power cut that kept a link but not its bytes is found by
//!    the check of 7; without a journal nothing is linked before the sync
//!    (`tests::invariants::invariant_link_early_only_under_a_journal`).
//! 5. **The journal goes last.** A journal is removed only once everything it names is
//!    durable and named (here, and by `LocalStore.discard_staged` after a sync); a batch
//!    that fails after writing in place leaves it for the check of 7
//!    (`tests::invariants::invariant_journal_goes_once_durable`,
//!    `test_store_batch.py::test_discarding_a_staged_batch_leaves_nothing_in_tmp`).
//! 6. **All or nothing before naming.** If any request of a batch fails before the
//!    renames, nothing of it is named and its copies in `tmp/` are removed; a rename that
//!    fails stops the renames there, those done stay done
//!    (`tests::invariants::invariant_one_failure_names_nothing_of_the_batch`,
//!    `tests::invariants::invariant_one_failure_writes_nothing_in_place`,
//!    `tests::invariants::invariant_a_failed_rename_stops_the_renames`,
//!    `test_store_batch.py::test_a_bad_source_in_a_batch_is_raised_and_leaves_no_copy`).
//! 7. **After a crash, what a journal names is checked, first.** Before the store takes
//!    work (`LocalStore.cleanup_tmp`, at start), every blob a leftover journal names is
//!    hashed again and removed unless it is whole and its bytes are its name
//!    ([`recover`]); the removals are synced, and only then is `tmp/` emptied, journals
//!    included. A whole blob is never removed: another batch may trust it already
//!    (`recover::tests::invariant_recovery_removes_what_is_not_whole`,
//!    `test_store_local.py::test_invariant_after_a_crash_what_a_journal_names_is_checked`,
//!    `test_faults_kill.py::test_kill_9_at_every_step_under_four_writers_commits_each_submission_once_in_order`).
//! 8. **The stored bytes are the hashed bytes.** A source whose size or modification
//!    time is not what was hashed, or that reads short, is a change of the source and
//!    stores nothing (`source::tests::invariant_stored_bytes_are_the_hashed_bytes_a_short_source_is_a_change`,
//!    `tests::invariants::invariant_stored_bytes_are_the_hashed_bytes`,
//!    `test_store_batch.py::test_a_stored_blob_of_another_size_than_recorded_is_refused`).
//! 9. **Only a file nobody else can reach is taken.** A snapshot is linked into the store
//!    only if it is on the store's filesystem, has no other name, and is reached through
//!    no symbolic link; else it is copied like any source
//!    (`tests::invariants::invariant_only_an_unreachable_snapshot_is_taken`,
//!    `tests::invariants::invariant_only_an_unreachable_snapshot_is_taken_not_one_with_a_second_name`).
//! 10. **Blame falls on the side that failed.** A source that is missing, unreadable, not
//!     a regular file or changed is the submission's fault (the version is rejected);
//!     anything in the store's directory is the store's (retried). A kernel copy that
//!     fails is blamed on the source only if the source cannot be read where it stopped:
//!     wrongly blaming it would reject a version for a full disk
//!     (`source::tests::invariant_blame_falls_on_the_side_that_failed`,
//!     `tests::invariants::invariant_blame_a_missing_tmp_is_the_stores`,
//!     `tests::invariants::invariant_blame_an_unreadable_source_is_its_own`,
//!     `test_store_local.py::test_an_unwritable_store_is_unavailable_and_an_unreadable_source_is_not`).
//!
//! # The writeback hint
//!
//! The SDK writes snapshots without an fsync each. Right after the daemon accepts a
//! submission with snapshots, the client (`sdk/client.py`, `DaemonClient.hand_over`)
//! calls `_core.start_writeback` ([`start_syncfs`]), so that the kernel writes them back
//! while the daemon reads the submission and the `syncfs` of 3 finds them mostly on
//! disk. It lives in the client, not here, because only the client knows the moment its
//! snapshots are handed over, in its own process; not before the hand-over, whose own
//! fsync would then wait behind it. It is a hint for speed only: durability never
//! depends on it, only on 3.

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
