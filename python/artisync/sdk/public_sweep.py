"""``PublicSweep``: a sweep as the registry knows it, what ``Api().sweep()`` returns.

The counterpart of W&B's ``wandb.apis.public.Sweep``: ``id``, ``name``, ``config``
(the sweep config as given), ``state``, ``runs`` (the member runs, oldest first) and
``best_run(order=None)``, the run first by the sweep's metric (``metric.goal``) or by
``order`` given as W&B takes it: ``"-val_acc"`` (best first: highest), ``"+loss"``, or
a bare ``"val_acc"``, which W&B sorts descending; a key without a known prefix is a
summary key (``summary_metrics.<key>``). So the Artifacts FAQ's example runs as is::

    sweep = api.sweep("entity/project/sweep_id")
    runs = sorted(sweep.runs, key=lambda run: run.summary.get("val_acc", 0), reverse=True)
    for artifact in runs[0].logged_artifacts(): ...
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Final, Generic, TypeVar

from artisync.config import Config
from artisync.errors import InvalidInputError, NotFoundError
from artisync.registry import Sweep
from artisync.registry.contract import Registry
from artisync.registry.model import Run as RunRecord
from artisync.registry.model import Version
from artisync.sdk.public_run import PublicRun
from artisync.sdk.registry_access import registry_for
from artisync.sdk.run_filters import order_runs
from artisync.sweeps.config import SweepPlan, parse_sweep_config
from artisync.sweeps.search import expected_run_count, is_finished

__all__ = [
    "PublicSweep",
    "created_here",
    "order_key",
    "remember_created",
    "split_sweep_path",
    "sweep_members",
]

A = TypeVar("A")

# W&B's run columns that an order names without a prefix; anything else is a summary key.
_RUN_COLUMNS: Final = ("createdAt", "updatedAt", "name", "sweep")
_PREFIXES: Final = ("config", "summary_metrics", "tags")

# Where each sweep this process created lives. W&B's ``sweep()`` sets WANDB_PROJECT and
# WANDB_ENTITY for the rest of the process, so that ``agent(sweep_id)`` and
# ``Api().sweep(sweep_id)`` find a bare id; this remembers the same without changing
# where later runs go.
_created: dict[str, tuple[str, str]] = {}


def remember_created(record: Sweep) -> None:
    """Note that this process created ``record`` (see :func:`created_here`)."""
    _created[record.id] = (record.entity, record.project)


def created_here(sweep_id: str) -> tuple[str, str] | None:
    """``(entity, project)`` of a sweep this process created, else None."""
    return _created.get(sweep_id)


def order_key(order: str) -> str:
    """``order`` as W&B reads it: ``+`` ascending, ``-`` or nothing descending, and a
    key that is not a run column nor ``config.``/``summary_metrics.`` prefixed is
    taken as a summary key: ``"val_acc"`` is ``"-summary_metrics.val_acc"``."""
    if not isinstance(order, str) or not order.lstrip("+-"):
        raise InvalidInputError(
            f"Invalid order {order!r}: e.g. '-val_acc' or '+summary_metrics.loss'"
        )
    direction, key = ("-", order)
    if order[0] in "+-":
        direction, key = order[0], order[1:]
    parts = key.split(".")
    if (len(parts) == 1 and key not in _RUN_COLUMNS) or (
        len(parts) > 1 and parts[0] not in _PREFIXES
    ):
        key = f"summary_metrics.{key}"
    return direction + key


def split_sweep_path(path: object) -> tuple[str | None, str | None, str]:
    """``(entity, project, sweep_id)`` of W&B's sweep paths: ``sweep_id``,
    ``project/sweep_id``, ``entity/project/sweep_id`` (or a sweep URL's
    ``entity/project/sweeps/sweep_id``); what it leaves out is None."""
    if not isinstance(path, str):
        raise InvalidInputError(f"a sweep path must be a str, not {type(path).__name__}")
    parts = path.strip().replace("/sweeps/", "/").strip("/").split("/")
    if len(parts) > 3 or "" in parts:
        raise InvalidInputError(
            f"Invalid sweep path {path!r}: expected sweep_id, project/sweep_id or "
            "entity/project/sweep_id"
        )
    entity = parts[0] if len(parts) == 3 else None
    project = parts[-2] if len(parts) >= 2 else None
    return entity, project, parts[-1]


def sweep_members(registry: Registry, record: Sweep) -> list[RunRecord]:
    """The runs of the sweep ``record``, oldest first."""
    runs = registry.list_runs(record.project, entity=record.entity)
    return [r for r in runs if r.sweep == record.id]


class PublicSweep(Generic[A]):
    """A sweep read from the registry; ``runs``, ``state`` and ``best_run()`` read its
    runs anew at each call, so a sweep still running shows its latest trials.

    ``A`` is what its runs' lineage walks return (see :class:`PublicRun`).
    """

    def __init__(
        self, record: Sweep, settings: Config, artifact_of: Callable[[Version, Config], A]
    ) -> None:
        self._record = record
        self._settings = settings
        self._artifact_of = artifact_of
        self._plan: SweepPlan = parse_sweep_config(record.config)

    @classmethod
    def load(
        cls,
        registry: Registry,
        project: str,
        sweep_id: str,
        entity: str | None,
        settings: Config,
        artifact_of: Callable[[Version, Config], A],
    ) -> PublicSweep[A]:
        """The sweep ``sweep_id`` of ``project``.

        Raises:
            NotFoundError: the project has no such sweep.
        """
        try:
            record = registry.get_sweep(project, sweep_id, entity=entity)
        except NotFoundError:
            where = f"{entity}/{project}" if entity else project
            raise NotFoundError(
                f"no sweep {sweep_id!r} in project {where}: check the id artisync.sweep() "
                "returned and the project it was created in"
            ) from None
        return cls(record, settings, artifact_of)

    def __repr__(self) -> str:
        return f"<Sweep {self.entity}/{self.project}/{self.id} ({self.state})>"

    @property
    def id(self) -> str:
        return self._record.id

    @property
    def entity(self) -> str:
        return self._record.entity

    @property
    def project(self) -> str:
        return self._record.project

    @property
    def path(self) -> list[str]:
        """``[entity, project, id]``, as W&B's ``Sweep.path``."""
        return [self.entity, self.project, self.id]

    @property
    def url(self) -> str | None:
        """W&B's page of the sweep; artisync has no web UI yet, so None."""
        return None

    @property
    def name(self) -> str:
        """The config's ``name``, else the id (W&B's rule, without its UI's display name)."""
        return self._plan.name or self.id

    @property
    def config(self) -> dict[str, Any]:
        """The sweep config as it was given to ``artisync.sweep``."""
        return dict(self._record.config)

    @property
    def created_at(self) -> datetime:
        return datetime.fromtimestamp(self._record.created_at, UTC)

    @property
    def expected_run_count(self) -> int | None:
        """How many runs the sweep will have (grid size or ``run_cap``), None for no end."""
        return expected_run_count(self._plan)

    @property
    def state(self) -> str:
        """W&B's sweep states: ``RUNNING`` until a grid has a run for every point or the
        sweep reached its ``run_cap``, then ``FINISHED`` (or what the registry says)."""
        stored = self._record.state
        if stored != "RUNNING":
            return stored
        configs = [r.config for r in self._members()]
        return "FINISHED" if is_finished(self._plan, configs) else stored

    @property
    def order(self) -> str | None:
        """The order of the sweep's metric: ``+summary_metrics.<name>`` to minimise,
        ``-...`` to maximise; None without a metric."""
        metric = self._plan.metric
        if metric is None:
            return None
        return order_key(("+" if metric.goal == "minimize" else "-") + metric.name)

    @property
    def runs(self) -> list[PublicRun[A]]:
        """The sweep's runs, oldest first (W&B's ``+created_at``)."""
        return [self._public(r) for r in self._members()]

    def best_run(self, order: str | None = None) -> PublicRun[A] | None:
        """The first run by ``order`` (default: the sweep's metric and goal), None when
        the sweep has no run. Runs without the metric come after those with it. With no
        order and no metric, the first run created, as W&B's query returns."""
        key = order_key(order) if order is not None else self.order
        members = self._members()
        ranked = members if key is None else order_runs(members, key)
        return self._public(ranked[0]) if ranked else None

    def _members(self) -> list[RunRecord]:
        return sweep_members(registry_for(self._settings), self._record)

    def _public(self, record: RunRecord) -> PublicRun[A]:
        return PublicRun(record, self._settings, self._artifact_of)
