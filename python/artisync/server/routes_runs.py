"""Projects and runs: ``/api/v1/projects`` and ``/api/v1/runs/{entity}/{project}/…``.

A run is addressed by its project and id, as W&B's run paths are. ``PUT`` is
``ensure_run`` (create, or update the fields given: repeating it is harmless, as PUT
promises); ``PATCH`` replaces the summary or sets the state, one per request, since each
is its own registry call and a request that did half would leave a caller guessing.
``…/history`` holds the run's history rows: ``POST`` stores a batch (a step stored
already gets the new row, so sending a batch again is harmless), ``GET`` reads them all.
Writing history is a write to the project, reading it a read of the run.
"""

from __future__ import annotations

from typing import Any, Final, NoReturn

from artisync.errors import InvalidInputError, NotFoundError
from artisync.names import (
    LABEL_MAX_LENGTH,
    RUN_NAME_MAX_LENGTH,
    check_notes,
    validate_project,
    validate_run_tag,
    validate_sweep_id,
)
from artisync.registry import RUN_STATES, Project, Registry, Run
from artisync.registry.run_rules import MAX_HISTORY_ROWS
from artisync.server.access.policy import Action
from artisync.server.routes import API, Call, Operation, Route

__all__ = ["ROUTES", "RUN", "check_run_id", "reading_run", "run_key", "writing"]

RUN: Final = f"{API}/runs/{{entity}}/{{project}}/{{run_id}}"
"""The path of one run."""


def check_run_id(run_id: str) -> str:
    """``run_id`` if the registry can hold it as a run id, else ``InvalidInputError``.

    At most :data:`~artisync.names.LABEL_MAX_LENGTH` characters and no ``/``, which
    separates the parts of a run's path. W&B's further rule (no ``\\ # ? % :``) is the
    SDK's, checked where runs are made; the registry holds whatever ids it was given
    (an imported registry's too), and every one of them must stay reachable here.
    """
    if len(run_id) > LABEL_MAX_LENGTH:
        raise InvalidInputError(
            f"Invalid run id {run_id[:LABEL_MAX_LENGTH]!r}...: is {len(run_id):,} characters "
            f"long; at most {LABEL_MAX_LENGTH} are allowed"
        )
    if "/" in run_id:
        raise InvalidInputError(f"Invalid run id {run_id!r}: must not contain '/'")
    return run_id


def run_key(call: Call) -> tuple[str, str, str]:
    """The ``entity``, ``project`` and ``run_id`` of a run's path, checked."""
    return (
        call.entity(),
        call.path.name("project", validate_project),
        call.path.name("run_id", check_run_id),
    )


def ensure_run(call: Call) -> Operation:
    entity, project, run_id = run_key(call)
    body = call.body
    # Free text, as the registry keeps them: shown in listings, never part of a path.
    name = body.free_text("name", limit=RUN_NAME_MAX_LENGTH)
    job_type = body.free_text("job_type", limit=LABEL_MAX_LENGTH)
    group = body.free_text("group", limit=LABEL_MAX_LENGTH)
    config = body.json_object("config", required=False)
    # Absent: leave the run's tags as they are (an empty list clears them).
    tags = body.names("tags", validate_run_tag) if body.given("tags") else None
    notes = body.checked_text("notes", check_notes)
    sweep = body.optional_name("sweep", validate_sweep_id)
    body.finish("a run's fields (PUT)")

    def run(r: Registry) -> Run:
        writing(call, entity, project)
        return r.ensure_run(
            project,
            entity,
            run_id,
            name=name,
            job_type=job_type,
            group=group,
            config=config,
            tags=tags,
            notes=notes,
            sweep=sweep,
        )

    return run


def append_history(call: Call) -> Operation:
    entity, project, run_id = run_key(call)
    rows = call.body.json_objects("rows", limit=MAX_HISTORY_ROWS)

    def run(r: Registry) -> None:
        writing(call, entity, project)
        r.append_history(project, run_id, rows, entity)

    return run


def run_history(call: Call) -> Operation:
    entity, project, run_id = run_key(call)

    def run(r: Registry) -> list[dict[str, Any]]:
        reading_run(call, entity, project, run_id)
        return r.run_history(project, run_id, entity)

    return run


def writing(call: Call, entity: str, project: str) -> None:
    """Refuse a write to ``entity/project`` unless the caller may (a project the caller
    may not see is one that does not exist)."""
    call.guard.require(entity, project, Action.WRITE, lambda: _no_project(entity, project))


def reading_run(call: Call, entity: str, project: str, run_id: str) -> None:
    """Refuse a read of a run unless the caller may see its project; one they may not
    see is a run that does not exist."""
    call.guard.require(entity, project, Action.READ, lambda: _no_run(entity, project, run_id))


def get_run(call: Call) -> Operation:
    entity, project, run_id = run_key(call)

    def run(r: Registry) -> Run:
        reading_run(call, entity, project, run_id)
        return r.get_run(project, run_id, entity)

    return run


def patch_run(call: Call) -> Operation:
    entity, project, run_id = run_key(call)
    body = call.body
    if body.given("summary") == body.given("state"):
        raise body.bad(
            "body", "give exactly one of summary (a JSON object) and state, one per request"
        )
    if body.given("summary"):
        summary = body.json_object("summary")
        assert summary is not None
        body.finish("a run's patch")

        def write_summary(r: Registry) -> Run:
            writing(call, entity, project)
            return r.set_run_summary(project, run_id, summary, entity)

        return write_summary
    state = body.name("state")
    if state not in RUN_STATES:
        raise body.bad(
            "state", f"{state!r} is not a run state; use one of {', '.join(map(repr, RUN_STATES))}"
        )
    body.finish("a run's patch")

    def write_state(r: Registry) -> Run:
        writing(call, entity, project)
        return r.set_run_state(project, run_id, state, entity)

    return write_state


def list_runs(call: Call) -> Operation:
    entity = call.entity()
    project = call.path.name("project", validate_project)

    def run(r: Registry) -> list[Run]:
        if not call.guard.can_read(entity, project):
            return []  # what a project that does not exist lists
        return r.list_runs(project, entity)

    return run


def list_projects(call: Call) -> Operation:
    def run(r: Registry) -> list[Project]:
        return call.guard.readable(r.list_projects(), lambda p: (p.entity, p.name))

    return run


def _no_project(entity: str, project: str) -> NoReturn:
    raise NotFoundError(f"no project {entity}/{project}")


def _no_run(entity: str, project: str, run_id: str) -> NoReturn:
    raise NotFoundError(f"run {run_id!r} not found in project '{entity}/{project}'")


ROUTES: Final = (
    Route("GET", f"{API}/projects", list_projects, "Every project, by entity and name"),
    Route("GET", f"{API}/runs/{{entity}}/{{project}}", list_runs, "A project's runs"),
    Route("PUT", RUN, ensure_run, "Create a run, or update the fields given"),
    Route("GET", RUN, get_run, "One run"),
    Route("PATCH", RUN, patch_run, "Replace a run's summary, or set its state"),
    Route("POST", f"{RUN}/history", append_history, "Store history rows of a run"),
    Route("GET", f"{RUN}/history", run_history, "A run's history rows, by step"),
)
