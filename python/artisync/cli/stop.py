"""``artisync stop``: stop the daemon of a home, as SIGTERM does, and say when it is gone.

The daemon drains on SIGTERM (in-flight submissions finish or are checkpointed within
``shutdown_deadline``), so this waits for that, then a little more, for its lock to go.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from typing import Any

from artisync.config import Config
from artisync.errors import ArtisyncError

__all__ = ["add_command"]

# Beyond the daemon's own deadline: its exit, and the lock going with it.
_GRACE_SECONDS = 10.0


def _stop(args: argparse.Namespace) -> int:
    # Here, not at the top: the daemon package loads its whole stack (aiohttp, the
    # store clients), which the other commands do not need.
    from artisync.home_lock import lock_holder

    config = Config.load(args.home)
    pid = lock_holder(config.home)
    if pid is None:
        print(f"no artisync daemon runs on {config.home}: nothing to stop")
        return 0
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + (args.timeout or config.shutdown_deadline + _GRACE_SECONDS)
    while lock_holder(config.home) == pid:
        if time.monotonic() > deadline:
            raise ArtisyncError(
                f"the daemon (pid {pid}) on {config.home} is still running; see its log, or "
                f"end it with kill -9 {pid} (what it had in flight is redone at the next start)"
            )
        time.sleep(0.05)
    print(f"stopped the artisync daemon (pid {pid}) on {config.home}", file=sys.stdout)
    return 0


def add_command(commands: Any) -> None:
    """Add ``stop`` to the ``artisync`` parser."""
    stop = commands.add_parser("stop", help="stop the daemon of the home and wait until it has")
    stop.add_argument(
        "--timeout",
        type=float,
        default=None,
        help="seconds to wait at most (default: the daemon's shutdown_deadline + 10)",
    )
    stop.set_defaults(run=_stop)
