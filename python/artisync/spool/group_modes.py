"""The modes of a spool that a group shares (the system service's), set by its daemon.

Members of the group write only where clients write: ``tmp/`` and ``new/`` (their
submissions) and ``staging/`` (their snapshots). Those folders are sticky, so no member
can rename or remove another's files there (the daemon, which owns the folders, still
takes them in). Every other folder, where the daemon claims submissions, keeps its
journals and writes its answers, members may read but not write: nobody can plant a
receipt that says another user's submission was committed, or rejected. Everything is
set through descriptors opened without following links, and with the setgid bit, so
files made inside keep the spool's group.

A spool its group may not write (a single user's) is left as it is.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Final

from artisync.spool.no_follow import open_folder

__all__ = ["CLIENT_FOLDERS", "share_with_group"]

CLIENT_FOLDERS: Final = frozenset({"tmp", "new", "staging"})
_CLIENTS_WRITE: Final = stat.S_ISGID | stat.S_ISVTX | 0o770
_DAEMON_WRITES: Final = stat.S_ISGID | 0o750


def share_with_group(root: Path, folders: tuple[str, ...]) -> list[str]:
    """Give each of ``folders`` under ``root`` its mode, if ``root`` is group-writable;
    what could not be set, in words (the daemon logs it and goes on)."""
    if not os.stat(root).st_mode & stat.S_IWGRP:
        return []
    problems: list[str] = []
    for name in folders:
        mode = _CLIENTS_WRITE if name in CLIENT_FOLDERS else _DAEMON_WRITES
        try:
            with open_folder(root / name) as fd:
                if stat.S_IMODE(os.fstat(fd).st_mode) != mode:
                    os.fchmod(fd, mode)
        except OSError as e:
            problems.append(f"{root / name}: {e.strerror or e}")
    return problems
