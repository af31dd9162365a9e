"""``artisync ls``, ``get``, ``lineage`` and ``gc``: the registry, seen from a terminal.

Each listing prints a table for people and, with ``--json``, the same facts for
scripts. They read the registry directly; ``gc`` asks the running daemon to collect
(it knows what is in flight) and collects itself when no daemon runs on the home.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from artisync.config import Config
from artisync.errors import NotFoundError
from artisync.registry.model import DEFAULT_ENTITY
from artisync.sdk.api import Api
from artisync.sdk.registry_access import default_entity, registry_for
from artisync.views import lineage, listing
from artisync.views.terminal import printable

__all__ = ["add_command"]


def _api(args: argparse.Namespace) -> Any:
    return Api(home=args.home)


def _print_json(value: Any) -> None:
    json.dump(value, sys.stdout, indent=2, sort_keys=False)
    sys.stdout.write("\n")


def _ls(args: argparse.Namespace) -> int:
    config = Config.load(args.home)
    registry = registry_for(config)
    if not args.path:
        projects = registry.list_projects()
        if args.json:
            _print_json([{"entity": p.entity, "project": p.name} for p in projects])
        else:
            names = [printable(f"{p.entity}/{p.name}") for p in projects]
            print("\n".join(names) or "no projects yet")
        return 0
    parts = args.path.split("/")
    if len(parts) > 3 or "" in parts:
        print("artisync ls: give PROJECT or PROJECT/NAME (or ENTITY/PROJECT/NAME)", file=sys.stderr)
        return 2
    if len(parts) == 3:
        entity, project, name = parts
    elif len(parts) == 2:
        entity, project, name = default_entity(config), parts[0], parts[1]
    else:
        entity, project, name = default_entity(config), parts[0], None
    if name is None:
        collections = registry.list_collections(project, type=args.type, entity=entity)
        if not collections and not registry.list_collections(project, entity=entity):
            # As for PROJECT/NAME: a project nothing was logged to is not there.
            where = f"{entity or DEFAULT_ENTITY}/{project}"
            raise NotFoundError(
                f"project {where!r} has no artifacts yet (`artisync ls` lists the projects)"
            )
        latest = {c.name: _latest(registry, c.project, c.name, c.entity) for c in collections}
        if args.json:
            _print_json(listing.collections_json(collections, latest))
        else:
            print(listing.collections_text(collections, latest))
        return 0
    versions = registry.list_versions(project, name, entity=entity)
    if not versions:
        # Let the registry say what exists under that project.
        registry.get_version(project, name, "latest", entity=entity or DEFAULT_ENTITY)
    if args.json:
        _print_json(listing.versions_json(versions))
    else:
        print(listing.versions_text(versions))
    return 0


def _latest(registry: Any, project: str, name: str, entity: str) -> Any:
    try:
        return registry.get_version(project, name, "latest", entity=entity)
    except NotFoundError:
        return None


def _get(args: argparse.Namespace) -> int:
    artifact = _api(args).artifact(args.artifact)
    root = artifact.download(root=args.output, path_prefix=args.path_prefix)
    if args.json:
        name, version = artifact.qualified_name, artifact.version
        _print_json({"artifact": name, "version": version, "root": root})
    else:
        # Named as every command names a version: project/name:vN.
        print(printable(f"{artifact.project}/{artifact.name}:{artifact.version} -> {root}"))
    return 0


def _lineage(args: argparse.Namespace) -> int:
    api = _api(args)
    artifact = api.artifact(args.artifact)
    registry = registry_for(api.settings)
    graph = lineage.build_lineage(registry, artifact._version, depth=args.depth)
    if args.json:
        _print_json(lineage.to_json(graph))
    elif args.format == "dot":
        sys.stdout.write(lineage.render_dot(graph))
    else:
        sys.stdout.write(lineage.render_text(graph))
    return 0


def _gc(args: argparse.Namespace) -> int:
    # Imported when gc runs: collecting without a daemon loads the daemon's code and its
    # store clients, which the other commands never need.
    from artisync.sdk.garbage import collect_garbage

    config = Config.load(args.home)
    report = collect_garbage(config, dry_run=args.dry_run, grace_seconds=args.grace)
    if args.json:
        _print_json(report.to_json())
    else:
        print(printable(report.describe(), keep="\n"))
    return 0


def add_command(commands: Any) -> None:
    """Add ``ls``, ``get``, ``lineage`` and ``gc`` to the ``artisync`` parser."""
    ls = commands.add_parser(
        "ls", help="list projects, a project's artifacts, or an artifact's versions"
    )
    ls.add_argument("path", nargs="?", help="PROJECT or PROJECT/NAME ([ENTITY/]...)")
    ls.add_argument("--type", help="only artifacts of this type (with PROJECT)")
    ls.add_argument("--json", action="store_true", help="machine-readable output")
    ls.set_defaults(run=_ls)

    get = commands.add_parser("get", help="download a version, verifying every file")
    get.add_argument("artifact", help="[ENTITY/]PROJECT/NAME[:ALIAS or vN]")
    get.add_argument("-o", "--output", type=Path, help="where (default ./artifacts/NAME:vN)")
    get.add_argument("--path-prefix", help="only the entries under this path")
    get.add_argument("--json", action="store_true", help="machine-readable output")
    get.set_defaults(run=_get)

    lin = commands.add_parser("lineage", help="the runs and versions around a version")
    lin.add_argument("artifact", help="[ENTITY/]PROJECT/NAME[:ALIAS or vN]")
    # Machine-readable output is --json, as for every other command; --format picks
    # between the two renderings for people.
    drawn = lin.add_mutually_exclusive_group()
    drawn.add_argument(
        "--format",
        choices=["text", "dot"],
        default="text",
        help="text for people, dot for Graphviz (default text)",
    )
    drawn.add_argument("--json", action="store_true", help="machine-readable output")
    lin.add_argument("--depth", type=int, default=2, help="hops from the version (default 2)")
    lin.set_defaults(run=_lineage)

    gc = commands.add_parser(
        "gc", help="delete expired versions and blobs no version refers to any more"
    )
    gc.add_argument("--dry-run", action="store_true", help="report, delete nothing")
    gc.add_argument(
        "--grace",
        type=float,
        default=None,
        help="keep unreferenced blobs younger than this many seconds (default: the config's)",
    )
    gc.add_argument("--json", action="store_true", help="machine-readable output")
    gc.set_defaults(run=_gc)
