"""Blobs of a remote store, through the local cache.

Remote stores (S3, GCS: the next issue) are asynchronous clients; this runs in one
event loop for the whole download, with ``fetches`` requests in flight. Each batch:

1. looks its blobs up in the cache (a stat each: hits are trusted by size);
2. fetches the misses into the cache's ``tmp/`` and hashes them there, so a corrupt
   blob in the store never enters the cache;
3. places the batch into the root, hits from the cache and misses from their fetched
   copies, each copy verified again while it is made;
4. admits the fetched copies into the cache (an atomic rename each).

When the cache's filesystem is full, a blob is fetched into a hidden file in the
download's root instead (:func:`fetch_beside_if_full`), with one warning: the cache only
saves work, so a download whose destination has room never fails for want of it. Such
a copy is placed like any other and removed, never admitted.

Placing from the fetched copy before admitting it means eviction by another process
can only take a *hit* away between its lookup and its copy. Such a hit, or one whose
bytes turn out corrupt (the copy hashes them anyway), is fetched again into a private
copy, which nothing evicts: a concurrent trim costs one retry, never a failure.

A store whose blobs are local files (:attr:`~artisync.store.Store.local_blobs`: the
local store) can be read this way too (``use_cache=True``): its blobs are then copied
into ``tmp/`` with the same verification. Downloads do not do that by default, since
local blobs are already local and verified.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import NamedTuple, Protocol, runtime_checkable

from artisync import _core
from artisync.disk_full import explaining_disk_full, is_disk_full
from artisync.download.cache import BlobCache
from artisync.download.errors import CorruptBlobError, DownloadError, MissingContentError
from artisync.download.placing import (
    BATCH_BYTES,
    BATCH_FILES,
    Failure,
    Placer,
    any_fatal,
    chunks,
)
from artisync.download.plan import Task
from artisync.store.base import ObjectNotFoundError, Store, blob_key

__all__ = [
    "DEFAULT_FETCHES",
    "BlobReader",
    "CachedBlobs",
    "Fetched",
    "blob_location",
    "fetch_beside_if_full",
]

DEFAULT_FETCHES = 16
"""Requests in flight to a remote store, unless a download says otherwise."""


@runtime_checkable
class BlobReader(Protocol):
    """What a download needs of a remote store (to be added to ``Store`` by remote
    backends): write one blob's bytes into a new local file."""

    url: str

    async def get_blob(self, md5_hex: str, dest: Path) -> None:
        """Write the blob ``md5_hex`` into the new file ``dest``; raise
        :class:`~artisync.store.ObjectNotFoundError` if the store does not have it."""


class Fetched(NamedTuple):
    """A blob fetched into the cache's ``tmp/`` and verified, not yet admitted; or,
    ``beside`` the download's root when the cache was full, never to be admitted."""

    path: str
    size: int
    beside: bool = False


async def fetch_beside_if_full(
    cache: BlobCache, name: str, spill_dir: str | None, fetch: Callable[[str], Awaitable[None]]
) -> tuple[str, bool]:
    """``fetch(path)`` into a new file in the cache's ``tmp/``; if the cache's filesystem
    is full (or was found full before), into a new file in ``spill_dir`` instead, with
    one warning. Returns the path and whether it is in ``spill_dir``. A file left half
    written is removed; without a ``spill_dir`` a full cache is an error."""
    if not cache.full or spill_dir is None:
        tmp: str | None = None
        try:
            tmp = cache.new_tmp(name)
            await fetch(tmp)
            return tmp, False
        except BaseException as e:
            if tmp is not None:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
            if spill_dir is None or not is_disk_full(e):
                raise
            assert isinstance(e, OSError)
            cache.note_full(f"fetching {name}", e)
    beside = cache.tmp_beside(spill_dir, name)
    try:
        with explaining_disk_full(f"cannot fetch {name} into the download's root", beside):
            await fetch(beside)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(beside)
        raise
    return beside, True


def blob_location(store: Store, md5_hex: str) -> str:
    """Where a blob is: its local file if the store has one, else its URL. ``md5_hex``
    must be valid (as :func:`~artisync.manifest.md5_b64_to_hex` returns it): this runs
    once per file and a local file is named without :func:`~artisync.store.blob_key`'s
    check."""
    path = store.local_path(md5_hex)
    if path is not None:
        return path
    return f"{store.url.rstrip('/')}/{blob_key(md5_hex)}"


class CachedBlobs:
    """Places blob tasks from the cache, fetching them from ``store`` when missing."""

    def __init__(
        self,
        store: Store,
        cache: BlobCache,
        errors: list[Exception],
        *,
        fetches: int = DEFAULT_FETCHES,
        threads: int | None = None,
        spill_dir: str | None = None,
    ) -> None:
        """``spill_dir``: where to fetch when the cache's filesystem is full (the
        download's root); without one, a full cache fails the fetch."""
        if not (store.local_blobs or isinstance(store, BlobReader)):
            raise DownloadError(
                f"cannot download from the store at {store.url}: {type(store).__name__} "
                "cannot read blobs yet"
            )
        self.store = store
        self.cache = cache
        self.errors = errors
        self.threads = threads
        self.spill_dir = spill_dir
        self._beside: set[str] = set()
        # Whether blobs were added to the cache: the caller trims it at the end.
        self.admitted = False
        self._fetches = asyncio.Semaphore(fetches)
        self._tag = f"{os.getpid()}-{secrets.token_hex(4)}"
        self._calls = 0
        # Bound what one batch adds to the cache before it is trimmed.
        self._batch_bytes = max(1, min(BATCH_BYTES, cache.max_bytes // 4))

    async def download(self, tasks: Sequence[Task], placer: Placer) -> None:
        """Place every task with ``placer``; problems are appended to ``errors``.

        Trims the cache between batches when it may be over its bound; the caller
        trims once more at the end if :attr:`admitted` (after saving its root record,
        which counts too).
        """
        for batch in chunks(tasks, BATCH_FILES, self._batch_bytes):
            if self.admitted and self.cache.over_bound():
                await asyncio.to_thread(self.cache.trim)
            await self._batch(batch, placer, use_hits=True)
            if any_fatal(self.errors):
                return  # the store or the root is failing: more batches would too

    async def _batch(self, batch: Sequence[Task], placer: Placer, use_hits: bool) -> None:
        cache, report = self.cache, placer.report
        first: dict[str, Task] = {}
        for task in batch:
            first.setdefault(task.md5_hex, task)
        hits: dict[str, str] = {}
        if use_hits:
            for md5_hex, task in first.items():
                if (path := cache.lookup(md5_hex, task.entry.size)) is not None:
                    hits[md5_hex] = path
            report.cache_hits += len(hits)
        fetched = await self.fetch([t for h, t in first.items() if h not in hits])
        report.fetched += len(fetched)
        sources = hits | {md5_hex: f.path for md5_hex, f in fetched.items()}
        pairs = [(t, sources[t.md5_hex]) for t in batch if t.md5_hex in sources]
        try:
            failures = await asyncio.to_thread(placer.place, pairs)
        finally:
            await asyncio.to_thread(self.admit, fetched)
        again: list[Task] = []
        for failure in failures:
            md5_hex = failure.task.md5_hex
            if failure.source == hits.get(md5_hex) and (
                failure.actual is not None or failure.source_missing
            ):
                cache.discard(md5_hex)
                again.append(failure.task)
            else:
                self.errors.append(_placement_error(failure))
        if again:
            await self._batch(again, placer, use_hits=False)

    async def fetch(self, tasks: list[Task]) -> dict[str, Fetched]:
        """Fetch each task's blob into the cache's ``tmp/``, verified; the caller must
        :meth:`admit` the result. Tasks should have distinct blobs; those that could
        not be fetched are left out, with their errors appended to ``errors``."""
        if not tasks:
            return {}
        if self.store.local_blobs:
            return await asyncio.to_thread(self._copy_local, tasks)
        results = await asyncio.gather(*(self._get(t) for t in tasks), return_exceptions=True)
        got: list[tuple[Task, str]] = []
        for task, result in zip(tasks, results, strict=True):
            if isinstance(result, str):
                got.append((task, result))
            elif isinstance(result, ObjectNotFoundError):
                self.errors.append(self._missing(task))
            elif isinstance(result, Exception):
                self.errors.append(result)
            else:
                raise result  # KeyboardInterrupt, CancelledError: not ours to keep
        return await asyncio.to_thread(self._check, got) if got else {}

    def admit(self, fetched: dict[str, Fetched]) -> None:
        """Give fetched copies their names in the cache (blocking)."""
        for md5_hex, blob in fetched.items():
            if blob.beside:  # in the root, the cache being full: placed, so it goes
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(blob.path)
                continue
            # Placed already: a full cache only means the blob is not kept for later.
            with self.cache.skipped_if_full(f"keeping blob {md5_hex}"):
                self.admitted = self.cache.admit(blob.path, md5_hex, blob.size) or self.admitted

    async def _get(self, task: Task) -> str:
        store = self.store
        assert isinstance(store, BlobReader)

        async def get(path: str) -> None:
            async with self._fetches:
                await store.get_blob(task.md5_hex, Path(path))

        path, beside = await fetch_beside_if_full(self.cache, task.md5_hex, self.spill_dir, get)
        if beside:
            self._beside.add(path)
        return path

    def _check(self, got: list[tuple[Task, str]]) -> dict[str, Fetched]:
        """Hash fetched files; keep those with the right MD5, remove the others."""
        digests = _core.hash_files([tmp for _, tmp in got], threads=self.threads)
        fetched: dict[str, Fetched] = {}
        for (task, tmp), digest in zip(got, digests, strict=True):
            if digest.md5_hex == task.md5_hex:
                fetched[task.md5_hex] = Fetched(tmp, digest.size, tmp in self._beside)
            else:
                os.unlink(tmp)
                location = blob_location(self.store, task.md5_hex)
                self.errors.append(
                    CorruptBlobError(task.entry.path, location, task.md5_hex, digest.md5_hex)
                )
        return fetched

    def _copy_local(self, tasks: list[Task]) -> dict[str, Fetched]:
        """Local blob files into ``tmp/``: verified copies, like any placement."""
        items = [
            (blob_location(self.store, t.md5_hex), self.cache.new_tmp(t.md5_hex), t.md5_hex)
            for t in tasks
        ]
        self._calls += 1
        results = _core.copy_verify_many(
            items, tag=f"{self._tag}-{self._calls}", threads=self.threads
        )
        fetched: dict[str, Fetched] = {}
        for task, (source, tmp, _), result in zip(tasks, items, results, strict=True):
            if isinstance(result, OSError):
                missing = Failure(task, source, error=result).source_missing
                self.errors.append(self._missing(task) if missing else result)
            elif result.written:
                fetched[task.md5_hex] = Fetched(tmp, result.size)
            else:
                self.errors.append(
                    CorruptBlobError(task.entry.path, source, task.md5_hex, result.md5_hex)
                )
        return fetched

    def _missing(self, task: Task) -> MissingContentError:
        location = blob_location(self.store, task.md5_hex)
        return MissingContentError(task.entry.path, location, "the store has no blob for it")


def _placement_error(failure: Failure) -> Exception:
    """The error for a copy that failed other than by a cache hit going bad."""
    task = failure.task
    if failure.actual is not None:
        return CorruptBlobError(task.entry.path, failure.source, task.md5_hex, failure.actual)
    assert failure.error is not None
    return failure.error
