"""Where the socket's route handlers find their daemon: one key of the aiohttp app, and
what the handlers may ask of the daemon behind it (:class:`ServedDaemon`, which
:class:`~artisync.daemon.service.Daemon` is). Routes depend on this, not on the service
that starts them, so no module of routes imports its own caller."""

from __future__ import annotations

from typing import Any, Protocol

from aiohttp import web

from artisync.config import Config
from artisync.daemon.gc import GcReport
from artisync.daemon.peer import Peer
from artisync.daemon.pipeline import Pipeline

__all__ = ["DAEMON_KEY", "ServedDaemon"]


class ServedDaemon(Protocol):
    """The daemon as its routes see it."""

    config: Config
    pipeline: Pipeline | None
    """None until the daemon has opened its store and registry."""

    def accept(self, tmp_name: str, peer: Peer | None = None) -> tuple[str, str]:
        """Number and claim a submission a client wrote to ``spool/tmp``."""

    async def status_of(self, sub_id: str, wait: float) -> dict[str, Any]:
        """A submission's status, waiting up to ``wait`` seconds for it to finish."""

    def queue_status(self) -> dict[str, Any]:
        """Counts since start, and the submissions not yet finished."""

    async def collect_garbage(self, *, dry_run: bool, grace_seconds: float) -> GcReport:
        """Expire versions and remove unreferenced blobs."""


DAEMON_KEY: web.AppKey[ServedDaemon] = web.AppKey("daemon")
