"""The few file operations the local store keeps in Python: creating and linking its
manifests, the directory fsyncs of a store without ``syncfs``, and quiet cleanup.

Everything that touches a blob's bytes (copies, ``syncfs``, renames, journals) is the
Rust core's write protocol (``rust/local_store/mod.rs``), which blames each failure on
the source or on the store itself. The core has no call that fsyncs a directory, so
:func:`fsync_path` stays here, its one copy. (The spool's own fsyncs, of files that are
not the store's, live with the spool.)
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
    """Make the file or directory at ``path`` durable (for a directory: its entries)."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)  # fsync needs no write access
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def close_quietly(fd: int) -> None:
    """Close ``fd`` while another error is on its way, keeping that one."""
    with contextlib.suppress(OSError):  # already failing: report the first error
        os.close(fd)


def unlink_quietly(path: str) -> None:
    """Remove ``path`` if it can be, quietly."""
    # Cleanup must not hide the error that caused it; cleanup_tmp gets what is left.
    with contextlib.suppress(OSError):
        os.unlink(path)
