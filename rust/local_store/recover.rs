//! What a crash left (invariant 7, at the door): the blobs a leftover journal names are
//! hashed again, and every one that is not whole, or not what its name says, goes.

use std::fs::{self, File};
use std::io::{self, BufRead, BufReader};
use std::path::Path;

use rayon::prelude::*;

use crate::hash::md5_stream;

use super::layout::{blob_path, is_complete, parse_md5_hex};

/// After a crash: re-hash every blob the journal names and remove those that are
/// incomplete or not what their name says. Returns how many were removed; the caller
/// makes the removals durable before it removes the journal.
pub fn recover(blobs: &Path, journal: &Path) -> io::Result<usize> {
    let mut md5s = Vec::new();
    for line in BufReader::new(File::open(journal)?).lines() {
        // A torn last line is a blob whose write never began: nothing to check.
        if let Some(md5) = parse_md5_hex(line?.trim()) {
            md5s.push(md5);
        }
    }
    let removed = md5s
        .par_iter()
        .map(|md5| {
            let path = blob_path(blobs, md5);
            let meta = match fs::metadata(&path) {
                Ok(meta) => meta,
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
                Err(e) => return Err(e),
            };
            if is_complete(&meta) && md5_stream(File::open(&path)?)?.0 == *md5 {
                return Ok(0);
            }
            match fs::remove_file(&path) {
                Ok(()) => Ok(1),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(0),
                Err(e) => Err(e),
            }
        })
        .collect::<io::Result<Vec<usize>>>()?;
    Ok(removed.into_iter().sum())
}

#[cfg(test)]
mod tests {
    use md5::{Digest, Md5};

    use super::super::in_place::{leave_incomplete, write, write_journal};
    use super::super::layout::{journal_path, present};
    use super::*;
    use crate::hash::Md5Digest;

    #[test]
    fn invariant_recovery_removes_what_is_not_whole() {
        let dir = tempfile::tempdir().unwrap();
        let (blobs, tmp) = (dir.path().join("blobs"), dir.path().join("tmp"));
        fs::create_dir(&blobs).unwrap();
        fs::create_dir(&tmp).unwrap();
        let md5 = |data: &[u8]| -> Md5Digest { Md5::digest(data).into() };
        let (good, torn, unfinished, absent, unlisted) = (
            md5(b"good"),
            md5(b"torn"),
            md5(b"unfinished"),
            md5(b"absent"),
            md5(b"unlisted"),
        );
        write(&blob_path(&blobs, &good), b"good").unwrap();
        write(&blob_path(&blobs, &torn), b"to").unwrap(); // whole mode, wrong bytes
        write(&blob_path(&blobs, &unlisted), b"nope").unwrap();
        leave_incomplete(&blob_path(&blobs, &unfinished), b"unfinished");
        let journal = journal_path(&tmp, "t");
        write_journal(&journal, [good, torn, unfinished, absent].iter()).unwrap();
        assert_eq!(recover(&blobs, &journal).unwrap(), 2);
        assert!(present(&blob_path(&blobs, &good)));
        assert!(!blob_path(&blobs, &torn).exists());
        assert!(!blob_path(&blobs, &unfinished).exists());
        assert!(blob_path(&blobs, &unlisted).exists()); // not the journal's to judge
    }
}
