"""Downloads: an artifact version's files into a directory, every byte verified.

The engine behind ``artifact.download()``, ``artifact.verify()``, ``entry.download()``
and ``artisync get``. Blobs of a local store are copied straight from the store;
blobs of a remote store go through a size-bounded local cache (:class:`BlobCache`).
"""

from artisync.download.cache import DEFAULT_MAX_BYTES, BlobCache, open_cache
from artisync.download.downloader import download_manifest
from artisync.download.errors import (
    ContentMismatchError,
    CorruptBlobError,
    DownloadError,
    MissingContentError,
    ReferenceChangedError,
    UnsupportedEntryError,
    VerificationError,
)
from artisync.download.placing import DownloadReport
from artisync.download.reading import read_entry_bytes
from artisync.download.verification import verify_root
from artisync.download.via_cache import BlobReader

__all__ = [
    "DEFAULT_MAX_BYTES",
    "BlobCache",
    "BlobReader",
    "ContentMismatchError",
    "CorruptBlobError",
    "DownloadError",
    "DownloadReport",
    "MissingContentError",
    "ReferenceChangedError",
    "UnsupportedEntryError",
    "VerificationError",
    "download_manifest",
    "open_cache",
    "read_entry_bytes",
    "verify_root",
]
