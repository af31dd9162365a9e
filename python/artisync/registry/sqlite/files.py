"""Who may write the registry's files: its owner alone, whatever the umask.

On a shared node the daemon runs as a service user and the training jobs of its group
read ``registry.db`` directly (reads stay fast) but change it only through the daemon
(``daemon/registry_routes.py``), so that nobody rewrites the registry behind its back.
The files' modes are what enforce that:

- ``registry.db`` is created ``0640`` (group-readable, never group-writable) and an
  existing one of ours loses any group or other write bit. SQLite creates ``-wal`` and
  ``-shm`` with the main file's mode, so they follow.
- A ``-wal`` or ``-shm`` that the registry file's owner does not own was made by
  someone else: a group member's read-only connection creates them when none exist
  (the home is group-writable for the spool), owned by that member, and their owner
  could write transactions into them that every reader would then trust. The
  read-write opener removes them before SQLite opens the database, and SQLite makes
  its own. A link in their place is removed the same way, never followed.
- Readers who may not write the registry's directory (the group, in a home of mode
  0750) cannot open a WAL database whose ``-wal`` and ``-shm`` are gone: SQLite would
  have to create them. The last read-write connection removes them, so a daemon that
  stops leaves the file in rollback-journal mode (:func:`leave_for_readers`), which a
  reader opens without writing anything; the next read-write open turns WAL on again.
"""

from __future__ import annotations

import os
import sqlite3
import stat
from pathlib import Path
from typing import Final

from artisync.errors import RegistryError
from artisync.logs import get_logger

__all__ = ["REGISTRY_MODE", "SIDECARS", "leave_for_readers", "prepare_registry_file"]

REGISTRY_MODE: Final = 0o640
"""The mode ``registry.db`` is created with: the owner writes, the group reads."""

SIDECARS: Final = ("-wal", "-shm")
"""The suffixes of the files SQLite keeps beside a database in WAL mode."""

_WRITABLE_BY_OTHERS: Final = stat.S_IWGRP | stat.S_IWOTH

log = get_logger("artisync.registry")


def prepare_registry_file(path: Path) -> None:
    """Make sure ``path`` exists with a mode only its owner writes, and that no
    ``-wal``/``-shm`` of another owner is left for SQLite to trust.

    Called before the read-write registry opens ``path``. Raises ``RegistryError``
    naming the file when it cannot be created or a foreign sidecar cannot be removed.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        # O_EXCL: a name made meanwhile by another opener (or planted as a link) is
        # not ours to chmod. An empty file is a valid empty SQLite database.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, REGISTRY_MODE)
    except FileExistsError:
        pass
    except OSError as exc:
        raise RegistryError(f"cannot create registry {path}: {exc.strerror}") from exc
    else:
        try:
            os.fchmod(fd, REGISTRY_MODE)  # the umask may have taken the group's read
        finally:
            os.close(fd)
    try:
        st = os.stat(path)
    except OSError as exc:
        raise RegistryError(f"cannot read registry {path}: {exc.strerror}") from exc
    _tighten(path, st)
    for suffix in SIDECARS:
        _check_sidecar(Path(f"{path}{suffix}"), st.st_uid)


def _tighten(path: Path, st: os.stat_result) -> None:
    # Only our own files: chmod of another's fails, and a file we do not own is its
    # owner's to fix (the daemon's user, when we are a training job).
    if st.st_uid == os.geteuid() and st.st_mode & _WRITABLE_BY_OTHERS:
        os.chmod(path, stat.S_IMODE(st.st_mode) & ~_WRITABLE_BY_OTHERS)


def _check_sidecar(sidecar: Path, owner: int) -> None:
    try:
        st = os.lstat(sidecar)
    except FileNotFoundError:
        return
    if stat.S_ISREG(st.st_mode) and st.st_uid == owner:
        _tighten(sidecar, st)
        return
    what = "a link" if stat.S_ISLNK(st.st_mode) else f"owned by uid {st.st_uid}"
    try:
        sidecar.unlink()
    except FileNotFoundError:
        return
    except OSError as exc:
        raise RegistryError(
            f"registry file {sidecar} is {what}, not the registry owner's (uid {owner}), and "
            f"cannot be removed ({exc.strerror}): remove it, then start again"
        ) from exc
    log.warning("registry_sidecar_removed", path=sidecar, reason=what, owner=owner)


def leave_for_readers(path: Path) -> None:
    """Switch the closed registry at ``path`` to rollback-journal mode, for readers
    who cannot create its ``-wal`` and ``-shm``.

    Called by the daemon once it has closed the registry. A reader still connected
    holds WAL mode (the switch needs the only connection); its sidecars then stay,
    and later readers use them. Either way nothing is lost: this only logs.
    """
    try:
        conn = sqlite3.connect(os.fspath(path), timeout=0, isolation_level=None)
        try:
            mode = conn.execute("PRAGMA journal_mode = DELETE").fetchone()[0]
        finally:
            conn.close()
    except sqlite3.Error as exc:
        mode = f"wal ({exc})"
    if mode != "delete":
        log.info("registry_left_in_wal", path=path, reason=mode)
