"""``PublicRun``: a run as the registry knows it, what ``Api().run()`` returns.

The counterpart of W&B's ``wandb.apis.public.Run``: a read-only snapshot of a run's
fields (``config``, ``summary``, ``group``, ``job_type``, ``state``) with the lineage
walks ``logged_artifacts()`` and ``used_artifacts()``. The training script's own
:class:`~artisync.sdk.run.Run` is a different object: it logs; this one only reads.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from artisync.config import Config
from artisync.registry.model import Run as RunRecord
from artisync.sdk.registry_access import registry_for

if TYPE_CHECKING:
    from artisync.sdk.artifact import Artifact

__all__ = ["PublicRun"]


class PublicRun:
    """A run read from the registry (a snapshot: call ``Api().run()`` again to refresh)."""

    def __init__(self, record: RunRecord, config: Config) -> None:
        self._record = record
        self._settings = config

    def __repr__(self) -> str:
        return f"<Run {self.entity}/{self.project}/{self.id} ({self.state})>"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, PublicRun):
            return NotImplemented
        return self.path == other.path

    def __hash__(self) -> int:
        return hash(tuple(self.path))

    @property
    def id(self) -> str:
        return self._record.id

    @property
    def name(self) -> str:
        return self._record.name or self._record.id

    @property
    def project(self) -> str:
        return self._record.project

    @property
    def entity(self) -> str:
        return self._record.entity

    @property
    def path(self) -> list[str]:
        """``[entity, project, id]``, as W&B's ``Run.path``."""
        return [self.entity, self.project, self.id]

    @property
    def group(self) -> str | None:
        return self._record.group

    @property
    def job_type(self) -> str | None:
        return self._record.job_type

    @property
    def config(self) -> dict[str, Any]:
        return dict(self._record.config)

    @property
    def summary(self) -> dict[str, Any]:
        """What the training script put in ``run.summary`` (persisted at ``finish``)."""
        return dict(self._record.summary)

    @property
    def state(self) -> str:
        """``"running"``, ``"finished"`` or ``"crashed"``."""
        return self._record.state

    @property
    def created_at(self) -> datetime:
        return datetime.fromtimestamp(self._record.created_at, UTC)

    def logged_artifacts(self) -> list[Artifact]:
        """The committed versions this run logged (or wrote a part of), oldest first."""
        from artisync.sdk.artifact import Artifact

        registry = registry_for(self._settings)
        versions = registry.logged_by_run(self.id, project=self.project, entity=self.entity)
        return [Artifact._from_version(v, self._settings) for v in versions]

    def used_artifacts(self) -> list[Artifact]:
        """The committed versions this run used, in the order it used them."""
        from artisync.sdk.artifact import Artifact

        registry = registry_for(self._settings)
        versions = registry.used_by_run(self.id, project=self.project, entity=self.entity)
        return [Artifact._from_version(v, self._settings) for v in versions]
