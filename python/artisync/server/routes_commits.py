"""Commits and parts: ``POST /api/v1/commits``, ``POST /api/v1/parts`` and their reads.

A commit's body is a :class:`~artisync.registry.NewVersion` as its ``to_json`` gives it;
commits go to the database in groups (``commit_batch``).
Its submission id is the idempotency key: a commit sent again after its answer was lost
returns the first answer (same version, same ``created``), because the registry keys
the commit on it; so the route needs no state of its own and any server process may
take the retry. ``GET /api/v1/commits/{submission_id}`` asks what a submission produced
without committing anything (404 when it never was).
"""

from __future__ import annotations

from typing import Any, Final

from artisync.errors import InvalidInputError, NotFoundError
from artisync.names import (
    LABEL_MAX_LENGTH,
    check_description,
    check_list_length,
    validate_alias,
    validate_artifact_name,
    validate_artifact_type,
    validate_distributed_id,
    validate_entity,
    validate_project,
    validate_tag,
)
from artisync.registry import DEFAULT_ENTITY, CommitResult, NewPart, NewVersion, Part, Registry
from artisync.registry.contract import check_store
from artisync.server.access.policy import Action
from artisync.server.arguments import Arguments
from artisync.server.routes import API, Awaited, Call, Operation, Route
from artisync.server.routes_runs import check_run_id, writing

__all__ = ["ROUTES"]


def check_submission_id(text: str) -> str:
    """``text`` if it can be a submission id, else :class:`InvalidInputError`.

    Any printable label of at most :data:`~artisync.names.LABEL_MAX_LENGTH` characters:
    the SDK's ids are 32 hex digits, but the registry keys commits on whatever id a
    client chose, and an importer or another client may choose otherwise.
    """
    if len(text) > LABEL_MAX_LENGTH:
        raise InvalidInputError(
            f"a submission id is at most {LABEL_MAX_LENGTH} characters long; this one has "
            f"{len(text)} (the SDK's are 32 hex digits)"
        )
    return text


def _content(body: Arguments) -> dict[str, Any]:
    """The fields a version and a part share, checked."""
    name = body.name("name", validate_artifact_name)
    return {
        "submission_id": body.name("submission_id", check_submission_id),
        "project": body.name("project", validate_project),
        "entity": body.optional_name("entity", validate_entity),
        "name": name,
        # run.log_code's own source-* artifacts are taken, as the daemon takes them.
        "type": body.name(
            "type", lambda t: validate_artifact_type(t, name, allow_reserved_names=True)
        ),
        "manifest_key": body.name("manifest_key"),
        "size": body.count("size"),
        "file_count": body.count("file_count"),
        "run_id": body.optional_name("run_id", check_run_id),
        "store": body.optional_name("store", lambda s: check_store(s, what=f"artifact {name!r}")),
    }


def _new_version(body: Arguments) -> NewVersion:
    fields = _content(body)
    fields["digest"] = body.name("digest")
    description = body.free_text("description", limit=None)
    try:
        fields["description"] = check_description(description)
    except InvalidInputError as exc:
        raise body.bad("description", str(exc)) from None
    fields["metadata"] = body.json_object("metadata", required=False) or {}
    for field, check in (("aliases", validate_alias), ("tags", validate_tag)):
        values = body.names(field, check)
        try:
            fields[field] = check_list_length(values, field)
        except InvalidInputError as exc:
            raise body.bad(field, str(exc)) from None
    fields["ttl_seconds"] = body.seconds("ttl_seconds")
    fields["distributed_id"] = body.optional_name("distributed_id", validate_distributed_id)
    body.finish("a NewVersion")
    return NewVersion.from_json(fields, error=InvalidInputError)


def commit_version(call: Call) -> Awaited:
    version = _new_version(call.body)
    return Awaited(_commit(call, version))


async def _commit(call: Call, version: NewVersion) -> CommitResult:
    """Check the caller's rights and the content (when the server has a store), then
    commit in the next batch."""
    entity, project = version.entity or DEFAULT_ENTITY, version.project
    if not call.guard.allowed_from_cache(entity, project, Action.WRITE):
        await call.run(lambda r: writing(call, entity, project))
    content = call.content
    # A retry that finds its answer was checked the first time.
    if content is not None and await call.run(
        lambda r: r.submission_result(version.submission_id) is None
    ):
        await content.require(version, call.caller)
    result = await call.commits.commit(version)
    done = result.version
    place = (done.entity or DEFAULT_ENTITY, done.project)
    if place != (entity, project) and not await call.run(lambda r: call.guard.can_read(*place)):
        # The id of a commit elsewhere, which the caller may not see (ids are in spool
        # files a node's group reads): its answer is not theirs, and nothing was written.
        raise InvalidInputError(
            f"submission id {version.submission_id} was committed before, to another "
            "artifact: a submission id is used once; send this version under a new one"
        )
    call.metrics.commits.labels("created" if result.created else "existing").inc()
    return result


def submission_result(call: Call) -> Operation:
    submission_id = call.path.name("submission_id", check_submission_id)

    def run(registry: Registry) -> CommitResult:
        result = registry.submission_result(submission_id)
        if result is None or not call.guard.can_read(result.version.entity, result.version.project):
            raise NotFoundError(f"submission {submission_id} has not been committed")
        return result

    return run


def add_part(call: Call) -> Awaited:
    body = call.body
    fields = _content(body)
    fields["distributed_id"] = body.name("distributed_id", validate_distributed_id)
    body.finish("a NewPart")
    part = NewPart.from_json(fields, error=InvalidInputError)
    return Awaited(_add_part(call, part))


async def _add_part(call: Call, part: NewPart) -> None:
    """Check the caller's rights and the part's content, then record it: the version
    that merges the parts names their blobs on the strength of this check."""
    await call.run(lambda r: writing(call, part.entity or DEFAULT_ENTITY, part.project))
    if call.content is not None:
        await call.content.require(part, call.caller)
    await call.run(lambda r: r.add_part(part))


def list_parts(call: Call) -> Operation:
    entity = call.entity()
    project = call.path.name("project", validate_project)
    name = call.path.name("name", validate_artifact_name)
    distributed_id = call.path.name("distributed_id", validate_distributed_id)

    def run(r: Registry) -> list[Part]:
        if not call.guard.can_read(entity, project):
            return []  # what a project that does not exist lists
        return r.list_parts(project, name, distributed_id, entity)

    return run


ROUTES: Final = (
    Route("POST", f"{API}/commits", commit_version, "Commit a NewVersion, idempotently"),
    Route(
        "GET",
        f"{API}/commits/{{submission_id}}",
        submission_result,
        "What committing a submission produced (404: not committed)",
    ),
    Route("POST", f"{API}/parts", add_part, "Record a part of a distributed version"),
    Route(
        "GET",
        f"{API}/parts/{{entity}}/{{project}}/{{name}}/{{distributed_id}}",
        list_parts,
        "The pending parts of a distributed version",
    ),
)
