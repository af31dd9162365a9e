"""The server's Prometheus metrics, served at ``GET /metrics``.

Requests by route template (``/api/v1/runs/{entity}/{project}/{run_id}``, never the
concrete path: names would make the label set grow without bound) and status, their
latency, requests in flight, the database pool's size and use, commits by outcome, and
how many commits each group commit carried.
Each app has its own ``CollectorRegistry``, so several apps in one process (tests) do
not collide in the library's global one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

__all__ = ["BATCH_BUCKETS", "LATENCY_BUCKETS", "PoolCounts", "ServerMetrics"]

LATENCY_BUCKETS: Final = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)
"""Seconds: fine below 50 ms, where a healthy registry call lands."""

BATCH_BUCKETS: Final = (1, 2, 4, 8, 16, 32, 64)
"""Commits per group commit (at most ``commit_batch.MAX_BATCH``)."""

PoolCounts = Callable[[], tuple[int, int]]
"""What the pool holds now: ``(size, in_use)``."""


class ServerMetrics:
    """The metrics of one server app."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "artisync_server_requests",
            "Requests answered, by method, route template and status.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "artisync_server_request_seconds",
            "Seconds from a request's arrival to its answer, by method and route template.",
            ["method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "artisync_server_requests_in_flight",
            "Requests being served now.",
            registry=self.registry,
        )
        self.commits = Counter(
            "artisync_server_commits",
            "Commits answered: a new version (created) or one committed before "
            "(existing: identical content, or the same submission retried).",
            ["outcome"],
            registry=self.registry,
        )
        self.batch_size = Histogram(
            "artisync_server_commit_batch_size",
            "Commits per group commit (one transaction): 1 when commits arrive one at a "
            "time, more under load.",
            buckets=BATCH_BUCKETS,
            registry=self.registry,
        )
        self.pool = Gauge(
            "artisync_server_db_pool_connections",
            "Database connections of this process: held by the pool (size) and lent "
            "to registry calls now (in_use).",
            ["state"],
            registry=self.registry,
        )
        # Both outcomes are present from the start, so a dashboard's rate() has a zero.
        for outcome in ("created", "existing"):
            self.commits.labels(outcome)

    def render(self, pool: PoolCounts | None) -> bytes:
        """The text exposition, the pool's gauges read now."""
        if pool is not None:
            size, in_use = pool()
            self.pool.labels("size").set(size)
            self.pool.labels("in_use").set(in_use)
        return generate_latest(self.registry)
