"""``artisync daemon``: the node's sync daemon, in the foreground."""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path
from typing import Any

from artisync import logs
from artisync.config import Config

__all__ = ["add_command"]


def _daemon(args: argparse.Namespace) -> int:
    # Imported when the daemon starts: its server, store clients and metrics are heavy,
    # and the other commands never need them.
    import uvloop

    from artisync.daemon import Daemon

    logs.configure(args.log_level, args.log_format)

    def load() -> Config:  # again at each SIGHUP: the flags still win over the file
        return Config.load(
            args.home,
            store=args.store,
            socket=args.socket,
            spool=args.spool,
            metrics_addr=args.metrics_addr,
        )

    daemon = Daemon(load(), reload=load)

    async def serve() -> None:
        await daemon.serve()
        if daemon.checkpointed:
            # Worker threads of checkpointed submissions may still be hashing or
            # copying, and the loop's shutdown would join them, overrunning the
            # deadline. What they write is redone at the next start, as after a kill.
            logging.shutdown()
            os._exit(0)

    uvloop.run(serve())
    return 0


def add_command(commands: Any) -> None:
    """Add ``daemon`` to the ``artisync`` parser."""
    daemon = commands.add_parser("daemon", help="run the node's sync daemon in the foreground")
    daemon.add_argument(
        "--store",
        help="where blobs go: a directory (relative: under the home), file:///path, "
        "s3://bucket/prefix or gs://bucket/prefix (default HOME/store)",
    )
    daemon.add_argument("--socket", type=Path, help="the API socket (default HOME/daemon.sock)")
    daemon.add_argument("--spool", type=Path, help="the spool directory (default HOME/spool)")
    logs.add_log_options(daemon)
    daemon.add_argument(
        "--metrics-addr",
        metavar="HOST:PORT",
        help="also serve Prometheus metrics (GET /metrics) over TCP here, "
        "e.g. 127.0.0.1:9464 (they are always on the socket)",
    )
    daemon.set_defaults(run=_daemon)
