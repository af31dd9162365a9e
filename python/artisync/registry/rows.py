"""The registry's rows as the model's records, for both database backends.

SQLite and PostgreSQL select a version or a run with the same columns in the same order
(:data:`VERSION_COLUMNS`, :data:`RUN_COLUMNS`; ``artisync_commit_versions`` answers a
version's columns in that order too), so one function turns a row into its record. A
JSON column arrives as text from SQLite and parsed from psycopg; :func:`json_object`
takes either.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Final

from artisync.errors import RegistryError
from artisync.registry.model import LATEST, Run, Version

__all__ = ["RUN_COLUMNS", "VERSION_COLUMNS", "json_object", "run_from_row", "version_from_row"]

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
           r.created_at, r.summary, r.state, r.updated_at
    FROM runs AS r
    JOIN projects AS p ON p.id = r.project_id
"""
"""A run's row (``r``, ``p``), to be followed by joins and a WHERE."""


def json_object(value: object) -> dict[str, Any]:
    """A JSON column's mapping, from its text (SQLite) or its parsed value (psycopg)."""
    parsed = value
    if isinstance(value, str):
        try:
            parsed = json.loads(value)
        except ValueError:
            parsed = None
    if not isinstance(parsed, dict):
        raise RegistryError(
            f"registry holds a non-object JSON value where a mapping belongs: {value!r:.80}"
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
    summary, state, updated_at = row[8:]
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
    )
