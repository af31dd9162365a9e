"""GCS resumable uploads of our own: chunked, journaled, resumed where the server is.

gcloud-aio-storage's resumable upload sends the whole file from memory and, when
interrupted, starts again from zero. Here a large blob goes up as GCS's protocol
intends:

1. a session is started (``uploadType=resumable``) with the blob's ``md5Hash`` in its
   metadata (GCS checks the finished object against it) and ``ifGenerationMatch=0``;
   its URI is journaled (:mod:`artisync.store.journal`);
2. chunks (multiples of 256 KiB) are streamed from the file with ``Content-Range``;
   each answer (308) says how many bytes the server has committed, which is where the
   next chunk starts, and is journaled;
3. the last chunk completes the object, which appears whole at once; its MD5 is
   checked and the journal entry goes.

After a failed chunk the session's status is asked (``Content-Range: bytes */size``)
and sending goes on from the server's committed offset. After a daemon restart, the
journaled offset (the server's own last answer) is where sending resumes, and the
server's answer to that chunk corrects it if the server has more. A session the
server no longer knows (404/410: expired, or an emulator restarted) starts over.

fake-gcs-server, the emulator of the tests, finishes an upload on a status query
(fsouza/fake-gcs-server#1149); that is why a restart resumes from the journal rather
than asking first. If it happens anyway, the MD5 check removes the short object.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar

import aiohttp

from artisync import tracking
from artisync.crashpoints import crash_point
from artisync.errors import InvalidInputError
from artisync.logs import get_logger
from artisync.store.base import SourceChangedError, StoreUnavailableError
from artisync.store.gcs_errors import raise_for_status
from artisync.store.journal import UploadJournal
from artisync.store.part_sizes import DEFAULT_PART_SIZE, PART_QUANTUM
from artisync.store.source import SourceFile, SourceRange

__all__ = ["DEFAULT_CHUNK_SIZE", "GCSRequests", "ResumableUploader", "open_session"]

log = get_logger("artisync.store")

DEFAULT_CHUNK_SIZE = DEFAULT_PART_SIZE
_QUANTUM = PART_QUANTUM
_STALE_SECONDS = 6 * 24 * 3600.0  # GCS expires sessions after a week


class _Gone(Exception):
    """The server does not know the session (any more)."""


_T = TypeVar("_T")


class GCSRequests(Protocol):
    """What an uploader asks of its bucket: a :class:`~artisync.store.gcs.GCSStore`,
    named by what it does so that the store can own its uploader without a cycle."""

    url: str
    journal: UploadJournal

    @property
    def _requests(self) -> asyncio.Semaphore:
        """The running loop's bound on requests in flight."""

    async def session(self) -> aiohttp.ClientSession:
        """The running loop's HTTP session."""

    async def headers(self) -> dict[str, str]:
        """The authorisation headers of a request now."""

    def upload_url(self) -> str:
        """Where resumable sessions are opened."""

    async def call(self, name: str, attempt: Callable[[], Awaitable[_T]]) -> _T:
        """``attempt`` retried while it fails transiently, errors mapped."""

    async def check_md5(
        self, name: str, metadata: dict[str, Any], md5: str, source: SourceFile
    ) -> None:
        """Raise unless the object ``name`` holds what ``source`` held."""

    async def delete_object(self, name: str, generation: str | None = None) -> None:
        """Remove the object ``name`` (of that generation only, if given)."""

    async def _exists(self, name: str) -> bool:
        """Whether the object ``name`` exists."""


class ResumableUploader:
    """Uploads large blobs of one :class:`~artisync.store.gcs.GCSStore` in chunks."""

    def __init__(self, store: GCSRequests, threshold: int, chunk_size: int) -> None:
        if chunk_size < _QUANTUM or chunk_size % _QUANTUM:
            raise InvalidInputError(f"chunk_size must be a multiple of 256 KiB, not {chunk_size}")
        if threshold < 1:
            raise InvalidInputError(f"resumable_threshold must be positive, not {threshold}")
        self.store = store
        self.threshold = threshold
        self.chunk_size = chunk_size
        self.chunks_sent = 0  # chunks sent by this process (tests count them)

    async def upload(self, md5_hex: str, name: str, source: SourceFile, md5: str) -> None:
        """Upload ``source`` as the object ``name``, resuming a journaled session."""
        journal = self.store.journal
        entry = await asyncio.to_thread(journal.load, md5_hex, name)
        resumed = bool(
            entry and entry.get("size") == source.size and isinstance(entry.get("session"), str)
        )
        if entry and resumed:
            session, offset = entry["session"], int(entry.get("offset", 0))
            log.info("upload_resumed", key=name, offset=offset, size=source.size)
        else:
            session, offset = await self._start(md5_hex, name, source, md5), 0
        while True:
            try:
                done = await self._send_from(md5_hex, name, session, offset, source, md5)
                await asyncio.to_thread(journal.remove, md5_hex)
                if done is not None:
                    await self.store.check_md5(name, done, md5, source)
                return
            except _Gone:
                log.info("upload_restarted", key=name, why="the upload session is gone")
            except SourceChangedError:
                if not resumed:
                    raise
                # A server that took a chunk the journal did not know of (a kill right
                # after sending it) and appended it again: start once from zero.
                log.warning("upload_restarted", key=name, why="the resumed upload came out wrong")
            resumed = False
            session, offset = await self._start(md5_hex, name, source, md5), 0

    async def _start(self, md5_hex: str, name: str, source: SourceFile, md5: str) -> str:
        store = self.store
        uri = await open_session(store, name, md5, source.size)
        entry = {"session": uri, "size": source.size, "offset": 0, "chunk": self.chunk_size}
        await asyncio.to_thread(store.journal.save, md5_hex, name, entry)
        return uri

    async def _send_from(
        self, md5_hex: str, name: str, session: str, offset: int, source: SourceFile, md5: str
    ) -> dict[str, Any] | None:
        """Send chunks from ``offset`` until the object is complete; its metadata
        (None if the object existed already)."""
        while True:
            end = min(offset + self.chunk_size, source.size)
            if end == source.size:
                # The last chunk makes the object visible: the file must be as hashed.
                await asyncio.to_thread(source.check_unchanged)
            try:
                status, answer = await self._put(session, source, offset, end)
                self.chunks_sent += 1
                tracking.bytes_stored(end - offset)  # the submission's progress moves per chunk
            except StoreUnavailableError:
                # Where is the server? Journal it, and let the daemon retry from there.
                status, answer = await self._ask(session, source.size)
                if status == 308:
                    await self._journal(md5_hex, name, session, source.size, answer["offset"])
                    raise
                if status in (200, 201) and answer.get("md5Hash") not in (None, md5):
                    # Finished short by the status query (fake-gcs-server): not the
                    # blob; remove it and start over.
                    await self.store.delete_object(name, str(answer.get("generation", "")))
                    await asyncio.to_thread(self.store.journal.remove, md5_hex)
                    raise
            if status in (200, 201):
                return dict(answer)
            if status == 412:
                return None
            committed = int(answer["offset"])
            if committed <= offset and end > offset:
                log.warning("chunk_not_kept", key=name, first=offset, last=end - 1)
            offset = committed
            await self._journal(md5_hex, name, session, source.size, offset)
            crash_point("after_part")

    async def _journal(self, md5_hex: str, name: str, session: str, size: int, offset: int) -> None:
        entry = {"session": session, "size": size, "offset": offset, "chunk": self.chunk_size}
        await asyncio.to_thread(self.store.journal.save, md5_hex, name, entry)

    async def _put(
        self, session: str, source: SourceFile, start: int, end: int
    ) -> tuple[int, dict[str, Any]]:
        """PUT bytes ``start``-``end`` of the file; the status and what it says."""
        store = self.store
        http = await store.session()
        body = SourceRange(source, start, end - start)
        total = source.size

        async def attempt() -> tuple[int, dict[str, Any]]:
            body.seek(0)
            span = f"{start}-{end - 1}" if end > start else "*"
            content_range = f"bytes {span}/{total}"
            headers = {
                **await store.headers(),
                "Content-Range": content_range,
                "Content-Length": str(end - start),
            }
            async with http.put(session, data=body, headers=headers) as response:
                return await _answer(response)

        async with store._requests:
            try:
                return await store.call(session, attempt)
            except StoreUnavailableError:
                if body.error is not None:
                    raise body.error from None
                raise

    async def _ask(self, session: str, size: int) -> tuple[int, dict[str, Any]]:
        """The session's status: 308 with the committed ``offset``, or done."""
        store = self.store
        http = await store.session()

        async def attempt() -> tuple[int, dict[str, Any]]:
            headers = {**await store.headers(), "Content-Range": f"bytes */{size}"}
            async with http.put(session, data=b"", headers=headers) as response:
                return await _answer(response)

        async with store._requests:
            return await store.call(session, attempt)

    async def cleanup(self) -> int:
        """Drop journal entries whose blob is stored or whose session is stale."""
        store, journal = self.store, self.store.journal
        removed = 0
        now = time.time()
        try:
            for md5_hex, entry in list(journal.entries()):
                stale = now - float(entry.get("updated", 0)) > _STALE_SECONDS
                if stale or await store._exists(str(entry.get("key"))):
                    await asyncio.to_thread(journal.remove, md5_hex)
                    removed += 1
        except StoreUnavailableError as e:
            log.warning("upload_cleanup_stopped", store=store.url, error=str(e))
        return removed


async def open_session(
    store: GCSRequests,
    name: str,
    md5: str,
    size: int,
    *,
    generation: int = 0,
    metadata: dict[str, str] | None = None,
) -> str:
    """Open a resumable session for the object ``name`` of ``size`` bytes whose base64
    MD5 is ``md5`` (GCS refuses to finish it with other bytes), with custom
    ``metadata``; its URI. The URI alone lets anyone send the bytes: it is the
    capability a server hands to a node (:mod:`artisync.store.gcs_grants`).

    The session may only create the object (``generation`` 0, ``ifGenerationMatch=0``)
    or replace that very generation of it; otherwise GCS answers HTTP 412
    (``status_of``)."""
    session = await store.session()
    resource: dict[str, object] = {
        "name": name,
        "md5Hash": md5,
        "contentType": "application/octet-stream",
    }
    if metadata:
        resource["metadata"] = metadata
    meta = json.dumps(resource)
    params = {"uploadType": "resumable", "ifGenerationMatch": str(generation)}

    async def attempt() -> str:
        headers = {
            **await store.headers(),
            "Content-Type": "application/json; charset=UTF-8",
            "X-Upload-Content-Type": "application/octet-stream",
            "X-Upload-Content-Length": str(size),
        }
        async with session.post(
            store.upload_url(), params=params, data=meta, headers=headers
        ) as response:
            await raise_for_status(response)
            return str(response.headers["Location"])

    async with store._requests:
        return await store.call(name, attempt)


async def _answer(response: aiohttp.ClientResponse) -> tuple[int, dict[str, Any]]:
    """A chunk's answer: (200 or 201, metadata), (308, {"offset": committed}) or
    (412, {}); :class:`_Gone` for 404/410; else an HTTP error."""
    status = response.status
    if status in (200, 201):
        return status, dict(await response.json(content_type=None))
    if status == 308:
        # "bytes=0-N": N is the last byte committed; no header: nothing yet.
        last = response.headers.get("Range", "").rpartition("-")[2]
        return status, {"offset": int(last) + 1 if last.isdigit() else 0}
    if status == 412:
        return status, {}
    if status in (404, 410):
        raise _Gone()
    await raise_for_status(response)
    raise AssertionError("unreachable")
