"""The daemon's Prometheus metrics: ``GET /metrics`` on its socket, and over TCP with
``--metrics-addr``.

Events (commits, rejections, retries, stage and commit times) are counted as the
:class:`~artisync.daemon.progress.ProgressBoard` reports them; the queue and the byte
totals are read from the board when scraped, so bytes move while a large file is
still being hashed or uploaded. Each daemon has its own ``CollectorRegistry``, so
several daemons (tests) never share a counter.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any, Final

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from artisync import _core
from artisync.daemon.progress import STAGES, ProgressBoard, SubmissionProgress
from artisync.errors import RegistryError
from artisync.store import StoreUnavailableError

__all__ = ["CONTENT_TYPE", "DaemonMetrics"]

CONTENT_TYPE: Final = CONTENT_TYPE_LATEST
"""The Content-Type of the exposition (Prometheus text format)."""

# Where rejections happen (the pipeline's stage names), listed so each series exists
# from the start at 0: an alert on rate(...) needs the series before the first reject.
REJECT_STAGES: Final = ("validate", "expand", "hash", "upload", "commit", "internal")
COMMIT_KINDS: Final = ("new", "existing", "part")
RETRY_CAUSES: Final = ("store", "registry", "disk_full")
# From a small checkpoint a few tens of ms after log_artifact, to a multi-GiB upload.
LATENCY_BUCKETS: Final = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)
STAGE_BUCKETS: Final = (0.001, 0.01, 0.1, 0.5, 1, 5, 30, 300, 1800)

# The "*_created" series (when each counter was made) only double the output here: the
# daemon's start time is its own gauge. Process-wide, and the daemon is the process.
disable_created_metrics()  # type: ignore[no-untyped-call]  # untyped upstream


class DaemonMetrics:
    """One daemon's metrics; listens to ``board`` (it attaches itself)."""

    def __init__(self, board: ProgressBoard, store_url: str = "") -> None:
        self.registry = CollectorRegistry()
        self.board = board
        r = self.registry
        self.accepted = Counter(
            "artisync_submissions_accepted",
            "Submissions the daemon claimed (over the socket or from spool/new).",
            registry=r,
        )
        self.commits = Counter(
            "artisync_commits",
            "Submissions committed: a new version, an existing one (identical content, "
            "or committed before a restart), or a part of a distributed version.",
            ["kind"],
            registry=r,
        )
        self.rejects = Counter(
            "artisync_rejects",
            "Submissions rejected, by the stage that rejected them.",
            ["stage"],
            registry=r,
        )
        self.retries = Counter(
            "artisync_retries",
            "Transient failures retried with backoff, by what failed (store, registry, "
            "or a full disk).",
            ["cause"],
            registry=r,
        )
        self.store_errors = Counter(
            "artisync_store_errors",
            "Failures of the store (unreachable, full, refused) met by the pipeline.",
            registry=r,
        )
        self.commit_latency = Histogram(
            "artisync_commit_latency_seconds",
            "Seconds from acceptance (log_artifact returned) to commit.",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.stage_seconds = Histogram(
            "artisync_stage_seconds",
            "Seconds submissions spent in each pipeline stage.",
            ["stage"],
            buckets=STAGE_BUCKETS,
            registry=r,
        )
        started = Gauge(
            "artisync_daemon_start_time_seconds",
            "When the daemon started, in seconds since the epoch.",
            registry=r,
        )
        started.set(time.time())
        info = Gauge(
            "artisync_daemon_info",
            "The daemon's version and store (always 1).",
            ["version", "store"],
            registry=r,
        )
        info.labels(_core.__version__, store_url).set(1)
        for stage in REJECT_STAGES:
            self.rejects.labels(stage)
        for kind in COMMIT_KINDS:
            self.commits.labels(kind)
        for cause in RETRY_CAUSES:
            self.retries.labels(cause)
        r.register(_BoardCollector(board))
        ProcessCollector(registry=r)  # memory, CPU and file descriptors of the daemon
        board.listener = self

    def exposition(self) -> bytes:
        """Everything, in the Prometheus text format."""
        return generate_latest(self.registry)

    # -- the board's events (BoardListener) -------------------------------------------

    def claimed(self, progress: SubmissionProgress) -> None:
        """Count a claimed submission."""
        self.accepted.inc()

    def lapped(self, progress: SubmissionProgress, stage: str, seconds: float) -> None:
        """Time a finished stage."""
        self.stage_seconds.labels(stage).observe(seconds)

    def finished(self, progress: SubmissionProgress, status: str, result: dict[str, Any]) -> None:
        """Count a commit (and its latency) or a rejection (by stage)."""
        if status == "committed":
            kind = "part" if result.get("part") else "new" if result.get("created") else "existing"
            self.commits.labels(kind).inc()
            self.commit_latency.observe(progress.seconds_since_accepted())
        else:
            self.rejects.labels(str(result.get("stage") or "unknown")).inc()

    def retried(self, progress: SubmissionProgress, error: Exception) -> None:
        """Count a retry by its cause, and a store error if the store failed."""
        if isinstance(error, StoreUnavailableError):
            self.store_errors.inc()
            self.retries.labels("store").inc()
        elif isinstance(error, RegistryError):
            self.retries.labels("registry").inc()
        else:  # the pipeline retries no other OSError than a full disk
            self.retries.labels("disk_full").inc()

    def store_failed(self, error: Exception) -> None:
        """Count a store error the pipeline worked around."""
        self.store_errors.inc()


class _BoardCollector(Collector):
    """The queue and byte totals, read from the board at each scrape."""

    def __init__(self, board: ProgressBoard) -> None:
        self.board = board

    def collect(self) -> Iterator[Metric]:
        active = self.board.active()
        yield GaugeMetricFamily(
            "artisync_queue_depth",
            "Submissions the daemon holds that are not yet committed or rejected.",
            value=len(active),
        )
        in_flight = GaugeMetricFamily(
            "artisync_submissions_in_flight",
            "Submissions the daemon holds, by the stage they are in.",
            labels=["stage"],
        )
        counts = dict.fromkeys(STAGES, 0)
        for progress in active:
            counts[progress.stage] = counts.get(progress.stage, 0) + 1
        for stage, count in counts.items():
            in_flight.add_metric([stage], count)
        yield in_flight
        yield GaugeMetricFamily(
            "artisync_oldest_submission_age_seconds",
            "Seconds since the oldest submission still held was accepted (0 if none).",
            value=max((p.seconds_since_accepted() for p in active), default=0.0),
        )
        yield CounterMetricFamily(
            "artisync_bytes_hashed",
            "Bytes the daemon hashed (snapshots are hashed by the SDK when logged).",
            value=self.board.bytes_hashed(),
        )
        yield CounterMetricFamily(
            "artisync_bytes_stored",
            "Bytes of content through the store stage: uploaded to S3/GCS, copied into "
            "a local store, or found stored already.",
            value=self.board.bytes_stored(),
        )
