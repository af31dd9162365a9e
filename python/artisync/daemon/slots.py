"""The pipeline's slots, shared among the node's users so that none can hold them all.

A slot is what a submission holds while it is expanded, hashed and stored. On a shared
node one user's submissions (a thousand of them, or a few enormous ones) must not keep
everyone else's waiting: a user holds at most all slots but one, so another user's
submission always finds one within the time one submission takes. A submission that is
waiting to retry (a server that does not answer) holds none: :meth:`Slots.idle` lets its
slot go while it waits, and takes one again before it tries.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator
from contextvars import ContextVar
from dataclasses import dataclass

__all__ = ["Slots", "idle"]


@dataclass(slots=True)
class _Holding:
    slots: Slots
    who: int
    task: asyncio.Task[object] | None
    holding: bool = True


# The slot the current task holds, and whose it is, so retries deep in the stack can
# let it go while they wait.
_held: ContextVar[_Holding | None] = ContextVar("artisync_slot", default=None)


class Slots:
    """``limit`` slots; one user may hold ``limit - 1`` of them at most (all of one)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.per_user = max(1, limit - 1)
        self._held: Counter[int] = Counter()
        self._changed = asyncio.Condition()

    def _free_for(self, who: int) -> bool:
        return sum(self._held.values()) < self.limit and self._held[who] < self.per_user

    async def _acquire(self, who: int) -> None:
        async with self._changed:
            await self._changed.wait_for(lambda: self._free_for(who))
            self._held[who] += 1

    async def _release(self, who: int) -> None:
        async with self._changed:
            self._held[who] -= 1
            if not self._held[who]:
                del self._held[who]
            self._changed.notify_all()

    @contextlib.asynccontextmanager
    async def slot(self, who: int) -> AsyncIterator[None]:
        """Hold a slot for user ``who`` (a uid) for the block."""
        await self._acquire(who)
        holding = _Holding(self, who, asyncio.current_task())
        token = _held.set(holding)
        try:
            yield
        finally:
            _held.reset(token)
            if holding.holding:  # not if a wait was cancelled before it had one back
                await asyncio.shield(self._release(who))

    def held_by(self, who: int) -> int:
        """How many slots ``who`` holds now."""
        return self._held[who]


@contextlib.asynccontextmanager
async def idle() -> AsyncIterator[None]:
    """Let the current task's slot go for the block (a wait), if it holds one."""
    held = _held.get()
    # Only the task that took the slot lets it go (tasks it started share the context).
    if held is None or not held.holding or held.task is not asyncio.current_task():
        yield
        return
    held.holding = False
    await held.slots._release(held.who)
    try:
        yield
    finally:
        await held.slots._acquire(held.who)
        held.holding = True
