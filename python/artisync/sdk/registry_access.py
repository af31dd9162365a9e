"""The SDK's way into the registry: one open registry per file, per process.

The embedded registry is a SQLite file in ``ARTISYNC_HOME``. The SDK reads it directly
(WAL lets readers in many processes run beside the daemon's commits). The few writes
that belong to the training script rather than to the daemon (its run at ``init``,
``summary`` and ``finish``, the versions it uses, edits of committed versions) go
through the daemon's socket, so that on a shared node only the daemon writes the file;
with no daemon running, a user whose registry file it is writes it directly
(``sdk/daemon_registry.py``).

With a shared server (``registry = "https://…"``) the SDK reads and writes the server
directly: it holds no file anyone must protect, and the server checks every write.
Everything goes through the ``Registry`` protocol, so the SDK does not change with it.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from artisync.config import Config
from artisync.registry.contract import Registry
from artisync.registry.http import HttpRegistry
from artisync.sdk.daemon_registry import DaemonRegistry

__all__ = ["default_entity", "registry_for"]

_lock = threading.Lock()
_open: dict[Path, DaemonRegistry] = {}
_servers: dict[str, HttpRegistry] = {}
# Each server's answer to "whose is this key": the caller's own entity.
_own_entities: dict[str, str] = {}
# A forked child must not use its parent's SQLite connections (POSIX locks are per
# process); it opens its own. The parent's stay referenced here so that garbage
# collection in the child never closes them under the parent.
_inherited: list[Registry] = []


def _forget_after_fork() -> None:
    global _lock
    _lock = threading.Lock()
    _inherited.extend(_open.values())
    _inherited.extend(_servers.values())  # HTTP connections too: the child opens its own
    _open.clear()
    _servers.clear()
    _own_entities.clear()


os.register_at_fork(after_in_child=_forget_after_fork)


def registry_for(config: Config) -> Registry:
    """The registry of ``config``'s home, opened once per process: read from its file,
    written through ``config``'s daemon (or directly when the file is ours and no daemon
    answers)."""
    if config.registry_server is not None:
        return _server(config)
    assert isinstance(config.registry, Path)
    path = config.registry.resolve()
    with _lock:
        registry = _open.get(path)
        if registry is None:
            registry = _open[path] = DaemonRegistry(path, Path(config.socket))
        return registry


def default_entity(config: Config) -> str | None:
    """The entity a run or a path that names none belongs to: ``default_entity`` from
    the settings (``WANDB_ENTITY`` as W&B reads it), else with a server the caller's own
    (W&B's default entity: the user's name, asked once per process), else None, which
    the embedded registry takes as ``local``."""
    if config.default_entity is not None:
        return config.default_entity
    if (url := config.registry_server) is None:
        return None
    with _lock:
        known = _own_entities.get(url)
    if known is None:
        known = str(_server(config).viewer()["default_entity"])
        with _lock:
            _own_entities[url] = known
    return known


def _server(config: Config) -> HttpRegistry:
    url = config.registry_server
    assert url is not None
    with _lock:
        server = _servers.get(url)
        if server is None:
            ca_file = None if config.registry_ca_file is None else str(config.registry_ca_file)
            server = _servers[url] = HttpRegistry(url, ca_file=ca_file)
        return server
