"""From ``add_file``/``add_dir``/``new_file`` calls to submission entries, per policy.

- ``mutable`` (the default) snapshots the content now: the Rust core copies it into the
  artifact's staging area in the spool and hashes it in the same read pass, so the
  training script may overwrite the file the moment the call returns.
- ``immutable`` records where the content is and its stat, nothing more: the daemon
  reads it later and rejects the version if it changed. This is what makes adding a
  large directory with ``policy="immutable"`` cost one ``stat`` instead of a walk.

Every check that can fail on the user's input (a missing path, a file where a
directory was expected, an unknown policy) happens here, at call time, and names the
path.
"""

from __future__ import annotations

import itertools
import os
import posixpath
import shutil
import weakref
from pathlib import Path
from typing import Final, Literal

from artisync import _core
from artisync.disk_full import explaining_disk_full
from artisync.errors import InvalidInputError
from artisync.spool import DirEntry, FileEntry, Spool, StagedEntry

__all__ = [
    "POLICIES",
    "Policy",
    "Staging",
    "check_policy",
    "immutable_dir",
    "immutable_file",
    "join_entry_path",
    "local_dir",
    "local_file",
]

Policy = Literal["mutable", "immutable"]
POLICIES: Final = ("mutable", "immutable")

# Snapshots are not fsynced one by one: on ext4 an fsync per file costs many times the
# copy of a small file. The submission itself is fsynced before it is
# published; a snapshot is only at risk from a power loss, not a process crash (the
# client starts their writeback once the daemon has the submission: see
# DaemonClient.hand_over).
_FSYNC_SNAPSHOTS: Final = False
# Staged file names keep the tail of the source's name, for whoever looks in the spool.
_NAME_TAIL: Final = 64


def check_policy(policy: object) -> Policy:
    """Return ``policy`` if it is ``"mutable"`` or ``"immutable"``, else raise."""
    if policy == "mutable":
        return "mutable"
    if policy == "immutable":
        return "immutable"
    raise InvalidInputError(
        f"Invalid policy {policy!r}: use 'mutable' (snapshot the content now; the default) "
        "or 'immutable' (read it in place later; you promise not to change it)"
    )


def join_entry_path(prefix: str, rel: str) -> str:
    """``rel`` under the artifact directory ``prefix`` (``""`` is the root)."""
    return posixpath.join(prefix, rel) if prefix else rel


def local_file(local_path: str | os.PathLike[str]) -> Path:
    """The absolute path of an existing regular file (symlinks followed), else raise."""
    path = Path(os.path.abspath(os.fspath(local_path)))
    if path.is_file():
        return path
    if path.is_dir():
        raise InvalidInputError(
            f"Path is a directory, not a file: {os.fspath(local_path)!r}; use add_dir() "
            "to add a directory"
        )
    if path.exists():
        raise InvalidInputError(
            f"Path is not a regular file: {os.fspath(local_path)!r} (a socket, FIFO or "
            "device has no content to version)"
        )
    raise InvalidInputError(f"No such file: {os.fspath(local_path)!r}")


def local_dir(local_path: str | os.PathLike[str]) -> Path:
    """The absolute path of an existing directory (symlinks followed), else raise."""
    path = Path(os.path.abspath(os.fspath(local_path)))
    if path.is_dir():
        return path
    if path.exists():
        raise InvalidInputError(
            f"Path is not a directory: {os.fspath(local_path)!r}; use add_file() to add a file"
        )
    raise InvalidInputError(f"No such directory: {os.fspath(local_path)!r}")


def immutable_file(src: Path, path: str) -> FileEntry:
    """An entry recording ``src``'s stat; the daemon hashes it and checks the stat."""
    st = src.stat()
    return FileEntry(
        path=path, local_path=str(src), size=st.st_size, mtime_ns=st.st_mtime_ns, inode=st.st_ino
    )


def immutable_dir(src: Path, prefix: str) -> DirEntry:
    """An entry for every file under ``src``: the daemon walks and hashes it, not us."""
    return DirEntry(path=prefix, local_path=str(src))


def _remove_draft(root: str, owner_pid: int) -> None:
    # A forked child (a DataLoader worker) holds copies of the parent's drafts: when
    # it collects them, the parent's snapshots must stay.
    if os.getpid() == owner_pid:
        shutil.rmtree(root, ignore_errors=True)


class Staging:
    """One artifact's staging area, ``spool/staging/<submission id>/``.

    The area is created on the first snapshot. Until the submission is handed to the
    daemon it belongs to the artifact: it is removed when the artifact is garbage
    collected or the interpreter exits, so drafts that are never logged leave no copies
    behind. :meth:`release` gives it to the daemon.
    """

    def __init__(self, spool: Spool, sub_id: str) -> None:
        self.spool = spool
        self.sub_id = sub_id
        self.root = spool.root / "staging" / sub_id
        self._names = itertools.count()
        self._finalizer: weakref.finalize[[str, int], Staging] | None = None

    def _new_path(self, source_name: str) -> Path:
        """A fresh name in the area; counted, so two sources with one name never clash."""
        if self._finalizer is None:
            self.spool.staging_dir(self.sub_id)
            self._finalizer = weakref.finalize(self, _remove_draft, str(self.root), os.getpid())
        return self.root / f"{next(self._names):06d}-{source_name[-_NAME_TAIL:]}"

    def relative(self, staged: Path) -> str:
        """``staged`` relative to the spool root, as :class:`StagedEntry` records it."""
        return staged.relative_to(self.spool.root).as_posix()

    def snapshot_file(self, src: Path, path: str) -> StagedEntry:
        """Copy ``src`` into the area and hash it in one pass.

        Raises :class:`~artisync.errors.DiskFullError` if the spool's filesystem fills
        up; the core has removed the partial copy by then.
        """
        with explaining_disk_full(f"cannot snapshot {src} into the spool"):
            dst = self._new_path(src.name)
            d = _core.copy_and_hash(src, dst, fsync=_FSYNC_SNAPSHOTS)
        return StagedEntry(path=path, staged=self.relative(dst), digest=d.digest, size=d.size)

    def snapshot_dir(self, src: Path, prefix: str) -> list[StagedEntry]:
        """Copy every file under ``src`` into the area, hashing each, in path order.

        On any failure, a full disk included (:class:`~artisync.errors.DiskFullError`),
        nothing of the copy is left.
        """
        with explaining_disk_full(f"cannot snapshot the directory {src} into the spool"):
            dst = self._new_path(f"{src.name or 'root'}.d")
            try:
                digests = _core.copy_tree_and_hash(src, dst, fsync=_FSYNC_SNAPSHOTS)
            except BaseException:
                # The core leaves what it copied before failing; nothing refers to it.
                shutil.rmtree(dst, ignore_errors=True)
                raise
        base = self.relative(dst)
        # Positional, each of the core's fields read once: this runs once per file.
        return [
            StagedEntry(join_entry_path(prefix, rel), f"{base}/{rel}", d.digest, d.size)
            for d in digests
            for rel in (d.path,)
        ]

    def new_file_path(self, path: str) -> Path:
        """Where ``new_file`` writes the entry ``path``: directly in the area, no copy."""
        return self._new_path(posixpath.basename(path))

    def adopt(self, staged: Path, path: str) -> StagedEntry:
        """Hash a file written into the area (by ``new_file``) and make it an entry."""
        (d,) = _core.hash_files([staged])
        return StagedEntry(path=path, staged=self.relative(staged), digest=d.digest, size=d.size)

    def discard(self, entries: list[StagedEntry]) -> None:
        """Delete the snapshots of entries that were replaced or removed."""
        parents: set[Path] = set()
        for entry in entries:
            staged = self.spool.root / entry.staged
            staged.unlink(missing_ok=True)
            parents.add(staged.parent)
        # Directories of a tree snapshot left empty go too, deepest first.
        for parent in sorted(parents, key=lambda p: len(p.parts), reverse=True):
            while parent != self.root and parent.is_relative_to(self.root):
                try:
                    parent.rmdir()
                except OSError:  # not empty (or already gone): stop climbing
                    break
                parent = parent.parent

    def discard_tree(self, entries: list[StagedEntry]) -> None:
        """Delete a whole :meth:`snapshot_dir` copy (its entries share one directory)."""
        for top in {Path(e.staged).parts[:3] for e in entries}:
            shutil.rmtree(self.spool.root.joinpath(*top), ignore_errors=True)

    def release(self) -> None:
        """The daemon owns the area from now on: never delete it from this process."""
        if self._finalizer is not None:
            self._finalizer.detach()
