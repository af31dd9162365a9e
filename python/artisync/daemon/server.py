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
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import TYPE_CHECKING

from aiohttp import web

from artisync.daemon import registry_routes
from artisync.daemon.metrics import CONTENT_TYPE
from artisync.errors import ArtisyncError, DiskFullError, InvalidInputError
from artisync.logs import get_logger

if TYPE_CHECKING:  # the service imports this module to start the server
    from artisync.daemon.service import Daemon

__all__ = ["parse_address", "start_server"]

log = get_logger("artisync.daemon")

# Long polls are capped so a forgotten client cannot hold a request forever.
MAX_WAIT_SECONDS = 300.0
DAEMON_KEY: web.AppKey[Daemon] = web.AppKey("daemon")


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


async def submit(request: web.Request) -> web.Response:
    daemon = request.app[DAEMON_KEY]
    try:
        body = await request.json()
    except ValueError:
        return _error(400, 'the body must be JSON: {"tmp": "<id>.json"}')
    tmp = body.get("tmp") if isinstance(body, dict) else None
    if not isinstance(tmp, str):
        return _error(400, 'missing "tmp": the name of the submission file in spool/tmp')
    try:
        sub_id, seq = daemon.accept(tmp)
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
        wait = min(float(request.query.get("wait", "0")), MAX_WAIT_SECONDS)
    except ValueError:
        return _error(400, "wait must be a number of seconds")
    return web.json_response(await daemon.status_of(request.match_info["id"], wait))


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


async def _serve_metrics_over_tcp(app: web.Application, daemon: Daemon) -> None:
    """With ``metrics_addr`` set, serve ``GET /metrics`` alone on that TCP address (the
    rest of the API stays on the socket, whose file mode guards it); it stops with
    ``app``."""
    if not daemon.config.metrics_addr:
        return
    host, port = parse_address(daemon.config.metrics_addr)
    tcp = web.Application()
    tcp[DAEMON_KEY] = daemon
    tcp.router.add_get("/metrics", metrics)
    runner = web.AppRunner(tcp, access_log=None, handle_signals=False)
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
    dry_run, grace = body.get("dry_run", False), body.get("grace_seconds")
    if not isinstance(dry_run, bool) or not isinstance(grace, int | float) or grace < 0:
        return _error(400, "dry_run must be a boolean and grace_seconds a number >= 0")
    report = await daemon.collect_garbage(dry_run=dry_run, grace_seconds=float(grace))
    return web.json_response(report.to_json())


async def start_server(
    daemon: Daemon, socket_path: Path, activated: socket.socket | None = None
) -> web.AppRunner:
    """Serve the API on ``socket_path`` (mode 0660), or on the socket systemd opened
    (``activated``, whose path and mode its unit set); the caller cleans the runner up."""
    app = web.Application(client_max_size=1 << 20)
    app[DAEMON_KEY] = daemon
    app.router.add_post("/v1/submissions", submit)
    app.router.add_get("/v1/submissions/{id}", submission_status)
    app.router.add_get("/v1/status", queue_status)
    app.router.add_post("/v1/gc", collect_garbage)
    app.router.add_get("/v1/progress", progress)
    app.router.add_get("/metrics", metrics)
    registry_routes.add_registry_routes(app)
    await _serve_metrics_over_tcp(app, daemon)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    if activated is not None:
        await web.SockSite(runner, activated).start()
        return runner
    # The daemon holds the home's lock, so a socket file left here is stale.
    socket_path.unlink(missing_ok=True)
    socket_path.parent.mkdir(parents=True, exist_ok=True)
    await web.UnixSite(runner, str(socket_path)).start()
    os.chmod(socket_path, 0o660)
    return runner
