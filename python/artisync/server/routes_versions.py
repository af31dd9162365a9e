"""Collections and versions: by name under ``/api/v1/versions/{entity}/{project}/{name}``,
by id under ``/api/v1/version-ids/{version_id}``, and what garbage collection asks.

Reads by name take what users type (``latest``, ``v3``, ``best``); edits go by id,
which stays the version's whatever aliases move, so two clients editing at once never
edit different versions by mistake. ``DELETE`` answers the tombstone (the version's
number stays taken); ``PATCH`` changes only the fields the body names, and null clears
one (no description, no TTL).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final, NoReturn

from artisync.errors import InvalidInputError, NotFoundError
from artisync.names import (
    check_description,
    check_list_length,
    validate_alias,
    validate_artifact_name,
    validate_artifact_type,
    validate_project,
)
from artisync.registry import UNSET, Collection, Registry, Version
from artisync.registry.contract import describe_collections
from artisync.server.access.policy import Action
from artisync.server.arguments import Arguments
from artisync.server.routes import API, Call, Operation, Route

__all__ = ["ROUTES", "VERSION_ID"]

VERSION_ID: Final = f"{API}/version-ids/{{version_id}}"
"""The path of one version, by id."""

_VERSIONS: Final = f"{API}/versions/{{entity}}/{{project}}/{{name}}"


def _collection(call: Call) -> tuple[str, str, str]:
    return (
        call.entity(),
        call.path.name("project", validate_project),
        call.path.name("name", validate_artifact_name),
    )


def version_id(call: Call) -> str:
    """The path's version id (an opaque string the registry gave out)."""
    return call.path.name("version_id")


def list_collections(call: Call) -> Operation:
    entity = call.entity()
    project = call.path.name("project", validate_project)
    kind = call.query.optional_name("type", validate_artifact_type)
    call.query.finish("the collections' query")

    def run(r: Registry) -> list[Collection]:
        if not call.guard.can_read(entity, project):
            return []  # what a project that does not exist lists
        return r.list_collections(project, kind, entity)

    return run


def _reading(call: Call, entity: str, project: str, name: str) -> None:
    """Refuse a read of ``entity/project/name`` as the registry refuses one of a project
    that does not exist."""
    call.guard.require(
        entity,
        project,
        Action.READ,
        lambda: _raise(NotFoundError(describe_collections(f"{entity}/{project}", name, []))),
    )


def list_versions(call: Call) -> Operation:
    entity, project, name = _collection(call)

    def run(r: Registry) -> list[Version]:
        _reading(call, entity, project, name)
        return r.list_versions(project, name, entity)

    return run


def get_version(call: Call) -> Operation:
    entity, project, name = _collection(call)
    ref = call.path.name("ref", validate_alias)

    def run(r: Registry) -> Version:
        _reading(call, entity, project, name)
        return r.get_version(project, name, ref, entity)

    return run


def get_version_by_id(call: Call) -> Operation:
    key = version_id(call)

    def run(r: Registry) -> Version:
        call.guard.version(key, Action.READ)
        return r.get_version_by_id(key)

    return run


def update_version(call: Call) -> Operation:
    key, body = version_id(call), call.body
    # A field left out keeps its value (UNSET); null clears the description or TTL.
    description: Any = UNSET
    if body.given("description"):
        description = body.free_text("description", limit=None)
        _check(body, "description", check_description, description)
    metadata: Any = body.json_object("metadata") if body.given("metadata") else UNSET
    ttl: Any = body.seconds("ttl_seconds") if body.given("ttl_seconds") else UNSET
    body.finish("a version's patch")

    def run(r: Registry) -> Version:
        call.guard.version(key, Action.WRITE)
        return r.update_version(key, description=description, metadata=metadata, ttl_seconds=ttl)

    return run


def set_aliases(call: Call) -> Operation:
    key, body = version_id(call), call.body
    aliases = body.names("aliases", validate_alias, required=True)
    _check(body, "aliases", lambda a: check_list_length(a, "aliases"), aliases)
    body.finish("a version's aliases")

    def run(r: Registry) -> Version:
        call.guard.version(key, Action.WRITE)
        return r.set_aliases(key, aliases)

    return run


def delete_version(call: Call) -> Operation:
    key = version_id(call)
    text = call.query.optional_name("delete_aliases") or "false"
    if text not in ("true", "false"):
        raise call.query.bad("delete_aliases", f"must be true or false, not {text[:40]!r}")
    call.query.finish("a delete's query")

    def run(r: Registry) -> Version:
        call.guard.version(key, Action.WRITE)
        return r.delete_version(key, delete_aliases=text == "true")

    return run


def expired_versions(call: Call) -> Operation:
    query = call.query
    now = query.number_text("now")
    limit = query.number_text("limit", default=1000)
    if not limit.is_integer() or limit < 1:
        raise query.bad("limit", f"must be a whole number >= 1, not {limit:g}")
    query.finish("the expired versions' query")

    def run(r: Registry) -> list[Version]:
        call.guard.site_admin("listing expired versions (gc)")
        return r.expired_versions(now, int(limit))

    return run


def live_manifest_keys(call: Call) -> Operation:
    def run(r: Registry) -> set[str]:
        call.guard.site_admin("listing live manifests (gc)")
        return r.live_manifest_keys()

    return run


def _raise(error: Exception) -> NoReturn:
    raise error


def _check(args: Arguments, field: str, check: Callable[[Any], object], value: Any) -> None:
    """Run one of ``artisync.names``' checks on a value already read, naming ``field``."""
    try:
        check(value)
    except InvalidInputError as exc:
        raise args.bad(field, str(exc)) from None


ROUTES: Final = (
    Route(
        "GET",
        f"{API}/collections/{{entity}}/{{project}}",
        list_collections,
        "A project's artifact collections (of ?type=, if given)",
    ),
    Route("GET", _VERSIONS, list_versions, "A collection's live versions, by index"),
    Route("GET", f"{_VERSIONS}/{{ref}}", get_version, "A version by alias or vN label"),
    Route("GET", VERSION_ID, get_version_by_id, "A live version by id"),
    Route("PATCH", VERSION_ID, update_version, "Change a version's description, metadata, TTL"),
    Route("DELETE", VERSION_ID, delete_version, "Delete a version; answers its tombstone"),
    Route("PUT", f"{VERSION_ID}/aliases", set_aliases, "Replace a version's user aliases"),
    Route(
        "GET",
        f"{API}/expired-versions",
        expired_versions,
        "Live versions whose TTL ran out by ?now= (at most ?limit=)",
    ),
    Route(
        "GET",
        f"{API}/live-manifest-keys",
        live_manifest_keys,
        "Manifest keys of live versions and pending parts",
    ),
)
