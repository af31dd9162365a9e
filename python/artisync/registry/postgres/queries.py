"""Reading the PostgreSQL registry: lookups, and turning rows into the model's records.

The same reads as ``sqlite.queries``, statement for statement, so both backends answer
alike; each is an equality on the leading columns of an index from
``postgres/migrations``, so its cost stays flat as a collection grows. Every function
runs inside the caller's transaction. ``json`` columns arrive already parsed by psycopg.
"""

from __future__ import annotations

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
from artisync.registry.postgres.connection import Conn
from artisync.registry.rows import (
    COLLECTION,
    RUN_COLUMNS,
    VERSION_COLUMNS,
    run_from_row,
    version_from_row,
)

__all__ = [
    "LIVE",
    "NOW",
    "VersionKey",
    "expired_versions",
    "find_collection",
    "find_run",
    "latest_version_id",
    "list_collections",
    "list_parts",
    "list_versions",
    "live_manifest_keys",
    "live_version",
    "live_version_key",
    "project_id",
    "resolve_version",
    "run_record",
    "runs_where",
    "versions_where",
]

LIVE = f"v.state = '{COMMITTED}'"
"""The condition for a live version, spelled as the partial indexes spell it (a bound
parameter would not match them in a prepared statement's generic plan)."""

NOW = "extract(epoch FROM statement_timestamp())::float8"
"""Now, in epoch seconds, on the database's clock, which every server process shares.
The statement's start, not the transaction's: a commit that waited for its collection's
lock is stamped after the commit it waited for. It is one value throughout a statement,
so a row's ``created_at`` and ``updated_at`` (or ``expires_at - ttl``) agree exactly."""


def project_id(conn: Conn, entity: str, project: str) -> int | None:
    """The internal key of ``entity/project``, or None when it has never been used."""
    row = conn.execute(
        "SELECT id FROM projects WHERE entity = %s AND name = %s", (entity, project)
    ).fetchone()
    return None if row is None else int(row[0])


def find_collection(conn: Conn, entity: str, project: str, name: str) -> tuple[int, str] | None:
    """``(collection key, type)`` of the artifact ``name`` in the project, or None."""
    row = conn.execute(
        "SELECT c.id, c.type FROM collections AS c JOIN projects AS p ON p.id = c.project_id"
        " WHERE p.entity = %s AND p.name = %s AND c.name = %s",
        (entity, project, name),
    ).fetchone()
    return None if row is None else (int(row[0]), str(row[1]))


def _collection_or_raise(conn: Conn, entity: str, project: str, name: str) -> int:
    found = find_collection(conn, entity, project, name)
    if found is not None:
        return found[0]
    listed = conn.execute(
        "SELECT c.name, c.type FROM collections AS c JOIN projects AS p ON p.id = c.project_id"
        " WHERE p.entity = %s AND p.name = %s ORDER BY c.name",
        (entity, project),
    ).fetchall()
    collections = [(str(n), str(t)) for n, t in listed]
    raise NotFoundError(describe_collections(f"{entity}/{project}", name, collections))


def latest_version_id(conn: Conn, collection: int) -> str | None:
    """The id of the version ``latest`` names: the one content logged again moved it to
    (its ``latest`` row), else the collection's highest live version."""
    moved = _scalar(
        conn,
        "SELECT version_id FROM aliases WHERE collection_id = %s AND alias = %s",
        (collection, LATEST),
    )
    if moved is not None:
        return moved
    return _scalar(
        conn,
        f"SELECT v.id FROM versions AS v WHERE v.collection_id = %s AND {LIVE}"
        " ORDER BY v.idx DESC LIMIT 1",
        (collection,),
    )


def _per_version(conn: Conn, sql: str, version_ids: Sequence[str]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for version_id, value in conn.execute(sql, (list(version_ids),)):
        found.setdefault(str(version_id), []).append(str(value))
    return found


def _load_versions(conn: Conn, rows: Iterable[Sequence[Any]]) -> list[Version]:
    rows = list(rows)
    ids = [str(row[0]) for row in rows]
    # `latest` comes from latest_version_id, whether its row is stored or not.
    aliases = _per_version(
        conn,
        f"SELECT version_id, alias FROM aliases WHERE version_id = ANY(%s) AND alias <> '{LATEST}'",
        ids,
    )
    tags = _per_version(conn, "SELECT version_id, tag FROM tags WHERE version_id = ANY(%s)", ids)
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
    conn: Conn, where: str, params: Sequence[Any], *, join: str = ""
) -> list[Version]:
    """The versions matching ``where`` (over ``v``, ``c``, ``p``, ``r`` and ``join``'s tables)."""
    rows = conn.execute(f"{VERSION_COLUMNS} {join} WHERE {where}", params).fetchall()
    return _load_versions(conn, rows)


class VersionKey(NamedTuple):
    """What writes and lineage reads need of a live version, without loading it."""

    collection: int
    number: int
    name: str
    run: int | None

    def label(self) -> str:
        """``name:vN``, as messages name the version."""
        return f"{self.name}:v{self.number}"


def live_version_key(conn: Conn, version_id: str, *, lock: str = "") -> VersionKey:
    """The keys of a live version; :class:`NotFoundError` when unknown or deleted.

    ``lock`` (``"FOR SHARE OF v"``) locks the version's row, so that it cannot be
    deleted before the caller's transaction ends.
    """
    row = conn.execute(
        "SELECT v.collection_id, v.idx, c.name, v.run_id, v.state, v.deleted_at"
        " FROM versions AS v JOIN collections AS c ON c.id = v.collection_id"
        f" WHERE v.id = %s {lock}",
        (version_id,),
    ).fetchone()
    if row is None:
        raise NotFoundError(f"no artifact version with id {version_id!r}")
    key = VersionKey(int(row[0]), int(row[1]), str(row[2]), row[3])
    if row[4] != COMMITTED:
        raise NotFoundError(describe_deleted(version_id, key.label(), row[5]))
    return key


def live_version(conn: Conn, version_id: str) -> Version:
    """The live version with this id; :class:`NotFoundError` when unknown or deleted."""
    found = versions_where(conn, "v.id = %s", (version_id,))
    if not found:
        raise NotFoundError(f"no artifact version with id {version_id!r}")
    if found[0].state != COMMITTED:
        row = conn.execute("SELECT deleted_at FROM versions WHERE id = %s", (version_id,))
        deleted_at = row.fetchone()
        raise NotFoundError(
            describe_deleted(
                version_id,
                f"{found[0].name}:{found[0].version}",
                None if deleted_at is None else deleted_at[0],
            )
        )
    return found[0]


def resolve_version(conn: Conn, entity: str, project: str, name: str, ref: str) -> Version:
    """The version ``ref`` (``vN``, ``latest`` or an alias) of ``entity/project/name``.

    Raises :class:`NotFoundError` listing the collection's versions and aliases, or
    the project's artifacts when ``name`` itself does not exist.
    """
    collection = _collection_or_raise(conn, entity, project, name)
    index = parse_version_label(ref)
    if index is not None:
        found = versions_where(
            conn, f"v.collection_id = %s AND v.idx = %s AND {LIVE}", (collection, index)
        )
    else:
        target = (
            latest_version_id(conn, collection)
            if ref == LATEST
            else _scalar(
                conn,
                "SELECT version_id FROM aliases WHERE collection_id = %s AND alias = %s",
                (collection, ref),
            )
        )
        found = [] if target is None else versions_where(conn, "v.id = %s", (target,))
    if found:
        return found[0]
    indexes = [
        int(row[0])
        for row in conn.execute(
            f"SELECT v.idx FROM versions AS v WHERE v.collection_id = %s AND {LIVE} ORDER BY v.idx",
            (collection,),
        )
    ]
    aliases = [
        str(row[0])
        for row in conn.execute("SELECT alias FROM aliases WHERE collection_id = %s", (collection,))
    ]
    had_versions = (
        not indexes
        and _scalar(conn, "SELECT 1 FROM versions WHERE collection_id = %s LIMIT 1", (collection,))
        is not None
    )
    message = describe_versions(
        f"{entity}/{project}/{name}", ref, indexes, aliases, had_versions=had_versions
    )
    if index is not None:
        tombstone = conn.execute(
            "SELECT deleted_at FROM versions WHERE collection_id = %s AND idx = %s",
            (collection, index),
        ).fetchone()
        if tombstone is not None:
            when = when_deleted(tombstone[0])
            message = f"{name}:{ref} was deleted{when} (numbers are not reused); {message}"
    raise NotFoundError(message)


def _scalar(conn: Conn, sql: str, params: Sequence[Any]) -> str | None:
    row = conn.execute(sql, params).fetchone()
    return None if row is None else str(row[0])


def list_versions(conn: Conn, entity: str, project: str, name: str) -> list[Version]:
    """The live versions of a collection, lowest index first."""
    collection = _collection_or_raise(conn, entity, project, name)
    return versions_where(conn, f"v.collection_id = %s AND {LIVE} ORDER BY v.idx", (collection,))


def list_collections(conn: Conn, entity: str, project: str, type_: str | None) -> list[Collection]:
    """The project's artifact collections (of one type, if given), by name."""
    sql = (
        "SELECT c.name, c.type, c.created_at,"
        f" (SELECT count(*) FROM versions AS v WHERE v.collection_id = c.id AND {LIVE})"
        " FROM collections AS c JOIN projects AS p ON p.id = c.project_id"
        " WHERE p.entity = %s AND p.name = %s"
    )
    params: list[Any] = [entity, project]
    if type_ is not None:
        sql += " AND c.type = %s"
        params.append(type_)
    return [
        Collection(project, entity, name, ctype, float(created), int(count))
        for name, ctype, created, count in conn.execute(sql + " ORDER BY c.name", params)
    ]


def expired_versions(conn: Conn, now: float, limit: int) -> list[Version]:
    """Live versions whose TTL ran out at or before ``now``, the longest expired first."""
    # expires_at <= now implies expires_at IS NOT NULL, so the partial index
    # versions_expiring serves it: only versions with a TTL are ever looked at.
    where = f"v.expires_at <= %s AND {LIVE} ORDER BY v.expires_at LIMIT %s"
    return versions_where(conn, where, (now, limit))


def live_manifest_keys(conn: Conn) -> set[str]:
    """Manifest keys of every live version and every pending part."""
    rows = conn.execute(
        f"SELECT v.manifest_key FROM versions AS v WHERE {LIVE}"
        " UNION SELECT manifest_key FROM parts WHERE version_id IS NULL"
    )
    return {str(row[0]) for row in rows}


def list_parts(conn: Conn, entity: str, project: str, name: str, distributed_id: str) -> list[Part]:
    """The pending parts of ``distributed_id``, in the order they were added."""
    found = find_collection(conn, entity, project, name)
    if found is None:
        return []
    rows = conn.execute(
        "SELECT pt.submission_id, pt.distributed_id, pt.manifest_key, r.run_id, pt.size,"
        " pt.file_count, pt.created_at, pt.store"
        " FROM parts AS pt LEFT JOIN runs AS r ON r.id = pt.run_id"
        " WHERE pt.collection_id = %s AND pt.distributed_id = %s AND pt.version_id IS NULL"
        " ORDER BY pt.id",
        (found[0], distributed_id),
    )
    return [
        Part(str(sub), str(did), str(key), run, int(size), int(count), float(created), store)
        for sub, did, key, run, size, count, created, store in rows
    ]


def runs_where(conn: Conn, where: str, params: Sequence[Any], *, join: str = "") -> list[Run]:
    """The runs matching ``where`` (over ``r``, ``p`` and ``join``'s tables)."""
    rows = conn.execute(f"{RUN_COLUMNS} {join} WHERE {where}", params)
    return [run_from_row(row) for row in rows]


def run_record(conn: Conn, entity: str, project: str, run_id: str) -> Run | None:
    """The run ``run_id`` of ``entity/project``, or None."""
    found = runs_where(
        conn, "p.entity = %s AND p.name = %s AND r.run_id = %s", (entity, project, run_id)
    )
    return found[0] if found else None


def find_run(conn: Conn, run_id: str, project: str | None, entity: str) -> int:
    """The internal key of a run, by its id, within ``project`` when one is given.

    Run ids are random and unique in practice, so lineage calls may name a run by
    its id alone; when two projects reuse one id the caller must say which project.
    """
    if project is not None:
        row = conn.execute(
            "SELECT r.id FROM runs AS r JOIN projects AS p ON p.id = r.project_id"
            " WHERE p.entity = %s AND p.name = %s AND r.run_id = %s",
            (entity, project, run_id),
        ).fetchone()
        if row is None:
            raise NotFoundError(f"run {run_id!r} not found in project '{entity}/{project}'")
        return int(row[0])
    rows = conn.execute(
        "SELECT r.id, p.entity || '/' || p.name FROM runs AS r"
        " JOIN projects AS p ON p.id = r.project_id WHERE r.run_id = %s LIMIT 5",
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
