"""The server's registry: PostgreSQL, shared by every ``artisync server`` process.

:class:`PostgresRegistry` is the :class:`~artisync.registry.contract.Registry` on
PostgreSQL, with exactly the embedded backend's behaviour: the rules of each method are
those documented on :class:`~artisync.registry.sqlite.SqliteRegistry`, and the contract
suite runs against both. What differs is that many processes write at once; how the
rules still hold is said in ``postgres.commit`` (idempotency, numbering, locks) and
``postgres.connection`` (isolation, retries). The pool lives in ``postgres.connection``,
the schema in ``postgres.schema`` and ``postgres/migrations/``, the SQL in
``postgres.queries`` (reads), ``postgres.commit`` (commits, parts) and
``postgres.edits`` (edits and deletes).

It is synchronous, like the SQLite backend and the ``Registry`` protocol: an asyncio
server calls it from ``asyncio.to_thread`` workers, each borrowing a pooled connection.
psycopg and psycopg_pool are the ``server`` extra's dependencies, so this module is not
imported by ``artisync.registry``: nodes never need them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from artisync.errors import ArtisyncError, RegistryError, RegistryUnavailableError
from artisync.names import validate_sweep_id
from artisync.registry.contract import UNSET, Closing, Unset
from artisync.registry.linking import linked_version
from artisync.registry.model import (
    DEFAULT_ENTITY,
    Collection,
    CommitResult,
    NewPart,
    NewVersion,
    Part,
    Project,
    Run,
    Sweep,
    Version,
)
from artisync.registry.postgres import commit as writes
from artisync.registry.postgres import edits as edits
from artisync.registry.postgres import history, sweeps
from artisync.registry.postgres import queries as reads
from artisync.registry.postgres.connection import Conn, Pool, PoolStats
from artisync.registry.run_rules import check_run_fields, history_rows, sweep_config

__all__ = ["PostgresRegistry"]


class PostgresRegistry(Closing):
    """The registry in a PostgreSQL database: projects, runs, versions, aliases, lineage.

    Every call is one transaction on a connection borrowed from a pool of ``min_size``
    to ``max_size`` connections, so threads may share one instance; several instances,
    in one process or in many, may share one database. Opening migrates the schema
    (``postgres.schema``) and refuses a database newer than this code. Call
    :meth:`close` (or use ``with``) once no thread uses the registry any more.

    ``entity=None`` everywhere means :data:`~artisync.registry.model.DEFAULT_ENTITY`.
    Failures of the database itself, and a database that cannot be reached within
    ``timeout`` seconds, surface as :class:`~artisync.errors.RegistryError`.
    """

    def __init__(
        self,
        dsn: str,
        *,
        min_size: int = 1,
        max_size: int = 10,
        timeout: float = 30.0,
        reconnect_timeout: float = 300.0,
    ) -> None:
        """Open the registry in the database ``dsn`` (a libpq connection string or a
        ``postgresql://`` URL), migrating its schema if needed.

        ``timeout`` is how long a call waits for a free connection, and opening for the
        server to answer. ``reconnect_timeout`` is how long the pool retries a lost
        connection, with growing pauses, before it drops it and opens a new one when a
        call next needs it: a server keeps it short, so that it is back within seconds
        of the database, not at the end of a long pause.
        """
        self._db = Pool(
            dsn,
            min_size=min_size,
            max_size=max_size,
            timeout=timeout,
            reconnect_timeout=reconnect_timeout,
        )

    @property
    def where(self) -> str:
        """The database, as messages name it (no password)."""
        return self._db.where

    def close(self) -> None:
        """Close every pooled connection. Further calls raise ``RegistryError``."""
        self._db.close()

    def ping(self, timeout: float = 2.0) -> None:
        """Return once the database answers on a pooled connection; else
        ``RegistryUnavailableError`` within about ``timeout`` seconds. What
        ``artisync server``'s readiness probe asks; not part of the contract."""
        self._db.ping(timeout)

    def pool_stats(self) -> PoolStats:
        """The pool's size and the connections in use now (for the server's metrics)."""
        return self._db.stats()

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
        tags: Sequence[str] | None = None,
        notes: str | None = None,
        sweep: str | None = None,
    ) -> Run:
        """Create the run (and its project) if new, else update the fields given; return
        it. See :meth:`SqliteRegistry.ensure_run`."""
        entity = entity or DEFAULT_ENTITY
        fields = {"name": name, "job_type": job_type, "group": group, "config": config}
        fields.update(check_run_fields(run_id, tags, notes, sweep))

        def call(conn: Conn) -> Run:
            key = writes.ensure_run(conn, entity, project, run_id, fields)
            return reads.runs_where(conn, "r.id = %s", (key,))[0]

        return self._db.write("writing a run", call)

    def get_run(self, project: str, run_id: str, entity: str | None = None) -> Run:
        """The run ``run_id`` of ``entity/project``; ``NotFoundError`` if there is none."""

        def call(conn: Conn) -> Run:
            key = reads.find_run(conn, run_id, project, entity or DEFAULT_ENTITY)
            return reads.runs_where(conn, "r.id = %s", (key,))[0]

        return self._db.read("reading a run", call)

    def find_run(self, project: str, run_id: str, entity: str | None = None) -> Run | None:
        """The run ``run_id`` of ``entity/project``, or None if there is none."""
        return self._db.read(
            "reading a run",
            lambda conn: reads.run_record(conn, entity or DEFAULT_ENTITY, project, run_id),
        )

    def list_runs(self, project: str, entity: str | None = None) -> list[Run]:
        """The project's runs, oldest first (empty for a project never used)."""
        where = "p.entity = %s AND p.name = %s ORDER BY r.id"
        params = (entity or DEFAULT_ENTITY, project)
        return self._db.read("listing runs", lambda conn: reads.runs_where(conn, where, params))

    def set_run_summary(
        self,
        project: str,
        run_id: str,
        summary: Mapping[str, Any],
        entity: str | None = None,
    ) -> Run:
        """Replace the run's whole summary; see :meth:`SqliteRegistry.set_run_summary`."""

        def call(conn: Conn) -> Run:
            key = edits.set_run_summary(conn, entity or DEFAULT_ENTITY, project, run_id, summary)
            return reads.runs_where(conn, "r.id = %s", (key,))[0]

        return self._db.write("writing a run summary", call)

    def set_run_state(
        self, project: str, run_id: str, state: str, entity: str | None = None
    ) -> Run:
        """Set the run's state; see :meth:`SqliteRegistry.set_run_state`."""

        def call(conn: Conn) -> Run:
            key = edits.set_run_state(conn, entity or DEFAULT_ENTITY, project, run_id, state)
            return reads.runs_where(conn, "r.id = %s", (key,))[0]

        return self._db.write("writing a run state", call)

    def append_history(
        self,
        project: str,
        run_id: str,
        rows: Sequence[Mapping[str, Any]],
        entity: str | None = None,
    ) -> None:
        """Store history rows of the run; see :meth:`SqliteRegistry.append_history`."""
        checked = history_rows(rows, run=run_id)
        self._db.write(
            "writing run history",
            lambda conn: history.append_history(
                conn, entity or DEFAULT_ENTITY, project, run_id, checked
            ),
        )

    def run_history(
        self, project: str, run_id: str, entity: str | None = None
    ) -> list[dict[str, Any]]:
        """The run's history rows, by ``_step``; ``NotFoundError`` for an unknown run."""
        return self._db.read(
            "reading run history",
            lambda conn: history.run_history(conn, entity or DEFAULT_ENTITY, project, run_id),
        )

    # -- sweeps -----------------------------------------------------------------------

    def create_sweep(
        self,
        project: str,
        sweep_id: str,
        config: Mapping[str, Any],
        entity: str | None = None,
    ) -> Sweep:
        """Create the sweep with ``config``; see :meth:`SqliteRegistry.create_sweep`."""
        config_json = sweep_config(config, sweep_id=validate_sweep_id(sweep_id))
        return self._db.write(
            "creating a sweep",
            lambda conn: sweeps.create_sweep(
                conn, entity or DEFAULT_ENTITY, project, sweep_id, config_json
            ),
        )

    def get_sweep(self, project: str, sweep_id: str, entity: str | None = None) -> Sweep:
        """The sweep ``sweep_id`` of ``entity/project``; ``NotFoundError`` if absent."""
        return self._db.read(
            "reading a sweep",
            lambda conn: sweeps.get_sweep(conn, entity or DEFAULT_ENTITY, project, sweep_id),
        )

    # -- versions ---------------------------------------------------------------------

    def commit_version(self, version: NewVersion) -> CommitResult:
        """Commit a submission's version in one transaction; return it and whether it is
        new. The rules are :meth:`SqliteRegistry.commit_version`'s; across processes,
        numbers follow commit order and the submission id makes a retry return the first
        answer (``postgres.commit``)."""
        return self._db.write(
            "committing a version", lambda conn: writes.commit_version(conn, version)
        )

    def commit_versions(self, versions: Sequence[NewVersion]) -> list[CommitResult | Exception]:
        """Commit many submissions, each as :meth:`commit_version` would; the server's
        group commit (one transaction, one WAL flush for all). Each gets its result or
        the error that refused it. A batch the database fails as a whole (not a refusal:
        say, a value out of a column's range) is committed again one by one, so only
        the bad submission fails; an unreachable database fails every one."""
        try:
            return list(
                self._db.write(
                    "committing versions", lambda conn: writes.commit_versions(conn, versions)
                )
            )
        except RegistryUnavailableError as exc:
            return [exc for _ in versions]
        except RegistryError as exc:
            if len(versions) == 1:
                return [exc]
        return [self._one(version) for version in versions]

    def _one(self, version: NewVersion) -> CommitResult | Exception:
        try:
            return self.commit_version(version)
        except ArtisyncError as exc:
            return exc

    def link_version(
        self,
        version_id: str,
        *,
        project: str,
        name: str,
        entity: str | None = None,
        aliases: Sequence[str] = (),
        submission_id: str,
    ) -> CommitResult:
        """Link a live version into ``entity/project/name``; see
        :meth:`SqliteRegistry.link_version`. The source is read, then the link committed
        as any commit (its submission id keeps a retry to its first answer)."""
        earlier = self.submission_result(submission_id)
        if earlier is not None:
            return earlier
        link = linked_version(
            self.get_version_by_id(version_id),
            submission_id=submission_id,
            project=project,
            name=name,
            entity=entity,
            aliases=aliases,
        )
        return self.commit_version(link)

    def submission_result(self, submission_id: str) -> CommitResult | None:
        """What committing ``submission_id`` produced (maybe a tombstone), or None; see
        :meth:`SqliteRegistry.submission_result`."""
        return self._db.read(
            "reading a submission", lambda conn: writes.submission_result(conn, submission_id)
        )

    def get_version(
        self, project: str, name: str, alias_or_version: str, entity: str | None = None
    ) -> Version:
        """The live version named by an alias or a label; ``NotFoundError`` lists what
        exists."""
        return self._db.read(
            "reading a version",
            lambda conn: reads.resolve_version(
                conn, entity or DEFAULT_ENTITY, project, name, alias_or_version
            ),
        )

    def get_version_by_id(self, version_id: str) -> Version:
        """The live version with this id; ``NotFoundError`` if unknown or deleted."""
        return self._db.read("reading a version", lambda conn: reads.live_version(conn, version_id))

    def list_versions(self, project: str, name: str, entity: str | None = None) -> list[Version]:
        """The live versions of ``name``, by index; ``NotFoundError`` for unknown names."""
        return self._db.read(
            "listing versions",
            lambda conn: reads.list_versions(conn, entity or DEFAULT_ENTITY, project, name),
        )

    def list_projects(self) -> list[Project]:
        """Every project with an artifact or a run, by entity and name."""

        def call(conn: Conn) -> list[Project]:
            rows = conn.execute(
                "SELECT entity, name, created_at FROM projects ORDER BY entity, name"
            ).fetchall()
            return [Project(entity, name, float(created)) for entity, name, created in rows]

        return self._db.read("listing projects", call)

    def list_collections(
        self, project: str, type: str | None = None, entity: str | None = None
    ) -> list[Collection]:
        """The project's artifact names (of ``type``, if given), sorted by name."""
        return self._db.read(
            "listing artifacts",
            lambda conn: reads.list_collections(conn, entity or DEFAULT_ENTITY, project, type),
        )

    def set_aliases(self, version_id: str, aliases: Sequence[str]) -> Version:
        """Make ``aliases`` this version's aliases, moving them from other versions; see
        :meth:`SqliteRegistry.set_aliases`."""

        def call(conn: Conn) -> Version:
            edits.set_aliases(conn, version_id, aliases)
            return reads.live_version(conn, version_id)

        return self._db.write("setting aliases", call)

    def update_version(
        self,
        version_id: str,
        *,
        description: str | Unset | None = UNSET,
        metadata: Mapping[str, Any] | Unset = UNSET,
        ttl_seconds: float | Unset | None = UNSET,
    ) -> Version:
        """Change the given fields of a live version; see
        :meth:`SqliteRegistry.update_version`."""

        def call(conn: Conn) -> Version:
            edits.update_version(
                conn,
                version_id,
                description=description,
                metadata=metadata,
                ttl_seconds=ttl_seconds,
            )
            return reads.live_version(conn, version_id)

        return self._db.write("editing a version", call)

    def delete_version(self, version_id: str, *, delete_aliases: bool = False) -> Version:
        """Delete the version; return its tombstone. See
        :meth:`SqliteRegistry.delete_version`."""

        def call(conn: Conn) -> Version:
            edits.delete_version(conn, version_id, delete_aliases=delete_aliases)
            return reads.versions_where(conn, "v.id = %s", (version_id,))[0]

        return self._db.write("deleting a version", call)

    def expired_versions(self, now: float, limit: int = 1000) -> list[Version]:
        """Up to ``limit`` live versions whose TTL ran out at or before ``now``, the
        longest expired first (an index of expiry times serves it)."""
        return self._db.read(
            "listing expired versions", lambda conn: reads.expired_versions(conn, now, limit)
        )

    def live_manifest_keys(self) -> set[str]:
        """The manifest keys of every live version and pending part (what GC keeps)."""
        return self._db.read("listing manifests", reads.live_manifest_keys)

    # -- parallel writers ---------------------------------------------------------------

    def add_part(self, part: NewPart) -> None:
        """Record a part of the next version of ``distributed_id``, idempotently; see
        :meth:`SqliteRegistry.add_part`."""
        self._db.write("adding a part", lambda conn: writes.add_part(conn, part))

    def list_parts(
        self, project: str, name: str, distributed_id: str, entity: str | None = None
    ) -> list[Part]:
        """The pending parts of ``distributed_id``, in the order they were added."""
        return self._db.read(
            "listing parts",
            lambda conn: reads.list_parts(
                conn, entity or DEFAULT_ENTITY, project, name, distributed_id
            ),
        )

    # -- lineage ----------------------------------------------------------------------

    def record_use(
        self,
        run_id: str,
        version_id: str,
        *,
        project: str | None = None,
        entity: str | None = None,
    ) -> None:
        """Record that the run used the live version; repeating it is a no-op."""

        def call(conn: Conn) -> None:
            run = reads.find_run(conn, run_id, project, entity or DEFAULT_ENTITY)
            # The version's row stays locked until the edge is in: a delete waits for it
            # and then removes the edge with the version's others.
            reads.live_version_key(conn, version_id, lock="FOR SHARE OF v")
            writes.record_edge(conn, run, version_id, "used")

        self._db.write("recording a use", call)

    def produced_by(self, version_id: str) -> Run | None:
        """The run that created the version, or None if it was logged without one."""

        def call(conn: Conn) -> Run | None:
            run_key = reads.live_version_key(conn, version_id).run
            return None if run_key is None else reads.runs_where(conn, "r.id = %s", (run_key,))[0]

        return self._db.read("reading lineage", call)

    def writers(self, version_id: str) -> list[Run]:
        """Every run that logged the version, in the order each first did."""
        return self._version_runs(version_id, "produced")

    def used_by(self, version_id: str) -> list[Run]:
        """The runs that used the version, in the order they first used it."""
        return self._version_runs(version_id, "used")

    def _version_runs(self, version_id: str, direction: str) -> list[Run]:
        def call(conn: Conn) -> list[Run]:
            reads.live_version_key(conn, version_id)
            return reads.runs_where(
                conn,
                "l.version_id = %s AND l.direction = %s ORDER BY l.id",
                (version_id, direction),
                join="JOIN lineage AS l ON l.run_id = r.id",
            )

        return self._db.read("reading lineage", call)

    def _run_versions(
        self, run_id: str, project: str | None, entity: str | None, direction: str
    ) -> list[Version]:
        def call(conn: Conn) -> list[Version]:
            run = reads.find_run(conn, run_id, project, entity or DEFAULT_ENTITY)
            return reads.versions_where(
                conn,
                "l.run_id = %s AND l.direction = %s ORDER BY l.id",
                (run, direction),
                join="JOIN lineage AS l ON l.version_id = v.id",
            )

        return self._db.read("reading lineage", call)

    def logged_by_run(
        self, run_id: str, *, project: str | None = None, entity: str | None = None
    ) -> list[Version]:
        """The live versions the run logged: created, logged again, or wrote a part of."""
        return self._run_versions(run_id, project, entity, "produced")

    def used_by_run(
        self, run_id: str, *, project: str | None = None, entity: str | None = None
    ) -> list[Version]:
        """The live versions the run used, in the order it first used them."""
        return self._run_versions(run_id, project, entity, "used")
