"""A small pool of autocommit connections beside the registry's: what the access gate
and the blob index ask PostgreSQL on their own, outside the registry's transactions.

A database that cannot be reached (refused, dropped, no free connection in time) is a
:class:`~artisync.errors.RegistryUnavailableError` naming what was being done, as for
the registry's own calls: the request is answered 503, to be asked again later.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout

from artisync.errors import RegistryUnavailableError
from artisync.registry.postgres.connection import Conn, describe_dsn

__all__ = ["SidePool"]


class SidePool:
    """Up to ``size`` autocommit connections to ``dsn`` (``options``: libpq's, such as
    ``-c synchronous_commit=off``), each waited for at most ``timeout`` seconds."""

    def __init__(
        self, dsn: str, *, name: str, size: int, timeout: float, options: str | None = None
    ) -> None:
        self.where = describe_dsn(dsn)
        settings: dict[str, object] = {"autocommit": True}
        if options is not None:
            settings["options"] = options
        self._pool: ConnectionPool[Conn] = ConnectionPool(
            dsn,
            min_size=1,
            max_size=size,
            kwargs=settings,
            timeout=timeout,
            reconnect_timeout=timeout,
            name=name,
            open=True,
        )

    def close(self) -> None:
        """Close the connections."""
        self._pool.close()

    @contextmanager
    def connection(self, doing: str) -> Iterator[Conn]:
        """A pooled connection; the database unreachable while ``doing`` is
        :class:`RegistryUnavailableError`."""
        try:
            with self._pool.connection() as conn:
                yield conn
        except (PoolTimeout, psycopg.OperationalError) as exc:
            raise RegistryUnavailableError(
                f"registry {self.where}: {doing} failed: "
                f"{str(exc).strip() or type(exc).__name__}; is PostgreSQL running and reachable?"
            ) from exc
