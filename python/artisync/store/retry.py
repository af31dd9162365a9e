"""A few quick retries of one request, for clients that have none of their own.

botocore retries S3 requests itself (``standard`` mode); gcloud-aio-storage does not,
so the GCS store runs each request through :func:`retrying`: a transient failure
(5xx, 408, 429, a refused or dropped connection, a timeout) is tried again after an
exponential, fully jittered pause, a few times. What is still failing after that
surfaces as :class:`~artisync.store.StoreUnavailableError`, and the daemon's own
retries (backoff and jitter, for as long as it takes) take over, so an outage never
keeps a request spinning inside the store.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

__all__ = ["ATTEMPTS", "retrying"]

T = TypeVar("T")

ATTEMPTS = 3
_FIRST_PAUSE = 0.2
_MAX_PAUSE = 2.0


async def retrying(
    attempt: Callable[[], Awaitable[T]],
    transient: Callable[[BaseException], bool],
    *,
    attempts: int = ATTEMPTS,
) -> T:
    """``await attempt()``, again after a pause while it fails ``transient``-ly; the
    last failure is raised as it is."""
    pause = _FIRST_PAUSE
    for left in range(attempts - 1, -1, -1):
        try:
            return await attempt()
        except Exception as e:
            if left == 0 or not transient(e):
                raise
        await asyncio.sleep(random.uniform(0, pause))
        pause = min(pause * 2, _MAX_PAUSE)
    raise AssertionError("unreachable")
