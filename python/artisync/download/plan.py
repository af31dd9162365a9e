"""Which entries a download takes, where each one's bytes come from, and where they go.

An entry with no ``ref`` is a blob in the store, named by its MD5. A ``file://``
reference is a file outside the store whose MD5 was recorded when it was logged.
Everything else (``s3://``, ``gs://``, ``http(s)://``, references logged with
``checksum=False``) is refused before anything is written, with every such entry named.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from artisync.download.errors import UnsupportedEntryError
from artisync.errors import InvalidInputError
from artisync.manifest import Manifest, ManifestEntry, md5_b64_to_hex
from artisync.names import normalize_entry_path

__all__ = [
    "Task",
    "check_supported",
    "local_ref_path",
    "make_parents",
    "make_task",
    "select_entries",
]

_REMOTE = {"s3": "S3", "gs": "GCS", "http": "HTTP", "https": "HTTP"}


@dataclass(slots=True)
class Task:
    """One entry to write under the root."""

    entry: ManifestEntry
    target: str  # absolute path of the file to write
    md5_hex: str  # the MD5 its bytes must have
    ref_file: str | None  # the referenced file for a file:// entry; None for a blob


def select_entries(manifest: Manifest, path_prefix: str | None) -> list[ManifestEntry]:
    """The entries whose path starts with ``path_prefix`` (all when None), by path.

    A plain string prefix, as W&B's ``download(path_prefix=)``: ``"images/cat"``
    selects ``images/cat.png`` and ``images/cats/1.png``.
    """
    entries = manifest.entries
    prefix = path_prefix or ""
    return [entries[p] for p in sorted(entries) if p.startswith(prefix)]


def local_ref_path(entry: ManifestEntry) -> str | None:
    """The local path a ``file://`` reference points to; None for a blob entry.

    Raises :class:`InvalidInputError` for any other reference (see :func:`check_supported`).
    """
    if entry.ref is None:
        return None
    reason = _unsupported(entry)
    if reason is not None:
        raise InvalidInputError(f"entry {entry.path!r}: {reason}")
    return unquote(urlsplit(entry.ref).path)


def check_supported(entries: Iterable[ManifestEntry]) -> None:
    """Raise :class:`UnsupportedEntryError` naming every entry that cannot be downloaded."""
    bad: list[tuple[str, str]] = []
    for entry in entries:
        if entry.ref is not None and (reason := _unsupported(entry)) is not None:
            bad.append((entry.path, reason))
    if bad:
        raise UnsupportedEntryError([p for p, _ in bad], [r for _, r in bad])


def _unsupported(entry: ManifestEntry) -> str | None:
    """Why the reference ``entry`` cannot be downloaded, or None if it can."""
    ref = entry.ref or ""
    parts = urlsplit(ref)
    scheme = parts.scheme.lower()
    if scheme in _REMOTE:
        return (
            f"{_REMOTE[scheme]} references ({ref}) are not supported yet; they come with "
            "remote stores"
        )
    if scheme != "file":
        return f"{ref!r} is not a reference artisync can download (file:// only for now)"
    if parts.netloc not in ("", "localhost"):
        return f"{ref!r} names host {parts.netloc!r}; only local file:// paths can be read"
    try:
        md5_b64_to_hex(entry.digest)
    except InvalidInputError:
        return (
            f"the reference {ref} was logged with checksum=False, so there is no digest "
            "to check a download against; read the file there directly"
        )
    return None


def make_task(root: str, entry: ManifestEntry) -> Task:
    """The task of writing ``entry`` under ``root`` (an absolute path).

    The entry path is checked to stay inside ``root`` (the manifest may not come from
    ``Manifest.from_json``, which checks it), and its digest decoded to hex.
    """
    path = entry.path
    if normalize_entry_path(path) != path:
        raise InvalidInputError(
            f"entry path {path!r} is not in canonical form; it would be written as "
            f"{normalize_entry_path(path)!r}"
        )
    return Task(entry, f"{root}/{path}", md5_b64_to_hex(entry.digest), local_ref_path(entry))


def make_parents(tasks: Iterable[Task]) -> None:
    """Create the directories the tasks write into, once each.

    A file in the way (an entry ``a`` of another version where this one has ``a/b``)
    raises the :class:`OSError` that names it.
    """
    made: set[str] = set()
    for task in tasks:
        parent = os.path.dirname(task.target)
        if parent not in made:
            os.makedirs(parent, exist_ok=True)
            made.add(parent)
