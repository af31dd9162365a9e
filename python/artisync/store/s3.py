"""The S3 store (``s3://bucket/prefix``), on aiobotocore: any S3-compatible server.

Layout, connection and failures:

- keys are the common layout under the prefix: ``<prefix>/blobs/md5/<hex[:2]>/<hex>``
  and ``<prefix>/manifests/<d[:2]>/<d>.json``.
- credentials, region and endpoint are botocore's, and :meth:`S3Store.open` checks
  the bucket once before anything else (:mod:`artisync.store.s3_client`).
- after that, every failure of the server or the network (5xx, throttling, refused
  connections, timeouts) is retried a few times (botocore's ``standard`` mode, or
  :func:`~artisync.store.retry.retrying` on the direct path: exponential backoff with
  jitter), then raised as :class:`StoreUnavailableError`, which the daemon retries for
  as long as it takes; a large upload resumes from its journal each time.

Uploads:

- blobs up to 1 MiB are read a chunk of files per thread hop and each sent in one
  PUT with ``Content-MD5`` straight over aiohttp (:mod:`artisync.store.s3_small`,
  :mod:`artisync.store.s3_direct`: botocore's CPU per request was the limit for
  many small files); the HEADs that ask for single blobs go the same way;
- a larger file under ``multipart_threshold`` goes in one streamed botocore PUT with
  ``Content-MD5``, a larger one in parts (:mod:`artisync.store.multipart`);
- the server refuses bytes that are not the blob, so a file changed after hashing is
  a :class:`SourceChangedError`, never a wrong object;
- a PUT or a completed multipart upload is atomic: readers see a whole object or none.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from artisync import _core, tracking
from artisync.store.base import (
    BlobItem,
    CallerRights,
    ManifestTooLargeError,
    ObjectNotFoundError,
    StoreUnavailableError,
    check_manifest_key,
    check_md5_hex,
    manifest_key,
    md5_base64,
)
from artisync.store.journal import UploadJournal
from artisync.store.multipart import (
    DEFAULT_PART_SIZE,
    DEFAULT_THRESHOLD,
    STALE_UPLOAD_SECONDS,
    MultipartUploader,
)
from artisync.store.part_sizes import SINGLE_PUT_MAX
from artisync.store.remote import (
    DEFAULT_CONCURRENCY,
    RemoteStore,
    content_changed,
    first_failure,
    parse_bucket_url,
    run_apart,
)
from artisync.store.s3_client import ATTEMPTS, check_access, endpoint_of, new_client, new_session
from artisync.store.s3_direct import DIRECT_MAX, DirectRequests
from artisync.store.s3_errors import code_of, describe, etag_matches, status_of
from artisync.store.s3_small import SmallBlobs
from artisync.store.source import SourceFile, SourceRange, open_file, open_source

__all__ = ["S3Store"]

_DELETE_BATCH = 1000  # DeleteObjects' limit


@dataclass(frozen=True, slots=True)
class _Clients:
    """One event loop's connection to S3: botocore's client and the direct requests."""

    botocore: Any
    direct: DirectRequests


class S3Store(RemoteStore):
    """A content-addressed store in an S3 bucket under a prefix.

    Args:
        url: ``s3://bucket`` or ``s3://bucket/prefix``.
        state_dir: Where the journal of unfinished multipart uploads lives (on the
            node, e.g. ``ARTISYNC_HOME/uploads``).
        concurrency: Requests in flight at once (single PUTs and parts together).
        multipart_threshold: Files of at least this size go up in parts.
        part_size: The size of each part (raised for files that would need more than
            10,000 parts; S3 wants at least 5 MiB).
        profile: An ``~/.aws`` profile (default: ``AWS_PROFILE``, else the default).
        endpoint_url: An S3-compatible endpoint (default: ``AWS_ENDPOINT_URL_S3``,
            ``AWS_ENDPOINT_URL``, the profile's, else AWS).
    """

    def __init__(
        self,
        url: str,
        *,
        state_dir: Path,
        concurrency: int = DEFAULT_CONCURRENCY,
        multipart_threshold: int = DEFAULT_THRESHOLD,
        part_size: int = DEFAULT_PART_SIZE,
        profile: str | None = None,
        endpoint_url: str | None = None,
    ) -> None:
        location = parse_bucket_url(url)
        if location.scheme != "s3":
            raise ValueError(f"{url!r} is not an s3:// URL")
        super().__init__(location, concurrency)
        self.profile = profile
        self.endpoint_url = endpoint_url
        self.journal = UploadJournal(state_dir, self.url)
        self.multipart = MultipartUploader(self, multipart_threshold, part_size)
        self.small = SmallBlobs(self)

    @classmethod
    def open(cls, url: str, *, state_dir: Path, check: bool = True, **options: Any) -> S3Store:
        """The store at ``url``, after checking (``check``) that its bucket answers
        with the configured credentials; :class:`StoreAccessError` says what to set."""
        store = cls(url, state_dir=state_dir, **options)
        if check:
            run_apart(store._check_access())
        return store

    # -- the client ------------------------------------------------------------------

    async def client(self) -> Any:
        """The aiobotocore client of the running loop, made on first use."""
        clients: _Clients = await self.loop_client()
        return clients.botocore

    async def direct(self) -> DirectRequests:
        """The direct requests of the running loop, beside :meth:`client`'s."""
        clients: _Clients = await self.loop_client()
        return clients.direct

    async def _open_client(self, stack: contextlib.AsyncExitStack) -> _Clients:
        async with contextlib.AsyncExitStack() as opening:
            try:
                session = new_session(self.profile)
                endpoint = endpoint_of(session, self.endpoint_url)
                connections = self.concurrency + 8
                client = await opening.enter_async_context(
                    new_client(session, endpoint, connections)
                )
                direct = await DirectRequests.create(
                    client,
                    session,
                    self.bucket,
                    endpoint=endpoint,
                    connections=connections,
                    attempts=ATTEMPTS,
                )
                opening.push_async_callback(direct.close)
            except (BotoCoreError, ClientError, OSError) as e:
                # OSError too (a CA bundle that cannot be read): the store's fault, never
                # to be taken for a source's.
                raise StoreUnavailableError(self.url, describe(e)) from e
            # Opened: from now on the loop's stack closes them.
            stack.push_async_callback(opening.pop_all().aclose)
        return _Clients(client, direct)

    async def call(self, operation: str, name: str, **params: Any) -> dict[str, Any]:
        """One S3 operation on this bucket; failures become :class:`StoreUnavailableError`
        (:class:`ClientError` is kept as the cause, for callers that look at codes)."""
        client = await self.client()
        try:
            result: dict[str, Any] = await getattr(client, operation)(Bucket=self.bucket, **params)
        except (TimeoutError, BotoCoreError, ClientError, OSError) as e:
            raise StoreUnavailableError(f"s3://{self.bucket}/{name}", describe(e)) from e
        return result

    async def _check_access(self) -> None:
        await check_access(self.url, self.bucket, self.profile, self.endpoint_url)

    # -- presence ----------------------------------------------------------------------

    async def _exists(self, name: str) -> bool:
        direct = await self.direct()
        async with self._requests:
            return await direct.exists(name)

    async def _list_from(self, first: str) -> tuple[list[str], bool]:
        # StartAfter is exclusive: start after the key's own prefix; the few keys
        # listed before it are ignored by the caller.
        async with self._requests:
            page = await self.call(
                "list_objects_v2",
                self._blobs_prefix,
                Prefix=self._blobs_prefix,
                StartAfter=first[:-1],
                MaxKeys=1000,
            )
        keys = [o["Key"] for o in page.get("Contents", ())]
        return keys, bool(page.get("IsTruncated"))

    # -- uploads -------------------------------------------------------------------------

    async def put_blobs(self, items: Sequence[BlobItem], caller: CallerRights | None = None) -> int:
        """Upload the blobs the bucket does not have; returns how many were new.

        Blobs of a known size up to 1 MiB (and under ``multipart_threshold``) go up
        in batches (:class:`SmallBlobs`); the others as in every remote store
        (:meth:`RemoteStore.put_blobs`, which also says why ``caller`` must be None).
        """
        self.refuse_caller(caller)
        small_max = min(DIRECT_MAX, self.multipart.threshold - 1)
        small: dict[str, BlobItem] = {}
        others: list[BlobItem] = []
        for given in items:
            item = BlobItem(*given)
            if item.size is not None and item.size <= small_max:
                small.setdefault(check_md5_hex(item.md5_hex), item)
            else:
                others.append(item)
        if not small:
            return await super().put_blobs(others)
        present = await self.has_blobs(list(small))
        todo = [item for md5_hex, item in small.items() if md5_hex not in present]
        written = [0, 0]

        async def lane(i: int, work: Awaitable[int]) -> bool:
            written[i] = await work
            return True

        await first_failure([lane(0, self.small.put(todo)), lane(1, super().put_blobs(others))])
        return sum(written)

    async def _upload(self, item: BlobItem, name: str) -> None:
        """One blob of :meth:`RemoteStore.put_blobs`: large, or of unknown size."""
        source = await asyncio.to_thread(open_source, item)
        try:
            if source.size >= self.multipart.threshold:
                await self.multipart.upload(item.md5_hex, name, source)
            elif source.size <= DIRECT_MAX:
                body = await asyncio.to_thread(source.read, 0, source.size)
                await self.small.put_one(item, name, body)
            else:
                await self._put_streamed(item.md5_hex, name, source)
        finally:
            source.close()

    async def _put_streamed(self, md5_hex: str, name: str, source: SourceFile) -> None:
        """One botocore PUT of a file streamed from disk."""
        body = SourceRange(source, 0, source.size)
        async with self._requests:
            try:
                answer = await self.call(
                    "put_object",
                    name,
                    Key=name,
                    Body=body,
                    ContentMD5=md5_base64(md5_hex),
                    ContentLength=source.size,
                )
            except StoreUnavailableError as e:
                if body.error is not None:
                    raise body.error from None
                if code_of(e) in ("BadDigest", "InvalidDigest"):
                    raise content_changed(str(source.path), source.size) from None
                raise
        if not etag_matches(answer, md5_hex):
            await self.call("delete_object", name, Key=name)
            raise content_changed(str(source.path), source.size)
        tracking.bytes_stored(source.size, 1)

    # -- manifests -----------------------------------------------------------------------

    async def put_manifest(self, artifact_digest: str, data: bytes | bytearray) -> str:
        """Store a manifest unless one is there: a conditional PUT (``If-None-Match:
        *``); on a server without conditional writes, a HEAD first."""
        data = bytes(data)  # a bytearray from the daemon's manifest writer
        md5 = md5_base64(hashlib.md5(data).hexdigest())
        return await self._put_manifest(artifact_digest, lambda: data, md5, len(data))

    async def put_manifest_file(self, artifact_digest: str, path: Path) -> str:
        """:meth:`put_manifest` of the JSON in ``path``, streamed from the file (a
        manifest of a million entries is some 200 MB: never held in memory)."""
        source = await asyncio.to_thread(open_file, path)
        try:
            if source.size > SINGLE_PUT_MAX:
                url = f"s3://{self.bucket}/{self.key(manifest_key(artifact_digest))}"
                raise ManifestTooLargeError(url, source.size, SINGLE_PUT_MAX)
            md5 = await asyncio.to_thread(_core.part_md5, str(path), 0, source.size)
            return await self._put_manifest(
                artifact_digest, lambda: SourceRange(source, 0, source.size), md5, source.size
            )
        finally:
            source.close()

    async def _put_manifest(
        self,
        artifact_digest: str,
        body: Callable[[], bytes | SourceRange],
        md5: str,
        length: int,
    ) -> str:
        """The conditional PUT of :meth:`put_manifest`, its body made fresh per request."""
        key = manifest_key(artifact_digest)
        name = self.key(key)

        def params() -> dict[str, Any]:
            return {
                "Key": name,
                "Body": body(),
                "ContentMD5": md5,
                "ContentLength": length,
                "ContentType": "application/json",
            }

        async with self._requests:
            try:
                await self.call("put_object", name, IfNoneMatch="*", **params())
            except StoreUnavailableError as e:
                if status_of(e) == 412:
                    return key  # the first writer won
                if status_of(e) != 501 and code_of(e) != "NotImplemented":
                    raise
                if not await self._exists_unbounded(name):
                    await self.call("put_object", name, **params())
        return key

    async def _exists_unbounded(self, name: str) -> bool:
        return await (await self.direct()).exists(name)

    async def get_manifest(self, key: str) -> bytes:
        """The bytes of the manifest at ``key``: one GET on the direct path (botocore's
        own costs a server checking every commit's manifest a millisecond of CPU)."""
        name = self.key(check_manifest_key(key))
        direct = await self.direct()
        async with self._requests:
            data = await direct.get(name)
        if data is None:
            raise ObjectNotFoundError(key, self.url)
        return data

    # -- downloads -----------------------------------------------------------------------

    async def get_blob(self, md5_hex: str, dest: Path) -> None:
        """Write the blob ``md5_hex`` into the new file ``dest``, streamed."""
        name = self.blob_object(check_md5_hex(md5_hex))
        try:
            response = await self.call("get_object", name, Key=name)
        except StoreUnavailableError as e:
            if status_of(e) == 404:
                raise ObjectNotFoundError(name.removeprefix(self.prefix), self.url) from None
            raise
        try:
            async with response["Body"] as body:
                with open(dest, "wb") as out:
                    async for chunk in body.iter_chunks(1 << 20):
                        await asyncio.to_thread(out.write, chunk)
        except (TimeoutError, BotoCoreError) as e:
            raise StoreUnavailableError(f"s3://{self.bucket}/{name}", describe(e)) from e

    # -- listing and garbage collection --------------------------------------------------

    async def _objects(self, prefix: str) -> AsyncIterator[dict[str, Any]]:
        token: str | None = None
        while True:
            params: dict[str, Any] = {"Prefix": prefix, "MaxKeys": 1000}
            if token:
                params["ContinuationToken"] = token
            async with self._requests:
                page = await self.call("list_objects_v2", prefix, **params)
            for entry in page.get("Contents", ()):
                yield entry
            token = page.get("NextContinuationToken")
            if not page.get("IsTruncated") or not token:
                return

    async def list_blobs(self) -> list[tuple[str, int, float]]:
        blobs = []
        async for o in self._objects(self._blobs_prefix):
            md5_hex = o["Key"][len(self._blobs_prefix) :].rpartition("/")[2]
            if o["Key"].endswith(f"{md5_hex[:2]}/{md5_hex}") and _is_md5(md5_hex):
                blobs.append((md5_hex, int(o["Size"]), o["LastModified"].timestamp()))
        return blobs

    async def delete_blobs(self, md5_hexes: Sequence[str]) -> None:
        await self._delete([self.blob_object(h) for h in md5_hexes])

    async def list_manifests(self) -> list[tuple[str, float]]:
        manifests = []
        async for o in self._objects(self.key("manifests/")):
            key = o["Key"][len(self.prefix) :]
            with contextlib.suppress(ValueError):
                manifests.append((check_manifest_key(key), o["LastModified"].timestamp()))
        return manifests

    async def delete_manifests(self, keys: Sequence[str]) -> None:
        await self._delete([self.key(check_manifest_key(k)) for k in keys])

    async def _delete(self, names: list[str]) -> None:
        async def batch(chunk: list[str]) -> bool:
            async with self._requests:
                answer = await self.call(
                    "delete_objects",
                    chunk[0],
                    Delete={"Objects": [{"Key": n} for n in chunk], "Quiet": True},
                )
            failed = [e for e in answer.get("Errors", ()) if e.get("Code") != "NoSuchKey"]
            if failed:
                first = failed[0]
                reason = f"{first.get('Code')}: {first.get('Message')} ({len(failed)} failed)"
                raise StoreUnavailableError(f"s3://{self.bucket}/{first.get('Key')}", reason)
            return True

        await self.client()
        chunks = [names[i : i + _DELETE_BATCH] for i in range(0, len(names), _DELETE_BATCH)]
        await first_failure([batch(c) for c in chunks])

    async def cleanup_tmp(self) -> int:
        """Abort multipart uploads nobody will finish; returns how many.

        Those in the journal whose blob is now stored, or untouched for a week, and
        those under this prefix that no journal of this node names, started more than a
        week ago (another node's may still be running: S3's own lifecycle rule
        ``AbortIncompleteMultipartUpload`` is the real backstop).
        """
        return await self.multipart.cleanup(STALE_UPLOAD_SECONDS)

    async def list_uploads(
        self, prefix: str | None = None
    ) -> AsyncIterator[tuple[str, str, float]]:
        """``(key, upload_id, initiated)`` of unfinished multipart uploads of blobs (or
        of the keys that start with ``prefix``)."""
        prefix = self._blobs_prefix if prefix is None else prefix
        params: dict[str, Any] = {"Prefix": prefix}
        while True:
            async with self._requests:
                try:
                    page = await self.call("list_multipart_uploads", prefix, **params)
                except StoreUnavailableError as e:
                    if code_of(e) == "NoSuchUpload":
                        return  # rclone serve s3's answer when there are none
                    raise
            for u in page.get("Uploads", ()):
                initiated = u.get("Initiated") or datetime.datetime.now(datetime.UTC)
                yield u["Key"], u["UploadId"], initiated.timestamp()
            if not page.get("IsTruncated"):
                return
            params["KeyMarker"] = page.get("NextKeyMarker", "")
            params["UploadIdMarker"] = page.get("NextUploadIdMarker", "")


def _is_md5(text: str) -> bool:
    try:
        check_md5_hex(text)
    except ValueError:
        return False
    return True
