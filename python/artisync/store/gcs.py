"""The GCS store (``gs://bucket/prefix``), on gcloud-aio-storage and its auth.

gcloud-aio-storage lists, reads and deletes; uploads are our own requests on its
session, because its ``upload_from_filename`` reads the whole file into memory and its
"resumable" upload starts again from zero:

- a file under the threshold goes in one streamed ``uploadType=multipart`` request
  whose metadata carries the blob's ``md5Hash`` (GCS refuses bytes that do not match
  it), with ``ifGenerationMatch=0``, so an object already there is never rewritten;
- a larger one goes through a resumable session of our own
  (:mod:`artisync.store.gcs_upload`), journaled, resumed from the server's committed
  offset after a failure or a daemon restart.

Either way the object appears whole when its last byte is in, and the MD5 GCS reports
for it is checked; a mismatch (an emulator does not check) removes it and blames the
source.

Credentials: ``STORAGE_EMULATOR_HOST`` (an emulator, no credentials), else
``GOOGLE_APPLICATION_CREDENTIALS`` (a service-account or authorized-user JSON file),
gcloud's application-default credentials, or the metadata server on GCE.
:meth:`GCSStore.open` checks them, and the bucket, before anything else: one
:class:`StoreAccessError` saying what to set. Transient failures are retried a few
times per request (:mod:`artisync.store.retry`), then raised as
:class:`StoreUnavailableError` for the daemon to retry for as long as it takes.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime
import json
import os
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

import aiohttp
from gcloud.aio.auth import Token
from gcloud.aio.storage import SCOPES, Storage
from gcloud.aio.storage.storage import init_api_root

from artisync import _core, tracking
from artisync.store.base import (
    BlobItem,
    ObjectNotFoundError,
    StoreUnavailableError,
    check_manifest_key,
    check_md5_hex,
    manifest_key,
    md5_base64,
)
from artisync.store.gcs_errors import (
    ENV_CREDENTIALS,
    check_bucket,
    check_credential_file,
    describe,
    raise_for_status,
    status_of,
    transient,
)
from artisync.store.gcs_upload import DEFAULT_CHUNK_SIZE, ResumableUploader
from artisync.store.journal import UploadJournal
from artisync.store.part_sizes import DEFAULT_THRESHOLD
from artisync.store.remote import (
    DEFAULT_CONCURRENCY,
    RemoteStore,
    content_changed,
    first_failure,
    parse_bucket_url,
    run_apart,
)
from artisync.store.retry import retrying
from artisync.store.source import SourceFile, open_file, open_source

__all__ = ["GCSStore"]

T = TypeVar("T")

_READ_CHUNK = 1 << 20


@dataclass(frozen=True, slots=True)
class _Client:
    """One event loop's connection to GCS: the HTTP session, the library's client on
    it, and the token that authorizes its requests (None on an emulator)."""

    session: aiohttp.ClientSession
    storage: Storage
    token: Token | None


class GCSStore(RemoteStore):
    """A content-addressed store in a GCS bucket under a prefix.

    Args:
        url: ``gs://bucket`` or ``gs://bucket/prefix``.
        state_dir: Where the journal of unfinished resumable uploads lives.
        concurrency: Requests in flight at once.
        resumable_threshold: Files of at least this size go through a resumable
            session, in chunks.
        chunk_size: Bytes per chunk of a resumable session (a multiple of 256 KiB).
        service_file: A credentials JSON file (default: ``GOOGLE_APPLICATION_CREDENTIALS``,
            then gcloud's application-default credentials, then the metadata server).
    """

    def __init__(
        self,
        url: str,
        *,
        state_dir: Path,
        concurrency: int = DEFAULT_CONCURRENCY,
        resumable_threshold: int = DEFAULT_THRESHOLD,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        service_file: str | None = None,
    ) -> None:
        location = parse_bucket_url(url)
        if location.scheme != "gs":
            raise ValueError(f"{url!r} is not a gs:// URL")
        super().__init__(location, concurrency)
        self.service_file = service_file
        self.emulated, self.api_root = init_api_root(None)
        self.journal = UploadJournal(state_dir, self.url)
        self.resumable = ResumableUploader(self, resumable_threshold, chunk_size)

    @classmethod
    def open(cls, url: str, *, state_dir: Path, check: bool = True, **options: Any) -> GCSStore:
        """The store at ``url``, after checking (``check``) its credentials and bucket;
        :class:`StoreAccessError` says what to set."""
        store = cls(url, state_dir=state_dir, **options)
        if check:
            run_apart(store._check_access())
        return store

    # -- the client --------------------------------------------------------------------

    async def _open_client(self, stack: contextlib.AsyncExitStack) -> _Client:
        session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=self.concurrency + 8),
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=120),
        )
        stack.push_async_callback(session.close)
        token = None if self.emulated else self._new_token(session)
        return _Client(session, Storage(session=session, token=token), token)  # type: ignore[arg-type]

    async def _client(self) -> _Client:
        client: _Client = await self.loop_client()
        return client

    async def storage(self) -> Storage:
        """gcloud-aio-storage's client on the running loop, made on first use."""
        return (await self._client()).storage

    def _new_token(self, session: aiohttp.ClientSession) -> Token:
        return Token(service_file=self.service_file, session=session, scopes=SCOPES)  # type: ignore[arg-type]

    async def session(self) -> aiohttp.ClientSession:
        """The running loop's HTTP session, for requests of our own."""
        return (await self._client()).session

    async def token(self) -> Token | None:
        """The running loop's credentials (None on an emulator)."""
        return (await self._client()).token

    async def headers(self) -> dict[str, str]:
        """Authorization for our own requests (none on an emulator)."""
        token = await self.token()
        if token is None:
            return {}
        try:
            return {"Authorization": f"Bearer {await token.get()}"}
        except Exception as e:  # gcloud-aio-auth raises bare Exceptions too
            raise StoreUnavailableError(self.url, f"cannot get a Google access token: {e}") from e

    async def call(self, name: str, attempt: Callable[[], Awaitable[T]]) -> T:
        """One request about object ``name`` (or the bucket), retried a few times on
        transient failures; failures become :class:`StoreUnavailableError`."""
        try:
            return await retrying(attempt, transient)
        except StoreUnavailableError:
            raise
        except (aiohttp.ClientError, OSError, TimeoutError) as e:
            raise StoreUnavailableError(f"gs://{self.bucket}/{name}", describe(e)) from e

    def object_url(self, name: str) -> str:
        return f"{self.api_root}/storage/v1/b/{self.bucket}/o/{quote(name, safe='')}"

    def upload_url(self) -> str:
        return f"{self.api_root}/upload/storage/v1/b/{self.bucket}/o"

    async def _check_access(self) -> None:
        if not self.emulated:
            check_credential_file(self.service_file or os.environ.get(ENV_CREDENTIALS))
        client = await self._client()
        try:
            await check_bucket(self, client.storage, client.token)
        finally:
            await self.close()

    # -- presence ----------------------------------------------------------------------

    async def _exists(self, name: str) -> bool:
        return await self.metadata(name) is not None

    async def metadata(self, name: str) -> dict[str, Any] | None:
        """The object resource of ``name`` (``size``, ``md5Hash``, ``generation``...), or
        None if there is no such object."""
        storage = await self.storage()
        async with self._requests:
            try:
                found: dict[str, Any] = await self.call(
                    name, lambda: storage.download_metadata(self.bucket, name)
                )
            except StoreUnavailableError as e:
                if status_of(e) == 404:
                    return None
                raise
        return found

    async def _list_from(self, first: str) -> tuple[list[str], bool]:
        params = {"prefix": self._blobs_prefix, "startOffset": first, "maxResults": "1000"}
        page = await self._list_page(params)
        return [o["name"] for o in page.get("items", ())], bool(page.get("nextPageToken"))

    async def _list_page(self, params: dict[str, str]) -> dict[str, Any]:
        storage = await self.storage()
        params = {**params, "fields": "items(name,size,updated),nextPageToken"}
        async with self._requests:
            return await self.call(
                params["prefix"], lambda: storage.list_objects(self.bucket, params=dict(params))
            )

    # -- uploads -----------------------------------------------------------------------

    async def _upload(self, item: BlobItem, name: str) -> None:
        source = await asyncio.to_thread(open_source, item)
        try:
            md5 = md5_base64(item.md5_hex)
            if source.size >= self.resumable.threshold:
                await self.resumable.upload(item.md5_hex, name, source, md5)
            else:
                await self._upload_one(name, source, md5)
        finally:
            source.close()

    async def _upload_one(self, name: str, source: SourceFile, md5: str) -> None:
        """One blob in one streamed request, checked against its MD5."""
        result = await self._post_streamed(name, source, md5, "application/octet-stream")
        if result is not None:
            await self.check_md5(name, result, md5, source)
        tracking.bytes_stored(source.size, 1)

    async def _post_streamed(
        self, name: str, source: SourceFile, md5: str, content_type: str
    ) -> dict[str, Any] | None:
        """One streamed ``uploadType=multipart`` request (metadata, then the bytes) that
        does not replace an object: its metadata, or None if the object was there."""
        errors: list[OSError] = []
        head, tail, framing = _multipart_frame(name, md5, content_type)

        async def body() -> AsyncIterator[bytes]:
            yield head
            for offset in range(0, source.size, _READ_CHUNK):
                try:
                    n = min(_READ_CHUNK, source.size - offset)
                    yield await asyncio.to_thread(source.read, offset, n)
                except OSError as e:
                    errors.append(e)
                    raise
            yield tail

        headers = {
            "Content-Type": framing,
            "Content-Length": str(len(head) + source.size + len(tail)),
        }
        try:
            return await self.post_object(name, body, headers)
        except StoreUnavailableError as e:
            if errors:
                raise errors[0] from None
            if status_of(e) == 400 and "md5" in str(e).lower():
                raise content_changed(str(source.path), source.size) from None
            raise

    async def post_object(
        self, name: str, body: Callable[[], AsyncIterator[bytes]] | bytes, headers: dict[str, str]
    ) -> dict[str, Any] | None:
        """POST a one-request upload that must not replace an object; its metadata, or
        None if the object was there already."""
        session = await self.session()
        params = {"uploadType": "multipart", "ifGenerationMatch": "0"}

        async def attempt() -> dict[str, Any] | None:
            data = body if isinstance(body, bytes) else body()
            all_headers = {**await self.headers(), **headers}
            async with session.post(
                self.upload_url(), params=params, data=data, headers=all_headers
            ) as response:
                if response.status == 412:
                    return None
                await raise_for_status(response)
                answer: dict[str, Any] = await response.json(content_type=None)
                return answer

        async with self._requests:
            return await self.call(name, attempt)

    async def check_md5(
        self, name: str, metadata: dict[str, Any], md5: str, source: SourceFile
    ) -> None:
        """Remove the object and blame the source if GCS stored other bytes than the
        blob's (a real GCS refuses them itself; an emulator may not)."""
        if metadata.get("md5Hash") in (None, md5):
            return
        generation = str(metadata.get("generation", ""))
        await self.delete_object(name, generation or None)
        raise content_changed(str(source.path), source.size)

    # -- manifests ---------------------------------------------------------------------

    async def put_manifest(self, artifact_digest: str, data: bytes | bytearray) -> str:
        """Store a manifest unless one is there (``ifGenerationMatch=0``: the first
        writer wins)."""
        import hashlib

        data = bytes(data)  # a bytearray from the daemon's manifest writer
        key = manifest_key(artifact_digest)
        name = self.key(key)
        md5 = base64.b64encode(hashlib.md5(data).digest()).decode()
        head, tail, framing = _multipart_frame(name, md5, "application/json")
        await self.post_object(name, head + data + tail, {"Content-Type": framing})
        return key

    async def put_manifest_file(self, artifact_digest: str, path: Path) -> str:
        """:meth:`put_manifest` of the JSON in ``path``, streamed from the file (a
        manifest of a million entries is some 200 MB: never held in memory)."""
        key = manifest_key(artifact_digest)
        source = await asyncio.to_thread(open_file, path)
        try:
            md5 = await asyncio.to_thread(_core.part_md5, str(path), 0, source.size)
            await self._post_streamed(self.key(key), source, md5, "application/json")
        finally:
            source.close()
        return key

    async def get_manifest(self, key: str) -> bytes:
        """The bytes of the manifest at ``key``."""
        name = self.key(check_manifest_key(key))
        storage = await self.storage()
        async with self._requests:
            try:
                return await self.call(name, lambda: storage.download(self.bucket, name))
            except StoreUnavailableError as e:
                if status_of(e) == 404:
                    raise ObjectNotFoundError(key, self.url) from None
                raise

    # -- downloads ---------------------------------------------------------------------

    async def get_blob(self, md5_hex: str, dest: Path) -> None:
        """Write the blob ``md5_hex`` into the new file ``dest``, streamed."""
        name = self.blob_object(check_md5_hex(md5_hex))
        session = await self.session()

        async def attempt() -> None:
            headers = await self.headers()
            params = {"alt": "media"}
            async with session.get(self.object_url(name), params=params, headers=headers) as r:
                await raise_for_status(r)
                with open(dest, "wb") as out:
                    async for chunk in r.content.iter_chunked(_READ_CHUNK):
                        await asyncio.to_thread(out.write, chunk)

        try:
            await self.call(name, attempt)
        except StoreUnavailableError as e:
            if status_of(e) == 404:
                raise ObjectNotFoundError(name.removeprefix(self.prefix), self.url) from None
            raise

    # -- listing and garbage collection ------------------------------------------------

    async def _objects(self, prefix: str) -> AsyncIterator[dict[str, Any]]:
        token = ""
        while True:
            params = {"prefix": prefix, "maxResults": "1000"}
            if token:
                params["pageToken"] = token
            page = await self._list_page(params)
            for item in page.get("items", ()):
                yield item
            token = page.get("nextPageToken") or ""
            if not token:
                return

    async def list_blobs(self) -> list[tuple[str, int, float]]:
        blobs = []
        async for o in self._objects(self._blobs_prefix):
            md5_hex = o["name"].rpartition("/")[2]
            if o["name"] == self.blob_object(md5_hex) if _is_md5(md5_hex) else False:
                blobs.append((md5_hex, int(o.get("size", 0)), _timestamp(o.get("updated"))))
        return blobs

    async def delete_blobs(self, md5_hexes: Sequence[str]) -> None:
        await self._delete([self.blob_object(h) for h in md5_hexes])

    async def list_manifests(self) -> list[tuple[str, float]]:
        manifests = []
        async for o in self._objects(self.key("manifests/")):
            with contextlib.suppress(ValueError):
                key = check_manifest_key(o["name"][len(self.prefix) :])
                manifests.append((key, _timestamp(o.get("updated"))))
        return manifests

    async def delete_manifests(self, keys: Sequence[str]) -> None:
        await self._delete([self.key(check_manifest_key(k)) for k in keys])

    async def _delete(self, names: list[str]) -> None:
        async def one(name: str) -> bool:
            await self.delete_object(name)
            return True

        await self.storage()
        await first_failure([one(n) for n in names])

    async def delete_object(self, name: str, generation: str | None = None) -> None:
        """Delete ``name`` (only that generation, if given); a missing one is fine."""
        storage = await self.storage()
        params = {"ifGenerationMatch": generation} if generation else None
        async with self._requests:
            try:
                await self.call(name, lambda: storage.delete(self.bucket, name, params=params))
            except StoreUnavailableError as e:
                if status_of(e) not in (404, 412):
                    raise

    async def cleanup_tmp(self) -> int:
        """Forget resumable sessions nobody will finish (journaled and stale, or whose
        blob is stored); GCS expires an abandoned session itself after a week."""
        return await self.resumable.cleanup()


def _is_md5(text: str) -> bool:
    try:
        check_md5_hex(text)
    except ValueError:
        return False
    return True


def _timestamp(rfc3339: object) -> float:
    if not isinstance(rfc3339, str):
        return 0.0
    return datetime.datetime.fromisoformat(rfc3339.replace("Z", "+00:00")).timestamp()


def _multipart_frame(name: str, md5: str, content_type: str) -> tuple[bytes, bytes, str]:
    """What goes before and after an object's bytes in an ``uploadType=multipart``
    request (its metadata first), and the request's ``Content-Type``."""
    boundary = secrets.token_hex(16)
    meta = {"name": name, "md5Hash": md5, "contentType": content_type}
    head = (
        f"--{boundary}\r\nContent-Type: application/json; charset=UTF-8\r\n\r\n"
        f"{json.dumps(meta)}\r\n--{boundary}\r\nContent-Type: {content_type}\r\n\r\n"
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    return head, tail, f"multipart/related; boundary={boundary}"
