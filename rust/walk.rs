//! List a directory tree in parallel: relative paths and stat, sorted by path.

use std::ffi::OsString;
use std::fs::{FileType, Metadata};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use crate::caller::{metadata_as, read_dir_as, symlink_metadata_as, Caller};
use crate::error::{AtPath, CoreError, Result};
use crate::hash::mtime_ns_inode;

/// One regular file found under the root.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WalkEntry {
    /// Relative to the root, `/`-separated.
    pub path: PathBuf,
    pub size: u64,
    pub mtime_ns: i64,
    pub inode: u64,
}

impl WalkEntry {
    fn new(path: PathBuf, meta: &Metadata) -> Self {
        let (mtime_ns, inode) = mtime_ns_inode(meta);
        WalkEntry {
            path,
            size: meta.len(),
            mtime_ns,
            inode,
        }
    }
}

/// (device, inode): how a directory is recognised when a symlink leads back to it.
type DirId = (u64, u64);

/// The directories from the root down to the one being listed, for loop detection.
struct Ancestors<'a> {
    id: DirId,
    path: &'a Path,
    parent: Option<&'a Ancestors<'a>>,
}

impl Ancestors<'_> {
    fn find(&self, id: DirId) -> Option<&Path> {
        let mut node = Some(self);
        while let Some(a) = node {
            if a.id == id {
                return Some(a.path);
            }
            node = a.parent;
        }
        None
    }
}

/// List every regular file under `root`, on the current rayon pool.
///
/// With `follow_symlinks`, symlinks to files are listed with their target's stat and
/// symlinks to directories are descended; one that leads back to a directory being
/// listed is a [`CoreError::SymlinkLoop`], and a dangling one is an error naming it.
/// Without it, symlinks are skipped. Sockets, FIFOs and devices are skipped: they have
/// no content to version.
pub fn walk(root: &Path, follow_symlinks: bool) -> Result<Vec<WalkEntry>> {
    walk_as(None, root, follow_symlinks)
}

/// [`walk`] with `caller`'s rights: every directory opened and every file stat'ed as
/// that user, so the listing holds only what they may see.
pub fn walk_as(
    caller: Option<&Caller>,
    root: &Path,
    follow_symlinks: bool,
) -> Result<Vec<WalkEntry>> {
    let meta = metadata_as(caller, root).at(root)?;
    if !meta.is_dir() {
        return Err(CoreError::errno(root, libc::ENOTDIR));
    }
    let top = Ancestors {
        id: (meta.dev(), meta.ino()),
        path: root,
        parent: None,
    };
    let mut entries = list_dir(caller, root, Path::new(""), &top, follow_symlinks)?;
    entries.par_sort_unstable_by(|a, b| {
        a.path
            .as_os_str()
            .as_bytes()
            .cmp(b.path.as_os_str().as_bytes())
    });
    Ok(entries)
}

fn list_dir(
    caller: Option<&Caller>,
    dir: &Path,
    rel: &Path,
    ancestors: &Ancestors<'_>,
    follow: bool,
) -> Result<Vec<WalkEntry>> {
    let mut children: Vec<(OsString, FileType)> = Vec::new();
    for item in read_dir_as(caller, dir).at(dir)? {
        let item = item.at(dir)?;
        children.push((item.file_name(), item.file_type().at(&item.path())?));
    }
    children
        .par_iter()
        // Stat calls are cheap: hand them out in runs, not one task each.
        .with_min_len(64)
        .map(|(name, kind)| visit(caller, dir, rel, name, *kind, ancestors, follow))
        .try_fold(Vec::new, |mut acc, found| {
            acc.extend(found?);
            Ok(acc)
        })
        .try_reduce(Vec::new, |mut a, mut b| {
            a.append(&mut b);
            Ok(a)
        })
}

fn visit(
    caller: Option<&Caller>,
    dir: &Path,
    rel: &Path,
    name: &OsString,
    kind: FileType,
    ancestors: &Ancestors<'_>,
    follow: bool,
) -> Result<Vec<WalkEntry>> {
    let path = dir.join(name);
    let child_rel = rel.join(name);
    let meta = if kind.is_symlink() {
        if !follow {
            return Ok(Vec::new());
        }
        metadata_as(caller, &path).at(&path)?
    } else if kind.is_dir() || kind.is_file() {
        symlink_metadata_as(caller, &path).at(&path)?
    } else {
        return Ok(Vec::new());
    };
    if meta.is_file() {
        return Ok(vec![WalkEntry::new(child_rel, &meta)]);
    }
    if !meta.is_dir() {
        return Ok(Vec::new());
    }
    let id = (meta.dev(), meta.ino());
    if let Some(target) = ancestors.find(id) {
        return Err(CoreError::SymlinkLoop {
            link: path,
            target: target.to_path_buf(),
        });
    }
    let here = Ancestors {
        id,
        path: &path,
        parent: Some(ancestors),
    };
    list_dir(caller, &path, &child_rel, &here, follow)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::symlink;

    #[test]
    fn lists_nested_files_sorted_with_relative_paths() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir_all(root.join("b/c")).unwrap();
        for p in ["z.txt", "b/c/d.bin", "b/a.txt", "a b.txt"] {
            fs::write(root.join(p), p).unwrap();
        }
        let paths: Vec<_> = walk(root, true)
            .unwrap()
            .into_iter()
            .map(|e| e.path)
            .collect();
        let want: Vec<PathBuf> = ["a b.txt", "b/a.txt", "b/c/d.bin", "z.txt"]
            .iter()
            .map(PathBuf::from)
            .collect();
        assert_eq!(paths, want);
    }

    #[test]
    fn a_symlink_to_an_ancestor_is_a_loop_error_not_a_hang() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir_all(root.join("a/b")).unwrap();
        symlink(root.join("a"), root.join("a/b/up")).unwrap();
        match walk(root, true) {
            Err(CoreError::SymlinkLoop { link, .. }) => assert!(link.ends_with("a/b/up")),
            other => panic!("unexpected {other:?}"),
        }
        // Not following symlinks, the same tree lists fine.
        assert!(walk(root, false).unwrap().is_empty());
    }

    #[test]
    fn symlinked_files_and_directories_are_followed_when_asked() {
        let dir = tempfile::tempdir().unwrap();
        let (root, other) = (dir.path().join("root"), dir.path().join("other"));
        fs::create_dir_all(&root).unwrap();
        fs::create_dir_all(&other).unwrap();
        fs::write(other.join("x"), "12345").unwrap();
        symlink(&other, root.join("linked")).unwrap();
        symlink(other.join("x"), root.join("y")).unwrap();
        let found = walk(&root, true).unwrap();
        assert_eq!(found.len(), 2);
        assert!(found.iter().all(|e| e.size == 5));
        assert!(walk(&root, false).unwrap().is_empty());
    }
}
