"""Where the socket's route handlers find their daemon: one key of the aiohttp app, in a
module of its own so that every module of routes can import it without the server."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:  # the service imports the server, which imports the routes
    from artisync.daemon.service import Daemon

__all__ = ["DAEMON_KEY"]

DAEMON_KEY: web.AppKey[Daemon] = web.AppKey("daemon")
