"""Lineage: which runs logged and used a version, which versions a run logged and used.

A run is named by its project and id (``/api/v1/runs/{entity}/{project}/{run_id}/…``)
or by its id alone (``/api/v1/run-ids/{run_id}/…``), as the ``Registry`` protocol lets
lineage calls leave the project out: run ids are random, and a registry that holds one
id in two projects answers that the project must be named. Recording a use is a ``PUT``
of the edge ``…/used/{version_id}``: repeating it changes nothing, as PUT promises and
as ``record_use`` does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from artisync.registry import Registry, Run, Version
from artisync.registry.model import hidden_run, hidden_version
from artisync.server.access.policy import Action
from artisync.server.routes import API, Call, Operation, Route
from artisync.server.routes_runs import RUN, check_run_id, reading_run, run_key, writing
from artisync.server.routes_versions import VERSION_ID, version_id

__all__ = ["ROUTES"]

_RUN_ID: Final = f"{API}/run-ids/{{run_id}}"


def _run(call: Call, scoped: bool) -> tuple[str, str | None, str | None]:
    """``(run_id, project, entity)``: the project and entity are None for a run named
    by id alone."""
    if scoped:
        entity, project, run_id = run_key(call)
        return run_id, project, entity
    return call.path.name("run_id", check_run_id), None, None


def _the_runs_project(call: Call, run_id: str, project: str | None, entity: str | None) -> None:
    """A run named by id alone has no project to check until found; only a site admin
    may name runs so. Others name the project, as the SDK does."""
    if project is None or entity is None:
        call.guard.site_admin(
            f"naming run {run_id!r} without its project (/run-ids/…) searches"
            " every project; use /runs/{entity}/{project}/{run_id}/… instead, and it"
        )


def _versions_of_run(direction: str, scoped: bool) -> Callable[[Call], Operation]:
    def handler(call: Call) -> Operation:
        run_id, project, entity = _run(call, scoped)

        def run(r: Registry) -> list[Version]:
            _the_runs_project(call, run_id, project, entity)
            if project is not None and entity is not None:
                reading_run(call, entity, project, run_id)
            if direction == "logged":
                found = r.logged_by_run(run_id, project=project, entity=entity)
            else:
                found = r.used_by_run(run_id, project=project, entity=entity)
            return call.guard.masked(found, lambda v: (v.entity, v.project), hidden_version)

        return run

    return handler


def _record_use(scoped: bool) -> Callable[[Call], Operation]:
    def handler(call: Call) -> Operation:
        run_id, project, entity = _run(call, scoped)
        key = call.path.name("version_id")
        call.body.finish("a use (the path says it all)")

        def run(r: Registry) -> None:
            _the_runs_project(call, run_id, project, entity)
            if project is not None and entity is not None:
                writing(call, entity, project)
            call.guard.version(key, Action.READ)
            r.record_use(run_id, key, project=project, entity=entity)

        return run

    return handler


def produced_by(call: Call) -> Operation:
    key = version_id(call)

    def run(r: Registry) -> Run | None:
        call.guard.version(key, Action.READ)
        found = r.produced_by(key)
        if found is None or call.guard.can_read(found.entity, found.project):
            return found
        return hidden_run()

    return run


def _runs_of_version(call: Call, listing: Callable[[Registry, str], list[Run]]) -> Operation:
    key = version_id(call)

    def run(r: Registry) -> list[Run]:
        call.guard.version(key, Action.READ)
        runs = listing(r, key)
        return call.guard.masked(runs, lambda found: (found.entity, found.project), hidden_run)

    return run


def writers(call: Call) -> Operation:
    return _runs_of_version(call, lambda r, key: r.writers(key))


def used_by(call: Call) -> Operation:
    return _runs_of_version(call, lambda r, key: r.used_by(key))


ROUTES: Final = (
    Route("GET", f"{VERSION_ID}/produced-by", produced_by, "The run that created a version"),
    Route("GET", f"{VERSION_ID}/writers", writers, "Every run that logged a version"),
    Route("GET", f"{VERSION_ID}/used-by", used_by, "The runs that used a version"),
    Route("GET", f"{RUN}/logged", _versions_of_run("logged", True), "Versions a run logged"),
    Route("GET", f"{RUN}/used", _versions_of_run("used", True), "Versions a run used"),
    Route(
        "GET",
        f"{_RUN_ID}/logged",
        _versions_of_run("logged", False),
        "Versions a run logged (the run by id alone)",
    ),
    Route(
        "GET",
        f"{_RUN_ID}/used",
        _versions_of_run("used", False),
        "Versions a run used (the run by id alone)",
    ),
    Route(
        "PUT",
        f"{RUN}/used/{{version_id}}",
        _record_use(True),
        "Record that a run used a version",
    ),
    Route(
        "PUT",
        f"{_RUN_ID}/used/{{version_id}}",
        _record_use(False),
        "Record that a run used a version (the run by id alone)",
    ),
)
