"""Writing an embedded registry's records into the server's PostgreSQL database, for
``import_registry``: projects, runs and sweeps first, then lineage and history (the
collections between them are ``importing.versions``'s).

Each function runs inside the caller's transaction and returns what it did instead of
changing shared state, so that a transaction the pool runs again (after a deadlock)
counts once. The merge rules (docs/decisions.md, "Moving a node's registry to the
server") in short: records are matched by what names them everywhere (entity and project
name, run id, artifact name, version id, submission id, alias); what matches is left as
the server has it; what is missing is added with its ids, numbers and times; what the
server holds otherwise is a :class:`Conflict`, never overwritten. Runs are the one
exception: the same run id is the same run (W&B's resume), and the side that changed it
last wins (its fields, tags, notes and sweep; history rows are matched by step like any
other record).

Rows go in as arrays, ``INSERT ... SELECT FROM unnest(...)``: one statement per table
and batch instead of one per row. ``WITH ORDINALITY ... ORDER BY`` keeps the source's
order where an identity column records it (runs and parts list oldest first, lineage in
the order recorded).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from artisync.registry.importing.report import Conflict, Counts
from artisync.registry.importing.source import (
    Edge,
    HistoryRow,
    SourceProject,
    SourceRun,
    SourceSweep,
)
from artisync.registry.model import COMMITTED
from artisync.registry.postgres.connection import Conn
from artisync.registry.run_rules import same_json

__all__ = [
    "Outcome",
    "chunks",
    "columns",
    "merge_edges",
    "merge_history",
    "merge_runs",
    "merge_sweeps",
]

# Rows per INSERT: large enough that statements are few, small enough that one array
# parameter stays a few megabytes.
_CHUNK = 10_000


@dataclass(slots=True)
class Outcome:
    """What one transaction of the import did."""

    copied: Counts = field(default_factory=Counts)
    present: Counts = field(default_factory=Counts)
    runs_updated: int = 0
    conflicts: list[Conflict] = field(default_factory=list)
    renumbered: list[str] = field(default_factory=list)


def chunks(rows: Sequence[Any]) -> Iterable[Sequence[Any]]:
    """``rows`` in slices small enough for one statement's array parameters."""
    for start in range(0, len(rows), _CHUNK):
        yield rows[start : start + _CHUNK]


def columns(rows: Sequence[Sequence[Any]], width: int) -> list[list[Any]]:
    """Rows as one list per column: the arrays ``unnest`` takes."""
    return [[row[i] for row in rows] for i in range(width)] if rows else [[] for _ in range(width)]


# -- projects and runs ------------------------------------------------------------------


def merge_runs(
    conn: Conn, projects: Sequence[SourceProject], runs: Sequence[SourceRun]
) -> tuple[dict[int, int], dict[int, int], Outcome]:
    """Add the node's projects and runs; return the server's key of each source project
    and run (by source key), and what was done."""
    out = Outcome()
    inserted = conn.execute(
        "INSERT INTO projects (entity, name, created_at)"
        " SELECT e, n, c FROM unnest(%s::text[], %s::text[], %s::float8[])"
        " WITH ORDINALITY AS s(e, n, c, o) ORDER BY o"
        " ON CONFLICT (entity, name) DO NOTHING RETURNING id",
        columns([p[1:] for p in projects], 3),
    ).fetchall()
    out.copied.projects = len(inserted)
    out.present.projects = len(projects) - len(inserted)
    project_ids: dict[int, int] = {}
    for ordinal, pid in conn.execute(
        "SELECT s.o, p.id FROM unnest(%s::text[], %s::text[]) WITH ORDINALITY AS s(e, n, o)"
        " JOIN projects AS p ON p.entity = s.e AND p.name = s.n",
        columns([p[1:3] for p in projects], 2),
    ):
        project_ids[projects[ordinal - 1].key] = int(pid)

    keys = [(project_ids[r.project_key], r.run_id) for r in runs]
    existing: dict[int, tuple[Any, ...]] = {}
    for row in conn.execute(
        "SELECT s.o, r.name, r.job_type, r.group_name, r.config::text, r.summary::text,"
        " r.state, r.tags::text, r.notes, r.sweep_id, r.created_at, r.updated_at"
        " FROM unnest(%s::bigint[], %s::text[])"
        " WITH ORDINALITY AS s(pid, rid, o)"
        " JOIN runs AS r ON r.project_id = s.pid AND r.run_id = s.rid",
        columns(keys, 2),
    ):
        existing[runs[row[0] - 1].key] = tuple(row[1:])
    new: list[tuple[Any, ...]] = []
    newer: list[tuple[Any, ...]] = []
    width = 9  # the fields compared and copied: name to sweep
    for run, (pid, run_id) in zip(runs, keys, strict=True):
        mine = (
            run.name,
            run.job_type,
            run.group,
            run.config,
            run.summary,
            run.state,
            run.tags,
            run.notes,
            run.sweep,
        )
        theirs = existing.get(run.key)
        if theirs is None:
            new.append((pid, run_id, *mine, run.created_at, run.updated_at))
        elif theirs[:width] == mine or run.updated_at <= theirs[width + 1]:
            # The same, or changed on the server since (a node that already commits
            # there): the server's record is the newer one.
            out.present.runs += 1
        else:
            newer.append((*mine, run.created_at, run.updated_at, pid, run_id))
    for chunk in chunks(new):
        cursor = conn.execute(
            "INSERT INTO runs (project_id, run_id, name, job_type, group_name, config, summary,"
            " state, tags, notes, sweep_id, created_at, updated_at)"
            " SELECT pid, rid, n, j, g, cf, sm, st, tg, nt, sw, c, u"
            " FROM unnest(%s::bigint[], %s::text[], %s::text[], %s::text[], %s::text[],"
            " %s::json[], %s::json[], %s::text[], %s::json[], %s::text[], %s::text[],"
            " %s::float8[], %s::float8[]) WITH ORDINALITY AS s(pid, rid, n, j, g, cf, sm, st,"
            " tg, nt, sw, c, u, o) ORDER BY o ON CONFLICT (project_id, run_id) DO NOTHING",
            columns(chunk, 13),
        )
        out.copied.runs += cursor.rowcount
        # A run the node's daemon created on the server meanwhile: already there.
        out.present.runs += len(chunk) - cursor.rowcount
    if newer:
        with conn.cursor() as cursor:
            cursor.executemany(
                "UPDATE runs SET name = %s, job_type = %s, group_name = %s, config = %s::json,"
                " summary = %s::json, state = %s, tags = %s::json, notes = %s, sweep_id = %s,"
                " created_at = least(created_at, %s), updated_at = %s"
                " WHERE project_id = %s AND run_id = %s",
                newer,
            )
        out.runs_updated = len(newer)

    run_ids: dict[int, int] = {}
    for ordinal, rid in conn.execute(
        "SELECT s.o, r.id FROM unnest(%s::bigint[], %s::text[]) WITH ORDINALITY AS s(pid, rid, o)"
        " JOIN runs AS r ON r.project_id = s.pid AND r.run_id = s.rid",
        columns(keys, 2),
    ):
        run_ids[runs[ordinal - 1].key] = int(rid)
    return project_ids, run_ids, out


def merge_sweeps(
    conn: Conn,
    sweeps: Sequence[SourceSweep],
    projects: Sequence[SourceProject],
    project_ids: dict[int, int],
) -> Outcome:
    """Add the node's sweeps; one the server has with another config is a conflict, left
    as the server has it (a sweep's config never changes)."""
    out = Outcome()
    names = {p.key: f"{p.entity}/{p.name}" for p in projects}
    for sweep in sweeps:
        pid = project_ids[sweep.project_key]
        created = conn.execute(
            "INSERT INTO sweeps (project_id, sweep_id, config, state, created_at)"
            " VALUES (%s, %s, %s::json, %s, %s)"
            " ON CONFLICT (project_id, sweep_id) DO NOTHING RETURNING id",
            (pid, sweep.sweep_id, sweep.config, sweep.state, sweep.created_at),
        ).fetchone()
        if created is not None:
            out.copied.sweeps += 1
            continue
        row = conn.execute(
            "SELECT config::text FROM sweeps WHERE project_id = %s AND sweep_id = %s",
            (pid, sweep.sweep_id),
        ).fetchone()
        assert row is not None, "a sweep that conflicted on insert exists"
        if same_json(row[0], sweep.config):
            out.present.sweeps += 1
        else:
            out.conflicts.append(
                Conflict(
                    f"sweep {names[sweep.project_key]}/{sweep.sweep_id}",
                    "the server has a sweep of this id with another config; kept the "
                    "server's (the node's runs of it still name it)",
                )
            )
    return out


# -- lineage and history ----------------------------------------------------------------


def merge_edges(conn: Conn, edges: Sequence[Edge], run_ids: dict[int, int]) -> Outcome:
    """Add the lineage edges whose version the server holds live, in the source's order.

    Edges of versions not copied (a conflict already reported) or deleted on the server
    since are left out, as deleting a version removes its edges.
    """
    out = Outcome()
    rows = [(run_ids[e.run_key], e.version_id, e.direction, e.created_at) for e in edges]
    for chunk in chunks(rows):
        row = conn.execute(
            "WITH s AS (SELECT s.r, s.v, s.d, s.c, s.o FROM unnest(%s::bigint[], %s::text[],"
            " %s::text[], %s::float8[]) WITH ORDINALITY AS s(r, v, d, c, o)"
            f" JOIN versions AS v ON v.id = s.v AND v.state = '{COMMITTED}'),"
            " added AS (INSERT INTO lineage (run_id, version_id, direction, created_at)"
            " SELECT r, v, d, c FROM s ORDER BY o"
            " ON CONFLICT (run_id, direction, version_id) DO NOTHING RETURNING 1)"
            " SELECT (SELECT count(*) FROM s), (SELECT count(*) FROM added)",
            columns(chunk, 4),
        ).fetchone()
        assert row is not None, "a SELECT of two counts returns one row"
        out.copied.lineage += int(row[1])
        out.present.lineage += int(row[0]) - int(row[1])
    return out


def merge_history(
    conn: Conn, rows: Sequence[HistoryRow], run_ids: dict[int, int], run_names: dict[int, str]
) -> Outcome:
    """Add the history rows the server lacks (by run and step). A step the server holds
    with another row is counted as a conflict of its run, and the server's row kept."""
    out = Outcome()
    keyed = [(run_ids[r.run_key], r.step, r.data) for r in rows]
    for chunk in chunks(keyed):
        added = {
            (int(run), int(step))
            for run, step in conn.execute(
                "INSERT INTO history (run_id, step, data)"
                " SELECT r, s, d::json FROM unnest(%s::bigint[], %s::bigint[], %s::text[])"
                " AS u(r, s, d) ON CONFLICT (run_id, step) DO NOTHING RETURNING run_id, step",
                columns(chunk, 3),
            )
        }
        out.copied.history += len(added)
        kept = [row for row in chunk if (row[0], row[1]) not in added]
        theirs = {
            (int(run), int(step)): str(text)
            for run, step, text in conn.execute(
                "SELECT h.run_id, h.step, h.data::text FROM unnest(%s::bigint[], %s::bigint[])"
                " AS u(r, s) JOIN history AS h ON h.run_id = u.r AND h.step = u.s",
                columns([row[:2] for row in kept], 2),
            )
        }
        differing: dict[int, int] = {}
        for run, step, text in kept:
            if same_json(theirs[(run, step)], text):
                out.present.history += 1
            else:
                differing[run] = differing.get(run, 0) + 1
        for run, count in differing.items():
            out.conflicts.append(
                Conflict(
                    f"run {run_names[run]}",
                    f"{count} history step(s) hold other rows on the server; kept the server's",
                )
            )
    return out
