"""The embedded registry: one SQLite file per node, written by the daemon alone.

:class:`SqliteRegistry` owns the connections and transactions; the SQL lives in
``sqlite_schema`` (tables, migrations), ``sqlite_queries`` (reads) and
``sqlite_commit`` (writes). The daemon opens it read-write and may call it from
``asyncio.to_thread`` workers; the SDK's ``Api`` opens the same file with
``read_only=True`` from other processes at the same time (WAL keeps readers and the
writer from blocking each other).
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from types import TracebackType
from typing import Any

from artisync.errors import NotFoundError, RegistryError
from artisync.registry import sqlite_commit as writes
from artisync.registry import sqlite_queries as reads
from artisync.registry.model import DEFAULT_ENTITY, Collection, CommitResult, Run, Version
from artisync.registry.sqlite_schema import check_readable, connect, migrate

__all__ = ["SqliteRegistry"]


class SqliteRegistry:
    """The registry in a SQLite file: projects, runs, versions, aliases and lineage.

    Each thread that uses the registry gets its own connection, so calls from
    ``asyncio.to_thread`` workers never share one; writes from this process are
    serialised by a lock before SQLite's own write lock, and every write is one
    ``BEGIN IMMEDIATE`` transaction. Multi-statement reads run in one read
    transaction, so they see one snapshot. Call :meth:`close` (or use ``with``) once
    no thread is using the registry any more.

    ``entity=None`` everywhere means :data:`~artisync.registry.model.DEFAULT_ENTITY`.
    Failures of the database itself surface as :class:`~artisync.errors.RegistryError`.
    """

    def __init__(
        self, path: str | os.PathLike[str], *, read_only: bool = False, timeout: float = 30.0
    ) -> None:
        """Open (read-write: create and migrate) the registry file at ``path``.

        ``timeout`` is how long a statement waits for another process's write lock.
        """
        self._path = Path(path)
        self._read_only = read_only
        self._timeout = timeout
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._guard = threading.Lock()  # protects _connections and _closed
        self._write_lock = threading.Lock()
        self._closed = False
        conn = self._connection()
        try:
            if read_only:
                check_readable(conn, self._path)
            else:
                migrate(conn, self._path)
        except sqlite3.Error as exc:
            self.close()
            raise self._registry_error(exc, "opening") from exc
        except BaseException:
            self.close()
            raise

    @property
    def path(self) -> Path:
        """The registry file."""
        return self._path

    def close(self) -> None:
        """Close every thread's connection. Further calls raise ``RegistryError``."""
        with self._guard:
            self._closed = True
            connections, self._connections = self._connections, []
        for conn in connections:
            conn.close()

    def __enter__(self) -> SqliteRegistry:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _connection(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if self._closed:
            raise RegistryError(f"registry {self._path} is closed")
        if conn is not None:
            return conn
        # Connect outside the guard: setting WAL may wait for another process's lock,
        # and other threads that already have their connection must not wait with it.
        try:
            conn = connect(self._path, read_only=self._read_only, timeout=self._timeout)
        except sqlite3.Error as exc:
            raise self._registry_error(exc, "opening") from exc
        with self._guard:
            if self._closed:
                conn.close()
                raise RegistryError(f"registry {self._path} is closed")
            self._connections.append(conn)
        self._local.conn = conn
        return conn

    def _registry_error(self, exc: sqlite3.Error, doing: str) -> RegistryError:
        # Callers see RegistryError only: no sqlite3 type leaks out of the registry.
        hint = ""
        if "locked" in str(exc) or "busy" in str(exc):
            hint = (
                f"; another process held the write lock for over {self._timeout:g}s "
                "(is a second daemon running on the same ARTISYNC_HOME?)"
            )
        elif "readonly" in str(exc):
            hint = "; the daemon is the registry's only writer"
        return RegistryError(f"registry {self._path}: {doing} failed: {exc}{hint}")

    @contextmanager
    def _transaction(self, doing: str, *, write: bool) -> Iterator[sqlite3.Connection]:
        if write and self._read_only:
            raise RegistryError(
                f"registry {self._path} is open read-only: {doing} needs the read-write "
                "registry, which only the daemon opens"
            )
        conn = self._connection()
        # The process-wide lock queues this process's writers in order instead of
        # leaving them to SQLite's busy-wait; BEGIN IMMEDIATE takes SQLite's write
        # lock at once, so max(index)+1 and the submission check see no other writer.
        lock: AbstractContextManager[object] = self._write_lock if write else nullcontext()
        with lock:
            try:
                conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
                try:
                    yield conn
                    conn.execute("COMMIT")
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
            except sqlite3.Error as exc:
                raise self._registry_error(exc, doing) from exc

    # -- runs -------------------------------------------------------------------------

    def ensure_run(
        self,
        project: str,
        entity: str | None,
        run_id: str,
        *,
        name: str | None = None,
        job_type: str | None = None,
        group: str | None = None,
        config: Mapping[str, Any] | None = None,
    ) -> Run:
        """Create the run (and its project) if new, else update the fields given; return it.

        Arguments left as None keep the stored values (a resumed run keeps its
        config unless it passes a new one, which replaces it).
        """
        entity = entity or DEFAULT_ENTITY
        fields = {"name": name, "job_type": job_type, "group": group, "config": config}
        with self._transaction("writing a run", write=True) as conn:
            key = writes.ensure_run(conn, entity, project, run_id, fields)
            return reads.runs_where(conn, "r.id = ?", (key,))[0]

    def get_run(self, project: str, run_id: str, entity: str | None = None) -> Run:
        """The run ``run_id`` of ``entity/project``; ``NotFoundError`` if there is none."""
        with self._transaction("reading a run", write=False) as conn:
            key = reads.find_run(conn, run_id, project, entity or DEFAULT_ENTITY)
            return reads.runs_where(conn, "r.id = ?", (key,))[0]

    def list_runs(self, project: str, entity: str | None = None) -> list[Run]:
        """The project's runs, oldest first (empty for a project never used)."""
        with self._transaction("listing runs", write=False) as conn:
            where = "p.entity = ? AND p.name = ? ORDER BY r.id"
            return reads.runs_where(conn, where, (entity or DEFAULT_ENTITY, project))

    # -- versions ---------------------------------------------------------------------

    def commit_version(
        self,
        *,
        submission_id: str,
        project: str,
        entity: str | None,
        name: str,
        type: str,
        digest: str,
        manifest_key: str,
        size: int,
        file_count: int,
        description: str | None,
        metadata: Mapping[str, Any],
        aliases: Sequence[str],
        tags: Sequence[str],
        run_id: str | None,
        ttl_seconds: float | None,
    ) -> CommitResult:
        """Commit a submission's version, in one transaction; return it and whether it is new.

        - The same ``submission_id`` again returns the first result, ``created`` included.
        - A new version gets ``max(index) + 1`` in its collection (from 0); numbers are
          assigned here, so a submission rejected earlier never takes one.
        - Content (``digest``) identical to a committed version of the collection
          creates nothing: that version gets the aliases and tags and is returned with
          ``created=False``, and ``latest`` stays where it is.
        - ``latest`` names the highest version by itself; passing it is a no-op. Other
          aliases move here from whichever version of the collection had them.
        - ``name`` has one type per project, else ``TypeConflictError``.
        - ``run_id`` records a "produced" edge, creating the run if it is unknown.
        """
        with self._transaction("committing a version", write=True) as conn:
            return writes.commit_version(
                conn,
                submission_id=submission_id,
                project=project,
                entity=entity or DEFAULT_ENTITY,
                name=name,
                type=type,
                digest=digest,
                manifest_key=manifest_key,
                size=size,
                file_count=file_count,
                description=description,
                metadata=metadata,
                aliases=aliases,
                tags=tags,
                run_id=run_id,
                ttl_seconds=ttl_seconds,
            )

    def submission_result(self, submission_id: str) -> CommitResult | None:
        """What committing ``submission_id`` produced, or None if it has not committed."""
        with self._transaction("reading a submission", write=False) as conn:
            return writes.submission_result(conn, submission_id)

    def get_version(
        self, project: str, name: str, alias_or_version: str, entity: str | None = None
    ) -> Version:
        """The version named by an alias (``latest``, ``best``) or a label (``v3``).

        ``NotFoundError`` lists the collection's versions and aliases, or the
        project's artifacts when ``name`` does not exist.
        """
        with self._transaction("reading a version", write=False) as conn:
            entity = entity or DEFAULT_ENTITY
            return reads.resolve_version(conn, entity, project, name, alias_or_version)

    def get_version_by_id(self, version_id: str) -> Version:
        """The version with this id; ``NotFoundError`` if there is none."""
        with self._transaction("reading a version", write=False) as conn:
            return self._version_by_id(conn, version_id)

    def _version_by_id(self, conn: sqlite3.Connection, version_id: str) -> Version:
        found = reads.versions_where(conn, "v.id = ?", (version_id,))
        if not found:
            raise NotFoundError(f"no artifact version with id {version_id!r} in {self._path}")
        return found[0]

    def list_versions(self, project: str, name: str, entity: str | None = None) -> list[Version]:
        """The committed versions of ``name``, by index; ``NotFoundError`` for unknown names."""
        with self._transaction("listing versions", write=False) as conn:
            return reads.list_versions(conn, entity or DEFAULT_ENTITY, project, name)

    def list_collections(
        self, project: str, type: str | None = None, entity: str | None = None
    ) -> list[Collection]:
        """The project's artifact names (of ``type``, if given), sorted by name."""
        with self._transaction("listing artifacts", write=False) as conn:
            return reads.list_collections(conn, entity or DEFAULT_ENTITY, project, type)

    def set_aliases(self, version_id: str, aliases: Sequence[str]) -> Version:
        """Make ``aliases`` this version's aliases (moving them from other versions).

        Aliases the version had and ``aliases`` omits are removed. ``latest`` is
        accepted only for the highest version, where it is a no-op.
        """
        with self._transaction("setting aliases", write=True) as conn:
            writes.set_aliases(conn, version_id, aliases)
            return self._version_by_id(conn, version_id)

    # -- lineage ----------------------------------------------------------------------

    def record_use(
        self,
        run_id: str,
        version_id: str,
        *,
        project: str | None = None,
        entity: str | None = None,
    ) -> None:
        """Record that the run used the version (an input edge); repeating it is a no-op.

        The run is found by id; pass ``project`` when two projects share that id.
        """
        with self._transaction("recording a use", write=True) as conn:
            run = reads.find_run(conn, run_id, project, entity or DEFAULT_ENTITY)
            self._version_by_id(conn, version_id)
            writes.record_edge(conn, run, version_id, "used")

    def produced_by(self, version_id: str) -> Run | None:
        """The run that created the version, or None if it was logged without one."""
        with self._transaction("reading lineage", write=False) as conn:
            run_key = self._version_run(conn, version_id)
            return None if run_key is None else reads.runs_where(conn, "r.id = ?", (run_key,))[0]

    def _version_run(self, conn: sqlite3.Connection, version_id: str) -> int | None:
        row = conn.execute("SELECT run_id FROM versions WHERE id = ?", (version_id,)).fetchone()
        if row is None:
            raise NotFoundError(f"no artifact version with id {version_id!r} in {self._path}")
        return None if row[0] is None else int(row[0])

    def used_by(self, version_id: str) -> list[Run]:
        """The runs that used the version, in the order they first used it."""
        with self._transaction("reading lineage", write=False) as conn:
            self._version_run(conn, version_id)
            return reads.runs_where(
                conn,
                "l.version_id = ? AND l.direction = 'used' ORDER BY l.id",
                (version_id,),
                join="JOIN lineage AS l ON l.run_id = r.id",
            )

    def _run_versions(
        self, run_id: str, project: str | None, entity: str | None, direction: str
    ) -> list[Version]:
        with self._transaction("reading lineage", write=False) as conn:
            run = reads.find_run(conn, run_id, project, entity or DEFAULT_ENTITY)
            return reads.versions_where(
                conn,
                "l.run_id = ? AND l.direction = ? ORDER BY l.id",
                (run, direction),
                join="JOIN lineage AS l ON l.version_id = v.id",
            )

    def logged_by_run(
        self, run_id: str, *, project: str | None = None, entity: str | None = None
    ) -> list[Version]:
        """The versions the run logged (including identical content it logged again)."""
        return self._run_versions(run_id, project, entity, "produced")

    def used_by_run(
        self, run_id: str, *, project: str | None = None, entity: str | None = None
    ) -> list[Version]:
        """The versions the run used, in the order it first used them."""
        return self._run_versions(run_id, project, entity, "used")
