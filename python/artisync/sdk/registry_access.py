"""The SDK's way into the registry: one open registry per file, per process.

The embedded registry is a SQLite file in ``ARTISYNC_HOME``. The SDK reads it directly
(WAL lets readers in many processes run beside the daemon's commits) and writes the
few things that belong to the training script rather than to the daemon: its run
(``init``, ``summary``, ``finish``), the versions it uses (lineage), and edits to
committed versions (aliases, description, metadata, TTL, delete). Those writes are
small transactions; SQLite's busy timeout makes concurrent writers queue, not fail.

Everything goes through the ``Registry`` protocol, so the shared server's client can
take the SQLite file's place without the SDK changing.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from artisync.config import Config
from artisync.registry import SqliteRegistry
from artisync.registry.contract import Registry

__all__ = ["registry_for"]

_lock = threading.Lock()
_open: dict[Path, SqliteRegistry] = {}
# A forked child must not use its parent's SQLite connections (POSIX locks are per
# process); it opens its own. The parent's stay referenced here so that garbage
# collection in the child never closes them under the parent.
_inherited: list[SqliteRegistry] = []


def _forget_after_fork() -> None:
    global _lock
    _lock = threading.Lock()
    _inherited.extend(_open.values())
    _open.clear()


os.register_at_fork(after_in_child=_forget_after_fork)


def registry_for(config: Config) -> Registry:
    """The registry of ``config``'s home, opened (and created if new) once per process."""
    path = config.registry.resolve()
    with _lock:
        registry = _open.get(path)
        if registry is None:
            registry = _open[path] = SqliteRegistry(path)
        return registry
