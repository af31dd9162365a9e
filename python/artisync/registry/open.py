"""From the configured registry (``--registry``, ``ARTISYNC_REGISTRY``, ``config.toml``)
to a :class:`~artisync.registry.contract.Registry`.

The backend is chosen here and nowhere else: the daemon and ``artisync gc`` open the
registry through :func:`open_registry` and then speak only the ``Registry`` protocol.
The setting is the path of the embedded SQLite file, or the URL of the ``artisync
server`` every node shares (``https://host:port``, checked by ``Config``), served by
:class:`~artisync.registry.http.HttpRegistry`.
"""

from __future__ import annotations

import os
from pathlib import Path

from artisync.registry.contract import Registry
from artisync.registry.http import HttpRegistry
from artisync.registry.sqlite import SqliteRegistry
from artisync.registry.sqlite.files import leave_for_readers

__all__ = ["close_registry", "open_registry"]


def open_registry(
    location: str | os.PathLike[str], *, ca_file: str | os.PathLike[str] | None = None
) -> Registry:
    """The registry at ``location``, opened read-write (created and migrated if needed).

    ``location`` is the SQLite file (``ARTISYNC_HOME/registry.db`` by default), or a
    server's ``http(s)://`` URL (``ca_file``: the CA bundle its certificate is signed by,
    when not the system's). Raises :class:`~artisync.errors.RegistryError` when it
    cannot be opened; a server is reached on first use, not here.
    """
    if isinstance(location, str) and location.startswith(("http://", "https://")):
        return HttpRegistry(location, ca_file=None if ca_file is None else str(ca_file))
    return SqliteRegistry(Path(location))


def close_registry(registry: Registry) -> None:
    """Close a registry the daemon served, leaving it as readers without write rights
    need it.

    For the SQLite file that means rollback-journal mode once the last connection is
    closed (``sqlite.files.leave_for_readers``): group members who may only read the
    file could not open it in WAL mode once its ``-wal`` and ``-shm`` are gone.
    """
    registry.close()
    if isinstance(registry, SqliteRegistry):
        leave_for_readers(registry.path)
