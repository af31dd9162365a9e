"""The plain records the registry hands out: projects, runs, collections and versions.

These are what every registry backend returns (the embedded SQLite one today, a
PostgreSQL server later), so they hold only Python values: no rows, cursors or ids
that mean something to one database only. They are frozen snapshots; changing the
registry goes through its methods, never through these objects.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "COMMITTED",
    "DEFAULT_ENTITY",
    "LATEST",
    "Collection",
    "CommitResult",
    "Project",
    "Run",
    "Version",
]

DEFAULT_ENTITY = "local"
"""The entity a project belongs to when the caller gives none.

W&B always has an entity (a user or team); a self-hosted node has no accounts, so
projects logged without one live under this explicit name rather than under NULL,
which keeps ``(entity, project)`` a plain unique key in every backend.
"""

LATEST = "latest"
"""The alias the registry maintains itself: it always names the highest version."""

COMMITTED = "COMMITTED"
"""The state of a version whose content is all in the store (the only state so far)."""


@dataclass(frozen=True, slots=True)
class Project:
    """A project: the namespace that artifact names and run ids live in."""

    entity: str
    name: str
    created_at: float


@dataclass(frozen=True, slots=True)
class Run:
    """A training run, as far as lineage needs it.

    ``id`` is the run id the SDK chose (W&B's ``run.id``); ``group`` and
    ``job_type`` follow ``artisync.init``; ``config`` is the run's config mapping.
    """

    id: str
    project: str
    entity: str
    name: str | None
    job_type: str | None
    group: str | None
    config: dict[str, Any]
    created_at: float


@dataclass(frozen=True, slots=True)
class Collection:
    """An artifact name in a project, with the one type that name has there.

    ``version_count`` counts committed versions; version numbers are never reused,
    so it can be lower than the next index once versions can be deleted.
    """

    project: str
    entity: str
    name: str
    type: str
    created_at: float
    version_count: int


@dataclass(frozen=True, slots=True)
class Version:
    """One committed version of an artifact collection.

    ``id`` is a registry-wide stable string. ``aliases`` includes ``"latest"`` when
    this is the collection's highest version. ``run_id`` is the run that created
    the version (the first producer when identical content was logged again).
    ``manifest_key`` is where the manifest lives in the store.
    """

    id: str
    project: str
    entity: str
    name: str
    type: str
    index: int
    digest: str
    manifest_key: str
    size: int
    file_count: int
    description: str | None
    metadata: dict[str, Any]
    aliases: list[str]
    tags: list[str]
    created_at: float
    run_id: str | None
    ttl_seconds: float | None
    state: str = field(default=COMMITTED)

    @property
    def version(self) -> str:
        """The version label W&B users know: ``"v0"``, ``"v1"``, ..."""
        return f"v{self.index}"

    @property
    def qualified_name(self) -> str:
        """``entity/project/name:vN``, the form ``Api().artifact()`` accepts."""
        return f"{self.entity}/{self.project}/{self.name}:{self.version}"


@dataclass(frozen=True, slots=True)
class CommitResult:
    """What committing a submission produced.

    ``created`` is False when the content was identical to an existing version,
    which is then returned instead of a new one (W&B's behaviour). Asking again
    for the same submission returns the same ``created`` as the first time.
    """

    version: Version
    created: bool
