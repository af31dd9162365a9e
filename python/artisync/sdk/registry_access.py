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
from artisync.registry.open import open_registry
from artisync.sdk.daemon_registry import DaemonRegistry

__all__ = ["registry_for"]

_lock = threading.Lock()
_open: dict[Path, DaemonRegistry] = {}
_servers: dict[str, Registry] = {}
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


os.register_at_fork(after_in_child=_forget_after_fork)


def registry_for(config: Config) -> Registry:
    """The registry of ``config``'s home, opened once per process: read from its file,
    written through ``config``'s daemon (or directly when the file is ours and no daemon
    answers)."""
    if (url := config.registry_server) is not None:
        with _lock:
            server = _servers.get(url)
            if server is None:
                server = _servers[url] = open_registry(url, ca_file=config.registry_ca_file)
            return server
    assert isinstance(config.registry, Path)
    path = config.registry.resolve()
    with _lock:
        registry = _open.get(path)
        if registry is None:
            registry = _open[path] = DaemonRegistry(path, Path(config.socket))
        return registry
