"""What ``artisync ls`` prints: a project's artifacts, or one artifact's versions.

Each listing has a text form for people (aligned columns, sizes like ``1.5 MiB``,
ages like ``3m ago``) and a ``*_json`` twin for scripts (plain dicts, exact numbers,
ISO 8601 UTC timestamps). They are pure functions of the registry records they are
given; ``now`` (seconds since the epoch) is a parameter so that output is testable.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from artisync.registry.model import Collection, Version
from artisync.sizes import human_size
from artisync.views.terminal import printable

__all__ = [
    "DIGEST_CHARS",
    "collections_json",
    "collections_text",
    "human_age",
    "human_size",
    "iso_time",
    "version_json",
    "versions_json",
    "versions_text",
]

_SPANS = (  # (unit, seconds in it, shown up to this many of them)
    ("s", 1, 60),
    ("m", 60, 60),
    ("h", 3600, 24),
    ("d", 86400, 60),
    ("mo", 30 * 86400, 24),
    ("y", 365 * 86400, None),
)
DIGEST_CHARS = 8
"""How many characters of a digest the text listings show (like a short git hash)."""


def _span(seconds: float) -> str:
    for unit, length, limit in _SPANS:
        count = int(seconds // length)
        if limit is None or count < limit:
            return f"{count}{unit}"
    raise AssertionError("unreachable: the last span has no limit")


def human_age(seconds: float) -> str:
    """How long ago, from an age in seconds: ``just now``, ``42s ago``, ``3m ago``,
    ``5h ago``, ``2d ago``, ``4mo ago``, ``3y ago``. A negative age (a clock that
    moved back) reads ``just now``."""
    if seconds < 1:
        return "just now"
    return f"{_span(seconds)} ago"


def _expires(expires_at: float | None, now: float) -> str:
    if expires_at is None:
        return ""
    left = expires_at - now
    return "expired" if left <= 0 else f"in {_span(max(left, 1))}"


def iso_time(timestamp: float | None) -> str | None:
    """Seconds since the epoch as ISO 8601 in UTC with milliseconds, or None."""
    if timestamp is None:
        return None
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="milliseconds")


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]], right: set[int]) -> str:
    """Aligned columns, two spaces apart; the columns in ``right`` are right-aligned.

    Cells are shown with their control characters escaped (see ``terminal.py``).
    """
    headers = [printable(cell) for cell in headers]
    rows = [[printable(cell) for cell in cells] for cells in rows]
    widths = [max(len(cells[i]) for cells in [headers, *rows]) for i in range(len(headers))]
    lines = []
    for cells in [headers, *rows]:
        padded = [
            cell.rjust(width) if i in right else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(cells, widths, strict=True))
        ]
        lines.append("  ".join(padded).rstrip())
    return "\n".join(lines)


def _now(now: float | None) -> float:
    return time.time() if now is None else now


def collections_text(
    collections: Sequence[Collection],
    latest: Mapping[str, Version | None],
    *,
    now: float | None = None,
) -> str:
    """A project's artifacts: name, type, version count, and the latest version's
    label, size and age. ``latest`` maps each collection's name to its latest
    version (None when every version was deleted)."""
    if not collections:
        return "no artifacts"
    current = _now(now)
    rows = []
    for collection in collections:
        version = latest.get(collection.name)
        rows.append(
            [
                collection.name,
                collection.type,
                str(collection.version_count),
                version.version if version else "-",
                human_size(version.size) if version else "-",
                human_age(current - version.created_at) if version else "-",
            ]
        )
    headers = ["NAME", "TYPE", "VERSIONS", "LATEST", "SIZE", "UPDATED"]
    return _table(headers, rows, right={2, 4})


def _latest_json(version: Version | None) -> dict[str, Any] | None:
    if version is None:
        return None
    return {
        "version": version.version,
        "id": version.id,
        "size": version.size,
        "file_count": version.file_count,
        "digest": version.digest,
        "aliases": list(version.aliases),
        "created_at": iso_time(version.created_at),
    }


def collections_json(
    collections: Sequence[Collection], latest: Mapping[str, Version | None]
) -> list[dict[str, Any]]:
    """:func:`collections_text` as plain dicts, one per artifact."""
    return [
        {
            "entity": collection.entity,
            "project": collection.project,
            "name": collection.name,
            "type": collection.type,
            "version_count": collection.version_count,
            "created_at": iso_time(collection.created_at),
            "latest": _latest_json(latest.get(collection.name)),
        }
        for collection in collections
    ]


def versions_text(versions: Sequence[Version], *, now: float | None = None) -> str:
    """An artifact's versions: label, aliases, size, file count, age and short digest;
    tags and expiry too when some version has them."""
    if not versions:
        return "no versions"
    current = _now(now)
    with_tags = any(v.tags for v in versions)
    with_ttl = any(v.ttl_seconds is not None for v in versions)
    headers = ["VERSION", "ALIASES", "SIZE", "FILES", "CREATED", "DIGEST"]
    headers += ["TAGS"] * with_tags + ["EXPIRES"] * with_ttl
    rows = []
    for version in versions:
        cells = [
            version.version,
            ", ".join(version.aliases),
            human_size(version.size),
            str(version.file_count),
            human_age(current - version.created_at),
            version.digest[:DIGEST_CHARS],
        ]
        cells += [", ".join(version.tags)] * with_tags
        cells += [_expires(version.expires_at, current)] * with_ttl
        rows.append(cells)
    return _table(headers, rows, right={2, 3})


def version_json(version: Version) -> dict[str, Any]:
    """One version as a plain dict: every field, timestamps in ISO 8601."""
    return {
        "version": version.version,
        "index": version.index,
        "id": version.id,
        "qualified_name": version.qualified_name,
        "entity": version.entity,
        "project": version.project,
        "name": version.name,
        "type": version.type,
        "aliases": list(version.aliases),
        "tags": list(version.tags),
        "size": version.size,
        "file_count": version.file_count,
        "digest": version.digest,
        "description": version.description,
        "metadata": version.metadata,
        "run_id": version.run_id,
        "created_at": iso_time(version.created_at),
        "ttl_seconds": version.ttl_seconds,
        "expires_at": iso_time(version.expires_at),
    }


def versions_json(versions: Sequence[Version]) -> list[dict[str, Any]]:
    """:func:`versions_text` as plain dicts, one per version."""
    return [version_json(version) for version in versions]
