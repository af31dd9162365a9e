//! A source opened for one request, and the reads and copies that blame each failure
//! on the right side: the source's, or the store's (invariants 8, 9 and 10, at the door).

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::unix::fs::FileExt;
use std::os::unix::io::AsRawFd;
use std::path::Path;

use crate::hash::{mtime_ns_inode, start_writeback, with_buffer, Md5Digest, WRITEBACK_PIECE};
use crate::progress::{self, Counted, Counter};

use super::batch::{changed, changed_size, source_fault, store_fault, Fault};

/// An opened source and the stat it was opened with.
pub(super) struct Source<'a> {
    pub path: &'a Path,
    pub file: &'a File,
    pub len: u64,
    pub mtime_ns: i64,
}

impl Source<'_> {
    /// Fill `buf` (the file's length, at most `SMALL`) from the start of the file.
    pub fn read_all<'b>(&self, buf: &'b mut [u8]) -> Result<&'b [u8], Fault> {
        let mut filled = 0;
        while filled < buf.len() {
            match self.file.read_at(&mut buf[filled..], filled as u64) {
                Ok(0) => return Err(changed_size(self.len, filled as u64)),
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(source_fault(self.path, e)),
            }
        }
        Ok(buf)
    }

    /// The MD5 of the file's first `len` bytes (what the stat said it holds).
    pub fn hash(&self, hashed: Option<&Counter>) -> Result<Md5Digest, Fault> {
        let (md5, n) = crate::hash::md5_stream(Counted::new(self.file.take(self.len), hashed))
            .map_err(|e| source_fault(self.path, e))?;
        if n != self.len {
            return Err(changed_size(self.len, n));
        }
        Ok(md5)
    }

    /// The bytes copied must be the bytes hashed: a source modified meanwhile is refused.
    pub fn check_unmodified(&self) -> Result<(), Fault> {
        let meta = self
            .file
            .metadata()
            .map_err(|e| source_fault(self.path, e))?;
        if mtime_ns_inode(&meta).0 != self.mtime_ns {
            return Err(changed("it was modified while it was copied"));
        }
        Ok(())
    }

    /// Copy the file's first `len` bytes into `out` in the kernel (`copy_file_range`,
    /// which reflinks where it can), through the buffer where the kernel cannot.
    pub fn copy_into(&self, out: &File, tmp: &Path, stored: Option<&Counter>) -> Result<(), Fault> {
        let mut offset = 0u64;
        let mut in_kernel = true;
        while offset < self.len {
            let want = (self.len - offset).min(WRITEBACK_PIECE) as usize;
            if in_kernel {
                let mut from = offset as libc::loff_t;
                let n = unsafe {
                    libc::copy_file_range(
                        self.file.as_raw_fd(),
                        &mut from,
                        out.as_raw_fd(),
                        std::ptr::null_mut(),
                        want,
                        0,
                    )
                };
                if n < 0 {
                    let e = io::Error::last_os_error();
                    let unsupported = [libc::EXDEV, libc::ENOSYS, libc::EINVAL, libc::EOPNOTSUPP];
                    if e.kind() == io::ErrorKind::Interrupted {
                        continue;
                    }
                    if offset == 0 && unsupported.contains(&e.raw_os_error().unwrap_or(0)) {
                        in_kernel = false;
                        continue;
                    }
                    return Err(self.blame(offset, e, tmp));
                }
                if n == 0 {
                    if offset == 0 {
                        // Some filesystems (procfs, older FUSE and NFS) answer 0 for a
                        // file that has bytes: read them ourselves.
                        in_kernel = false;
                        continue;
                    }
                    return Err(changed_size(self.len, offset));
                }
                // The batch's syncfs then finds a large file mostly on disk.
                start_writeback(out, offset, n as u64);
                offset += n as u64;
                progress::add_bytes(stored, n as u64);
            } else {
                offset = self.copy_through_buffer(offset, out, tmp, stored)?;
            }
        }
        Ok(())
    }

    fn copy_through_buffer(
        &self,
        mut offset: u64,
        mut out: &File,
        tmp: &Path,
        stored: Option<&Counter>,
    ) -> Result<u64, Fault> {
        with_buffer(|buf| {
            while offset < self.len {
                let want = ((self.len - offset) as usize).min(buf.len());
                let n = match self.file.read_at(&mut buf[..want], offset) {
                    Ok(0) => return Err(changed_size(self.len, offset)),
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(source_fault(self.path, e)),
                };
                out.write_all(&buf[..n]).map_err(|e| store_fault(tmp, e))?;
                offset += n as u64;
                progress::add_bytes(stored, n as u64);
            }
            Ok(offset)
        })
    }

    /// `copy_file_range` reports read and write errors alike: the source is at fault
    /// if it cannot be read where the copy stopped, else the store is. Wrongly blaming
    /// the store holds back one collection with retries; wrongly blaming the source
    /// would reject a version for a full disk.
    fn blame(&self, offset: u64, error: io::Error, tmp: &Path) -> Fault {
        let mut probe = [0u8; 1];
        match self.file.read_at(&mut probe, offset) {
            Err(_) => source_fault(self.path, error),
            Ok(_) => store_fault(tmp, error),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::batch::Change;
    use super::*;
    use crate::error::CoreError;
    use std::fs::{self, OpenOptions};
    use std::path::PathBuf;

    fn open_source(dir: &Path, len: usize) -> (PathBuf, File) {
        let path = dir.join("big");
        let data: Vec<u8> = (0..len).map(|i| (i % 251) as u8 ^ 3).collect();
        fs::write(&path, data).unwrap();
        let file = File::open(&path).unwrap();
        (path, file)
    }

    #[test]
    fn invariant_stored_bytes_are_the_hashed_bytes_a_short_source_is_a_change() {
        let dir = tempfile::tempdir().unwrap();
        let (path, file) = open_source(dir.path(), 3 << 20);
        let source = Source {
            path: &path,
            file: &file,
            len: 4 << 20, // what the stat said before the file was cut
            mtime_ns: 0,
        };
        let tmp = dir.path().join("out");
        let out = File::create(&tmp).unwrap();

        match source.copy_into(&out, &tmp, None) {
            Err(Fault::Changed(c)) => assert_eq!((c.expected, c.actual), (4 << 20, 3 << 20)),
            other => panic!("unexpected {other:?}"),
        }
        let mut buf = vec![0; 5 << 20];
        assert!(matches!(
            source.read_all(&mut buf[..4 << 20]),
            Err(Fault::Changed(Change { actual, .. })) if actual == 3 << 20
        ));
    }

    #[test]
    fn invariant_blame_falls_on_the_side_that_failed() {
        let dir = tempfile::tempdir().unwrap();
        let (path, _) = open_source(dir.path(), 2 << 20);
        let tmp = dir.path().join("out");
        fs::write(&tmp, b"").unwrap();
        // The source cannot be read (opened write-only): its fault.
        let unreadable = OpenOptions::new().write(true).open(&path).unwrap();
        let writable = OpenOptions::new().write(true).open(&tmp).unwrap();
        let source = Source {
            path: &path,
            file: &unreadable,
            len: 2 << 20,
            mtime_ns: 0,
        };
        assert!(matches!(
            source.copy_into(&writable, &tmp, None),
            Err(Fault::Source(CoreError::Io { path: p, .. })) if p == path
        ));
        // The copy cannot be written (opened read-only): the store's fault.
        let readable = File::open(&path).unwrap();
        let read_only = File::open(&tmp).unwrap();
        let source = Source {
            file: &readable,
            ..source
        };
        assert!(matches!(
            source.copy_into(&read_only, &tmp, None),
            Err(Fault::Store(CoreError::Io { path: p, .. })) if p == tmp
        ));
    }
}
