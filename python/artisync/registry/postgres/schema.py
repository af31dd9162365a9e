"""The PostgreSQL registry's schema migrations: SQL files shipped in the package, applied
when a registry opens, in one transaction, by one opener at a time.

``postgres/migrations/NNNN_<what>.sql`` takes the database from version ``NNNN - 1`` to
``NNNN``; a later issue that adds a column adds one file. The versions applied are rows
of the ``schema_version`` table. Several server processes share one database and may
start together: each takes the same transaction-scoped advisory lock before it reads the
version, so one applies the missing files and the others, waiting on the lock, then find
nothing left to do. A database newer than this code is refused rather than used with
columns it does not know.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources

import psycopg
from psycopg.rows import TupleRow

from artisync.errors import RegistryError

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "Migration", "migrate", "schema_version"]

# The key of the advisory lock migrations hold (pg_advisory_xact_lock takes a bigint):
# "artisync" in ASCII, so that it does not collide with another application's locks
# in a shared database by accident.
MIGRATION_LOCK = 0x61727469_73796E63

_FILE_NAME = re.compile(r"(\d{4})_[a-z0-9_]+\.sql")


@dataclass(frozen=True, slots=True)
class Migration:
    """One migration file: the version it brings the database to, its name and its SQL."""

    version: int
    name: str
    sql: str


def _load() -> tuple[Migration, ...]:
    folder = resources.files("artisync.registry.postgres").joinpath("migrations")
    found: list[Migration] = []
    for entry in folder.iterdir():
        match = _FILE_NAME.fullmatch(entry.name)
        if match:
            found.append(Migration(int(match.group(1)), entry.name, entry.read_text("utf-8")))
    found.sort(key=lambda m: m.version)
    # A gap or a duplicate number is a packaging mistake that would skip or repeat a
    # step on every database; refuse to start rather than guess.
    if [m.version for m in found] != list(range(1, len(found) + 1)):
        names = ", ".join(m.name for m in found) or "none"
        raise RegistryError(
            f"the PostgreSQL migrations shipped with artisync are not numbered 0001, 0002, "
            f"... without gaps ({names}); reinstall artisync"
        )
    return tuple(found)


MIGRATIONS: tuple[Migration, ...] = _load()
SCHEMA_VERSION = len(MIGRATIONS)

_CREATE_VERSION_TABLE = """
    CREATE TABLE IF NOT EXISTS schema_version (
        version integer PRIMARY KEY,
        name text NOT NULL,
        applied_at timestamptz NOT NULL DEFAULT now()
    )
"""


def schema_version(conn: psycopg.Connection[TupleRow]) -> int:
    """The highest migration applied to the database (0 for a new, empty one)."""
    row = conn.execute("SELECT to_regclass('schema_version') IS NOT NULL").fetchone()
    if row is None or not row[0]:
        return 0
    top = conn.execute("SELECT coalesce(max(version), 0) FROM schema_version").fetchone()
    return 0 if top is None else int(top[0])


def migrate(conn: psycopg.Connection[TupleRow], where: str) -> int:
    """Bring the database to :data:`SCHEMA_VERSION` in one transaction; return it.

    ``conn`` is in autocommit mode; ``where`` names the database in messages. Opening an
    up-to-date database takes no lock (the usual case: one read). A newer database is
    refused with :class:`~artisync.errors.RegistryError`.
    """
    current = schema_version(conn)
    _refuse_newer(current, where)
    if current == SCHEMA_VERSION:
        return current
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
        # Read again under the lock: another server process may have migrated first.
        conn.execute(_CREATE_VERSION_TABLE)
        current = schema_version(conn)
        _refuse_newer(current, where)
        for migration in MIGRATIONS[current:]:
            # No parameters: psycopg sends the file as one simple query, statements and
            # all, inside this transaction.
            conn.execute(migration.sql)
            conn.execute(
                "INSERT INTO schema_version (version, name) VALUES (%s, %s)",
                (migration.version, migration.name),
            )
    return SCHEMA_VERSION


def _refuse_newer(current: int, where: str) -> None:
    if current > SCHEMA_VERSION:
        raise RegistryError(
            f"registry {where} has schema version {current}, newer than the {SCHEMA_VERSION} "
            "this artisync knows: a newer artisync server migrated it; upgrade artisync "
            "here to that version (every process sharing the database must run it)"
        )
