"""``artisync server import``: copy a node's embedded registry into the server's database.

A node moves to a server by importing its home once (with its daemon running or not: the
registry is read as a snapshot, never written), pointing its ``registry`` setting at the
server, and importing again after its daemon stopped, to bring what it committed
meanwhile; the idempotency map copied with the versions makes the submissions left in
its spool commit to the versions they already made. The rules of the merge are
``artisync.registry.importing.importer``'s.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from artisync.config import Config
from artisync.errors import ArtisyncError, InvalidInputError
from artisync.store.open import store_url
from artisync.views.terminal import printable

__all__ = ["DB_ENV", "add_command", "run_import"]


DB_ENV = "ARTISYNC_SERVER_DB"
"""The variable that gives ``--db`` when the flag is left out, as for ``artisync server``."""


def run_import(args: argparse.Namespace) -> int:
    """Run the import ``args`` asks for and print its report: 0 when everything of the
    node is on the server, 1 when conflicts left some of it out."""
    dsn = args.db or os.environ.get(DB_ENV, "")
    if not dsn:
        raise InvalidInputError(
            f"artisync server import needs the server's database: pass --db "
            f"postgresql://USER@HOST:PORT/DB or set {DB_ENV}"
        )
    home = Path(args.source).expanduser()
    if not home.is_dir():
        raise InvalidInputError(
            f"--from {home}: no such directory; give the node's ARTISYNC_HOME (the directory "
            "holding its registry.db, by default ~/.local/share/artisync)"
        )
    registry = Config.load(home).registry
    if isinstance(registry, str):
        raise InvalidInputError(
            f"--from {home}: its registry is already the server {registry}; there is no "
            "embedded registry to import"
        )
    if not registry.is_file():
        raise InvalidInputError(
            f"--from {home}: its registry {registry} is not a file; this home has no embedded "
            "registry to import (nothing committed yet, or its registry setting points "
            "elsewhere)"
        )
    # Here, not at the top: psycopg is the server extra's, and `artisync --help` must
    # work on nodes without it.
    from artisync.registry.importing.importer import import_registry

    # Versions that recorded no store are in the node's: imported, they name it.
    store = store_url(Config.load(home).store, home)

    try:
        report = import_registry(registry, dsn, renumber=args.renumber, default_store=store)
    except ArtisyncError as exc:
        # libpq's reasons span lines ("Connection refused\n\tIs the server running...");
        # the command's errors are one line.
        raise type(exc)(" ".join(str(exc).split())) from exc
    for line in report.lines():
        print(printable(line))
    return 1 if report.conflicts else 0


def add_command(server_commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``import`` to the subcommands of ``artisync server``."""
    command = server_commands.add_parser(
        "import",
        help="copy a node's embedded registry (projects, runs, versions, aliases, lineage) "
        "into the server's database; safe to run again",
    )
    command.add_argument(
        "--from",
        dest="source",
        required=True,
        metavar="HOME",
        help="the node's ARTISYNC_HOME, whose registry.db is read (read-only)",
    )
    command.add_argument(
        "--db",
        default=None,
        metavar="DSN",
        help=f"the server's PostgreSQL database, postgresql://USER@HOST:PORT/DB "
        f"(default: ${DB_ENV})",
    )
    command.add_argument(
        "--renumber",
        action="store_true",
        help="when the server gave a version number to another version of the same "
        "artifact, add the node's new versions after the server's highest instead of "
        "leaving them out",
    )
    command.set_defaults(run=run_import)
