"""Reading the SQLite registry: lookups, and turning rows into the model's records.

Every function takes an open connection and runs inside the caller's transaction,
so a multi-statement read (a version, then its aliases and tags) sees one snapshot.
Each statement is an equality on the leading columns of an index from
``sqlite_schema``; ``tests/test_registry.py`` checks the query plans.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from typing import Any

from artisync.errors import NotFoundError, RegistryError
from artisync.registry.contract import describe_collections, describe_versions, parse_version_label
from artisync.registry.model import COMMITTED, LATEST, Collection, Run, Version

__all__ = [
    "find_collection",
    "find_run",
    "latest_version_id",
    "list_collections",
    "list_versions",
    "load_run",
    "load_versions",
    "project_id",
    "resolve_version",
    "runs_where",
    "versions_where",
]

_VERSION_COLUMNS = """
    SELECT v.id, p.name, p.entity, c.name, c.type, v.idx, v.digest, v.manifest_key,
           v.size, v.file_count, v.description, v.metadata, v.created_at, r.run_id,
           v.ttl_seconds, v.state, v.collection_id
    FROM versions AS v
    JOIN collections AS c ON c.id = v.collection_id
    JOIN projects AS p ON p.id = c.project_id
    LEFT JOIN runs AS r ON r.id = v.run_id
"""

_RUN_COLUMNS = """
    SELECT r.run_id, p.name, p.entity, r.name, r.job_type, r.group_name, r.config,
           r.created_at
    FROM runs AS r
    JOIN projects AS p ON p.id = r.project_id
"""

# Comfortably under SQLite's bound-parameter limit (999 on old builds).
_CHUNK = 500


def _json_object(text: str) -> dict[str, Any]:
    value = json.loads(text)
    if not isinstance(value, dict):
        raise RegistryError(
            f"registry holds a non-object JSON value where a mapping belongs: {text[:80]}"
        )
    return value


def project_id(conn: sqlite3.Connection, entity: str, project: str) -> int | None:
    """The internal key of ``entity/project``, or None when it has never been used."""
    row = conn.execute(
        "SELECT id FROM projects WHERE entity = ? AND name = ?", (entity, project)
    ).fetchone()
    return None if row is None else int(row[0])


def find_collection(
    conn: sqlite3.Connection, entity: str, project: str, name: str
) -> tuple[int, str] | None:
    """``(collection key, type)`` of the artifact ``name`` in the project, or None."""
    row = conn.execute(
        "SELECT c.id, c.type FROM collections AS c JOIN projects AS p ON p.id = c.project_id"
        " WHERE p.entity = ? AND p.name = ? AND c.name = ?",
        (entity, project, name),
    ).fetchone()
    return None if row is None else (int(row[0]), str(row[1]))


def _collection_or_raise(conn: sqlite3.Connection, entity: str, project: str, name: str) -> int:
    found = find_collection(conn, entity, project, name)
    if found is not None:
        return found[0]
    listed = conn.execute(
        "SELECT c.name, c.type FROM collections AS c JOIN projects AS p ON p.id = c.project_id"
        " WHERE p.entity = ? AND p.name = ? ORDER BY c.name",
        (entity, project),
    ).fetchall()
    raise NotFoundError(describe_collections(f"{entity}/{project}", name, listed))


def latest_version_id(conn: sqlite3.Connection, collection: int) -> str | None:
    """The id of the collection's highest committed version (what ``latest`` names)."""
    # Walks the (collection_id, idx) index from the top: one step unless the highest
    # versions are in another state, so this stays cheap at any collection size.
    row = conn.execute(
        "SELECT id FROM versions WHERE collection_id = ? AND state = ? ORDER BY idx DESC LIMIT 1",
        (collection, COMMITTED),
    ).fetchone()
    return None if row is None else str(row[0])


def _per_version(
    conn: sqlite3.Connection, sql: str, version_ids: Sequence[str]
) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for start in range(0, len(version_ids), _CHUNK):
        chunk = version_ids[start : start + _CHUNK]
        marks = ",".join("?" * len(chunk))
        for version_id, value in conn.execute(sql.format(marks=marks), chunk):
            found.setdefault(str(version_id), []).append(str(value))
    return found


def load_versions(conn: sqlite3.Connection, rows: Iterable[Sequence[Any]]) -> list[Version]:
    """Turn rows selected with the version columns into :class:`Version` records."""
    rows = list(rows)
    ids = [str(row[0]) for row in rows]
    aliases = _per_version(
        conn, "SELECT version_id, alias FROM aliases WHERE version_id IN ({marks})", ids
    )
    tags = _per_version(conn, "SELECT version_id, tag FROM tags WHERE version_id IN ({marks})", ids)
    latest = {latest_version_id(conn, collection) for collection in {int(row[16]) for row in rows}}
    versions = []
    for row in rows:
        (vid, project, entity, name, type_, idx, digest, manifest_key, size, file_count) = row[:10]
        (description, metadata, created_at, run_id, ttl_seconds, state) = row[10:16]
        names = aliases.get(vid, []) + ([LATEST] if vid in latest else [])
        versions.append(
            Version(
                id=vid,
                project=project,
                entity=entity,
                name=name,
                type=type_,
                index=int(idx),
                digest=digest,
                manifest_key=manifest_key,
                size=int(size),
                file_count=int(file_count),
                description=description,
                metadata=_json_object(metadata),
                aliases=sorted(names),
                tags=sorted(tags.get(vid, [])),
                created_at=float(created_at),
                run_id=run_id,
                ttl_seconds=ttl_seconds,
                state=state,
            )
        )
    return versions


def versions_where(
    conn: sqlite3.Connection, where: str, params: Sequence[Any], *, join: str = ""
) -> list[Version]:
    """The versions matching ``where`` (over ``v``, ``c``, ``p``, ``r`` and ``join``'s tables)."""
    rows = conn.execute(f"{_VERSION_COLUMNS} {join} WHERE {where}", params)
    return load_versions(conn, rows)


def resolve_version(
    conn: sqlite3.Connection, entity: str, project: str, name: str, ref: str
) -> Version:
    """The version ``ref`` (``vN``, ``latest`` or an alias) of ``entity/project/name``.

    Raises :class:`NotFoundError` listing the collection's versions and aliases, or
    the project's artifacts when ``name`` itself does not exist.
    """
    collection = _collection_or_raise(conn, entity, project, name)
    index = parse_version_label(ref)
    if index is not None:
        where, params = "v.collection_id = ? AND v.idx = ? AND v.state = ?", (collection, index)
        found = versions_where(conn, where, (*params, COMMITTED))
    else:
        target = (
            latest_version_id(conn, collection)
            if ref == LATEST
            else _scalar(
                conn,
                "SELECT version_id FROM aliases WHERE collection_id = ? AND alias = ?",
                (collection, ref),
            )
        )
        found = [] if target is None else versions_where(conn, "v.id = ?", (target,))
    if found:
        return found[0]
    indexes = [
        int(row[0])
        for row in conn.execute(
            "SELECT idx FROM versions WHERE collection_id = ? AND state = ? ORDER BY idx",
            (collection, COMMITTED),
        )
    ]
    aliases = [
        str(row[0])
        for row in conn.execute("SELECT alias FROM aliases WHERE collection_id = ?", (collection,))
    ]
    raise NotFoundError(describe_versions(f"{entity}/{project}/{name}", ref, indexes, aliases))


def _scalar(conn: sqlite3.Connection, sql: str, params: Sequence[Any]) -> str | None:
    row = conn.execute(sql, params).fetchone()
    return None if row is None else str(row[0])


def list_versions(conn: sqlite3.Connection, entity: str, project: str, name: str) -> list[Version]:
    """The committed versions of a collection, lowest index first."""
    collection = _collection_or_raise(conn, entity, project, name)
    where = "v.collection_id = ? AND v.state = ? ORDER BY v.idx"
    return versions_where(conn, where, (collection, COMMITTED))


def list_collections(
    conn: sqlite3.Connection, entity: str, project: str, type_: str | None
) -> list[Collection]:
    """The project's artifact collections (of one type, if given), by name."""
    sql = (
        "SELECT c.name, c.type, c.created_at,"
        " (SELECT COUNT(*) FROM versions AS v WHERE v.collection_id = c.id AND v.state = ?)"
        " FROM collections AS c JOIN projects AS p ON p.id = c.project_id"
        " WHERE p.entity = ? AND p.name = ?"
    )
    params: list[Any] = [COMMITTED, entity, project]
    if type_ is not None:
        sql += " AND c.type = ?"
        params.append(type_)
    return [
        Collection(project, entity, name, ctype, float(created), int(count))
        for name, ctype, created, count in conn.execute(sql + " ORDER BY c.name", params)
    ]


def load_run(row: Sequence[Any]) -> Run:
    """Turn a row selected with the run columns into a :class:`Run`."""
    run_id, project, entity, name, job_type, group, config, created_at = row
    return Run(
        id=run_id,
        project=project,
        entity=entity,
        name=name,
        job_type=job_type,
        group=group,
        config=_json_object(config),
        created_at=float(created_at),
    )


def runs_where(
    conn: sqlite3.Connection, where: str, params: Sequence[Any], *, join: str = ""
) -> list[Run]:
    """The runs matching ``where`` (over ``r``, ``p`` and ``join``'s tables)."""
    rows = conn.execute(f"{_RUN_COLUMNS} {join} WHERE {where}", params)
    return [load_run(row) for row in rows]


def find_run(conn: sqlite3.Connection, run_id: str, project: str | None, entity: str) -> int:
    """The internal key of a run, by its id, within ``project`` when one is given.

    Run ids are random and unique in practice, so lineage calls may name a run by
    its id alone; when two projects reuse one id the caller must say which project.
    """
    if project is not None:
        row = conn.execute(
            "SELECT r.id FROM runs AS r JOIN projects AS p ON p.id = r.project_id"
            " WHERE p.entity = ? AND p.name = ? AND r.run_id = ?",
            (entity, project, run_id),
        ).fetchone()
        if row is None:
            raise NotFoundError(f"run {run_id!r} not found in project '{entity}/{project}'")
        return int(row[0])
    rows = conn.execute(
        "SELECT r.id, p.entity || '/' || p.name FROM runs AS r"
        " JOIN projects AS p ON p.id = r.project_id WHERE r.run_id = ? LIMIT 5",
        (run_id,),
    ).fetchall()
    if not rows:
        raise NotFoundError(f"run {run_id!r} not found in any project of this registry")
    if len(rows) > 1:
        projects = ", ".join(str(row[1]) for row in rows)
        raise RegistryError(
            f"run id {run_id!r} exists in several projects ({projects}); pass project= to say which"
        )
    return int(rows[0][0])
