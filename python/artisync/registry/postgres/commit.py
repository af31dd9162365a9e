"""Writing the PostgreSQL registry: runs, version commits, parts and lineage edges.

The rules are ``SqliteRegistry.commit_version``'s; what differs is how they hold when
many server processes commit at once, where SQLite had one writer at a time. A commit
runs in the database (``artisync_commit_versions``, ``postgres/migrations/0003``), one
statement for a whole batch of them:

- **Numbers follow commit order, with no gap.** Each commit locks its collection's row
  (``SELECT ... FOR UPDATE``) and, holding it, deduplicates, reads ``max(idx)``,
  inserts the version and moves the aliases. Commits of one collection queue on that row;
  commits of other collections do not wait.
- **The submission id is the idempotency key**, read under that lock: a retry of the
  same submission (a lost answer, a second server process) waits for the first
  attempt's transaction to end and then finds its answer; it never makes a second
  version.
- **No deadlock**: a batch takes collection locks in (entity, project, name) order and
  run locks after them, by key; a part takes its submission's advisory lock, its
  collection, then its run; edits take one collection.
- **All or nothing**: a refused commit (type conflict, parts in another store) writes
  nothing; any other failure aborts the transaction, so a failed batch leaves no
  project, collection, number, alias, tag, edge or consumed part behind.

Edits of committed versions (aliases, description, delete) live in ``postgres.edits``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from psycopg.types.json import Jsonb

from artisync.errors import ArtisyncError, InvalidInputError, TypeConflictError
from artisync.registry.contract import (
    check_store,
    check_ttl,
    refuse_mixed_stores,
    to_json,
    type_conflict,
    user_aliases,
)
from artisync.registry.model import DEFAULT_ENTITY, CommitResult, NewPart, NewVersion
from artisync.registry.postgres.connection import Conn, nul_refused
from artisync.registry.postgres.queries import NOW, project_id, versions_where
from artisync.registry.rows import version_from_row

__all__ = [
    "add_part",
    "commit_version",
    "commit_versions",
    "ensure_project",
    "ensure_run",
    "lock_collection",
    "move_aliases",
    "record_edge",
    "submission_result",
    "type_conflict",
]

# The first key of the two-key advisory locks on submission ids (the second is the id's
# hash). Two-key locks never collide with the one-key migration lock; two ids with one
# hash merely queue behind each other.
_SUBMISSION_LOCK = 0x61727473  # "arts"


def _lock_submission(conn: Conn, submission_id: str) -> None:
    conn.execute(
        "SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (_SUBMISSION_LOCK, submission_id)
    )


def ensure_project(conn: Conn, entity: str, project: str) -> int:
    """The internal key of ``entity/project``, created if it has never been used."""
    found = project_id(conn, entity, project)
    if found is not None:
        return found
    # A project created by another transaction at the same moment: the insert waits for
    # it, does nothing, and the read after it sees the committed row.
    row = conn.execute(
        f"INSERT INTO projects (entity, name, created_at) VALUES (%s, %s, {NOW})"
        " ON CONFLICT (entity, name) DO NOTHING RETURNING id",
        (entity, project),
    ).fetchone()
    if row is not None:
        return int(row[0])
    found = project_id(conn, entity, project)
    assert found is not None, "a project that conflicted on insert must exist"
    return found


def ensure_run(
    conn: Conn, entity: str, project: str, run_id: str, fields: Mapping[str, Any]
) -> int:
    """Create the run (and its project) or update it; return its internal key.

    ``fields`` maps ``name``, ``job_type``, ``group``, ``config``, ``tags``, ``notes`` and
    ``sweep`` to values; a None value keeps what is stored. A new run is ``running``;
    an existing one keeps its state and summary. Either way ``updated_at`` becomes now.
    One upsert, so two processes creating the same run at once both succeed with one row.
    """
    pid = ensure_project(conn, entity, project)
    config = fields.get("config")
    config_json = None if config is None else to_json(config, what=f"config of run {run_id!r}")
    tags = fields.get("tags")
    row = conn.execute(
        "INSERT INTO runs (project_id, run_id, name, job_type, group_name, config, tags,"
        " notes, sweep_id, created_at, updated_at)"
        f" VALUES (%(pid)s, %(run)s, %(name)s, %(job)s, %(group)s,"
        f" coalesce(%(config)s::json, '{{}}'::json), coalesce(%(tags)s::json, '[]'::json),"
        f" %(notes)s, %(sweep)s, {NOW}, {NOW})"
        " ON CONFLICT (project_id, run_id) DO UPDATE SET"
        " name = coalesce(excluded.name, runs.name),"
        " job_type = coalesce(excluded.job_type, runs.job_type),"
        " group_name = coalesce(excluded.group_name, runs.group_name),"
        " config = coalesce(%(config)s::json, runs.config),"
        " tags = coalesce(%(tags)s::json, runs.tags),"
        " notes = coalesce(excluded.notes, runs.notes),"
        " sweep_id = coalesce(excluded.sweep_id, runs.sweep_id),"
        " updated_at = excluded.updated_at"
        " RETURNING id",
        {
            "pid": pid,
            "run": run_id,
            "name": fields.get("name"),
            "job": fields.get("job_type"),
            "group": fields.get("group"),
            "config": config_json,
            "tags": None if tags is None else json.dumps(list(tags)),
            "notes": fields.get("notes"),
            "sweep": fields.get("sweep"),
        },
    ).fetchone()
    assert row is not None, "INSERT ... ON CONFLICT DO UPDATE RETURNING returns the row"
    return int(row[0])


def submission_result(conn: Conn, submission_id: str) -> CommitResult | None:
    """What committing ``submission_id`` produced (maybe its tombstone), or None."""
    row = conn.execute(
        "SELECT version_id, created FROM submissions WHERE submission_id = %s", (submission_id,)
    ).fetchone()
    if row is None:
        return None
    return CommitResult(versions_where(conn, "v.id = %s", (row[0],))[0], bool(row[1]))


def lock_collection(conn: Conn, collection: int) -> None:
    """Hold the collection's row lock until the transaction ends: the lock every write
    to the collection's versions, aliases and parts takes, so they happen one at a time."""
    conn.execute("SELECT 1 FROM collections WHERE id = %s FOR UPDATE", (collection,))


def _locked_collection(conn: Conn, pid: int, project: str, name: str, type_: str) -> int:
    """The collection ``name`` of the project, created if new, with its row locked."""
    conn.execute(
        f"INSERT INTO collections (project_id, name, type, created_at) VALUES (%s, %s, %s, {NOW})"
        " ON CONFLICT (project_id, name) DO NOTHING",
        (pid, name, type_),
    )
    row = conn.execute(
        "SELECT id, type FROM collections WHERE project_id = %s AND name = %s FOR UPDATE",
        (pid, name),
    ).fetchone()
    assert row is not None, "the collection was just inserted or already existed"
    if row[1] != type_:
        raise type_conflict(project, name, str(row[1]), type_)
    return int(row[0])


def move_aliases(conn: Conn, collection: int, version_id: str, aliases: Sequence[str]) -> None:
    """Point each alias at the version, taking it from whichever version had it."""
    if aliases:
        conn.execute(
            "INSERT INTO aliases (collection_id, alias, version_id)"
            " SELECT %s, unnest(%s::text[]), %s"
            " ON CONFLICT (collection_id, alias) DO UPDATE SET version_id = excluded.version_id",
            (collection, list(aliases), version_id),
        )


def record_edge(conn: Conn, run: int, version_id: str, direction: str) -> None:
    """Record that ``run`` produced or used the version; recording it again is a no-op."""
    conn.execute(
        f"INSERT INTO lineage (run_id, version_id, direction, created_at)"
        f" VALUES (%s, %s, %s, {NOW}) ON CONFLICT (run_id, direction, version_id) DO NOTHING",
        (run, version_id, direction),
    )


def commit_versions(
    conn: Conn, versions: Sequence[NewVersion]
) -> list[CommitResult | ArtisyncError]:
    """Commit a batch of submissions in one statement; each gets its result or the error
    that refused it (a refusal writes nothing and leaves the others be).

    ``artisync_commit_versions`` (``postgres/migrations``) does the database's part. The
    batch goes in ordered by collection, so that collection locks are taken in one
    order by every transaction; a batch that fails for another reason raises.
    """
    outcomes: list[CommitResult | ArtisyncError | None] = [None] * len(versions)
    items: list[tuple[int, dict[str, Any]]] = []
    for i, version in enumerate(versions):
        try:
            items.append((i, _item(version)))
        except ArtisyncError as exc:
            outcomes[i] = exc
    items.sort(key=lambda pair: (pair[1]["entity"], pair[1]["project"], pair[1]["name"]))
    if items:
        rows = conn.execute(
            "SELECT * FROM artisync_commit_versions(%s)", (Jsonb([item for _, item in items]),)
        ).fetchall()
        for row in rows:
            i = items[int(row[0]) - 1][0]
            outcomes[i] = _outcome(versions[i], row)
    assert all(outcome is not None for outcome in outcomes), "every commit has an outcome"
    return [outcome for outcome in outcomes if outcome is not None]


def commit_version(conn: Conn, version: NewVersion) -> CommitResult:
    """Commit one submission; see ``SqliteRegistry.commit_version`` for the rules."""
    (outcome,) = commit_versions(conn, [version])
    if isinstance(outcome, ArtisyncError):
        raise outcome
    return outcome


def _item(version: NewVersion) -> dict[str, Any]:
    """A commit as ``artisync_commit_versions`` takes it, its values checked."""
    name = version.name
    aliases = user_aliases(version.aliases, artifact=name)
    tags = list(version.tags)
    item: dict[str, Any] = {
        "submission_id": version.submission_id,
        "entity": version.entity or DEFAULT_ENTITY,
        "project": version.project,
        "name": name,
        "type": version.type,
        "digest": version.digest,
        "manifest_key": version.manifest_key,
        "size": version.size,
        "file_count": version.file_count,
        "description": version.description,
        # Text, not a JSON value: the json column keeps it as logged.
        "metadata": to_json(version.metadata, what=f"metadata of artifact {name!r}"),
        "run_id": version.run_id,
        "ttl_seconds": check_ttl(version.ttl_seconds, what=f"artifact {name!r}"),
        "store": check_store(version.store, what=f"artifact {name!r}"),
        "distributed_id": version.distributed_id,
        "aliases": aliases,
        "tags": tags,
    }
    # Sent as JSON, where psycopg's own check of each string does not reach.
    texts = [v for v in item.values() if isinstance(v, str)] + aliases + tags
    if any("\x00" in text for text in texts):
        raise nul_refused("committing a version")
    return item


def _outcome(version: NewVersion, row: Sequence[Any]) -> CommitResult | ArtisyncError:
    outcome, detail, created = row[1], row[2], row[3]
    entity = version.entity or DEFAULT_ENTITY
    if outcome == "type_conflict":
        return type_conflict(f"{entity}/{version.project}", version.name, detail, version.type)
    if outcome == "mixed_stores":
        pending = [(str(sid), store) for sid, store in json.loads(detail)]
        try:
            refuse_mixed_stores(
                version.name, str(version.distributed_id), version.store, pending, doing="finish it"
            )
        except TypeConflictError as exc:
            return exc
        raise AssertionError(f"the database refused mixed stores that are not: {pending}")
    # Its aliases carry `latest` already, as they were right after this commit.
    record = version_from_row(row[4:22], aliases=list(row[22]), tags=list(row[23]), latest=False)
    return CommitResult(record, bool(created))


def _pending_part_stores(
    conn: Conn, collection: int, distributed_id: str
) -> list[tuple[str, str | None]]:
    """``(submission id, store)`` of each pending part of ``distributed_id``; the caller
    holds the collection's lock, so no part is added meanwhile."""
    rows = conn.execute(
        "SELECT submission_id, store FROM parts"
        " WHERE collection_id = %s AND distributed_id = %s AND version_id IS NULL ORDER BY id",
        (collection, distributed_id),
    )
    return [(str(sid), store) for sid, store in rows]


def add_part(conn: Conn, part: NewPart) -> None:
    """Record one upserted part; see ``SqliteRegistry.add_part`` for the rules."""
    submission_id, name, distributed_id = part.submission_id, part.name, part.distributed_id
    entity, project = part.entity or DEFAULT_ENTITY, part.project
    _lock_submission(conn, submission_id)
    known = conn.execute(
        "SELECT 1 FROM parts WHERE submission_id = %s", (submission_id,)
    ).fetchone()
    if known is not None:
        return
    if not isinstance(distributed_id, str) or not distributed_id:
        raise InvalidInputError(
            f"a part of artifact {name!r} needs a non-empty distributed_id (the id its "
            f"writers share), got {distributed_id!r}"
        )
    store = check_store(part.store, what=f"a part of artifact {name!r}")
    pid = ensure_project(conn, entity, project)
    # The run before the collection: the order commits lock them in.
    run = None if part.run_id is None else ensure_run(conn, entity, project, part.run_id, {})
    # The collection's lock orders parts against the commit that consumes them: a part
    # added while a finish commits belongs to the next version, never half to this one.
    collection = _locked_collection(conn, pid, f"{entity}/{project}", name, part.type)
    pending = _pending_part_stores(conn, collection, distributed_id)
    refuse_mixed_stores(name, distributed_id, store, pending, doing="add a part")
    conn.execute(
        "INSERT INTO parts (submission_id, collection_id, distributed_id, manifest_key, run_id,"
        f" size, file_count, created_at, store) VALUES (%s, %s, %s, %s, %s, %s, %s, {NOW}, %s)",
        (
            submission_id,
            collection,
            distributed_id,
            part.manifest_key,
            run,
            part.size,
            part.file_count,
            store,
        ),
    )
