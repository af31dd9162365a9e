"""Moving a node to a server: copy an embedded (SQLite) registry into the server's
PostgreSQL database, keeping every id, number, time and answer it gave.

:func:`import_registry` reads the node's ``registry.db`` read-only, as one snapshot (the
daemon may be running: ``importing.source``), and writes the server's database in steps,
each one transaction: projects, runs and sweeps; then collections, whole, a batch at a
time, with their versions (tombstones included, so numbers are never given out again),
tags, aliases, submissions (the idempotency map) and parts (``importing.versions``); then
lineage, in the order it was recorded, and runs' history, a batch of rows at a time
(``importing.target``). A step that fails or is
killed leaves the database as the previous step left it, and every step finds what an
earlier run already copied, so running the import again completes it, and running it
once more changes nothing.

The target is usually a server other nodes already use: each node imports its own home
into it. Records are matched by what names them (entity/project, run id, artifact name,
version id, submission id); what the server holds otherwise is reported as a conflict and
left as the server has it. docs/decisions.md ("Moving a node's registry to the server")
gives the rules and why.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from artisync.crashpoints import crash_point
from artisync.registry.contract import check_store
from artisync.registry.importing.report import Conflict, Counts, ImportReport
from artisync.registry.importing.source import SourceSnapshot
from artisync.registry.importing.target import (
    Outcome,
    merge_edges,
    merge_history,
    merge_runs,
    merge_sweeps,
)
from artisync.registry.importing.versions import CollectionWork, merge_collections
from artisync.registry.postgres.connection import Pool

__all__ = ["Conflict", "Counts", "ImportReport", "import_registry"]

BATCH_VERSIONS = 5000
"""Versions per transaction, about: collections are never split, so a batch holds whole
collections until it reaches this many versions (a larger collection is a batch alone)."""


def import_registry(
    sqlite_path: Path,
    dsn: str,
    *,
    renumber: bool = False,
    default_store: str | None = None,
    batch_versions: int = BATCH_VERSIONS,
    timeout: float = 30.0,
) -> ImportReport:
    """Copy the embedded registry at ``sqlite_path`` into the PostgreSQL database ``dsn``.

    Idempotent: what the database already holds the same is counted in
    ``ImportReport.present`` and left alone. ``renumber`` lets a collection's new versions
    whose numbers the server gave to other versions take the numbers after the server's
    highest (``ImportReport.renumbered`` lists them); without it they are not copied and a
    conflict says so. ``default_store`` is the store the node's versions that recorded
    none are in (its configured store, a URL or an absolute path): they are copied as
    versions of that store, so that readers on other nodes find their content. The
    schema is created or upgraded first, as a server does, so an empty database will do.
    ``timeout`` bounds the waits for either database.

    Raises :class:`~artisync.errors.RegistryError` when either registry cannot be opened
    or a step fails (the steps before it stay done; run the import again to finish).
    """
    started = time.monotonic()
    check_store(default_store, what=f"the versions of {sqlite_path}")
    with SourceSnapshot(Path(sqlite_path), default_store=default_store, timeout=timeout) as source:
        pool = Pool(dsn, min_size=1, max_size=1, timeout=timeout)
        try:
            report = ImportReport(source=str(sqlite_path), target=pool.where)
            project_ids, run_ids, outcome = pool.write(
                "importing projects and runs",
                functools.partial(merge_runs, projects=source.projects, runs=source.runs),
            )
            _add(report, outcome)
            outcome = pool.write(
                "importing sweeps",
                functools.partial(
                    merge_sweeps,
                    sweeps=source.sweeps,
                    projects=source.projects,
                    project_ids=project_ids,
                ),
            )
            _add(report, outcome)
            crash_point("after_import_step")
            for batch in _batches(source, max(1, batch_versions)):
                outcome = pool.write(
                    f"importing {_describe(batch)}",
                    functools.partial(
                        merge_collections,
                        works=batch,
                        project_ids=project_ids,
                        run_ids=run_ids,
                        renumber=renumber,
                    ),
                )
                _add(report, outcome)
                crash_point("after_import_step")
            for edges in source.edges():
                outcome = pool.write(
                    "importing lineage",
                    functools.partial(merge_edges, edges=edges, run_ids=run_ids),
                )
                _add(report, outcome)
                crash_point("after_import_step")
            run_names = _run_names(source, run_ids)
            for rows in source.history():
                outcome = pool.write(
                    "importing run history",
                    functools.partial(
                        merge_history, rows=rows, run_ids=run_ids, run_names=run_names
                    ),
                )
                _add(report, outcome)
                crash_point("after_import_step")
        finally:
            pool.close()
    report.seconds = time.monotonic() - started
    return report


def _batches(source: SourceSnapshot, size: int) -> Iterator[list[CollectionWork]]:
    """The source's collections, whole, in batches of about ``size`` versions."""
    projects = {p.key: p for p in source.projects}
    batch: list[CollectionWork] = []
    versions = 0
    for collection in source.collections:
        project = projects[collection.project_key]
        content = source.content(collection.key)
        batch.append(CollectionWork(collection, project.entity, project.name, content))
        versions += len(content.versions)
        if versions >= size:
            yield batch
            batch, versions = [], 0
    if batch:
        yield batch


def _run_names(source: SourceSnapshot, run_ids: dict[int, int]) -> dict[int, str]:
    """``entity/project/run_id`` of each run, by its key on the server (for conflicts)."""
    projects = {p.key: f"{p.entity}/{p.name}" for p in source.projects}
    return {run_ids[r.key]: f"{projects[r.project_key]}/{r.run_id}" for r in source.runs}


def _describe(batch: Sequence[CollectionWork]) -> str:
    first = batch[0].label
    return f"artifact {first}" if len(batch) == 1 else f"{len(batch)} artifacts from {first}"


def _add(report: ImportReport, outcome: Outcome) -> None:
    report.copied.add(outcome.copied)
    report.present.add(outcome.present)
    report.runs_updated += outcome.runs_updated
    report.conflicts.extend(outcome.conflicts)
    report.renumbered.extend(outcome.renumbered)
