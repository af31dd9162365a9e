"""``artisync status``: what the daemon is doing, as live bars or JSON snapshots."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from artisync.config import Config
from artisync.sdk.client import DaemonClient

__all__ = ["add_command"]


def _status(args: argparse.Namespace) -> int:
    # Imported when status runs: the bars' module loads rich, which the other commands
    # never need.
    from artisync.cli.progress_bars import describe

    config = Config.load(args.home, socket=args.socket)
    client = DaemonClient(config)
    status: dict[str, Any] | None = client.queue_status()
    if status is None:
        print(f"the daemon is not running (no answer on {config.socket})", file=sys.stderr)
        return 1
    live = not args.json and not args.once and sys.stdout.isatty()
    try:
        if live:
            _live_status(client, args.interval)
            return 0
        while True:
            progress = client.progress()
            if args.json:
                snapshot = {**status, "progress": progress}
                print(json.dumps(snapshot, indent=None if args.watch else 2), flush=True)
            else:
                print(describe(status, progress), flush=True)
            if not args.watch:
                return 0
            time.sleep(args.interval)
            status = client.queue_status()
            if status is None:
                print(f"the daemon stopped answering on {config.socket}", file=sys.stderr)
                return 1
    except KeyboardInterrupt:
        return 0


def _live_status(client: DaemonClient, interval: float) -> None:
    """Bars refreshing every ``interval`` seconds until Ctrl-C."""
    from rich.live import Live

    from artisync.cli.progress_bars import StatusBars

    view = StatusBars()
    view.update(client.queue_status(), client.progress())
    with Live(view.renderable(), refresh_per_second=4) as live:
        while True:
            time.sleep(interval)
            view.update(client.queue_status(), client.progress())
            live.update(view.renderable())


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0.05 <= value <= 3600:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds from 0.05 to 3600")
    return value


def add_command(commands: Any) -> None:
    """Add ``status`` to the ``artisync`` parser."""
    status = commands.add_parser("status", help="what the daemon is doing")
    status.add_argument(
        "--socket", type=Path, help="the daemon's socket (default HOME/daemon.sock)"
    )
    status.add_argument(
        "--json", action="store_true", help="one JSON snapshot (with --watch, one per line)"
    )
    status.add_argument(
        "--watch", action="store_true", help="keep printing snapshots (live bars on a terminal)"
    )
    status.add_argument("--once", action="store_true", help="print once, even on a terminal")
    status.add_argument(
        "--interval", type=_seconds, default=0.5, help="seconds between refreshes (0.5)"
    )
    status.set_defaults(run=_status)
