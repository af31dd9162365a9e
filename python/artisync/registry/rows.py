"""The registry's rows as the model's records, for both database backends.

SQLite and PostgreSQL select a version, a run or a sweep with the same columns in the
same order (:data:`VERSION_COLUMNS`, :data:`RUN_COLUMNS`, :data:`SWEEP_COLUMNS`;
``artisync_commit_versions`` answers a version's columns in that order too), so one
function turns a row into its record. A JSON column arrives as text from SQLite and
parsed from psycopg; :func:`json_object` and :func:`json_list` take either.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Final

from artisync.errors import RegistryError
from artisync.registry.model import LATEST, Run, Sweep, Version

__all__ = [
    "RUN_COLUMNS",
    "SWEEP_COLUMNS",
    "VERSION_COLUMNS",
    "json_list",
    "json_object",
    "run_from_row",
    "sweep_from_row",
    "version_from_row",
]

VERSION_COLUMNS: Final = """
    SELECT v.id, p.name, p.entity, c.name, c.type, v.idx, v.digest, v.manifest_key,
           v.size, v.file_count, v.description, v.metadata, v.created_at, r.run_id,
           v.ttl_seconds, v.state, v.collection_id, v.store
    FROM versions AS v
    JOIN collections AS c ON c.id = v.collection_id
    JOIN projects AS p ON p.id = c.project_id
    LEFT JOIN runs AS r ON r.id = v.run_id
"""
"""A version's row (``v``, ``c``, ``p``, ``r``), to be followed by joins and a WHERE."""

COLLECTION: Final = 16
"""Where :data:`VERSION_COLUMNS` has the version's collection key."""

RUN_COLUMNS: Final = """
    SELECT r.run_id, p.name, p.entity, r.name, r.job_type, r.group_name, r.config,
           r.created_at, r.summary, r.state, r.updated_at, r.tags, r.notes, r.sweep_id
    FROM runs AS r
    JOIN projects AS p ON p.id = r.project_id
"""
"""A run's row (``r``, ``p``), to be followed by joins and a WHERE."""


SWEEP_COLUMNS: Final = """
    SELECT s.sweep_id, p.name, p.entity, s.config, s.created_at, s.state
    FROM sweeps AS s
    JOIN projects AS p ON p.id = s.project_id
"""
"""A sweep's row (``s``, ``p``), to be followed by a WHERE."""


def _parsed(value: object) -> object:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return None
    return value


def json_object(value: object) -> dict[str, Any]:
    """A JSON column's mapping, from its text (SQLite) or its parsed value (psycopg)."""
    parsed = _parsed(value)
    if not isinstance(parsed, dict):
        raise RegistryError(
            f"registry holds a non-object JSON value where a mapping belongs: {value!r:.80}"
        )
    return parsed


def json_list(value: object) -> list[str]:
    """A JSON column's list of strings (a run's tags), from its text or parsed value."""
    parsed = _parsed(value)
    if not isinstance(parsed, list) or not all(isinstance(item, str) for item in parsed):
        raise RegistryError(
            f"registry holds a JSON value where a list of strings belongs: {value!r:.80}"
        )
    return parsed


def version_from_row(
    row: Sequence[Any], *, aliases: list[str], tags: list[str], latest: bool
) -> Version:
    """The :class:`Version` of a :data:`VERSION_COLUMNS` row, with its aliases and tags
    (``latest`` among the aliases when it is the collection's highest live version)."""
    (vid, project, entity, name, type_, idx, digest, manifest_key, size, file_count) = row[:10]
    (description, metadata, created_at, run_id, ttl_seconds, state) = row[10:16]
    return Version(
        id=vid,
        project=project,
        entity=entity,
        name=name,
        type=type_,
        index=int(idx),
        digest=digest,
        manifest_key=manifest_key,
        size=int(size),
        file_count=int(file_count),
        description=description,
        metadata=json_object(metadata),
        aliases=sorted([*aliases, LATEST] if latest else aliases),
        tags=sorted(tags),
        created_at=float(created_at),
        run_id=run_id,
        ttl_seconds=ttl_seconds,
        state=state,
        store=row[17],
    )


def run_from_row(row: Sequence[Any]) -> Run:
    """The :class:`Run` of a :data:`RUN_COLUMNS` row."""
    (run_id, project, entity, name, job_type, group, config, created_at) = row[:8]
    summary, state, updated_at, tags, notes, sweep = row[8:]
    return Run(
        id=run_id,
        project=project,
        entity=entity,
        name=name,
        job_type=job_type,
        group=group,
        config=json_object(config),
        created_at=float(created_at),
        summary=json_object(summary),
        state=state,
        updated_at=float(updated_at),
        tags=json_list(tags),
        notes=notes,
        sweep=sweep,
    )


def sweep_from_row(row: Sequence[Any]) -> Sweep:
    """The :class:`Sweep` of a :data:`SWEEP_COLUMNS` row."""
    sweep_id, project, entity, config, created_at, state = row
    return Sweep(
        id=sweep_id,
        project=project,
        entity=entity,
        config=json_object(config),
        created_at=float(created_at),
        state=state,
    )
