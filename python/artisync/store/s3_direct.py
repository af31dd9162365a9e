"""PUTs of small blobs and HEADs, sent straight over aiohttp instead of through botocore.

Why: uploading many small files, botocore spends several times more CPU per PutObject
(its event hooks, request building and validation, user-agent assembly, endpoint
rules, signing, response parsing) than the HTTP request itself takes. On a small node
the S3 server and the training job compete for the same CPU, so that cost becomes the
upload's speed limit (README, "Remote stores", has the figures).

What stays the same as botocore's path:

- where a request goes: the URL of an object is learnt once from the botocore client
  itself (a presigned URL of a probe key), so the endpoint (``AWS_ENDPOINT_URL``,
  profiles, regions, virtual-hosted or path-style) is whatever botocore would use;
- who signs: the credentials the same aiobotocore session resolved (``AWS_*``
  variables, profiles, roles; temporary ones refreshed through it), SigV4 for the
  client's region (:mod:`artisync.store.s3_sign`, checked against botocore's signer);
- ``Content-MD5`` on every PUT, ``AWS_CA_BUNDLE`` (or the profile's ``ca_bundle``)
  for TLS, ``HTTP(S)_PROXY``/``NO_PROXY``, and the same timeouts;
- failures: a few retries of transient ones (5xx, throttling, dropped connections,
  timeouts; :func:`~artisync.store.s3_errors.is_transient`) with jittered backoff
  (:func:`~artisync.store.retry.retrying`), then
  :class:`~artisync.store.StoreUnavailableError` with a botocore ``ClientError`` as
  its cause, so :func:`~artisync.store.s3_errors.status_of` and ``code_of`` read it
  the same way.

Everything else (multipart, listings, manifests, deletes) stays on botocore.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar
from urllib.parse import quote, urlsplit

import aiohttp
from botocore.exceptions import ClientError
from botocore.httpsession import get_cert_path
from botocore.utils import get_environ_proxies
from yarl import URL

from artisync.store.base import BlobItem, StoreUnavailableError, md5_base64
from artisync.store.retry import retrying
from artisync.store.s3_errors import CREDENTIAL_HINT, describe, error_from_response, is_transient
from artisync.store.s3_sign import EMPTY_SHA256, UNSIGNED_PAYLOAD, Credentials, SigV4Signer
from artisync.store.source import open_source

__all__ = ["DIRECT_MAX", "DirectRequests", "read_small"]

T = TypeVar("T")

DIRECT_MAX = 1 << 20
"""Blobs up to this size go in one direct PUT from memory (aiohttp warns above it)."""

_PROBE = "p"  # a key whose presigned URL shows where keys go


def read_small(item: BlobItem) -> bytes:
    """The whole content of ``item``'s source, checked against what was hashed
    (blocking: one open, fstat, read and close)."""
    source = open_source(item)
    try:
        return source.read(0, source.size)
    finally:
        source.close()


async def _presigned(client: Any, bucket: str) -> str:
    url: str = await client.generate_presigned_url(
        "put_object", Params={"Bucket": bucket, "Key": _PROBE}
    )
    return url


async def _bucket_region(client: Any, bucket: str) -> str | None:
    """The region the server says ``bucket`` is in (``x-amz-bucket-region``), if it
    says (credentials that may not list the bucket still get it on the error)."""
    try:
        answer = await client.head_bucket(Bucket=bucket)
    except ClientError as e:
        answer = e.response
    region = answer.get("ResponseMetadata", {}).get("HTTPHeaders", {}).get("x-amz-bucket-region")
    return region if isinstance(region, str) and region else None


class DirectRequests:
    """Direct PUT and HEAD requests to one bucket, beside a botocore client.

    Made by :meth:`create` from the client and the session that made it; bound to
    the running event loop, like the client; :meth:`close` when done.
    """

    def __init__(
        self,
        *,
        bucket: str,
        base_url: str,
        region: str,
        credentials: Any,
        session: aiohttp.ClientSession,
        proxy: str | None,
        attempts: int,
    ) -> None:
        parts = urlsplit(base_url)
        self.bucket = bucket
        self.base_url = base_url  # scheme://host[:port]/path-prefix, keys follow it
        self._origin = f"{parts.scheme}://{parts.netloc}"
        self._base_path = parts.path
        self._signer = SigV4Signer(parts.netloc, region)
        self._credentials = credentials  # botocore's (refreshable) credentials object
        self._session = session
        self._proxy = proxy
        self._attempts = attempts

    @classmethod
    async def create(
        cls,
        client: Any,
        session: Any,
        bucket: str,
        *,
        endpoint: str | None,
        connections: int,
        attempts: int,
    ) -> DirectRequests:
        """Direct requests to ``bucket`` where the aiobotocore ``client`` (made by the
        aiobotocore ``session`` for ``endpoint``, None for AWS) sends them."""
        region = client.meta.region_name
        located = await _bucket_region(client, bucket)
        if located and located != region:
            # botocore follows the bucket to its region on every request (and caches
            # it); here it is decided once: that region's URL and signature.
            region = located
            regional = session.create_client(
                "s3", region_name=region, endpoint_url=endpoint, config=client.meta.config
            )
            async with regional as client_there:
                probe = await _presigned(client_there, bucket)
        else:
            probe = await _presigned(client, bucket)
        parts = urlsplit(probe)
        if not parts.path.endswith(f"/{_PROBE}"):
            raise StoreUnavailableError(
                f"s3://{bucket}", f"cannot tell where objects go from the URL {probe!r}"
            )
        base_url = f"{parts.scheme}://{parts.netloc}{parts.path[: -len(_PROBE)]}"
        credentials = await session.get_credentials()
        ssl_context: ssl.SSLContext | bool = True
        if parts.scheme == "https":
            cafile = session.get_config_variable("ca_bundle") or get_cert_path(True)
            # Loading a CA bundle reads files: off the loop.
            ssl_context = await asyncio.to_thread(ssl.create_default_context, cafile=cafile)
        config = client.meta.config
        proxies = getattr(config, "proxies", None) or get_environ_proxies(base_url)
        http = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=connections, ssl=ssl_context),
            timeout=aiohttp.ClientTimeout(
                total=None,
                sock_connect=config.connect_timeout,
                sock_read=config.read_timeout,
            ),
            auto_decompress=False,
        )
        return cls(
            bucket=bucket,
            base_url=base_url,
            region=region,
            credentials=credentials,
            session=http,
            proxy=proxies.get(parts.scheme),
            attempts=attempts,
        )

    async def close(self) -> None:
        """Close the connections."""
        await self._session.close()

    async def put(self, name: str, body: bytes, md5_hex: str) -> dict[str, str]:
        """PUT ``body`` as the object ``name`` with its ``Content-MD5``; the answer's
        headers as botocore would name them (``ETag``, ``ServerSideEncryption``,
        ``SSECustomerAlgorithm``), for :func:`~artisync.store.s3_errors.etag_matches`."""
        # UNSIGNED-PAYLOAD on http too, as the botocore client is configured
        # (s3_client.new_client): the signed Content-MD5 covers the body.
        sha = UNSIGNED_PAYLOAD
        extra = {"Content-MD5": md5_base64(md5_hex)}

        async def attempt() -> dict[str, str]:
            headers = await self._sign("PUT", name, sha, extra)
            async with self._session.put(
                self._url(name), data=body, headers=headers, proxy=self._proxy
            ) as response:
                payload = await response.read()
                if response.status != 200:
                    raise error_from_response(
                        "PutObject", response.status, response.headers, payload
                    )
                return _object_fields(response.headers)

        return await self._retried(name, attempt)

    async def get(self, name: str) -> bytes | None:
        """The bytes of the small object ``name`` (a manifest), or None if there is
        none: one GET, read whole (large objects are botocore's, streamed)."""

        async def attempt() -> bytes | None:
            headers = await self._sign("GET", name, EMPTY_SHA256, {})
            async with self._session.get(
                self._url(name), headers=headers, proxy=self._proxy
            ) as response:
                payload = await response.read()
                if response.status == 200:
                    return payload
                if response.status == 404:
                    return None
                raise error_from_response("GetObject", response.status, response.headers, payload)

        return await self._retried(name, attempt)

    async def exists(self, name: str) -> bool:
        """Whether the object ``name`` exists (one HEAD)."""
        return await self.stat(name) is not None

    async def stat(self, name: str) -> dict[str, str] | None:
        """The object ``name``'s ``ContentLength``, ``ETag`` and encryption headers as
        botocore names them, and its user metadata as ``x-amz-meta-*`` headers in lower
        case (one HEAD), or None if there is none."""

        async def attempt() -> dict[str, str] | None:
            headers = await self._sign("HEAD", name, EMPTY_SHA256, {})
            async with self._session.head(
                self._url(name), headers=headers, proxy=self._proxy
            ) as response:
                if response.status == 200:
                    fields = _object_fields(response.headers)
                    fields["ContentLength"] = response.headers.get("Content-Length", "")
                    fields.update(
                        (key.lower(), value)
                        for key, value in response.headers.items()
                        if key.lower().startswith("x-amz-meta-")
                    )
                    return fields
                if response.status == 404:
                    return None
                raise error_from_response("HeadObject", response.status, response.headers, b"")

        return await self._retried(name, attempt)

    # -- the request -------------------------------------------------------------------

    def _path(self, name: str) -> str:
        # As botocore encodes a key: UTF-8, percent-encoded but for '/' and '~'.
        return self._base_path + quote(name, safe="/~")

    def _url(self, name: str) -> URL:
        # encoded=True: the path goes out exactly as signed.
        return URL(self._origin + self._path(name), encoded=True)

    async def presigned_url(
        self,
        method: str,
        name: str,
        expires_in: int,
        headers: Mapping[str, str],
        params: Mapping[str, str] = {},  # read only
    ) -> str:
        """A URL that lets anyone send ``method`` to the object ``name`` (with the
        operation's query ``params``) for ``expires_in`` seconds, with exactly
        ``headers``, which it signs: what a server hands a node."""
        query = self._signer.presigned_query(
            method, self._path(name), await self._frozen(name), expires_in, headers, params
        )
        return f"{self._origin}{self._path(name)}?{query}"

    async def _sign(
        self, method: str, name: str, payload_sha256: str, extra: Mapping[str, str]
    ) -> dict[str, str]:
        credentials = await self._frozen(name)
        return self._signer.headers(method, self._path(name), credentials, payload_sha256, extra)

    async def _frozen(self, name: str) -> Credentials:
        if self._credentials is None:
            raise StoreUnavailableError(
                f"s3://{self.bucket}/{name}", f"no AWS credentials: {CREDENTIAL_HINT}"
            )
        frozen = await self._credentials.get_frozen_credentials()
        return Credentials(frozen.access_key, frozen.secret_key, frozen.token)

    async def _retried(self, name: str, attempt: Callable[[], Awaitable[T]]) -> T:
        try:
            return await retrying(attempt, is_transient, attempts=self._attempts)
        except (TimeoutError, ClientError, aiohttp.ClientError, OSError) as e:
            raise StoreUnavailableError(f"s3://{self.bucket}/{name}", describe(e)) from e


def _object_fields(h: Mapping[str, str]) -> dict[str, str]:
    """What an answer says of the object, named as botocore names it, for
    :func:`~artisync.store.s3_errors.etag_matches`."""
    return {
        "ETag": h.get("ETag", ""),
        "ServerSideEncryption": h.get("x-amz-server-side-encryption", ""),
        "SSECustomerAlgorithm": h.get("x-amz-server-side-encryption-customer-algorithm", ""),
    }
