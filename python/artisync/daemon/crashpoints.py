"""Named points where a test can kill the daemon with SIGKILL, to prove crash safety.

``ARTISYNC_CRASH_AT=after_commit`` kills the daemon the first time it passes that
point; ``after_commit:3`` the third time. Unset (always, outside tests), a crash point
costs one dictionary lookup.
"""

from __future__ import annotations

import os
import signal
from typing import Final

__all__ = ["POINTS", "STORE_POINTS", "crash_point"]

# In pipeline order; the exactly-once test kills the daemon at each of them in turn.
POINTS: Final = (
    "after_claim",
    "after_hash",
    "after_upload",
    "after_manifest",
    "after_commit",
    "after_receipt",
)

# Inside the remote stores' multipart uploads (between parts): tests of resuming use it.
STORE_POINTS: Final = ("after_part",)

_target, _, _count = os.environ.get("ARTISYNC_CRASH_AT", "").partition(":")
_remaining = int(_count or 1)


def crash_point(name: str) -> None:
    """Die here, as kill -9 would, if the environment asks for it."""
    global _remaining
    if name != _target:
        return
    _remaining -= 1
    if _remaining <= 0:
        os.kill(os.getpid(), signal.SIGKILL)
