"""Writing the SQLite registry: runs, version commits, parts and lineage edges.

Every function runs inside the caller's ``BEGIN IMMEDIATE`` transaction and raises
to abort it, so a commit is all-or-nothing: a rejected submission leaves no
collection, version number, alias, tag, edge or consumed part behind. Edits of
committed versions (aliases, description, delete) live in ``sqlite.edits``.
"""

from __future__ import annotations

import json
import sqlite3
import time
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from artisync.errors import InvalidInputError
from artisync.registry.contract import (
    check_store,
    check_ttl,
    refuse_mixed_stores,
    to_json,
    type_conflict,
    user_aliases,
)
from artisync.registry.model import (
    COMMITTED,
    DEFAULT_ENTITY,
    LATEST,
    CommitResult,
    NewPart,
    NewVersion,
)
from artisync.registry.sqlite.queries import LIVE, highest_version_id, project_id, versions_where

__all__ = [
    "add_part",
    "commit_version",
    "ensure_project",
    "ensure_run",
    "move_aliases",
    "move_latest",
    "record_edge",
    "submission_result",
]


def ensure_project(conn: sqlite3.Connection, entity: str, project: str) -> int:
    """The internal key of ``entity/project``, created if it has never been used."""
    found = project_id(conn, entity, project)
    if found is not None:
        return found
    cursor = conn.execute(
        "INSERT INTO projects (entity, name, created_at) VALUES (?, ?, ?)",
        (entity, project, time.time()),
    )
    return int(cursor.lastrowid or 0)


def ensure_run(
    conn: sqlite3.Connection,
    entity: str,
    project: str,
    run_id: str,
    fields: Mapping[str, Any],
) -> int:
    """Create the run (and its project) or update it; return its internal key.

    ``fields`` maps ``name``, ``job_type``, ``group``, ``config``, ``tags``, ``notes``
    and ``sweep`` to values (``tags``, ``notes`` and ``sweep`` checked by
    ``run_rules.check_run_fields``); a None value keeps what is stored, so resuming a run
    with fewer arguments than it started with loses nothing. A new run is ``running``,
    with no tags, notes or sweep unless given; an existing one keeps its state and
    summary. Either way ``updated_at`` becomes now.
    """
    pid = ensure_project(conn, entity, project)
    config = fields.get("config")
    config_json = None if config is None else to_json(config, what=f"config of run {run_id!r}")
    tags = fields.get("tags")
    tags_json = None if tags is None else json.dumps(list(tags))
    row = conn.execute(
        "SELECT id FROM runs WHERE project_id = ? AND run_id = ?", (pid, run_id)
    ).fetchone()
    now = time.time()
    values = (
        fields.get("name"),
        fields.get("job_type"),
        fields.get("group"),
        config_json,
        tags_json,
        fields.get("notes"),
        fields.get("sweep"),
    )
    if row is None:
        cursor = conn.execute(
            "INSERT INTO runs (project_id, run_id, name, job_type, group_name, config, tags,"
            " notes, sweep_id, created_at, summary, state, updated_at)"
            " VALUES (?, ?, ?, ?, ?, coalesce(?, '{}'), coalesce(?, '[]'), ?, ?, ?, '{}',"
            " 'running', ?)",
            (pid, run_id, *values, now, now),
        )
        return int(cursor.lastrowid or 0)
    conn.execute(
        "UPDATE runs SET name = coalesce(?, name), job_type = coalesce(?, job_type),"
        " group_name = coalesce(?, group_name), config = coalesce(?, config),"
        " tags = coalesce(?, tags), notes = coalesce(?, notes),"
        " sweep_id = coalesce(?, sweep_id), updated_at = ? WHERE id = ?",
        (*values, now, row[0]),
    )
    return int(row[0])


def submission_result(conn: sqlite3.Connection, submission_id: str) -> CommitResult | None:
    """What committing ``submission_id`` produced, or None if it never committed.

    The version is returned even if it was deleted since (its tombstone, with state
    ``DELETED``), so that a submission is answered the same way however often it is
    asked, and a deleted version is never committed again from the same submission.
    """
    row = conn.execute(
        "SELECT version_id, created FROM submissions WHERE submission_id = ?", (submission_id,)
    ).fetchone()
    if row is None:
        return None
    return CommitResult(versions_where(conn, "v.id = ?", (row[0],))[0], bool(row[1]))


def _collection(conn: sqlite3.Connection, pid: int, project: str, name: str, type_: str) -> int:
    row = conn.execute(
        "SELECT id, type FROM collections WHERE project_id = ? AND name = ?", (pid, name)
    ).fetchone()
    if row is None:
        cursor = conn.execute(
            "INSERT INTO collections (project_id, name, type, created_at) VALUES (?, ?, ?, ?)",
            (pid, name, type_, time.time()),
        )
        return int(cursor.lastrowid or 0)
    if row[1] != type_:
        raise type_conflict(project, name, str(row[1]), type_)
    return int(row[0])


def move_aliases(
    conn: sqlite3.Connection, collection: int, version_id: str, aliases: Sequence[str]
) -> None:
    """Point each alias at the version, taking it from whichever version had it."""
    # The (collection_id, alias) primary key makes each alias name one version; the
    # upsert moves it from wherever it was within the same transaction.
    conn.executemany(
        "INSERT INTO aliases (collection_id, alias, version_id) VALUES (?, ?, ?)"
        " ON CONFLICT (collection_id, alias) DO UPDATE SET version_id = excluded.version_id",
        [(collection, alias, version_id) for alias in aliases],
    )


def move_latest(conn: sqlite3.Connection, collection: int, version_id: str) -> None:
    """Make ``latest`` name the version just logged, as W&B does when content logged
    again is an older version's: a ``latest`` row when it is not the highest version,
    none when it is (the highest is what ``latest`` names without one)."""
    if highest_version_id(conn, collection) == version_id:
        conn.execute(
            "DELETE FROM aliases WHERE collection_id = ? AND alias = ?", (collection, LATEST)
        )
    else:
        move_aliases(conn, collection, version_id, [LATEST])


def record_edge(conn: sqlite3.Connection, run: int, version_id: str, direction: str) -> None:
    """Record that ``run`` produced or used the version; recording it again is a no-op."""
    conn.execute(
        "INSERT INTO lineage (run_id, version_id, direction, created_at) VALUES (?, ?, ?, ?)"
        " ON CONFLICT (run_id, direction, version_id) DO NOTHING",
        (run, version_id, direction, time.time()),
    )


def commit_version(conn: sqlite3.Connection, version: NewVersion) -> CommitResult:
    """Commit one submission; see ``SqliteRegistry.commit_version`` for the rules."""
    submission_id, name, digest = version.submission_id, version.name, version.digest
    entity, project = version.entity or DEFAULT_ENTITY, version.project
    earlier = submission_result(conn, submission_id)
    if earlier is not None:
        return earlier
    metadata_json = to_json(version.metadata, what=f"metadata of artifact {name!r}")
    ttl = check_ttl(version.ttl_seconds, what=f"artifact {name!r}")
    store = check_store(version.store, what=f"artifact {name!r}")
    kept = user_aliases(version.aliases, artifact=name)
    pid = ensure_project(conn, entity, project)
    collection = _collection(conn, pid, f"{entity}/{project}", name, version.type)
    if version.distributed_id is not None:
        pending = _pending_part_stores(conn, collection, version.distributed_id)
        refuse_mixed_stores(name, version.distributed_id, store, pending, doing="finish it")
    run = None if version.run_id is None else ensure_run(conn, entity, project, version.run_id, {})
    # Deleted versions are not in versions_by_digest: content logged again after a
    # delete is a new version. Nor is a version in another store: returning it would
    # send readers to a store this writer never wrote (docs/decisions.md, "A version
    # records its store"); `IS` matches NULL to NULL (neither recorded a store).
    row = conn.execute(
        f"SELECT v.id FROM versions AS v WHERE v.collection_id = ? AND v.digest = ? AND {LIVE}"
        " AND v.store IS ? ORDER BY v.idx LIMIT 1",
        (collection, digest, store),
    ).fetchone()
    created = row is None
    if row is not None:
        version_id = str(row[0])
    else:
        # Numbers are taken here, inside the write transaction, never earlier: a
        # submission rejected before this point has not used one up. Deleted versions
        # keep theirs, so a number always means the same content.
        top = conn.execute(
            "SELECT idx FROM versions WHERE collection_id = ? ORDER BY idx DESC LIMIT 1",
            (collection,),
        ).fetchone()
        version_id = uuid.uuid4().hex
        now = time.time()
        conn.execute(
            "INSERT INTO versions (id, collection_id, idx, digest, manifest_key, size,"
            " file_count, description, metadata, created_at, run_id, ttl_seconds, state,"
            " expires_at, store) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                version_id,
                collection,
                0 if top is None else int(top[0]) + 1,
                digest,
                version.manifest_key,
                version.size,
                version.file_count,
                version.description,
                metadata_json,
                now,
                run,
                ttl,
                COMMITTED,
                None if ttl is None else now + ttl,
                store,
            ),
        )
    conn.executemany(
        "INSERT INTO tags (version_id, tag) VALUES (?, ?) ON CONFLICT DO NOTHING",
        [(version_id, tag) for tag in dict.fromkeys(version.tags)],
    )
    move_aliases(conn, collection, version_id, kept)
    move_latest(conn, collection, version_id)
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
        " VALUES (?, ?, ?, ?)",
        (submission_id, version_id, int(created), time.time()),
    )
    return CommitResult(versions_where(conn, "v.id = ?", (version_id,))[0], created)


def _pending_part_stores(
    conn: sqlite3.Connection, collection: int, distributed_id: str
) -> list[tuple[str, str | None]]:
    """``(submission id, store)`` of each pending part of ``distributed_id``."""
    rows = conn.execute(
        "SELECT submission_id, store FROM parts"
        " WHERE collection_id = ? AND distributed_id = ? AND version_id IS NULL ORDER BY id",
        (collection, distributed_id),
    )
    return [(str(sid), store) for sid, store in rows]


def _consume_parts(
    conn: sqlite3.Connection, collection: int, distributed_id: str, version_id: str
) -> list[int]:
    """Mark the pending parts of ``distributed_id`` as merged into the version; return
    the internal keys of the runs that added them, in the order they were added."""
    rows = conn.execute(
        "SELECT id, run_id FROM parts"
        " WHERE collection_id = ? AND distributed_id = ? AND version_id IS NULL ORDER BY id",
        (collection, distributed_id),
    ).fetchall()
    conn.executemany(
        "UPDATE parts SET version_id = ? WHERE id = ?", [(version_id, row[0]) for row in rows]
    )
    return [int(row[1]) for row in rows if row[1] is not None]


def add_part(conn: sqlite3.Connection, part: NewPart) -> None:
    """Record one upserted part; see ``SqliteRegistry.add_part`` for the rules."""
    submission_id, name, distributed_id = part.submission_id, part.name, part.distributed_id
    entity, project = part.entity or DEFAULT_ENTITY, part.project
    known = conn.execute("SELECT 1 FROM parts WHERE submission_id = ?", (submission_id,)).fetchone()
    if known is not None:
        return
    if not isinstance(distributed_id, str) or not distributed_id:
        raise InvalidInputError(
            f"a part of artifact {name!r} needs a non-empty distributed_id (the id its "
            f"writers share), got {distributed_id!r}"
        )
    store = check_store(part.store, what=f"a part of artifact {name!r}")
    pid = ensure_project(conn, entity, project)
    collection = _collection(conn, pid, f"{entity}/{project}", name, part.type)
    pending = _pending_part_stores(conn, collection, distributed_id)
    refuse_mixed_stores(name, distributed_id, store, pending, doing="add a part")
    run = None if part.run_id is None else ensure_run(conn, entity, project, part.run_id, {})
    conn.execute(
        "INSERT INTO parts (submission_id, collection_id, distributed_id, manifest_key, run_id,"
        " size, file_count, created_at, store) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            submission_id,
            collection,
            distributed_id,
            part.manifest_key,
            run,
            part.size,
            part.file_count,
            time.time(),
            store,
        ),
    )
