"""What the S3 and GCS stores share: bucket URLs, the key layout under a prefix, and
how a batch of blobs goes up (deduplicated, bounded, a bad source blamed on itself).

A batch (:meth:`RemoteStore.put_blobs`):

1. asks which blobs the bucket has (:mod:`artisync.store.presence`: listing pages
   where they are cheaper than one HEAD per blob) and skips those;
2. uploads the others concurrently: at most ``concurrency`` requests in flight (single
   PUTs and parts alike) and as many source files open;
3. on the first failure stops the rest and raises: a problem with a source (an
   :class:`OSError` naming it: the submission is rejected) wins over the store's
   (:class:`StoreUnavailableError`: the daemon retries the batch, which then skips
   what was stored, and resumes large uploads from their journal).

Two uploads of one blob in one process (two submissions sharing a file) take turns;
the second finds the blob there and writes nothing.
"""

from __future__ import annotations

import asyncio
import re
import threading
from abc import abstractmethod
from collections.abc import Awaitable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit

from artisync.errors import InvalidInputError
from artisync.store.base import (
    BlobItem,
    SourceChangedError,
    Store,
    StoreError,
    blob_key,
    check_md5_hex,
)
from artisync.store.presence import Latencies, PresenceStats, find_present

__all__ = [
    "DEFAULT_CONCURRENCY",
    "BucketUrl",
    "RemoteStore",
    "StoreAccessError",
    "content_changed",
    "first_failure",
    "parse_bucket_url",
    "run_apart",
]

T = TypeVar("T")

DEFAULT_CONCURRENCY = 16
"""Requests in flight to the bucket, unless the store is given another bound."""

# Loose on purpose: the server has the last word; this only catches typos early.
_BUCKET = re.compile(r"[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]")


class StoreAccessError(StoreError):
    """The store cannot be used as configured: no or wrong credentials, a bucket that
    does not exist, an endpoint that does not answer. Raised when the store is opened
    (the daemon refuses to start), with what to set."""


@dataclass(frozen=True, slots=True)
class BucketUrl:
    """``scheme://bucket/prefix``: where a remote store keeps its layout."""

    scheme: str
    bucket: str
    prefix: str  # "" or ending with "/"

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.bucket}/{self.prefix}".rstrip("/")


def parse_bucket_url(url: str) -> BucketUrl:
    """Split ``s3://bucket/some/prefix`` (or ``gs://``); :class:`InvalidInputError`
    if it is not one."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if parts.query or parts.fragment:
        raise InvalidInputError(f"store {url!r}: a bucket URL takes no '?' or '#' part")
    bucket = parts.netloc
    if not _BUCKET.fullmatch(bucket):
        raise InvalidInputError(
            f"store {url!r}: {bucket!r} is not a bucket name; write "
            f"{scheme}://bucket/optional/prefix"
        )
    segments = [s for s in parts.path.split("/") if s]
    if any(s in (".", "..") for s in segments):
        raise InvalidInputError(f"store {url!r}: the prefix may not contain '.' or '..'")
    prefix = "".join(f"{s}/" for s in segments)
    return BucketUrl(scheme, bucket, prefix)


def content_changed(path: str, size: int) -> SourceChangedError:
    """The server found that the bytes sent do not have the MD5 the blob is named by."""
    return SourceChangedError(
        path, size, size, "its content no longer has the MD5 it was hashed with"
    )


class RemoteStore(Store):
    """A store in a bucket: the batch logic; subclasses speak the bucket's protocol."""

    def __init__(self, location: BucketUrl, concurrency: int) -> None:
        if concurrency < 1:
            raise InvalidInputError(f"concurrency must be at least 1, not {concurrency}")
        self.location = location
        self.bucket = location.bucket
        self.prefix = location.prefix
        self.url = location.url
        self.concurrency = concurrency
        self.presence_stats = PresenceStats()  # requests has_blobs made, for benchmarks
        # What a listing page costs in HEADs: measured as it goes; a prior until then.
        self.latencies = Latencies(prior_ratio=4.0)
        self._blobs_prefix = f"{self.prefix}blobs/md5/"
        self._loop: asyncio.AbstractEventLoop | None = None
        self._requests = asyncio.Semaphore(concurrency)
        self._files = asyncio.Semaphore(concurrency)
        self._turns: dict[str, tuple[asyncio.Lock, list[int]]] = {}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"

    def key(self, relative: str) -> str:
        """The object name of a layout key (``blobs/md5/...``) under the prefix."""
        return f"{self.prefix}{relative}"

    def blob_object(self, md5_hex: str) -> str:
        return self.key(blob_key(md5_hex))

    # -- what each backend provides --------------------------------------------------

    @abstractmethod
    async def _exists(self, name: str) -> bool:
        """Whether the object ``name`` exists (one HEAD or metadata GET)."""

    @abstractmethod
    async def _list_from(self, first: str) -> tuple[list[str], bool]:
        """Object names under ``blobs/md5/`` from ``first`` on, one page, and whether
        more follow."""

    @abstractmethod
    async def _upload(self, item: BlobItem, name: str) -> None:
        """Upload one blob that is not in the bucket (in one request or in parts)."""

    # -- the batch logic ---------------------------------------------------------------

    async def has_blobs(self, md5_hexes: Sequence[str]) -> set[str]:
        """The subset of ``md5_hexes`` whose blobs are in the bucket."""
        names = {self.blob_object(h): h for h in md5_hexes}
        found = await find_present(
            list(names),
            self._list_from,
            self._exists,
            latencies=self.latencies,
            stats=self.presence_stats,
        )
        return {names[n] for n in found}

    async def put_blobs(self, items: Sequence[BlobItem]) -> int:
        """Upload the blobs the bucket does not have; returns how many were new."""
        unique: dict[str, BlobItem] = {}
        for given in items:
            item = BlobItem(*given)
            unique.setdefault(check_md5_hex(item.md5_hex), item)
        if not unique:
            return 0
        self._bind()
        present = await self.has_blobs(list(unique))
        todo = [item for md5_hex, item in unique.items() if md5_hex not in present]
        outcomes = await first_failure([self._put_once(item) for item in todo])
        return sum(outcomes)

    async def _put_once(self, item: BlobItem) -> bool:
        """Upload ``item`` unless an upload of the same blob in this process, which it
        waits for, stored it; whether this call wrote it."""
        name = self.blob_object(item.md5_hex)
        lock, users = self._turns.setdefault(item.md5_hex, (asyncio.Lock(), [0]))
        contended = lock.locked()
        users[0] += 1
        try:
            async with lock:
                if contended and await self._exists(name):
                    return False
                async with self._files:
                    await self._upload(item, name)
                return True
        finally:
            users[0] -= 1
            if users[0] == 0:
                del self._turns[item.md5_hex]

    def _bind(self) -> None:
        """Give the semaphores to the running loop (a store may outlive a loop:
        downloads run one ``asyncio.run`` per call)."""
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            self._loop = loop
            self._requests = asyncio.Semaphore(self.concurrency)
            self._files = asyncio.Semaphore(self.concurrency)
            self._turns = {}

    async def sync(self) -> None:
        """Nothing to do: an object whose PUT (or completion) returned is durable."""


async def first_failure(calls: Sequence[Awaitable[bool]]) -> list[bool]:
    """Run ``calls`` concurrently; on the first failure cancel the others and raise,
    preferring a source's :class:`OSError` over the store's failure."""
    tasks = [asyncio.ensure_future(c) for c in calls]
    if not tasks:
        return []
    try:
        _, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    errors = [t.exception() for t in tasks if t.done() and not t.cancelled() and t.exception()]
    if errors:
        source = [e for e in errors if isinstance(e, OSError)]
        raise (source or errors)[0]  # type: ignore[misc]
    return [t.result() for t in tasks]


def run_apart(work: Coroutine[Any, Any, T]) -> T:
    """Run ``work`` to completion on a fresh loop in another thread, so that it works
    whether or not the caller is inside an event loop (the daemon opens its store from
    its loop, ``artisync get`` from none)."""
    result: list[T] = []
    error: list[BaseException] = []

    def run() -> None:
        try:
            result.append(asyncio.run(work))
        except BaseException as e:
            error.append(e)

    thread = threading.Thread(target=run, name="artisync-store-check")
    thread.start()
    thread.join()
    if error:
        raise error[0]
    return result[0]
