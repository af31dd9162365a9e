"""Reading an embedded (SQLite) registry for ``import_registry``: one consistent snapshot,
read-only, as plain rows keyed by the source's own surrogate keys.

The file may belong to a running daemon, so it is opened with SQLite's read-only URI mode
(``mode=ro``: this process can never write it, not even a migration) and read inside one
read transaction: with WAL, that transaction sees the database as of its first read,
whatever the daemon commits meanwhile, and never blocks the daemon's commits.

A version or part that recorded no store (NULL: committed before versions recorded their
store) is read with the ``default_store`` the snapshot was opened with, the node's
configured store, which is where its content is: on the server, readers of other nodes
have no other way to learn it.

JSON columns (config, summary, metadata, tags, history rows, sweep configs) stay the
text SQLite holds: PostgreSQL's
``json`` type keeps text as given, so key order and number spelling survive the copy
untouched, with no parse and dump in between.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from artisync.registry.contract import Closing
from artisync.registry.sqlite.schema import check_readable, connect

__all__ = [
    "CollectionContent",
    "Edge",
    "HistoryRow",
    "SourceCollection",
    "SourcePart",
    "SourceProject",
    "SourceRun",
    "SourceSnapshot",
    "SourceSweep",
    "SourceVersion",
    "Submission",
]

# Rows fetched from SQLite at a time when streaming a table (lineage).
_FETCH = 10_000
# History rows fetched at a time: rows may be large (up to 256 KiB each).
_HISTORY_FETCH = 1_000


class SourceProject(NamedTuple):
    """A project row: its source key, entity, name and creation time."""

    key: int
    entity: str
    name: str
    created_at: float


class SourceRun(NamedTuple):
    """A run row, with its config, summary and tags as JSON text."""

    key: int
    project_key: int
    run_id: str
    name: str | None
    job_type: str | None
    group: str | None
    config: str
    summary: str
    state: str
    tags: str
    notes: str | None
    sweep: str | None
    created_at: float
    updated_at: float


class SourceSweep(NamedTuple):
    """A sweep row, with its config as JSON text."""

    project_key: int
    sweep_id: str
    config: str
    state: str
    created_at: float


class HistoryRow(NamedTuple):
    """One history row of a run: its step and its JSON text."""

    run_key: int
    step: int
    data: str


class SourceCollection(NamedTuple):
    """A collection row: an artifact name of a project, with its one type."""

    key: int
    project_key: int
    name: str
    type: str
    created_at: float


class SourceVersion(NamedTuple):
    """A version row (tombstones included), metadata as JSON text."""

    id: str
    idx: int
    digest: str
    manifest_key: str
    size: int
    file_count: int
    description: str | None
    metadata: str
    created_at: float
    run_key: int | None
    ttl_seconds: float | None
    expires_at: float | None
    state: str
    deleted_at: float | None
    store: str | None


class Submission(NamedTuple):
    """An entry of the idempotency map: the submission, its version, whether it made it."""

    submission_id: str
    version_id: str
    created: bool
    committed_at: float


class SourcePart(NamedTuple):
    """A part of a distributed version: pending (``version_id`` None) or consumed."""

    key: int
    submission_id: str
    distributed_id: str
    manifest_key: str
    run_key: int | None
    size: int
    file_count: int
    created_at: float
    version_id: str | None
    store: str | None


class Edge(NamedTuple):
    """A lineage edge: a run produced or used a version, in the order recorded."""

    key: int
    run_key: int
    version_id: str
    direction: str
    created_at: float


@dataclass(slots=True)
class CollectionContent:
    """Everything of one collection that is copied with it, in one transaction."""

    versions: list[SourceVersion]
    aliases: list[tuple[str, str]]  # (alias, version id)
    tags: list[tuple[str, str]]  # (version id, tag)
    submissions: list[Submission] = field(default_factory=list)
    parts: list[SourcePart] = field(default_factory=list)


class SourceSnapshot(Closing):
    """An embedded registry opened read-only, inside one read transaction.

    Small tables (projects, runs, sweeps, collections) and the per-collection maps that SQLite
    has no index for (submissions and parts by collection) are read whole when opened;
    versions, aliases and tags are read one collection at a time, through the indexes
    that lead with the collection; lineage is streamed in the order it was recorded,
    history run by run.
    Versions and parts with no store recorded are read with ``default_store``.
    Use it in a ``with`` block: closing ends the read transaction.
    """

    def __init__(
        self, path: Path, *, default_store: str | None = None, timeout: float = 30.0
    ) -> None:
        self.path = path
        self._default_store = default_store
        self._conn = connect(path, read_only=True, timeout=timeout)
        try:
            check_readable(self._conn, path)
            # Deferred: the snapshot is taken at the first read below and kept until
            # close, so every table is read as of one instant.
            self._conn.execute("BEGIN")
            self.projects = [
                SourceProject(*row)
                for row in self._conn.execute(
                    "SELECT id, entity, name, created_at FROM projects ORDER BY id"
                )
            ]
            self.runs = [
                SourceRun(*row)
                for row in self._conn.execute(
                    "SELECT id, project_id, run_id, name, job_type, group_name, config,"
                    " summary, state, tags, notes, sweep_id, created_at, updated_at FROM runs"
                    " ORDER BY id"
                )
            ]
            self.sweeps = [
                SourceSweep(*row)
                for row in self._conn.execute(
                    "SELECT project_id, sweep_id, config, state, created_at FROM sweeps ORDER BY id"
                )
            ]
            self.collections = [
                SourceCollection(*row)
                for row in self._conn.execute(
                    "SELECT id, project_id, name, type, created_at FROM collections ORDER BY id"
                )
            ]
            self._submissions: dict[int, list[Submission]] = {}
            for collection, sid, vid, created, at in self._conn.execute(
                "SELECT v.collection_id, s.submission_id, s.version_id, s.created,"
                " s.committed_at FROM submissions AS s JOIN versions AS v ON v.id = s.version_id"
                " ORDER BY s.committed_at, s.submission_id"
            ):
                self._submissions.setdefault(collection, []).append(
                    Submission(sid, vid, bool(created), at)
                )
            self._parts: dict[int, list[SourcePart]] = {}
            for row in self._conn.execute(
                "SELECT collection_id, id, submission_id, distributed_id, manifest_key, run_id,"
                " size, file_count, created_at, version_id, coalesce(store, ?) FROM parts"
                " ORDER BY id",
                (default_store,),
            ):
                self._parts.setdefault(row[0], []).append(SourcePart(*row[1:]))
        except BaseException:
            self._conn.close()
            raise

    def close(self) -> None:
        """End the read transaction and close the file."""
        self._conn.close()

    def version_count(self, collection: int) -> int:
        """How many versions (tombstones included) the collection holds."""
        row = self._conn.execute(
            "SELECT count(*) FROM versions WHERE collection_id = ?", (collection,)
        ).fetchone()
        return int(row[0])

    def content(self, collection: int) -> CollectionContent:
        """The collection's versions by number, its aliases, tags, submissions and parts."""
        versions = [
            SourceVersion(*row)
            for row in self._conn.execute(
                "SELECT id, idx, digest, manifest_key, size, file_count, description, metadata,"
                " created_at, run_id, ttl_seconds, expires_at, state, deleted_at,"
                " coalesce(store, ?) FROM versions WHERE collection_id = ? ORDER BY idx",
                (self._default_store, collection),
            )
        ]
        aliases = [
            (str(alias), str(vid))
            for alias, vid in self._conn.execute(
                "SELECT alias, version_id FROM aliases WHERE collection_id = ? ORDER BY alias",
                (collection,),
            )
        ]
        tags = [
            (str(vid), str(tag))
            for vid, tag in self._conn.execute(
                "SELECT t.version_id, t.tag FROM versions AS v"
                " JOIN tags AS t ON t.version_id = v.id WHERE v.collection_id = ?",
                (collection,),
            )
        ]
        return CollectionContent(
            versions,
            aliases,
            tags,
            self._submissions.get(collection, []),
            self._parts.get(collection, []),
        )

    def history(self) -> Iterator[list[HistoryRow]]:
        """Every run's history rows, run by run and by step, a batch at a time."""
        cursor = self._conn.execute("SELECT run_id, step, data FROM history ORDER BY run_id, step")
        while batch := cursor.fetchmany(_HISTORY_FETCH):
            yield [HistoryRow(*row) for row in batch]

    def edges(self) -> Iterator[list[Edge]]:
        """Every lineage edge in the order it was recorded, a batch at a time."""
        cursor = self._conn.execute(
            "SELECT id, run_id, version_id, direction, created_at FROM lineage ORDER BY id"
        )
        while batch := cursor.fetchmany(_FETCH):
            yield [Edge(*row) for row in batch]
