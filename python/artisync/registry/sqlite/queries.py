"""Reading the SQLite registry: lookups, and turning rows into the model's records.

Every function takes an open connection and runs inside the caller's transaction,
so a multi-statement read (a version, then its aliases and tags) sees one snapshot.
Each statement is an equality on the leading columns of an index from
``sqlite.schema``; ``tests/test_registry.py`` checks the query plans.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

from artisync.errors import NotFoundError, RegistryError
from artisync.registry.contract import (
    describe_collections,
    describe_deleted,
    describe_versions,
    parse_version_label,
    when_deleted,
)
from artisync.registry.model import COMMITTED, LATEST, Collection, Part, Run, Version
from artisync.registry.rows import (
    COLLECTION,
    RUN_COLUMNS,
    VERSION_COLUMNS,
    run_from_row,
    version_from_row,
)

__all__ = [
    "LIVE",
    "VersionKey",
    "expired_versions",
    "find_collection",
    "find_run",
    "highest_version_id",
    "latest_version_id",
    "list_collections",
    "list_parts",
    "list_versions",
    "live_manifest_keys",
    "live_version",
    "live_version_key",
    "load_versions",
    "project_id",
    "resolve_version",
    "run_record",
    "runs_where",
    "versions_where",
]

# Comfortably under SQLite's bound-parameter limit (999 on old builds).
_CHUNK = 500

LIVE = f"v.state = '{COMMITTED}'"
"""The condition for a live (not deleted) version, spelled as the partial indexes of
``sqlite.schema`` spell it, so the planner can use them (a bound parameter would not
match). Every read of versions by collection or digest includes it."""


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
    """The id of the version ``latest`` names: the one content logged again moved it to
    (its ``latest`` row), else the collection's highest committed version."""
    moved = conn.execute(
        "SELECT version_id FROM aliases WHERE collection_id = ? AND alias = ?",
        (collection, LATEST),
    ).fetchone()
    if moved is not None:
        return str(moved[0])
    return highest_version_id(conn, collection)


def highest_version_id(conn: sqlite3.Connection, collection: int) -> str | None:
    """The id of the collection's highest committed version."""
    # The partial index versions_live holds live versions only, so this is one step
    # however many of the newest versions were deleted.
    row = conn.execute(
        f"SELECT v.id FROM versions AS v WHERE v.collection_id = ? AND {LIVE}"
        " ORDER BY v.idx DESC LIMIT 1",
        (collection,),
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
    # `latest` comes from latest_version_id, whether its row is stored or not.
    aliases = _per_version(
        conn,
        f"SELECT version_id, alias FROM aliases WHERE version_id IN ({{marks}})"
        f" AND alias <> '{LATEST}'",
        ids,
    )
    tags = _per_version(conn, "SELECT version_id, tag FROM tags WHERE version_id IN ({marks})", ids)
    collections = {int(row[COLLECTION]) for row in rows}
    latest = {latest_version_id(conn, collection) for collection in collections}
    return [
        version_from_row(
            row,
            aliases=aliases.get(str(row[0]), []),
            tags=tags.get(str(row[0]), []),
            latest=row[0] in latest,
        )
        for row in rows
    ]


def versions_where(
    conn: sqlite3.Connection, where: str, params: Sequence[Any], *, join: str = ""
) -> list[Version]:
    """The versions matching ``where`` (over ``v``, ``c``, ``p``, ``r`` and ``join``'s tables)."""
    rows = conn.execute(f"{VERSION_COLUMNS} {join} WHERE {where}", params)
    return load_versions(conn, rows)


class VersionKey(NamedTuple):
    """What writes and lineage reads need of a live version, without loading it."""

    collection: int
    number: int
    name: str
    run: int | None

    def label(self) -> str:
        """``name:vN``, as messages name the version."""
        return f"{self.name}:v{self.number}"


def live_version_key(conn: sqlite3.Connection, version_id: str) -> VersionKey:
    """The keys of a live version; :class:`NotFoundError` when unknown or deleted."""
    row = conn.execute(
        "SELECT v.collection_id, v.idx, c.name, v.run_id, v.state, v.deleted_at"
        " FROM versions AS v JOIN collections AS c ON c.id = v.collection_id WHERE v.id = ?",
        (version_id,),
    ).fetchone()
    if row is None:
        raise NotFoundError(f"no artifact version with id {version_id!r}")
    key = VersionKey(int(row[0]), int(row[1]), str(row[2]), row[3])
    if row[4] != COMMITTED:
        raise NotFoundError(describe_deleted(version_id, key.label(), row[5]))
    return key


def live_version(conn: sqlite3.Connection, version_id: str) -> Version:
    """The live version with this id; :class:`NotFoundError` when unknown or deleted."""
    found = versions_where(conn, "v.id = ?", (version_id,))
    if not found:
        raise NotFoundError(f"no artifact version with id {version_id!r}")
    if found[0].state != COMMITTED:
        deleted_at = conn.execute(
            "SELECT deleted_at FROM versions WHERE id = ?", (version_id,)
        ).fetchone()[0]
        raise NotFoundError(
            describe_deleted(version_id, f"{found[0].name}:{found[0].version}", deleted_at)
        )
    return found[0]


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
        found = versions_where(
            conn, f"v.collection_id = ? AND v.idx = ? AND {LIVE}", (collection, index)
        )
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
            f"SELECT v.idx FROM versions AS v WHERE v.collection_id = ? AND {LIVE} ORDER BY v.idx",
            (collection,),
        )
    ]
    aliases = [
        str(row[0])
        for row in conn.execute("SELECT alias FROM aliases WHERE collection_id = ?", (collection,))
    ]
    had_versions = (
        not indexes
        and _scalar(conn, "SELECT 1 FROM versions WHERE collection_id = ? LIMIT 1", (collection,))
        is not None
    )
    message = describe_versions(
        f"{entity}/{project}/{name}", ref, indexes, aliases, had_versions=had_versions
    )
    if index is not None:
        tombstone = conn.execute(
            "SELECT deleted_at FROM versions WHERE collection_id = ? AND idx = ?",
            (collection, index),
        ).fetchone()
        if tombstone is not None:
            when = when_deleted(tombstone[0])
            message = f"{name}:{ref} was deleted{when} (numbers are not reused); {message}"
    raise NotFoundError(message)


def _scalar(conn: sqlite3.Connection, sql: str, params: Sequence[Any]) -> str | None:
    row = conn.execute(sql, params).fetchone()
    return None if row is None else str(row[0])


def list_versions(conn: sqlite3.Connection, entity: str, project: str, name: str) -> list[Version]:
    """The committed versions of a collection, lowest index first."""
    collection = _collection_or_raise(conn, entity, project, name)
    return versions_where(conn, f"v.collection_id = ? AND {LIVE} ORDER BY v.idx", (collection,))


def list_collections(
    conn: sqlite3.Connection, entity: str, project: str, type_: str | None
) -> list[Collection]:
    """The project's artifact collections (of one type, if given), by name."""
    sql = (
        "SELECT c.name, c.type, c.created_at,"
        f" (SELECT COUNT(*) FROM versions AS v WHERE v.collection_id = c.id AND {LIVE})"
        " FROM collections AS c JOIN projects AS p ON p.id = c.project_id"
        " WHERE p.entity = ? AND p.name = ?"
    )
    params: list[Any] = [entity, project]
    if type_ is not None:
        sql += " AND c.type = ?"
        params.append(type_)
    return [
        Collection(project, entity, name, ctype, float(created), int(count))
        for name, ctype, created, count in conn.execute(sql + " ORDER BY c.name", params)
    ]


def expired_versions(conn: sqlite3.Connection, now: float, limit: int) -> list[Version]:
    """Live versions whose TTL ran out at or before ``now``, the longest expired first."""
    # expires_at <= ? implies expires_at IS NOT NULL, so the partial index
    # versions_expiring serves it: only versions with a TTL are ever looked at.
    where = f"v.expires_at <= ? AND {LIVE} ORDER BY v.expires_at LIMIT ?"
    return versions_where(conn, where, (now, limit))


def live_manifest_keys(conn: sqlite3.Connection) -> set[str]:
    """Manifest keys of every live version and every pending part."""
    rows = conn.execute(
        f"SELECT v.manifest_key FROM versions AS v WHERE {LIVE}"
        " UNION SELECT manifest_key FROM parts WHERE version_id IS NULL"
    )
    return {str(row[0]) for row in rows}


def list_parts(
    conn: sqlite3.Connection, entity: str, project: str, name: str, distributed_id: str
) -> list[Part]:
    """The pending parts of ``distributed_id``, in the order they were added."""
    found = find_collection(conn, entity, project, name)
    if found is None:
        return []
    rows = conn.execute(
        "SELECT pt.submission_id, pt.distributed_id, pt.manifest_key, r.run_id, pt.size,"
        " pt.file_count, pt.created_at, pt.store"
        " FROM parts AS pt LEFT JOIN runs AS r ON r.id = pt.run_id"
        " WHERE pt.collection_id = ? AND pt.distributed_id = ? AND pt.version_id IS NULL"
        " ORDER BY pt.id",
        (found[0], distributed_id),
    )
    return [
        Part(str(sub), str(did), str(key), run, int(size), int(count), float(created), store)
        for sub, did, key, run, size, count, created, store in rows
    ]


def runs_where(
    conn: sqlite3.Connection, where: str, params: Sequence[Any], *, join: str = ""
) -> list[Run]:
    """The runs matching ``where`` (over ``r``, ``p`` and ``join``'s tables)."""
    rows = conn.execute(f"{RUN_COLUMNS} {join} WHERE {where}", params)
    return [run_from_row(row) for row in rows]


def run_record(conn: sqlite3.Connection, entity: str, project: str, run_id: str) -> Run | None:
    """The run ``run_id`` of ``entity/project``, or None."""
    found = runs_where(
        conn, "p.entity = ? AND p.name = ? AND r.run_id = ?", (entity, project, run_id)
    )
    return found[0] if found else None


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
