"""The socket's doorman: who may hold a connection, and for how long without working it.

Every caller of the socket is a local process, but not necessarily a friendly one: with
mode 0660 every member of the daemon's group can connect. Without bounds, a caller who
opens connections and sends half a request (slowloris) holds a descriptor each for as
long as it likes, until the daemon cannot open the files it hashes. So:

- **Per user, and in all.** A connection is counted against its peer's uid (the
  kernel's ``SO_PEERCRED``, which no caller can forge). One beyond
  ``connections_per_user``, or beyond ``max_connections`` in all, is closed at once:
  nothing of it is read, no handler runs. One user cannot take the others' share.
- **Headers in time.** A connection has ``header_timeout`` seconds, from connecting or
  from its last answer, to send a whole request line and headers; then it is closed.
  An idle keep-alive connection goes the same way.
- **Body in time.** A request has ``body_timeout`` seconds once its headers are in to
  send its body; it is then answered 408 and closed.
- **Long polls are not slow clients.** A request whose headers and body are in waits
  for its answer as long as its handler takes (``?wait=300``): no deadline runs
  while a handler does.

aiohttp has no header or body deadline of its own (its keep-alive timer closes a
connection that sends nothing whole, but a stalled body is not covered), so each
connection is wrapped in a protocol that counts it, starts the header deadline, and
hands everything on to aiohttp's own handler; a middleware tells it when a request is
in and when it has been answered.
"""

from __future__ import annotations

import asyncio
import resource
import socket
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final, cast

from aiohttp import web
from aiohttp.typedefs import Middleware
from aiohttp.web_protocol import RequestHandler

from artisync.config import Config
from artisync.daemon.peer import peer_of
from artisync.logs import get_logger

__all__ = ["ConnectionGuard", "GuardedSite", "SocketLimits", "handler_settings"]

log = get_logger("artisync.daemon")

# Closed connections are logged as a count at most this often: a flood of them must not
# become a flood of log lines.
LOG_EVERY_SECONDS: Final = 60.0

_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True, slots=True)
class SocketLimits:
    """The bounds a :class:`ConnectionGuard` enforces (see the module's docstring)."""

    header_timeout: float
    body_timeout: float
    per_user: int
    total: int

    @classmethod
    def from_config(cls, config: Config) -> SocketLimits:
        """The configured limits, with ``total`` cut to half the process's descriptor
        limit: the daemon's own files (snapshots being hashed, the store, the registry)
        need the other half, and a systemd user unit's soft limit is often 1024."""
        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
        total = config.max_connections
        if soft != resource.RLIM_INFINITY:
            total = min(total, max(1, soft // 2))
        return cls(
            header_timeout=float(config.header_timeout),
            body_timeout=float(config.body_timeout),
            per_user=config.connections_per_user,
            total=total,
        )


def handler_settings(limits: SocketLimits) -> dict[str, Any]:
    """Keyword arguments for aiohttp's request handler (``web.AppRunner(**...)``)."""
    return {
        # aiohttp's own idle timer, at the header deadline: the same rule for idle
        # keep-alive connections where the guard is not in front (the TCP metrics port).
        "keepalive_timeout": limits.header_timeout,
        # The API's request lines and headers are short; these bound what a connection
        # can make the parser hold (128 headers of 8 KiB each by default, 1 MiB).
        "max_line_size": 4096,
        "max_field_size": 4096,
        "max_headers": 32,
        # No draining of a body the handler did not read (a 408, a 413): a Unix socket
        # delivers the answer already written even when the caller's request was cut,
        # and draining would give a slow body more time than body_timeout.
        "lingering_time": 0,
    }


class _Throttled:
    """Counts events and logs them at most every :data:`LOG_EVERY_SECONDS`."""

    def __init__(self, event: str, why: str) -> None:
        self._event, self._why = event, why
        self._count = 0
        self._next = 0.0

    def __call__(self, **fields: Any) -> None:
        self._count += 1
        now = time.monotonic()
        if now >= self._next:
            log.warning(self._event, connections=self._count, why=self._why, **fields)
            self._count = 0
            self._next = now + LOG_EVERY_SECONDS


class ConnectionGuard:
    """Admits, counts and times the connections of one listening socket."""

    def __init__(self, limits: SocketLimits) -> None:
        self.limits = limits
        self._per_user: Counter[int | None] = Counter()
        self._total = 0
        self._open: dict[asyncio.BaseTransport, _GuardedConnection] = {}
        self._refused = _Throttled(
            "connections_refused", "the caller's user, or all callers, hold the most allowed"
        )
        self._too_slow = _Throttled(
            "connections_closed", "no whole request line and headers within header_timeout"
        )

    def protocol_factory(self, server: web.Server) -> Callable[[], asyncio.Protocol]:
        """What the listening socket makes for each connection: aiohttp's handler from
        ``server``, behind the guard."""
        return lambda: _GuardedConnection(self, server)

    def _admit(self, connection: _GuardedConnection, user: int | None) -> bool:
        if self._total >= self.limits.total or self._per_user[user] >= self.limits.per_user:
            self._refused(
                uid=user,
                user_holds=self._per_user[user],
                per_user=self.limits.per_user,
                total=self.limits.total,
            )
            return False
        self._per_user[user] += 1
        self._total += 1
        assert connection.transport is not None
        self._open[connection.transport] = connection
        return True

    def _release(self, connection: _GuardedConnection, user: int | None) -> None:
        self._total -= 1
        self._per_user[user] -= 1
        if self._per_user[user] <= 0:
            del self._per_user[user]
        if connection.transport is not None:
            self._open.pop(connection.transport, None)

    def middleware(self) -> Middleware:
        """The app middleware that stops the header deadline while a request is handled
        (a long poll is a whole request waiting for its answer) and reads the body
        within ``body_timeout``."""

        @web.middleware
        async def deadlines(request: web.Request, handler: _Handler) -> web.StreamResponse:
            transport = request.transport
            connection = self._open.get(transport) if transport is not None else None
            if connection is not None:
                connection.request_started()
            try:
                try:
                    # Read here, within the deadline; the handler's request.json() then
                    # uses the body aiohttp keeps.
                    async with asyncio.timeout(self.limits.body_timeout):
                        await request.read()
                except TimeoutError:
                    answer = web.json_response(
                        {
                            "error": f"the request's body did not arrive within "
                            f"{self.limits.body_timeout:g} s; send it with the headers"
                        },
                        status=408,
                    )
                    answer.force_close()
                    return answer
                return await handler(request)
            finally:
                if connection is not None:
                    connection.request_answered()

        return deadlines


class _GuardedConnection(asyncio.Protocol):
    """One connection: counted, timed, and otherwise aiohttp's ``RequestHandler``."""

    def __init__(self, guard: ConnectionGuard, server: web.Server) -> None:
        self._guard = guard
        self._server = server
        self._inner: RequestHandler | None = None
        self._user: int | None = None
        self._deadline: asyncio.TimerHandle | None = None
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # Not an isinstance test: uvloop's transports do not derive from asyncio's.
        transport = cast(asyncio.Transport, transport)
        self.transport = transport
        peer = peer_of(transport.get_extra_info("socket"))
        self._user = None if peer is None else peer.uid
        if not self._guard._admit(self, self._user):
            self.transport = None
            transport.abort()  # at once: nothing read, nothing buffered to send
            return
        self._inner = self._server()
        self._inner.connection_made(transport)
        self._start_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_deadline()
        if self._inner is not None:
            self._guard._release(self, self._user)
            self._inner.connection_lost(exc)
            self._inner = None
        self.transport = None

    def data_received(self, data: bytes) -> None:
        if self._inner is not None:
            self._inner.data_received(data)

    def eof_received(self) -> None:
        # None: the transport closes its side once the caller has closed its own.
        if self._inner is not None:
            self._inner.eof_received()

    def pause_writing(self) -> None:
        if self._inner is not None:
            self._inner.pause_writing()

    def resume_writing(self) -> None:
        if self._inner is not None:
            self._inner.resume_writing()

    def request_started(self) -> None:
        """A whole request line and headers are in: no header deadline while it runs."""
        self._stop_deadline()

    def request_answered(self) -> None:
        """The handler answered: the next request's headers are due within the limit."""
        if self.transport is not None and not self.transport.is_closing():
            self._start_deadline()

    def _start_deadline(self) -> None:
        self._stop_deadline()
        loop = asyncio.get_running_loop()
        self._deadline = loop.call_later(self._guard.limits.header_timeout, self._expire)

    def _stop_deadline(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expire(self) -> None:
        self._deadline = None
        if self.transport is not None:
            self._guard._too_slow(uid=self._user, header_timeout=self._guard.limits.header_timeout)
            self.transport.abort()


class GuardedSite(web.BaseSite):
    """An aiohttp site serving a listening socket through a :class:`ConnectionGuard`."""

    def __init__(self, runner: web.AppRunner, sock: socket.socket, guard: ConnectionGuard) -> None:
        super().__init__(runner)
        self._sock = sock
        self._guard = guard

    @property
    def name(self) -> str:
        """The socket's address, as aiohttp's own sites name theirs."""
        return f"http://unix:{self._sock.getsockname()}:"

    async def start(self) -> None:
        """Listen: every connection made goes through the guard first."""
        await super().start()
        server = self._runner.server
        assert server is not None
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            self._guard.protocol_factory(server), sock=self._sock, backlog=self._backlog
        )
