"""What can go wrong when an artifact version is downloaded or checked.

Every class here is an :class:`~artisync.errors.ArtisyncError` and names the entry it
concerns, where its bytes came from, and what to do. I/O failures on the download
root itself (permission denied, disk full, a directory in the way) stay the
:class:`OSError` subclass Python raises, with ``filename`` set, as in the rest of
artisync.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from artisync.errors import ArtisyncError

__all__ = [
    "ContentMismatchError",
    "CorruptBlobError",
    "DownloadError",
    "MissingContentError",
    "ReferenceChangedError",
    "UnsupportedEntryError",
    "VerificationError",
]

# How many paths a message lists before it says "and N more".
_SHOWN = 10


class DownloadError(ArtisyncError):
    """Base of the errors downloads and :func:`~artisync.download.verify_root` raise."""


class UnsupportedEntryError(DownloadError):
    """An entry that cannot be downloaded, or whose file cannot be checked.

    Downloads refuse references that recorded nothing to fetch or check: an ``s3://``
    or ``gs://`` reference logged with ``checksum=False`` (no version was recorded), a
    ``file://`` one logged with ``checksum=False`` (no digest), a ``file://`` URL naming
    another host, and schemes artisync does not read. Every other reference downloads:
    remote ones are fetched in the version they recorded. Checking files by their MD5
    (:func:`~artisync.download.verify_root`, reading one entry's bytes) also refuses
    ``s3://`` and ``http(s)://`` references, whose digest is their server's ETag (or
    URL), not an MD5 of the bytes.

    Raised before anything is written. ``paths`` lists every such entry.
    """

    def __init__(self, paths: Sequence[str], reasons: Sequence[str]) -> None:
        shown = "; ".join(f"{p!r}: {r}" for p, r in zip(paths[:_SHOWN], reasons, strict=False))
        more = f" (and {len(paths) - _SHOWN} more)" if len(paths) > _SHOWN else ""
        super().__init__(
            f"cannot download {len(paths)} entr{'y' if len(paths) == 1 else 'ies'}: "
            f"{shown}{more}; nothing was downloaded (path_prefix= selects the entries "
            "that can be)"
        )
        self.paths = list(paths)


class MissingContentError(DownloadError, LookupError):
    """The bytes of an entry are not where the manifest says: the store has no blob
    with its digest, or the file a ``file://`` reference points to is gone."""

    def __init__(self, path: str, source: str, what: str) -> None:
        super().__init__(f"entry {path!r}: {what} ({source}); nothing was written for it")
        self.path = path
        self.source = source


class ContentMismatchError(DownloadError):
    """Bytes whose MD5 is not the entry's digest; nothing was written under the
    entry's name. ``source`` is where the bytes came from."""

    def __init__(self, path: str, source: str, expected: str, actual: str, message: str) -> None:
        super().__init__(message)
        self.path = path
        self.source = source
        self.expected = expected
        self.actual = actual


class CorruptBlobError(ContentMismatchError):
    """A blob in the store does not hold the bytes its name (their MD5) promises."""

    def __init__(self, path: str, source: str, expected: str, actual: str) -> None:
        super().__init__(
            path,
            source,
            expected,
            actual,
            f"entry {path!r}: the store's blob {source} is corrupt: its bytes have MD5 "
            f"{actual}, not {expected}. Nothing was written for this entry; restore the "
            "blob from a backup or log the file again",
        )


class ReferenceChangedError(ContentMismatchError):
    """The file a ``file://`` reference points to changed since it was logged."""

    def __init__(self, path: str, source: str, expected: str, actual: str) -> None:
        super().__init__(
            path,
            source,
            expected,
            actual,
            f"entry {path!r}: the referenced file {source} changed after it was logged "
            f"(its MD5 is {actual}, the version recorded {expected}). Nothing was written "
            "for this entry; references point at files artisync does not keep, so log a "
            "new version to capture the current content",
        )


class VerificationError(DownloadError, ValueError):
    """A download root does not hold exactly a version's files (a ``ValueError`` too,
    as W&B's ``verify`` raises).

    Attributes:
        root: The directory checked.
        modified: Entry paths whose file has other bytes than the entry's digest.
        missing: Entry paths with no file under ``root``.
        extra: Files under ``root`` (relative paths) that are not entries.
    """

    def __init__(
        self, root: Path, modified: list[str], missing: list[str], extra: list[str]
    ) -> None:
        parts = [
            _listing(what, paths)
            for what, paths in (("modified", modified), ("missing", missing), ("extra", extra))
            if paths
        ]
        super().__init__(
            f"{root} does not match the artifact: {'; '.join(parts)}. Download the version "
            "again to restore modified and missing files"
        )
        self.root = root
        self.modified = modified
        self.missing = missing
        self.extra = extra


def _listing(what: str, paths: list[str]) -> str:
    shown = ", ".join(repr(p) for p in paths[:_SHOWN])
    more = f", and {len(paths) - _SHOWN} more" if len(paths) > _SHOWN else ""
    return f"{len(paths)} {what} ({shown}{more})"
