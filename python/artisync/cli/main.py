"""The ``artisync`` command: its parser, made of each command's module, and the entry
point that runs one and turns an :class:`~artisync.errors.ArtisyncError` into a message.

``daemon`` (:mod:`~artisync.cli.serve`), ``log`` (:mod:`~artisync.cli.log_files`),
``status`` (:mod:`~artisync.cli.status`); ``ls``, ``get``, ``lineage`` and ``gc``
(:mod:`~artisync.cli.read`); ``server`` (:mod:`~artisync.cli.server`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from artisync.cli import log_files, login, read, serve, server, status, stop
from artisync.errors import ArtisyncError
from artisync.views.terminal import printable

__all__ = ["main"]

_DESCRIPTION = "The artisync command: run the daemon, log, and look at what the registry holds."


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="artisync", description=_DESCRIPTION)
    _global_options(parser, None)
    commands = parser.add_subparsers(dest="command", required=True)
    for module in (serve, stop, log_files, status, read, server, login):
        module.add_command(commands)
    # The same options after the subcommand too (`artisync daemon --home X`): there they
    # default to "not given", so one given before the subcommand is kept.
    for subparser in commands.choices.values():
        _global_options(subparser, argparse.SUPPRESS)
    return parser


def _global_options(parser: argparse.ArgumentParser, default: object) -> None:
    parser.add_argument(
        "--home",
        type=Path,
        default=default,
        help="ARTISYNC_HOME: where the daemon keeps its spool, store and registry "
        "(default ~/.local/share/artisync)",
    )
    parser.add_argument(
        "--debug",
        action="store_true",
        default=False if default is None else default,
        help="show the full traceback of an error",
    )


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``artisync`` command: 0 done, 1 failed, 2 bad input (usage)."""
    args = _parser().parse_args(argv)
    try:
        return int(args.run(args))
    except ArtisyncError as e:
        if args.debug:
            raise
        # Messages quote user input (names, paths): shown, never obeyed by the terminal.
        print(printable(f"artisync: {e}", keep="\n"), file=sys.stderr)
        return 2
    except OSError as e:
        if args.debug:
            raise
        where = f"{e.filename}: " if e.filename else ""
        print(
            printable(f"artisync: {where}{e.strerror or e} (--debug shows where it happened)"),
            file=sys.stderr,
        )
        return 1
    except KeyboardInterrupt:
        return 130
