"""Small file operations of the local store that stay in Python (manifests, syncs,
cleanup). Blobs go through the Rust core (``_core.put_blobs``), which blames each
failure on the source or on the store itself.
"""

from __future__ import annotations

import contextlib
import errno
import os

__all__ = [
    "CREATE",
    "NO_HARD_LINKS",
    "close_quietly",
    "fsync_path",
    "unlink_quietly",
]

# os.link refusing because the filesystem has no hard links, not for lack of permission.
NO_HARD_LINKS = frozenset({errno.EPERM, errno.EOPNOTSUPP, errno.ENOSYS})
CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC


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
