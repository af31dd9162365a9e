"""Download URLs asked of a server many blobs at a time: :class:`DownloadUrls`.

A download fetches its blobs one call at a time (``get_blob``, a few dozen in flight),
but each URL is a grant the server gives only for a blob its caller may read, and one
request per blob would cost a round trip each. So the calls that wait at once on one
event loop share one ``POST /api/v1/downloads`` (up to 1,000 blobs): the first to ask
schedules the request, the others that ask before it goes join it.

Calls made under different keys (:func:`~artisync.registry.http.acting.acting_as`) are
never batched together: each request carries the key of the calls it answers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Final

from artisync.registry.http.acting import acting_key

__all__ = ["MAX_ASKED", "DownloadUrls"]

MAX_ASKED: Final = 1000
"""Blobs one request names: the server's bound."""

Ask = Callable[[list[str]], Awaitable[dict[str, str | None]]]


_Waiting = dict[str, list[asyncio.Future[str | None]]]


class DownloadUrls:
    """The URLs of blobs, asked in batches through ``ask`` (blob MD5s to a URL each, or
    None for a blob the caller may not read), from any number of event loops."""

    def __init__(self, ask: Ask) -> None:
        self._ask = ask
        # Calls waiting, by loop and key: each blob's futures.
        self._waiting: dict[tuple[asyncio.AbstractEventLoop, str | None], _Waiting] = {}
        self._sending: set[asyncio.Task[None]] = set()  # a loop keeps its tasks weakly

    async def url(self, md5_hex: str) -> str | None:
        """A URL that reads the blob ``md5_hex``, or None if the caller may not."""
        loop = asyncio.get_running_loop()
        batch = (loop, acting_key())
        future: asyncio.Future[str | None] = loop.create_future()
        waiting = self._waiting.get(batch)
        if waiting is None:
            waiting = self._waiting[batch] = {}
            # Started from this call's context, so it carries this call's key.
            task = loop.create_task(self._send(batch))
            self._sending.add(task)
            task.add_done_callback(self._sending.discard)
        waiting.setdefault(md5_hex, []).append(future)
        return await future

    async def _send(self, batch: tuple[asyncio.AbstractEventLoop, str | None]) -> None:
        await asyncio.sleep(0)  # the calls starting now join this request
        waiting = self._waiting.pop(batch, {})
        md5s = list(waiting)
        for start in range(0, len(md5s), MAX_ASKED):
            asked = md5s[start : start + MAX_ASKED]
            try:
                urls = await self._ask(asked)
            except asyncio.CancelledError:
                for md5 in md5s[start:]:
                    for future in waiting[md5]:
                        future.cancel()
                raise
            except Exception as e:
                for md5 in md5s[start:]:
                    for future in waiting[md5]:
                        if not future.done():
                            future.set_exception(e)
                return
            for md5 in asked:
                for future in waiting[md5]:
                    if not future.done():
                        future.set_result(urls.get(md5))
