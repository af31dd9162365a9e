"""Group commit: the commits a server process receives while one batch is in the
database go in together in the next, as one transaction.

A commit costs the database a transaction and a WAL flush, and the server a worker
thread's turn and a round trip; at many writers those per-commit costs, not the work
of a commit, bound the rate. So commit requests queue here, and one drain at a time
hands everything queued to ``commit_versions`` (PostgreSQL's
``artisync_commit_versions``): a lone writer's commit goes at once (a batch of one), and
under load a batch holds whatever arrived while the previous one ran. Nothing waits on
a timer.

Each commit is still its own outcome: a refused one (a type conflict) fails alone, and
order within a collection is arrival order, since a node sends its next commit only
once this one is answered.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from typing import Final, Protocol

from artisync.registry import CommitResult, NewVersion

__all__ = ["BatchCommitter", "CommitBatcher"]

MAX_BATCH: Final = 64
"""Commits in one transaction at most: a bound on how long one batch holds its
collections' locks, and on one statement's size."""


class BatchCommitter(Protocol):
    """What the batcher needs of the registry (``PostgresRegistry`` has it)."""

    def commit_versions(self, versions: Sequence[NewVersion]) -> list[CommitResult | Exception]:
        """Commit each; its result or the error that refused it, in order."""


class CommitBatcher:
    """Queues commits and runs them in batches on ``executor``, one batch at a time;
    ``observe`` is told each batch's size (the metrics' histogram).

    Created and used on one event loop.
    """

    def __init__(
        self,
        registry: BatchCommitter,
        executor: Executor,
        *,
        max_batch: int = MAX_BATCH,
        observe: Callable[[int], object] = lambda size: None,
    ) -> None:
        self._registry = registry
        self._executor = executor
        self._max_batch = max_batch
        self._observe = observe
        self._queued: list[tuple[NewVersion, asyncio.Future[CommitResult]]] = []
        self._drain: asyncio.Task[None] | None = None

    async def commit(self, version: NewVersion) -> CommitResult:
        """Commit ``version`` with whatever else is queued; its result, or the error."""
        future: asyncio.Future[CommitResult] = asyncio.get_running_loop().create_future()
        self._queued.append((version, future))
        if self._drain is None:
            self._drain = asyncio.create_task(self._run())
        # A request that goes away (its client hung up) cancels only its wait: the
        # commit stays in its batch (committing is idempotent; a retry finds the answer).
        return await future

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._queued:
                batch = self._queued[: self._max_batch]
                del self._queued[: self._max_batch]
                versions = [version for version, _ in batch]
                self._observe(len(versions))
                try:
                    outcomes = await loop.run_in_executor(
                        self._executor, self._registry.commit_versions, versions
                    )
                except Exception as exc:  # the registry reports per commit; this is a bug
                    outcomes = [exc for _ in batch]
                for (_, future), outcome in zip(batch, outcomes, strict=True):
                    if future.done():  # its request was cancelled
                        continue
                    if isinstance(outcome, Exception):
                        future.set_exception(outcome)
                    else:
                        future.set_result(outcome)
        finally:
            self._drain = None
