"""Which entries a download takes, where each one's bytes come from, and where they go.

An entry with no ``ref`` is a blob in the store, named by its MD5. A ``file://``
reference is a file outside the store whose MD5 was recorded when it was logged. An
``s3://``, ``gs://`` or ``http(s)://`` reference is fetched from its server, in the
version it recorded (``remote`` tasks). References logged with ``checksum=False`` to a
file or a bucket recorded no version and no digest to check: they are refused before
anything is written, with every such entry named (an HTTP URL without ETag is fetched
unchecked, as W&B does: its digest is its URL either way).
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
    "check_downloadable",
    "check_supported",
    "expected_md5",
    "is_remote",
    "local_ref_path",
    "make_parents",
    "make_task",
    "select_entries",
]

_BUCKETS = {"s3": "S3", "gs": "GCS"}
_REMOTE = ("s3", "gs", "http", "https")


@dataclass(slots=True)
class Task:
    """One entry to write under the root."""

    entry: ManifestEntry
    target: str  # absolute path of the file to write
    md5_hex: str  # the MD5 its bytes must have; "" for a remote one not known before fetching
    ref_file: str | None  # the referenced file for a file:// entry; None for a blob
    remote: bool = False  # an s3://, gs:// or http(s):// reference, fetched from its server


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

    Raises :class:`InvalidInputError` for any other reference: those that cannot be
    downloaded (see :func:`check_downloadable`), and remote ones, which have no local
    path (downloads fetch them: ``Task.remote``).
    """
    if entry.ref is None:
        return None
    reason = _unsupported(entry)
    if reason is None and is_remote(entry):
        reason = f"{entry.ref} is fetched from its server by a download, not read in place"
    if reason is not None:
        raise InvalidInputError(f"entry {entry.path!r}: {reason}")
    return unquote(urlsplit(entry.ref).path)


def is_remote(entry: ManifestEntry) -> bool:
    """Whether ``entry`` is an ``s3://``, ``gs://`` or ``http(s)://`` reference."""
    return entry.ref is not None and urlsplit(entry.ref).scheme.lower() in _REMOTE


def expected_md5(entry: ManifestEntry) -> str:
    """The hex MD5 a remote reference's bytes must have, when its digest says it (GCS's
    ``md5Hash``); else ``""``: an S3 ETag is no MD5 for multipart or KMS-encrypted
    objects, and an HTTP ETag is opaque. Their server's ETag is checked instead."""
    if entry.ref is None or urlsplit(entry.ref).scheme.lower() != "gs":
        return ""
    try:
        return md5_b64_to_hex(entry.digest)
    except InvalidInputError:
        return ""  # a composite object: its ETag is its digest


def check_downloadable(entries: Iterable[ManifestEntry]) -> None:
    """Raise :class:`UnsupportedEntryError` naming every entry that cannot be downloaded."""
    _raise_bad((e, _unsupported(e)) for e in entries if e.ref is not None)


def check_supported(entries: Iterable[ManifestEntry]) -> None:
    """Raise :class:`UnsupportedEntryError` naming every entry whose file cannot be
    checked by its MD5: those that cannot be downloaded, and remote references whose
    digest is their server's ETag (S3, HTTP) rather than an MD5 of their bytes."""
    _raise_bad((e, unverifiable(e)) for e in entries if e.ref is not None)


def _raise_bad(found: Iterable[tuple[ManifestEntry, str | None]]) -> None:
    bad = [(entry.path, reason) for entry, reason in found if reason is not None]
    if bad:
        raise UnsupportedEntryError([p for p, _ in bad], [r for _, r in bad])


def unverifiable(entry: ManifestEntry) -> str | None:
    """Why the file of reference ``entry`` cannot be checked by its MD5, or None."""
    reason = _unsupported(entry)
    if reason is None and is_remote(entry) and not expected_md5(entry):
        return (
            f"its digest is the ETag of {entry.ref}, not an MD5 of the content, so a file "
            "cannot be checked against it; download the version again instead"
        )
    return reason


def _unsupported(entry: ManifestEntry) -> str | None:
    """Why the reference ``entry`` cannot be downloaded, or None if it can."""
    ref = entry.ref or ""
    parts = urlsplit(ref)
    scheme = parts.scheme.lower()
    if scheme in _BUCKETS and entry.digest == ref:
        return (
            f"the reference {ref} was logged with checksum=False, so no version of it was "
            f"recorded to fetch; read it from {_BUCKETS[scheme]} directly"
        )
    if scheme in _REMOTE:
        return None
    if scheme != "file":
        return (
            f"{ref!r} is not a reference artisync can download "
            "(file://, s3://, gs://, http(s):// are)"
        )
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
    if is_remote(entry):
        if (reason := _unsupported(entry)) is not None:
            raise InvalidInputError(f"entry {entry.path!r}: {reason}")
        return Task(entry, f"{root}/{path}", expected_md5(entry), None, remote=True)
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
