"""Sweeps: ``/api/v1/sweeps/{entity}/{project}/{sweep_id}``.

``PUT`` creates the sweep with the body's ``config`` (the same config again answers the
sweep as it is, as PUT promises; another config is a 400 naming the sweep); ``GET``
reads it. Creating a sweep is a write to the project, as creating a run is; reading one
is a read, and a sweep of a project the caller may not see is a sweep that does not
exist. A sweep's runs are the project's runs whose ``sweep`` is its id.
"""

from __future__ import annotations

from typing import Final, NoReturn

from artisync.errors import NotFoundError
from artisync.names import validate_project, validate_sweep_id
from artisync.registry import Registry, Sweep
from artisync.registry.run_rules import describe_missing_sweep
from artisync.server.access.policy import Action
from artisync.server.routes import API, Call, Operation, Route
from artisync.server.routes_runs import writing

__all__ = ["ROUTES", "SWEEP"]

SWEEP: Final = f"{API}/sweeps/{{entity}}/{{project}}/{{sweep_id}}"
"""The path of one sweep."""


def _sweep_key(call: Call) -> tuple[str, str, str]:
    return (
        call.entity(),
        call.path.name("project", validate_project),
        call.path.name("sweep_id", validate_sweep_id),
    )


def create_sweep(call: Call) -> Operation:
    entity, project, sweep_id = _sweep_key(call)
    config = call.body.json_object("config")
    assert config is not None

    def run(r: Registry) -> Sweep:
        writing(call, entity, project)
        return r.create_sweep(project, sweep_id, config, entity)

    return run


def get_sweep(call: Call) -> Operation:
    entity, project, sweep_id = _sweep_key(call)

    def run(r: Registry) -> Sweep:
        call.guard.require(
            entity, project, Action.READ, lambda: _no_sweep(entity, project, sweep_id)
        )
        return r.get_sweep(project, sweep_id, entity)

    return run


def _no_sweep(entity: str, project: str, sweep_id: str) -> NoReturn:
    raise NotFoundError(describe_missing_sweep(entity, project, sweep_id))


ROUTES: Final = (
    Route("PUT", SWEEP, create_sweep, "Create a sweep, or answer it if it has this config"),
    Route("GET", SWEEP, get_sweep, "One sweep"),
)
