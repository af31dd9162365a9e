"""The server's app on a thread of its own, in front of a PostgreSQL database, and an
``HttpRegistry`` talking to it: the ``http`` backend of the contract suite.

In-process rather than ``artisync server`` as a subprocess, so that the hundreds of
contract tests do not each pay a Python start-up; the app, its routes, its worker
threads and the client are the ones ``artisync server`` runs (``test_server.py`` runs
the command itself).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from aiohttp_servers import ThreadServer
from artisync.registry.http import HttpRegistry
from artisync.registry.postgres import PostgresRegistry
from artisync.server import create_app
from artisync.server.access.bootstrap import bootstrap_admin
from artisync.server.access.directory import Directory
from artisync.server.access.gate import Gate

POOL_SIZE = 8


SECRET = b"the in-process test server's secret"


@contextmanager
def served_app(dsn: str, *, max_body_bytes: int = 4 << 20) -> Iterator[ThreadServer]:
    """The app over a registry on ``dsn``, served on 127.0.0.1 (``.url``); its first
    admin has the tests' key, as a started server's has (conftest.py)."""
    with PostgresRegistry(dsn, max_size=POOL_SIZE, timeout=5) as registry:
        directory = Directory(dsn, SECRET)
        bootstrap_admin(directory, Path("/nonexistent"), os.environ["ARTISYNC_API_KEY"])
        gate = Gate(directory, SECRET)
        try:
            app = create_app(registry, gate, max_body_bytes=max_body_bytes, workers=POOL_SIZE)
            server = ThreadServer(app)
            server.start()
            try:
                yield server
            finally:
                server.stop()
        finally:
            gate.close()


@contextmanager
def served_registry(dsn: str) -> Iterator[HttpRegistry]:
    """An ``HttpRegistry`` of :func:`served_app` on ``dsn``."""
    with served_app(dsn) as server, HttpRegistry(server.url, timeout=30) as registry:
        yield registry
