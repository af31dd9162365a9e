"""Sweeps (W&B's ``wandb.sweep``) in the SQLite registry: created once per id, with a
config that never changes. Every function runs inside the caller's transaction."""

from __future__ import annotations

import sqlite3
import time

from artisync.errors import InvalidInputError, NotFoundError
from artisync.registry.model import Sweep
from artisync.registry.rows import SWEEP_COLUMNS, sweep_from_row
from artisync.registry.run_rules import describe_missing_sweep, describe_sweep_conflict, same_json
from artisync.registry.sqlite.commit import ensure_project

__all__ = ["create_sweep", "get_sweep"]


def create_sweep(
    conn: sqlite3.Connection, entity: str, project: str, sweep_id: str, config: str
) -> Sweep:
    """The sweep ``sweep_id`` with ``config`` (JSON text), created (with its project) if
    new; the same id with another config is :class:`InvalidInputError`."""
    pid = ensure_project(conn, entity, project)
    stored = conn.execute(
        "SELECT config FROM sweeps WHERE project_id = ? AND sweep_id = ?", (pid, sweep_id)
    ).fetchone()
    if stored is None:
        conn.execute(
            "INSERT INTO sweeps (project_id, sweep_id, config, state, created_at)"
            " VALUES (?, ?, ?, 'RUNNING', ?)",
            (pid, sweep_id, config, time.time()),
        )
    elif not same_json(stored[0], config):
        raise InvalidInputError(describe_sweep_conflict(entity, project, sweep_id))
    return get_sweep(conn, entity, project, sweep_id)


def get_sweep(conn: sqlite3.Connection, entity: str, project: str, sweep_id: str) -> Sweep:
    """The sweep ``sweep_id`` of ``entity/project``; :class:`NotFoundError` if absent."""
    row = conn.execute(
        f"{SWEEP_COLUMNS} WHERE p.entity = ? AND p.name = ? AND s.sweep_id = ?",
        (entity, project, sweep_id),
    ).fetchone()
    if row is None:
        raise NotFoundError(describe_missing_sweep(entity, project, sweep_id))
    return sweep_from_row(row)
