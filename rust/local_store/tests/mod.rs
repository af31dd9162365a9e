//! The batch put as a whole, through `put_blobs`: the shared fixture (a store in a
//! temporary directory, sources, requests) for `invariants`, one test per rule of the
//! door (mod.rs) that a whole call shows, each named after its rule, and `batches`,
//! what a batch does beyond the rules. The parts' own tests sit beside them.

mod batches;
mod invariants;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use md5::{Digest, Md5};

use super::layout::present;
use super::*;
use crate::error::CoreError;
use crate::hash::{mtime_ns_inode, Md5Digest};
use crate::parts::hex;

struct Store {
    _dir: tempfile::TempDir,
    root: PathBuf,
    layout: Layout,
}

fn store() -> Store {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    let layout = Layout {
        blobs: root.join("blobs"),
        tmp: root.join("tmp"),
        tag: "test".into(),
        syncfs: true,
        in_place: false,
        caller: None,
        linkless_dirs: Default::default(),
        hashed: None,
        stored: None,
    };
    fs::create_dir(&layout.blobs).unwrap();
    fs::create_dir(&layout.tmp).unwrap();
    fs::create_dir(root.join("src")).unwrap();
    Store {
        _dir: dir,
        root,
        layout,
    }
}

impl Store {
    fn source(&self, name: &str, data: &[u8]) -> (PathBuf, Md5Digest) {
        let path = self.root.join("src").join(name);
        fs::write(&path, data).unwrap();
        (path, Md5::digest(data).into())
    }
    fn tmp_entries(&self) -> usize {
        fs::read_dir(&self.layout.tmp).unwrap().count()
    }
    fn blob(&self, md5: &Md5Digest) -> Option<Vec<u8>> {
        fs::read(self.layout.blob_path(md5)).ok()
    }
}

fn request(source: &Path, md5: Option<Md5Digest>) -> Request {
    Request {
        source: source.to_path_buf(),
        md5,
        size: None,
        mtime_ns: None,
        take: false,
        snapshot: false,
    }
}

fn data(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8 ^ seed).collect()
}

fn in_place(s: &Store) -> Layout {
    Layout {
        in_place: true,
        ..s.layout.clone()
    }
}

fn journal(layout: &Layout) -> PathBuf {
    journal_path(&layout.tmp, &layout.tag)
}
