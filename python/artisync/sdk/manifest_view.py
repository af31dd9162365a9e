"""What ``artifact.manifest`` shows: the entries added so far, then the committed ones.

Before the version is committed, the entries are what the SDK knows: a snapshot's
digest and size, an immutable file's size (its digest comes from the daemon), each file
of an immutable directory (listed when asked, never at ``add_dir`` time), and each
reference as one entry under its name. After ``wait()`` they are the committed
manifest, read from the store by :func:`read_committed_manifest`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any
from urllib.parse import unquote, urlsplit

from artisync import _core
from artisync.download.downloader import run_coroutine
from artisync.errors import ArtisyncError, ManifestError
from artisync.manifest import Manifest, ManifestEntry, artifact_digest
from artisync.references.uri import default_name, unchecked_digest
from artisync.sdk.committed import CommittedEntry
from artisync.sdk.snapshot import join_entry_path
from artisync.spool import DirEntry, Entry, FileEntry, ReferenceEntry, StagedEntry
from artisync.store import ObjectNotFoundError, Store, shared_store

__all__ = [
    "ArtifactManifest",
    "PendingEntry",
    "pending_entries",
    "read_committed_manifest",
    "reference_name",
]

_NO_EXTRA: Mapping[str, Any] = MappingProxyType({})


def _no_extra() -> Mapping[str, Any]:
    return _NO_EXTRA


@dataclass(frozen=True, slots=True)
class PendingEntry:
    """An entry of an artifact that is not committed yet.

    The attributes are those of a committed :class:`~artisync.manifest.ManifestEntry`;
    ``digest`` is ``None`` until the daemon has hashed the content (immutable files
    and directories, references with ``checksum=True``), and ``size`` is ``None`` when
    not known yet (references). ``local_path`` is where the content is read from: the
    snapshot for a mutable entry, the original for an immutable one.
    """

    path: str
    digest: str | None
    size: int | None
    ref: str | None = None
    local_path: str | None = None
    extra: Mapping[str, Any] = field(default_factory=_no_extra)


AnyEntry = ManifestEntry | PendingEntry | CommittedEntry


class ArtifactManifest:
    """An artifact's entries keyed by path, as ``artifact.manifest`` returns them."""

    def __init__(self, entries: Mapping[str, AnyEntry]) -> None:
        self._entries = entries

    @property
    def entries(self) -> Mapping[str, AnyEntry]:
        """Entries keyed by their path inside the artifact."""
        return self._entries

    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __contains__(self, path: object) -> bool:
        return path in self._entries

    def digest(self) -> str | None:
        """The artifact digest of these entries, or ``None`` while some are unhashed."""
        known: list[ManifestEntry] = []
        for entry in self._entries.values():
            if entry.digest is None:
                return None
            known.append(ManifestEntry(entry.path, entry.digest, entry.size))
        return artifact_digest(known)

    def __repr__(self) -> str:
        return f"ArtifactManifest({len(self._entries)} entries)"


def reference_name(entry: ReferenceEntry) -> str:
    """The name a reference shows under before the daemon expands it: its ``name``,
    else the name the daemon gives the object it names (a prefix's objects are then
    named relative to it)."""
    return entry.path or default_name(entry.ref)


def pending_entries(entries: Iterable[Entry], spool_root: Path | None) -> dict[str, PendingEntry]:
    """The view of not-yet-committed entries; immutable directories are listed now."""
    view: dict[str, PendingEntry] = {}
    for entry in entries:
        if isinstance(entry, StagedEntry):
            local = None if spool_root is None else str(spool_root / entry.staged)
            view[entry.path] = PendingEntry(entry.path, entry.digest, entry.size, None, local)
        elif isinstance(entry, FileEntry):
            view[entry.path] = PendingEntry(entry.path, None, entry.size, None, entry.local_path)
        elif isinstance(entry, DirEntry):
            root = Path(entry.local_path)
            for f in _core.walk(root):
                path = join_entry_path(entry.path, f.path)
                view[path] = PendingEntry(path, None, f.size, None, str(root / f.path))
        elif isinstance(entry, ReferenceEntry):
            name = reference_name(entry)
            digest = None if entry.checksum else unchecked_digest(entry.ref)
            view[name] = PendingEntry(name, digest, None, entry.ref)
        # A StagedListEntry exists only in the submission written for the daemon, never
        # among an artifact's own entries.
    return view


def read_committed_manifest(store: Store | str, manifest_key: str, home: Path) -> Manifest:
    """The committed manifest at ``manifest_key`` in the store (a URL: ``home`` places a
    relative store path and a remote store's state, as for the daemon, and the store is
    opened by :func:`~artisync.store.shared_store`, once per process).

    Raises:
        ArtisyncError: the manifest is missing, or the remote store cannot be read.
        ManifestError: the manifest is not valid ``artifact_manifest_v1`` JSON.
    """
    opened = shared_store(store, home) if isinstance(store, str) else store
    data = run_coroutine(_manifest_bytes(opened, manifest_key))
    return _parse(data, f"{_location(opened)}/{manifest_key}")


async def _manifest_bytes(store: Store, manifest_key: str) -> bytes:
    try:
        return await store.get_manifest(manifest_key)
    except ObjectNotFoundError:
        cleaned = (
            "the store moved or cleaned" if store.local_blobs else "the bucket or prefix cleaned"
        )
        raise ArtisyncError(
            f"the committed manifest {manifest_key!r} is missing from the store at "
            f"{_location(store)}: was {cleaned}?"
        ) from None


def _location(store: Store) -> str:
    """Where the store is, as its users name it: the directory of a store whose blobs
    are local files, else its URL."""
    if store.local_blobs:
        return unquote(urlsplit(store.url).path)
    return store.url.rstrip("/")


def _parse(data: bytes, where: str) -> Manifest:
    try:
        return Manifest.from_json(json.loads(data))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ManifestError(f"the committed manifest {where!r} is not JSON: {e}") from None
