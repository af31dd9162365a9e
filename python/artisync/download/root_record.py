"""What downloads wrote under a root, so that a second download skips it unread.

For every file it writes, a download records the entry's digest and the stat of the
file right after its verified copy got its name: size, ``mtime_ns``, ``ctime_ns`` and
inode. The next download into the same root keeps a file whose stat is still exactly
that (a ``stat``, no read) and replaces anything else with a fresh verified copy:
editing a file moves its mtime and ctime, replacing it changes the inode, and ctime
cannot be set back by the user (``touch -d`` moves it to now). The one change this
misses is a same-size write landing within the filesystem's timestamp granularity
(a few ms on ext4) of our own write, during the download; :func:`verify_root` re-reads
everything and catches it.

The record lives in the cache directory, ``roots/<md5 of the root's real path>.json``,
not under the root: the root holds the artifact's files and nothing else, so code that
lists it sees only them. A lost record only costs the next download a full copy.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
from pathlib import Path
from typing import Any

from artisync._core import PlacedFile
from artisync.manifest import ManifestEntry

__all__ = ["MAX_RECORDS", "RootRecord"]

_FORMAT = 1

MAX_RECORDS = 1000
"""Records kept per cache; the least recently written go first. Each costs its root
one full copy on its next download, nothing more."""


class RootRecord:
    """The files downloads wrote under one root, and their stat when written."""

    def __init__(self, file: Path, root: str, files: dict[str, list[Any]]) -> None:
        self.file = file
        self.root = root
        # entry path -> [digest, size, mtime_ns, ctime_ns, inode]
        self._files = files
        self._changed = False

    @classmethod
    def load(cls, records_dir: Path, root: str) -> RootRecord:
        """The record of ``root`` (an existing directory); empty if there is none or it
        cannot be read: it is only an optimisation."""
        real = os.path.realpath(root)
        key = hashlib.md5(os.fsencode(real), usedforsecurity=False).hexdigest()
        file = records_dir / f"{key}.json"
        files: dict[str, list[Any]] = {}
        with contextlib.suppress(OSError, ValueError):
            data = json.loads(file.read_bytes())
            if data.get("format") == _FORMAT and data.get("root") == real:
                files = data["files"]
        return cls(file, real, files)

    def is_current(self, entry: ManifestEntry, target: str) -> bool:
        """Whether ``target`` is still the file we wrote for this entry's content."""
        known = self._files.get(entry.path)
        if known is None or known[0] != entry.digest:
            return False
        try:
            st = os.lstat(target)
        except OSError:
            return False
        return bool(
            st.st_size == known[1]
            and st.st_mtime_ns == known[2]
            and st.st_ctime_ns == known[3]
            and st.st_ino == known[4]
        )

    def note(self, entry: ManifestEntry, placed: PlacedFile) -> None:
        """Record that ``placed`` (a verified copy) now holds ``entry`` at its path."""
        self._files[entry.path] = [
            entry.digest,
            placed.size,
            placed.mtime_ns,
            placed.ctime_ns,
            placed.inode,
        ]
        self._changed = True

    def save(self) -> None:
        """Write the record if it changed (atomically: a reader sees old or new)."""
        if not self._changed:
            return
        self.file.parent.mkdir(parents=True, exist_ok=True)
        new = not self.file.exists()
        data = {"format": _FORMAT, "root": self.root, "files": self._files}
        tmp = self.file.with_name(f".{self.file.name}.{os.getpid()}.{secrets.token_hex(4)}")
        try:
            tmp.write_text(json.dumps(data, separators=(",", ":")))
            os.replace(tmp, self.file)
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
        self._changed = False
        if new:
            _prune(self.file.parent, MAX_RECORDS)


def _prune(directory: Path, keep: int) -> None:
    """Remove all but the ``keep`` most recently written records in ``directory``.

    Downloads from a local store never trim the cache (they put no blobs in it), so
    without this their records would pile up forever.
    """
    records: list[tuple[int, str]] = []
    with os.scandir(directory) as entries:
        for entry in entries:
            if entry.name.endswith(".json"):
                with contextlib.suppress(FileNotFoundError):
                    records.append((entry.stat().st_mtime_ns, entry.path))
    records.sort(reverse=True)
    for _, path in records[keep:]:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
