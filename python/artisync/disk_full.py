"""Telling a full filesystem apart from other I/O errors, and saying which one it is.

A write that fails with ``ENOSPC`` (no space left) or ``EDQUOT`` (quota exceeded)
is not the input's fault and not permanent: the same call succeeds once space is
freed. The SDK turns it into :class:`~artisync.errors.DiskFullError`, naming the path,
its filesystem and what to do, after removing whatever it half-wrote; the daemon
waits and retries (``daemon/pipeline.py``). Both need the same two answers: is this a
full disk, and which filesystem is it on.
"""

from __future__ import annotations

import contextlib
import errno
import os
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from artisync.errors import DiskFullError
from artisync.sizes import human_size

__all__ = [
    "DISK_FULL_ERRNOS",
    "Filesystem",
    "disk_full_cause",
    "disk_full_detail",
    "disk_full_error",
    "explained",
    "explaining_disk_full",
    "filesystem_of",
    "is_disk_full",
]

DISK_FULL_ERRNOS: Final = frozenset({errno.ENOSPC, errno.EDQUOT})
# SQLite's own code for "database or disk is full" (sqlite3.h: SQLITE_FULL).
_SQLITE_FULL: Final = 13
# The operating system's words for the two errnos, for errors that kept only the text
# (an ``StoreUnavailableError`` made from a ``syncfs`` return code).
_STRERRORS: Final = tuple(os.strerror(code) for code in sorted(DISK_FULL_ERRNOS))
_MOUNTINFO: Final = "/proc/self/mountinfo"


@dataclass(frozen=True, slots=True)
class Filesystem:
    """The filesystem a path is on, as ``df`` would show it."""

    mount_point: str
    fstype: str
    free_bytes: int | None
    total_bytes: int | None
    free_inodes: int | None = None
    total_inodes: int | None = None

    def describe(self) -> str:
        """``the tmpfs filesystem at /mnt/spool``."""
        return f"the {self.fstype} filesystem at {self.mount_point}"

    def space(self) -> str:
        """``12.0 KiB free of 4.0 MiB`` (or ``free space unknown``)."""
        if self.free_bytes is None or self.total_bytes is None:
            return "free space unknown"
        space = f"{human_size(self.free_bytes)} free of {human_size(self.total_bytes)}"
        # Out of inodes, a filesystem with bytes to spare is full all the same.
        if self.free_inodes == 0 and self.total_inodes:
            space += f", and none of its {self.total_inodes} inodes free"
        return space


def is_disk_full(exc: BaseException) -> bool:
    """Whether ``exc`` is an :class:`OSError` saying the filesystem is full or over quota."""
    return isinstance(exc, OSError) and exc.errno in DISK_FULL_ERRNOS


def disk_full_cause(exc: BaseException) -> BaseException | None:
    """The full-disk error behind ``exc``, following ``raise ... from`` chains.

    Layers wrap the operating system's error: the local store raises
    ``StoreUnavailableError`` from the ``OSError``, the registry ``RegistryError``
    from SQLite's "database or disk is full". Returns that innermost error (or ``exc``
    itself when only its message says so), else ``None``.
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if is_disk_full(current):
            return current
        if isinstance(current, sqlite3.Error) and (
            getattr(current, "sqlite_errorcode", None) == _SQLITE_FULL
        ):
            return current
        current = current.__cause__ or current.__context__
    # A store error made from a bare return code (syncfs) kept only the words; an
    # OSError without a full-disk errno is something else, whatever its file is called.
    if not isinstance(exc, OSError) and any(text in str(exc) for text in _STRERRORS):
        return exc
    return None


def filesystem_of(path: str | os.PathLike[str]) -> Filesystem:
    """The filesystem holding ``path`` (or its nearest existing parent).

    The mount is found in ``/proc/self/mountinfo`` by device number, the deepest mount
    point above the path winning (bind mounts share a device); free space comes from
    ``statvfs``, counting what an unprivileged user may use.
    """
    existing = _existing_ancestor(Path(os.path.abspath(os.fspath(path))))
    free = total = free_inodes = total_inodes = None
    device = None
    with contextlib.suppress(OSError):
        st = os.statvfs(existing)
        free, total = st.f_bavail * st.f_frsize, st.f_blocks * st.f_frsize
        free_inodes, total_inodes = st.f_favail, st.f_files
        device = os.stat(existing).st_dev
    real = os.path.realpath(existing)
    best: tuple[str, str] | None = None
    for mount_point, fstype, dev in _mounts():
        if device is not None and dev != device:
            continue
        if _is_under(real, mount_point) and (best is None or len(mount_point) > len(best[0])):
            best = (mount_point, fstype)
    mount_point, fstype = best or (str(existing), "unknown")
    return Filesystem(mount_point, fstype, free, total, free_inodes, total_inodes)


def disk_full_error(
    exc: OSError, doing: str, path: str | os.PathLike[str] | None = None
) -> DiskFullError:
    """``exc`` (a full-disk :class:`OSError`) as the error a user can act on.

    ``doing`` says what failed, e.g. ``"cannot snapshot /data/model.h5 into the
    spool"``; the path named is ``exc.filename``, else ``path`` (the file being
    written: errors from ``write`` and ``fsync`` carry no file name).
    """
    if exc.filename is not None:
        target = os.fsdecode(exc.filename)
    else:
        target = os.fspath(path) if path is not None else "(unknown path)"
    fs = filesystem_of(target)
    code = exc.errno if exc.errno in DISK_FULL_ERRNOS else errno.ENOSPC
    why = "which ran out of space" if code == errno.ENOSPC else "where your quota is used up"
    # Measured after the caller removed its partial write: what is free for a retry.
    message = (
        f"{doing}: writing {target} failed: it is on {fs.describe()}, {why} "
        f"(now {fs.space()}). disk full: free space and retry"
    )
    return DiskFullError(
        code,
        target,
        message,
        mount_point=fs.mount_point,
        fstype=fs.fstype,
        free_bytes=fs.free_bytes,
    )


def explained(exc: BaseException, doing: str) -> BaseException:
    """``exc`` as a :class:`DiskFullError` if it is a full-disk ``OSError``, else
    ``exc`` itself: for code that collects errors and raises one of them later."""
    if isinstance(exc, OSError) and is_disk_full(exc) and not isinstance(exc, DiskFullError):
        error = disk_full_error(exc, doing)
        error.__cause__ = exc
        return error
    return exc


@contextlib.contextmanager
def explaining_disk_full(doing: str, path: str | os.PathLike[str] | None = None) -> Iterator[None]:
    """Turn a full-disk :class:`OSError` raised inside into :class:`DiskFullError`.

    Other errors, and a :class:`DiskFullError` raised by an inner call, pass unchanged.
    The caller removes what it half-wrote before leaving the block.
    """
    try:
        yield
    except DiskFullError:
        raise
    except OSError as e:
        if not is_disk_full(e):
            raise
        raise disk_full_error(e, doing, path) from e


def _existing_ancestor(path: Path) -> Path:
    for candidate in (path, *path.parents):
        if candidate.exists():
            return candidate
    return Path("/")


def _is_under(path: str, mount_point: str) -> bool:
    return mount_point == "/" or path == mount_point or path.startswith(mount_point + "/")


def _mounts() -> Iterator[tuple[str, str, int]]:
    """``(mount point, fstype, device number)`` of every mount this process sees."""
    try:
        with open(_MOUNTINFO, encoding="utf-8", errors="replace") as f:
            lines = f.readlines()
    except OSError:
        return
    for line in lines:
        # "36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw": the optional
        # fields before " - " vary in number.
        head, sep, tail = line.partition(" - ")
        fields = head.split()
        if not sep or len(fields) < 5 or not tail.split():
            continue
        major, _, minor = fields[2].partition(":")
        with contextlib.suppress(ValueError):
            yield _unescape(fields[4]), tail.split()[0], os.makedev(int(major), int(minor))


def _unescape(field: str) -> str:
    """Mount points escape space, tab, newline and backslash as octal (``\\040``)."""
    if "\\" not in field:
        return field
    return field.encode().decode("unicode_escape").encode("latin-1").decode(errors="replace")


def disk_full_detail(e: BaseException) -> str:
    """What a full disk stopped, and on which filesystem, for the one warning."""
    cause = disk_full_cause(e)
    if isinstance(cause, DiskFullError):
        return str(cause)
    # The file written: the OS error's, else the store's (write errors carry none).
    path = cause.filename if isinstance(cause, OSError) else None
    path = path or getattr(e, "path", None)
    if path:
        code = cause.errno if isinstance(cause, OSError) and cause.errno else errno.ENOSPC
        full = OSError(code, os.strerror(code), path)
        return str(disk_full_error(full, "the daemon cannot write to the store or spool"))
    return f"disk full: {e}"
