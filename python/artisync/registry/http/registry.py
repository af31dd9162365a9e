"""The registry of a running ``artisync server``, over its HTTP API.

:class:`HttpRegistry` is the :class:`~artisync.registry.contract.Registry` contract as a
client: each method is one request to ``/api/v1/…`` (the routes are in
``artisync.server``, the document in ``docs/openapi.json``), records travel as their
``to_json`` gives them and come back through ``from_json``, and the server's refusals
come back as the exceptions the database backends raise. It is what a node's daemon and
``artisync.Api`` use when ``registry`` is a URL.

It is synchronous, like the protocol, and thread-safe: threads share a pool of
keep-alive connections (``http.transport``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from artisync.credentials import api_key_for
from artisync.errors import InvalidInputError, NotFoundError
from artisync.names import validate_sweep_id
from artisync.registry.contract import UNSET, Closing, Unset, check_ttl, to_json
from artisync.registry.http.transport import Transport, segment
from artisync.registry.linking import linked_version
from artisync.registry.model import (
    DEFAULT_ENTITY,
    Collection,
    CommitResult,
    NewPart,
    NewVersion,
    Part,
    Project,
    Run,
    Sweep,
    Version,
)
from artisync.registry.run_rules import check_run_fields, history_chunks, history_rows, sweep_config

__all__ = ["HttpRegistry"]

_API = "/api/v1"


def _path(*parts: str) -> str:
    return _API + "".join("/" + segment(part) for part in parts)


class HttpRegistry(Closing):
    """The registry behind an ``artisync server`` at ``base_url``.

    ``timeout`` bounds how long one call waits for its answer; connecting gives up
    sooner (a few seconds), so a server that is down is reported at once, as
    :class:`~artisync.errors.RegistryUnavailableError`. ``ca_file`` is the PEM file of
    the CA that signed the server's certificate, when it is not one the system trusts.
    ``api_key`` is sent with every request; by default the caller's
    (:func:`artisync.credentials.api_key_for`). ``entity=None`` everywhere means
    :data:`~artisync.registry.model.DEFAULT_ENTITY`.
    """

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float = 30.0,
        ca_file: str | None = None,
        api_key: str | None = None,
    ):
        # No key given: the caller's (ARTISYNC_API_KEY, WANDB_API_KEY, `artisync login`).
        key = api_key if api_key is not None else api_key_for(base_url)
        self._http = Transport(base_url, timeout=timeout, ca_file=ca_file, api_key=key)

    @property
    def where(self) -> str:
        """The server, as messages name it."""
        return self._http.url

    def close(self) -> None:
        """Close the kept connections (the server holds nothing for this client)."""
        self._http.close()

    # -- the caller and projects' visibility (the server's own, beyond the protocol) --

    def viewer(self) -> dict[str, Any]:
        """Who this client's key belongs to: ``user``, ``default_entity``,
        ``site_admin`` and ``teams`` (team name to role)."""
        answer: dict[str, Any] = self._http.call("GET", _path("viewer"))
        return answer

    def put_project(self, project: str, visibility: str, entity: str | None = None) -> None:
        """Create the project with ``visibility`` (private, public, open), or change an
        existing one's (its team's admins only)."""
        path = _path("projects", entity or DEFAULT_ENTITY, project)
        self._http.call("PUT", path, body={"visibility": visibility})

    # -- runs -------------------------------------------------------------------------

    def _run_path(self, project: str, run_id: str, entity: str | None, *rest: str) -> str:
        return _path("runs", entity or DEFAULT_ENTITY, project, run_id, *rest)

    def ensure_run(
        self,
        project: str,
        entity: str | None,
        run_id: str,
        *,
        name: str | None = None,
        job_type: str | None = None,
        group: str | None = None,
        config: Mapping[str, Any] | None = None,
        tags: Sequence[str] | None = None,
        notes: str | None = None,
        sweep: str | None = None,
    ) -> Run:
        """Create the run if new, else update the fields given; return it."""
        if config is not None:
            to_json(config, what=f"config of run {run_id!r}")  # refused here, as locally
        fields = {"name": name, "job_type": job_type, "group": group, "config": config}
        fields.update(check_run_fields(run_id, tags, notes, sweep))
        # Only what is given travels: a server older than tags, notes and sweeps still
        # takes a run that has none.
        body = {key: value for key, value in fields.items() if value is not None}
        return Run.from_json(
            self._http.call("PUT", self._run_path(project, run_id, entity), body=body)
        )

    def get_run(self, project: str, run_id: str, entity: str | None = None) -> Run:
        """One run of a project; ``NotFoundError`` if there is none."""
        return Run.from_json(self._http.call("GET", self._run_path(project, run_id, entity)))

    def find_run(self, project: str, run_id: str, entity: str | None = None) -> Run | None:
        """One run of a project, or None if there is none."""
        try:
            return self.get_run(project, run_id, entity)
        except NotFoundError:
            return None

    def set_run_summary(
        self,
        project: str,
        run_id: str,
        summary: Mapping[str, Any],
        entity: str | None = None,
    ) -> Run:
        """Replace a run's summary."""
        to_json(summary, what=f"summary of run {run_id!r}")
        path = self._run_path(project, run_id, entity)
        return Run.from_json(self._http.call("PATCH", path, body={"summary": dict(summary)}))

    def set_run_state(
        self, project: str, run_id: str, state: str, entity: str | None = None
    ) -> Run:
        """Set a run's state (``running``, ``finished``, ``crashed``)."""
        path = self._run_path(project, run_id, entity)
        return Run.from_json(self._http.call("PATCH", path, body={"state": state}))

    def list_runs(self, project: str, entity: str | None = None) -> list[Run]:
        """A project's runs, oldest first."""
        answer = self._http.call("GET", _path("runs", entity or DEFAULT_ENTITY, project))
        return [Run.from_json(item) for item in answer]

    def append_history(
        self,
        project: str,
        run_id: str,
        rows: Sequence[Mapping[str, Any]],
        entity: str | None = None,
    ) -> None:
        """Store history rows of a run; a row whose ``_step`` is stored replaces it.

        Checked here as the database backends check them; a large batch travels as
        several requests (each row's step makes sending it again harmless), so a batch
        the server refuses part of may be stored in part: write it again to finish it.
        """
        checked = history_rows(rows, run=run_id)
        path = self._run_path(project, run_id, entity, "history")
        for chunk in history_chunks(checked) if checked else [[]]:
            self._http.call("POST", path, body={"rows": [json.loads(text) for _, text in chunk]})

    def run_history(
        self, project: str, run_id: str, entity: str | None = None
    ) -> list[dict[str, Any]]:
        """A run's history rows, by ``_step``."""
        answer = self._http.call("GET", self._run_path(project, run_id, entity, "history"))
        return [dict(row) for row in answer]

    # -- sweeps -----------------------------------------------------------------------

    def create_sweep(
        self,
        project: str,
        sweep_id: str,
        config: Mapping[str, Any],
        entity: str | None = None,
    ) -> Sweep:
        """Create a sweep, or return it when it exists with the same config."""
        sweep_config(config, sweep_id=validate_sweep_id(sweep_id))
        path = _path("sweeps", entity or DEFAULT_ENTITY, project, sweep_id)
        return Sweep.from_json(self._http.call("PUT", path, body={"config": dict(config)}))

    def get_sweep(self, project: str, sweep_id: str, entity: str | None = None) -> Sweep:
        """One sweep of a project; ``NotFoundError`` if there is none."""
        path = _path("sweeps", entity or DEFAULT_ENTITY, project, sweep_id)
        return Sweep.from_json(self._http.call("GET", path))

    # -- versions ---------------------------------------------------------------------

    def commit_version(self, version: NewVersion) -> CommitResult:
        """Commit a submission's version; sending it again returns the same result."""
        # Checked here as the database backends check them, so a bad value is refused
        # in the same words before it travels (NaN is not even JSON).
        to_json(version.metadata, what=f"metadata of artifact {version.name!r}")
        check_ttl(version.ttl_seconds, what=f"artifact {version.name!r}")
        answer = self._http.call("POST", _path("commits"), body=version.to_json())
        return CommitResult.from_json(answer)

    def link_version(
        self,
        version_id: str,
        *,
        project: str,
        name: str,
        entity: str | None = None,
        aliases: Sequence[str] = (),
        submission_id: str,
    ) -> CommitResult:
        """Link a live version into ``entity/project/name`` (``registry.linking``): the
        source is read and the link committed with this client's key, so the server
        checks both as for any read and commit (the caller may read the source, which
        proves they hold its blobs, and may write the target project)."""
        earlier = self.submission_result(submission_id)
        if earlier is not None:
            return earlier
        link = linked_version(
            self.get_version_by_id(version_id),
            submission_id=submission_id,
            project=project,
            name=name,
            entity=entity,
            aliases=aliases,
        )
        return self.commit_version(link)

    def submission_result(self, submission_id: str) -> CommitResult | None:
        """What committing a submission produced (maybe deleted since), or None."""
        try:
            return CommitResult.from_json(self._http.call("GET", _path("commits", submission_id)))
        except NotFoundError:
            return None

    def add_part(self, part: NewPart) -> None:
        """Record a part of a distributed version, idempotently."""
        self._http.call("POST", _path("parts"), body=part.to_json())

    def list_parts(
        self, project: str, name: str, distributed_id: str, entity: str | None = None
    ) -> list[Part]:
        """The pending parts of a distributed version, in the order they were added."""
        path = _path("parts", entity or DEFAULT_ENTITY, project, name, distributed_id)
        return [Part.from_json(item) for item in self._http.call("GET", path)]

    def get_version(
        self, project: str, name: str, alias_or_version: str, entity: str | None = None
    ) -> Version:
        """A version by alias or ``vN`` label."""
        path = _path("versions", entity or DEFAULT_ENTITY, project, name, alias_or_version)
        return Version.from_json(self._http.call("GET", path))

    def get_version_by_id(self, version_id: str) -> Version:
        """A live version by id."""
        return Version.from_json(self._http.call("GET", _path("version-ids", version_id)))

    def list_versions(self, project: str, name: str, entity: str | None = None) -> list[Version]:
        """A collection's live versions, by index."""
        path = _path("versions", entity or DEFAULT_ENTITY, project, name)
        return [Version.from_json(item) for item in self._http.call("GET", path)]

    def list_projects(self) -> list[Project]:
        """Every project with an artifact or a run, by entity and name."""
        return [Project.from_json(item) for item in self._http.call("GET", _path("projects"))]

    def list_collections(
        self, project: str, type: str | None = None, entity: str | None = None
    ) -> list[Collection]:
        """A project's artifact collections, by name."""
        path = _path("collections", entity or DEFAULT_ENTITY, project)
        answer = self._http.call("GET", path, query=None if type is None else {"type": type})
        return [Collection.from_json(item) for item in answer]

    def set_aliases(self, version_id: str, aliases: Sequence[str]) -> Version:
        """Replace a version's user aliases, moving them from other versions."""
        path = _path("version-ids", version_id, "aliases")
        return Version.from_json(self._http.call("PUT", path, body={"aliases": list(aliases)}))

    def update_version(
        self,
        version_id: str,
        *,
        description: str | Unset | None = UNSET,
        metadata: Mapping[str, Any] | Unset = UNSET,
        ttl_seconds: float | Unset | None = UNSET,
    ) -> Version:
        """Change a version's description, metadata or TTL; what is left out stays."""
        try:
            _check_edit("?", description, metadata, ttl_seconds)
        except InvalidInputError:
            # Refused in the backends' words, which name the version by its label: the
            # one round trip is paid only by a call that fails anyway.
            version = self.get_version_by_id(version_id)
            _check_edit(f"{version.name}:{version.version}", description, metadata, ttl_seconds)
            raise
        body: dict[str, Any] = {}
        if description is not UNSET:
            body["description"] = description
        if not isinstance(metadata, Unset):
            body["metadata"] = dict(metadata)
        if ttl_seconds is not UNSET:
            body["ttl_seconds"] = ttl_seconds
        path = _path("version-ids", version_id)
        return Version.from_json(self._http.call("PATCH", path, body=body))

    def delete_version(self, version_id: str, *, delete_aliases: bool = False) -> Version:
        """Delete a version (its number stays taken); return its tombstone."""
        query = {"delete_aliases": "true" if delete_aliases else "false"}
        path = _path("version-ids", version_id)
        return Version.from_json(self._http.call("DELETE", path, query=query))

    def expired_versions(self, now: float, limit: int = 1000) -> list[Version]:
        """Live versions whose TTL ran out at or before ``now``."""
        # repr: the shortest text that reads back as the same float.
        query = {"now": repr(float(now)), "limit": str(limit)}
        answer = self._http.call("GET", _path("expired-versions"), query=query)
        return [Version.from_json(item) for item in answer]

    def live_manifest_keys(self) -> set[str]:
        """Manifest keys of live versions and pending parts (what GC must keep)."""
        return set(self._http.call("GET", _path("live-manifest-keys")))

    # -- lineage ----------------------------------------------------------------------

    def _run_lineage(self, run_id: str, project: str | None, entity: str | None) -> list[str]:
        # A run named by id alone has its own routes; the entity only narrows a project.
        if project is None:
            return ["run-ids", run_id]
        return ["runs", entity or DEFAULT_ENTITY, project, run_id]

    def record_use(
        self,
        run_id: str,
        version_id: str,
        *,
        project: str | None = None,
        entity: str | None = None,
    ) -> None:
        """Record that a run used a version."""
        path = _path(*self._run_lineage(run_id, project, entity), "used", version_id)
        self._http.call("PUT", path, body={})

    def produced_by(self, version_id: str) -> Run | None:
        """The run that created a version."""
        answer = self._http.call("GET", _path("version-ids", version_id, "produced-by"))
        return None if answer is None else Run.from_json(answer)

    def writers(self, version_id: str) -> list[Run]:
        """Every run that logged a version: its creator, part writers, re-loggers."""
        answer = self._http.call("GET", _path("version-ids", version_id, "writers"))
        return [Run.from_json(item) for item in answer]

    def used_by(self, version_id: str) -> list[Run]:
        """The runs that used a version."""
        answer = self._http.call("GET", _path("version-ids", version_id, "used-by"))
        return [Run.from_json(item) for item in answer]

    def logged_by_run(
        self, run_id: str, *, project: str | None = None, entity: str | None = None
    ) -> list[Version]:
        """The versions a run logged."""
        path = _path(*self._run_lineage(run_id, project, entity), "logged")
        return [Version.from_json(item) for item in self._http.call("GET", path)]

    def used_by_run(
        self, run_id: str, *, project: str | None = None, entity: str | None = None
    ) -> list[Version]:
        """The versions a run used."""
        path = _path(*self._run_lineage(run_id, project, entity), "used")
        return [Version.from_json(item) for item in self._http.call("GET", path)]


def _check_edit(
    label: str,
    description: str | Unset | None,
    metadata: Mapping[str, Any] | Unset,
    ttl_seconds: float | Unset | None,
) -> None:
    """Refuse the values ``update_version`` refuses, as the database backends word it
    for the version ``label`` (``name:vN``)."""
    if description is not UNSET and description is not None and not isinstance(description, str):
        raise InvalidInputError(
            f"description of {label} must be a string or None, got {type(description).__name__}"
        )
    if not isinstance(metadata, Unset):
        to_json(metadata, what=f"metadata of {label}")
    if not isinstance(ttl_seconds, Unset):
        check_ttl(ttl_seconds, what=label)
