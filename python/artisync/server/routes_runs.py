"""Projects and runs: ``/api/v1/projects`` and ``/api/v1/runs/{entity}/{project}/…``.

A run is addressed by its project and id, as W&B's run paths are. ``PUT`` is
``ensure_run`` (create, or update the fields given: repeating it is harmless, as PUT
promises); ``PATCH`` replaces the summary or sets the state, one per request, since each
is its own registry call and a request that did half would leave a caller guessing.
"""

from __future__ import annotations

from typing import Final

from artisync.errors import InvalidInputError
from artisync.names import LABEL_MAX_LENGTH, RUN_NAME_MAX_LENGTH, validate_project
from artisync.registry import RUN_STATES
from artisync.server.routes import API, Call, Operation, Route

__all__ = ["ROUTES", "RUN", "check_run_id", "run_key"]

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
    body.finish("a run's fields (PUT)")
    return lambda r: r.ensure_run(
        project, entity, run_id, name=name, job_type=job_type, group=group, config=config
    )


def get_run(call: Call) -> Operation:
    entity, project, run_id = run_key(call)
    return lambda r: r.get_run(project, run_id, entity)


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
        return lambda r: r.set_run_summary(project, run_id, summary, entity)
    state = body.name("state")
    if state not in RUN_STATES:
        raise body.bad(
            "state", f"{state!r} is not a run state; use one of {', '.join(map(repr, RUN_STATES))}"
        )
    body.finish("a run's patch")
    return lambda r: r.set_run_state(project, run_id, state, entity)


def list_runs(call: Call) -> Operation:
    entity = call.entity()
    project = call.path.name("project", validate_project)
    return lambda r: r.list_runs(project, entity)


def list_projects(call: Call) -> Operation:
    del call  # every project: access control will narrow it to the caller's
    return lambda r: r.list_projects()


ROUTES: Final = (
    Route("GET", f"{API}/projects", list_projects, "Every project, by entity and name"),
    Route("GET", f"{API}/runs/{{entity}}/{{project}}", list_runs, "A project's runs"),
    Route("PUT", RUN, ensure_run, "Create a run, or update the fields given"),
    Route("GET", RUN, get_run, "One run"),
    Route("PATCH", RUN, patch_run, "Replace a run's summary, or set its state"),
)
