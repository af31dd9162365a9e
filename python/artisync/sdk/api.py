"""``artisync.Api``: find versions, collections and runs after the fact, as W&B's
public API does (``wandb.Api().artifact("project/name:alias")``, ``api.runs(...)``).

Names are ``[entity/]project/name[:alias_or_vN]`` (``latest`` when no alias is
given) and ``[entity/]project/run_id``; the project may be left out when
``Api(project=...)``, ``ARTISYNC_PROJECT`` or the current run says which it is.
Every lookup is one indexed registry query, however many versions there are.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from artisync.config import Config
from artisync.credentials import use_key
from artisync.errors import InvalidInputError, NotFoundError
from artisync.names import parse_artifact_path, validate_artifact_type, validate_project
from artisync.registry.contract import Registry
from artisync.registry.model import DEFAULT_ENTITY, LATEST, Collection
from artisync.sdk.artifact import Artifact
from artisync.sdk.current import active_run
from artisync.sdk.init_options import env_value
from artisync.sdk.public_run import PublicRun
from artisync.sdk.public_sweep import PublicSweep, created_here, split_sweep_path
from artisync.sdk.registry_access import default_entity, registry_for
from artisync.sdk.run_filters import order_runs, run_matches
from artisync.sdk.validation import check_run_id

__all__ = ["Api", "ArtifactCollection", "ArtifactType"]

PROJECT_ENV = "ARTISYNC_PROJECT"


class ArtifactCollection:
    """An artifact name in a project with its type: the versions ``v0, v1, ...``."""

    def __init__(self, record: Collection, settings: Config) -> None:
        self._record = record
        self._settings = settings

    def __repr__(self) -> str:
        return f"<ArtifactCollection {self.entity}/{self.project}/{self.name} ({self.type})>"

    @property
    def name(self) -> str:
        return self._record.name

    @property
    def type(self) -> str:
        return self._record.type

    @property
    def project(self) -> str:
        return self._record.project

    @property
    def entity(self) -> str:
        return self._record.entity

    @property
    def version_count(self) -> int:
        return self._record.version_count

    def versions(self) -> list[Artifact]:
        """Every committed version, oldest first."""
        registry = registry_for(self._settings)
        versions = registry.list_versions(self.project, self.name, entity=self.entity)
        return [Artifact._from_version(v, self._settings) for v in versions]

    artifacts = versions  # W&B's name for the same list


class ArtifactType:
    """An artifact type of a project (W&B's ``ArtifactType``): its collections."""

    def __init__(self, entity: str, project: str, type_name: str, settings: Config) -> None:
        self.entity = entity
        self.project = project
        self.type = type_name
        self._settings = settings

    def __repr__(self) -> str:
        return f"<ArtifactType {self.type}>"

    @property
    def name(self) -> str:
        """The type's name, e.g. ``"model"``."""
        return self.type

    def collections(self, per_page: int = 50) -> list[ArtifactCollection]:
        """The project's artifact collections of this type, by name (``per_page`` is
        W&B's page size: the registry answers the whole list at once)."""
        del per_page
        registry = registry_for(self._settings)
        found = registry.list_collections(self.project, type=self.type, entity=self.entity)
        return [ArtifactCollection(c, self._settings) for c in found]

    def collection(self, name: str) -> ArtifactCollection:
        """The collection ``name`` of this type.

        Raises:
            NotFoundError: the project has no artifact of this type with that name.
        """
        for c in self.collections():
            if c.name == name:
                return c
        raise NotFoundError(
            f"no artifact {name!r} of type {self.type!r} in project {self.entity}/{self.project}"
        )


class Api:
    """Read access to the registry of an artisync home (default ``ARTISYNC_HOME``)."""

    def __init__(
        self,
        overrides: Mapping[str, Any] | None = None,
        timeout: int | None = None,
        api_key: str | None = None,
        *,
        home: str | os.PathLike[str] | None = None,
        project: str | None = None,
        entity: str | None = None,
    ) -> None:
        """W&B's arguments: ``overrides`` may name the default ``entity`` and
        ``project`` (other keys, such as ``base_url``, name W&B's servers and are
        ignored); ``api_key`` is sent to the registry server from this process on;
        ``timeout`` is accepted (each request has its own)."""
        del timeout
        given = dict(overrides or {})
        if api_key is not None:
            use_key(api_key)
        run = active_run()
        if home is None and run is not None:
            self.settings = run.settings
        else:
            self.settings = Config.load(None if home is None else Path(home))
        from_run = (run.project, run.entity) if run is not None else (None, None)
        self.project: str | None = (
            project or given.get("project") or env_value("project") or from_run[0]
        )
        self.entity: str | None = entity or given.get("entity") or from_run[1]

    def __repr__(self) -> str:
        return f"<Api {self.settings.home}>"

    @property
    def _registry(self) -> Registry:
        return registry_for(self.settings)

    # -- artifacts ---------------------------------------------------------------------

    def artifact(self, name: str, type: str | None = None) -> Artifact:
        """The version ``[entity/]project/name[:alias_or_vN]`` (``latest`` by default).

        Raises:
            NotFoundError: naming the versions and aliases (or artifacts) that exist.
            InvalidInputError: a malformed name, or ``type`` is not the artifact's type.
        """
        entity, project, collection, ref = self._artifact_path(name)
        version = self._registry.get_version(project, collection, ref or LATEST, entity=entity)
        if type is not None and version.type != validate_artifact_type(type):
            raise InvalidInputError(
                f"artifact {version.qualified_name} has type {version.type!r}, not {type!r}"
            )
        return Artifact._from_version(version, self.settings)

    def artifact_exists(self, name: str, type: str | None = None) -> bool:
        """Whether :meth:`artifact` would find the version ``name``, as W&B: False when
        it does not exist; a malformed name, another type than ``type``, or a registry
        that does not answer raise as :meth:`artifact` raises."""
        try:
            self.artifact(name, type)
        except NotFoundError:
            return False
        return True

    def artifact_versions(self, type_name: str, name: str, per_page: int = 50) -> list[Artifact]:
        """W&B's deprecated name of :meth:`artifacts`: the same list."""
        return self.artifacts(type_name, name, per_page=per_page)

    def artifact_type(self, type_name: str, project: str | None = None) -> ArtifactType:
        """The artifact type ``type_name`` of ``[entity/]project`` (this Api's project by
        default), as W&B's ``ArtifactType``.

        Raises:
            NotFoundError: the project has no artifact of that type (naming those it has).
        """
        wanted = validate_artifact_type(type_name)
        entity, name = self._project_path(project)
        types = self._types(entity, name)
        for found in types:
            if found.type == wanted:
                return found
        known = ", ".join(t.type for t in types) or "none yet"
        raise NotFoundError(
            f"project {entity or DEFAULT_ENTITY}/{name} has no artifact of type {wanted!r}; "
            f"its types: {known}"
        )

    def artifact_types(self, project: str | None = None) -> list[ArtifactType]:
        """The artifact types of ``[entity/]project`` that have a collection, by name."""
        return self._types(*self._project_path(project))

    def _types(self, entity: str | None, project: str) -> list[ArtifactType]:
        collections = self._registry.list_collections(project, entity=entity)
        owner = entity or DEFAULT_ENTITY
        types = sorted({c.type for c in collections})
        return [ArtifactType(owner, project, t, self.settings) for t in types]

    def artifacts(self, type_name: str, name: str, per_page: int = 50) -> list[Artifact]:
        """Every committed version of ``[entity/]project/name`` of type ``type_name``."""
        del per_page  # W&B pages from its server; the registry is local
        entity, project, collection, ref = self._artifact_path(name)
        if ref is not None:
            raise InvalidInputError(
                f"artifacts() takes a collection name without ':{ref}'; use artifact() for one "
                "version"
            )
        versions = self._registry.list_versions(project, collection, entity=entity)
        wanted = validate_artifact_type(type_name)
        if versions and versions[0].type != wanted:
            raise InvalidInputError(
                f"artifact {project}/{collection} has type {versions[0].type!r}, not {wanted!r}"
            )
        return [Artifact._from_version(v, self.settings) for v in versions]

    def artifact_collections(
        self, project_name: str | None = None, type_name: str | None = None
    ) -> list[ArtifactCollection]:
        """The artifact names of a project (optionally of one type), by name."""
        entity, project = self._project_path(project_name)
        collections = self._registry.list_collections(project, type=type_name, entity=entity)
        return [ArtifactCollection(c, self.settings) for c in collections]

    def artifact_collection(self, type_name: str, name: str) -> ArtifactCollection:
        """One artifact name of a project: ``[entity/]project/name``."""
        entity, project, collection, _ = self._artifact_path(name)
        for c in self._registry.list_collections(project, type=type_name, entity=entity):
            if c.name == collection:
                return ArtifactCollection(c, self.settings)
        raise NotFoundError(
            f"no artifact {collection!r} of type {type_name!r} in project {project!r}"
        )

    # -- runs --------------------------------------------------------------------------

    def run(self, path: str) -> PublicRun[Artifact]:
        """The run ``[entity/]project/run_id``.

        Raises:
            NotFoundError: the project has no run with that id.
        """
        if not isinstance(path, str):
            raise InvalidInputError(f"Invalid run path {path!r}: expected a str")
        parts = path.split("/")
        if len(parts) > 3 or "" in parts:
            raise InvalidInputError(
                f"Invalid run path {path!r}: expected [entity/]project/run_id, e.g. "
                "'my-project/ab12cd34'"
            )
        run_id = check_run_id(parts[-1])
        entity, project = self._project_path("/".join(parts[:-1]) or None)
        record = self._registry.get_run(project, run_id, entity=entity)
        return PublicRun(record, self.settings, Artifact._from_version)

    def runs(
        self,
        path: str | None = None,
        filters: Mapping[str, Any] | None = None,
        order: str = "+created_at",
        per_page: int = 50,
    ) -> list[PublicRun[Artifact]]:
        """The runs of ``[entity/]project`` matching ``filters``, sorted by ``order``.

        ``filters`` take W&B's MongoDB-style form on ``config.<key>``,
        ``summary_metrics.<key>``, ``group``, ``job_type``, ``state``, ``name``,
        ``id`` (operators ``$eq $ne $gt $gte $lt $lte $in $nin $exists $regex`` and
        ``$and``/``$or``); ``order`` is a field with ``+`` or ``-``, such as
        ``"-summary_metrics.val_acc"``.
        """
        del per_page
        entity, project = self._project_path(path)
        runs = self._registry.list_runs(project, entity=entity)
        chosen = [r for r in runs if filters is None or run_matches(r, filters)]
        return [
            PublicRun(r, self.settings, Artifact._from_version) for r in order_runs(chosen, order)
        ]

    # -- sweeps ------------------------------------------------------------------------

    def sweep(self, path: str = "") -> PublicSweep[Artifact]:
        """The sweep ``[[entity/]project/]sweep_id`` (see :mod:`artisync.sdk.public_sweep`);
        a bare id is looked for in this Api's project, else where this process created it.

        Raises:
            NotFoundError: the project has no sweep with that id.
        """
        entity, project, sweep_id = split_sweep_path(path)
        if project is None and self.project is None and (known := created_here(sweep_id)):
            entity, project = entity or known[0], known[1]
        return PublicSweep.load(
            self._registry,
            validate_project(project) if project else self._default_project(f"sweep {path!r}"),
            sweep_id,
            entity or self._entity(),
            self.settings,
            Artifact._from_version,
        )

    # -- names -------------------------------------------------------------------------

    def _default_project(self, what: str) -> str:
        if self.project is None:
            raise InvalidInputError(
                f"{what} names no project: write it as 'project/...' or pass "
                f"Api(project=...) or set {PROJECT_ENV}"
            )
        return self.project

    def _artifact_path(self, name: str) -> tuple[str | None, str, str, str | None]:
        entity, project, collection, ref = parse_artifact_path(name)
        return (
            entity or self._entity(),
            project or self._default_project(f"artifact {name!r}"),
            collection,
            ref,
        )

    def _project_path(self, path: str | None) -> tuple[str | None, str]:
        if path is None:
            return self._entity(), self._default_project("the call")
        parts = path.split("/")
        if len(parts) > 2 or "" in parts:
            raise InvalidInputError(
                f"Invalid project path {path!r}: expected [entity/]project, e.g. 'team/vision'"
            )
        entity = parts[0] if len(parts) == 2 else self._entity()
        return entity, validate_project(parts[-1])

    def _entity(self) -> str | None:
        """The entity of a path that names none: this Api's, else the default one."""
        return self.entity or default_entity(self.settings)
