"""The daemon's Unix-socket API: HTTP/1.1 with JSON bodies, every path under ``/v1/``.

- ``POST /v1/submissions`` ``{"tmp": "<id>.json"}``: accept a submission the client
  wrote to ``spool/tmp``; the daemon numbers it, so acceptance order is commit order.
- ``GET /v1/submissions/<id>?wait=<seconds>``: its status, long-polling up to ``wait``
  seconds for it to be committed or rejected.
- ``GET /v1/status``: the queue and what the daemon has done.
- ``GET /v1/progress``: each submission's stage, bytes hashed and stored against its
  totals, throughput and ETA (``artisync status`` draws it as bars).
- ``GET /metrics``: Prometheus text; also over TCP, alone, with ``--metrics-addr``.
- ``POST /v1/gc`` ``{"dry_run": false, "grace_seconds": 3600}``: expire versions and
  collect unreferenced blobs now; answers the report (``artisync gc``).

What a caller sends is checked here (:mod:`artisync.daemon.request_checks`) before the
daemon sees it: a bad id, file name, wait or grace is a 400 naming the field and what is
accepted. Connections are bounded per user and timed by
:mod:`artisync.daemon.connection_guard`.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

from aiohttp import web

from artisync.daemon import registry_routes
from artisync.daemon.app_key import DAEMON_KEY, ServedDaemon
from artisync.daemon.connection_guard import (
    ConnectionGuard,
    GuardedSite,
    SocketLimits,
    handler_settings,
)
from artisync.daemon.gc import check_grace_seconds
from artisync.daemon.metrics import CONTENT_TYPE
from artisync.daemon.peer import peer_of
from artisync.daemon.request_checks import check_submission_id, check_tmp_name, check_wait
from artisync.errors import ArtisyncError, DiskFullError, InvalidInputError
from artisync.logs import get_logger
from artisync.store import StoreAccessError

__all__ = ["parse_address", "start_server"]

log = get_logger("artisync.daemon")


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


async def submit(request: web.Request) -> web.Response:
    daemon = request.app[DAEMON_KEY]
    try:
        body = await request.json()
    except ValueError:
        return _error(400, 'the body must be JSON: {"tmp": "<id>.json"}')
    try:
        tmp = check_tmp_name(body.get("tmp") if isinstance(body, dict) else None)
    except InvalidInputError as e:
        return _error(400, str(e))
    # The kernel's word on who is asking, for the daemon to hold the submission to.
    peer = peer_of(request.transport.get_extra_info("socket") if request.transport else None)
    try:
        sub_id, seq = daemon.accept(tmp, peer)
    except InvalidInputError as e:
        log.warning("refused", tmp=tmp, reason=str(e))
        return _error(400, str(e))
    except DiskFullError as e:
        # Not the submission's fault: the client queues it in new/ for a later scan.
        log.warning("disk_full", tmp=tmp, reason=str(e))
        return _error(503, str(e))
    log.info("accepted", sub=sub_id, seq=seq, route="socket")
    return web.json_response({"id": sub_id, "seq": seq, "status": "queued"}, status=202)


async def submission_status(request: web.Request) -> web.Response:
    daemon = request.app[DAEMON_KEY]
    try:
        sub_id = check_submission_id(request.match_info["id"])
        wait = check_wait(request.query.get("wait", "0"))
    except InvalidInputError as e:
        return _error(400, str(e))
    return web.json_response(await daemon.status_of(sub_id, wait))


async def queue_status(request: web.Request) -> web.Response:
    return web.json_response(request.app[DAEMON_KEY].queue_status())


async def progress(request: web.Request) -> web.Response:
    pipeline = request.app[DAEMON_KEY].pipeline
    if pipeline is None:
        return _error(503, "the daemon is starting; ask again in a moment")
    return web.json_response(pipeline.progress.snapshot())


async def metrics(request: web.Request) -> web.Response:
    pipeline = request.app[DAEMON_KEY].pipeline
    if pipeline is None:
        return _error(503, "the daemon is starting; ask again in a moment")
    return web.Response(body=pipeline.metrics.exposition(), headers={"Content-Type": CONTENT_TYPE})


def parse_address(text: str) -> tuple[str, int]:
    """``(host, port)`` of ``HOST:PORT`` (``[::1]:PORT`` for IPv6), else
    :class:`InvalidInputError` saying what is expected."""
    host, colon, port = text.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not colon or not host or not port.isdigit() or int(port) > 65535:
        raise InvalidInputError(
            f"metrics address {text!r} is not HOST:PORT; use e.g. --metrics-addr 127.0.0.1:9464"
        )
    return host, int(port)


async def _serve_metrics_over_tcp(app: web.Application, daemon: ServedDaemon) -> None:
    """With ``metrics_addr`` set, serve ``GET /metrics`` alone on that TCP address (the
    rest of the API stays on the socket, whose file mode guards it); it stops with
    ``app``."""
    if not daemon.config.metrics_addr:
        return
    host, port = parse_address(daemon.config.metrics_addr)
    tcp = web.Application()
    tcp[DAEMON_KEY] = daemon
    tcp.router.add_get("/metrics", metrics)
    limits = SocketLimits.from_config(daemon.config)
    runner = web.AppRunner(tcp, access_log=None, handle_signals=False, **handler_settings(limits))
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
    except OSError as e:
        await runner.cleanup()
        # uvloop's strerror is a sentence of its own; the errno's text is the point.
        reason = os.strerror(e.errno) if e.errno else str(e)
        raise ArtisyncError(
            f"cannot serve metrics on {daemon.config.metrics_addr}: {reason}; "
            "choose another --metrics-addr (or metrics_addr in config.toml)"
        ) from None
    log.info("metrics_listening", address=daemon.config.metrics_addr)

    async def stop(_: web.Application) -> None:
        await runner.cleanup()

    app.on_cleanup.append(stop)


async def collect_garbage(request: web.Request) -> web.Response:
    daemon = request.app[DAEMON_KEY]
    try:
        body = await request.json()
    except ValueError:
        return _error(400, 'the body must be JSON: {"dry_run": false, "grace_seconds": 3600}')
    if not isinstance(body, dict):
        return _error(400, "the body must be a JSON object")
    dry_run = body.get("dry_run", False)
    if not isinstance(dry_run, bool):
        return _error(400, f"dry_run must be true or false, not {dry_run!r}")
    try:
        grace = check_grace_seconds(body.get("grace_seconds"))
    except InvalidInputError as e:
        return _error(400, str(e))
    try:
        report = await daemon.collect_garbage(dry_run=dry_run, grace_seconds=grace)
    except StoreAccessError as e:  # a store collected elsewhere (store/granted.py)
        return _error(409, str(e))
    return web.json_response(report.to_json())


async def start_server(
    daemon: ServedDaemon, socket_path: Path, activated: socket.socket | None = None
) -> web.AppRunner:
    """Serve the API on ``socket_path`` (mode 0660), or on the socket systemd opened
    (``activated``, whose path and mode its unit set); the caller cleans the runner up."""
    limits = SocketLimits.from_config(daemon.config)
    guard = ConnectionGuard(limits)
    app = web.Application(client_max_size=1 << 20, middlewares=[guard.middleware()])
    app[DAEMON_KEY] = daemon
    app.router.add_post("/v1/submissions", submit)
    app.router.add_get("/v1/submissions/{id}", submission_status)
    app.router.add_get("/v1/status", queue_status)
    app.router.add_post("/v1/gc", collect_garbage)
    app.router.add_get("/v1/progress", progress)
    app.router.add_get("/metrics", metrics)
    registry_routes.add_registry_routes(app)
    await _serve_metrics_over_tcp(app, daemon)
    runner = web.AppRunner(app, access_log=None, handle_signals=False, **handler_settings(limits))
    await runner.setup()
    if activated is not None:
        await GuardedSite(runner, activated, guard).start()
        return runner
    # The daemon holds the home's lock, so a socket file left here is stale.
    socket_path.unlink(missing_ok=True)
    socket_path.parent.mkdir(parents=True, exist_ok=True)
    listening = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        listening.bind(str(socket_path))
        # Before it listens: no caller outside the group can connect in between.
        os.chmod(socket_path, 0o660)
        await GuardedSite(runner, listening, guard).start()
    except BaseException:
        listening.close()
        raise
    return runner
