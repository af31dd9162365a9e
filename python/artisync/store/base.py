"""The store interface every backend implements, its errors, and its key layout.

A store holds bytes by content: a blob's key is its MD5, a manifest's key is its
artifact's digest. The layout is the same under every backend (local disk, S3, GCS)::

    blobs/md5/<hex[:2]>/<hex>                     content, hex = MD5 of the bytes
    manifests/<digest[:2]>/<digest>.json          a version's artifact_manifest_v1

Every method is ``async`` because the daemon calls the store from its event loop and
the remote backends are network clients; the local backend runs its blocking work in
worker threads, many files per thread hop.

Callers never ask which backend they hold; they ask the store for a capability, each
with a default that says "not here", so a backend offers only what it can:

- :attr:`Store.reads_as_caller`: :meth:`Store.put_blobs` opens sources with a given
  caller's rights (the local store does; a bucket store cannot, so the daemon copies
  another user's files into its own keeping first);
- :meth:`Store.put_hashing`: the files are stored in the read that hashes them (the
  local store's fused copy), a batch at a time, each batch checked by the caller first;
- :attr:`Store.local_blobs` and :meth:`Store.local_path`: each blob is a file on this
  machine, read in place rather than fetched through a cache;
- :meth:`Store.refuses_collection`: garbage collection cannot list and delete the store
  from here (a bucket reached through its server's grants, with no credentials).

Presigned transfers, for a server whose nodes move the bytes to and from the bucket
themselves, are the bucket stores' (:func:`artisync.store.grants_for.grants_for`).

Errors are split by whose fault they are, because the daemon acts differently on each:

- the *source* (a file a submission names) is missing, unreadable or changed: an
  :class:`OSError` naming the source path. The submission is rejected.
- the *store* cannot be written or read (permission, disk full, network):
  :class:`StoreUnavailableError`. The daemon retries with backoff until it works.
- the store cannot be used *as configured* (no or wrong credentials, a bucket that
  does not exist): :class:`StoreAccessError`, when the store is opened. The daemon
  refuses to start, saying what to set.
"""

from __future__ import annotations

import asyncio
import base64
import re
from abc import ABC, abstractmethod
from collections.abc import AsyncGenerator, Callable, Iterator, Sequence
from pathlib import Path
from typing import ClassVar, NamedTuple

from artisync import _core
from artisync.errors import ArtisyncError, InvalidInputError

__all__ = [
    "BlobItem",
    "CallerRights",
    "HashingPut",
    "ObjectNotFoundError",
    "SourceChangedError",
    "Store",
    "StoreAccessError",
    "StoreError",
    "StoreUnavailableError",
    "batches",
    "blob_key",
    "check_manifest_key",
    "check_md5_hex",
    "check_md5_hexes",
    "manifest_key",
    "md5_base64",
]


class BlobItem(NamedTuple):
    """One blob to store, and what its source looked like when it was hashed."""

    md5_hex: str
    source: str | Path
    # The size the caller hashed; None skips the check that the source still has it.
    size: int | None
    # The source is a snapshot the store may take: hard-linked (or renamed) into place,
    # so its own name must go with the rest of the caller's staging area, unwritten.
    move: bool = False
    # The source's mtime when it was hashed: a source modified since (even to the same
    # size) would store bytes under a digest that is not theirs, so it is refused.
    mtime_ns: int | None = None


CallerRights = tuple[int, int, list[int]]
"""``(uid, gid, groups)``: whose rights a store opens sources with (None: its own)."""

_MD5_HEX = re.compile(r"[0-9a-f]{32}")
_MD5_HEXES = re.compile(r"[0-9a-f]{32}(?:\n[0-9a-f]{32})*")
_MANIFEST_KEY = re.compile(r"manifests/([0-9a-f]{2})/(\1[0-9a-f]{30})\.json")


class StoreError(ArtisyncError):
    """Base of the errors the store layer raises on purpose."""


class StoreUnavailableError(StoreError):
    """The store cannot be written or read right now: a transient failure to retry.

    ``path`` is the key, file or URL the store failed on and ``reason`` the operating
    system's (or server's) explanation, e.g. ``"Permission denied"``.
    """

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(
            f"cannot use the store at {path}: {reason} (the daemon retries until this is "
            "fixed: check the store's permissions, free space and mount)"
        )
        self.path = path
        self.reason = reason

    @classmethod
    def from_os_error(cls, error: OSError, path: str | Path) -> StoreUnavailableError:
        """Wrap an :class:`OSError` that happened on ``path`` inside the store."""
        return cls(str(path), error.strerror or str(error))


class StoreAccessError(StoreError):
    """The store cannot be used as configured: no or wrong credentials, a bucket that
    does not exist, an endpoint that does not answer.

    Raised when the store is opened (the daemon refuses to start), with a message that
    says what to set. Unlike :class:`StoreUnavailableError`, retrying cannot help.
    """


class ManifestTooLargeError(StoreError, ValueError):
    """A version's manifest is bigger than the store can hold as one object: retrying
    cannot help, so the version is rejected."""

    def __init__(self, url: str, size: int, limit: int) -> None:
        super().__init__(
            f"the manifest for {url} is {size:,} bytes, over this store's limit of "
            f"{limit:,} bytes for one object; log the content as several smaller artifacts"
        )


class ObjectNotFoundError(StoreError, LookupError):
    """A blob or manifest key that the store does not hold."""

    def __init__(self, key: str, url: str) -> None:
        super().__init__(f"{key} is not in the store at {url}")
        self.key = key


class SourceChangedError(StoreError, OSError):
    """A file no longer has the size it was hashed with: it changed after logging.

    An :class:`OSError` with ``filename`` set, like every other problem with a source
    file, so callers that reject a submission for a bad source reject this one too.
    """

    def __init__(
        self, path: str | Path, expected: int, actual: int, what: str | None = None
    ) -> None:
        change = what or f"it was hashed at {expected} bytes and now has {actual}"
        reason = (
            f"changed while being stored: {change}; log it again once it is no longer being written"
        )
        super().__init__(None, reason, str(path))
        self.expected = expected
        self.actual = actual

    def __str__(self) -> str:
        return f"{self.filename}: {self.strerror}"


def check_md5_hex(md5_hex: str) -> str:
    """``md5_hex`` if it is 32 lower-case hex digits, else :class:`InvalidInputError`.

    Keys are built from it, so anything else could name a path outside the layout.
    """
    if not _MD5_HEX.fullmatch(md5_hex):
        raise InvalidInputError(
            f"{md5_hex!r} is not an MD5 digest: expected 32 lower-case hex digits"
        )
    return md5_hex


def check_md5_hexes(md5_hexes: Sequence[str]) -> None:
    """:func:`check_md5_hex` of each, as one match over them all (a batch of 10,000
    blobs); the first bad one is named the same way."""
    if not md5_hexes:
        return
    # All of 32 characters, so no "\n" inside one can pass for a boundary.
    if set(map(len, md5_hexes)) == {32} and _MD5_HEXES.fullmatch("\n".join(md5_hexes)):
        return
    for md5_hex in md5_hexes:
        check_md5_hex(md5_hex)


def md5_base64(md5_hex: str) -> str:
    """The base64 form of a hex MD5: S3's ``Content-MD5`` header, GCS's ``md5Hash``."""
    return base64.b64encode(bytes.fromhex(md5_hex)).decode()


def blob_key(md5_hex: str) -> str:
    """The key of the blob whose content has MD5 ``md5_hex``: ``blobs/md5/ab/ab…``."""
    check_md5_hex(md5_hex)
    return f"blobs/md5/{md5_hex[:2]}/{md5_hex}"


def manifest_key(artifact_digest: str) -> str:
    """The key of the manifest of the artifact with this digest (a hex MD5)."""
    check_md5_hex(artifact_digest)
    return f"manifests/{artifact_digest[:2]}/{artifact_digest}.json"


def check_manifest_key(key: str) -> str:
    """``key`` if :func:`manifest_key` could have made it, else :class:`InvalidInputError`."""
    if not _MANIFEST_KEY.fullmatch(key):
        raise InvalidInputError(
            f"{key!r} is not a manifest key: expected manifests/<hex[:2]>/<32 hex>.json"
        )
    return key


def batches(
    items: Sequence[BlobItem], max_files: int, max_bytes: int
) -> Iterator[Sequence[BlobItem]]:
    """Consecutive slices of ``items`` to bound the work of one call.

    Each has at most ``max_files`` items and ``max_bytes`` of content (or one blob).
    """
    start = 0
    total = 0
    for i, item in enumerate(items):
        size = item[2]
        if i > start and (i - start >= max_files or total + (size or 0) > max_bytes):
            yield items[start:i]
            start, total = i, 0
        total += size or 0
    if start < len(items):
        yield items[start:]


class HashingPut(ABC):
    """One :meth:`Store.put_hashing`: files stored in the read that hashes them.

    The store reads a batch of files at a time, hashing each and copying it in where
    its blob is missing, and :meth:`batches` yields the batch's digests before anything
    of it is visible in the store. The caller checks them (a file may have changed since
    it was logged); when it asks for the next batch, this one is named (made durable,
    then given its blob names) in the background while the next is read. If the caller
    raises instead, the batch is removed and nothing of it is stored. A batch the store
    then fails to name is removed too, reported to ``on_failure``, and left out of
    :meth:`stored`: its files are to be stored from their sources (:meth:`Store.put_blobs`).
    """

    @abstractmethod
    def batches(self) -> AsyncGenerator[list[_core.FileDigest], None]:
        """Each batch's digests, one per file in the order given. Iterate it under
        :func:`contextlib.aclosing`, so that a batch refused by an exception is removed
        at once. A bad source (an :class:`OSError` naming it) or the store's failure
        (:class:`StoreUnavailableError`) is raised here, leaving nothing of its batch."""

    @abstractmethod
    async def stored(self) -> set[int]:
        """Once every batch the caller accepted is named: the indexes (into the files
        given) of the files whose blobs are now in the store."""

    @abstractmethod
    async def settle(self) -> None:
        """Wait until the naming of every accepted batch has ended, however it ended:
        on an error path, so that copies that are good blobs are kept, not left behind."""


class Store(ABC):
    """Content-addressed storage for blobs and manifests; one per daemon.

    Methods are safe to call concurrently from one event loop. Writes are atomic (a
    reader sees a whole object or none) and idempotent (an object already present is
    not written again), so a daemon killed anywhere may simply repeat them.
    """

    url: str
    """Where the store is, as a URL (``file:///…``, ``s3://bucket/prefix``, …)."""

    reads_as_caller: ClassVar[bool] = False
    """Whether :meth:`put_blobs` can open sources with a caller's rights itself; where
    it cannot, another user's files must be copied into the daemon's keeping first."""

    local_blobs: ClassVar[bool] = False
    """Whether every blob is a file on this machine, at :meth:`local_path`: read in
    place, where another store's blobs are fetched (through a cache)."""

    async def has_blob(self, md5_hex: str) -> bool:
        """Whether the blob with this MD5 is in the store."""
        return md5_hex in await self.has_blobs([md5_hex])

    @abstractmethod
    async def has_blobs(self, md5_hexes: Sequence[str]) -> set[str]:
        """The subset of ``md5_hexes`` whose blobs are in the store."""

    async def put_blob(
        self, md5_hex: str, source: Path, size: int | None, *, move: bool = False
    ) -> bool:
        """Store the content of ``source`` as the blob ``md5_hex``.

        Returns False, writing nothing and leaving ``source`` alone, when the blob is
        already present. ``size`` is the size the caller hashed (None: unchecked); a
        source of another size raises :class:`SourceChangedError`. ``move=True`` says
        the caller owns ``source`` and the store may take it (rename it into place)
        instead of copying it. See the module docstring for which errors mean what.
        """
        return await self.put_blobs([BlobItem(md5_hex, source, size, move)]) == 1

    @abstractmethod
    async def put_blobs(self, items: Sequence[BlobItem], caller: CallerRights | None = None) -> int:
        """:meth:`put_blob` for many ``(md5_hex, source, size, move)`` at once.

        Returns how many blobs were newly written. On an error, the blobs stored before
        it stay stored (and are found by :meth:`has_blobs` on a retry). With ``caller``
        (only where :attr:`reads_as_caller`), each source is opened with that user's
        rights and copied, never moved, and each digest is checked by hashing.
        """

    def put_hashing(
        self,
        files: Sequence[tuple[str | Path, int | None]],
        caller: CallerRights | None = None,
        on_failure: Callable[[StoreUnavailableError], None] | None = None,
    ) -> HashingPut | None:
        """Store the files ``(path, size)`` in the read that hashes them (see
        :class:`HashingPut`), opened with ``caller``'s rights if given; ``size`` only
        sizes the batches. None, as here, where the store cannot: hash the files
        first, then :meth:`put_blobs` them."""
        return None

    def local_path(self, md5_hex: str) -> str | None:
        """The file holding the blob ``md5_hex``, to read (never to write: versions
        share it), where :attr:`local_blobs`; else None. Not checked to exist, and
        ``md5_hex`` is not checked either (it is asked once per file downloaded): pass
        a valid one (:func:`check_md5_hex`)."""
        return None

    @abstractmethod
    async def put_manifest(self, artifact_digest: str, data: bytes | bytearray) -> str:
        """Store a manifest's JSON under its artifact digest; returns its key.

        A manifest already stored under that digest is kept as it is: the digest
        identifies the content, and a committed version must not see its manifest change.
        """

    async def put_manifest_file(self, artifact_digest: str, path: Path) -> str:
        """:meth:`put_manifest` of the JSON in the file ``path`` (a manifest too big to
        build in memory). The stores here stream it; this default reads it whole."""
        data = await asyncio.to_thread(path.read_bytes)
        return await self.put_manifest(artifact_digest, data)

    @abstractmethod
    async def get_manifest(self, key: str) -> bytes:
        """The bytes of the manifest at ``key`` (:class:`ObjectNotFoundError` if absent)."""

    @abstractmethod
    async def sync(self) -> None:
        """Make everything written so far durable; the daemon calls it before a commit."""

    @abstractmethod
    async def cleanup_tmp(self) -> int:
        """Remove what interrupted writes left behind; returns how many objects.

        Called once when the daemon starts, before it writes anything.
        """

    def refuses_collection(self) -> StoreError | None:
        """Why garbage collection cannot list and delete this store from here, saying
        where it runs instead; None, as here, where it can."""
        return None

    @abstractmethod
    async def list_blobs(self) -> list[tuple[str, int, float]]:
        """Every blob as ``(md5_hex, size, mtime)``: what garbage collection looks at."""

    @abstractmethod
    async def delete_blobs(self, md5_hexes: Sequence[str]) -> None:
        """Remove these blobs (missing ones are ignored)."""

    @abstractmethod
    async def list_manifests(self) -> list[tuple[str, float]]:
        """Every manifest as ``(key, mtime)``."""

    @abstractmethod
    async def delete_manifests(self, keys: Sequence[str]) -> None:
        """Remove these manifests (missing ones are ignored)."""

    async def close(self) -> None:  # noqa: B027 - a hook, empty where there is nothing to close
        """Release connections and other resources; the store is unusable afterwards."""
