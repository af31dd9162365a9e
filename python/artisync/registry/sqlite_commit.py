"""Writing the SQLite registry: runs, version commits, aliases and lineage edges.

Every function runs inside the caller's ``BEGIN IMMEDIATE`` transaction and raises
to abort it, so a commit is all-or-nothing: a rejected submission leaves no
collection, version number, alias, tag or edge behind.
"""

from __future__ import annotations

import json
import sqlite3
import time
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from artisync.errors import InvalidInputError, NotFoundError, TypeConflictError
from artisync.registry.contract import user_aliases
from artisync.registry.model import COMMITTED, LATEST, CommitResult
from artisync.registry.sqlite_queries import latest_version_id, project_id, versions_where

__all__ = [
    "commit_version",
    "ensure_run",
    "record_edge",
    "set_aliases",
    "submission_result",
    "to_json",
]


def to_json(value: Mapping[str, Any], *, what: str) -> str:
    """``value`` as JSON text, or :class:`InvalidInputError` naming ``what`` it was."""
    if not isinstance(value, Mapping):
        raise InvalidInputError(f"{what} must be a mapping, got {type(value).__name__}")
    try:
        # allow_nan=False: NaN is not JSON, and the PostgreSQL backend's jsonb would
        # refuse it later; better to refuse it the same way everywhere.
        return json.dumps(dict(value), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(
            f"{what} must hold only JSON values (str, int, float, bool, None, lists, dicts "
            f"with str keys; no NaN or infinity): {exc}"
        ) from exc


def _ensure_project(conn: sqlite3.Connection, entity: str, project: str) -> int:
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

    ``fields`` maps ``name``, ``job_type``, ``group`` and ``config`` to values; a
    None value keeps what is stored, so resuming a run with fewer arguments than
    it started with loses nothing.
    """
    pid = _ensure_project(conn, entity, project)
    config = fields.get("config")
    config_json = None if config is None else to_json(config, what=f"config of run {run_id!r}")
    row = conn.execute(
        "SELECT id FROM runs WHERE project_id = ? AND run_id = ?", (pid, run_id)
    ).fetchone()
    if row is None:
        cursor = conn.execute(
            "INSERT INTO runs (project_id, run_id, name, job_type, group_name, config, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                pid,
                run_id,
                fields.get("name"),
                fields.get("job_type"),
                fields.get("group"),
                config_json or "{}",
                time.time(),
            ),
        )
        return int(cursor.lastrowid or 0)
    conn.execute(
        "UPDATE runs SET name = coalesce(?, name), job_type = coalesce(?, job_type),"
        " group_name = coalesce(?, group_name), config = coalesce(?, config) WHERE id = ?",
        (fields.get("name"), fields.get("job_type"), fields.get("group"), config_json, row[0]),
    )
    return int(row[0])


def submission_result(conn: sqlite3.Connection, submission_id: str) -> CommitResult | None:
    """What committing ``submission_id`` produced, or None if it never committed."""
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
        raise TypeConflictError(
            f"artifact {name!r} already exists in project {project!r} with type {row[1]!r}, "
            f"so it cannot be logged with type {type_!r}; an artifact name has one type per "
            "project: use the same type or another name"
        )
    return int(row[0])


def _move_aliases(
    conn: sqlite3.Connection, collection: int, version_id: str, aliases: Sequence[str]
) -> None:
    # The (collection_id, alias) primary key makes each alias name one version; the
    # upsert moves it from wherever it was within the same transaction.
    conn.executemany(
        "INSERT INTO aliases (collection_id, alias, version_id) VALUES (?, ?, ?)"
        " ON CONFLICT (collection_id, alias) DO UPDATE SET version_id = excluded.version_id",
        [(collection, alias, version_id) for alias in aliases],
    )


def record_edge(conn: sqlite3.Connection, run: int, version_id: str, direction: str) -> None:
    """Record that ``run`` produced or used the version; recording it again is a no-op."""
    conn.execute(
        "INSERT INTO lineage (run_id, version_id, direction, created_at) VALUES (?, ?, ?, ?)"
        " ON CONFLICT (run_id, direction, version_id) DO NOTHING",
        (run, version_id, direction, time.time()),
    )


def commit_version(
    conn: sqlite3.Connection,
    *,
    submission_id: str,
    project: str,
    entity: str,
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
    """Commit one submission; see ``SqliteRegistry.commit_version`` for the rules."""
    earlier = submission_result(conn, submission_id)
    if earlier is not None:
        return earlier
    metadata_json = to_json(metadata, what=f"metadata of artifact {name!r}")
    kept = user_aliases(aliases, artifact=name)
    pid = _ensure_project(conn, entity, project)
    collection = _collection(conn, pid, f"{entity}/{project}", name, type)
    run = None if run_id is None else ensure_run(conn, entity, project, run_id, {})
    row = conn.execute(
        "SELECT id FROM versions WHERE collection_id = ? AND digest = ? AND state = ?"
        " ORDER BY idx LIMIT 1",
        (collection, digest, COMMITTED),
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
        conn.execute(
            "INSERT INTO versions (id, collection_id, idx, digest, manifest_key, size,"
            " file_count, description, metadata, created_at, run_id, ttl_seconds, state)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                version_id,
                collection,
                0 if top is None else int(top[0]) + 1,
                digest,
                manifest_key,
                size,
                file_count,
                description,
                metadata_json,
                time.time(),
                run,
                ttl_seconds,
                COMMITTED,
            ),
        )
    conn.executemany(
        "INSERT INTO tags (version_id, tag) VALUES (?, ?) ON CONFLICT DO NOTHING",
        [(version_id, tag) for tag in dict.fromkeys(tags)],
    )
    _move_aliases(conn, collection, version_id, kept)
    if run is not None:
        record_edge(conn, run, version_id, "produced")
    conn.execute(
        "INSERT INTO submissions (submission_id, version_id, created, committed_at)"
        " VALUES (?, ?, ?, ?)",
        (submission_id, version_id, int(created), time.time()),
    )
    return CommitResult(versions_where(conn, "v.id = ?", (version_id,))[0], created)


def set_aliases(conn: sqlite3.Connection, version_id: str, aliases: Sequence[str]) -> None:
    """Make ``aliases`` the version's user aliases: add or move these, drop the others.

    ``latest`` is not a user alias: listing it is accepted for the highest version
    (a no-op) and refused for any other, since the registry would have to move it
    back at once; leaving it out never removes it.
    """
    row = conn.execute(
        "SELECT v.collection_id, v.idx, c.name FROM versions AS v"
        " JOIN collections AS c ON c.id = v.collection_id WHERE v.id = ? AND v.state = ?",
        (version_id, COMMITTED),
    ).fetchone()
    if row is None:
        raise NotFoundError(f"no committed version with id {version_id!r}")
    collection, index, name = int(row[0]), int(row[1]), str(row[2])
    if LATEST in aliases and latest_version_id(conn, collection) != version_id:
        raise InvalidInputError(
            f"cannot put alias 'latest' on {name}:v{index}: 'latest' always names the "
            "highest version and moves by itself when a new version is committed; "
            "use another alias (for example 'best' or 'production')"
        )
    kept = user_aliases(aliases, artifact=name)
    current = [
        str(r[0])
        for r in conn.execute("SELECT alias FROM aliases WHERE version_id = ?", (version_id,))
    ]
    conn.executemany(
        "DELETE FROM aliases WHERE collection_id = ? AND alias = ?",
        [(collection, alias) for alias in current if alias not in kept],
    )
    _move_aliases(conn, collection, version_id, kept)
