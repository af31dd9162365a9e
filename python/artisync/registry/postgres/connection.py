"""The PostgreSQL registry's connections and transactions: a psycopg_pool pool, one
transaction per registry call, and ``RegistryError`` for every failure of the database.

Writes run at READ COMMITTED and take explicit row locks (``postgres.commit``): after a
commit waits for the collection's lock, its next statement sees what the previous holder
committed, so ``max(idx) + 1`` is right. REPEATABLE READ would keep the snapshot taken
before the wait and collide on the number instead. Reads run at REPEATABLE READ, READ
ONLY, so a multi-statement read (a version, its aliases, its tags) sees one snapshot, as
SQLite's read transactions do.

A call is a function of a connection, not a ``with`` block, so that it can run again:
PostgreSQL may end a transaction with a deadlock or serialization failure that a second
try resolves, and a pooled connection may turn out dead (the server restarted) before the
transaction sent anything. Every call is all-or-nothing and commits are idempotent per
submission, so running one again is safe.

A database that cannot be reached (refused, dropped, no free connection in time) is a
:class:`~artisync.errors.RegistryUnavailableError`: the server answers it with 503 and
its clients may ask again later, whereas any other failure says something about the
request.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import psycopg
from psycopg import errors as pg_errors
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import TupleRow
from psycopg_pool import ConnectionPool, PoolTimeout

from artisync.errors import InvalidInputError, RegistryError, RegistryUnavailableError
from artisync.registry.postgres.schema import migrate

__all__ = ["Conn", "Pool", "PoolStats", "describe_dsn", "nul_refused"]

Conn = psycopg.Connection[TupleRow]
T = TypeVar("T")

_BEGIN_WRITE = "BEGIN ISOLATION LEVEL READ COMMITTED, READ WRITE"
_BEGIN_READ = "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY"

# A deadlock or serialization failure aborts the transaction and nothing else; trying
# again a few times (with a short pause, so two victims do not meet again) resolves it.
_RETRIES = 5
_RETRY_PAUSE = 0.01


def describe_dsn(dsn: str) -> str:
    """The database a DSN names, for messages: ``postgresql://user@host:port/db`` with
    no password (a DSN may carry one; messages end up in logs)."""
    try:
        parts = conninfo_to_dict(dsn)
    except psycopg.ProgrammingError as exc:
        raise RegistryError(
            f"the PostgreSQL registry DSN is malformed ({exc}); give a libpq connection "
            "string such as 'postgresql://user@host:5432/artisync' or "
            "'host=/run/postgresql dbname=artisync'"
        ) from exc
    user = f"{parts['user']}@" if parts.get("user") else ""
    host = str(parts.get("host") or "localhost")
    port = f":{parts['port']}" if parts.get("port") else ""
    return f"postgresql://{user}{host}{port}/{parts.get('dbname') or ''}"


@dataclass(frozen=True, slots=True)
class PoolStats:
    """A pool's connections at one instant: all it holds, and those lent to calls."""

    size: int
    in_use: int


class Pool:
    """A pool of connections to one registry database, and transactions on them.

    Opening connects once outside the pool to migrate the schema (so that a wrong DSN
    or an unreachable server fails at once, with libpq's reason), then opens the pool.
    """

    def __init__(
        self,
        dsn: str,
        *,
        min_size: int,
        max_size: int,
        timeout: float,
        reconnect_timeout: float = 300.0,
    ) -> None:
        self.where = describe_dsn(dsn)
        self.timeout = timeout
        try:
            with psycopg.connect(dsn, autocommit=True, connect_timeout=_seconds(timeout)) as conn:
                migrate(conn, self.where)
        except psycopg.Error as exc:
            raise self.error(exc, "opening") from exc
        self._pool: ConnectionPool[Conn] = ConnectionPool(
            dsn,
            min_size=min_size,
            max_size=max_size,
            kwargs={"autocommit": True},
            timeout=timeout,
            reconnect_timeout=reconnect_timeout,
            name=f"artisync registry {self.where}",
            open=False,
        )
        try:
            self._pool.open(wait=True, timeout=timeout)
        except PoolTimeout as exc:
            self._pool.close()
            raise RegistryUnavailableError(
                f"registry {self.where}: could not open {min_size} connection(s) within "
                f"{timeout:g}s; is PostgreSQL running, and does it accept that many "
                "connections (max_connections)?"
            ) from exc
        self._closed = False

    def close(self) -> None:
        """Close every connection. Further calls raise ``RegistryError``."""
        self._closed = True
        self._pool.close()

    def read(self, doing: str, call: Callable[[Conn], T]) -> T:
        """``call(conn)`` in a read-only transaction that sees one snapshot."""
        return self._run(doing, call, _BEGIN_READ)

    def write(self, doing: str, call: Callable[[Conn], T]) -> T:
        """``call(conn)`` in a read-write transaction, committed if it returns."""
        return self._run(doing, call, _BEGIN_WRITE)

    def _run(self, doing: str, call: Callable[[Conn], T], begin: str) -> T:
        if self._closed:
            raise RegistryError(f"registry {self.where} is closed")
        attempt = 0
        while True:
            attempt += 1
            started = False
            try:
                with self._pool.connection() as conn:
                    conn.execute(begin)
                    started = True
                    try:
                        result = call(conn)
                        conn.execute("COMMIT")
                    except BaseException:
                        _roll_back(conn)
                        raise
                    return result
            except (pg_errors.SerializationFailure, pg_errors.DeadlockDetected) as exc:
                if attempt > _RETRIES:
                    raise self.error(exc, doing) from exc
                time.sleep(_RETRY_PAUSE * attempt)
            except PoolTimeout as exc:
                # Before OperationalError, which PoolTimeout is: waiting again would
                # multiply the wait that `timeout` bounds.
                raise RegistryUnavailableError(
                    f"registry {self.where}: {doing} waited {self.timeout:g}s for a "
                    "database connection; every connection of the pool stayed busy "
                    "(raise max_size) or PostgreSQL is unreachable"
                ) from exc
            except psycopg.OperationalError as exc:
                # A connection the server closed while it sat in the pool fails at
                # BEGIN, before the call did anything: another connection can do it.
                if started or attempt > _RETRIES:
                    raise self.error(exc, doing) from exc
            except psycopg.DataError as exc:
                # Strings with NUL fail in psycopg before anything is sent; the daemon's
                # routes refuse them already, a direct caller learns it here.
                if "NUL" not in str(exc):
                    raise self.error(exc, doing) from exc
                raise nul_refused(doing) from exc
            except psycopg.Error as exc:
                raise self.error(exc, doing) from exc

    def ping(self, timeout: float) -> None:
        """Run ``SELECT 1`` on a pooled connection within ``timeout`` seconds, else
        :class:`RegistryUnavailableError` (what a readiness probe asks)."""
        if self._closed:
            raise RegistryError(f"registry {self.where} is closed")
        try:
            with self._pool.connection(timeout=timeout) as conn:
                conn.execute("SELECT 1")
        except PoolTimeout as exc:
            raise RegistryUnavailableError(
                f"registry {self.where}: no database connection within {timeout:g}s; "
                "is PostgreSQL running and reachable?"
            ) from exc
        except psycopg.Error as exc:
            raise self.error(exc, "checking the database") from exc

    def stats(self) -> PoolStats:
        """How many connections the pool holds and how many are lent out now."""
        numbers = self._pool.get_stats()
        size = numbers.get("pool_size", 0)
        return PoolStats(size=size, in_use=size - numbers.get("pool_available", 0))

    def error(self, exc: psycopg.Error, doing: str) -> RegistryError:
        """``exc`` as the ``RegistryError`` callers see: no psycopg type leaks out. A
        connection failure is :class:`RegistryUnavailableError`."""
        message = str(exc).strip() or type(exc).__name__
        if isinstance(exc, psycopg.OperationalError) and not isinstance(
            exc, pg_errors.SerializationFailure | pg_errors.DeadlockDetected
        ):
            return RegistryUnavailableError(
                f"registry {self.where}: {doing} failed: {message}; "
                f"is PostgreSQL running and reachable at {self.where}?"
            )
        return RegistryError(f"registry {self.where}: {doing} failed: {message}")


def nul_refused(doing: str) -> InvalidInputError:
    """The error for a string with NUL in it, which PostgreSQL's text cannot hold."""
    return InvalidInputError(
        f"{doing}: a string holds a NUL character (\\x00), which PostgreSQL cannot store; "
        "remove it from names, descriptions, tags and run fields"
    )


def _roll_back(conn: Conn) -> None:
    """End a failed call's transaction, keeping the call's error as the one raised: a
    connection that broke mid-call cannot roll back, and the pool discards it anyway."""
    if conn.broken:
        return
    with contextlib.suppress(psycopg.Error):
        conn.execute("ROLLBACK")


def _seconds(timeout: float) -> int:
    # libpq's connect_timeout is whole seconds, and values below 2 become 2.
    return max(2, round(timeout))
