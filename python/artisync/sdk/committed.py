"""What a committed artifact adds to a draft: entries that download themselves, the
default download root, and the calls into the download engine (``artisync.download``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from artisync.config import Config
from artisync.download import download_manifest, open_cache, read_entry_bytes, verify_root
from artisync.errors import ArtisyncError, InvalidInputError
from artisync.manifest import Manifest, ManifestEntry
from artisync.registry.model import Version
from artisync.store import Store, shared_store

__all__ = [
    "CommittedEntry",
    "download",
    "download_root",
    "plain_entry",
    "read_entry",
    "reading_store",
    "remove_strays",
    "verify",
]

ARTIFACTS_DIR = "artifacts"
"""Where downloads go by default, relative to the working directory (as W&B)."""


class CommittedEntry:
    """An entry of a committed version: a :class:`ManifestEntry` that can download."""

    __slots__ = ("_committed", "_entry")

    def __init__(
        self, entry: ManifestEntry, committed: Callable[[str], tuple[Version, Config]]
    ) -> None:
        """``committed(action)`` is the artifact's version and settings, or an error
        saying ``action`` needs a committed version."""
        self._entry = entry
        self._committed = committed

    def __repr__(self) -> str:
        return repr(self._entry)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, CommittedEntry):
            return self._entry == other._entry
        if isinstance(other, ManifestEntry):
            return self._entry == other
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._entry)

    @property
    def path(self) -> str:
        return self._entry.path

    @property
    def digest(self) -> str:
        return self._entry.digest

    @property
    def size(self) -> int | None:
        return self._entry.size

    @property
    def ref(self) -> str | None:
        return self._entry.ref

    @property
    def birth_artifact_id(self) -> str | None:
        return self._entry.birth_artifact_id

    @property
    def extra(self) -> Mapping[str, Any]:
        return self._entry.extra

    @property
    def manifest_entry(self) -> ManifestEntry:
        """The plain manifest entry."""
        return self._entry

    def ref_target(self) -> str:
        """The URI a reference entry points to."""
        if self._entry.ref is None:
            raise ArtisyncError(f"entry {self.path!r} is not a reference: it has no ref_target")
        return self._entry.ref

    def download(self, root: str | os.PathLike[str] | None = None) -> str:
        """Download this one entry under ``root`` (default: the artifact's download
        root) and return the file's path."""
        version, settings = self._committed("download")
        target = download_root(version, root)
        download(settings, {self.path: self}, target, None)
        return str(target / self.path)


def download_root(version: Version, root: str | os.PathLike[str] | None) -> Path:
    """``root``, or W&B's default ``./artifacts/<name>:<vN>``."""
    if root is not None:
        return Path(root)
    return Path(ARTIFACTS_DIR) / f"{version.name}:{version.version}"


def plain_entry(entry: Any) -> ManifestEntry:
    """The :class:`ManifestEntry` of a committed entry (or the entry itself)."""
    return entry.manifest_entry if isinstance(entry, CommittedEntry) else entry


def _manifest(entries: Mapping[str, Any]) -> Manifest:
    plain = {
        path: e.manifest_entry if isinstance(e, CommittedEntry) else e
        for path, e in entries.items()
    }
    return Manifest(plain)


def reading_store(settings: Config) -> Store:
    """The store a committed version's content is read from: ``settings.store`` (the
    store the version records), opened once per process. A bucket the registry server
    serves with presigned transfers is read through its grants, with the caller's key:
    no bucket credentials, and only what the caller may read."""
    ca_file = None if settings.registry_ca_file is None else str(settings.registry_ca_file)
    return shared_store(
        settings.store, settings.home, server=settings.registry_server, ca_file=ca_file
    )


def download(
    settings: Config, entries: Mapping[str, Any], root: Path, path_prefix: str | None
) -> None:
    """Fetch ``entries`` (all of them, or those under ``path_prefix``) into ``root``."""
    download_manifest(
        reading_store(settings),
        _manifest(entries),
        root,
        path_prefix=path_prefix,
        cache=open_cache(settings),
        home=settings.home,
    )


def remove_strays(entries: Mapping[str, Any], root: Path) -> None:
    """Delete every file under ``root`` that is not one of ``entries`` (W&B's
    ``checkout``: the directory becomes the version). Directories stay, as in W&B; a
    symbolic link is removed as a file, never followed."""
    if os.path.lexists(root) and not root.is_dir():
        raise InvalidInputError(
            f"cannot check out into {str(root)!r}: it is a file, not a directory; pass "
            "checkout(root=...) a directory (it is created if missing)"
        )
    for dirpath, _, files in os.walk(root):
        for name in files:
            path = Path(dirpath) / name
            if path.relative_to(root).as_posix() not in entries:
                path.unlink()


def verify(entries: Mapping[str, Any], root: Path) -> int:
    """Re-hash ``root`` against ``entries``; raises listing every difference. References
    whose files cannot be checked by an MD5 (S3 and HTTP ETags) are skipped, as W&B
    skips references: returns how many."""
    return verify_root(_manifest(entries), root, skip_unverifiable=True)


def read_entry(settings: Config, entry: CommittedEntry | ManifestEntry) -> bytes:
    """The content of one entry (small ones: tables), checked against its digest."""
    plain = entry.manifest_entry if isinstance(entry, CommittedEntry) else entry
    return read_entry_bytes(
        reading_store(settings), plain, cache=open_cache(settings), home=settings.home
    )
