"""``read_entry_bytes``: one small entry's content in memory (tables), verified.

The bytes are read from where a download would copy them (the local store's blob, the
cache for a remote store, the referenced file) and checked against the entry's digest.
"""

from __future__ import annotations

import contextlib
import hashlib
from pathlib import Path

from artisync.config import default_home
from artisync.download.cache import BlobCache
from artisync.download.downloader import run_coroutine
from artisync.download.errors import (
    CorruptBlobError,
    MissingContentError,
    ReferenceChangedError,
)
from artisync.download.placing import raise_first
from artisync.download.plan import Task, check_supported, local_ref_path
from artisync.download.via_cache import CachedBlobs, blob_location
from artisync.manifest import ManifestEntry, md5_b64_to_hex
from artisync.store.base import Store
from artisync.store.open import shared_store

__all__ = ["read_entry_bytes"]


def read_entry_bytes(
    store: Store | str,
    entry: ManifestEntry,
    *,
    cache: BlobCache | None = None,
    home: Path | None = None,
) -> bytes:
    """The content of ``entry``, checked against its digest.

    ``store``, ``cache`` and ``home`` are as for :func:`download_manifest`. Meant for
    small entries: the whole content is returned in memory.

    Raises:
        CorruptBlobError, ReferenceChangedError, MissingContentError,
        UnsupportedEntryError: as :func:`download_manifest` does.
    """
    check_supported([entry])
    md5_hex = md5_b64_to_hex(entry.digest)
    ref_file = local_ref_path(entry)
    if ref_file is not None:
        data = _read(entry, ref_file, f"the file its reference {entry.ref} points to is gone")
        if (actual := _md5(data)) != md5_hex:
            raise ReferenceChangedError(entry.path, ref_file, md5_hex, actual)
        return data
    opened = shared_store(store, home or default_home()) if isinstance(store, str) else store
    if not opened.local_blobs:
        cache = cache or BlobCache.default()
        return _read_remote(opened, entry, md5_hex, cache)
    path = blob_location(opened, md5_hex)
    data = _read(entry, path, "the store has no blob for it")
    if (actual := _md5(data)) != md5_hex:
        raise CorruptBlobError(entry.path, path, md5_hex, actual)
    return data


def _read_remote(store: Store, entry: ManifestEntry, md5_hex: str, cache: BlobCache) -> bytes:
    """A remote blob's bytes: from the cache, else fetched (verified) and cached."""
    if (path := cache.lookup(md5_hex, entry.size)) is not None:
        with contextlib.suppress(FileNotFoundError):  # evicted meanwhile: fetch it
            data = Path(path).read_bytes()
            if _md5(data) == md5_hex:
                return data
            cache.discard(md5_hex)
    errors: list[Exception] = []
    fetcher = CachedBlobs(store, cache, errors)

    fetched = run_coroutine(fetcher.fetch([Task(entry, "", md5_hex, None)]))
    raise_first(errors)
    data = Path(fetched[md5_hex].path).read_bytes()  # verified by the fetch
    fetcher.admit(fetched)
    if fetcher.admitted and cache.over_bound():
        cache.trim()
    return data


def _read(entry: ManifestEntry, path: str, missing: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise MissingContentError(entry.path, path, missing) from None


def _md5(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()
