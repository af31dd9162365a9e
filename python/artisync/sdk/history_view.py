"""A run's history as W&B's public ``Run.history()`` and ``Run.scan_history()`` give it.

The registry hands back every row of a run, by step (``Registry.run_history``); these
functions choose and shape what W&B's two calls return from them:

- ``history(samples, keys, x_axis, pandas, stream)``: at most ``samples`` rows, spread
  evenly over the run (the first and last kept); with ``keys``, only the rows that hold
  at least one of them, each cut to ``x_axis`` and the keys it holds; a pandas
  ``DataFrame`` when ``pandas`` is true and pandas is installed, else a list of dicts.
  ``stream="system"`` (machine metrics) is empty: artisync records none.
- ``scan_history(keys, page_size, min_step, max_step)``: every row with
  ``min_step <= _step < max_step``; with ``keys``, only the rows that hold all of them,
  each cut to ``_step`` and the keys.

Where W&B prints an error and returns an empty list for a bad argument (``history``),
these raise :class:`~artisync.errors.InvalidInputError` naming it, as ``scan_history``
does in W&B (a ``ValueError``).
"""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Iterator, Sequence
from typing import Any

from artisync.errors import InvalidInputError

__all__ = ["check_keys", "sampled", "scanned", "to_frame"]

STREAMS = ("default", "system")
"""W&B's history streams: the logged metrics, and machine metrics."""


def check_keys(keys: object, what: str) -> list[str] | None:
    """``keys`` if None or a list of strings, else :class:`InvalidInputError`."""
    if keys is None:
        return None
    if not isinstance(keys, list) or not all(isinstance(key, str) for key in keys):
        raise InvalidInputError(
            f"{what}: keys must be a list of strings (metric names), got {keys!r:.80}"
        )
    return keys


def _positive(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidInputError(f"{what} must be a whole number >= 1, got {value!r:.40}")
    return value


def sampled(
    rows: Sequence[dict[str, Any]],
    *,
    samples: int,
    keys: list[str] | None,
    x_axis: str,
    stream: str,
) -> list[dict[str, Any]]:
    """What ``history()`` returns of ``rows`` (all of a run's rows, by step), as dicts."""
    _positive(samples, "history(samples=...)")
    if stream not in STREAMS:
        raise InvalidInputError(
            f"history(stream={stream!r}): the stream is 'default' (logged metrics) or "
            "'system' (machine metrics)"
        )
    if keys and stream != "default":
        raise InvalidInputError("history(): keys can only be given with stream='default'")
    if stream == "system":
        return []  # artisync records no machine metrics
    chosen = list(rows)
    if keys:
        wanted = [x_axis, *keys]
        chosen = [
            {key: row[key] for key in wanted if key in row}
            for row in chosen
            if any(key in row for key in keys)
        ]
    return _spread(chosen, samples)


def _spread(rows: list[dict[str, Any]], samples: int) -> list[dict[str, Any]]:
    """At most ``samples`` of ``rows``, evenly spaced, the first and the last kept."""
    if len(rows) <= samples:
        return rows
    if samples == 1:
        return rows[:1]
    last = len(rows) - 1
    return [rows[round(i * last / (samples - 1))] for i in range(samples)]


def scanned(
    rows: Sequence[dict[str, Any]],
    *,
    keys: list[str] | None,
    page_size: int,
    min_step: int | None,
    max_step: int | None,
) -> Iterator[dict[str, Any]]:
    """What ``scan_history()`` yields of ``rows`` (all of a run's rows, by step); bad
    arguments are refused at once, before the first row is asked for."""
    _positive(page_size, "scan_history(page_size=...)")
    low = 0 if min_step is None else min_step
    for bound, name in ((low, "min_step"), (max_step, "max_step")):
        if bound is not None and (isinstance(bound, bool) or not isinstance(bound, int)):
            raise InvalidInputError(
                f"scan_history({name}=...) must be a whole number (a step), got {bound!r:.40}"
            )
    return _scan(rows, keys, low, max_step)


def _scan(
    rows: Sequence[dict[str, Any]], keys: list[str] | None, low: int, max_step: int | None
) -> Iterator[dict[str, Any]]:
    for row in rows:
        step = row.get("_step", 0)
        if step < low or (max_step is not None and step >= max_step):
            continue
        if keys:
            if not all(key in row for key in keys):
                continue
            yield {key: row[key] for key in ["_step", *keys] if key in row}
        else:
            yield row


def to_frame(rows: list[dict[str, Any]], pandas: bool) -> Any:
    """``rows`` as a pandas ``DataFrame`` when ``pandas`` and pandas is installed, else
    as they are (with a warning when pandas was asked for, as W&B warns)."""
    if not pandas:
        return rows
    try:
        module = importlib.import_module("pandas")
    except ImportError:
        warnings.warn(
            "history(pandas=True) returns a list of dicts: pandas is not installed "
            "(pip install pandas), or call history(pandas=False)",
            stacklevel=3,
        )
        return rows
    return module.DataFrame.from_records(rows)
