"""The rules every registry backend keeps for what a run holds beside its artifacts
(W&B's tags, notes and sweep, and its history rows) and for sweeps, so that SQLite,
PostgreSQL and the clients of the server and the daemon accept and refuse the same
values in the same words: which tags, notes and sweep ids a run takes, what a history row
is and how large a batch may be, and when two sweep configs are the same.

History bounds: a batch of at most :data:`MAX_HISTORY_ROWS` rows, each at most
:data:`MAX_HISTORY_ROW_BYTES` of JSON, :data:`MAX_HISTORY_BATCH_BYTES` in all. Clients
whose requests have a smaller body limit send a batch in parts
(:func:`history_chunks`), which a row's step makes safe: a step written again replaces
its row.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Final, TypeVar

from artisync.errors import InvalidInputError
from artisync.names import check_list_length, check_notes, validate_run_tag, validate_sweep_id
from artisync.registry.contract import MAX_JSON_DEPTH, json_depth, to_json

T = TypeVar("T")

__all__ = [
    "HISTORY_REQUEST_BYTES",
    "MAX_HISTORY_BATCH_BYTES",
    "MAX_HISTORY_ROWS",
    "MAX_HISTORY_ROW_BYTES",
    "MAX_STEP",
    "check_run_fields",
    "describe_missing_sweep",
    "describe_sweep_conflict",
    "history_batches",
    "history_chunks",
    "history_rows",
    "same_json",
    "sweep_config",
]


MAX_HISTORY_ROWS: Final = 1_000
"""Most history rows one ``append_history`` call takes: a client sends a long history
in batches."""

MAX_HISTORY_ROW_BYTES: Final = 256 * 1024
"""Largest history row, as JSON text: far beyond scalars and W&B's media references and
histograms; tables and images belong in artifacts."""

MAX_HISTORY_BATCH_BYTES: Final = 4 * 1024 * 1024
"""Largest ``append_history`` batch, its rows' JSON text together: one transaction's
worth."""

HISTORY_REQUEST_BYTES: Final = 512 * 1024
"""How much row text the HTTP and daemon clients send in one request, splitting a batch
into several (safe, since a row's step makes its write idempotent): under the daemon's
1 MiB body limit and a server's default 4 MiB."""

MAX_STEP: Final = 2**63 - 1
"""The highest ``_step`` a history row may have: what a 64-bit column holds."""


def check_run_fields(
    run_id: str,
    tags: Sequence[str] | None,
    notes: str | None,
    sweep: str | None,
) -> dict[str, Any]:
    """A run's ``tags`` (each once, in the order given), ``notes`` and ``sweep`` as
    ``ensure_run`` stores them, None meaning "leave as it is", or
    :class:`InvalidInputError` naming what was wrong.

    Tags follow W&B's run tag rule (``names.validate_run_tag``), at most
    ``names.LIST_MAX_ITEMS`` of them; notes are bounded text (``names.check_notes``);
    a sweep id follows a run id's rule (``names.validate_sweep_id``).
    """
    kept: list[str] | None = None
    if tags is not None:
        if isinstance(tags, str) or not isinstance(tags, Sequence):
            raise InvalidInputError(
                f"tags of run {run_id!r} must be a list of strings, got {type(tags).__name__}"
                + (f" ({tags!r:.60}: wrap one tag in a list)" if isinstance(tags, str) else "")
            )
        check_list_length(list(tags), f"tags of run {run_id!r}", per="run")
        kept = list(dict.fromkeys(validate_run_tag(tag) for tag in tags))
    if sweep is not None:
        validate_sweep_id(sweep)
    return {"tags": kept, "notes": check_notes(notes), "sweep": sweep}


def history_rows(rows: Sequence[Mapping[str, Any]], *, run: str) -> list[tuple[int, str]]:
    """``(step, JSON text)`` of each of ``rows``, by step (a step given twice keeps its
    last row), or :class:`InvalidInputError` naming the first bad row of run ``run``.

    Every row is a JSON object with an int ``_step`` >= 0 (the SDK numbers them, as
    ``run.log`` does), nested at most :data:`MAX_JSON_DEPTH` deep, at most
    :data:`MAX_HISTORY_ROW_BYTES` as JSON; a batch holds at most
    :data:`MAX_HISTORY_ROWS` rows and :data:`MAX_HISTORY_BATCH_BYTES`.
    """
    if isinstance(rows, Mapping | str | bytes) or not isinstance(rows, Sequence):
        raise InvalidInputError(
            f"history rows of run {run!r} must be a list of mappings (one per step), "
            f"got {type(rows).__name__}"
        )
    if len(rows) > MAX_HISTORY_ROWS:
        raise InvalidInputError(
            f"history of run {run!r}: {len(rows):,} rows given at once; at most "
            f"{MAX_HISTORY_ROWS:,} are taken per call, send the rest in further calls"
        )
    by_step: dict[int, str] = {}
    total = 0
    for i, row in enumerate(rows):
        what = f"history row {i} of run {run!r}"
        if not isinstance(row, Mapping):
            raise InvalidInputError(f"{what} must be a mapping, got {type(row).__name__}")
        step = row.get("_step")
        if isinstance(step, bool) or not isinstance(step, int) or not 0 <= step <= MAX_STEP:
            raise InvalidInputError(
                f"{what} must have '_step', a whole number from 0 to {MAX_STEP}; got "
                f"{'none' if '_step' not in row else repr(step)[:60]}"
            )
        if json_depth(dict(row)) > MAX_JSON_DEPTH:
            raise InvalidInputError(f"{what} nests deeper than {MAX_JSON_DEPTH} levels")
        text = to_json(row, what=what)
        if len(text) > MAX_HISTORY_ROW_BYTES:  # ASCII: json.dumps escapes the rest
            raise InvalidInputError(
                f"{what} (step {step}) is {len(text):,} bytes as JSON; at most "
                f"{MAX_HISTORY_ROW_BYTES:,} are taken: log large values (tables, images) "
                "as artifacts"
            )
        total += len(text)
        by_step[step] = text
    if total > MAX_HISTORY_BATCH_BYTES:
        raise InvalidInputError(
            f"history of run {run!r}: {total:,} bytes of rows given at once; at most "
            f"{MAX_HISTORY_BATCH_BYTES:,} are taken per call, send them in smaller batches"
        )
    return sorted(by_step.items())


def history_chunks(
    rows: Sequence[tuple[int, str]], max_bytes: int = HISTORY_REQUEST_BYTES
) -> Iterator[list[tuple[int, str]]]:
    """``rows`` (as :func:`history_rows` gives them) in consecutive groups of at most
    ``max_bytes`` of text each (a row larger than that alone), for clients that send a
    batch as several requests."""
    return _grouped(rows, [len(text) for _, text in rows], max_bytes, len(rows))


def history_batches(rows: Sequence[Mapping[str, Any]]) -> Iterator[list[Mapping[str, Any]]]:
    """``rows`` in consecutive batches that one ``append_history`` call takes: at most
    :data:`MAX_HISTORY_ROWS` rows and :data:`MAX_HISTORY_BATCH_BYTES` of JSON each."""
    sizes = [len(json.dumps(row)) for row in rows]
    return _grouped(rows, sizes, MAX_HISTORY_BATCH_BYTES, MAX_HISTORY_ROWS)


def _grouped(
    items: Sequence[T], sizes: Sequence[int], max_bytes: int, max_count: int
) -> Iterator[list[T]]:
    """``items`` in consecutive groups of at most ``max_count`` items and ``max_bytes``
    of ``sizes`` (an item larger than that alone)."""
    group: list[T] = []
    total = 0
    for item, size in zip(items, sizes, strict=True):
        if group and (len(group) >= max_count or total + size > max_bytes):
            yield group
            group, total = [], 0
        group.append(item)
        total += size
    if group:
        yield group


def sweep_config(config: Mapping[str, Any], *, sweep_id: str) -> str:
    """The sweep's ``config`` as JSON text, or :class:`InvalidInputError` naming it."""
    what = f"config of sweep {sweep_id!r}"
    if isinstance(config, Mapping) and json_depth(dict(config)) > MAX_JSON_DEPTH:
        raise InvalidInputError(f"{what} nests deeper than {MAX_JSON_DEPTH} levels")
    return to_json(config, what=what)


def same_json(stored: object, given: str) -> bool:
    """Whether ``stored`` (JSON text, or its parsed value) and ``given`` (JSON text) hold
    the same value, whatever their key order or spacing (1 and 1.0 differ)."""
    parsed = json.loads(stored) if isinstance(stored, str) else stored
    return json.dumps(parsed, sort_keys=True) == json.dumps(json.loads(given), sort_keys=True)


def describe_sweep_conflict(entity: str, project: str, sweep_id: str) -> str:
    """The message for ``create_sweep`` of an existing id with another config."""
    return (
        f"sweep {sweep_id!r} of project '{entity}/{project}' exists already with another "
        "config; a sweep's config does not change: pick another sweep id, or pass the "
        "config it was created with"
    )


def describe_missing_sweep(entity: str, project: str, sweep_id: str) -> str:
    """The message for a sweep that is not there (or in a project the caller may not
    see: the server answers both alike)."""
    return f"sweep {sweep_id!r} not found in project '{entity}/{project}'"
