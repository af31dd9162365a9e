"""The server's aiohttp application: the registry routes, health, readiness and metrics.

:func:`create_app` serves a registry it is handed and owns nothing that outlives a
request, so any number of processes may serve one database. Each route's operation runs
on a worker thread (the registry is synchronous; each call holds one pooled connection
for its transaction), as many at once as the pool has connections, so a burst waits in
the loop, not in the pool.

Every failure is answered as JSON, ``{"error": message, "kind": name}`` (plus ``field``
for a bad argument), with the status its kind means: ``InvalidInputError`` 400,
``NotFoundError`` 404, ``TypeConflictError`` 409, a body over the limit 413,
``RegistryUnavailableError`` (the database unreachable) 503, any other
``RegistryError`` 500. Clients map ``kind`` back to the exception the registry raised,
so a caller of the HTTP backend meets the same types as a caller of the database.
"""

from __future__ import annotations

import asyncio
import functools
import json
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Protocol

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from artisync.errors import (
    ArtisyncError,
    ForbiddenError,
    InvalidInputError,
    NotFoundError,
    RegistryError,
    RegistryUnavailableError,
    TypeConflictError,
    UnauthorizedError,
)
from artisync.logs import get_logger
from artisync.registry import Registry
from artisync.server import (
    routes_access,
    routes_commits,
    routes_lineage,
    routes_runs,
    routes_sweeps,
    routes_transfers,
    routes_versions,
)
from artisync.server.access.gate import Gate
from artisync.server.access.guard import Guard
from artisync.server.access.keys import read_authorization
from artisync.server.arguments import Arguments, BadArgument, parse_body
from artisync.server.caller import CALLER_KEY, Caller
from artisync.server.commit_batch import MAX_BATCH, BatchCommitter, CommitBatcher
from artisync.server.content import ContentCheck
from artisync.server.metrics import ServerMetrics
from artisync.server.routes import API, Awaited, Call, Operation, Route, encode

if TYPE_CHECKING:
    from artisync.registry.postgres.connection import PoolStats

__all__ = ["ROUTES", "SERVICE_ROUTES", "ServedRegistry", "create_app"]

log = get_logger("artisync.server")

ROUTES: Final[tuple[Route, ...]] = (
    *routes_access.ROUTES,
    *routes_runs.ROUTES,
    *routes_sweeps.ROUTES,
    *routes_versions.ROUTES,
    *routes_commits.ROUTES,
    *routes_lineage.ROUTES,
    *routes_transfers.ROUTES,
)
"""Every registry route of the API."""

SERVICE_ROUTES: Final = (("GET", "/healthz"), ("GET", "/readyz"), ("GET", "/metrics"))
"""The routes for the machines that run the server: liveness, readiness, metrics."""

READY_TIMEOUT: Final = 2.0
"""Seconds ``/readyz`` waits for the database: a probe must answer before its own
timeout (Kubernetes' default is 1 s more than this by convention of short probes)."""

# Most specific first: TypeConflictError and NotFoundError are RegistryErrors too.
_STATUS: Final = (
    (UnauthorizedError, 401),
    (ForbiddenError, 403),
    (NotFoundError, 404),
    (TypeConflictError, 409),
    (RegistryUnavailableError, 503),
    (InvalidInputError, 400),
    (RegistryError, 500),
)


class ServedRegistry(Registry, BatchCommitter, Protocol):
    """What the server needs of its registry beyond the contract: group commits, a
    readiness check and the pool's numbers (``PostgresRegistry`` has them)."""

    def ping(self, timeout: float = ...) -> None:
        """Return once the database answers, else raise ``RegistryUnavailableError``."""

    def pool_stats(self) -> PoolStats:
        """The connection pool's size and use now."""


@dataclass(frozen=True, slots=True)
class _Served:
    registry: ServedRegistry
    gate: Gate
    executor: ThreadPoolExecutor
    metrics: ServerMetrics
    commits: CommitBatcher
    max_body_bytes: int
    content: ContentCheck | None


_SERVED: Final = web.AppKey("served", _Served)
_dumps: Final = functools.partial(json.dumps, separators=(",", ":"), allow_nan=False)


def create_app(
    registry: ServedRegistry,
    gate: Gate,
    *,
    max_body_bytes: int,
    workers: int,
    commit_batch: int = MAX_BATCH,
    content: ContentCheck | None = None,
) -> web.Application:
    """The API over ``registry``, taking bodies up to ``max_body_bytes``, running at
    most ``workers`` registry calls at once (the pool's size) and up to
    ``commit_batch`` commits in one transaction; with ``content``, commits are checked
    against the server's store. The caller opens and closes ``registry``;
    the app shuts its worker threads down at cleanup."""
    executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="registry")
    metrics = ServerMetrics()
    served = _Served(
        registry=registry,
        gate=gate,
        executor=executor,
        metrics=metrics,
        commits=CommitBatcher(
            registry, executor, max_batch=commit_batch, observe=metrics.batch_size.observe
        ),
        max_body_bytes=max_body_bytes,
        content=content,
    )
    app = web.Application(
        middlewares=[_observe, _answer_errors, _identify], client_max_size=max_body_bytes
    )
    app[_SERVED] = served
    for route in ROUTES:
        app.router.add_route(route.method, route.path, _endpoint(route))
    app.router.add_get("/healthz", _healthz)
    app.router.add_get("/readyz", _readyz)
    app.router.add_get("/metrics", _metrics)
    app.on_cleanup.append(_stop_workers)
    return app


def _endpoint(route: Route) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def handle(request: web.Request) -> web.StreamResponse:
        served = request.app[_SERVED]
        body: dict[str, Any] = {}
        if route.body:
            raw = await request.read()
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise BadArgument("body", "is not UTF-8 text") from None
            if text.strip():
                body = parse_body(text, route.summary.lower())
        caller = request[CALLER_KEY]
        call = Call(
            caller=caller,
            guard=Guard(served.gate, caller),
            path=Arguments(dict(request.match_info)),
            query=Arguments(_query(request)),
            body=Arguments(body),
            metrics=served.metrics,
            commits=served.commits,
            run=functools.partial(_on_worker, served),
            content=served.content,
        )
        operation = route.handler(call)
        try:
            call.query.finish(f"{route.method} {route.path}'s query")
            call.body.finish(f"{route.method} {route.path}'s body")
        except BadArgument:
            if isinstance(operation, Awaited):
                operation.answer.close()  # never started: nothing to wait for
            raise
        if isinstance(operation, Awaited):
            result = await operation.answer
        else:
            result = await _on_worker(served, operation)
        return web.json_response(encode(result), dumps=_dumps)

    return handle


async def _on_worker(served: _Served, operation: Operation) -> Any:
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(served.executor, operation, served.registry)


def _query(request: web.Request) -> dict[str, Any]:
    keys = list(request.query.keys())
    if repeated := sorted({k for k in keys if keys.count(k) > 1}):
        raise BadArgument(repeated[0], "is given more than once in the query; give it once")
    return dict(request.query)


def error_response(status: int, message: str, kind: str, **extra: Any) -> web.Response:
    """The JSON answer of a failure."""
    return web.json_response({"error": message, "kind": kind, **extra}, status=status)


_OPEN_ROUTES: Final = frozenset({("GET", f"{API}/store")})
"""Registry routes answered without a key: which store the server serves is no secret
from anyone who reaches it, and a node's daemon asks it at start, before any of its
users has sent a key (each submission brings its own)."""

_NOBODY: Final = "(no key)"


@web.middleware
async def _identify(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Find the caller from the request's API key; the registry routes answer 401 to a
    request with none that is valid (the service routes need none)."""
    if not request.path.startswith(API + "/"):
        return await handler(request)
    gate = request.app[_SERVED].gate
    key = read_authorization(request.headers.get("Authorization"))
    identity = None
    if key is not None:
        known, identity = gate.cached_identity(key)
        if not known:
            identity = await asyncio.to_thread(gate.identity, key)
    if identity is None and key is None and (request.method, request.path) in _OPEN_ROUTES:
        request[CALLER_KEY] = Caller(_NOBODY)
        return await handler(request)
    if identity is None:
        given = "the API key given is unknown or revoked" if key else "no API key given"
        return error_response(
            401,
            f"{given}: set ARTISYNC_API_KEY (or WANDB_API_KEY) or run `artisync login`; "
            "a server admin makes keys with `artisync server admin create-key USER`",
            "UnauthorizedError",
        )
    request[CALLER_KEY] = Caller(identity.user, identity.site_admin, identity.roles)
    return await handler(request)


@web.middleware
async def _answer_errors(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    try:
        return await handler(request)
    except BadArgument as exc:
        log.warning("request_refused", route=_template(request), field=exc.field, reason=str(exc))
        return error_response(400, str(exc), "InvalidInputError", field=exc.field)
    except ArtisyncError as exc:
        status, kind = next(
            ((code, k.__name__) for k, code in _STATUS if isinstance(exc, k)),
            (500, "ArtisyncError"),
        )
        level = log.warning if status < 500 else log.error
        level("request_failed", route=_template(request), status=status, reason=str(exc))
        return error_response(status, str(exc), kind)
    except web.HTTPRequestEntityTooLarge:
        limit = request.app[_SERVED].max_body_bytes
        return error_response(
            413,
            f"body: larger than this server takes ({limit:,} bytes, its max_body_bytes "
            "setting); send less (large metadata belongs in the artifact's files)",
            "BodyTooLarge",
            field="body",
        )
    except web.HTTPNotFound:
        return error_response(
            404,
            f"no route {request.method} {request.path[:200]}; the API's routes are in "
            "docs/openapi.json (is the client another artisync version?)",
            "NoSuchRoute",
        )
    except web.HTTPMethodNotAllowed as exc:
        allowed = ", ".join(sorted(exc.allowed_methods))
        return error_response(
            405,
            f"{request.method} is not allowed on {request.path[:200]}; it takes {allowed}",
            "MethodNotAllowed",
        )
    except web.HTTPException:
        raise
    except Exception as exc:  # a bug: answered, logged with its traceback, never leaked
        log.exception("request_crashed", route=_template(request), error=type(exc).__name__)
        return error_response(
            500, "internal error of the server; its log has the details", "InternalError"
        )


@web.middleware
async def _observe(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    metrics = request.app[_SERVED].metrics
    started = time.perf_counter()
    status = 500
    metrics.in_flight.inc()
    try:
        response = await handler(request)
        status = response.status
        return response
    finally:
        metrics.in_flight.dec()
        route = _template(request)
        metrics.requests.labels(request.method, route, str(status)).inc()
        metrics.latency.labels(request.method, route).observe(time.perf_counter() - started)


def _template(request: web.Request) -> str:
    """The route template a request matched, or ``unmatched``: a label, so never the
    concrete path (which would grow the label set with every name asked for)."""
    route = request.match_info.route
    resource = route.resource if route is not None else None
    return resource.canonical if resource is not None else "unmatched"


async def _healthz(request: web.Request) -> web.Response:
    """The process is up and its loop answers (it says nothing about the database)."""
    del request
    return web.json_response({"status": "ok"})


async def _readyz(request: web.Request) -> web.Response:
    """200 when the database answers within :data:`READY_TIMEOUT`, else 503: a load
    balancer sends requests only to processes that can serve them."""
    registry = request.app[_SERVED].registry
    # The default executor, not the registry's: a probe must not queue behind calls
    # that are themselves waiting for the database.
    await asyncio.to_thread(registry.ping, READY_TIMEOUT)
    return web.json_response({"status": "ready"})


async def _metrics(request: web.Request) -> web.Response:
    served = request.app[_SERVED]

    def pool() -> tuple[int, int]:
        stats = served.registry.pool_stats()
        return stats.size, stats.in_use

    return web.Response(
        body=served.metrics.render(pool), headers={"Content-Type": CONTENT_TYPE_LATEST}
    )


async def _stop_workers(app: web.Application) -> None:
    # Calls still running finish (each is bounded by the database's timeouts) before the
    # owner closes the registry under them.
    await asyncio.to_thread(app[_SERVED].executor.shutdown, True)
