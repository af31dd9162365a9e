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

A store may be used from several event loops (the daemon's, and ``asyncio.run`` per
call in downloads and checks): asyncio objects and network clients belong to one loop,
so a store keeps them per loop (:meth:`RemoteStore.loop_client`). A loop's client is
closed on that loop, by :meth:`RemoteStore.close` or, at the latest, when the loop
shuts down (``asyncio.run`` cancels the task that holds it), never left open behind a
finished loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import threading
from abc import abstractmethod
from collections.abc import Awaitable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import urlsplit

from artisync.errors import InvalidInputError
from artisync.store.base import (
    BlobItem,
    CallerRights,
    SourceChangedError,
    Store,
    StoreAccessError,  # re-exported: its home was this module before it moved to base
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


@dataclass(eq=False, slots=True)
class _LoopState:
    """What a store keeps for one event loop: asyncio objects belong to one loop."""

    concurrency: int
    requests: asyncio.Semaphore = field(init=False)
    files: asyncio.Semaphore = field(init=False)
    # Uploads of one blob in progress: (their lock, how many wait for it).
    turns: dict[str, tuple[asyncio.Lock, list[int]]] = field(default_factory=dict)
    opening: asyncio.Lock = field(default_factory=asyncio.Lock)
    client: Any = None
    stack: contextlib.AsyncExitStack = field(default_factory=contextlib.AsyncExitStack)
    keeper: asyncio.Task[None] | None = None

    def __post_init__(self) -> None:
        self.requests = asyncio.Semaphore(self.concurrency)
        self.files = asyncio.Semaphore(self.concurrency)


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
        self._loops: dict[asyncio.AbstractEventLoop, _LoopState] = {}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"

    # -- what belongs to the running loop ------------------------------------------------

    def _here(self) -> _LoopState:
        loop = asyncio.get_running_loop()
        state = self._loops.get(loop)
        if state is None:
            # Forget loops that are gone: their semaphores (and, if they were closed
            # without cancelling their tasks, their clients) can never be used again.
            for gone in [other for other in self._loops if other.is_closed()]:
                self._loops.pop(gone, None)
            state = self._loops[loop] = _LoopState(self.concurrency)
        return state

    @property
    def _requests(self) -> asyncio.Semaphore:
        """The running loop's bound on requests in flight."""
        return self._here().requests

    @property
    def _files(self) -> asyncio.Semaphore:
        """The running loop's bound on open source files."""
        return self._here().files

    @property
    def _turns(self) -> dict[str, tuple[asyncio.Lock, list[int]]]:
        return self._here().turns

    async def loop_client(self) -> Any:
        """The running loop's client, opened by :meth:`_open_client` on first use and
        closed on this loop, by :meth:`close` or when the loop shuts down."""
        state = self._here()
        if state.client is None:
            async with state.opening:
                if state.client is None:
                    state.client = await self._open_client(state.stack)
                    loop = asyncio.get_running_loop()
                    state.keeper = loop.create_task(
                        self._close_with_loop(loop, state), name=f"{self!r} client"
                    )
        return state.client

    @abstractmethod
    async def _open_client(self, stack: contextlib.AsyncExitStack) -> Any:
        """A new client for the running loop, whose closing is registered on ``stack``
        (the loop's, closed on that loop)."""

    async def _close_with_loop(self, loop: asyncio.AbstractEventLoop, state: _LoopState) -> None:
        """Hold the loop's client until the loop shuts down or :meth:`close` is called:
        both cancel this task, which then closes the client on its own loop."""
        try:
            await loop.create_future()
        except asyncio.CancelledError:
            await self._release(loop, state)
            raise

    async def _release(self, loop: asyncio.AbstractEventLoop, state: _LoopState) -> None:
        if self._loops.get(loop) is state:
            del self._loops[loop]
        state.client = None
        await state.stack.aclose()

    async def close(self) -> None:
        """Close the clients: this loop's now, other running loops' on their own loop."""
        here = asyncio.get_running_loop()
        for loop, state in list(self._loops.items()):
            if loop is here:
                continue
            if state.keeper is not None and not loop.is_closed():
                with contextlib.suppress(RuntimeError):  # closed meanwhile: nothing to do
                    loop.call_soon_threadsafe(state.keeper.cancel)
            else:
                self._loops.pop(loop, None)
        mine = self._loops.get(here)
        if mine is not None:
            if mine.keeper is not None:
                mine.keeper.cancel()
                mine.keeper = None
            await self._release(here, mine)

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

    async def put_blobs(self, items: Sequence[BlobItem], caller: CallerRights | None = None) -> int:
        """Upload the blobs the bucket does not have; returns how many were new.

        A bucket store reads its sources with its own process's rights only (it does
        not :attr:`~Store.reads_as_caller`): ``caller`` must be None."""
        self.refuse_caller(caller)
        unique: dict[str, BlobItem] = {}
        for given in items:
            item = BlobItem(*given)
            unique.setdefault(check_md5_hex(item.md5_hex), item)
        if not unique:
            return 0
        present = await self.has_blobs(list(unique))
        todo = [item for md5_hex, item in unique.items() if md5_hex not in present]
        outcomes = await first_failure([self._put_once(item) for item in todo])
        return sum(outcomes)

    def refuse_caller(self, caller: CallerRights | None) -> None:
        """Raise if asked to read sources as another user, which a bucket store cannot."""
        if caller is not None:
            raise ValueError(
                f"the store at {self.url} cannot open files with another user's rights: "
                "copy them into the daemon's keeping first (see daemon.ingest), then store "
                "those copies"
            )

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
                self._turns.pop(item.md5_hex, None)

    async def sync(self) -> None:
        """Nothing to do: an object whose PUT (or completion) returned is durable."""


async def first_failure(calls: Sequence[Awaitable[T]]) -> list[T]:
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
