"""One entry point for every remote reference: expand it, or fetch what it recorded.

:class:`RemoteReferences` opens the clients a scheme needs on first use (one
aiobotocore client, one aiohttp session shared by GCS and HTTP) and closes them on
exit, so a submission with 10,000 references to one bucket makes one client.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from types import TracebackType
from typing import Any, Final

import aiohttp

from artisync.references.gcs import GCSReferences
from artisync.references.http import HTTPReferences
from artisync.references.s3 import S3References, enter_s3_client
from artisync.references.uri import PageSink, RefEntry, RemoteURI, object_name, parse_remote

__all__ = ["DEFAULT_MAX_OBJECTS", "RemoteReferences"]

DEFAULT_MAX_OBJECTS: Final = 10_000
"""``max_objects`` when ``add_reference`` was given none (W&B's default)."""

_TIMEOUT: Final = aiohttp.ClientTimeout(total=None, connect=10, sock_read=60)


class RemoteReferences:
    """Expands and fetches ``s3://``, ``gs://`` and ``http(s)://`` references.

    Use as ``async with RemoteReferences() as refs:``.
    """

    def __init__(self) -> None:
        self._stack = contextlib.AsyncExitStack()
        self._session: aiohttp.ClientSession | None = None
        self._s3: S3References | None = None
        self._gcs: GCSReferences | None = None
        self._http: HTTPReferences | None = None

    async def __aenter__(self) -> RemoteReferences:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._stack.aclose()

    async def expand(
        self,
        uri: str,
        name: str = "",
        checksum: bool = True,
        max_objects: int | None = None,
        sink: PageSink | None = None,
    ) -> list[RefEntry]:
        """The manifest entries of the reference ``uri`` added under ``name``.

        With ``sink``, a prefix's objects are given to it a listing page at a time and
        not returned (a million of them must not be held at once); what is returned
        is then only a single object's entry.

        Raises:
            InvalidInputError: ``uri`` is not a remote reference.
            ReferenceFailure: the user's to fix (missing object, credentials, too many
                objects), with a message saying what to do.
            ReferenceUnavailableError: the server cannot be reached now; retry.
        """
        ref = parse_remote(uri)
        if not checksum:
            # Nothing is asked of the server: the URI is the digest, as in W&B.
            return [RefEntry(object_name(ref, name, None), ref.base, ref.base, None)]
        limit = max_objects or DEFAULT_MAX_OBJECTS
        if ref.scheme == "s3":
            return await (await self._s3_refs(ref)).expand(ref, name, limit, sink)
        if ref.scheme == "gs":
            return await (await self._gcs_refs()).expand(ref, name, limit, sink)
        return await (await self._http_refs()).expand(ref, name)

    async def fetch(self, ref: str, digest: str, extra: dict[str, Any], dest: Path) -> int:
        """Write the recorded content of the entry with ``ref``, ``digest`` and ``extra``
        into the new file ``dest``; return its size.

        Raises:
            ReferenceNotFoundError: the object (or its recorded version) is gone.
            ReferenceChangedError: the object is no longer the version recorded.
            ReferenceFailure: any other problem the user has to fix (credentials, …).
            ReferenceUnavailableError: the server cannot be reached now.
        """
        parsed = parse_remote(ref)
        scheme = parsed.scheme
        if scheme == "s3":
            return await (await self._s3_refs(parsed)).fetch(ref, digest, extra, dest)
        if scheme == "gs":
            return await (await self._gcs_refs()).fetch(ref, digest, extra, dest)
        return await (await self._http_refs()).fetch(ref, digest, extra, dest)

    async def _aiohttp(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = await self._stack.enter_async_context(
                aiohttp.ClientSession(timeout=_TIMEOUT)
            )
        return self._session

    async def _s3_refs(self, ref: RemoteURI) -> S3References:
        if self._s3 is None:
            self._s3 = S3References(await enter_s3_client(self._stack, ref))
        return self._s3

    async def _gcs_refs(self) -> GCSReferences:
        if self._gcs is None:
            self._gcs = GCSReferences(await self._aiohttp())
        return self._gcs

    async def _http_refs(self) -> HTTPReferences:
        if self._http is None:
            self._http = HTTPReferences(await self._aiohttp())
        return self._http
