"""Sweeps (W&B's ``wandb.sweep``) in the PostgreSQL registry; the rules are
``sqlite.sweeps``'s. Two servers creating one sweep at once both end with one row: the
insert of the second waits for the first and does nothing, and its config is then
compared with the one stored."""

from __future__ import annotations

from artisync.errors import InvalidInputError, NotFoundError
from artisync.registry.model import Sweep
from artisync.registry.postgres.commit import ensure_project
from artisync.registry.postgres.connection import Conn
from artisync.registry.postgres.queries import NOW
from artisync.registry.rows import SWEEP_COLUMNS, sweep_from_row
from artisync.registry.run_rules import describe_missing_sweep, describe_sweep_conflict, same_json

__all__ = ["create_sweep", "get_sweep"]


def create_sweep(conn: Conn, entity: str, project: str, sweep_id: str, config: str) -> Sweep:
    """The sweep ``sweep_id`` with ``config`` (JSON text), created (with its project) if
    new; the same id with another config is :class:`InvalidInputError`."""
    pid = ensure_project(conn, entity, project)
    created = conn.execute(
        "INSERT INTO sweeps (project_id, sweep_id, config, state, created_at)"
        f" VALUES (%s, %s, %s::json, 'RUNNING', {NOW})"
        " ON CONFLICT (project_id, sweep_id) DO NOTHING RETURNING id",
        (pid, sweep_id, config),
    ).fetchone()
    sweep = get_sweep(conn, entity, project, sweep_id)
    if created is None and not same_json(sweep.config, config):
        raise InvalidInputError(describe_sweep_conflict(entity, project, sweep_id))
    return sweep


def get_sweep(conn: Conn, entity: str, project: str, sweep_id: str) -> Sweep:
    """The sweep ``sweep_id`` of ``entity/project``; :class:`NotFoundError` if absent."""
    row = conn.execute(
        f"{SWEEP_COLUMNS} WHERE p.entity = %s AND p.name = %s AND s.sweep_id = %s",
        (entity, project, sweep_id),
    ).fetchone()
    if row is None:
        raise NotFoundError(describe_missing_sweep(entity, project, sweep_id))
    return sweep_from_row(row)
