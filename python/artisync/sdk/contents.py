"""What a draft artifact holds, and the rules for adding and removing entries.

The entries are the submission's: files (snapshots and immutable files) keyed by their
path in the artifact, and the directories and references the daemon will expand. The
rules are W&B's path rules (DESIGN.md): ``add_file("checkpoints/model.h5")`` stores
``model.h5``, ``add_dir("images")`` stores the directory's files at the root and
``add_dir("images", name="images")`` under ``images/``. A path may be added once unless
``overwrite=True``; every path goes through :func:`artisync.names.normalize_entry_path`.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Final

from artisync.disk_full import explaining_disk_full
from artisync.errors import ArtisyncError, InvalidInputError
from artisync.manifest import ManifestEntry
from artisync.names import normalize_entry_path
from artisync.references.uri import REMOTE_SCHEMES, parse_remote
from artisync.sdk.current import active_config
from artisync.sdk.manifest_view import PendingEntry, pending_entries, reference_name
from artisync.sdk.snapshot import (
    Staging,
    check_policy,
    immutable_dir,
    immutable_file,
    local_dir,
    local_file,
)
from artisync.sdk.validation import check_reference_uri
from artisync.spool import DirEntry, Entry, FileEntry, ReferenceEntry, Spool, StagedEntry

__all__ = ["BaseEntry", "Contents", "EntryNotFoundError"]

# `new_file` modes: write-only and new, as W&B allows; "w" replaces an existing entry.
NEW_FILE_MODES: Final = frozenset({"x", "xt", "xb", "w", "wt", "wb"})


class EntryNotFoundError(ArtisyncError, KeyError):
    """No entry of the artifact has the path (or directory prefix) asked for."""

    def __str__(self) -> str:
        # KeyError shows its argument's repr; this message is a sentence.
        return str(self.args[0]) if self.args else ""


@dataclass(frozen=True, slots=True)
class BaseEntry:
    """An entry of the committed version a draft was made from (``new_draft``): its
    content is stored already, and the daemon takes it from that version's manifest."""

    path: str
    entry: ManifestEntry

    def pending(self) -> PendingEntry:
        """The entry as ``artifact.manifest`` shows it."""
        e = self.entry
        return PendingEntry(e.path, e.digest, e.size, e.ref, None, e.extra)


_FileLike = StagedEntry | FileEntry | BaseEntry


class Contents:
    """The entries of one draft artifact (``name``, submission ``sub_id``)."""

    def __init__(self, name: str, sub_id: str) -> None:
        self.name = name
        self.sub_id = sub_id
        self.files: dict[str, _FileLike] = {}
        # The version a draft was made from (new_draft), and every path it had.
        self.base_version_id: str | None = None
        self._base_paths: frozenset[str] = frozenset()
        # How many of `files` each directory holds (at any depth): "a/b/c" counts for
        # "a" and "a/b", so a file named like a directory is found with one lookup.
        self._dirs: dict[str, int] = {}
        # Entries the daemon expands into files: immutable directories, references.
        self.expanded: list[DirEntry | ReferenceEntry] = []
        self.staging: Staging | None = None

    def entries(self) -> list[Entry]:
        """The submission's own entries (not those kept from a base version)."""
        own = [e for e in self.files.values() if not isinstance(e, BaseEntry)]
        return [*own, *self.expanded]

    def start_from(self, version_id: str, entries: Mapping[str, ManifestEntry]) -> None:
        """Hold the entries of the committed version ``version_id`` (``new_draft``)."""
        self.base_version_id = version_id
        self._base_paths = frozenset(entries)
        for path, entry in entries.items():
            self._put(BaseEntry(path, entry))

    def base_removed(self) -> list[str]:
        """The base version's paths the draft removed or replaced, sorted."""
        kept = {p for p, e in self.files.items() if isinstance(e, BaseEntry)}
        return sorted(self._base_paths - kept)

    @property
    def spool_root(self) -> Path | None:
        """The spool the snapshots are in; ``None`` before the first one."""
        return None if self.staging is None else self.staging.spool.root

    def stage(self) -> Staging:
        """The staging area, in the spool of the current run (or of the default home)."""
        if self.staging is None:
            # The spool to snapshot into is that of the run current when the first
            # snapshot is taken.
            self.staging = Staging(Spool(active_config().spool), self.sub_id)
        return self.staging

    def view(self) -> dict[str, PendingEntry]:
        """Every entry as ``artifact.manifest`` shows it before commit."""
        kept = {p: e.pending() for p, e in self.files.items() if isinstance(e, BaseEntry)}
        return {**kept, **pending_entries(self.entries(), self.spool_root)}

    def get(self, path: str) -> PendingEntry | None:
        """The entry at ``path``, listing immutable directories only if needed."""
        found = self.files.get(path)
        if isinstance(found, BaseEntry):
            return found.pending()
        if found is not None:
            return pending_entries([found], self.spool_root)[path]
        return self.view().get(path)

    def fully_hashed(self) -> bool:
        """Whether every entry's digest is known (snapshots and entries of the base
        version only, nothing to expand)."""
        return not self.expanded and all(
            isinstance(e, StagedEntry | BaseEntry) for e in self.files.values()
        )

    # -- adding ----------------------------------------------------------------------

    def add_file(
        self, local_path: str | os.PathLike[str], name: str | None, policy: str, overwrite: bool
    ) -> str:
        """Add one file; return its path in the artifact."""
        mode = check_policy(policy)
        src = local_file(local_path)
        path = normalize_entry_path(src.name if name is None else name)
        self._check_free(path, overwrite)
        if mode == "mutable":
            self._put(self.stage().snapshot_file(src, path))
        else:
            self._put(immutable_file(src, path))
        return path

    def add_dir(
        self, local_path: str | os.PathLike[str], name: str | None, policy: str
    ) -> dict[str, str]:
        """Add a directory's files under ``name`` (the root when ``None``).

        Returns, for each file snapshotted now, its local path (``local_path`` joined
        with its path inside the directory, as W&B records it) and its entry path;
        an immutable directory is listed later, by the daemon, so it returns nothing.
        """
        mode = check_policy(policy)
        src = local_dir(local_path)
        prefix = "" if name is None else normalize_entry_path(name)
        if mode == "immutable":
            self._check_immutable_dir(src, prefix)
            self.expanded.append(immutable_dir(src, prefix))
            return {}
        stage = self.stage()
        entries = stage.snapshot_dir(src, prefix)
        if not self.files and not self.expanded:
            # Nothing to clash with (one directory's files are distinct paths, none a
            # directory of another): recorded in one pass, not checked one at a time.
            self._put_new(entries)
        else:
            self._put_checked(entries, src, stage)
        given = os.fspath(local_path)
        base = given if given.endswith("/") or not given else given + "/"
        skip = len(prefix) + 1 if prefix else 0
        # os.path.join(given, relative path) for each, as W&B records it.
        return {base + entry.path[skip:]: entry.path for entry in entries}

    def _put_checked(self, entries: list[StagedEntry], src: Path, stage: Staging) -> None:
        """Record a directory's snapshots one at a time, each checked against what the
        draft holds already; on a clash, none of them (their copies removed)."""
        try:
            for entry in entries:
                old = self.files.get(entry.path)
                # As W&B's add_dir: the same content again is fine, other content is not.
                same = (isinstance(old, StagedEntry) and old.digest == entry.digest) or (
                    isinstance(old, BaseEntry) and old.entry.digest == entry.digest
                )
                if old is not None and not same:
                    raise InvalidInputError(
                        f"artifact {self.name!r} already has an entry {entry.path!r} with other "
                        f"content than the file in {str(src)!r}; remove() it first to replace it"
                    )
                self._check_not_in_immutable_dir(entry.path)
                self._check_file_or_dir(entry.path)
        except InvalidInputError:
            stage.discard_tree(entries)
            raise
        for entry in entries:
            self._put(entry)

    def _put_new(self, entries: list[StagedEntry]) -> None:
        """Record entries into a draft that holds no file yet: `_put` for each, with the
        directory counts made per directory instead of per file."""
        files = self.files
        per_parent: dict[str, int] = {}
        for entry in entries:
            path = entry.path
            files[path] = entry
            parent = path.rpartition("/")[0]
            per_parent[parent] = per_parent.get(parent, 0) + 1
        dirs = self._dirs
        for parent, count in per_parent.items():
            if parent:
                for directory in (*_directories(parent), parent):
                    dirs[directory] = dirs.get(directory, 0) + count

    def new_file(
        self, name: str, mode: str, encoding: str | None
    ) -> contextlib.AbstractContextManager[IO[Any]]:
        """A file to write in the staging area; when it is closed it becomes the entry.

        Name and mode are checked now, at the call, not when the ``with`` starts.
        """
        if mode not in NEW_FILE_MODES:
            raise InvalidInputError(
                f"Invalid mode {mode!r} for new_file: use 'x' or 'w' (text), 'xb' or 'wb' (bytes)"
            )
        path = normalize_entry_path(name)
        replace = mode.startswith("w")
        self._check_free(path, replace)
        return self._writing(path, replace, "b" in mode, encoding)

    @contextlib.contextmanager
    def _writing(
        self, path: str, replace: bool, binary: bool, encoding: str | None
    ) -> Iterator[IO[Any]]:
        stage = self.stage()
        staged = stage.new_file_path(path)
        entry: StagedEntry | None = None
        try:
            with (
                explaining_disk_full(f"cannot write {path!r} into the spool", staged),
                open(staged, "xb" if binary else "x", encoding=None if binary else encoding) as f,
            ):
                yield f
            # Checked again: the block may have added the same path some other way.
            self._check_free(path, replace)
            entry = stage.adopt(staged, path)
        finally:
            if entry is None:
                staged.unlink(missing_ok=True)
        self._put(entry)

    def add_reference(
        self, uri: str, name: str | None, checksum: bool, max_objects: int | None
    ) -> ReferenceEntry:
        """Record a reference for the daemon to expand; return it."""
        check_reference_uri(uri)
        if uri.split(":", 1)[0].lower() in REMOTE_SCHEMES:
            parse_remote(uri)  # a bad version (?versionId=, #generation) fails here, not later
        if not isinstance(checksum, bool):
            raise InvalidInputError(f"Invalid checksum {checksum!r}: must be True or False")
        if max_objects is not None and (
            isinstance(max_objects, bool) or not isinstance(max_objects, int) or max_objects < 1
        ):
            raise InvalidInputError(
                f"Invalid max_objects {max_objects!r}: must be a positive int, or None"
            )
        path = "" if name is None else normalize_entry_path(name)
        entry = ReferenceEntry(path=path, ref=uri, checksum=checksum, max_objects=max_objects)
        shown = reference_name(entry)
        taken = shown in self.files or any(
            isinstance(e, ReferenceEntry) and reference_name(e) == shown for e in self.expanded
        )
        if taken:
            raise InvalidInputError(
                f"artifact {self.name!r} already has an entry {shown!r}; pass another name= "
                "for the reference, or remove() the existing entry first"
            )
        self.expanded.append(entry)
        return entry

    # -- removing --------------------------------------------------------------------

    def remove(self, path: str) -> None:
        """Remove the entry ``path`` or every entry under the directory ``path``."""
        under = path + "/"
        removed = [self._pop(k) for k in list(self.files) if k == path or k.startswith(under)]
        kept = [
            e
            for e in self.expanded
            if not (e.path == path or e.path.startswith(under))
            and not (isinstance(e, ReferenceEntry) and reference_name(e) == path)
        ]
        matched = bool(removed) or len(kept) != len(self.expanded)
        self.expanded = kept
        if self.staging is not None:
            self.staging.discard([e for e in removed if isinstance(e, StagedEntry)])
        if not matched:
            self._check_not_in_immutable_dir(path, action="remove")
            raise EntryNotFoundError(
                f"No such file or directory in artifact {self.name!r}: {path!r}"
            )

    # -- what may go where -----------------------------------------------------------

    def _check_free(self, path: str, overwrite: bool) -> None:
        """Raise unless ``path`` can be added (or, with ``overwrite``, replaced)."""
        old = self.files.get(path)
        if old is not None and not overwrite:
            if isinstance(old, FileEntry):
                source = old.local_path
            elif isinstance(old, BaseEntry):
                source = "the version it was drafted from"
            else:
                source = "a snapshot"
            raise InvalidInputError(
                f"artifact {self.name!r} already has an entry {path!r} (from {source}); "
                "pass overwrite=True to replace it"
            )
        for e in self.expanded:
            if isinstance(e, ReferenceEntry) and reference_name(e) == path:
                raise InvalidInputError(
                    f"artifact {self.name!r} already has a reference named {path!r}; "
                    "remove() it first to replace it"
                )
        self._check_not_in_immutable_dir(path)
        self._check_file_or_dir(path)

    def _check_file_or_dir(self, path: str) -> None:
        """A path cannot be a file and a directory at once (``a`` and ``a/b``): no
        download could hold both. Immutable directories and references are expanded by
        the daemon, which refuses such a version naming both paths."""
        if path in self._dirs:
            inside = next(p for p in self.files if p.startswith(path + "/"))
            raise InvalidInputError(
                f"cannot add {path!r} to artifact {self.name!r}: it already has {inside!r}, "
                f"so {path!r} is a directory; a path cannot be both a file and a directory"
            )
        for directory in _directories(path):
            if directory in self.files:
                raise InvalidInputError(
                    f"cannot add {path!r} to artifact {self.name!r}: it already has a file "
                    f"{directory!r}, which would have to be a directory; a path cannot be "
                    "both a file and a directory"
                )

    def _check_not_in_immutable_dir(self, path: str, action: str = "add") -> None:
        """A path inside an immutable directory cannot be added or removed on its own:
        the daemon lists the directory as it is, so it would come out twice or back."""
        for e in self.expanded:
            if not isinstance(e, DirEntry) or not (e.path == "" or path.startswith(e.path + "/")):
                continue
            rel = path[len(e.path) :].lstrip("/")
            if os.path.lexists(os.path.join(e.local_path, rel)):
                raise InvalidInputError(
                    f"cannot {action} {path!r} in artifact {self.name!r}: it is part of the "
                    f"directory {e.local_path!r} added with policy='immutable'. "
                    "remove() the whole directory, or add it with policy='mutable'"
                )

    def _check_immutable_dir(self, src: Path, prefix: str) -> None:
        for e in self.expanded:
            if isinstance(e, DirEntry) and e.path == prefix and e.local_path == str(src):
                raise InvalidInputError(
                    f"artifact {self.name!r} already has the directory {str(src)!r} "
                    f"under {prefix or 'its root'!r}"
                )
        # Cheap (one lexists per file already added), unlike listing the directory.
        for path in self.files:
            if prefix == "" or path.startswith(prefix + "/"):
                rel = path[len(prefix) :].lstrip("/")
                if os.path.lexists(src / rel):
                    raise InvalidInputError(
                        f"artifact {self.name!r} already has an entry {path!r}, which the "
                        f"directory {str(src)!r} would add again; remove() it first"
                    )

    def _pop(self, path: str) -> _FileLike:
        for directory in _directories(path):
            self._dirs[directory] -= 1
            if not self._dirs[directory]:
                del self._dirs[directory]
        return self.files.pop(path)

    def _put(self, entry: _FileLike) -> None:
        old = self._pop(entry.path) if entry.path in self.files else None
        self.files[entry.path] = entry
        for directory in _directories(entry.path):
            self._dirs[directory] = self._dirs.get(directory, 0) + 1
        same_file = (
            isinstance(entry, StagedEntry)
            and isinstance(old, StagedEntry)
            and (entry.staged == old.staged)
        )
        if isinstance(old, StagedEntry) and not same_file and self.staging is not None:
            self.staging.discard([old])


def _directories(path: str) -> Iterator[str]:
    """The directories ``path`` is in: ``a/b/c`` is in ``a`` and ``a/b``."""
    end = path.find("/")
    while end != -1:
        yield path[:end]
        end = path.find("/", end + 1)
