"""Bytes to and from the URLs of a server's grants: plain HTTP, no credentials.

What a node sends to a presigned URL or a GCS session URI (:mod:`artisync.store.grants`
says what each grant is), and how a failure is judged:

- the bucket or the network failing (5xx, 408, 429, a dropped connection, a timeout) is
  tried again a few times (:func:`~artisync.store.retry.retrying`), then raised as
  :class:`~artisync.store.StoreUnavailableError`, which the daemon retries for as long
  as it takes (with new grants: a URL may have expired meanwhile);
- a body read from a source file that failed (gone, shrunk) raises that file's
  :class:`OSError`, never the HTTP client's wrapping of it;
- every other answer is handed back (:class:`Answer`) for the caller to read: 412 (a
  manifest already there), 308 (a session's progress), 400 ``BadDigest`` (bytes that are
  not the blob's).

Bodies stream from the file (:class:`~artisync.store.source.SourceRange`); downloads
stream into theirs, a MiB at a time.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import aiohttp
from multidict import CIMultiDictProxy

from artisync.store.base import StoreUnavailableError
from artisync.store.remote import content_changed
from artisync.store.retry import retrying
from artisync.store.source import SourceFile, SourceRange

__all__ = ["Answer", "Body", "check_put", "fetch_bytes", "fetch_into", "send", "session_offset"]

T = TypeVar("T")

Body = bytes | SourceRange
"""What a request sends: bytes in memory (small), or a range of a source file."""

_CHUNK = 1 << 20  # bytes a download writes at a time
# aiohttp warns (an error under the tests) when given large bytes: a stream past this.
_BYTES_MAX = 1 << 20


class _Transient(Exception):
    """An answer worth asking again (5xx, 408, 429)."""

    def __init__(self, status: int, text: str) -> None:
        super().__init__(f"HTTP {status}: {text}")
        self.status = status


@dataclass(frozen=True, slots=True)
class Answer:
    """What a URL answered: its status, headers and (short) body."""

    status: int
    headers: CIMultiDictProxy[str]
    text: str

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def describe(self) -> str:
        """The answer as a message names it."""
        return f"HTTP {self.status}: {self.text[:300]}"


def _transient(e: BaseException) -> bool:
    # aiohttp wraps its connection's OSErrors in ClientOSError (a ClientError); a bare
    # OSError is a local file's (a download's destination), not worth asking again.
    return isinstance(e, _Transient | aiohttp.ClientError | TimeoutError)


def _as_body(body: Body | None) -> bytes | io.BytesIO | SourceRange | None:
    if isinstance(body, SourceRange):
        body.seek(0)  # again from its start on every attempt
        return body
    if body is not None and len(body) > _BYTES_MAX:
        return io.BytesIO(body)
    return body


async def send(
    http: aiohttp.ClientSession,
    method: str,
    url: str,
    *,
    where: str,
    headers: Mapping[str, str] | None = None,
    body: Body | None = None,
) -> Answer:
    """``method url`` with ``headers`` and ``body``; the answer, unless the bucket or
    the network fails (:class:`StoreUnavailableError` naming ``where``) or the source
    file does (its :class:`OSError`)."""

    async def attempt() -> Answer:
        async with http.request(
            method,
            url,
            data=_as_body(body),
            headers=dict(headers or {}),
            skip_auto_headers=("Content-Type",),  # a presigned URL signs what it signs
        ) as response:
            text = (await response.read()).decode(errors="replace")
            if response.status >= 500 or response.status in (408, 429):
                raise _Transient(response.status, text[:300])
            return Answer(response.status, response.headers, text)

    def transient(e: BaseException) -> bool:
        # A source that failed fails again: no point sending it twice.
        source_failed = isinstance(body, SourceRange) and body.error is not None
        return not source_failed and _transient(e)

    try:
        return await retrying(attempt, transient)
    except (_Transient, aiohttp.ClientError, TimeoutError) as e:
        if isinstance(body, SourceRange) and body.error is not None:
            raise body.error from None
        raise StoreUnavailableError(where, str(e) or type(e).__name__) from e


def check_put(answer: Answer, md5_hex: str, source: SourceFile, what: str, url: str) -> None:
    """Raise unless a PUT of ``source``'s bytes (or a part of them) was taken whole,
    with the MD5 they were hashed with."""
    if answer.status == 200:
        if answer.headers.get("ETag", "").strip('"') != md5_hex:
            raise content_changed(str(source.path), source.size)
        return
    if answer.status == 400 and ("BadDigest" in answer.text or "InvalidDigest" in answer.text):
        raise content_changed(str(source.path), source.size)
    # 403: a URL expired or refused; the daemon retries, with new grants.
    raise StoreUnavailableError(url, f"{what} of {source.path} refused: {answer.describe()}")


def session_offset(answer: Answer) -> int:
    """Where a GCS session stands after a 308: the bytes it has committed
    (``Range: bytes=0-N``; none said: nothing yet)."""
    last = answer.headers.get("Range", "").rpartition("-")[2]
    return int(last) + 1 if last.isdigit() else 0


async def fetch_bytes(http: aiohttp.ClientSession, url: str, *, where: str) -> bytes | None:
    """The body of ``GET url`` (a manifest); None if the bucket has no such object."""

    async def attempt() -> bytes | None:
        async with http.get(url) as response:
            if response.status == 404:
                return None
            data = await response.read()
            if response.status != 200:
                raise _bad(response.status, data, where)
            return data

    return await _fetching(attempt, where)


async def fetch_into(http: aiohttp.ClientSession, url: str, dest: Path, *, where: str) -> bool:
    """Stream ``GET url`` into the new file ``dest``; False if the bucket has no such
    object. What arrives is not checked here: every reader hashes what it fetched
    before it uses a byte of it (:mod:`artisync.download.via_cache`)."""

    async def attempt() -> bool:
        async with http.get(url) as response:
            if response.status == 404:
                return False
            if response.status != 200:
                raise _bad(response.status, await response.read(), where)
            with open(dest, "wb") as out:
                async for chunk in response.content.iter_chunked(_CHUNK):
                    await asyncio.to_thread(out.write, chunk)
            return True

    return await _fetching(attempt, where)


def _bad(status: int, data: bytes, where: str) -> Exception:
    text = data[:300].decode(errors="replace")
    if status >= 500 or status in (408, 429):
        return _Transient(status, text)
    return StoreUnavailableError(where, f"HTTP {status}: {text}")


async def _fetching(attempt: Callable[[], Awaitable[T]], where: str) -> T:
    try:
        return await retrying(attempt, _transient)
    except (_Transient, aiohttp.ClientError, TimeoutError) as e:
        raise StoreUnavailableError(where, str(e) or type(e).__name__) from e
