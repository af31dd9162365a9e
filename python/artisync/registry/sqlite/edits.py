"""Editing the SQLite registry: aliases, descriptions, TTLs and deletes of committed
versions, and the summary and state of runs.

Like ``sqlite.commit``, every function runs inside the caller's ``BEGIN IMMEDIATE``
transaction and raises to abort it. These are the writes the training script makes
itself (``artifact.save()``, ``artifact.delete()``, ``run.finish()``) besides the
daemon's expiry, so they may come from several processes at once.
"""

from __future__ import annotations

import sqlite3
import time
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
from artisync.registry.sqlite.commit import move_aliases
from artisync.registry.sqlite.queries import latest_version_id, live_version_key, project_id

__all__ = [
    "delete_version",
    "set_aliases",
    "set_run_state",
    "set_run_summary",
    "update_version",
]


def set_aliases(conn: sqlite3.Connection, version_id: str, aliases: Sequence[str]) -> None:
    """Make ``aliases`` the version's user aliases: add or move these, drop the others.

    ``latest`` is not a user alias: listing it is accepted for the version it names
    (a no-op) and refused for any other, since it moves by itself to each version
    logged; leaving it out never removes it. Every alias is checked before anything
    changes, so a bad one leaves all aliases where they were.
    """
    key = live_version_key(conn, version_id)
    for alias in aliases:
        validate_alias(alias)
    if LATEST in aliases and latest_version_id(conn, key.collection) != version_id:
        raise latest_refused(key.label())
    kept = user_aliases(aliases, artifact=key.name)
    current = [
        str(r[0])
        for r in conn.execute(
            "SELECT alias FROM aliases WHERE version_id = ? AND alias <> ?", (version_id, LATEST)
        )
    ]
    conn.executemany(
        "DELETE FROM aliases WHERE collection_id = ? AND alias = ?",
        [(key.collection, alias) for alias in current if alias not in kept],
    )
    move_aliases(conn, key.collection, version_id, kept)


def update_version(
    conn: sqlite3.Connection,
    version_id: str,
    *,
    description: str | Unset | None,
    metadata: Mapping[str, Any] | Unset,
    ttl_seconds: float | Unset | None,
) -> None:
    """Change the fields given (not :data:`UNSET`) of a live version."""
    key = live_version_key(conn, version_id)
    changes: list[str] = []
    params: list[Any] = []
    if description is not UNSET:
        if description is not None and not isinstance(description, str):
            raise InvalidInputError(
                f"description of {key.label()} must be a string or None, "
                f"got {type(description).__name__}"
            )
        changes.append("description = ?")
        params.append(description)
    if metadata is not UNSET:
        changes.append("metadata = ?")
        params.append(to_json(metadata, what=f"metadata of {key.label()}"))
    if ttl_seconds is not UNSET:
        ttl = check_ttl(ttl_seconds, what=key.label())
        # The TTL counts from the version's creation, as in W&B, not from the edit.
        changes.append("ttl_seconds = ?, expires_at = created_at + ?")
        params.extend([ttl, ttl])
    if changes:
        conn.execute(
            f"UPDATE versions SET {', '.join(changes)} WHERE id = ?", (*params, version_id)
        )


def delete_version(conn: sqlite3.Connection, version_id: str, *, delete_aliases: bool) -> None:
    """Turn a version into its tombstone; deleting a tombstone again changes nothing."""
    row = conn.execute("SELECT state FROM versions WHERE id = ?", (version_id,)).fetchone()
    if row is not None and row[0] == DELETED:
        return
    key = live_version_key(conn, version_id)
    # `latest` does not hold a version back: deleting its row hands it to the highest
    # version left.
    aliases = [
        str(r[0])
        for r in conn.execute(
            "SELECT alias FROM aliases WHERE version_id = ? AND alias <> ? ORDER BY alias",
            (version_id, LATEST),
        )
    ]
    if aliases and not delete_aliases:
        named = ", ".join(repr(alias) for alias in aliases)
        raise InvalidInputError(
            f"cannot delete {key.label()}: it has the alias(es) {named}; move them to "
            "another version first, or pass delete_aliases=True to delete them with it"
        )
    conn.execute("DELETE FROM aliases WHERE version_id = ?", (version_id,))
    # Lineage forgets the version; the tombstone keeps its creator in versions.run_id.
    conn.execute("DELETE FROM lineage WHERE version_id = ?", (version_id,))
    # Out of versions_live, versions_by_digest and versions_expiring (partial indexes):
    # `latest`, counts, deduplication and expiry stop seeing it at once. The row stays,
    # so its number is never given out again and its submissions still find it.
    conn.execute(
        "UPDATE versions SET state = ?, deleted_at = ?, expires_at = NULL"
        " WHERE id = ? AND state = ?",
        (DELETED, time.time(), version_id, COMMITTED),
    )


def _update_run(
    conn: sqlite3.Connection, entity: str, project: str, run_id: str, column: str, value: str
) -> int:
    pid = project_id(conn, entity, project)
    row = None
    if pid is not None:
        row = conn.execute(
            "SELECT id FROM runs WHERE project_id = ? AND run_id = ?", (pid, run_id)
        ).fetchone()
    if row is None:
        raise NotFoundError(
            f"run {run_id!r} not found in project '{entity}/{project}'; a run is recorded "
            "by artisync.init() (or ensure_run) before its summary or state can be set"
        )
    conn.execute(
        f"UPDATE runs SET {column} = ?, updated_at = ? WHERE id = ?", (value, time.time(), row[0])
    )
    return int(row[0])


def set_run_summary(
    conn: sqlite3.Connection, entity: str, project: str, run_id: str, summary: Mapping[str, Any]
) -> int:
    """Replace the run's whole summary with ``summary`` (JSON values only); return its key."""
    summary_json = to_json(summary, what=f"summary of run {run_id!r}")
    return _update_run(conn, entity, project, run_id, "summary", summary_json)


def set_run_state(
    conn: sqlite3.Connection, entity: str, project: str, run_id: str, state: str
) -> int:
    """Set the run's state, one of :data:`~artisync.registry.model.RUN_STATES`; return
    the run's key."""
    if state not in RUN_STATES:
        raise InvalidInputError(
            f"run state {state!r} of run {run_id!r} is not one artisync knows; "
            f"use one of {', '.join(map(repr, RUN_STATES))}"
        )
    return _update_run(conn, entity, project, run_id, "state", state)
