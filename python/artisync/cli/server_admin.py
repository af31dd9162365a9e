"""``artisync server admin``: users, teams, members, API keys and project visibility.

The commands act on the server's database directly (``--db``, or the server's own
settings: ``[server]`` in config.toml, ``ARTISYNC_SERVER_*``), as the operator who runs
the server does; a running server sees each change at once. Keys are hashed under the
server secret (``secret_file``), so these commands must read the one the server uses.
``create-key`` prints the key once: it is stored only as a keyed hash.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
from pathlib import Path
from typing import Any

from artisync.errors import InvalidInputError
from artisync.views.terminal import printable

__all__ = ["add_command"]

_ROLES = ("admin", "member", "viewer")
_VISIBILITIES = ("private", "public", "open")


def _directory(args: argparse.Namespace) -> Any:
    # Here, not at the top: psycopg is the server extra's.
    from artisync.server.access.directory import Directory
    from artisync.server.access.secret import load_secret
    from artisync.server.settings import ServerSettings

    settings = ServerSettings.load(args.config, home=getattr(args, "home", None), db=args.db)
    assert settings.secret_file is not None, "ServerSettings.load sets it"
    directory = Directory(settings.db, load_secret(settings.secret_file))
    directory.migrate()
    return directory


def _when(stamp: float | None) -> str:
    if stamp is None:
        return "-"
    moment = datetime.datetime.fromtimestamp(stamp, tz=datetime.UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def _project(text: str) -> tuple[str, str]:
    entity, sep, project = text.partition("/")
    if not sep or not entity or not project or "/" in project:
        raise InvalidInputError(f"{text!r} is not ENTITY/PROJECT; write e.g. my-team/vision")
    return entity, project


def _run(args: argparse.Namespace) -> int:
    directory = _directory(args)
    command = args.admin_command
    if command == "create-user":
        directory.create_user(args.name, site_admin=args.site_admin)
        print(f"user {printable(args.name)} created, with its own entity of that name")
    elif command == "create-team":
        directory.create_team(args.name)
        print(f"team {printable(args.name)} created; add its members with add-member")
    elif command == "add-member":
        directory.add_member(args.team, args.user, args.role)
        print(f"{printable(args.user)} is {args.role} of team {printable(args.team)}")
    elif command == "remove-member":
        directory.remove_member(args.team, args.user)
        print(f"{printable(args.user)} is no longer in team {printable(args.team)}")
    elif command == "create-key":
        # The only time the key is seen: printed alone, for `artisync login` or a secret.
        print(directory.create_key(args.user))
    elif command == "revoke-key":
        owner = directory.revoke_key(args.prefix)
        print(f"key {printable(args.prefix)}… of {printable(owner)} revoked")
    elif command == "list-keys":
        found = directory.list_keys(args.user)
        if args.json:
            print(json.dumps([dataclasses.asdict(k) for k in found]))
        else:
            print(f"{'prefix':<14} {'owner':<20} {'created':<24} {'last used':<24} revoked")
            for k in found:
                print(
                    f"{k.prefix + '…':<14} {printable(k.owner):<20} {_when(k.created_at):<24} "
                    f"{_when(k.last_used_at):<24} {_when(k.revoked_at)}"
                )
    elif command == "set-visibility":
        entity, project = _project(args.project)
        directory.set_visibility(entity, project, args.visibility)
        print(f"project {printable(args.project)} is {args.visibility}")
    return 0


def add_command(server_commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``admin`` and its commands to the subcommands of ``artisync server``."""
    admin = server_commands.add_parser(
        "admin",
        help="manage users, teams, members, API keys and project visibility",
        description=__doc__.splitlines()[0] if __doc__ else None,
    )
    admin.add_argument("--db", metavar="DSN", help="the server's database (ARTISYNC_SERVER_DB)")
    admin.add_argument(
        "--config", type=Path, help="a TOML file whose [server] table holds the settings"
    )
    commands = admin.add_subparsers(dest="admin_command", metavar="COMMAND", required=True)

    user = commands.add_parser("create-user", help="a user, with an entity of its own name")
    user.add_argument("name", help="the user's name (also their entity)")
    user.add_argument("--site-admin", action="store_true", help="may see and change every project")
    team = commands.add_parser("create-team", help="a team (an entity users share)")
    team.add_argument("name", help="the team's name")
    add = commands.add_parser("add-member", help="put a user in a team, or change their role")
    add.add_argument("team", help="the team")
    add.add_argument("user", help="the user")
    add.add_argument("--role", choices=_ROLES, default="member", help="default: member")
    remove = commands.add_parser("remove-member", help="take a user out of a team")
    remove.add_argument("team", help="the team")
    remove.add_argument("user", help="the user")
    create_key = commands.add_parser("create-key", help="a new API key for a user (shown once)")
    create_key.add_argument("user", help="whose key")
    revoke = commands.add_parser("revoke-key", help="revoke a key, at once, on every process")
    revoke.add_argument("prefix", help="the key's first 12 characters (list-keys shows them)")
    listing = commands.add_parser("list-keys", help="keys: prefix, owner, created, last used")
    listing.add_argument("--user", help="only this user's keys")
    listing.add_argument("--json", action="store_true", help="as JSON")
    visibility = commands.add_parser("set-visibility", help="make a project private/public/open")
    visibility.add_argument("project", help="ENTITY/PROJECT")
    visibility.add_argument("visibility", choices=_VISIBILITIES, help="who may read and write")
    admin.set_defaults(run=_run)
