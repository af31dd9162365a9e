"""Commit order: versions of one collection commit in the order they were logged.

Every submission the daemon has accepted and not yet finished is tracked here by its
sequence number. A submission may commit once every earlier one of the same collection
has finished (committed or rejected); an earlier one whose collection is still unknown
(its file not yet parsed) holds everyone back until it is known, because it might be
of the same collection. A rejected submission finishes at once, so it never blocks the
next; one that keeps failing transiently stays unfinished and holds back its own
collection only.
"""

from __future__ import annotations

import asyncio
import bisect
from collections.abc import Hashable

__all__ = ["CommitOrder"]

_UNKNOWN = object()


class CommitOrder:
    """The unfinished submissions, ordered by sequence number."""

    def __init__(self) -> None:
        self._seqs: list[str] = []  # sorted
        self._keys: dict[str, object] = {}
        self._changed = asyncio.Condition()

    def __len__(self) -> int:
        return len(self._seqs)

    def admit(self, seq: str) -> None:
        """Track a submission as soon as it is accepted, before its file is parsed."""
        if seq not in self._keys:
            bisect.insort(self._seqs, seq)
            self._keys[seq] = _UNKNOWN

    async def identify(self, seq: str, key: Hashable) -> None:
        """Record the collection of an admitted submission."""
        self._keys[seq] = key
        await self._notify()

    async def finish(self, seq: str) -> None:
        """The submission committed or was rejected: later ones may go."""
        if self._keys.pop(seq, None) is not None:
            self._seqs.remove(seq)
        await self._notify()

    def blocker(self, seq: str) -> str | None:
        """The earliest unfinished submission that must finish before ``seq`` commits."""
        key = self._keys[seq]
        for earlier in self._seqs[: bisect.bisect_left(self._seqs, seq)]:
            other = self._keys[earlier]
            if other is _UNKNOWN or other == key:
                return earlier
        return None

    async def wait_turn(self, seq: str) -> None:
        """Return when every earlier submission of the same collection has finished."""
        async with self._changed:
            await self._changed.wait_for(lambda: self.blocker(seq) is None)

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()
