"""The ``artisync`` command: run the daemon, log, and look at what the registry holds.

The write side (``daemon``, ``log``, ``status``) is here; the read side (``ls``, ``get``,
``lineage``, ``gc``) is in :mod:`artisync.cli.read`.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

from artisync.cli import read
from artisync.config import Config
from artisync.errors import ArtisyncError

__all__ = ["main"]


def _daemon(args: argparse.Namespace) -> int:
    import uvloop

    from artisync.daemon import Daemon

    logging.basicConfig(
        level=getattr(logging, args.log_level.upper()),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    config = Config.load(args.home, store=args.store, socket=args.socket, spool=args.spool)
    uvloop.run(Daemon(config).serve())
    return 0


def _log(args: argparse.Namespace) -> int:
    import artisync

    path = Path(args.path)
    with artisync.init(project=args.project, job_type="artisync-log", home=args.home) as run:
        artifact = artisync.Artifact(args.name or path.name, args.type)
        if path.is_dir():
            artifact.add_dir(path, policy=args.policy)
        else:
            artifact.add_file(path, policy=args.policy)
        run.log_artifact(artifact, aliases=args.alias or None)
        artifact.wait(timeout=args.timeout)
    print(f"{args.project}/{artifact.name}:{artifact.version} ({artifact.digest})")
    return 0


def _status(args: argparse.Namespace) -> int:
    from artisync.sdk.client import DaemonClient

    config = Config.load(args.home, socket=args.socket)
    status: dict[str, Any] | None = DaemonClient(config).queue_status()
    if status is None:
        print(f"the daemon is not running (no answer on {config.socket})", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(status, indent=2))
        return 0
    print(
        f"daemon pid {status['pid']} on {status['home']} (store {status['store']})\n"
        f"  queued {status['queued']}, working {status['working']}, "
        f"committed {status['committed']}, rejected {status['rejected']} since start"
    )
    for item in status["active"]:
        print(f"  {item['id']}  {item['status']}")
    return 0


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
    log.set_defaults(run=_log)

    status = commands.add_parser("status", help="what the daemon is doing")
    status.add_argument("--socket", type=Path)
    status.add_argument("--json", action="store_true", help="machine-readable output")
    status.set_defaults(run=_status)

    read.add_commands(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``artisync`` command."""
    args = _parser().parse_args(argv)
    try:
        return int(args.run(args))
    except ArtisyncError as e:
        print(f"artisync: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
