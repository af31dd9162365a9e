"""The ``artisync`` command: run the daemon, log, and look at what the registry holds.

The write side (``daemon``, ``log``, ``status``) is here; the read side (``ls``, ``get``,
``lineage``, ``gc``) is in :mod:`artisync.cli.read`.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from artisync.cli import read
from artisync.config import Config
from artisync.errors import ArtisyncError
from artisync.views.terminal import printable

if TYPE_CHECKING:
    from artisync.sdk.client import DaemonClient

__all__ = ["main"]


def _daemon(args: argparse.Namespace) -> int:
    import uvloop

    from artisync import logs
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


def _log(args: argparse.Namespace) -> int:
    import artisync
    from artisync.sdk.client import DaemonClient

    path = Path(args.path)
    with artisync.init(project=args.project, job_type="artisync-log", home=args.home) as run:
        artifact = artisync.Artifact(args.name or path.name, args.type)
        if path.is_dir():
            artifact.add_dir(path, policy=args.policy)
        else:
            artifact.add_file(path, policy=args.policy)
        run.log_artifact(artifact, aliases=args.alias or None)
        deadline = None if args.timeout is None else time.monotonic() + args.timeout
        try:
            if sys.stdout.isatty() and not args.quiet:
                client = DaemonClient(Config.load(args.home))
                _wait_with_bar(client, artifact.submission_id, deadline)
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            artifact.wait(timeout=remaining)
        except KeyboardInterrupt:
            print(
                f"\nstopped waiting; the daemon still has submission {artifact.submission_id} "
                "(`artisync status` shows it)",
                file=sys.stderr,
            )
            return 130
    print(printable(f"{args.project}/{artifact.name}:{artifact.version} ({artifact.digest})"))
    return 0


def _wait_with_bar(client: DaemonClient, sub_id: str, deadline: float | None) -> None:
    """Draw the submission's bars until the daemon has finished with it, stops
    answering (the caller's ``wait`` then watches the spool), or ``deadline`` passes."""
    from artisync.cli.progress_bars import SubmissionBars
    from artisync.sdk.client import TERMINAL

    bars = SubmissionBars(transient=True)
    with bars.progress:
        while deadline is None or time.monotonic() < deadline:
            answer = client.status(sub_id, wait=_POLL_SECONDS)
            if answer is None or answer.get("status") in TERMINAL:
                return
            snapshot = client.progress() or {}
            mine = [s for s in snapshot.get("active") or [] if s.get("id") == sub_id]
            bars.update(mine)
            bars.refresh()


# How often the bars ask the daemon: smooth enough to see bytes move, cheap for it.
_POLL_SECONDS = 0.25


def _status(args: argparse.Namespace) -> int:
    from artisync.cli.progress_bars import describe
    from artisync.sdk.client import DaemonClient

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


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="artisync", description=__doc__.split("\n")[0])
    parser.add_argument("--home", type=Path, help="ARTISYNC_HOME (default ~/.local/share/artisync)")
    commands = parser.add_subparsers(dest="command", required=True)

    daemon = commands.add_parser("daemon", help="run the node's sync daemon in the foreground")
    daemon.add_argument(
        "--store", help="where blobs go: a path or file:// URL (default HOME/store)"
    )
    daemon.add_argument("--socket", type=Path, help="the API socket (default HOME/daemon.sock)")
    daemon.add_argument("--spool", type=Path, help="the spool directory (default HOME/spool)")
    daemon.add_argument("--log-level", default="info", choices=["debug", "info", "warning"])
    daemon.add_argument(
        "--log-format",
        default="text",
        choices=["text", "json"],
        help="one line per event: text is key=value (logfmt), json one object per line",
    )
    daemon.add_argument(
        "--metrics-addr",
        metavar="HOST:PORT",
        help="also serve Prometheus metrics (GET /metrics) over TCP here, "
        "e.g. 127.0.0.1:9464 (they are always on the socket)",
    )
    daemon.set_defaults(run=_daemon)

    log = commands.add_parser("log", help="log a file or directory as a new version and wait")
    log.add_argument("path")
    log.add_argument("--project", required=True)
    log.add_argument("--name", help="artifact name (default: the path's basename)")
    log.add_argument("--type", required=True)
    log.add_argument("--alias", action="append", help="an alias for the version (repeatable)")
    log.add_argument(
        "--policy",
        default="immutable",
        choices=["immutable", "mutable"],
        help="immutable (default here: the command waits, so the files are read in place "
        "and a change is detected) or mutable (snapshot first)",
    )
    log.add_argument("--timeout", type=float, default=None, help="seconds to wait at most")
    log.add_argument("--quiet", "-q", action="store_true", help="no progress bar while waiting")
    log.set_defaults(run=_log)

    status = commands.add_parser("status", help="what the daemon is doing")
    status.add_argument("--socket", type=Path)
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

    read.add_commands(commands)
    return parser


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0.05 <= value <= 3600:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds from 0.05 to 3600")
    return value


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``artisync`` command."""
    args = _parser().parse_args(argv)
    try:
        return int(args.run(args))
    except ArtisyncError as e:
        # Messages quote user input (names, paths): shown, never obeyed by the terminal.
        print(printable(f"artisync: {e}", keep="\n"), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
