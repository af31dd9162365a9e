"""From the configured registry (``--registry``, ``ARTISYNC_REGISTRY``, ``config.toml``)
to a :class:`~artisync.registry.contract.Registry`.

The backend is chosen here and nowhere else: the daemon and ``artisync gc`` open the
registry through :func:`open_registry` and then speak only the ``Registry`` protocol.
Today the setting is the path of the embedded SQLite file; a server backend (a URL with
a scheme, as ``store/open.py`` routes store URLs) slots in here without its callers
changing.
"""

from __future__ import annotations

import os
from pathlib import Path

from artisync.registry.contract import Registry
from artisync.registry.sqlite import SqliteRegistry
from artisync.registry.sqlite_files import leave_for_readers

__all__ = ["close_registry", "open_registry"]


def open_registry(location: str | os.PathLike[str]) -> Registry:
    """The registry at ``location``, opened read-write (created and migrated if needed).

    ``location`` is the SQLite file (``ARTISYNC_HOME/registry.db`` by default).
    Raises :class:`~artisync.errors.RegistryError` when it cannot be opened.
    """
    return SqliteRegistry(Path(location))


def close_registry(registry: Registry) -> None:
    """Close a registry the daemon served, leaving it as readers without write rights
    need it.

    For the SQLite file that means rollback-journal mode once the last connection is
    closed (``sqlite_files.leave_for_readers``): group members who may only read the
    file could not open it in WAL mode once its ``-wal`` and ``-shm`` are gone.
    """
    registry.close()
    if isinstance(registry, SqliteRegistry):
        leave_for_readers(registry.path)
