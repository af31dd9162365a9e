"""The SQLite registry's tables, indexes, connection settings and migrations.

The schema version lives in ``PRAGMA user_version``. ``MIGRATIONS[i]`` takes a
database from version ``i`` to ``i + 1``; a later issue that adds a column appends
one function, and every existing ``registry.db`` is brought forward the next time
the daemon opens it, inside one transaction.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

from artisync.errors import RegistryError
from artisync.registry.model import COMMITTED

__all__ = [
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "check_readable",
    "connect",
    "migrate",
    "schema_version",
]

# Every lookup the registry makes is an equality on a leading prefix of one of these
# keys, so its cost does not grow with the number of versions (a benchmark compares
# 100 against 100,000). Integer surrogate keys keep the join columns and the indexes
# small; the public ids (version uuid, run id, names) sit in unique indexes.
_V1 = (
    """CREATE TABLE projects (
        id INTEGER PRIMARY KEY,
        entity TEXT NOT NULL,
        name TEXT NOT NULL,
        created_at REAL NOT NULL
    )""",
    "CREATE UNIQUE INDEX projects_by_name ON projects (entity, name)",
    """CREATE TABLE runs (
        id INTEGER PRIMARY KEY,
        project_id INTEGER NOT NULL REFERENCES projects (id),
        run_id TEXT NOT NULL,
        name TEXT,
        job_type TEXT,
        group_name TEXT,
        config TEXT NOT NULL,
        created_at REAL NOT NULL
    )""",
    "CREATE UNIQUE INDEX runs_by_project ON runs (project_id, run_id)",
    # Lineage calls name a run by its id alone; this resolves it without a scan.
    "CREATE INDEX runs_by_run_id ON runs (run_id)",
    """CREATE TABLE collections (
        id INTEGER PRIMARY KEY,
        project_id INTEGER NOT NULL REFERENCES projects (id),
        name TEXT NOT NULL,
        type TEXT NOT NULL,
        created_at REAL NOT NULL
    )""",
    "CREATE UNIQUE INDEX collections_by_name ON collections (project_id, name)",
    """CREATE TABLE versions (
        id TEXT PRIMARY KEY,
        collection_id INTEGER NOT NULL REFERENCES collections (id),
        idx INTEGER NOT NULL CHECK (idx >= 0),
        digest TEXT NOT NULL,
        manifest_key TEXT NOT NULL,
        size INTEGER NOT NULL,
        file_count INTEGER NOT NULL,
        description TEXT,
        metadata TEXT NOT NULL,
        created_at REAL NOT NULL,
        run_id INTEGER REFERENCES runs (id),
        ttl_seconds REAL,
        state TEXT NOT NULL
    )""",
    # Serves "vN", "latest" (walk backwards from the top), max(idx)+1 and listing in order.
    "CREATE UNIQUE INDEX versions_by_index ON versions (collection_id, idx)",
    # idx included so "the lowest version with this digest" is one step, not a walk
    # over the whole collection in index order (which the planner picks otherwise).
    "CREATE INDEX versions_by_digest ON versions (collection_id, digest, idx)",
    "CREATE INDEX versions_by_run ON versions (run_id)",
    # One row per alias of a collection: the primary key is what makes an alias name
    # exactly one version, and moving it is a single upsert.
    """CREATE TABLE aliases (
        collection_id INTEGER NOT NULL REFERENCES collections (id),
        alias TEXT NOT NULL,
        version_id TEXT NOT NULL REFERENCES versions (id),
        PRIMARY KEY (collection_id, alias)
    ) WITHOUT ROWID""",
    "CREATE INDEX aliases_by_version ON aliases (version_id)",
    """CREATE TABLE tags (
        version_id TEXT NOT NULL REFERENCES versions (id),
        tag TEXT NOT NULL,
        PRIMARY KEY (version_id, tag)
    ) WITHOUT ROWID""",
    # direction: 'produced' (the run logged the version) or 'used' (it consumed it).
    # A rowid table so edges list in the order they were recorded.
    """CREATE TABLE lineage (
        id INTEGER PRIMARY KEY,
        run_id INTEGER NOT NULL REFERENCES runs (id),
        version_id TEXT NOT NULL REFERENCES versions (id),
        direction TEXT NOT NULL CHECK (direction IN ('produced', 'used')),
        created_at REAL NOT NULL
    )""",
    "CREATE UNIQUE INDEX lineage_by_run ON lineage (run_id, direction, version_id)",
    "CREATE INDEX lineage_by_version ON lineage (version_id, direction)",
    # The spool submission each commit came from, so committing it again after a
    # crash (before the spool's final rename) returns the first answer.
    """CREATE TABLE submissions (
        submission_id TEXT PRIMARY KEY,
        version_id TEXT NOT NULL REFERENCES versions (id),
        created INTEGER NOT NULL,
        committed_at REAL NOT NULL
    ) WITHOUT ROWID""",
)


# Issue 4: runs get a summary and a state; versions can be deleted (kept as tombstones,
# so numbers and submission ids keep their meaning) and expire; parallel writers add
# parts. The partial indexes hold live versions only, so a collection whose newest
# versions were deleted still finds `latest` and its count in one step, and expiry
# reads only versions that have a TTL. Queries must spell the partial indexes'
# conditions literally (state = 'COMMITTED'): SQLite does not match a bound parameter.
_V2 = (
    "ALTER TABLE runs ADD COLUMN summary TEXT NOT NULL DEFAULT '{}'",
    "ALTER TABLE runs ADD COLUMN state TEXT NOT NULL DEFAULT 'running'"
    " CHECK (state IN ('running', 'finished', 'crashed'))",
    "ALTER TABLE runs ADD COLUMN updated_at REAL NOT NULL DEFAULT 0",
    # A v1 registry did not record run states; its runs are finished in all likelihood
    # (the SDK that started them predates the upgrade), and "running" forever would lie.
    "UPDATE runs SET state = 'finished', updated_at = created_at",
    "ALTER TABLE versions ADD COLUMN expires_at REAL",
    "ALTER TABLE versions ADD COLUMN deleted_at REAL",
    f"UPDATE versions SET expires_at = created_at + ttl_seconds"
    f" WHERE ttl_seconds IS NOT NULL AND state = '{COMMITTED}'",
    f"CREATE INDEX versions_live ON versions (collection_id, idx) WHERE state = '{COMMITTED}'",
    "DROP INDEX versions_by_digest",
    "CREATE INDEX versions_by_digest ON versions (collection_id, digest, idx)"
    f" WHERE state = '{COMMITTED}'",
    "CREATE INDEX versions_expiring ON versions (expires_at) WHERE expires_at IS NOT NULL",
    # A rowid table: parts list in the order they were added. version_id stays NULL
    # while the part is pending and names the version that consumed it afterwards;
    # the row is kept so that adding the same submission again stays a no-op.
    """CREATE TABLE parts (
        id INTEGER PRIMARY KEY,
        submission_id TEXT NOT NULL,
        collection_id INTEGER NOT NULL REFERENCES collections (id),
        distributed_id TEXT NOT NULL CHECK (distributed_id <> ''),
        manifest_key TEXT NOT NULL,
        run_id INTEGER REFERENCES runs (id),
        size INTEGER NOT NULL,
        file_count INTEGER NOT NULL,
        created_at REAL NOT NULL,
        version_id TEXT REFERENCES versions (id)
    )""",
    "CREATE UNIQUE INDEX parts_by_submission ON parts (submission_id)",
    "CREATE INDEX parts_pending ON parts (collection_id, distributed_id, id)"
    " WHERE version_id IS NULL",
)


# Issue 16: each version and part records the store that holds its manifest and content,
# so readers on other nodes find it. Rows written before have NULL: their content is in
# the reader's configured store, which on the one node that wrote them is where it is.
_V3 = (
    "ALTER TABLE versions ADD COLUMN store TEXT",
    "ALTER TABLE parts ADD COLUMN store TEXT",
)


# Issue 18: runs keep W&B's tags, notes and sweep, and their history rows (run.log);
# sweeps are stored. A run's sweep is its id, not a key: a run may name a sweep this
# registry never saw (WANDB_SWEEP_ID set by another tool), and W&B keeps it all the same.
# History is a rowid table (rows can be large, which WITHOUT ROWID handles badly) with
# one row per (run, step): a step written again replaces its row.
_V4 = (
    "ALTER TABLE runs ADD COLUMN tags TEXT NOT NULL DEFAULT '[]'",
    "ALTER TABLE runs ADD COLUMN notes TEXT",
    "ALTER TABLE runs ADD COLUMN sweep_id TEXT",
    """CREATE TABLE history (
        id INTEGER PRIMARY KEY,
        run_id INTEGER NOT NULL REFERENCES runs (id),
        step INTEGER NOT NULL CHECK (step >= 0),
        data TEXT NOT NULL
    )""",
    "CREATE UNIQUE INDEX history_by_step ON history (run_id, step)",
    """CREATE TABLE sweeps (
        id INTEGER PRIMARY KEY,
        project_id INTEGER NOT NULL REFERENCES projects (id),
        sweep_id TEXT NOT NULL,
        config TEXT NOT NULL,
        state TEXT NOT NULL,
        created_at REAL NOT NULL
    )""",
    "CREATE UNIQUE INDEX sweeps_by_project ON sweeps (project_id, sweep_id)",
)


def _run_all(statements: tuple[str, ...]) -> Callable[[sqlite3.Connection], None]:
    def step(conn: sqlite3.Connection) -> None:
        for statement in statements:
            conn.execute(statement)

    return step


MIGRATIONS: tuple[Callable[[sqlite3.Connection], None], ...] = (
    _run_all(_V1),
    _run_all(_V2),
    _run_all(_V3),
    _run_all(_V4),
)
SCHEMA_VERSION = len(MIGRATIONS)


def connect(path: Path, *, read_only: bool, timeout: float) -> sqlite3.Connection:
    """A new connection to ``path`` with the settings every registry connection needs.

    Transactions are explicit (``isolation_level=None``): the registry issues
    ``BEGIN IMMEDIATE`` itself so that one commit is one transaction, rather than
    letting the sqlite3 module open and close them implicitly around statements.
    ``timeout`` is SQLite's busy timeout: a writer that finds another process (the
    daemon, another training script) holding the write lock waits for it up to that
    long instead of failing. Every write takes the lock at ``BEGIN IMMEDIATE``, where
    SQLite does wait; a deferred transaction that upgraded to writing later could get
    ``SQLITE_BUSY`` at once, without waiting, whenever another process had written
    since it started reading.
    ``check_same_thread`` is off only so that ``close()`` can close every thread's
    connection from one thread; each connection is otherwise used by its own thread.
    """
    if read_only:
        if not path.exists():
            raise RegistryError(
                f"no registry at {path}: nothing has been committed on this node yet, "
                "or ARTISYNC_HOME points somewhere else"
            )
        target, uri = f"{path.resolve().as_uri()}?mode=ro", True
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        target, uri = os.fspath(path), False
    conn = sqlite3.connect(
        target, timeout=timeout, isolation_level=None, check_same_thread=False, uri=uri
    )
    try:
        conn.execute("PRAGMA foreign_keys = ON")
        if not read_only:
            # WAL lets the SDK's readers in other processes read while the daemon
            # writes, and a reader never blocks a commit. The mode is stored in the
            # file, so read-only openers get it without being allowed to set it.
            _use_wal(conn, timeout)
            # FULL, not NORMAL: with WAL, NORMAL skips the fsync at commit, so a power
            # loss can undo the last commits after the daemon has already moved their
            # submissions to spool/done and told wait() "v3". The lost version would
            # then never be committed again. FULL costs one fsync per version (not per
            # file), which is small beside hashing and uploading the content.
            conn.execute("PRAGMA synchronous = FULL")
    except BaseException:
        conn.close()
        raise
    return conn


def _use_wal(conn: sqlite3.Connection, timeout: float) -> None:
    # Switching a new file to WAL needs its exclusive lock, and SQLite answers "database
    # is locked" at once, without the busy timeout, when another process opening the
    # same new file holds it: many training scripts starting together on a fresh home
    # do exactly that. Retry for as long as the busy timeout would have waited. Once
    # the file is in WAL mode (the usual case) the first query answers, with no lock.
    deadline = time.monotonic() + timeout
    pause = 0.001
    while True:
        try:
            if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                conn.execute("PRAGMA journal_mode = WAL").fetchone()
            return
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode & 0xFF not in _BUSY or time.monotonic() >= deadline:
                raise
        time.sleep(pause)
        pause = min(pause * 2, 0.05)


_BUSY = (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


def schema_version(conn: sqlite3.Connection) -> int:
    """The schema version recorded in the database (0 for a new, empty file)."""
    row = conn.execute("PRAGMA user_version").fetchone()
    return int(row[0])


def migrate(conn: sqlite3.Connection, path: Path) -> int:
    """Bring the database to :data:`SCHEMA_VERSION` in one transaction; return it.

    Refuses a database written by a newer artisync rather than guessing how to use
    columns it does not know.
    """
    if schema_version(conn) == SCHEMA_VERSION:
        return SCHEMA_VERSION
    conn.execute("BEGIN IMMEDIATE")
    try:
        # Read again under the write lock: another process may have migrated first.
        current = schema_version(conn)
        _refuse_newer(current, path)
        for step in MIGRATIONS[current:]:
            step(conn)
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return SCHEMA_VERSION


def check_readable(conn: sqlite3.Connection, path: Path) -> None:
    """Refuse to read a registry whose schema is not the one this artisync knows."""
    current = schema_version(conn)
    _refuse_newer(current, path)
    if current < SCHEMA_VERSION:
        raise RegistryError(
            f"registry {path} has schema version {current}, this artisync needs "
            f"{SCHEMA_VERSION}; start the daemon once (`artisync daemon`) to upgrade it"
        )


def _refuse_newer(current: int, path: Path) -> None:
    if current > SCHEMA_VERSION:
        raise RegistryError(
            f"registry {path} has schema version {current}, newer than the {SCHEMA_VERSION} "
            "this artisync knows; upgrade artisync on this node"
        )
