//! Verified placement, the inner loop of downloads: copy each source to a temporary
//! name beside its destination while hashing it, and give it the destination's name
//! only if the bytes have the expected MD5. Many files per call, spread over threads.

use std::ffi::OsString;
use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use crate::copy::copy_and_hash;
use crate::error::{AtPath, CoreError, Result};
use crate::hash::{mtime_ns_inode, FileDigest, Md5Digest};

/// One file to place: copy `src` to `dst` if its bytes have the MD5 `md5`.
#[derive(Clone, Debug)]
pub struct Placement {
    pub src: PathBuf,
    pub dst: PathBuf,
    pub md5: Md5Digest,
}

/// What happened to one [`Placement`] that raised no I/O error.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Placed {
    /// The MD5 of the bytes read from the source.
    pub md5: Md5Digest,
    /// The number of bytes read from the source.
    pub size: u64,
    /// The bytes matched and `dst` now holds them; when false nothing was written.
    pub written: bool,
    /// The stat of `dst` after the rename (zero when not written), so the caller can
    /// later tell whether anyone changed the file without reading it.
    pub mtime_ns: i64,
    pub ctime_ns: i64,
    pub inode: u64,
}

/// The 16 bytes of an MD5 written as 32 hex digits (either case); `None` otherwise.
pub fn parse_md5_hex(text: &str) -> Option<Md5Digest> {
    let bytes = text.as_bytes();
    if bytes.len() != 32 {
        return None;
    }
    let mut md5 = [0u8; 16];
    for (i, pair) in bytes.chunks_exact(2).enumerate() {
        let high = (pair[0] as char).to_digit(16)?;
        let low = (pair[1] as char).to_digit(16)?;
        md5[i] = (high * 16 + low) as u8;
    }
    Some(md5)
}

/// The temporary name of item `index` of a call tagged `tag`, in `dst`'s directory:
/// the same filesystem, so the final rename is atomic. Hidden, and independent of the
/// destination's name, so that a long name cannot overflow NAME_MAX.
pub fn tmp_path(dst: &Path, tag: &str, index: usize) -> PathBuf {
    let mut name = OsString::from(".artisync-");
    name.push(tag);
    name.push(format!("-{index}.tmp"));
    match dst.parent() {
        Some(parent) => parent.join(name),
        None => PathBuf::from(name),
    }
}

/// Copy `item.src` to `tmp` while hashing it; rename `tmp` to `item.dst` if the MD5 is
/// `item.md5`, else remove it. A source modified during the copy is an error (the copy
/// and the digest might disagree); so is any I/O failure, which also removes `tmp`.
pub fn copy_verify(item: &Placement, tmp: &Path) -> Result<Placed> {
    let digest = copy_and_hash(&item.src, tmp, false)?;
    let placed = check_and_rename(item, tmp, &digest);
    if !matches!(placed, Ok(Placed { written: true, .. })) {
        let _ = fs::remove_file(tmp);
    }
    placed
}

fn check_and_rename(item: &Placement, tmp: &Path, read: &FileDigest) -> Result<Placed> {
    // The path naming another file by now, or none, is fine: the file read was
    // replaced or removed, not modified (caches replace and evict blobs that way).
    match fs::metadata(&item.src) {
        Ok(after) => {
            let (mtime_ns, inode) = mtime_ns_inode(&after);
            if inode == read.inode && (after.len() != read.size || mtime_ns != read.mtime_ns) {
                return Err(CoreError::io(
                    &item.src,
                    io::Error::other("the file changed while it was copied"),
                ));
            }
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(CoreError::io(&item.src, e)),
    }
    let mut placed = Placed {
        md5: read.md5,
        size: read.size,
        written: false,
        mtime_ns: 0,
        ctime_ns: 0,
        inode: 0,
    };
    if read.md5 != item.md5 {
        return Ok(placed);
    }
    fs::rename(tmp, &item.dst).at(&item.dst)?;
    let meta = fs::symlink_metadata(&item.dst).at(&item.dst)?;
    let (mtime_ns, inode) = mtime_ns_inode(&meta);
    placed.written = true;
    placed.mtime_ns = mtime_ns;
    placed.ctime_ns = meta.ctime() * 1_000_000_000 + meta.ctime_nsec();
    placed.inode = inode;
    Ok(placed)
}

/// [`copy_verify`] for each item on the current rayon pool, temporaries named by
/// [`tmp_path`] with `tag` (unique per call and process, chosen by the caller). One
/// result per item, in order: a failure of one item does not stop the others.
pub fn copy_verify_many(items: &[Placement], tag: &str) -> Vec<Result<Placed>> {
    items
        .par_iter()
        .enumerate()
        .map(|(i, item)| copy_verify(item, &tmp_path(&item.dst, tag, i)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use md5::{Digest, Md5};

    fn placement(dir: &Path, name: &str, data: &[u8], expected: &[u8]) -> Placement {
        let src = dir.join(format!("{name}.src"));
        fs::write(&src, data).unwrap();
        Placement {
            src,
            dst: dir.join(name),
            md5: Md5::digest(expected).into(),
        }
    }

    fn leftovers(dir: &Path) -> Vec<String> {
        fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(".artisync-"))
            .collect()
    }

    #[test]
    fn md5_hex_parses_both_cases_and_refuses_anything_else() {
        let md5: [u8; 16] = Md5::digest(b"x").into();
        let hex = crate::parts::hex(&md5);
        assert_eq!(parse_md5_hex(&hex), Some(md5));
        assert_eq!(parse_md5_hex(&hex.to_uppercase()), Some(md5));
        assert_eq!(parse_md5_hex(&hex[1..]), None);
        assert_eq!(parse_md5_hex(&format!("{}g", &hex[1..])), None);
    }

    #[test]
    fn matching_bytes_get_the_destination_name_with_its_stat() {
        let dir = tempfile::tempdir().unwrap();
        let item = placement(dir.path(), "a", b"hello", b"hello");
        let placed = copy_verify_many(std::slice::from_ref(&item), "t").remove(0);
        let placed = placed.unwrap();
        assert!(placed.written);
        assert_eq!(fs::read(&item.dst).unwrap(), b"hello");
        let meta = fs::metadata(&item.dst).unwrap();
        assert_eq!(placed.inode, meta.ino());
        assert_eq!(placed.size, 5);
        assert!(leftovers(dir.path()).is_empty());
    }

    #[test]
    fn a_mismatch_writes_nothing_and_reports_the_actual_md5() {
        let dir = tempfile::tempdir().unwrap();
        let item = placement(dir.path(), "a", b"corrupt", b"hello");
        fs::write(&item.dst, b"old").unwrap();
        let placed = copy_verify(&item, &tmp_path(&item.dst, "t", 0)).unwrap();
        assert!(!placed.written);
        assert_eq!(placed.md5, <[u8; 16]>::from(Md5::digest(b"corrupt")));
        assert_eq!(fs::read(&item.dst).unwrap(), b"old");
        assert!(leftovers(dir.path()).is_empty());
    }

    #[test]
    fn one_failing_item_leaves_the_others_placed() {
        let dir = tempfile::tempdir().unwrap();
        let good = placement(dir.path(), "good", b"x", b"x");
        let missing = Placement {
            src: dir.path().join("missing"),
            dst: dir.path().join("m"),
            md5: [0; 16],
        };
        let results = copy_verify_many(&[missing, good.clone()], "t");
        assert!(results[0].is_err());
        assert!(results[1].as_ref().unwrap().written);
        assert_eq!(fs::read(&good.dst).unwrap(), b"x");
        assert!(leftovers(dir.path()).is_empty());
    }
}
