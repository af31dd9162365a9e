"""The team's bucket, reached through its server's grants: a node with no bucket credentials.

A registry server that serves a bucket (``artisync server --store s3://…``) hands out
presigned transfers (:mod:`artisync.server.routes_transfers`); a :class:`GrantedStore` is
that bucket as a node sees it. Its :attr:`~GrantedStore.url` is the bucket's, so the
versions it writes record ``s3://…`` or ``gs://…`` as any other store's would, and a
reader anywhere finds them. JSON calls go through the HTTP registry's transport (so they
carry the key :func:`~artisync.registry.http.acting.acting_as` sets), the bytes straight
to the bucket (:mod:`artisync.store.granted_transfers`).

- **Writes are for a project** (:func:`~artisync.store.project_scope.writing_for`): the
  server grants uploads only to a caller who may write it.
- :meth:`~GrantedStore.put_blobs` asks grants for up to 1,000 blobs at a time and sends
  only those the server does not answer ``stored`` (a blob the caller may read in a
  committed version, or uploaded themselves in parts): the same blob logged again goes
  up once. Blobs from the server's multipart threshold go up in parts, each granted on
  its own when its turn comes (:mod:`artisync.store.granted_uploads`, which also resumes
  them after a crash). At most ``concurrency`` requests are in flight.
- :meth:`~GrantedStore.has_blobs`: the blobs the caller may read in a committed version
  (the server's download grants): what a digest alone cannot prove.
- Reads: a manifest through ``GET /api/v1/manifests``, a blob through a download grant,
  asked for many blobs at once (the reads that wait together share one request).
- Garbage collection lists and deletes the bucket, which needs its credentials: it runs
  where they are (:class:`NotCollectedHereError`).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

import aiohttp

from artisync import _core, tracking
from artisync.errors import InvalidInputError, NotFoundError
from artisync.logs import get_logger
from artisync.registry.http.transport import Transport
from artisync.store.base import (
    BlobItem,
    CallerRights,
    ObjectNotFoundError,
    StoreAccessError,
    StoreUnavailableError,
    blob_key,
    check_manifest_key,
    check_md5_hex,
    manifest_key,
)
from artisync.store.grant_wire import grant_from_json, spec_to_json
from artisync.store.granted_reads import DownloadUrls
from artisync.store.granted_transfers import check_put, fetch_bytes, fetch_into, send
from artisync.store.granted_uploads import (
    RENEW_BEFORE,
    Piece,
    upload_blob_in_session,
    upload_in_parts,
    upload_manifest,
)
from artisync.store.grants import BlobSpec, PutGrant, SessionGrant, UploadGrant
from artisync.store.journal import UploadJournal
from artisync.store.part_sizes import DEFAULT_PART_SIZE, SINGLE_PUT_MAX, part_size_for
from artisync.store.project_scope import ProjectScope, project_written
from artisync.store.remote import DEFAULT_CONCURRENCY, RemoteStore, first_failure, parse_bucket_url
from artisync.store.served import ServedStore
from artisync.store.source import SourceFile, SourceRange, open_file, open_source

__all__ = ["MAX_GRANTS", "GrantedStore", "NotCollectedHereError"]

log = get_logger("artisync.store")

MAX_GRANTS: Final = 1000
"""Blobs one grant request names: the server's bound."""

_STALE_SECONDS: Final = 7 * 24 * 3600.0  # the server aborts multipart uploads this old
_SMALL: Final = 1 << 20  # a file up to this is read at once, a larger one streamed
_READ_GROUP: Final = 32  # small files read in one thread hop

Granted = tuple[BlobItem, int, UploadGrant | None]
"""A blob, its size, and its grant (None: the caller holds it already)."""


class NotCollectedHereError(StoreAccessError):
    """Garbage collection of a bucket this node reaches only through grants: listing
    and deleting need the bucket's credentials, which only the server host has."""

    def __init__(self, url: str, server: str) -> None:
        super().__init__(
            f"the store {url} is the bucket the server {server} serves, reached from here "
            "through its grants, with no bucket credentials: garbage collection of it runs "
            "where they are, e.g. on the server host: `artisync gc` in a home whose "
            f'config.toml sets store = "{url}" and registry = "{server}", with a site '
            "admin's key and no daemon running on that home"
        )


class GrantedStore(RemoteStore):
    """The bucket ``served`` names, reached through its server's grants.

    Args:
        served: What the server said of its store (presigned transfers).
        transport: The JSON transport to that server (the caller's key).
        state_dir: Where the journal of unfinished uploads lives (on the node).
        concurrency: Requests in flight to the bucket at once.
        chunk_size: Bytes per chunk of a GCS session (a multiple of 256 KiB). S3 parts
            are the server's size: every node cuts a blob alike.
    """

    def __init__(
        self,
        served: ServedStore,
        transport: Transport,
        *,
        state_dir: Path,
        concurrency: int = DEFAULT_CONCURRENCY,
        chunk_size: int = DEFAULT_PART_SIZE,
    ) -> None:
        if not served.presigned or served.url is None:
            raise InvalidInputError(f"the server {served.server} hands out no grants")
        super().__init__(parse_bucket_url(served.url), concurrency)
        self.served = served
        self.server = served.server
        self.chunk_size = chunk_size
        self.journal = UploadJournal(state_dir, self.url)
        self._transport = transport
        self._urls = DownloadUrls(self._download_urls)

    # -- the clients ---------------------------------------------------------------------

    async def _open_client(self, stack: contextlib.AsyncExitStack) -> aiohttp.ClientSession:
        session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=self.concurrency + 8),
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=120),
        )
        stack.push_async_callback(session.close)
        return session

    async def http(self) -> aiohttp.ClientSession:
        """The running loop's HTTP session: plain requests, no credentials."""
        session: aiohttp.ClientSession = await self.loop_client()
        return session

    async def close(self) -> None:
        await super().close()
        self._transport.close()

    async def _call(
        self, method: str, path: str, *, body: Any = None, query: dict[str, str] | None = None
    ) -> Any:
        """One JSON call to the server, on a worker thread (the transport blocks), with
        the context's key (:func:`~artisync.registry.http.acting.acting_as`)."""
        return await asyncio.to_thread(self._transport.call, method, path, body=body, query=query)

    def _scope(self) -> ProjectScope:
        scope = project_written()
        if scope is None:
            raise InvalidInputError(
                f"uploads to {self.url} go through the grants of the server {self.server}, "
                "given for a project: store within writing_for(entity, project)"
            )
        return scope

    # -- grants --------------------------------------------------------------------------

    async def _grants(
        self, scope: ProjectScope, asked: Sequence[tuple[BlobSpec, str | None]]
    ) -> list[UploadGrant | None]:
        """Grants for ``(blob, upload id)`` (at most :data:`MAX_GRANTS`), in order; None
        for a blob the server says the caller holds."""
        blobs = [spec_to_json(blob, upload_id) for blob, upload_id in asked]
        answer = await self._call(
            "POST", "/api/v1/uploads", body={**scope.to_json(), "blobs": blobs}
        )
        grants = answer.get("grants") if isinstance(answer, dict) else None
        if not isinstance(grants, list) or len(grants) != len(asked):
            raise StoreUnavailableError(self.server, f"answered grants that are not: {answer!r}")
        return [grant_from_json(g, self.server) for g in grants]

    async def ask(
        self, scope: ProjectScope, blob: BlobSpec, upload_id: str | None = None
    ) -> UploadGrant | None:
        """A grant for one blob (None: stored); ``upload_id`` resumes that upload."""
        return (await self._grants(scope, [(blob, upload_id)]))[0]

    async def complete(self, scope: ProjectScope, blob: BlobSpec, upload_id: str) -> None:
        """Ask the server to complete the multipart upload ``upload_id`` of ``blob``."""
        body = {**scope.to_json(), "blob": spec_to_json(blob, None), "upload_id": upload_id}
        await self._call("POST", "/api/v1/uploads/complete", body=body)

    # -- writes --------------------------------------------------------------------------

    async def has_blobs(self, md5_hexes: Sequence[str]) -> set[str]:
        """Those of ``md5_hexes`` the caller may read in a committed version of this
        store (what the server answers ``stored`` when it is asked to upload them)."""
        unique = list(dict.fromkeys(check_md5_hex(h) for h in md5_hexes))
        found: set[str] = set()
        for start in range(0, len(unique), MAX_GRANTS):
            urls = await self._download_urls(unique[start : start + MAX_GRANTS])
            found.update(md5 for md5, url in urls.items() if url is not None)
        return found

    async def put_blobs(self, items: Sequence[BlobItem], caller: CallerRights | None = None) -> int:
        """Upload the blobs the server does not say the caller holds; returns how many
        were sent. Needs the project they are for (:func:`writing_for`); ``caller``
        must be None, as for every bucket store."""
        self.refuse_caller(caller)
        scope = self._scope()
        unique: dict[str, BlobItem] = {}
        for given in items:
            item = BlobItem(*given)
            unique.setdefault(check_md5_hex(item.md5_hex), item)
        if not unique:
            return 0
        sized = await asyncio.to_thread(_sizes, list(unique.values()))
        whole: list[tuple[BlobItem, int]] = []
        parted: list[tuple[BlobItem, int]] = []
        for item, size in sized:
            (whole if self._part_size(size) is None else parted).append((item, size))

        sent = [0]

        async def in_batches() -> bool:
            # The next batch's grants are asked while this one goes up, so the server's
            # answer is never waited for but the first time; a grant is still used
            # minutes before it expires (and renewed if its turn came late).
            batches = [whole[i : i + MAX_GRANTS] for i in range(0, len(whole), MAX_GRANTS)]
            if not batches:
                return True
            upcoming: asyncio.Future[list[Granted]] | None = asyncio.ensure_future(
                self._granted(scope, batches[0])
            )
            try:
                for following in [*batches[1:], None]:
                    assert upcoming is not None
                    granted = await upcoming
                    upcoming = (
                        asyncio.ensure_future(self._granted(scope, following))
                        if following is not None
                        else None
                    )
                    sent[0] += await self._send_batch(scope, granted)
            finally:
                if upcoming is not None:
                    upcoming.cancel()
                    with contextlib.suppress(BaseException):
                        await upcoming
            return True

        calls = [in_batches(), *(self._put_parted(scope, item) for item, _ in parted)]
        done = await first_failure(calls)
        return sent[0] + sum(done[1:])

    def _part_size(self, size: int) -> int | None:
        """The part size a blob of ``size`` bytes goes up in, or None: in one request
        (S3) or a session (GCS)."""
        threshold, part_size = self.served.multipart_threshold, self.served.part_size
        if threshold is None or part_size is None:
            return None
        if size < threshold and size <= SINGLE_PUT_MAX:
            return None
        return part_size_for(size, part_size)

    async def _granted(
        self, scope: ProjectScope, batch: list[tuple[BlobItem, int]]
    ) -> list[Granted]:
        """Blobs that go up whole, each with its grant (None: the caller holds it), a
        session a crash left unfinished resumed rather than asked again."""
        sessions = (
            await asyncio.to_thread(self._journaled_sessions, batch)
            if self.served.multipart_threshold is None
            else {}  # S3: whole blobs go in one PUT, nothing to resume
        )
        asked = [(item, size) for item, size in batch if item.md5_hex not in sessions]
        specs = [(BlobSpec(item.md5_hex, size), None) for item, size in asked]
        grants = await self._grants(scope, specs) if specs else []
        granted: list[Granted] = [
            (item, size, grant) for (item, size), grant in zip(asked, grants, strict=True)
        ]
        granted += [
            (item, size, SessionGrant(sessions[item.md5_hex], size))
            for item, size in batch
            if item.md5_hex in sessions
        ]
        return granted

    async def _send_batch(self, scope: ProjectScope, granted: list[Granted]) -> int:
        """Send a granted batch concurrently; small files by PUT, read a group at a
        time in one thread hop (a file each was most of the node's work)."""
        small = [
            (item, grant)
            for item, size, grant in granted
            if isinstance(grant, PutGrant) and size <= _SMALL
        ]
        calls = [
            self._send_small(scope, small[i : i + _READ_GROUP])
            for i in range(0, len(small), _READ_GROUP)
        ]
        calls += [
            self._send_whole(scope, item, size, grant)
            for item, size, grant in granted
            if not (isinstance(grant, PutGrant) and size <= _SMALL)
        ]
        return sum(await first_failure(calls))

    async def _send_small(self, scope: ProjectScope, group: list[tuple[BlobItem, PutGrant]]) -> int:
        """PUT a group of small files, read together; a grant that expired by now is
        renewed on the way of :meth:`_send_whole`."""
        async with self._files:
            read = await asyncio.to_thread(_read_whole, [item for item, _ in group])
        late = time.time() + RENEW_BEFORE

        async def put(item: BlobItem, source: SourceFile, data: bytes, grant: PutGrant) -> bool:
            if late > grant.expires_at:
                return await self._send_whole(scope, item, source.size, grant)
            await self._put_bytes(item.md5_hex, source, data, grant)
            return True

        done = await first_failure(
            [put(item, *read[i], grant) for i, (item, grant) in enumerate(group)]
        )
        return sum(done)

    def _journaled_sessions(self, batch: list[tuple[BlobItem, int]]) -> dict[str, str]:
        """The GCS sessions a crash left unfinished for blobs of ``batch`` (blocking)."""
        found = {}
        for item, size in batch:
            entry = self.journal.load(item.md5_hex, self.blob_object(item.md5_hex))
            if entry and entry.get("size") == size and isinstance(entry.get("session"), str):
                found[item.md5_hex] = entry["session"]
        return found

    async def _send_whole(
        self, scope: ProjectScope, item: BlobItem, size: int, grant: UploadGrant | None
    ) -> bool:
        if grant is None:
            tracking.bytes_stored(size, 1)  # held already: as good as sent
            return False
        async with self._files:
            source = await asyncio.to_thread(open_source, item)
            try:
                if isinstance(grant, PutGrant) and time.time() > grant.expires_at - RENEW_BEFORE:
                    # Its turn came late (a long batch): a URL about to expire is renewed.
                    renewed = await self.ask(scope, BlobSpec(item.md5_hex, source.size))
                    if renewed is None:
                        return False
                    grant = renewed
                if isinstance(grant, SessionGrant):
                    return await upload_blob_in_session(
                        self, scope, item.md5_hex, source, grant, chunk_size=self.chunk_size
                    )
                if not isinstance(grant, PutGrant):
                    raise InvalidInputError(f"blob {item.md5_hex}: a grant of parts, unasked")
                await self._put(item.md5_hex, source, grant)
                return True
            finally:
                source.close()

    async def _put(self, md5_hex: str, source: SourceFile, grant: PutGrant) -> None:
        """One presigned PUT of a whole file (a small one read at once, else streamed)."""
        if source.size <= _SMALL:
            data = await asyncio.to_thread(source.read, 0, source.size)
            await self._put_bytes(md5_hex, source, data, grant)
            return
        await self._put_bytes(md5_hex, source, SourceRange(source, 0, source.size), grant)

    async def _put_bytes(
        self, md5_hex: str, source: SourceFile, body: bytes | SourceRange, grant: PutGrant
    ) -> None:
        """The PUT of ``body`` (``source``'s bytes, read or streamed) through ``grant``."""
        async with self._requests:
            http = await self.http()
            answer = await send(
                http, "PUT", grant.url, where=self.url, headers=grant.headers, body=body
            )
        check_put(answer, md5_hex, source, "the PUT", self.url)
        tracking.bytes_stored(source.size, 1)

    async def _put_parted(self, scope: ProjectScope, item: BlobItem) -> bool:
        async with self._files:
            source = await asyncio.to_thread(open_source, item)
            try:
                part_size = self._part_size(source.size)
                assert part_size is not None
                return await upload_in_parts(self, scope, item.md5_hex, source, part_size)
            finally:
                source.close()

    # -- manifests -----------------------------------------------------------------------

    async def put_manifest(self, artifact_digest: str, data: bytes | bytearray) -> str:
        """Store a manifest through its grant, which can only create it: one there
        already is kept (the bucket answers 412)."""
        data = bytes(data)
        md5_hex = hashlib.md5(data, usedforsecurity=False).hexdigest()
        return await self._put_manifest(artifact_digest, md5_hex, Piece(len(data), data=data))

    async def put_manifest_file(self, artifact_digest: str, path: Path) -> str:
        """:meth:`put_manifest` of the JSON in ``path``, streamed from the file."""
        source = await asyncio.to_thread(open_file, path)
        try:
            md5 = await asyncio.to_thread(_core.part_md5, str(path), 0, source.size)
            md5_hex = base64.b64decode(md5).hex()
            return await self._put_manifest(artifact_digest, md5_hex, Piece(source.size, source))
        finally:
            source.close()

    async def _put_manifest(self, artifact_digest: str, md5_hex: str, piece: Piece) -> str:
        key = manifest_key(artifact_digest)
        scope = self._scope()
        body = {**scope.to_json(), "digest": artifact_digest, "md5": md5_hex, "size": piece.size}
        grant = grant_from_json(
            await self._call("POST", "/api/v1/manifests/uploads", body=body), self.server
        )
        await upload_manifest(self, scope, md5_hex, piece, grant, chunk_size=self.chunk_size)
        return key

    async def get_manifest(self, key: str) -> bytes:
        """The manifest at ``key``, if the caller may read a version it belongs to
        (else, as if absent: :class:`ObjectNotFoundError`)."""
        check_manifest_key(key)
        try:
            answer = await self._call("GET", "/api/v1/manifests", query={"key": key})
        except NotFoundError:
            raise ObjectNotFoundError(key, self.url) from None
        async with self._requests:
            where = f"{self.url}/{key}"
            data = await fetch_bytes(await self.http(), str(answer["url"]), where=where)
        if data is None:
            raise ObjectNotFoundError(key, self.url)
        return data

    # -- reads ---------------------------------------------------------------------------

    async def get_blob(self, md5_hex: str, dest: Path) -> None:
        """Write the blob ``md5_hex`` into the new file ``dest``, streamed, if the caller
        may read it (else :class:`ObjectNotFoundError`). Unchecked here: readers hash
        what they fetched (S3 checks no multipart object's whole MD5)."""
        key = blob_key(md5_hex)
        url = await self._urls.url(md5_hex)
        if url is None:
            raise ObjectNotFoundError(key, self.url)
        async with self._requests:
            found = await fetch_into(await self.http(), url, dest, where=f"{self.url}/{key}")
        if not found:
            raise ObjectNotFoundError(key, self.url)

    async def _download_urls(self, md5s: list[str]) -> dict[str, str | None]:
        answer = await self._call("POST", "/api/v1/downloads", body={"blobs": md5s})
        grants = answer.get("grants") if isinstance(answer, dict) else None
        if not isinstance(grants, list):
            raise StoreUnavailableError(self.server, f"answered downloads that are not: {answer!r}")
        return {str(g["md5"]): g.get("url") for g in grants}

    # -- what a node does not do ---------------------------------------------------------

    def refuses_collection(self) -> NotCollectedHereError:
        """Always: listing and deleting the bucket need its credentials."""
        return NotCollectedHereError(self.url, self.server)

    async def _exists(self, name: str) -> bool:
        return bool(await self.has_blobs([name.rpartition("/")[2]]))

    async def _list_from(self, first: str) -> tuple[list[str], bool]:
        raise NotCollectedHereError(self.url, self.server)

    async def _upload(self, item: BlobItem, name: str) -> None:
        await self.put_blobs([item])

    async def list_blobs(self) -> list[tuple[str, int, float]]:
        raise NotCollectedHereError(self.url, self.server)

    async def delete_blobs(self, md5_hexes: Sequence[str]) -> None:
        raise NotCollectedHereError(self.url, self.server)

    async def list_manifests(self) -> list[tuple[str, float]]:
        raise NotCollectedHereError(self.url, self.server)

    async def delete_manifests(self, keys: Sequence[str]) -> None:
        raise NotCollectedHereError(self.url, self.server)

    async def cleanup_tmp(self) -> int:
        """Forget journal entries of uploads a week old: the server aborts those."""
        return await asyncio.to_thread(self._forget_stale)

    def _forget_stale(self) -> int:
        removed = 0
        now = time.time()
        for md5_hex, entry in list(self.journal.entries()):
            if now - float(entry.get("updated", 0)) > _STALE_SECONDS:
                self.journal.remove(md5_hex)
                removed += 1
        return removed


def _sizes(items: list[BlobItem]) -> list[tuple[BlobItem, int]]:
    """Each item with its size: the one it was hashed at, else its source's now
    (blocking; a missing source is its :class:`OSError`)."""
    return [
        (item, item.size if item.size is not None else os.stat(item.source).st_size)
        for item in items
    ]


def _read_whole(items: list[BlobItem]) -> list[tuple[SourceFile, bytes]]:
    """Each small file, opened and checked against what was hashed, read whole and
    closed (blocking); the first that fails raises its :class:`OSError`."""
    read = []
    for item in items:
        source = open_source(item)
        try:
            read.append((source, source.read(0, source.size)))
        finally:
            source.close()
    return read
