"""File operations under the local store: kernel copies that blame each error right.

A problem with the source is the submission's fault (the daemon rejects it, naming the
file); a problem on the store's side is a transient failure the daemon retries.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat

from artisync.store.base import SourceChangedError, StoreUnavailableError

__all__ = [
    "CREATE",
    "NO_COPY_FILE_RANGE",
    "NO_HARD_LINKS",
    "OPEN_SOURCE",
    "check_source",
    "close_quietly",
    "fill",
    "fsync_path",
    "stat_source",
    "unlink_quietly",
]

# copy_file_range cannot copy these (other filesystem, old kernel): sendfile can.
NO_COPY_FILE_RANGE = frozenset({errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP})
# os.link refusing because the filesystem has no hard links, not for lack of permission.
NO_HARD_LINKS = frozenset({errno.EPERM, errno.EOPNOTSUPP, errno.ENOSYS})
# O_NONBLOCK: opening a FIFO by mistake must fail later, not hang the worker thread.
OPEN_SOURCE = os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK
CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC


def stat_source(src: str, size: int | None) -> os.stat_result:
    st = os.stat(src)  # a missing source is the submission's fault: propagate
    check_source(src, st, size)
    return st


def check_source(src: str, st: os.stat_result, size: int | None) -> None:
    if stat.S_ISDIR(st.st_mode):
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), src)
    if not stat.S_ISREG(st.st_mode):
        raise OSError(errno.EINVAL, "not a regular file", src)
    if size is not None and st.st_size != size:
        raise SourceChangedError(src, size, st.st_size)


def copy(src_fd: int, dst_fd: int, size: int) -> int:
    """Copy the first ``size`` bytes in the kernel; fewer if the file got shorter.

    Stopping at ``size`` spares the call that would find the end of the file: bytes
    appended after the stat are not part of what was hashed anyway.
    """
    total = 0
    use_copy_file_range = True
    while total < size:
        if use_copy_file_range:
            try:
                n = os.copy_file_range(src_fd, dst_fd, size - total)
            except OSError as e:
                if total or e.errno not in NO_COPY_FILE_RANGE:
                    raise
                use_copy_file_range = False
                continue
            if n == 0 and total == 0:
                # Some filesystems (procfs, older FUSE and NFS) answer 0 for a file
                # that has bytes; sendfile reads them properly.
                use_copy_file_range = False
                continue
        else:
            n = os.sendfile(dst_fd, src_fd, None, size - total)
        if n == 0:
            break
        total += n
    return total


def fill(
    src_fd: int, dst_fd: int, src: str, tmp: str, size: int | None, st_size: int, fsync: bool
) -> None:
    """Copy the source into the open temporary file, blaming errors on the right side."""
    try:
        copied = copy(src_fd, dst_fd, st_size)
    except OSError as e:
        if source_unreadable(src_fd):
            raise OSError(e.errno, e.strerror, src) from e
        raise StoreUnavailableError.from_os_error(e, tmp) from e
    if copied != st_size:  # truncated while being copied
        raise SourceChangedError(src, st_size, copied)
    if fsync:
        try:
            os.fsync(dst_fd)
        except OSError as e:
            raise StoreUnavailableError.from_os_error(e, tmp) from e


def source_unreadable(src_fd: int) -> bool:
    """Whether a failed copy was the source's fault: it cannot be read where it stopped.

    copy_file_range and sendfile report read and write errors alike. Anything else is
    blamed on the store, which makes the daemon retry: wrongly retrying a bad source
    holds back one collection; wrongly rejecting on a full disk would lose a version.
    """
    try:
        os.pread(src_fd, 1, os.lseek(src_fd, 0, os.SEEK_CUR))
    except OSError:
        return True
    return False


def fsync_path(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)  # fsync needs no write access
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def close_quietly(fd: int) -> None:
    with contextlib.suppress(OSError):  # already failing: report the first error
        os.close(fd)


def unlink_quietly(path: str) -> None:
    # Cleanup must not hide the error that caused it; cleanup_tmp gets what is left.
    with contextlib.suppress(OSError):
        os.unlink(path)
