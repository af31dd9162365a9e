"""Large uploads through a server's grants, resumed after anything: S3 parts, GCS sessions.

**S3 parts** (:func:`upload_in_parts`). The grant needs every part's MD5 up front, so the
file is hashed part by part first (the Rust core, in parallel, GIL released), with the
server's part size: every node cuts a blob alike, and a completion counts only with the
same parts. The server creates the multipart upload; its id goes in the journal
(:mod:`artisync.store.journal`, with the part MD5s, the size and mtime they were taken
at). Each missing part is then streamed with the headers its URL signs; S3 checks its
``Content-MD5``, and its ETag is checked here too (moto checks nothing). Last, if the
file is unchanged, the server completes the upload. After a crash the journaled id is
asked for again: the server lists the parts the bucket holds and signs URLs only for the
others. URLs about to expire are renewed the same way, mid-upload.

**GCS sessions** (:func:`upload_in_session`). The session URI is the grant; chunks of
the node's ``part_size`` (multiples of 256 KiB) go with ``Content-Range``, and each 308
says where the session stands, which is journaled. After a crash the session is asked
where it stands (``Content-Range: bytes */SIZE``) and sending goes on from there. An
emulator that finishes the object on that question (fake-gcs-server) leaves an object
that is not the blob: a new grant replaces it (the server's session replaces exactly the
generation it saw). A session GCS no longer knows (404, 410) is asked for again.

Manifests take a session too, where 412 (already there) is success.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

import aiohttp

from artisync import _core, tracking
from artisync.crashpoints import crash_point
from artisync.errors import InvalidInputError
from artisync.logs import get_logger
from artisync.store.base import StoreUnavailableError, md5_base64
from artisync.store.granted_transfers import Answer, Body, check_put, send, session_offset
from artisync.store.grants import (
    BlobSpec,
    PartGrant,
    PartsGrant,
    PutGrant,
    SessionGrant,
    UploadGrant,
)
from artisync.store.journal import UploadJournal
from artisync.store.project_scope import ProjectScope
from artisync.store.remote import content_changed, first_failure
from artisync.store.source import SourceFile, SourceRange

__all__ = [
    "RENEW_BEFORE",
    "GrantedRequests",
    "Piece",
    "SessionGoneError",
    "upload_blob_in_session",
    "upload_in_parts",
    "upload_in_session",
    "upload_manifest",
]

log = get_logger("artisync.store")

RENEW_BEFORE = 60.0
"""Seconds before its expiry a grant is asked for again rather than used."""


class GrantedRequests(Protocol):
    """What an upload asks of its :class:`~artisync.store.granted.GrantedStore`, named
    by what it does so that the store can own its uploads without a cycle."""

    url: str
    journal: UploadJournal

    @property
    def _requests(self) -> asyncio.Semaphore:
        """The running loop's bound on requests in flight."""

    async def http(self) -> aiohttp.ClientSession:
        """The running loop's HTTP session (no credentials)."""

    def blob_object(self, md5_hex: str) -> str:
        """The object name of the blob ``md5_hex`` (the journal's key)."""

    async def ask(
        self, scope: ProjectScope, blob: BlobSpec, upload_id: str | None = None
    ) -> UploadGrant | None:
        """A grant for one blob (None: stored); ``upload_id`` resumes that upload."""

    async def complete(self, scope: ProjectScope, blob: BlobSpec, upload_id: str) -> None:
        """Ask the server to complete the multipart upload ``upload_id``."""


@dataclass(frozen=True, slots=True)
class Piece:
    """What a session sends bytes of: a source file, or bytes in memory (a manifest)."""

    size: int
    source: SourceFile | None = None
    data: bytes = b""

    def body(self, offset: int, length: int) -> Body:
        if self.source is not None:
            return SourceRange(self.source, offset, length)
        return self.data[offset : offset + length]

    def check_unchanged(self) -> None:
        if self.source is not None:
            self.source.check_unchanged()

    @property
    def path(self) -> str:
        return str(self.source.path) if self.source is not None else "the manifest"


# -- S3 parts ------------------------------------------------------------------------------


async def upload_in_parts(
    store: GrantedRequests, scope: ProjectScope, md5_hex: str, source: SourceFile, part_size: int
) -> bool:
    """Upload ``source`` as the blob ``md5_hex`` in parts; False if the server says the
    caller holds it already."""
    name = store.blob_object(md5_hex)
    entry = await asyncio.to_thread(store.journal.load, md5_hex, name)
    if not _same_file(entry, source, part_size):
        entry = None
    if entry is not None:
        part_md5s = tuple(entry["part_md5s"])
    else:
        digests = await asyncio.to_thread(_core.part_md5s, source.path, part_size)
        part_md5s = tuple(base64.b64decode(d).hex() for d in digests.parts)
    blob = BlobSpec(md5_hex, source.size, part_size, part_md5s)
    upload_id = entry.get("upload_id") if entry is not None else None
    grant = await _grant_resuming(store, scope, blob, upload_id)
    if grant is None:
        await asyncio.to_thread(store.journal.remove, md5_hex)
        return False
    if not isinstance(grant, PartsGrant):
        raise InvalidInputError(f"{blob.describe()}: the server granted no parts: {grant!r}")
    if grant.upload_id != upload_id:
        record = {
            "upload_id": grant.upload_id,
            "part_size": part_size,
            "size": source.size,
            "mtime_ns": source.mtime_ns,
            "part_md5s": list(part_md5s),
        }
        await asyncio.to_thread(store.journal.save, md5_hex, name, record)
    else:
        held = len(part_md5s) - len(grant.parts)
        log.info("upload_resumed", key=name, parts_stored=held, parts=len(part_md5s))
    try:
        await _send_parts(store, scope, blob, grant, source)
        await asyncio.to_thread(source.check_unchanged)
    except OSError:
        # The source's fault: this upload can never complete (the server aborts it
        # with the others nobody finishes).
        await asyncio.to_thread(store.journal.remove, md5_hex)
        raise
    try:
        await store.complete(scope, blob, grant.upload_id)
    except InvalidInputError:
        # Refused for good (parts not as declared, or the blob there from other parts):
        # the next attempt starts a new upload.
        await asyncio.to_thread(store.journal.remove, md5_hex)
        raise
    await asyncio.to_thread(store.journal.remove, md5_hex)
    return True


def _same_file(entry: dict[str, Any] | None, source: SourceFile, part_size: int) -> bool:
    """Whether a journal entry was taken of this very file (its part MD5s still hold)."""
    return (
        entry is not None
        and isinstance(entry.get("upload_id"), str)
        and isinstance(entry.get("part_md5s"), list)
        and entry.get("size") == source.size
        and entry.get("mtime_ns") == source.mtime_ns
        and entry.get("part_size") == part_size
    )


async def _grant_resuming(
    store: GrantedRequests, scope: ProjectScope, blob: BlobSpec, upload_id: str | None
) -> UploadGrant | None:
    """The grant, resuming ``upload_id`` if the server still has that upload, else
    starting anew (the upload completed, was aborted, or is too old)."""
    if upload_id is not None:
        try:
            return await store.ask(scope, blob, upload_id)
        except InvalidInputError as e:
            log.info("upload_restarted", key=store.blob_object(blob.md5_hex), why=str(e))
    return await store.ask(scope, blob)


async def _send_parts(
    store: GrantedRequests,
    scope: ProjectScope,
    blob: BlobSpec,
    grant: PartsGrant,
    source: SourceFile,
) -> None:
    """Send every part ``grant`` has a URL for, renewing the URLs about to expire."""
    urls = {p.number: p for p in grant.parts}
    expires = [grant.expires_at]
    renewing = asyncio.Lock()

    async def renewed(number: int) -> PartGrant | None:
        async with renewing:
            if expires[0] - time.time() < RENEW_BEFORE:
                fresh = await store.ask(scope, blob, grant.upload_id)
                if not isinstance(fresh, PartsGrant):
                    return None  # completed meanwhile (its answer lost): nothing to send
                urls.clear()
                urls.update({p.number: p for p in fresh.parts})
                expires[0] = fresh.expires_at
        return urls.get(number)  # gone: the bucket holds it already

    async def one(number: int) -> bool:
        async with store._requests:
            part = await renewed(number)
            if part is None:
                return False
            assert blob.part_size is not None
            offset = (number - 1) * blob.part_size
            length = blob.part_length(number)
            http = await store.http()
            answer = await send(
                http,
                "PUT",
                part.url,
                where=f"{store.url} part {number} of {blob.md5_hex}",
                headers=part.headers,
                body=SourceRange(source, offset, length),
            )
            check_put(answer, blob.part_md5s[number - 1], source, f"part {number}", store.url)
        tracking.bytes_stored(length)
        crash_point("after_part")
        return True

    await first_failure([one(p.number) for p in grant.parts])


# -- manifests -----------------------------------------------------------------------------


async def upload_manifest(
    store: GrantedRequests,
    scope: ProjectScope,
    md5_hex: str,
    piece: Piece,
    grant: UploadGrant | None,
    *,
    chunk_size: int,
) -> None:
    """Send a manifest through its grant, which can only create it: a manifest there
    already is kept, and that is success (412)."""
    if isinstance(grant, SessionGrant):
        await upload_in_session(
            store, scope, md5_hex, piece, grant, chunk_size=chunk_size, journal_key=None,
            exists_ok=True,
        )  # fmt: skip
        return
    if not isinstance(grant, PutGrant):
        raise StoreUnavailableError(store.url, f"the server granted no manifest upload: {grant!r}")
    async with store._requests:
        answer = await send(
            await store.http(), "PUT", grant.url, where=store.url, headers=grant.headers,
            body=piece.body(0, piece.size),
        )  # fmt: skip
    if answer.status == 412:
        return
    if piece.source is not None:
        check_put(answer, md5_hex, piece.source, "the manifest's PUT", store.url)
    elif not answer.ok:
        raise StoreUnavailableError(store.url, f"a manifest's PUT: {answer.describe()}")


# -- GCS sessions --------------------------------------------------------------------------


async def upload_blob_in_session(
    store: GrantedRequests,
    scope: ProjectScope,
    md5_hex: str,
    source: SourceFile,
    grant: SessionGrant,
    *,
    chunk_size: int,
) -> bool:
    """Send the blob ``md5_hex`` through the session of ``grant``, resuming it where a
    crash left it; a session that can take it no more is replaced by a new grant."""
    name = store.blob_object(md5_hex)
    piece = Piece(source.size, source)
    try:
        return await upload_in_session(
            store, scope, md5_hex, piece, grant, chunk_size=chunk_size, journal_key=name
        )
    except SessionGoneError as e:
        log.info("upload_restarted", key=name, why=e.reason)
    fresh = await store.ask(scope, BlobSpec(md5_hex, source.size))
    if fresh is None:
        return False  # held meanwhile
    if not isinstance(fresh, SessionGrant):
        raise InvalidInputError(f"blob {md5_hex}: the server granted no session: {fresh!r}")
    return await upload_in_session(
        store, scope, md5_hex, piece, fresh, chunk_size=chunk_size, journal_key=name
    )


async def upload_in_session(
    store: GrantedRequests,
    scope: ProjectScope,
    md5_hex: str,
    piece: Piece,
    grant: SessionGrant,
    *,
    chunk_size: int,
    journal_key: str | None,
    exists_ok: bool = False,
) -> bool:
    """Send ``piece`` through the session of ``grant`` (resuming one journaled under
    ``journal_key``, when given, from where the session stands); True once the object is
    complete. ``exists_ok``: a 412 (the object is there already) is success, as for a
    manifest; for a blob it means another writer came between, and a new grant is asked.
    """
    md5 = md5_base64(md5_hex)
    offset = 0
    if journal_key is not None:
        entry = await asyncio.to_thread(store.journal.load, md5_hex, journal_key)
        if entry is not None and entry.get("session") == grant.url:
            offset, done = await _where(store, grant, piece, md5)
            if done:
                await asyncio.to_thread(store.journal.remove, md5_hex)
                return True
            log.info("upload_resumed", key=journal_key, offset=offset, size=piece.size)

    async def save(committed: int) -> None:
        if journal_key is not None:
            record: dict[str, Any] = {"session": grant.url, "size": piece.size, "offset": committed}
            await asyncio.to_thread(store.journal.save, md5_hex, journal_key, record)

    try:
        done = await _send_chunks(store, grant, piece, md5, offset, chunk_size, save, exists_ok)
    except StoreUnavailableError as e:
        if journal_key is not None and isinstance(e, SessionGoneError):
            await asyncio.to_thread(store.journal.remove, md5_hex)
        raise  # else kept: the next attempt asks the session where it stands
    except OSError:
        if journal_key is not None:
            await asyncio.to_thread(store.journal.remove, md5_hex)
        raise
    if journal_key is not None:
        await asyncio.to_thread(store.journal.remove, md5_hex)
    return done


class SessionGoneError(StoreUnavailableError):
    """The session cannot take the object any more (GCS no longer knows it, or an
    emulator finished it short): a new grant is needed."""


async def _send_chunks(
    store: GrantedRequests,
    grant: SessionGrant,
    piece: Piece,
    md5: str,
    offset: int,
    chunk_size: int,
    save: Callable[[int], Awaitable[None]],
    exists_ok: bool,
) -> bool:
    size = piece.size
    while True:
        end = min(offset + chunk_size, size)
        if end == size:
            # The last chunk makes the object visible: the file must be as hashed.
            await asyncio.to_thread(piece.check_unchanged)
        span = f"{offset}-{end - 1}" if end > offset else "*"
        headers = {"Content-Range": f"bytes {span}/{size}", "Content-Length": str(end - offset)}
        async with store._requests:
            http = await store.http()
            answer = await send(
                http,
                "PUT",
                grant.url,
                where=store.url,
                headers=headers,
                body=piece.body(offset, end - offset),
            )
        tracking.bytes_stored(end - offset)
        if answer.status in (200, 201):
            if not _is_blob(answer, piece, md5):
                raise content_changed(piece.path, size)
            return True
        if answer.status == 412:
            if exists_ok:
                return True
            raise StoreUnavailableError(
                store.url, "the object was written by another upload meanwhile: ask again"
            )
        if answer.status in (404, 410):
            raise SessionGoneError(store.url, "the upload session is gone: a new one is asked for")
        if answer.status != 308:
            if answer.status == 400 and "md5" in answer.text.lower():
                raise content_changed(piece.path, size)
            raise StoreUnavailableError(store.url, f"a chunk was refused: {answer.describe()}")
        committed = session_offset(answer)
        if committed <= offset:
            raise StoreUnavailableError(store.url, "the session kept nothing of a chunk")
        offset = committed
        await save(offset)
        crash_point("after_part")


async def _where(
    store: GrantedRequests, grant: SessionGrant, piece: Piece, md5: str
) -> tuple[int, bool]:
    """Where a journaled session stands: ``(offset, complete)``."""
    async with store._requests:
        http = await store.http()
        headers = {"Content-Range": f"bytes */{piece.size}", "Content-Length": "0"}
        answer = await send(http, "PUT", grant.url, where=store.url, headers=headers, body=b"")
    if answer.status == 308:
        return session_offset(answer), False
    if answer.status in (200, 201) and _is_blob(answer, piece, md5):
        return piece.size, True
    if answer.status in (200, 201, 404, 410):
        # Finished short by the question itself (fake-gcs-server), or unknown.
        raise SessionGoneError(store.url, "the upload session is gone: a new one is asked for")
    raise StoreUnavailableError(store.url, f"asking a session where it stands: {answer.describe()}")


def _is_blob(answer: Answer, piece: Piece, md5: str) -> bool:
    """Whether the object a session finished is the blob (its MD5 and size)."""
    try:
        found = json.loads(answer.text)
    except ValueError:
        return False
    if not isinstance(found, dict):
        return False
    return found.get("md5Hash") in (None, md5) and str(found.get("size", piece.size)) == str(
        piece.size
    )
