//! Reading for a caller: the daemon opens a submission's files with the rights of the
//! user who submitted it, so the kernel itself decides (modes, ACLs, every directory on
//! the way), never a check of ours that could differ from it.
//!
//! Linux keeps credentials per thread; the C library's `setgroups`/`setfsuid` wrappers
//! change every thread of the process, the raw system calls only the calling one. So a
//! worker thread takes the caller's supplementary groups, filesystem gid and filesystem
//! uid just around one `open`/`stat`/`opendir` and takes its own back before it does
//! anything else: files are created in the store with the daemon's rights, and an open
//! file needs no rights to be read. Switching needs `CAP_SETUID` and `CAP_SETGID`
//! (root, or the system unit's `AmbientCapabilities`); without them, [`acting_as`] fails
//! with `EPERM` and the daemon serves only its own user's files.
//!
//! Rules, each with its test below:
//! - nothing runs with the caller's rights but the call given to [`acting_as`];
//! - a thread whose own rights cannot be restored does not go on (the process aborts:
//!   a worker reading with someone else's rights for the next caller is worse);
//! - a source is a regular file: never a FIFO (opened without blocking), a device, a
//!   directory, or a file of the kernel's own filesystems (procfs, sysfs: their sizes
//!   say nothing of their content);
//! - a snapshot in the spool is opened with no symbolic link anywhere on its path.

use std::ffi::CString;
use std::fs::{File, Metadata};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::io::FromRawFd;
use std::path::Path;

use crate::error::{CoreError, Result};

/// Whose rights a call reads with: a uid, its primary gid and its supplementary groups.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<u32>,
}

/// An invalid id: `setfsuid`/`setfsgid` then change nothing and return the current one.
const QUERY: libc::c_long = -1;

fn fsuid(uid: libc::c_long) -> u32 {
    unsafe { libc::syscall(libc::SYS_setfsuid, uid) as u32 }
}

fn fsgid(gid: libc::c_long) -> u32 {
    unsafe { libc::syscall(libc::SYS_setfsgid, gid) as u32 }
}

fn thread_groups() -> io::Result<Vec<libc::gid_t>> {
    let n = unsafe { libc::syscall(libc::SYS_getgroups, 0, std::ptr::null_mut::<libc::gid_t>()) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut groups = vec![0 as libc::gid_t; n as usize];
    let got = unsafe { libc::syscall(libc::SYS_getgroups, n, groups.as_mut_ptr()) };
    if got < 0 {
        return Err(io::Error::last_os_error());
    }
    groups.truncate(got as usize);
    Ok(groups)
}

fn set_thread_groups(groups: &[libc::gid_t]) -> io::Result<()> {
    let done = unsafe { libc::syscall(libc::SYS_setgroups, groups.len(), groups.as_ptr()) };
    if done < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// This thread's own credentials, to go back to.
struct Own {
    uid: u32,
    gid: u32,
    groups: Vec<libc::gid_t>,
}

impl Own {
    fn restore(&self) {
        fsuid(self.uid.into());
        fsgid(self.gid.into());
        let groups = set_thread_groups(&self.groups);
        if groups.is_err() || fsuid(QUERY) != self.uid || fsgid(QUERY) != self.gid {
            // See the module's rules: this thread must not read anything more.
            eprintln!("artisync: a worker thread could not take its own credentials back");
            std::process::abort();
        }
    }
}

/// Switch this thread to `caller`'s filesystem credentials; `EPERM` without the
/// capabilities, with this thread's own credentials kept.
fn switch_to(caller: &Caller) -> io::Result<Own> {
    let own = Own {
        uid: fsuid(QUERY),
        gid: fsgid(QUERY),
        groups: thread_groups()?,
    };
    set_thread_groups(&caller.groups)?;
    fsgid(caller.gid.into());
    fsuid(caller.uid.into());
    if fsgid(QUERY) != caller.gid || fsuid(QUERY) != caller.uid {
        own.restore();
        return Err(io::Error::from_raw_os_error(libc::EPERM));
    }
    Ok(own)
}

/// Run `f` on this thread with `caller`'s rights (with the thread's own if `None`).
pub fn acting_as<T>(caller: Option<&Caller>, f: impl FnOnce() -> io::Result<T>) -> io::Result<T> {
    let Some(caller) = caller else {
        return f();
    };
    let own = switch_to(caller)?;
    let result = f();
    own.restore();
    result
}

/// Whether this process may read as `caller` (it has the capabilities to switch).
pub fn can_act_as(caller: &Caller) -> bool {
    acting_as(Some(caller), || Ok(())).is_ok()
}

// Filesystems whose files are the kernel's views, not stored content (statfs(2)).
const KERNEL_FILESYSTEMS: [i64; 11] = [
    0x9fa0,      // procfs
    0x6265_6572, // sysfs
    0x6462_6720, // debugfs
    0x7472_6163, // tracefs
    0x7363_6673, // securityfs
    0x0027_e0eb, // cgroup
    0x6367_7270, // cgroup2
    0xcafe_4a11, // bpf
    0x6265_6570, // configfs
    0x6165_676c, // pstore
    0xde5e_81e4, // efivarfs
];

fn not_content(path: &Path, what: &str) -> CoreError {
    CoreError::io(
        path,
        io::Error::new(io::ErrorKind::InvalidInput, format!("{what}, not a file")),
    )
}

/// Refuse what is not stored content: anything but a regular file, and the files of
/// the kernel's own filesystems.
pub fn check_content(path: &Path, file: &File, meta: &Metadata) -> Result<()> {
    let kind = meta.file_type();
    if kind.is_dir() {
        return Err(CoreError::errno(path, libc::EISDIR));
    }
    if !kind.is_file() {
        use std::os::unix::fs::FileTypeExt;
        let what = if kind.is_fifo() {
            "a FIFO (named pipe)"
        } else if kind.is_char_device() || kind.is_block_device() {
            "a device"
        } else if kind.is_socket() {
            "a socket"
        } else {
            "not a regular file"
        };
        return Err(not_content(path, what));
    }
    let mut fs: libc::statfs = unsafe { std::mem::zeroed() };
    let fd = std::os::unix::io::AsRawFd::as_raw_fd(file);
    if unsafe { libc::fstatfs(fd, &mut fs) } == 0
        && KERNEL_FILESYSTEMS.contains(&(fs.f_type as i64))
    {
        return Err(not_content(
            path,
            "a file of the kernel's (procfs, sysfs, …), whose size says nothing of its content",
        ));
    }
    Ok(())
}

/// Open `path` to read as `caller`, without blocking on a FIFO; with `no_symlinks`,
/// no component of the path may be a symbolic link (a snapshot in the spool).
fn open_raw(caller: Option<&Caller>, path: &Path, no_symlinks: bool) -> io::Result<File> {
    let c_path = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    let flags = libc::O_RDONLY | libc::O_NONBLOCK | libc::O_CLOEXEC;
    acting_as(caller, || {
        let fd = if no_symlinks {
            openat2_no_symlinks(&c_path, flags)?
        } else {
            unsafe { libc::open(c_path.as_ptr(), flags) }
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(unsafe { File::from_raw_fd(fd) })
    })
}

#[repr(C)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}

const RESOLVE_NO_MAGICLINKS: u64 = 0x02;
const RESOLVE_NO_SYMLINKS: u64 = 0x04;

fn openat2_no_symlinks(path: &CString, flags: libc::c_int) -> io::Result<libc::c_int> {
    let how = OpenHow {
        flags: flags as u64,
        mode: 0,
        resolve: RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
    };
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            libc::AT_FDCWD,
            path.as_ptr(),
            &how as *const OpenHow,
            std::mem::size_of::<OpenHow>(),
        )
    };
    if fd >= 0 {
        return Ok(fd as libc::c_int);
    }
    let error = io::Error::last_os_error();
    if error.raw_os_error() != Some(libc::ENOSYS) {
        return Err(error);
    }
    // A kernel before 5.6: the last component at least is never a link.
    Ok(unsafe { libc::open(path.as_ptr(), flags | libc::O_NOFOLLOW) })
}

/// Whether the directory `dir` is reached with no symbolic link on its path.
pub fn dir_has_no_link(dir: &Path) -> bool {
    let Ok(c_path) = CString::new(dir.as_os_str().as_bytes()) else {
        return false;
    };
    match openat2_no_symlinks(&c_path, libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC) {
        Ok(fd) if fd >= 0 => {
            unsafe { libc::close(fd) };
            true
        }
        _ => false,
    }
}

/// Open a source file to read as `caller` and stat it, refusing what is not stored
/// content (see [`check_content`]); a symbolic link on a snapshot's path is `ELOOP`
/// with a message saying so.
pub fn open_source(
    caller: Option<&Caller>,
    path: &Path,
    no_symlinks: bool,
) -> Result<(File, Metadata)> {
    let file = open_raw(caller, path, no_symlinks).map_err(|e| {
        if no_symlinks && e.raw_os_error() == Some(libc::ELOOP) {
            let message = "a symbolic link is on the path of a snapshot, where the SDK makes none";
            CoreError::io(path, io::Error::new(io::ErrorKind::InvalidInput, message))
        } else {
            CoreError::io(path, e)
        }
    })?;
    let meta = file.metadata().map_err(|e| CoreError::io(path, e))?;
    check_content(path, &file, &meta)?;
    Ok((file, meta))
}

/// `stat` (following links) as `caller`.
pub fn metadata_as(caller: Option<&Caller>, path: &Path) -> io::Result<Metadata> {
    acting_as(caller, || std::fs::metadata(path))
}

/// `lstat` as `caller`.
pub fn symlink_metadata_as(caller: Option<&Caller>, path: &Path) -> io::Result<Metadata> {
    acting_as(caller, || std::fs::symlink_metadata(path))
}

/// Open a directory for listing as `caller`.
pub fn read_dir_as(caller: Option<&Caller>, path: &Path) -> io::Result<std::fs::ReadDir> {
    acting_as(caller, || std::fs::read_dir(path))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn is_root() -> bool {
        unsafe { libc::geteuid() == 0 }
    }

    fn nobody() -> Caller {
        Caller {
            uid: 65534,
            gid: 65534,
            groups: vec![],
        }
    }

    #[test]
    fn a_file_only_its_owner_may_read_is_refused_to_another_caller() {
        if !is_root() {
            return; // switching needs CAP_SETUID/CAP_SETGID: CI runs as root
        }
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("secret");
        std::fs::write(&secret, b"key").unwrap();
        std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let refused = open_source(Some(&nobody()), &secret, false).unwrap_err();
        match refused {
            CoreError::Io { source, .. } => assert_eq!(source.raw_os_error(), Some(libc::EACCES)),
            other => panic!("unexpected {other:?}"),
        }
        // The thread has its own rights back: root reads it.
        assert!(open_source(None, &secret, false).is_ok());
        std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(open_source(Some(&nobody()), &secret, false).is_ok());
    }

    #[test]
    fn nothing_runs_with_the_callers_rights_but_the_call_given() {
        if !is_root() {
            return;
        }
        let before = (fsuid(QUERY), fsgid(QUERY), thread_groups().unwrap());
        let inside = acting_as(Some(&nobody()), || Ok((fsuid(QUERY), fsgid(QUERY)))).unwrap();
        assert_eq!(inside, (65534, 65534));
        assert_eq!(
            before,
            (fsuid(QUERY), fsgid(QUERY), thread_groups().unwrap())
        );
    }

    #[test]
    fn fifos_devices_and_kernel_files_are_not_content() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let c = CString::new(fifo.as_os_str().as_bytes()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
        for path in [
            fifo.as_path(),
            Path::new("/dev/zero"),
            Path::new("/proc/self/status"),
        ] {
            let error = open_source(None, path, false).unwrap_err().to_string();
            assert!(error.contains("not a file"), "{path:?}: {error}");
        }
    }

    #[test]
    fn a_symlink_on_a_snapshots_path_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real");
        std::fs::create_dir(&real).unwrap();
        std::fs::write(real.join("f"), b"x").unwrap();
        std::os::unix::fs::symlink(&real, dir.path().join("link")).unwrap();
        let through = dir.path().join("link").join("f");
        assert!(open_source(None, &through, false).is_ok());
        let error = open_source(None, &through, true).unwrap_err().to_string();
        assert!(error.contains("symbolic link"), "{error}");
        assert!(open_source(None, &real.join("f"), true).is_ok());
    }
}
