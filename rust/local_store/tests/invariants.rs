//! One test per rule of the door (mod.rs) that a whole `put_blobs` call shows, named
//! after the rule it guards.

use super::*;

#[test]
fn invariant_only_an_unreachable_snapshot_is_taken() {
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
fn invariant_only_an_unreachable_snapshot_is_taken_not_one_with_a_second_name() {
    let s = store();
    let (path, md5) = s.source("snapshot", b"also known as");
    fs::hard_link(&path, s.root.join("src").join("other name")).unwrap();
    let take = Request {
        take: true,
        snapshot: true,
        size: Some(13),
        ..request(&path, Some(md5))
    };

    let outcomes = put_blobs(&s.layout, &[take], true);

    // Through its other name the content could change after it is committed: copied.
    assert!(matches!(outcomes[0].status, Status::Stored));
    let blob = fs::metadata(s.layout.blob_path(&md5)).unwrap();
    assert_ne!(blob.ino(), fs::metadata(&path).unwrap().ino(), "copied");
    assert_eq!(
        fs::metadata(&path).unwrap().nlink(),
        2,
        "the source left alone"
    );
    assert_eq!(s.blob(&md5).unwrap(), b"also known as");
    assert_eq!(s.tmp_entries(), 0);
}

#[test]
fn invariant_bytes_on_disk_before_a_name_staged_copies_wait() {
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
fn invariant_a_failed_rename_stops_the_renames() {
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
fn invariant_one_failure_names_nothing_of_the_batch() {
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
fn invariant_stored_bytes_are_the_hashed_bytes() {
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
                Status::Failed(Fault::Source(CoreError::Io { source, .. })) => source.to_string(),
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
fn invariant_blame_a_missing_tmp_is_the_stores() {
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
fn invariant_bytes_on_disk_before_a_name_fsync_each() {
    let mut s = store();
    s.layout.syncfs = false;
    let (path, md5) = s.source("f", b"fsynced");

    let outcomes = put_blobs(&s.layout, &[request(&path, Some(md5))], true);

    assert!(matches!(outcomes[0].status, Status::Stored));
    assert_eq!(s.blob(&md5).unwrap(), b"fsynced");
}

#[test]
fn invariant_blame_an_unreadable_source_is_its_own() {
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
fn invariant_journal_before_an_in_place_write() {
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
fn invariant_journal_goes_once_durable() {
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
    let (named, failure) = name_blobs(&layout.blobs, true, &[(md5, copy)], Some(&journal(&layout)));
    assert_eq!((named, failure.is_none()), (1, true));
    assert_eq!(s.blob(&md5).unwrap(), b"written at its name");
    assert_eq!(s.tmp_entries(), 0);
}

#[test]
fn invariant_link_early_only_under_a_journal() {
    let s = store();
    let layout = in_place(&s);
    let (path, md5) = s.source("snapshot", b"staged by the SDK");
    let take = Request {
        take: true,
        size: Some(17),
        ..request(&path, Some(md5))
    };

    // Without a journal, staging links nothing: the link comes after the sync.
    let unjournaled = put_blobs(&s.layout, std::slice::from_ref(&take), false);
    assert!(matches!(unjournaled[0].status, Status::Staged));
    assert_eq!(unjournaled[0].staged, Some(path.clone()));
    assert!(!layout.blob_path(&md5).exists() && !journal(&layout).exists());

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
fn invariant_no_mode_bits_a_whole_copy_replaces_the_file() {
    let s = store();
    let layout = in_place(&s);
    let (path, md5) = s.source("f", b"the whole blob");
    let blob = layout.blob_path(&md5);
    in_place::leave_incomplete(&blob, b"the wh"); // a crashed writer's

    let outcomes = put_blobs(&layout, &[request(&path, Some(md5))], true);

    assert!(matches!(outcomes[0].status, Status::Stored));
    assert_eq!(s.blob(&md5).unwrap(), b"the whole blob");
    assert!(present(&blob));
    assert_eq!(s.tmp_entries(), 0);
}

#[test]
fn invariant_one_failure_writes_nothing_in_place() {
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
