"""A run's history rows (W&B's ``run.log``) in the PostgreSQL registry.

The rules are ``sqlite.history``'s: one row per (run, ``_step``), a step written again
replaces its row. Appending first updates the run's ``updated_at``, which finds the run
and holds its row lock until the transaction ends, so two writers of one run's history
take turns; the rows then go in as one ``INSERT ... SELECT FROM unnest`` upsert.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from artisync.errors import NotFoundError
from artisync.registry.postgres.connection import Conn
from artisync.registry.postgres.queries import NOW, find_run, project_id

__all__ = ["append_history", "run_history"]


def append_history(
    conn: Conn, entity: str, project: str, run_id: str, rows: Sequence[tuple[int, str]]
) -> None:
    """Store ``rows`` (``(step, JSON text)``, by step, each step once, as
    ``run_rules.history_rows`` gives them), replacing stored rows of the same steps;
    :class:`NotFoundError` for an unknown run."""
    pid = project_id(conn, entity, project)
    found = None
    if pid is not None:
        found = conn.execute(
            f"UPDATE runs SET updated_at = {NOW} WHERE project_id = %s AND run_id = %s"
            " RETURNING id",
            (pid, run_id),
        ).fetchone()
    if found is None:
        raise NotFoundError(
            f"run {run_id!r} not found in project '{entity}/{project}'; a run is recorded "
            "by artisync.init() (or ensure_run) before its history can be written"
        )
    conn.execute(
        "INSERT INTO history (run_id, step, data)"
        " SELECT %s, s, d::json FROM unnest(%s::bigint[], %s::text[]) AS u(s, d)"
        " ON CONFLICT (run_id, step) DO UPDATE SET data = excluded.data",
        (int(found[0]), [step for step, _ in rows], [text for _, text in rows]),
    )


def run_history(conn: Conn, entity: str, project: str, run_id: str) -> list[dict[str, Any]]:
    """The run's history rows, by step; :class:`NotFoundError` for an unknown run."""
    run = find_run(conn, run_id, project, entity)
    return [
        dict(data)
        for (data,) in conn.execute(
            "SELECT data FROM history WHERE run_id = %s ORDER BY step", (run,)
        )
    ]
