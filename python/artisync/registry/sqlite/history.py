"""A run's history rows (W&B's ``run.log``) in the SQLite registry.

One row per (run, ``_step``), as JSON text: writing a step again replaces its row, so a
batch retried after a lost answer, or a resumed run that logs a step again, never
duplicates one. Every function runs inside the caller's transaction.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Sequence
from typing import Any

from artisync.errors import NotFoundError
from artisync.registry.sqlite.queries import find_run, project_id

__all__ = ["append_history", "run_history"]


def append_history(
    conn: sqlite3.Connection,
    entity: str,
    project: str,
    run_id: str,
    rows: Sequence[tuple[int, str]],
) -> None:
    """Store ``rows`` (``(step, JSON text)``, checked by ``run_rules.history_rows``) of
    the run, replacing the rows of steps already stored; the run's ``updated_at``
    becomes now. An unknown run is :class:`NotFoundError`."""
    pid = project_id(conn, entity, project)
    found = None
    if pid is not None:
        found = conn.execute(
            "SELECT id FROM runs WHERE project_id = ? AND run_id = ?", (pid, run_id)
        ).fetchone()
    if found is None:
        raise NotFoundError(
            f"run {run_id!r} not found in project '{entity}/{project}'; a run is recorded "
            "by artisync.init() (or ensure_run) before its history can be written"
        )
    run = int(found[0])
    conn.executemany(
        "INSERT INTO history (run_id, step, data) VALUES (?, ?, ?)"
        " ON CONFLICT (run_id, step) DO UPDATE SET data = excluded.data",
        [(run, step, text) for step, text in rows],
    )
    conn.execute("UPDATE runs SET updated_at = ? WHERE id = ?", (time.time(), run))


def run_history(
    conn: sqlite3.Connection, entity: str, project: str, run_id: str
) -> list[dict[str, Any]]:
    """The run's history rows, by step; :class:`NotFoundError` for an unknown run."""
    run = find_run(conn, run_id, project, entity)
    return [
        json.loads(text)
        for (text,) in conn.execute(
            "SELECT data FROM history WHERE run_id = ? ORDER BY step", (run,)
        )
    ]
