"""Sends what a run records (history rows, config, summary, tags, notes) in the background.

``run.log`` never waits for the registry: rows and changes collect here and a thread
sends them every :data:`FLUSH_INTERVAL` seconds, or at once when :data:`FLUSH_ROWS` rows
wait. A send that fails because the registry is away keeps its rows for the next one;
``close()`` (at ``finish``) sends what is left and raises if it cannot.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

from artisync.errors import InvalidInputError, NotFoundError

__all__ = ["FLUSH_INTERVAL", "FLUSH_ROWS", "Batch", "RunRecorder"]

FLUSH_INTERVAL: Final = 2.0
FLUSH_ROWS: Final = 500
_log = logging.getLogger(__name__)


@dataclass(slots=True)
class Batch:
    """What one send carries: rows in step order, and which fields changed."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    changed: set[str] = field(default_factory=set)  # "config", "summary", "run"

    def __bool__(self) -> bool:
        return bool(self.rows or self.changed)


class RunRecorder:
    """Buffers a run's records and hands them to ``send`` from a background thread."""

    def __init__(
        self, send: Callable[[Batch], None], *, what: str, interval: float = FLUSH_INTERVAL
    ) -> None:
        self._send = send
        self._what = what
        self._interval = interval
        self._wake = threading.Condition()
        self._pending = Batch()
        self._sending = threading.Lock()
        self._closed = False
        self._thread: threading.Thread | None = None

    def add_rows(self, rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        with self._wake:
            self._pending.rows.extend(rows)
            if len(self._pending.rows) >= FLUSH_ROWS:
                self._wake.notify()
        self._ensure_thread()

    def changed(self, what: str) -> None:
        """Mark ``what`` (``"config"``, ``"summary"``, ``"run"``) as to be sent."""
        with self._wake:
            self._pending.changed.add(what)
        self._ensure_thread()

    def _ensure_thread(self) -> None:
        if self._thread is None and not self._closed:
            with self._wake:
                if self._thread is None:
                    self._thread = threading.Thread(
                        target=self._loop, name=f"artisync-{self._what}", daemon=True
                    )
                    self._thread.start()

    def _loop(self) -> None:
        while True:
            with self._wake:
                if not self._closed:
                    self._wake.wait(self._interval)
                if self._closed:
                    return
            try:
                self.flush()
            except Exception as e:  # kept for the next flush; finish() raises
                _log.warning("could not record %s yet, retrying: %s", self._what, e)

    def flush(self) -> None:
        """Send everything buffered now; on a failure keep it (or drop rows the registry
        refuses for good, with a warning) and raise."""
        with self._sending:
            with self._wake:
                batch, self._pending = self._pending, Batch()
            if not batch:
                return
            try:
                self._send(batch)
            except (InvalidInputError, NotFoundError) as e:
                _log.warning("the registry refused %s: %s (dropped)", self._what, e)
                raise
            except BaseException:
                with self._wake:
                    batch.rows.extend(self._pending.rows)
                    batch.changed |= self._pending.changed
                    self._pending = batch
                raise

    def abandon(self) -> None:
        """Stop the thread and drop what was not sent."""
        with self._wake:
            self._closed = True
            self._pending = Batch()
            self._wake.notify()

    def close(self) -> None:
        """Stop the thread and send what is left (raises if that fails)."""
        with self._wake:
            self._closed = True
            self._wake.notify()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join()
        self.flush()
