"""Editing the PostgreSQL registry: aliases, descriptions, TTLs and deletes of committed
versions, and the summary and state of runs.

The rules are ``sqlite.edits``'s. Every edit of a version first locks its collection's
row, the lock commits take (``postgres.commit.lock_collection``), then reads the
version again: an edit and a commit, or a delete, of one collection happen one after
the other, as they do on SQLite's single writer, so ``latest`` and the aliases never
see half of either.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from artisync.errors import InvalidInputError, NotFoundError
from artisync.names import validate_alias
from artisync.registry.contract import (
    UNSET,
    Unset,
    check_ttl,
    latest_refused,
    to_json,
    user_aliases,
)
from artisync.registry.model import COMMITTED, DELETED, LATEST, RUN_STATES
from artisync.registry.postgres.commit import lock_collection, move_aliases
from artisync.registry.postgres.connection import Conn
from artisync.registry.postgres.queries import (
    NOW,
    VersionKey,
    latest_version_id,
    live_version_key,
    project_id,
)

__all__ = [
    "delete_version",
    "set_aliases",
    "set_run_state",
    "set_run_summary",
    "update_version",
]


def _lock_version(conn: Conn, version_id: str) -> VersionKey:
    """The live version's keys, read after its collection's lock was granted."""
    lock_collection(conn, live_version_key(conn, version_id).collection)
    # Again under the lock: a delete may have committed while this waited.
    return live_version_key(conn, version_id)


def set_aliases(conn: Conn, version_id: str, aliases: Sequence[str]) -> None:
    """Make ``aliases`` the version's user aliases; see ``sqlite.edits.set_aliases``."""
    key = _lock_version(conn, version_id)
    for alias in aliases:
        validate_alias(alias)
    if LATEST in aliases and latest_version_id(conn, key.collection) != version_id:
        raise latest_refused(key.label())
    kept = user_aliases(aliases, artifact=key.name)
    conn.execute(
        "DELETE FROM aliases WHERE version_id = %s AND NOT (alias = ANY(%s::text[]))"
        " AND alias <> %s",
        (version_id, kept, LATEST),
    )
    move_aliases(conn, key.collection, version_id, kept)


def update_version(
    conn: Conn,
    version_id: str,
    *,
    description: str | Unset | None,
    metadata: Mapping[str, Any] | Unset,
    ttl_seconds: float | Unset | None,
) -> None:
    """Change the fields given (not :data:`UNSET`) of a live version."""
    key = _lock_version(conn, version_id)
    changes: list[str] = []
    params: list[Any] = []
    if description is not UNSET:
        if description is not None and not isinstance(description, str):
            raise InvalidInputError(
                f"description of {key.label()} must be a string or None, "
                f"got {type(description).__name__}"
            )
        changes.append("description = %s")
        params.append(description)
    if metadata is not UNSET:
        changes.append("metadata = %s::json")
        params.append(to_json(metadata, what=f"metadata of {key.label()}"))
    if ttl_seconds is not UNSET:
        ttl = check_ttl(ttl_seconds, what=key.label())
        # The TTL counts from the version's creation, as in W&B, not from the edit.
        changes.append("ttl_seconds = %s::float8, expires_at = created_at + %s::float8")
        params.extend([ttl, ttl])
    if changes:
        conn.execute(
            f"UPDATE versions SET {', '.join(changes)} WHERE id = %s", (*params, version_id)
        )


def delete_version(conn: Conn, version_id: str, *, delete_aliases: bool) -> None:
    """Turn a version into its tombstone; deleting a tombstone again changes nothing."""
    row = conn.execute("SELECT state FROM versions WHERE id = %s", (version_id,)).fetchone()
    if row is not None and row[0] == DELETED:
        return
    key = _lock_version(conn, version_id)
    # `latest` does not hold a version back: deleting its row hands it to the highest
    # version left.
    aliases = [
        str(r[0])
        for r in conn.execute(
            "SELECT alias FROM aliases WHERE version_id = %s AND alias <> %s ORDER BY alias",
            (version_id, LATEST),
        )
    ]
    if aliases and not delete_aliases:
        named = ", ".join(repr(alias) for alias in aliases)
        raise InvalidInputError(
            f"cannot delete {key.label()}: it has the alias(es) {named}; move them to "
            "another version first, or pass delete_aliases=True to delete them with it"
        )
    # The version's row first: a record_use holding it (FOR SHARE) finishes before this
    # goes on, so its edge is among those deleted below; one that comes later finds the
    # tombstone. The row stays, so its number is never given out again and its
    # submissions still find it; the partial indexes drop it at once.
    conn.execute(
        f"UPDATE versions SET state = %s, deleted_at = {NOW}, expires_at = NULL"
        " WHERE id = %s AND state = %s",
        (DELETED, version_id, COMMITTED),
    )
    conn.execute("DELETE FROM aliases WHERE version_id = %s", (version_id,))
    # Lineage forgets the version; the tombstone keeps its creator in versions.run_id.
    conn.execute("DELETE FROM lineage WHERE version_id = %s", (version_id,))


def _update_run(
    conn: Conn, entity: str, project: str, run_id: str, assignment: str, value: str
) -> int:
    pid = project_id(conn, entity, project)
    row = None
    if pid is not None:
        row = conn.execute(
            f"UPDATE runs SET {assignment}, updated_at = {NOW}"
            " WHERE project_id = %s AND run_id = %s RETURNING id",
            (value, pid, run_id),
        ).fetchone()
    if row is None:
        raise NotFoundError(
            f"run {run_id!r} not found in project '{entity}/{project}'; a run is recorded "
            "by artisync.init() (or ensure_run) before its summary or state can be set"
        )
    return int(row[0])


def set_run_summary(
    conn: Conn, entity: str, project: str, run_id: str, summary: Mapping[str, Any]
) -> int:
    """Replace the run's whole summary with ``summary`` (JSON values only); return its key."""
    summary_json = to_json(summary, what=f"summary of run {run_id!r}")
    return _update_run(conn, entity, project, run_id, "summary = %s::json", summary_json)


def set_run_state(conn: Conn, entity: str, project: str, run_id: str, state: str) -> int:
    """Set the run's state, one of :data:`~artisync.registry.model.RUN_STATES`; return
    the run's key."""
    if state not in RUN_STATES:
        raise InvalidInputError(
            f"run state {state!r} of run {run_id!r} is not one artisync knows; "
            f"use one of {', '.join(map(repr, RUN_STATES))}"
        )
    return _update_run(conn, entity, project, run_id, "state = %s", state)
