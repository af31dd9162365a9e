"""S3 multipart uploads that survive anything: checked parts, a journal, resumption.

A file of at least the threshold goes up in parts (both sizes are settings, handed
over when the store is opened; rules in :mod:`artisync.store.part_sizes`):

1. the journal (:mod:`artisync.store.journal`) is read: an upload of this blob begun
   by an earlier run (a daemon killed, a store outage) is checked against the server's
   ListParts, and every part the server holds with the right MD5 and size is kept;
   otherwise a new upload is created and journaled;
2. the missing parts go up concurrently, under the store's request bound: each is
   hashed by the Rust core (``_core.part_md5``, GIL released) just before it is
   streamed from the file (never read whole) with its ``Content-MD5``, so hashing one
   part overlaps sending others instead of delaying the first; each is journaled with
   its ETag once the server has it. Every part is hashed once, kept or sent, and their
   digests give the ETag the completed object must have;
3. if the file is unchanged (size and mtime), the upload is completed: the object
   appears whole, at once; the journal entry goes.

A failure of the store leaves the upload and its journal for the next attempt, which
sends only what is missing. A changed source aborts the upload.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import time
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import Any, Protocol

from artisync import _core, tracking
from artisync.crashpoints import crash_point
from artisync.errors import InvalidInputError
from artisync.logs import get_logger
from artisync.store.base import SourceChangedError, StoreUnavailableError
from artisync.store.journal import UploadJournal
from artisync.store.part_sizes import (
    DEFAULT_PART_SIZE,
    DEFAULT_THRESHOLD,
    MAX_PARTS,
    MIN_PART_SIZE,
    part_size_for,
)
from artisync.store.remote import content_changed, first_failure
from artisync.store.s3_direct import DirectRequests
from artisync.store.s3_errors import code_of, etag_matches, status_of
from artisync.store.source import SourceFile, SourceRange

__all__ = [
    "DEFAULT_PART_SIZE",
    "DEFAULT_THRESHOLD",
    "MAX_PARTS",
    "MIN_PART_SIZE",
    "STALE_UPLOAD_SECONDS",
    "MultipartUploader",
    "S3Requests",
    "multipart_etag",
]

log = get_logger("artisync.store")

STALE_UPLOAD_SECONDS = 7 * 24 * 3600.0
"""An unfinished upload untouched this long is aborted by ``cleanup_tmp``."""


class S3Requests(Protocol):
    """What an uploader asks of its bucket: an :class:`~artisync.store.s3.S3Store`,
    named by what it does so that the store can own its uploaders without a cycle."""

    url: str
    journal: UploadJournal
    concurrency: int

    @property
    def _requests(self) -> asyncio.Semaphore:
        """The running loop's bound on requests in flight."""

    async def call(self, operation: str, name: str, **params: Any) -> dict[str, Any]:
        """One botocore operation on the object ``name``, errors mapped."""

    async def _exists_unbounded(self, name: str) -> bool:
        """Whether the object ``name`` exists, outside the request bound."""

    def list_uploads(self, prefix: str | None = None) -> AsyncIterator[tuple[str, str, float]]:
        """Unfinished multipart uploads (of blobs, or under ``prefix``): ``(key, upload
        id, initiated)``."""

    async def direct(self) -> DirectRequests:
        """The running loop's signed requests sent straight over aiohttp."""

    def blob_object(self, md5_hex: str) -> str:
        """The object name of the blob ``md5_hex``."""


class MultipartUploader:
    """Uploads large blobs of one :class:`~artisync.store.s3.S3Store` in parts."""

    def __init__(self, store: S3Requests, threshold: int, part_size: int) -> None:
        if part_size < MIN_PART_SIZE:
            raise InvalidInputError(f"part_size must be at least 5 MiB, not {part_size}")
        if threshold < 1:
            raise InvalidInputError(f"multipart_threshold must be positive, not {threshold}")
        self.store = store
        self.threshold = threshold
        self.part_size = part_size
        self.parts_sent = 0  # parts uploaded by this process (tests count them)

    def part_size_for(self, size: int) -> int:
        """The configured part size, raised to keep ``size`` within 10,000 parts."""
        return part_size_for(size, self.part_size)

    async def upload(self, md5_hex: str, name: str, source: SourceFile) -> None:
        """Upload ``source`` as the object ``name``, resuming a journaled upload."""
        store, journal = self.store, self.store.journal
        entry = await asyncio.to_thread(journal.load, md5_hex, name)
        if entry is not None and entry.get("size") != source.size:
            await self._abort(name, entry.get("upload_id"))
            await asyncio.to_thread(journal.remove, md5_hex)
            entry = None
        part_size = int(entry["part_size"]) if entry else self.part_size_for(source.size)
        parts = PartPlan(source, part_size)
        upload_id, done = await self._resume(md5_hex, name, entry, parts)
        if upload_id is None:
            async with store._requests:
                created = await store.call("create_multipart_upload", name, Key=name)
            upload_id = str(created["UploadId"])
            done = {}
        state = {"upload_id": upload_id, "part_size": part_size, "size": source.size}
        saving = asyncio.Lock()

        async def save() -> None:
            async with saving:
                parts = {str(n): etag for n, etag in sorted(done.items())}
                await asyncio.to_thread(journal.save, md5_hex, name, {**state, "parts": parts})

        await save()
        missing = [n for n in range(1, parts.count + 1) if n not in done]

        async def send(number: int) -> bool:
            etag = await self._send_part(name, upload_id, number, parts)
            done[number] = etag
            await save()
            crash_point("after_part")
            return True

        try:
            await first_failure([send(n) for n in missing])
            await asyncio.to_thread(source.check_unchanged)
        except OSError:
            # The source's fault: this upload can never complete.
            await self._abort(name, upload_id)
            await asyncio.to_thread(journal.remove, md5_hex)
            raise
        await self._complete(md5_hex, name, upload_id, done, parts.etag())

    async def _send_part(self, name: str, upload_id: str, number: int, parts: PartPlan) -> str:
        source = parts.source
        body = SourceRange(source, parts.offset(number), parts.length(number))
        async with self.store._requests:
            # Hashed in its request slot: the parts in flight are the parts hashed.
            md5 = await parts.digest(number)
            try:
                answer = await self.store.call(
                    "upload_part",
                    name,
                    Key=name,
                    UploadId=upload_id,
                    PartNumber=number,
                    Body=body,
                    ContentMD5=md5,
                    ContentLength=body.length,
                )
            except StoreUnavailableError as e:
                if body.error is not None:
                    raise body.error from None
                if code_of(e) in ("BadDigest", "InvalidDigest"):
                    raise content_changed(str(source.path), source.size) from None
                raise
        self.parts_sent += 1
        tracking.bytes_stored(body.length)  # the submission's progress moves per part
        if not etag_matches(answer, base64.b64decode(md5).hex()):
            raise content_changed(str(source.path), source.size)
        return str(answer["ETag"])

    async def _resume(
        self,
        md5_hex: str,
        name: str,
        entry: dict[str, Any] | None,
        parts: PartPlan,
    ) -> tuple[str | None, dict[int, str]]:
        """The journaled upload id and the parts the server holds intact, or None."""
        if entry is None or not isinstance(entry.get("upload_id"), str):
            return None, {}
        upload_id = entry["upload_id"]
        try:
            listed = await self.list_parts(name, upload_id)
        except StoreUnavailableError as e:
            if code_of(e) != "NoSuchUpload" and status_of(e) != 404:
                raise
            await asyncio.to_thread(self.store.journal.remove, md5_hex)
            return None, {}
        done: dict[int, str] = {}
        for number, (etag, size) in listed.items():
            if not 1 <= number <= parts.count or size != parts.length(number):
                continue
            if etag.strip('"') == base64.b64decode(await parts.digest(number)).hex():
                done[number] = etag
        log.info("upload_resumed", key=name, parts_stored=len(done), parts=parts.count)
        return upload_id, done

    async def list_parts(self, name: str, upload_id: str) -> dict[int, tuple[str, int]]:
        """The parts the server holds of an upload: ``{number: (ETag, size)}``. moto
        answers whatever ``name`` is: :meth:`S3Store.list_uploads` tells whose it is."""
        parts: dict[int, tuple[str, int]] = {}
        params: dict[str, Any] = {"Key": name, "UploadId": upload_id, "MaxParts": 1000}
        while True:
            async with self.store._requests:
                page = await self.store.call("list_parts", name, **params)
            for p in page.get("Parts", ()):
                parts[int(p["PartNumber"])] = (str(p["ETag"]), int(p["Size"]))
            if not page.get("IsTruncated"):
                return parts
            params["PartNumberMarker"] = page["NextPartNumberMarker"]

    async def _complete(
        self, md5_hex: str, name: str, upload_id: str, done: dict[int, str], etag: str
    ) -> None:
        store = self.store
        try:
            answer = await self.complete_upload(name, upload_id, done)
        except StoreUnavailableError as e:
            code = code_of(e)
            if code == "NoSuchUpload" and await store._exists_unbounded(name):
                answer = {}  # completed by an attempt whose answer was lost
            elif code in ("NoSuchUpload", "InvalidPart", "InvalidPartOrder"):
                await asyncio.to_thread(store.journal.remove, md5_hex)
                raise
            else:
                raise
        got = str(answer.get("ETag", "")).strip('"')
        if got and got != etag:
            log.warning("unexpected_etag", key=name, etag=got, expected=etag)
        await asyncio.to_thread(store.journal.remove, md5_hex)

    async def complete_upload(
        self, name: str, upload_id: str, etags: dict[int, str], *, if_absent: bool = False
    ) -> dict[str, Any]:
        """Complete the upload ``upload_id`` of ``name`` from the parts ``{number:
        ETag}``; S3's answer. ``if_absent``: only if there is no object ``name`` yet
        (``If-None-Match: *``; else HTTP 412)."""
        parts = [{"PartNumber": n, "ETag": etags[n]} for n in sorted(etags)]
        condition = {"IfNoneMatch": "*"} if if_absent else {}
        async with self.store._requests:
            return await self.store.call(
                "complete_multipart_upload",
                name,
                Key=name,
                UploadId=upload_id,
                MultipartUpload={"Parts": parts},
                **condition,
            )

    async def abort(self, name: str, upload_id: str) -> None:
        """Abort the upload ``upload_id`` of ``name``; one S3 no longer knows is fine,
        and a failure is logged, not raised (S3's lifecycle rule sweeps what is left)."""
        await self._abort(name, upload_id)

    async def _abort(self, name: str, upload_id: object) -> bool:
        """Abort an upload (an unknown one is fine); whether the server agreed."""
        if not isinstance(upload_id, str):
            return False
        try:
            async with self.store._requests:
                await self.store.call("abort_multipart_upload", name, Key=name, UploadId=upload_id)
        except StoreUnavailableError as e:
            if code_of(e) == "NoSuchUpload" or status_of(e) == 404:
                return True
            log.warning("abort_failed", key=name, error=str(e))
            return False
        return True

    async def cleanup(self, stale_seconds: float) -> int:
        """Abort uploads that will not be finished; see ``S3Store.cleanup_tmp``."""
        store, journal = self.store, self.store.journal
        removed = 0
        now = time.time()
        known: set[str] = set()
        try:
            for md5_hex, entry in list(journal.entries()):
                name, upload_id = str(entry.get("key")), entry.get("upload_id")
                finished = await store._exists_unbounded(name)
                if finished or now - float(entry.get("updated", 0)) > stale_seconds:
                    if await self._abort(name, upload_id):
                        await asyncio.to_thread(journal.remove, md5_hex)
                        removed += 1
                elif isinstance(upload_id, str):
                    known.add(upload_id)
            async for key, upload_id, initiated in store.list_uploads():
                if upload_id not in known and now - initiated > stale_seconds:
                    removed += await self._abort(key, upload_id)
        except StoreUnavailableError as e:
            log.warning("upload_cleanup_stopped", store=store.url, error=str(e))
        return removed


class PartPlan:
    """The parts of one file: where each lies, and its MD5, taken once, when first
    needed (to check a part the server kept, or just before sending one)."""

    def __init__(self, source: SourceFile, part_size: int) -> None:
        self.source = source
        self.part_size = part_size
        self.count = max(1, -(-source.size // part_size))
        self._digests: dict[int, str] = {}

    def offset(self, number: int) -> int:
        return (number - 1) * self.part_size

    def length(self, number: int) -> int:
        return min(self.part_size, self.source.size - self.offset(number))

    async def digest(self, number: int) -> str:
        """Part ``number``'s base64 MD5 (for ``Content-MD5``)."""
        if number not in self._digests:
            path, offset, length = self.source.path, self.offset(number), self.length(number)
            try:
                md5 = await asyncio.to_thread(_core.part_md5, path, offset, length)
            except OSError:
                now = await asyncio.to_thread(_size_now, path)
                if now != self.source.size:
                    raise SourceChangedError(path, self.source.size, now) from None
                raise
            self._digests[number] = md5
        return self._digests[number]

    def etag(self) -> str:
        """The ETag S3 gives the completed upload (every part hashed by now): the hex MD5
        of the raw part digests, a dash, the part count."""
        return multipart_etag(base64.b64decode(self._digests[n]) for n in range(1, self.count + 1))


def multipart_etag(part_digests: Iterable[bytes]) -> str:
    """The ETag S3 gives an upload completed from parts with these raw MD5s, in order:
    the hex MD5 of the digests one after the other, a dash, how many there are."""
    raw = list(part_digests)
    return f"{hashlib.md5(b''.join(raw), usedforsecurity=False).hexdigest()}-{len(raw)}"


def _size_now(path: str | Path) -> int:
    try:
        return os.stat(path).st_size
    except FileNotFoundError:
        return 0
