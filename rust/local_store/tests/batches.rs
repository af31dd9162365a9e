//! What a batch does beyond the rules of the door: every size class stored, digests
//! computed when not given, duplicates stored once, snapshots linked.

use super::*;

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
