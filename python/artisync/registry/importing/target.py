"""Writing an embedded registry's records into the server's PostgreSQL database, for
``import_registry``: projects and runs first, lineage last (the collections between them
are ``importing.versions``'s).

Each function runs inside the caller's transaction and returns what it did instead of
changing shared state, so that a transaction the pool runs again (after a deadlock)
counts once. The merge rules (docs/decisions.md, "Moving a node's registry to the
server") in short: records are matched by what names them everywhere (entity and project
name, run id, artifact name, version id, submission id, alias); what matches is left as
the server has it; what is missing is added with its ids, numbers and times; what the
server holds otherwise is a :class:`Conflict`, never overwritten. Runs are the one
exception: the same run id is the same run (W&B's resume), and the side that changed it
last wins.

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
from artisync.registry.importing.source import Edge, SourceProject, SourceRun
from artisync.registry.model import COMMITTED
from artisync.registry.postgres.connection import Conn

__all__ = ["Outcome", "chunks", "columns", "merge_edges", "merge_runs"]

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
        " r.state, r.created_at, r.updated_at FROM unnest(%s::bigint[], %s::text[])"
        " WITH ORDINALITY AS s(pid, rid, o)"
        " JOIN runs AS r ON r.project_id = s.pid AND r.run_id = s.rid",
        columns(keys, 2),
    ):
        existing[runs[row[0] - 1].key] = tuple(row[1:])
    new: list[tuple[Any, ...]] = []
    newer: list[tuple[Any, ...]] = []
    for run, (pid, run_id) in zip(runs, keys, strict=True):
        mine = (run.name, run.job_type, run.group, run.config, run.summary, run.state)
        theirs = existing.get(run.key)
        if theirs is None:
            new.append((pid, run_id, *mine, run.created_at, run.updated_at))
        elif theirs[:6] == mine or run.updated_at <= theirs[7]:
            # The same, or changed on the server since (a node that already commits
            # there): the server's record is the newer one.
            out.present.runs += 1
        else:
            newer.append((*mine, run.created_at, run.updated_at, pid, run_id))
    for chunk in chunks(new):
        cursor = conn.execute(
            "INSERT INTO runs (project_id, run_id, name, job_type, group_name, config, summary,"
            " state, created_at, updated_at)"
            " SELECT pid, rid, n, j, g, cf, sm, st, c, u FROM unnest(%s::bigint[], %s::text[],"
            " %s::text[], %s::text[], %s::text[], %s::json[], %s::json[], %s::text[],"
            " %s::float8[], %s::float8[]) WITH ORDINALITY AS s(pid, rid, n, j, g, cf, sm, st,"
            " c, u, o) ORDER BY o ON CONFLICT (project_id, run_id) DO NOTHING",
            columns(chunk, 10),
        )
        out.copied.runs += cursor.rowcount
        # A run the node's daemon created on the server meanwhile: already there.
        out.present.runs += len(chunk) - cursor.rowcount
    if newer:
        with conn.cursor() as cursor:
            cursor.executemany(
                "UPDATE runs SET name = %s, job_type = %s, group_name = %s, config = %s::json,"
                " summary = %s::json, state = %s, created_at = least(created_at, %s),"
                " updated_at = %s WHERE project_id = %s AND run_id = %s",
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


# -- lineage ----------------------------------------------------------------------------


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
