//! Putting bytes on disk: `syncfs` of the store's filesystem, `fsync` of one file, and
//! a `close` that reports what the filesystem only says then (invariant 3, at the door).

use std::fs::File;
use std::io;
use std::os::unix::io::{AsRawFd, IntoRawFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

/// `syncfs(2)`: write out everything dirty on the filesystem holding `path`. A
/// writeback error anywhere on it (EIO, ENOSPC) surfaces here.
pub fn syncfs(path: &Path) -> io::Result<()> {
    let dir = File::open(path)?;
    if unsafe { libc::syncfs(dir.as_raw_fd()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Start `syncfs` of the filesystem holding `path` on a detached thread and return at
/// once; while one runs, another call does nothing. A hint for speed only: errors are
/// left to the sync that durability waits for (see the door, "The writeback hint").
pub fn start_syncfs(path: PathBuf) {
    static RUNNING: AtomicBool = AtomicBool::new(false);
    if RUNNING.swap(true, Ordering::AcqRel) {
        return;
    }
    std::thread::spawn(move || {
        let _ = syncfs(&path);
        RUNNING.store(false, Ordering::Release);
    });
}

pub(super) fn fsync_path(path: &Path) -> io::Result<()> {
    File::open(path)?.sync_all()
}

/// Close `file`, reporting the error that some filesystems (NFS) give only then for a
/// write that failed.
pub(super) fn close(file: File) -> io::Result<()> {
    let fd = file.into_raw_fd();
    if unsafe { libc::close(fd) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}
