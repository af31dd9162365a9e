"""``http(s)://`` references: one URL, one entry.

As W&B's HTTP handler: the entry's digest is the server's ``ETag`` without its quotes,
``extra = {"etag": <the header as sent>}``, and ``size`` the ``Content-Length``; a
server that sends no ETag gives the URL itself as digest (nothing can tell a new
content from the old one then, and a download cannot check it either). W&B sends a
GET and reads only its headers; a HEAD asks for the same without a body, and servers
that refuse HEAD (405, 403 for URLs signed for GET, …) get the GET.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

import aiohttp
from multidict import CIMultiDict

from artisync.references.errors import (
    ReferenceAccessError,
    ReferenceChangedError,
    ReferenceFailure,
    ReferenceNotFoundError,
    ReferenceUnavailableError,
)
from artisync.references.uri import RefEntry, RemoteURI, object_name

__all__ = ["HTTPReferences"]

_CHUNK: Final = 1 << 20
_TRANSIENT: Final = frozenset({408, 425, 429})


# Looking at a URL reads its headers only (their size is bounded by aiohttp's parser),
# and all of them must come within this: a server that trickles them holds no
# pipeline slot for longer (downloads, which read bodies, keep the session's timeouts).
_HEADERS_TIMEOUT: Final = aiohttp.ClientTimeout(total=60, connect=10)


class HTTPReferences:
    """Expands and fetches ``http(s)://`` references over one aiohttp session."""

    def __init__(self, session: aiohttp.ClientSession) -> None:
        self.session = session

    async def expand(self, ref: RemoteURI, name: str) -> list[RefEntry]:
        """The one entry of the URL ``ref``."""
        headers = await self._headers(ref.uri)
        etag = headers.get("ETag")
        length = headers.get("Content-Length")
        size = int(length) if length is not None and length.isdigit() else None
        extra: dict[str, Any] = {}
        digest = ref.uri
        if etag:
            extra["etag"] = etag
            digest = etag[1:-1] if len(etag) >= 2 and etag[0] == etag[-1] == '"' else etag
        return [RefEntry(object_name(ref, name, None), ref.uri, digest, size, extra)]

    async def _headers(self, url: str) -> CIMultiDict[str]:
        """The response headers for ``url``: from a HEAD, or from a GET if HEAD fails."""
        async with self._request("HEAD", url, _HEADERS_TIMEOUT) as response:
            if response.status < 400:
                return response.headers.copy()
            if response.status >= 500 or response.status in _TRANSIENT:
                raise _status_error(url, response.status, response.reason)
        async with self._request("GET", url, _HEADERS_TIMEOUT) as response:
            if response.status >= 400:
                raise _status_error(url, response.status, response.reason)
            # Headers only: the body is not read; closing drops the connection.
            response.close()
            return response.headers.copy()

    def _request(
        self, method: str, url: str, timeout: aiohttp.ClientTimeout | None = None
    ) -> _Request:
        return _Request(self.session, method, url, timeout)

    async def fetch(self, ref: str, digest: str, extra: dict[str, Any], dest: Path) -> int:
        """Write the content at ``ref`` into the new file ``dest``; return its size.

        Raises:
            ReferenceChangedError: the server now sends another ETag than was recorded.
            ReferenceNotFoundError: the URL answers 404 or 410.
        """
        expected = extra.get("etag")
        size = 0
        async with self._request("GET", ref) as response:
            if response.status >= 400:
                raise _status_error(ref, response.status, response.reason)
            actual = response.headers.get("ETag")
            if expected is not None and actual != expected:
                raise ReferenceChangedError(
                    ref,
                    f"{ref} now has ETag {actual}, not {expected} as when it was logged",
                    str(expected),
                    str(actual),
                )
            with open(dest, "xb") as out:
                try:
                    async for chunk in response.content.iter_chunked(_CHUNK):
                        out.write(chunk)
                        size += len(chunk)
                except (TimeoutError, aiohttp.ClientError) as e:
                    raise ReferenceUnavailableError(ref, f"the download broke off: {e}") from e
        return size


class _Request:
    """One request whose connection errors become :class:`ReferenceUnavailableError`."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        method: str,
        url: str,
        timeout: aiohttp.ClientTimeout | None,
    ) -> None:
        self._session = session
        self._method = method
        self._url = url
        self._timeout = timeout
        self._response: aiohttp.ClientResponse | None = None

    async def __aenter__(self) -> aiohttp.ClientResponse:
        try:
            self._response = await self._session.request(
                self._method,
                self._url,
                allow_redirects=True,
                auto_decompress=False,
                timeout=self._timeout or self._session.timeout,
            )
        except (TimeoutError, aiohttp.ClientError, OSError) as e:
            raise ReferenceUnavailableError(self._url, str(e) or type(e).__name__) from e
        return self._response

    async def __aexit__(self, *exc: object) -> None:
        if self._response is not None:
            self._response.release()


def _status_error(url: str, status: int, reason: str | None) -> Exception:
    said = f"{status} {reason or ''}".strip()
    if status in (404, 410):
        return ReferenceNotFoundError(url, f"{url} does not exist (the server answered {said})")
    if status in (401, 403):
        return ReferenceAccessError(
            url, f"{url} refused access (the server answered {said}); is the URL public?"
        )
    if status >= 500 or status in _TRANSIENT:
        return ReferenceUnavailableError(url, f"the server answered {said}")
    return ReferenceFailure(url, f"{url} cannot be read: the server answered {said}")
