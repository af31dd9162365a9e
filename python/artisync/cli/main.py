"""The ``artisync`` command: its parser, made of each command's module, and the entry
point that runs one and turns an :class:`~artisync.errors.ArtisyncError` into a message.

``daemon`` (:mod:`~artisync.cli.serve`), ``log`` (:mod:`~artisync.cli.log_files`),
``status`` (:mod:`~artisync.cli.status`); ``ls``, ``get``, ``lineage`` and ``gc``
(:mod:`~artisync.cli.read`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from artisync.cli import log_files, read, serve, status
from artisync.errors import ArtisyncError
from artisync.views.terminal import printable

__all__ = ["main"]

_DESCRIPTION = "The artisync command: run the daemon, log, and look at what the registry holds."


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="artisync", description=_DESCRIPTION)
    parser.add_argument("--home", type=Path, help="ARTISYNC_HOME (default ~/.local/share/artisync)")
    commands = parser.add_subparsers(dest="command", required=True)

    for module in (serve, log_files, status, read):
        module.add_command(commands)
    return parser


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
