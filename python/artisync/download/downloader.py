"""``download_manifest``: an artifact version's files into a directory, every byte verified.

Where the bytes come from:

- a blob of a local store (``file://`` or a path): straight from the store's blob file,
  which is already local, content-addressed and was verified when it was stored; the
  cache is not used (it would only duplicate the store on the same disk);
- a blob of a remote store: through the local blob cache (``via_cache.py``), or, when
  the cache's filesystem is full, through a hidden file in the root;
- a ``file://`` reference: the referenced file, which must still have the MD5 it was
  logged with;
- an ``s3://``, ``gs://`` or ``http(s)://`` reference: the version it recorded, fetched
  from its server into the cache's ``tmp/`` (its ETag checked by the server's answer,
  its MD5 too where the digest is one), then placed like any other file.

Each file is a verified copy given its name by an atomic rename (``placing.py``);
files already there and unchanged since a download wrote them are skipped without
being read (``root_record.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from artisync import _core
from artisync.config import default_home
from artisync.download.cache import BlobCache
from artisync.download.errors import (
    ContentMismatchError,
    CorruptBlobError,
    MissingContentError,
    ReferenceChangedError,
)
from artisync.download.placing import DownloadReport, Failure, Placer, any_fatal, raise_first
from artisync.download.plan import (
    Task,
    check_downloadable,
    make_parents,
    make_task,
    select_entries,
)
from artisync.download.root_record import RootRecord
from artisync.download.via_cache import (
    DEFAULT_FETCHES,
    CachedBlobs,
    blob_location,
    fetch_beside_if_full,
)
from artisync.manifest import Manifest
from artisync.store.base import Store
from artisync.store.open import shared_store

__all__ = ["RemoteReferenceChangedError", "download_manifest", "run_coroutine"]

T = TypeVar("T")


class RemoteReferenceChangedError(ReferenceChangedError):
    """An ``s3://``, ``gs://`` or ``http(s)://`` reference is no longer the version that
    was logged (another ETag, size or MD5); ``expected``/``actual`` are what differs."""

    def __init__(self, path: str, source: str, expected: str, actual: str, what: str) -> None:
        ContentMismatchError.__init__(
            self,
            path,
            source,
            expected,
            actual,
            f"entry {path!r}: {what}. Nothing was written for this entry; references point "
            "at objects artisync does not keep, so log a new version to capture the "
            "current content",
        )


def download_manifest(
    store: Store | str,
    manifest: Manifest,
    root: str | os.PathLike[str],
    *,
    path_prefix: str | None = None,
    cache: BlobCache | None = None,
    use_cache: bool | None = None,
    concurrency: int | None = None,
    home: Path | None = None,
) -> DownloadReport:
    """Download ``manifest``'s entries (those under ``path_prefix``) into ``root``.

    Args:
        store: The store holding the blobs: a :class:`Store`, or its URL as in
            ``Config.store`` (a relative path is taken under ``home``).
        manifest: The version's manifest.
        root: The directory to fill (created if missing). Files of other entries
            already there are left alone.
        path_prefix: Only entries whose path starts with this string (as W&B).
        cache: The blob cache, which also keeps the record of what was written under
            each root; default :meth:`BlobCache.default` (``$ARTISYNC_HOME/cache`` for
            the home's owner, else the user's own: see ``cache_directory``).
        use_cache: Read blobs through the cache: ``None`` (default) does for remote
            stores and not for a local one; ``True`` forces it (tests, benchmarks).
        concurrency: Files copied at once (default one thread per core), and requests
            in flight to a remote store (default 16).
        home: ``ARTISYNC_HOME``, for a relative store URL (default: the environment's).

    Returns:
        What was written and what was skipped.

    Raises:
        UnsupportedEntryError: an entry cannot be downloaded (a file or bucket
            reference logged with ``checksum=False``); raised before anything is written.
        CorruptBlobError: a blob's bytes do not have its MD5 (naming entry and blob).
        ReferenceChangedError: a referenced file or object changed since it was logged
            (:class:`RemoteReferenceChangedError` for S3, GCS and HTTP).
        MissingContentError: a blob, referenced file or recorded object version is gone.
        ReferenceFailure: a remote reference cannot be read (credentials, permissions).
        ReferenceUnavailableError: its server cannot be reached now.
        OSError: the root cannot be written (``filename`` says where).

    A problem with one entry's content (corrupt, missing, changed) leaves nothing
    under that entry's name and every other entry downloaded; any other error (the
    root or the store cannot be used) stops the download after the batch it happened
    in. The first error is raised, with a note counting the others.
    """
    entries = select_entries(manifest, path_prefix)
    check_downloadable(entries)
    root_dir = os.path.abspath(root)
    os.makedirs(root_dir, exist_ok=True)
    cache = cache if cache is not None else BlobCache.default()
    record = RootRecord.load(cache.roots_dir, root_dir)
    report = DownloadReport(Path(root_dir), len(entries))
    todo: list[Task] = []
    for entry in entries:
        if record.is_current(entry, f"{root_dir}/{entry.path}"):
            report.skipped += 1
        else:
            todo.append(make_task(root_dir, entry))
    if not todo:
        return report
    make_parents(todo)
    placer = Placer(record, report, concurrency)
    errors: list[Exception] = []
    filled_cache = False
    try:
        refs = [t for t in todo if t.ref_file is not None]
        remote = [t for t in todo if t.remote]
        blobs = [t for t in todo if t.ref_file is None and not t.remote]
        if refs:
            failures = placer.place([(t, t.ref_file or "") for t in refs])
            errors.extend(_ref_error(f) for f in failures)
        if remote and not any_fatal(errors):
            _place_remote(remote, placer, cache, errors, concurrency, root_dir)
        if blobs and not any_fatal(errors):
            filled_cache = _place_blobs(
                store, blobs, placer, cache, errors, use_cache, concurrency, home, root_dir
            )
    finally:
        # The record and the trim write into the cache: a full home must not fail a
        # download whose files are in place.
        with cache.skipped_if_full("saving what was written under the root"):
            cache.make_directory()
            record.save()
        if filled_cache:
            with cache.skipped_if_full("trimming"):
                cache.trim()
    raise_first(errors)
    return report


def _place_blobs(
    store: Store | str,
    tasks: list[Task],
    placer: Placer,
    cache: BlobCache,
    errors: list[Exception],
    use_cache: bool | None,
    concurrency: int | None,
    home: Path | None,
    root_dir: str,
) -> bool:
    """Place the blob tasks; returns whether blobs were added to the cache."""
    # A URL is opened once per process and kept (see shared_store): never closed here.
    opened = shared_store(store, home or default_home()) if isinstance(store, str) else store
    if opened.local_blobs and not use_cache:
        pairs = [(t, blob_location(opened, t.md5_hex)) for t in tasks]
        errors.extend(_store_blob_error(opened, f) for f in placer.place(pairs))
        return False
    fetches = concurrency or DEFAULT_FETCHES
    cached = CachedBlobs(
        opened, cache, errors, fetches=fetches, threads=concurrency, spill_dir=root_dir
    )

    run_coroutine(cached.download(tasks, placer))
    return cached.admitted


def _place_remote(
    tasks: list[Task],
    placer: Placer,
    cache: BlobCache,
    errors: list[Exception],
    concurrency: int | None,
    root_dir: str,
) -> None:
    """Fetch the remote references' recorded versions and place them."""
    fetches = concurrency or DEFAULT_FETCHES
    fetched = run_coroutine(_fetch_remote(tasks, cache, errors, fetches, root_dir))
    try:
        if not fetched:
            return
        digests = _core.hash_files([tmp for _, tmp in fetched], threads=concurrency)
        pairs: list[tuple[Task, str]] = []
        for (task, tmp), digest in zip(fetched, digests, strict=True):
            entry, ref = task.entry, task.entry.ref or ""
            if task.md5_hex and digest.md5_hex != task.md5_hex:
                what = f"{ref} now has MD5 {digest.md5_hex}, not {task.md5_hex} as logged"
                errors.append(
                    RemoteReferenceChangedError(entry.path, ref, task.md5_hex, digest.md5_hex, what)
                )
            elif entry.size is not None and digest.size != entry.size:
                what = f"{ref} now has {digest.size} bytes, not {entry.size} as logged"
                errors.append(
                    RemoteReferenceChangedError(
                        entry.path, ref, str(entry.size), str(digest.size), what
                    )
                )
            else:
                task.md5_hex = digest.md5_hex
                pairs.append((task, tmp))
        for failure in placer.place(pairs):
            assert failure.error is not None  # the MD5 was just taken: only I/O can fail
            errors.append(failure.error)
    finally:
        for _, tmp in fetched:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)


async def _fetch_remote(
    tasks: list[Task], cache: BlobCache, errors: list[Exception], fetches: int, root_dir: str
) -> list[tuple[Task, str]]:
    """Fetch each task's recorded version into the cache's ``tmp/`` (into ``root_dir``
    if the cache's filesystem is full); errors appended."""
    # Imported here: the S3 and GCS clients load only for downloads that need them.
    from artisync.references import (
        ReferenceChangedError as Changed,
    )
    from artisync.references import (
        ReferenceNotFoundError,
    )
    from artisync.references.remote import RemoteReferences

    slots = asyncio.Semaphore(fetches)

    async def one(refs: RemoteReferences, task: Task) -> str:
        entry = task.entry

        async def fetch(path: str) -> None:
            async with slots:
                await refs.fetch(entry.ref or "", entry.digest, dict(entry.extra), Path(path))

        path, _ = await fetch_beside_if_full(cache, "ref", root_dir, fetch)
        return path

    async with RemoteReferences() as refs:
        results = await asyncio.gather(*(one(refs, t) for t in tasks), return_exceptions=True)
    got: list[tuple[Task, str]] = []
    for task, result in zip(tasks, results, strict=True):
        path, ref = task.entry.path, task.entry.ref or ""
        if isinstance(result, str):
            got.append((task, result))
        elif isinstance(result, ReferenceNotFoundError):
            errors.append(MissingContentError(path, ref, str(result)))
        elif isinstance(result, Changed):
            errors.append(
                RemoteReferenceChangedError(path, ref, result.expected, result.actual, str(result))
            )
        elif isinstance(result, Exception):
            errors.append(result)  # credentials, an unreachable server: not one entry's fault
        else:
            raise result
    return got


def _store_blob_error(store: Store, failure: Failure) -> Exception:
    task = failure.task
    if failure.actual is not None:
        return CorruptBlobError(task.entry.path, failure.source, task.md5_hex, failure.actual)
    if failure.source_missing:
        what = "the store has no blob for it"
        return MissingContentError(task.entry.path, blob_location(store, task.md5_hex), what)
    assert failure.error is not None
    return failure.error


def _ref_error(failure: Failure) -> Exception:
    task = failure.task
    if failure.actual is not None:
        return ReferenceChangedError(task.entry.path, failure.source, task.md5_hex, failure.actual)
    if failure.source_missing:
        what = f"the file its reference {task.entry.ref} points to is gone"
        return MissingContentError(task.entry.path, failure.source, what)
    assert failure.error is not None
    return failure.error


def run_coroutine(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to completion from synchronous code, even when this thread already
    runs an event loop (a notebook): then it runs in a loop of its own thread."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with ThreadPoolExecutor(1, thread_name_prefix="artisync-download") as pool:
        return pool.submit(asyncio.run, coro).result()
