"""Writing the PostgreSQL registry: runs, version commits, parts and lineage edges.

The rules are ``SqliteRegistry.commit_version``'s; what differs is how they hold when
many server processes commit at once, where SQLite had one writer at a time:

- **The submission id is the idempotency key.** A commit first takes a transaction-scoped
  advisory lock on its submission id, then looks the id up. A retry of the same
  submission (a lost answer, a second server process) waits for the first attempt's
  transaction to end and then finds its answer; it never makes a second version.
- **Numbers follow commit order, with no gap.** The commit then locks its collection's
  row (``SELECT ... FOR UPDATE``) and, holding it, deduplicates, reads ``max(idx)``,
  inserts the version and moves the aliases. Commits of one collection queue on that row;
  commits of other collections do not wait. Deadlock-free: every writer takes the
  submission lock, then the collection row, then run rows, in that order.
- **All or nothing**: each function runs inside the caller's transaction and raises to
  abort it, so a rejected submission leaves no project, collection, number, alias, tag,
  edge or consumed part behind.

Edits of committed versions (aliases, description, delete) live in ``postgres_edits``.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from artisync.errors import InvalidInputError, TypeConflictError
from artisync.registry.contract import (
    check_store,
    check_ttl,
    refuse_mixed_stores,
    to_json,
    user_aliases,
)
from artisync.registry.model import COMMITTED, DEFAULT_ENTITY, CommitResult, NewPart, NewVersion
from artisync.registry.postgres_connection import Conn
from artisync.registry.postgres_queries import LIVE, NOW, project_id, versions_where

__all__ = [
    "add_part",
    "commit_version",
    "ensure_run",
    "lock_collection",
    "move_aliases",
    "record_edge",
    "submission_result",
]

# The first key of the two-key advisory locks on submission ids (the second is the id's
# hash). Two-key locks never collide with the one-key migration lock; two ids with one
# hash merely queue behind each other.
_SUBMISSION_LOCK = 0x61727473  # "arts"


def _lock_submission(conn: Conn, submission_id: str) -> None:
    conn.execute(
        "SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (_SUBMISSION_LOCK, submission_id)
    )


def _ensure_project(conn: Conn, entity: str, project: str) -> int:
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

    ``fields`` maps ``name``, ``job_type``, ``group`` and ``config`` to values; a None
    value keeps what is stored. A new run is ``running``; an existing one keeps its state
    and summary. Either way ``updated_at`` becomes now. One upsert, so two processes
    creating the same run at once both succeed with one row.
    """
    pid = _ensure_project(conn, entity, project)
    config = fields.get("config")
    config_json = None if config is None else to_json(config, what=f"config of run {run_id!r}")
    row = conn.execute(
        "INSERT INTO runs (project_id, run_id, name, job_type, group_name, config,"
        " created_at, updated_at)"
        f" VALUES (%(pid)s, %(run)s, %(name)s, %(job)s, %(group)s,"
        f" coalesce(%(config)s::json, '{{}}'::json), {NOW}, {NOW})"
        " ON CONFLICT (project_id, run_id) DO UPDATE SET"
        " name = coalesce(excluded.name, runs.name),"
        " job_type = coalesce(excluded.job_type, runs.job_type),"
        " group_name = coalesce(excluded.group_name, runs.group_name),"
        " config = coalesce(%(config)s::json, runs.config),"
        " updated_at = excluded.updated_at"
        " RETURNING id",
        {
            "pid": pid,
            "run": run_id,
            "name": fields.get("name"),
            "job": fields.get("job_type"),
            "group": fields.get("group"),
            "config": config_json,
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
        raise TypeConflictError(
            f"artifact {name!r} already exists in project {project!r} with type {row[1]!r}, "
            f"so it cannot be logged with type {type_!r}; an artifact name has one type per "
            "project: use the same type or another name"
        )
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


def commit_version(conn: Conn, version: NewVersion) -> CommitResult:
    """Commit one submission; see ``SqliteRegistry.commit_version`` for the rules."""
    submission_id, name, digest = version.submission_id, version.name, version.digest
    entity, project = version.entity or DEFAULT_ENTITY, version.project
    _lock_submission(conn, submission_id)
    earlier = submission_result(conn, submission_id)
    if earlier is not None:
        return earlier
    metadata_json = to_json(version.metadata, what=f"metadata of artifact {name!r}")
    ttl = check_ttl(version.ttl_seconds, what=f"artifact {name!r}")
    store = check_store(version.store, what=f"artifact {name!r}")
    kept = user_aliases(version.aliases, artifact=name)
    pid = _ensure_project(conn, entity, project)
    collection = _locked_collection(conn, pid, f"{entity}/{project}", name, version.type)
    if version.distributed_id is not None:
        pending = _pending_part_stores(conn, collection, version.distributed_id)
        refuse_mixed_stores(name, version.distributed_id, store, pending, doing="finish it")
    run = None if version.run_id is None else ensure_run(conn, entity, project, version.run_id, {})
    # Deleted versions are not in versions_by_digest: content logged again after a
    # delete is a new version. Nor is a version in another store: returning it would
    # send readers to a store this writer never wrote (docs/decisions.md, "A version
    # records its store"); NULL matches NULL (neither recorded a store).
    row = conn.execute(
        f"SELECT v.id FROM versions AS v WHERE v.collection_id = %s AND v.digest = %s"
        f" AND {LIVE} AND v.store IS NOT DISTINCT FROM %s::text ORDER BY v.idx LIMIT 1",
        (collection, digest, store),
    ).fetchone()
    created = row is None
    if row is not None:
        version_id = str(row[0])
    else:
        # Under the collection's lock, and at READ COMMITTED, this sees every version
        # committed before the lock was granted: the number is the next one, and it is
        # taken here, so a submission rejected earlier never used one up.
        version_id = uuid.uuid4().hex
        conn.execute(
            "INSERT INTO versions (id, collection_id, idx, digest, manifest_key, size,"
            " file_count, description, metadata, created_at, run_id, ttl_seconds, state,"
            " expires_at, store) VALUES (%(id)s, %(collection)s,"
            " (SELECT coalesce(max(idx) + 1, 0) FROM versions"
            " WHERE collection_id = %(collection)s),"
            " %(digest)s, %(key)s, %(size)s, %(count)s, %(description)s, %(metadata)s::json,"
            f" {NOW}, %(run)s, %(ttl)s, '{COMMITTED}', {NOW} + %(ttl)s::float8, %(store)s)",
            {
                "id": version_id,
                "collection": collection,
                "digest": digest,
                "key": version.manifest_key,
                "size": version.size,
                "count": version.file_count,
                "description": version.description,
                "metadata": metadata_json,
                "run": run,
                "ttl": ttl,
                "store": store,
            },
        )
    tags = list(dict.fromkeys(version.tags))
    if tags:
        conn.execute(
            "INSERT INTO tags (version_id, tag) SELECT %s, unnest(%s::text[])"
            " ON CONFLICT DO NOTHING",
            (version_id, tags),
        )
    move_aliases(conn, collection, version_id, kept)
    writers = (
        []
        if version.distributed_id is None
        else _consume_parts(conn, collection, version.distributed_id, version_id)
    )
    # Part writers first: they wrote before the run that finished the version.
    for writer in [*writers, *([] if run is None else [run])]:
        record_edge(conn, writer, version_id, "produced")
    conn.execute(
        "INSERT INTO submissions (submission_id, version_id, created, committed_at)"
        f" VALUES (%s, %s, %s, {NOW})",
        (submission_id, version_id, created),
    )
    return CommitResult(versions_where(conn, "v.id = %s", (version_id,))[0], created)


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


def _consume_parts(conn: Conn, collection: int, distributed_id: str, version_id: str) -> list[int]:
    """Mark the pending parts of ``distributed_id`` as merged into the version; return
    the internal keys of the runs that added them, in the order they were added."""
    rows = conn.execute(
        "UPDATE parts SET version_id = %s"
        " WHERE collection_id = %s AND distributed_id = %s AND version_id IS NULL"
        " RETURNING id, run_id",
        (version_id, collection, distributed_id),
    ).fetchall()
    return [int(run) for _, run in sorted(rows) if run is not None]


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
    pid = _ensure_project(conn, entity, project)
    # The collection's lock orders parts against the commit that consumes them: a part
    # added while a finish commits belongs to the next version, never half to this one.
    collection = _locked_collection(conn, pid, f"{entity}/{project}", name, part.type)
    pending = _pending_part_stores(conn, collection, distributed_id)
    refuse_mixed_stores(name, distributed_id, store, pending, doing="add a part")
    run = None if part.run_id is None else ensure_run(conn, entity, project, part.run_id, {})
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
