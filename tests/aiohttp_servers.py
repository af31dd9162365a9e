"""aiohttp servers on a thread of their own, for tests: a file server for HTTP
references and a counting reverse proxy. The fixtures are in servers.py."""

from __future__ import annotations

import asyncio
import io
import threading
from collections.abc import Awaitable
from pathlib import Path
from typing import Any
from urllib.parse import quote

from aiohttp import ClientSession, web

HOST = "127.0.0.1"


class ThreadServer:
    """An aiohttp application served on its own thread and event loop, on 127.0.0.1."""

    def __init__(self, app: web.Application) -> None:
        self.app = app
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._runner = web.AppRunner(app, access_log=None)
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def _run(self, coro: Awaitable[Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(30)  # type: ignore[arg-type]

    def start(self) -> None:
        self._thread.start()

        async def up() -> int:
            await self._runner.setup()
            site = web.TCPSite(self._runner, HOST, 0)
            await site.start()
            server = site._server
            assert server is not None
            return int(server.sockets[0].getsockname()[1])  # type: ignore[attr-defined]

        self.port = self._run(up())

    def stop(self) -> None:
        try:
            self._run(self._runner.cleanup())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(30)
            self._loop.close()


class HttpFiles:
    """A file server over ``root`` with switches for the cases HTTP references meet."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.etag = True
        self.head = True
        self.status: int | None = None
        self.requests: list[tuple[str, str]] = []
        app = web.Application()
        app.router.add_route("*", "/{path:.*}", self._serve)
        app.on_response_prepare.append(self._strip_etag)
        self._server = ThreadServer(app)

    def url(self, name: str) -> str:
        """The URL of the file ``root/name``."""
        return f"{self._server.url}/{quote(name)}"

    def write(self, name: str, data: bytes) -> str:
        """Create ``root/name`` with ``data``; return its URL."""
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return self.url(name)

    async def _serve(self, request: web.Request) -> web.StreamResponse:
        self.requests.append((request.method, request.path))
        if self.status is not None:
            return web.Response(status=self.status, text="unavailable\n")
        if request.method == "HEAD" and not self.head:
            return web.Response(status=405, text="HEAD not allowed\n")
        if request.method not in ("GET", "HEAD"):
            return web.Response(status=405)
        path = (self.root / request.match_info["path"]).resolve()
        if not path.is_relative_to(self.root.resolve()) or not path.is_file():
            return web.Response(status=404, text="not found\n")
        return web.FileResponse(path)

    async def _strip_etag(self, request: web.Request, response: web.StreamResponse) -> None:
        if not self.etag:
            response.headers.pop("ETag", None)

    def start(self) -> None:
        self._server.start()

    def stop(self) -> None:
        self._server.stop()


class CountingProxy:
    """A reverse proxy to ``target`` that records each request's method, path and query.

    Requests are forwarded as they came (headers included, so signatures still hold).
    ``in_flight`` counts those still being forwarded: a part whose body had fully
    arrived when a daemon died still reaches the bucket.
    """

    def __init__(self, target: str) -> None:
        self.target = target.rstrip("/")
        self.requests: list[tuple[str, str, str]] = []
        self.in_flight = 0
        self._session: ClientSession | None = None
        app = web.Application(client_max_size=1 << 30)
        app.router.add_route("*", "/{path:.*}", self._forward)
        app.on_cleanup.append(self._close)
        self._server = ThreadServer(app)

    @property
    def url(self) -> str:
        return self._server.url

    def count(self, method: str | None = None, query_has: str | None = None) -> int:
        """Requests seen, optionally only those with this method and query text."""
        return sum(
            1
            for m, _, q in self.requests
            if (method is None or m == method) and (query_has is None or query_has in q)
        )

    def parts(self) -> list[int]:
        """The part numbers of the S3 UploadPart requests seen, in order."""
        return [
            int(q.split("partNumber=")[1].split("&")[0])
            for m, _, q in self.requests
            if m == "PUT" and "partNumber=" in q
        ]

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        self.in_flight += 1
        try:
            return await self._send(request)
        finally:
            self.in_flight -= 1

    async def _send(self, request: web.Request) -> web.StreamResponse:
        self.requests.append((request.method, request.path, request.query_string))
        if self._session is None:
            self._session = ClientSession(auto_decompress=False)
        body = await request.read()
        headers = {k: v for k, v in request.headers.items() if k.lower() != "transfer-encoding"}
        async with self._session.request(
            request.method,
            self.target + request.rel_url.raw_path_qs,
            headers=headers,
            # A stream, not bytes: aiohttp warns (an error here) on large bytes bodies.
            data=io.BytesIO(body) if body else None,
            allow_redirects=False,
        ) as upstream:
            payload = await upstream.read()
            # A HEAD's Content-Length is the object's size, not its (empty) body's: kept.
            dropped = ("transfer-encoding", "connection")
            if request.method != "HEAD":
                dropped += ("content-length",)
            out = {k: v for k, v in upstream.headers.items() if k.lower() not in dropped}
            if request.method == "HEAD":
                return web.Response(status=upstream.status, headers=out)
            return web.Response(status=upstream.status, body=payload, headers=out)

    async def _close(self, app: web.Application) -> None:
        if self._session is not None:
            await self._session.close()

    def start(self) -> None:
        self._server.start()

    def stop(self) -> None:
        self._server.stop()


__all__ = ["CountingProxy", "HttpFiles", "ThreadServer"]
