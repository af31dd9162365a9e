"""Telling a full disk apart, through the layers that wrap it, and naming its filesystem."""

from __future__ import annotations

import errno
import os
import sqlite3
from pathlib import Path

from artisync.disk_full import disk_full_cause, disk_full_error, explained, filesystem_of
from artisync.errors import DiskFullError, RegistryError
from artisync.store import StoreUnavailableError


def _wrapped(outer: Exception, inner: BaseException) -> Exception:
    try:
        try:
            raise inner
        except BaseException as e:
            raise outer from e
    except Exception as e:
        return e


def test_a_full_disk_is_found_behind_the_store_and_registry_errors() -> None:
    full = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), "/x/blob")
    store = _wrapped(StoreUnavailableError("/x/blob", full.strerror or ""), full)
    assert disk_full_cause(store) is full
    sqlite_full = sqlite3.OperationalError("database or disk is full")
    sqlite_full.sqlite_errorcode = 13  # type: ignore[attr-defined]
    assert disk_full_cause(_wrapped(RegistryError("commit failed"), sqlite_full)) is sqlite_full
    quota = OSError(errno.EDQUOT, os.strerror(errno.EDQUOT))
    assert disk_full_cause(quota) is quota
    # Kept only in words (a syncfs return code), still a full disk.
    words = StoreUnavailableError("/x", f"syncfs: {os.strerror(errno.ENOSPC)}")
    assert disk_full_cause(words) is words


def test_other_errors_are_not_a_full_disk() -> None:
    assert disk_full_cause(PermissionError(errno.EACCES, "Permission denied", "/x")) is None
    assert disk_full_cause(StoreUnavailableError("/x", "Connection refused")) is None
    named = FileNotFoundError(errno.ENOENT, "gone", f"/data/{os.strerror(errno.ENOSPC)}")
    assert disk_full_cause(named) is None, "a file's name is not its error"


def test_the_error_names_the_path_its_filesystem_and_what_to_do(tmp_path: Path) -> None:
    target = tmp_path / "spool" / "tmp" / "x.json"  # need not exist
    error = disk_full_error(OSError(errno.ENOSPC, "No space left on device"), "cannot log", target)
    fs = filesystem_of(tmp_path)
    assert isinstance(error, DiskFullError) and isinstance(error, OSError)
    assert (error.errno, error.filename, error.mount_point) == (
        errno.ENOSPC,
        str(target),
        fs.mount_point,
    )
    assert str(error).startswith(f"cannot log: writing {target} failed: it is on the ")
    assert f"{fs.fstype} filesystem at {fs.mount_point}" in str(error)
    assert str(error).endswith("disk full: free space and retry")
    assert "quota" in str(disk_full_error(OSError(errno.EDQUOT, "Disk quota exceeded", "/x"), "x"))


def test_collected_errors_are_explained_only_when_the_disk_is_full() -> None:
    full = OSError(errno.ENOSPC, "No space left on device", "/x/root/file")
    error = explained(full, "cannot download")
    assert isinstance(error, DiskFullError) and error.__cause__ is full
    assert str(error).startswith("cannot download: writing /x/root/file failed")
    other = PermissionError(errno.EACCES, "Permission denied", "/x")
    assert explained(other, "cannot download") is other
