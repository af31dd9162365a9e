"""``artisync server``: the shared registry for many nodes, on PostgreSQL.

``artisync server`` alone runs the server in the foreground. The parser takes
subcommands too (``artisync server <command> ...``), so that tools that act on the
server's database sit under the command that owns it.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from artisync import logs
from artisync.cli import server_admin, server_import

__all__ = ["add_command"]


def _server(args: argparse.Namespace) -> int:
    # Imported when the server starts: aiohttp, psycopg and prometheus are heavy, and
    # the other commands never need them.
    import uvloop

    from artisync.server.main import serve
    from artisync.server.settings import ServerSettings

    settings = ServerSettings.load(
        args.config,
        home=getattr(args, "home", None),
        db=args.db,
        listen=args.listen,
        tls_cert=args.tls_cert,
        tls_key=args.tls_key,
        store=args.store,
    )
    logs.configure(args.log_level, args.log_format)
    uvloop.run(serve(settings))
    return 0


def add_command(commands: Any) -> argparse._SubParsersAction[argparse.ArgumentParser]:
    """Add ``server`` to the ``artisync`` parser; return its subcommands' parser group,
    where each subcommand module adds itself (``add_parser``)."""
    server: argparse.ArgumentParser = commands.add_parser(
        "server",
        help="run the shared registry (PostgreSQL) that many nodes' daemons use",
        description="Serve the registry's HTTP API (/api/v1) on a PostgreSQL database. "
        "Settings also come from the [server] table of config.toml and from "
        "ARTISYNC_SERVER_* variables (docs/settings.md).",
    )
    server.add_argument(
        "--db",
        metavar="DSN",
        help="the registry database: postgresql://user@host:5432/dbname or a libpq "
        "connection string (ARTISYNC_SERVER_DB)",
    )
    server.add_argument(
        "--listen",
        metavar="HOST:PORT",
        help="where to listen (default 127.0.0.1:8080; 0.0.0.0:8080 for every interface)",
    )
    server.add_argument(
        "--store",
        metavar="URL",
        help="the team's store (s3://BUCKET/PREFIX, gs://…, file:///path): commits whose "
        "content is not all there are refused (ARTISYNC_SERVER_STORE; default: no check)",
    )
    server.add_argument("--tls-cert", type=Path, help="serve HTTPS: the PEM certificate chain")
    server.add_argument("--tls-key", type=Path, help="the PEM private key of --tls-cert")
    server.add_argument(
        "--config",
        type=Path,
        help="a TOML file whose [server] table holds settings (default HOME/config.toml)",
    )
    logs.add_log_options(server)
    server.set_defaults(run=_server)
    subcommands: argparse._SubParsersAction[argparse.ArgumentParser] = server.add_subparsers(
        dest="server_command", metavar="COMMAND", required=False
    )
    server_import.add_command(subcommands)
    server_admin.add_command(subcommands)
    return subcommands
