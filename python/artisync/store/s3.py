"""The S3 store (``s3://bucket/prefix``), on aiobotocore: any S3-compatible server.

Layout, credentials and failures:

- keys are the common layout under the prefix: ``<prefix>/blobs/md5/<hex[:2]>/<hex>``
  and ``<prefix>/manifests/<d[:2]>/<d>.json``.
- credentials, region and endpoint come from botocore's usual places: ``AWS_*``
  variables (``AWS_ENDPOINT_URL``, ``AWS_ENDPOINT_URL_S3`` included), ``AWS_PROFILE``
  and the files under ``~/.aws``, then instance roles. A custom endpoint gets
  path-style addressing (MinIO, Ceph, moto, rclone serve S3 need it).
- :meth:`S3Store.open` checks the bucket with one HEAD before anything else, so a
  missing or wrong credential, a missing bucket or an endpoint that does not answer is
  one :class:`StoreAccessError` at daemon start, saying what to set.
- after that, every failure of the server or the network (5xx, throttling, refused
  connections, timeouts) is retried by botocore a few times (its ``standard`` mode:
  exponential backoff with jitter), then raised as :class:`StoreUnavailableError`,
  which the daemon retries for as long as it takes; a large upload resumes from its
  journal each time.

Uploads (:mod:`artisync.store.multipart` for large files):

- a file under ``multipart_threshold`` goes in one PUT with ``Content-MD5`` (the
  blob's own MD5): the server refuses bytes that are not the blob, so a file changed
  after hashing is a :class:`SourceChangedError`, never a wrong object;
- a PUT or a completed multipart upload is atomic: readers see a whole object or none.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime
import os
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

from aiobotocore.config import AioConfig
from aiobotocore.session import AioSession
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    ProfileNotFound,
)

from artisync.store.base import (
    BlobItem,
    ObjectNotFoundError,
    StoreUnavailableError,
    check_manifest_key,
    check_md5_hex,
    manifest_key,
)
from artisync.store.journal import UploadJournal
from artisync.store.multipart import (
    DEFAULT_PART_SIZE,
    DEFAULT_THRESHOLD,
    STALE_UPLOAD_SECONDS,
    MultipartUploader,
)
from artisync.store.remote import (
    DEFAULT_CONCURRENCY,
    RemoteStore,
    StoreAccessError,
    content_changed,
    first_failure,
    parse_bucket_url,
    run_apart,
)
from artisync.store.s3_errors import (
    CREDENTIAL_HINT,
    code_of,
    describe,
    etag_matches,
    status_of,
)
from artisync.store.source import SourceRange, open_source

__all__ = ["S3Store"]

# A file up to this size is read into memory for its PUT; larger ones are streamed.
_INLINE = 1 << 20
# botocore's attempts per request before the daemon's own retries take over.
_ATTEMPTS = 3
_DELETE_BATCH = 1000  # DeleteObjects' limit


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
        self._client: Any = None
        self._exit: contextlib.AsyncExitStack | None = None
        self._client_loop: asyncio.AbstractEventLoop | None = None

    @classmethod
    def open(cls, url: str, *, state_dir: Path, check: bool = True, **options: Any) -> S3Store:
        """The store at ``url``, after checking (``check``) that its bucket answers
        with the configured credentials; :class:`StoreAccessError` says what to set."""
        store = cls(url, state_dir=state_dir, **options)
        if check:
            run_apart(store._check_access())
        return store

    # -- the client ------------------------------------------------------------------

    def _session(self) -> AioSession:
        return AioSession(profile=self.profile) if self.profile else AioSession()

    def _endpoint(self, session: AioSession) -> str | None:
        configured = self.endpoint_url or os.environ.get("AWS_ENDPOINT_URL_S3")
        configured = configured or os.environ.get("AWS_ENDPOINT_URL")
        if configured:
            return configured
        scoped = session.get_scoped_config()
        endpoint = scoped.get("endpoint_url")
        return endpoint if isinstance(endpoint, str) else None

    def _new_client(self, session: AioSession, attempts: int = _ATTEMPTS) -> Any:
        endpoint = self._endpoint(session)
        config = AioConfig(
            retries={"mode": "standard", "max_attempts": attempts},
            max_pool_connections=self.concurrency + 8,
            connect_timeout=10,
            read_timeout=120,
            # Content-MD5 is ours; CRC32 trailers would read every body once more.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
            s3={"addressing_style": "path"} if endpoint else None,
        )
        return session.create_client("s3", config=config, endpoint_url=endpoint)

    async def client(self) -> Any:
        """The aiobotocore client of the running loop, made on first use."""
        loop = asyncio.get_running_loop()
        if self._client is None or self._client_loop is not loop:
            exit_stack = contextlib.AsyncExitStack()
            try:
                self._client = await exit_stack.enter_async_context(
                    self._new_client(self._session())
                )
            except (BotoCoreError, ClientError) as e:
                raise StoreUnavailableError(self.url, describe(e)) from e
            self._exit, self._client_loop = exit_stack, loop
        self._bind()
        return self._client

    async def close(self) -> None:
        """Close the client's connections."""
        if self._exit is not None:
            exit_stack, self._exit, self._client = self._exit, None, None
            await exit_stack.aclose()

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
        session = self._session()
        try:
            endpoint = self._endpoint(session)
            credentials = await session.get_credentials()
        except ProfileNotFound as e:
            raise StoreAccessError(
                f"store {self.url}: {e}; set AWS_PROFILE to a profile in ~/.aws/config"
            ) from None
        where = endpoint or "AWS"
        if credentials is None:
            raise StoreAccessError(f"store {self.url}: no AWS credentials found: {CREDENTIAL_HINT}")
        source = getattr(credentials, "method", "configured")
        try:
            async with self._new_client(session, attempts=2) as client:
                await client.head_bucket(Bucket=self.bucket)
        except ClientError as e:
            status = e.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            code = e.response.get("Error", {}).get("Code", "")
            if status == 404 or code in ("404", "NoSuchBucket"):
                raise StoreAccessError(
                    f"store {self.url}: bucket {self.bucket!r} does not exist at {where}: "
                    "create it, or fix the URL (and AWS_ENDPOINT_URL)"
                ) from None
            if status in (401, 403):
                raise StoreAccessError(
                    f"store {self.url}: access denied to bucket {self.bucket!r} at {where} "
                    f"with the credentials from {source} (HTTP {status}): they are wrong, "
                    f"or may not list this bucket: {CREDENTIAL_HINT}"
                ) from None
            if status == 301:
                region = e.response.get("ResponseMetadata", {}).get("HTTPHeaders", {})
                region = region.get("x-amz-bucket-region", "another region")
                raise StoreAccessError(
                    f"store {self.url}: bucket {self.bucket!r} is in {region}: set "
                    f"AWS_DEFAULT_REGION={region}"
                ) from None
            raise StoreAccessError(f"store {self.url}: {describe(e)}") from None
        except NoRegionError:
            raise StoreAccessError(
                f"store {self.url}: no AWS region configured: set AWS_DEFAULT_REGION"
            ) from None
        except NoCredentialsError:
            raise StoreAccessError(
                f"store {self.url}: no AWS credentials found: {CREDENTIAL_HINT}"
            ) from None
        except EndpointConnectionError:
            raise StoreAccessError(
                f"store {self.url}: cannot connect to {where}: check AWS_ENDPOINT_URL "
                "and that the server is up"
            ) from None
        except (TimeoutError, BotoCoreError, OSError) as e:
            raise StoreAccessError(f"store {self.url}: {where} did not answer: {e}") from None

    # -- presence ----------------------------------------------------------------------

    async def _exists(self, name: str) -> bool:
        async with self._requests:
            try:
                await self.call("head_object", name, Key=name)
            except StoreUnavailableError as e:
                if status_of(e) == 404:
                    return False
                raise
        return True

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

    async def _upload(self, item: BlobItem, name: str) -> None:
        source = await asyncio.to_thread(open_source, item)
        try:
            if source.size >= self.multipart.threshold:
                await self.multipart.upload(item.md5_hex, name, source)
                return
            if source.size <= _INLINE:
                body: bytes | SourceRange = await asyncio.to_thread(source.read, 0, source.size)
            else:
                body = SourceRange(source, 0, source.size)
            md5 = base64.b64encode(bytes.fromhex(item.md5_hex)).decode()
            async with self._requests:
                try:
                    answer = await self.call(
                        "put_object",
                        name,
                        Key=name,
                        Body=body,
                        ContentMD5=md5,
                        ContentLength=source.size,
                    )
                except StoreUnavailableError as e:
                    if isinstance(body, SourceRange) and body.error is not None:
                        raise body.error from None
                    if code_of(e) in ("BadDigest", "InvalidDigest"):
                        raise content_changed(str(source.path), source.size) from None
                    raise
            if not etag_matches(answer, item.md5_hex):
                # A server that does not check Content-MD5 stored other bytes.
                await self.call("delete_object", name, Key=name)
                raise content_changed(str(source.path), source.size)
        finally:
            source.close()

    # -- manifests -----------------------------------------------------------------------

    async def put_manifest(self, artifact_digest: str, data: bytes) -> str:
        """Store a manifest unless one is there: a conditional PUT (``If-None-Match:
        *``); on a server without conditional writes, a HEAD first."""
        key = manifest_key(artifact_digest)
        name = self.key(key)
        md5 = base64.b64encode(_md5(data)).decode()
        params = {"Key": name, "Body": data, "ContentMD5": md5, "ContentType": "application/json"}
        async with self._requests:
            try:
                await self.call("put_object", name, IfNoneMatch="*", **params)
            except StoreUnavailableError as e:
                if status_of(e) == 412:
                    return key  # the first writer won
                if status_of(e) != 501 and code_of(e) != "NotImplemented":
                    raise
                if not await self._exists_unbounded(name):
                    await self.call("put_object", name, **params)
        return key

    async def _exists_unbounded(self, name: str) -> bool:
        try:
            await self.call("head_object", name, Key=name)
        except StoreUnavailableError as e:
            if status_of(e) == 404:
                return False
            raise
        return True

    async def get_manifest(self, key: str) -> bytes:
        """The bytes of the manifest at ``key``."""
        name = self.key(check_manifest_key(key))
        async with self._requests:
            try:
                response = await self.call("get_object", name, Key=name)
                async with response["Body"] as body:
                    data: bytes = await body.read()
            except StoreUnavailableError as e:
                if status_of(e) == 404:
                    raise ObjectNotFoundError(key, self.url) from None
                raise
            except (TimeoutError, BotoCoreError, OSError) as e:
                raise StoreUnavailableError(f"s3://{self.bucket}/{name}", describe(e)) from e
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

    async def list_uploads(self) -> AsyncIterator[tuple[str, str, float]]:
        """``(key, upload_id, initiated)`` of unfinished multipart uploads of blobs."""
        params: dict[str, Any] = {"Prefix": self._blobs_prefix}
        while True:
            async with self._requests:
                page = await self.call("list_multipart_uploads", self._blobs_prefix, **params)
            for u in page.get("Uploads", ()):
                initiated = u.get("Initiated") or datetime.datetime.now(datetime.UTC)
                yield u["Key"], u["UploadId"], initiated.timestamp()
            if not page.get("IsTruncated"):
                return
            params["KeyMarker"] = page.get("NextKeyMarker", "")
            params["UploadIdMarker"] = page.get("NextUploadIdMarker", "")


def _md5(data: bytes) -> bytes:
    import hashlib

    return hashlib.md5(data).digest()


def _is_md5(text: str) -> bool:
    try:
        check_md5_hex(text)
    except ValueError:
        return False
    return True
