"""Who the caller is, and a project's visibility: ``GET /api/v1/viewer`` and
``PUT /api/v1/projects/{entity}/{project}``.

``viewer`` is W&B's: the user a key belongs to, their default entity (their own) and
their teams, what ``artisync login`` shows and what a client fills an omitted entity
with. ``PUT`` of a project creates it with the visibility given (a team's admins and
members may, as they may log into it) or changes an existing one's (its team's admins
only). Users, teams and keys are the operator's: ``artisync server admin``.
"""

from __future__ import annotations

import functools
from typing import Any, Final, NoReturn

from artisync.errors import NotFoundError
from artisync.names import validate_project
from artisync.registry import Registry
from artisync.server.access.policy import VISIBILITIES, Action
from artisync.server.routes import API, Call, Operation, Route

__all__ = ["ROUTES"]


def viewer(call: Call) -> Operation:
    caller = call.caller

    def run(registry: Registry) -> dict[str, Any]:
        del registry
        return {
            "user": caller.user,
            "default_entity": caller.user,
            "site_admin": caller.site_admin,
            "teams": dict(sorted(caller.roles.items())),
        }

    return run


def put_project(call: Call) -> Operation:
    entity = call.entity()
    project = call.path.name("project", validate_project)
    visibility = call.body.name("visibility")
    if visibility not in VISIBILITIES:
        raise call.body.bad("visibility", f"{visibility!r} is none of {', '.join(VISIBILITIES)}")
    call.body.finish("a project's settings")

    def run(registry: Registry) -> dict[str, Any]:
        del registry
        guard = call.guard
        directory = guard.gate.directory
        absent = functools.partial(_no_project, entity, project)
        if guard.gate.visibility(entity, project) is None:
            guard.require(entity, project, Action.WRITE, absent)
            if directory.create_project(entity, project, visibility):
                return {"entity": entity, "project": project, "visibility": visibility}
        guard.require(entity, project, Action.ADMINISTER, absent)
        directory.set_visibility(entity, project, visibility)
        return {"entity": entity, "project": project, "visibility": visibility}

    return run


def _no_project(entity: str, project: str) -> NoReturn:
    raise NotFoundError(f"no project {entity}/{project}")


ROUTES: Final = (
    Route("GET", f"{API}/viewer", viewer, "The caller: user, default entity, teams"),
    Route(
        "PUT",
        f"{API}/projects/{{entity}}/{{project}}",
        put_project,
        "Create a project with a visibility, or change its visibility",
    ),
)
