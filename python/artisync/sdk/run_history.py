"""``run.log``'s rows: W&B's step and commit rules, and the summary they fill.

Each call merges its values into the row being built. As in W&B:

- ``log(d)`` (no ``step``, no ``commit``) completes the row at the current step, and
  the next call starts the next step;
- ``log(d, commit=False)`` adds to the row and leaves it open;
- ``log(d, step=n)`` with ``n`` above the current step completes the open row (if
  any) and moves to step ``n``; the row stays open until a later step, ``commit=True``
  or the end of the run. A step below the current one is ignored with a warning
  (steps only go up).

A completed row carries ``_step``, ``_runtime`` (seconds since the run started) and
``_timestamp`` (Unix time), and sets the summary's keys to its values.
"""

from __future__ import annotations

import json
import threading
import time
import warnings
from collections.abc import Mapping
from typing import Any, Final

from artisync.errors import InvalidInputError
from artisync.registry.run_rules import MAX_HISTORY_ROW_BYTES
from artisync.sdk.run_config import json_friendly
from artisync.sdk.validation import require_json

__all__ = ["MAX_ROW_BYTES", "History"]

MAX_ROW_BYTES: Final = MAX_HISTORY_ROW_BYTES
"""The largest history row, as JSON (the registry's bound): media and tables belong in
artifacts."""


class History:
    """The rows of one run's ``log`` calls; thread-safe."""

    def __init__(self, *, first_step: int = 0, started_at: float | None = None) -> None:
        self._lock = threading.Lock()
        self._step = first_step
        self._open: dict[str, Any] = {}
        self._started = time.time() if started_at is None else started_at

    @property
    def step(self) -> int:
        """The step the next completed row gets (W&B's ``run.step``)."""
        with self._lock:
            return self._step

    def log(
        self, data: Mapping[str, Any], step: int | None = None, commit: bool | None = None
    ) -> list[dict[str, Any]]:
        """Merge ``data`` into the open row; return the rows this call completed."""
        if not isinstance(data, Mapping):
            raise InvalidInputError(f"run.log takes a dict, not {type(data).__name__}")
        if step is not None and (isinstance(step, bool) or not isinstance(step, int) or step < 0):
            raise InvalidInputError(f"Invalid step {step!r}: must be an int >= 0")
        if commit is not None and not isinstance(commit, bool):
            raise InvalidInputError(f"Invalid commit {commit!r}: must be True, False or None")
        values = {}
        for key, value in data.items():
            if not isinstance(key, str):
                raise InvalidInputError(f"run.log keys are strings, not {type(key).__name__}")
            friendly = json_friendly(value)
            require_json(friendly, f"run.log value {key!r}")
            values[key] = friendly
        done: list[dict[str, Any]] = []
        with self._lock:
            if step is not None and step < self._step:
                warnings.warn(
                    f"Tried to log to step {step} that is less than the current step "
                    f"{self._step}. Steps must be monotonically increasing, so this data "
                    "will be ignored.",
                    stacklevel=3,
                )
                return done
            if step is not None and step > self._step:
                if self._open:
                    done.append(self._complete())
                self._step = step
            merged = {**self._open, **values}
            size = len(json.dumps(merged, allow_nan=True))
            if size > MAX_ROW_BYTES:
                raise InvalidInputError(
                    f"run.log row of step {self._step} is {size:,} bytes as JSON, above "
                    f"{MAX_ROW_BYTES:,}: log large values (arrays, tables, media) in an "
                    "artifact instead"
                )
            self._open = merged
            if commit or (step is None and commit is None):
                done.append(self._complete())
        return done

    def close(self) -> list[dict[str, Any]]:
        """Complete the open row, if any (the run ends)."""
        with self._lock:
            return [self._complete()] if self._open else []

    def _complete(self) -> dict[str, Any]:
        now = time.time()
        row = {**self._open, "_step": self._step, "_runtime": now - self._started}
        row["_timestamp"] = now
        self._open = {}
        self._step += 1
        return row
