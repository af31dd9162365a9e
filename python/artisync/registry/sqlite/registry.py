"""The embedded registry: one SQLite file per node.

:class:`SqliteRegistry` is the :class:`~artisync.registry.contract.Registry` on SQLite;
its methods document the rules every backend keeps. The connections and transactions
live in ``sqlite.connection``, the SQL in ``sqlite.schema`` (tables, migrations),
``sqlite.queries`` (reads), ``sqlite.commit`` (commits, parts) and ``sqlite.edits``
(edits and deletes). The daemon opens it read-write and calls it from
``asyncio.to_thread`` workers; training scripts open the same file from their own
processes to read, and to write their runs and edits, at the same time (WAL keeps
readers and the writer from blocking each other, the busy timeout queues writers).
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

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
from artisync.registry.run_rules import check_run_fields, history_rows, sweep_config
from artisync.registry.sqlite import commit as writes
from artisync.registry.sqlite import edits as edits
from artisync.registry.sqlite import history, sweeps
from artisync.registry.sqlite import queries as reads
from artisync.registry.sqlite.connection import Connections

__all__ = ["SqliteRegistry"]


class SqliteRegistry(Closing):
    """The registry in a SQLite file: projects, runs, versions, aliases and lineage.

    Each thread that uses the registry gets its own connection, so calls from
    ``asyncio.to_thread`` workers never share one; every write is one ``BEGIN
    IMMEDIATE`` transaction, and writers in other processes wait for each other (up
    to ``timeout``) rather than fail. Multi-statement reads run in one read
    transaction, so they see one snapshot. Call :meth:`close` (or use ``with``) once
    no thread is using the registry any more.

    A deleted version is gone from every read (by name, alias, label or id, in
    lists, counts, lineage and deduplication) except two: :meth:`delete_version`
    and :meth:`submission_result` return its tombstone, a :class:`Version` with
    state ``DELETED``.

    ``entity=None`` everywhere means :data:`~artisync.registry.model.DEFAULT_ENTITY`.
    Failures of the database itself surface as :class:`~artisync.errors.RegistryError`.
    """

    def __init__(
        self, path: str | os.PathLike[str], *, read_only: bool = False, timeout: float = 30.0
    ) -> None:
        """Open (read-write: create and migrate) the registry file at ``path``.

        ``timeout`` is how long a write waits for another process's write lock.
        """
        self._db = Connections(Path(path), read_only=read_only, timeout=timeout)

    @property
    def path(self) -> Path:
        """The registry file."""
        return self._db.path

    def close(self) -> None:
        """Close every thread's connection. Further calls raise ``RegistryError``."""
        self._db.close()

    def _connection(self) -> sqlite3.Connection:
        """This thread's connection (tests read query plans through it)."""
        return self._db.connection()

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
        """Create the run (and its project) if new, else update the fields given; return it.

        Arguments left as None keep the stored values (a resumed run keeps its
        config unless it passes a new one, which replaces it; ``tags`` replaces the
        tags). A new run is ``running``, with no tags, notes or sweep unless given; an
        existing run keeps its state and summary. ``tags`` follow W&B's run tag rule
        (1 to 64 characters, at most 256, each kept once in the order given), ``notes``
        are at most 64 KiB, ``sweep`` is a sweep id (a run id's rule; the sweep need
        not be stored here): else ``InvalidInputError``. The daemon calls this at
        every commit and each training script at ``init``, from many processes at
        once: they queue for the write lock, none fails.
        """
        entity = entity or DEFAULT_ENTITY
        fields = {"name": name, "job_type": job_type, "group": group, "config": config}
        fields.update(check_run_fields(run_id, tags, notes, sweep))
        with self._db.transaction("writing a run", write=True) as conn:
            key = writes.ensure_run(conn, entity, project, run_id, fields)
            return reads.runs_where(conn, "r.id = ?", (key,))[0]

    def get_run(self, project: str, run_id: str, entity: str | None = None) -> Run:
        """The run ``run_id`` of ``entity/project``; ``NotFoundError`` if there is none."""
        with self._db.transaction("reading a run", write=False) as conn:
            key = reads.find_run(conn, run_id, project, entity or DEFAULT_ENTITY)
            return reads.runs_where(conn, "r.id = ?", (key,))[0]

    def find_run(self, project: str, run_id: str, entity: str | None = None) -> Run | None:
        """The run ``run_id`` of ``entity/project``, or None if there is none."""
        with self._db.transaction("reading a run", write=False) as conn:
            return reads.run_record(conn, entity or DEFAULT_ENTITY, project, run_id)

    def list_runs(self, project: str, entity: str | None = None) -> list[Run]:
        """The project's runs, oldest first (empty for a project never used)."""
        with self._db.transaction("listing runs", write=False) as conn:
            where = "p.entity = ? AND p.name = ? ORDER BY r.id"
            return reads.runs_where(conn, where, (entity or DEFAULT_ENTITY, project))

    def set_run_summary(
        self,
        project: str,
        run_id: str,
        summary: Mapping[str, Any],
        entity: str | None = None,
    ) -> Run:
        """Replace the run's whole summary with ``summary``; return the run.

        The summary must hold JSON values only (``InvalidInputError`` otherwise); an
        unknown run is ``NotFoundError`` (``ensure_run`` records it first).
        """
        with self._db.transaction("writing a run summary", write=True) as conn:
            key = edits.set_run_summary(conn, entity or DEFAULT_ENTITY, project, run_id, summary)
            return reads.runs_where(conn, "r.id = ?", (key,))[0]

    def set_run_state(
        self, project: str, run_id: str, state: str, entity: str | None = None
    ) -> Run:
        """Set the run's state (``running``, ``finished`` or ``crashed``); return the run.

        Another state is ``InvalidInputError``; an unknown run is ``NotFoundError``.
        """
        with self._db.transaction("writing a run state", write=True) as conn:
            key = edits.set_run_state(conn, entity or DEFAULT_ENTITY, project, run_id, state)
            return reads.runs_where(conn, "r.id = ?", (key,))[0]

    def append_history(
        self,
        project: str,
        run_id: str,
        rows: Sequence[Mapping[str, Any]],
        entity: str | None = None,
    ) -> None:
        """Store history rows (``run.log``) of the run, in one transaction.

        Each row is a JSON object with an int ``_step`` >= 0; a step already stored gets
        the new row in place of its old one, so a batch written again (a retry, a
        resumed run) adds nothing. A batch holds at most 1,000 rows of at most 256 KiB
        of JSON each, 4 MiB in all (``run_rules.history_rows``): else
        ``InvalidInputError`` naming the row. An unknown run is ``NotFoundError``.
        """
        checked = history_rows(rows, run=run_id)
        with self._db.transaction("writing run history", write=True) as conn:
            history.append_history(conn, entity or DEFAULT_ENTITY, project, run_id, checked)

    def run_history(
        self, project: str, run_id: str, entity: str | None = None
    ) -> list[dict[str, Any]]:
        """The run's history rows, by ``_step``; ``NotFoundError`` for an unknown run."""
        with self._db.transaction("reading run history", write=False) as conn:
            return history.run_history(conn, entity or DEFAULT_ENTITY, project, run_id)

    # -- sweeps -----------------------------------------------------------------------

    def create_sweep(
        self,
        project: str,
        sweep_id: str,
        config: Mapping[str, Any],
        entity: str | None = None,
    ) -> Sweep:
        """Create the sweep (and its project) with ``config``; return it.

        The same id with the same config again returns the sweep as it is (a retry);
        with another config it is ``InvalidInputError`` naming the sweep. ``sweep_id``
        follows a run id's rule; ``config`` holds JSON values only.
        """
        config_json = sweep_config(config, sweep_id=validate_sweep_id(sweep_id))
        with self._db.transaction("creating a sweep", write=True) as conn:
            return sweeps.create_sweep(
                conn, entity or DEFAULT_ENTITY, project, sweep_id, config_json
            )

    def get_sweep(self, project: str, sweep_id: str, entity: str | None = None) -> Sweep:
        """The sweep ``sweep_id`` of ``entity/project``; ``NotFoundError`` if absent."""
        with self._db.transaction("reading a sweep", write=False) as conn:
            return sweeps.get_sweep(conn, entity or DEFAULT_ENTITY, project, sweep_id)

    # -- versions ---------------------------------------------------------------------

    def commit_version(self, version: NewVersion) -> CommitResult:
        """Commit a submission's version, in one transaction; return it and whether it is new.

        - The same ``submission_id`` again returns the first result, ``created``
          included, even if that version was deleted since (its tombstone: see
          :meth:`submission_result`); a deleted version is never brought back.
        - A new version gets ``max(index) + 1`` in its collection (from 0), counting
          deleted versions, so a number is never reused; numbers are assigned here,
          so a submission rejected earlier never takes one.
        - Content (``digest``) identical to a live version of the collection (in the
          same store) creates nothing: that version gets the aliases and tags and is
          returned with ``created=False``; its description, metadata and TTL stay as
          they are. A deleted version's content logged again is a new version.
        - ``latest`` moves by itself to the version committed, new or existing (W&B's
          rule: an older version whose content is logged again becomes ``latest``);
          passing it is a no-op. Other aliases move here from whichever version of the
          collection had them.
        - ``name`` has one type per project, else ``TypeConflictError``.
        - ``run_id`` records a "produced" edge, creating the run if it is unknown.
        - ``ttl_seconds`` (positive, or None) makes the version expire that long after
          its creation (:meth:`expired_versions`).
        - ``distributed_id`` (``finish_artifact``) consumes the pending parts of that
          id (:meth:`add_part`) in the same transaction, also when the content equals
          an existing version's: a part added afterwards belongs to the next version.
          The caller merges the parts' manifests into ``manifest_key`` beforehand and
          must keep new parts out between :meth:`list_parts` and this call (the daemon
          holds its commit lock). Each run that added a part becomes a writer of the
          version (:meth:`writers`, :meth:`logged_by_run`); the version's creator
          (:meth:`produced_by`, ``Version.run_id``) is the finishing run.
        """
        with self._db.transaction("committing a version", write=True) as conn:
            return writes.commit_version(conn, version)

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
        """Commit the live version ``version_id`` as a version of ``entity/project/name``
        with ``aliases``, in one transaction; see ``artisync.registry.linking``. The same
        ``submission_id`` again returns the first answer, as :meth:`commit_version` does.
        An unknown or deleted source is ``NotFoundError``."""
        with self._db.transaction("linking a version", write=True) as conn:
            earlier = writes.submission_result(conn, submission_id)
            if earlier is not None:
                return earlier
            source = reads.live_version(conn, version_id)
            link = linked_version(
                source,
                submission_id=submission_id,
                project=project,
                name=name,
                entity=entity,
                aliases=aliases,
            )
            return writes.commit_version(conn, link)

    def submission_result(self, submission_id: str) -> CommitResult | None:
        """What committing ``submission_id`` produced, or None if it has not committed.

        When that version was deleted since, its tombstone is returned
        (``result.version.state == "DELETED"``, no aliases): the submission did
        commit, and committing it again changes nothing. Callers that report the
        version to a user should say it was deleted rather than offer it.
        Parts (:meth:`add_part`) are not submissions that commit: None for them.
        """
        with self._db.transaction("reading a submission", write=False) as conn:
            return writes.submission_result(conn, submission_id)

    def get_version(
        self, project: str, name: str, alias_or_version: str, entity: str | None = None
    ) -> Version:
        """The live version named by an alias (``latest``, ``best``) or a label (``v3``).

        ``NotFoundError`` lists the collection's versions and aliases, or the
        project's artifacts when ``name`` does not exist.
        """
        with self._db.transaction("reading a version", write=False) as conn:
            entity = entity or DEFAULT_ENTITY
            return reads.resolve_version(conn, entity, project, name, alias_or_version)

    def get_version_by_id(self, version_id: str) -> Version:
        """The live version with this id; ``NotFoundError`` if unknown or deleted
        (the message says which)."""
        with self._db.transaction("reading a version", write=False) as conn:
            return reads.live_version(conn, version_id)

    def list_versions(self, project: str, name: str, entity: str | None = None) -> list[Version]:
        """The live versions of ``name``, by index; ``NotFoundError`` for unknown names."""
        with self._db.transaction("listing versions", write=False) as conn:
            return reads.list_versions(conn, entity or DEFAULT_ENTITY, project, name)

    def list_projects(self) -> list[Project]:
        """Every project with an artifact or a run, by entity and name."""
        with self._db.transaction("listing projects", write=False) as conn:
            rows = conn.execute(
                "SELECT entity, name, created_at FROM projects ORDER BY entity, name"
            ).fetchall()
        return [Project(entity, name, created_at) for entity, name, created_at in rows]

    def list_collections(
        self, project: str, type: str | None = None, entity: str | None = None
    ) -> list[Collection]:
        """The project's artifact names (of ``type``, if given), sorted by name.

        A name is registered, with its type, by its first commit or part; its
        ``version_count`` counts live versions, so it can be 0.
        """
        with self._db.transaction("listing artifacts", write=False) as conn:
            return reads.list_collections(conn, entity or DEFAULT_ENTITY, project, type)

    def set_aliases(self, version_id: str, aliases: Sequence[str]) -> Version:
        """Make ``aliases`` this version's aliases (moving them from other versions).

        One transaction: aliases another version of the collection had move here,
        aliases this version had and ``aliases`` omits are removed, and a bad alias
        changes nothing. ``latest`` is never stored or moved: it is accepted only
        for the highest version, where it is a no-op, and omitting it removes nothing.
        """
        with self._db.transaction("setting aliases", write=True) as conn:
            edits.set_aliases(conn, version_id, aliases)
            return reads.live_version(conn, version_id)

    def update_version(
        self,
        version_id: str,
        *,
        description: str | Unset | None = UNSET,
        metadata: Mapping[str, Any] | Unset = UNSET,
        ttl_seconds: float | Unset | None = UNSET,
    ) -> Version:
        """Change the given fields of a live version; return it.

        An argument left out (:data:`~artisync.registry.contract.UNSET`) keeps its
        value. ``description=None`` clears the description; ``metadata`` replaces
        the whole mapping (JSON values only); ``ttl_seconds=None`` removes the TTL,
        a positive number sets it, counted from the version's creation (so a TTL
        already past makes the version expire at the next sweep). A deleted or
        unknown version is ``NotFoundError``.
        """
        with self._db.transaction("editing a version", write=True) as conn:
            edits.update_version(
                conn,
                version_id,
                description=description,
                metadata=metadata,
                ttl_seconds=ttl_seconds,
            )
            return reads.live_version(conn, version_id)

    def delete_version(self, version_id: str, *, delete_aliases: bool = False) -> Version:
        """Delete the version; return its tombstone (state ``DELETED``).

        A version with user aliases is refused (``InvalidInputError`` naming them)
        unless ``delete_aliases=True``, which deletes them with it; ``latest`` does
        not count. Afterwards ``latest`` names the highest remaining version (none
        if none remain), the version is gone from every read and lineage query and
        from deduplication, and its number is never given out again. Deleting a
        deleted version returns its tombstone again; an unknown id is
        ``NotFoundError``. The content stays in the store until garbage collection
        finds no live version or pending part that needs it.
        """
        with self._db.transaction("deleting a version", write=True) as conn:
            edits.delete_version(conn, version_id, delete_aliases=delete_aliases)
            return reads.versions_where(conn, "v.id = ?", (version_id,))[0]

    def expired_versions(self, now: float, limit: int = 1000) -> list[Version]:
        """Up to ``limit`` live versions whose TTL ran out at or before ``now``
        (``created_at + ttl_seconds <= now``), the longest expired first.

        Reads an index of expiry times, so the cost does not depend on how many
        versions have no TTL or expire later. Deleting them (``delete_version``
        with ``delete_aliases=True``) takes them out of the next answer.
        """
        with self._db.transaction("listing expired versions", write=False) as conn:
            return reads.expired_versions(conn, now, limit)

    def live_manifest_keys(self) -> set[str]:
        """The manifest keys of every live version and every pending part: what
        garbage collection must keep. Reads every live version (it is a sweep)."""
        with self._db.transaction("listing manifests", write=False) as conn:
            return reads.live_manifest_keys(conn)

    # -- parallel writers ---------------------------------------------------------------

    def add_part(self, part: NewPart) -> None:
        """Record a part (``upsert_artifact``) of the next version of ``distributed_id``.

        The same ``submission_id`` again is a no-op, even after the part was merged.
        ``name`` has one type per project, as for :meth:`commit_version`
        (``TypeConflictError``); a new name is registered with this type. The run is
        created if unknown. Parts take no version number; ``commit_version`` with the
        same ``distributed_id`` merges and consumes them.
        """
        with self._db.transaction("adding a part", write=True) as conn:
            writes.add_part(conn, part)

    def list_parts(
        self, project: str, name: str, distributed_id: str, entity: str | None = None
    ) -> list[Part]:
        """The pending parts of ``distributed_id``, in the order they were added
        (empty when there are none, or the name is unknown)."""
        with self._db.transaction("listing parts", write=False) as conn:
            return reads.list_parts(conn, entity or DEFAULT_ENTITY, project, name, distributed_id)

    # -- lineage ----------------------------------------------------------------------

    def record_use(
        self,
        run_id: str,
        version_id: str,
        *,
        project: str | None = None,
        entity: str | None = None,
    ) -> None:
        """Record that the run used the live version (an input edge); repeating it is a
        no-op. The run is found by id; pass ``project`` when two projects share it."""
        with self._db.transaction("recording a use", write=True) as conn:
            run = reads.find_run(conn, run_id, project, entity or DEFAULT_ENTITY)
            reads.live_version_key(conn, version_id)
            writes.record_edge(conn, run, version_id, "used")

    def produced_by(self, version_id: str) -> Run | None:
        """The run that created the version, or None if it was logged without one.

        For a version merged from parts it is the run that finished it; the part
        writers are in :meth:`writers`.
        """
        with self._db.transaction("reading lineage", write=False) as conn:
            run_key = reads.live_version_key(conn, version_id).run
            return None if run_key is None else reads.runs_where(conn, "r.id = ?", (run_key,))[0]

    def writers(self, version_id: str) -> list[Run]:
        """Every run that logged the version, in the order each first did: the runs
        that added its parts, the run that created (or finished) it, and runs that
        logged identical content again. The runs whose ``logged_by_run`` lists it."""
        return self._version_runs(version_id, "produced")

    def used_by(self, version_id: str) -> list[Run]:
        """The runs that used the version, in the order they first used it."""
        return self._version_runs(version_id, "used")

    def _version_runs(self, version_id: str, direction: str) -> list[Run]:
        with self._db.transaction("reading lineage", write=False) as conn:
            reads.live_version_key(conn, version_id)
            return reads.runs_where(
                conn,
                "l.version_id = ? AND l.direction = ? ORDER BY l.id",
                (version_id, direction),
                join="JOIN lineage AS l ON l.run_id = r.id",
            )

    def _run_versions(
        self, run_id: str, project: str | None, entity: str | None, direction: str
    ) -> list[Version]:
        with self._db.transaction("reading lineage", write=False) as conn:
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
        """The live versions the run logged: created, logged again as identical
        content, or wrote a part of (distributed versions), in that order of events."""
        return self._run_versions(run_id, project, entity, "produced")

    def used_by_run(
        self, run_id: str, *, project: str | None = None, entity: str | None = None
    ) -> list[Version]:
        """The live versions the run used, in the order it first used them."""
        return self._run_versions(run_id, project, entity, "used")
