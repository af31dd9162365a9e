"""``PublicRun``: a run as the registry knows it, what ``Api().run()`` returns.

The counterpart of W&B's ``wandb.apis.public.Run``: a read-only snapshot of a run's
fields (``config``, ``summary``, ``group``, ``job_type``, ``state``, ``tags``, ``notes``,
``sweep_id``) with its history (``history()``, ``scan_history()``: read from the
registry at each call) and the lineage walks ``logged_artifacts()`` and
``used_artifacts()``. The training script's own
:class:`~artisync.sdk.run.Run` is a different object: it logs; this one only reads.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from artisync.config import Config
from artisync.registry.model import Run as RunRecord
from artisync.registry.model import Version
from artisync.sdk.history_view import check_keys, sampled, scanned, to_frame
from artisync.sdk.registry_access import registry_for

__all__ = ["PublicRun"]

A = TypeVar("A")


class PublicRun(Generic[A]):
    """A run read from the registry (a snapshot: call ``Api().run()`` again to refresh).

    ``A`` is what its lineage walks return: :class:`~artisync.sdk.artifact.Artifact`,
    made by ``artifact_of`` (the artifact module hands it over, so that runs and
    artifacts, which lead to each other, need not import each other).
    """

    def __init__(
        self, record: RunRecord, config: Config, artifact_of: Callable[[Version, Config], A]
    ) -> None:
        self._record = record
        self._settings = config
        self._artifact_of = artifact_of

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

    @property
    def tags(self) -> list[str]:
        """The run's tags (``artisync.init(tags=...)``), in the order given."""
        return list(self._record.tags)

    @property
    def notes(self) -> str | None:
        """The run's notes (``artisync.init(notes=...)``), or None."""
        return self._record.notes

    @property
    def sweep_id(self) -> str | None:
        """The id of the sweep this run is a trial of, or None."""
        return self._record.sweep

    def _rows(self) -> list[dict[str, Any]]:
        registry = registry_for(self._settings)
        return registry.run_history(self.project, self.id, self.entity)

    def history(
        self,
        samples: int = 500,
        keys: list[str] | None = None,
        x_axis: str = "_step",
        pandas: bool = True,
        stream: str = "default",
    ) -> Any:
        """The run's history rows (what ``run.log`` recorded), as W&B's ``Run.history``.

        At most ``samples`` rows, spread evenly over the run; with ``keys``, the rows
        that hold at least one of them, each cut to ``x_axis`` and those keys. A pandas
        ``DataFrame`` when ``pandas`` is true and pandas is installed (a warning and a
        list otherwise), else a list of dicts. ``stream="system"`` is empty: artisync
        records no machine metrics.
        """
        chosen = check_keys(keys, "history()")
        rows = sampled(self._rows(), samples=samples, keys=chosen, x_axis=x_axis, stream=stream)
        return to_frame(rows, pandas)

    def scan_history(
        self,
        keys: list[str] | None = None,
        page_size: int = 1000,
        min_step: int | None = None,
        max_step: int | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Every history row with ``min_step <= _step < max_step``, by step, as W&B's
        ``Run.scan_history``; with ``keys``, only the rows that hold all of them, each cut
        to ``_step`` and those keys. ``page_size`` is accepted as W&B's is (the rows come
        from the registry in one read)."""
        chosen = check_keys(keys, "scan_history()")
        return scanned(
            self._rows(), keys=chosen, page_size=page_size, min_step=min_step, max_step=max_step
        )

    def logged_artifacts(self) -> list[A]:
        """The committed versions this run logged (or wrote a part of), oldest first."""
        registry = registry_for(self._settings)
        versions = registry.logged_by_run(self.id, project=self.project, entity=self.entity)
        return [self._artifact_of(v, self._settings) for v in versions if not v.hidden]

    def used_artifacts(self) -> list[A]:
        """The committed versions this run used, in the order it used them."""
        registry = registry_for(self._settings)
        versions = registry.used_by_run(self.id, project=self.project, entity=self.entity)
        return [self._artifact_of(v, self._settings) for v in versions if not v.hidden]
