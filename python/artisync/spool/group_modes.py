"""The modes of a spool that a group shares (the system service's), set by its daemon.

The rule that decides whether there is a group to share with: the daemon's home is
owned by the daemon's user, its group may read and search it (``g+rx``) and nobody
else may (``o-rwx``): the system unit's ``StateDirectoryMode=0750``. A single user's
home (``0755`` with a default umask) is not shared, whatever its group.

The home is then the daemon's alone: it loses any group or other write bit, so no
member can rename or remove ``registry.db``, ``config.toml``, the store or the lock
in it. The spool inside is given the home's group, and may be read and searched by
it but not written (a member who could write it could rename ``done/`` away and make
one of their own). Members write only where clients write: ``tmp/`` and ``new/``
(their submissions) and ``staging/`` (their snapshots). Those folders are sticky, so
no member can rename or remove another's files there (the daemon, which owns the
folders, still takes them in). Every other folder, where the daemon claims
submissions, keeps its journals and writes its answers, members may read but not
write: nobody can plant a receipt that says another user's submission was committed,
or rejected. Everything is set through descriptors opened without following links,
and with the setgid bit, so files made inside keep the spool's group.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Final

from artisync.spool.no_follow import open_folder

__all__ = ["CLIENT_FOLDERS", "SPOOL_ROOT_MODE", "is_shared_home", "share_with_group"]

CLIENT_FOLDERS: Final = frozenset({"tmp", "new", "staging"})
SPOOL_ROOT_MODE: Final = stat.S_ISGID | 0o750
"""The spool's own directory: the group reads and searches it, only the daemon writes."""
_CLIENTS_WRITE: Final = stat.S_ISGID | stat.S_ISVTX | 0o770
_DAEMON_WRITES: Final = stat.S_ISGID | 0o750
_GROUP_READS: Final = stat.S_IRGRP | stat.S_IXGRP
_OTHERS_WRITE: Final = stat.S_IWGRP | stat.S_IWOTH


def is_shared_home(st: os.stat_result) -> bool:
    """Whether a home with this ``stat`` is shared with its group: ours, ``g+rx``,
    nothing for others."""
    mode = stat.S_IMODE(st.st_mode)
    return (
        st.st_uid == os.geteuid()
        and mode & _GROUP_READS == _GROUP_READS
        and not mode & stat.S_IRWXO
    )


def share_with_group(home: Path, root: Path, folders: tuple[str, ...]) -> list[str]:
    """If ``home`` is shared with its group (:func:`is_shared_home`), take group write
    off it and give the spool at ``root`` and each of its ``folders`` their modes and
    the home's group; what could not be set, in words (the daemon logs it and goes
    on). A home that is not shared is left as it is, and so is its spool."""
    try:
        # The home itself may be a link the operator made: it is followed, once.
        fd = os.open(home, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            st = os.fstat(fd)
            if not is_shared_home(st):
                return []
            if st.st_mode & _OTHERS_WRITE:
                os.fchmod(fd, stat.S_IMODE(st.st_mode) & ~_OTHERS_WRITE)
        finally:
            os.close(fd)
    except OSError as e:
        return [f"{home}: {e.strerror or e}"]
    problems: list[str] = []
    targets = [(root, SPOOL_ROOT_MODE)] + [
        (root / name, _CLIENTS_WRITE if name in CLIENT_FOLDERS else _DAEMON_WRITES)
        for name in folders
    ]
    for path, mode in targets:
        try:
            with open_folder(path) as fd:
                here = os.fstat(fd)
                if here.st_gid != st.st_gid:
                    os.fchown(fd, -1, st.st_gid)
                if stat.S_IMODE(here.st_mode) != mode or here.st_gid != st.st_gid:
                    os.fchmod(fd, mode)  # a chown may have cleared the setgid bit
        except OSError as e:
            problems.append(f"{path}: {e.strerror or e}")
    return problems
