"""What the daemon is doing right now: each submission's stage, times and byte counters.

The pipeline reports to a :class:`ProgressBoard`: a submission is *claimed*, named
(:meth:`ProgressBoard.identify`), sized once its items are known, and goes through
its stages, each ended by a :meth:`SubmissionProgress.lap` that logs the stage and its
time. Bytes move in between, added by the Rust core and the stores to the
submission's :class:`~artisync.tracking.Tracked` counters while a call runs, so a
multi-GiB file shows progress before its hashing or upload returns. A stage that ends
also counts its bytes as done, for a store that does not count as it goes.

``GET /v1/progress`` serves :meth:`ProgressBoard.snapshot`; ``artisync status`` draws
it as bars; :mod:`artisync.daemon.metrics` listens to the board's events.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Final, Protocol

from artisync import _core
from artisync.logs import get_logger
from artisync.spool import Submission, seq_time_ns
from artisync.tracking import Tracked

__all__ = ["STAGES", "BoardListener", "ProgressBoard", "StatusCallback", "SubmissionProgress"]

StatusCallback = Callable[[str, str, dict[str, Any] | None], None]
"""Told ``(submission id, status, receipt or None)`` as a submission finishes."""

log = get_logger("artisync.daemon")

STAGES: Final = (
    "queued",  # claimed, not yet read
    "waiting",  # read, waiting for a pipeline slot
    "expand",
    "hash",
    "store",
    "manifest",
    "turn",  # stored, waiting for earlier versions of its collection to commit
    "commit",
    "receipt",
)
# The pipeline's stopwatch names the stage that just ended; this is the one it is in next.
_AFTER: Final = {
    "expand": "hash",
    "hash": "store",
    "store": "manifest",
    "manifest": "turn",
    "turn": "commit",
    "commit": "receipt",
    "receipt": "done",
}
# Below this many seconds in a stage a rate says more about timer noise than speed.
_MIN_RATE_SECONDS: Final = 0.2


class BoardListener(Protocol):
    """What wants to hear of the board's events (the metrics)."""

    def claimed(self, progress: SubmissionProgress) -> None:
        """A submission was claimed from the spool."""

    def lapped(self, progress: SubmissionProgress, stage: str, seconds: float) -> None:
        """A submission finished ``stage`` in ``seconds``."""

    def finished(self, progress: SubmissionProgress, status: str, result: dict[str, Any]) -> None:
        """A submission was committed or rejected (``status``), ``result`` its receipt."""

    def retried(self, progress: SubmissionProgress, error: Exception) -> None:
        """The store or registry failed transiently; the pipeline retries the step."""

    def store_failed(self, error: Exception) -> None:
        """The store failed and the pipeline went another way (no retry of its own)."""


class SubmissionProgress:
    """One submission on its way through the pipeline; also the pipeline's stopwatch."""

    def __init__(self, sub_id: str, seq: str, listener: BoardListener | None) -> None:
        self.tracked = Tracked(sub_id)
        self.seq = seq
        try:
            # When log_artifact returned (or the daemon accepted it): the seq says.
            self.accepted_at = seq_time_ns(seq) / 1e9
        except ValueError:
            self.accepted_at = time.time()
        self.claimed_at = time.time()
        self.project: str | None = None
        self.name: str | None = None
        self.stage = "queued"
        self.retrying: str | None = None
        self.files = 0
        self.hash_total = 0
        self.store_total = 0
        self.laps: dict[str, float] = {}
        now = time.monotonic()
        self._mark = now
        self._since: dict[str, float] = {"queued": now}
        self._listener = listener

    @property
    def id(self) -> str:
        """The submission's id."""
        return self.tracked.sub_id

    def begin(self, stage: str) -> None:
        """The submission enters ``stage`` now; its stopwatch starts from here."""
        self.stage = stage
        self._mark = self._since[stage] = time.monotonic()

    def sized(self, files: int, hash_total: int, store_total: int) -> None:
        """Its items are known: how many files, and how many bytes to hash and store."""
        self.files = files
        self.hash_total = hash_total
        self.store_total = store_total

    def lap(self, stage: str) -> None:
        """``stage`` is over: log it with its time and move to the next one."""
        now = time.monotonic()
        seconds = self.laps[stage] = now - self._mark
        self._mark = now
        counted: dict[str, int] = {}
        if stage == "hash":
            _complete(self.tracked.hashed, self.hash_total)
            counted = {"bytes": self.tracked.hashed.bytes}
        elif stage == "store":
            _complete(self.tracked.stored, self.store_total)
            counted = {"bytes": self.store_total, "files": self.files}
        self.stage = _AFTER.get(stage, "done")
        self._since[self.stage] = now
        self.retrying = None
        log.info("stage", sub=self.id, stage=stage, seconds=seconds, **counted)
        if self._listener is not None:
            self._listener.lapped(self, stage, seconds)

    def seconds_since_accepted(self) -> float:
        """Seconds since the submission was accepted (its log_artifact returned)."""
        return max(0.0, time.time() - self.accepted_at)

    def snapshot(self) -> dict[str, Any]:
        """The submission's progress as JSON: stage, counters, rates and ETA."""
        return {
            "id": self.id,
            "seq": self.seq,
            "project": self.project,
            "name": self.name,
            "stage": self.stage,
            "retrying": self.retrying,
            "accepted_at": self.accepted_at,
            "age_seconds": round(self.seconds_since_accepted(), 3),
            "files": self.files,
            "hash": self._transfer("hash", self.tracked.hashed, self.hash_total),
            "store": self._transfer("store", self.tracked.stored, self.store_total),
            "stages": {stage: round(seconds, 6) for stage, seconds in self.laps.items()},
        }

    def _transfer(self, stage: str, counter: _core.Progress, total: int) -> dict[str, Any]:
        done = counter.bytes
        rate = eta = None
        started = self._since.get(stage)
        if started is not None:
            ended = self._since.get(_AFTER[stage], time.monotonic())
            if ended - started >= _MIN_RATE_SECONDS:
                rate = done / (ended - started)
                if self.stage == stage and rate > 0:
                    eta = max(0, total - done) / rate
        return {
            "total": total,
            # A part sent twice (a retry) counts twice in the metrics, not past 100% here.
            "done": min(done, total) if total else done,
            "files_done": counter.files,
            "bytes_per_second": None if rate is None else round(rate),
            "eta_seconds": None if eta is None else round(eta, 1),
        }


def _complete(counter: _core.Progress, total: int) -> None:
    """Count a finished stage's bytes as done, for code that did not count as it went."""
    if counter.bytes < total:
        counter.add(total - counter.bytes)


class ProgressBoard:
    """Every submission the daemon holds, by id, until it is committed or rejected.

    Used from the event loop only; the counters inside are safe from any thread.
    """

    def __init__(self) -> None:
        self._active: dict[str, SubmissionProgress] = {}
        self.listener: BoardListener | None = None
        # Bytes of submissions no longer on the board, so the totals never go down.
        self._hashed_before = 0
        self._stored_before = 0

    def claimed(self, sub_id: str, seq: str) -> SubmissionProgress:
        """A submission was claimed (accepted over the socket or found in ``new/``)."""
        progress = SubmissionProgress(sub_id, seq, self.listener)
        self._active[sub_id] = progress
        log.info("claimed", sub=sub_id, seq=seq)
        if self.listener is not None:
            self.listener.claimed(progress)
        return progress

    def of(self, sub_id: str) -> SubmissionProgress:
        """The progress of a claimed submission (a detached one if it is unknown)."""
        progress = self._active.get(sub_id)
        return progress if progress is not None else SubmissionProgress(sub_id, "", None)

    def identify(self, sub: Submission) -> SubmissionProgress:
        """The submission has been read: note what it is; returns its progress."""
        progress = self.of(sub.id)
        progress.project, progress.name = sub.project, sub.artifact.name
        return progress

    def observe(self, on_status: StatusCallback) -> StatusCallback:
        """``on_status`` that also keeps the board up to date."""

        def observed(sub_id: str, status: str, result: dict[str, Any] | None) -> None:
            self._on_status(sub_id, status, result)
            on_status(sub_id, status, result)

        return observed

    def _on_status(self, sub_id: str, status: str, result: dict[str, Any] | None) -> None:
        progress = self._active.get(sub_id)
        if progress is None:
            return
        if status == "working":
            progress.begin("waiting")
        elif status == "retrying":
            progress.retrying = str((result or {}).get("reason") or "a transient failure")
        elif status in ("committed", "rejected"):
            self.forget(sub_id)
            if self.listener is not None:
                self.listener.finished(progress, status, result or {})

    def retried(self, sub_id: str, error: Exception) -> None:
        """The store or registry failed transiently for ``sub_id``; it is retried."""
        if self.listener is not None:
            self.listener.retried(self.of(sub_id), error)

    def store_failed(self, error: Exception) -> None:
        """The store failed and the pipeline went another way (e.g. stored a batch from
        its sources after naming its copies failed)."""
        if self.listener is not None:
            self.listener.store_failed(error)

    def forget(self, sub_id: str) -> None:
        """Take a submission off the board (finished, or cancelled at shutdown)."""
        progress = self._active.pop(sub_id, None)
        if progress is not None:
            self._hashed_before += progress.tracked.hashed.bytes
            self._stored_before += progress.tracked.stored.bytes

    def active(self) -> list[SubmissionProgress]:
        """The submissions on the board, in sequence (commit) order."""
        return sorted(self._active.values(), key=lambda p: p.seq)

    def bytes_hashed(self) -> int:
        """Bytes hashed since the daemon started, including those of running hashes."""
        return self._hashed_before + sum(p.tracked.hashed.bytes for p in self._active.values())

    def bytes_stored(self) -> int:
        """Bytes through the store stage since the daemon started (uploaded, copied or
        found stored already), including those of running uploads."""
        return self._stored_before + sum(p.tracked.stored.bytes for p in self._active.values())

    def snapshot(self) -> dict[str, Any]:
        """``GET /v1/progress``: the queue and every submission's progress."""
        active = self.active()
        by_stage = dict.fromkeys(STAGES, 0)
        for progress in active:
            by_stage[progress.stage] = by_stage.get(progress.stage, 0) + 1
        return {
            "queue_depth": len(active),
            "by_stage": by_stage,
            "bytes_hashed": self.bytes_hashed(),
            "bytes_stored": self.bytes_stored(),
            "active": [progress.snapshot() for progress in active],
        }
