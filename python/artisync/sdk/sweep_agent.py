"""``artisync.sweep`` and ``artisync.agent``: W&B's hyperparameter sweeps, run locally.

``sweep(config, project=...)`` checks a W&B sweep config, records the sweep in the
registry and returns its id; ``agent(sweep_id, function, count=...)`` runs trials in
this process, one after the other, each a call of ``function``, as W&B's Python agent
does with a function. Inside it, ``artisync.init()`` starts the trial's run: it gets the
sampled parameters in ``run.config`` and is recorded as a member of the sweep, so
``Api().sweep(...)`` finds it (:mod:`artisync.sdk.public_sweep`).

How ``init`` learns it is a trial is W&B's own protocol (:mod:`artisync.sweeps.trial`):
environment variables set around each call. A grid stops when every point has a run;
random search after ``count`` trials, or when the sweep has ``run_cap`` runs. A trial
that raises is recorded as crashed (its run finished with exit code 1) and the agent
goes on, stopping as W&B's does when trials keep failing.
"""

from __future__ import annotations

import os
import random
import secrets
import string
import sys
import tempfile
import time
import traceback
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Final, Literal

from artisync.config import Config
from artisync.errors import InvalidInputError, NotFoundError
from artisync.names import validate_project
from artisync.registry import Sweep
from artisync.registry.contract import Registry
from artisync.sdk.current import active_config
from artisync.sdk.patience import RUN_PATIENCE, patiently
from artisync.sdk.public_sweep import (
    created_here,
    remember_created,
    split_sweep_path,
    sweep_members,
)
from artisync.sdk.registry_access import default_entity, registry_for
from artisync.sdk.top_level import finish
from artisync.sdk.validation import check_run_id, require_json_object
from artisync.sweeps.config import SweepPlan, parse_sweep_config
from artisync.sweeps.search import next_grid_point, point_key, sample
from artisync.sweeps.trial import (
    ENTITY_ENV,
    HOME_ENV,
    PARAM_PATH_ENV,
    PROJECT_ENV,
    RUN_ID_ENV,
    SWEEP_ID_ENV,
    trial_environment,
    write_param_file,
)

__all__ = ["agent", "check_sweep_id", "sweep"]

ID_LENGTH: Final = 8  # W&B's sweep and run ids: 8 lowercase letters and digits
_ID_ALPHABET: Final = string.ascii_lowercase + string.digits
DEFAULT_PROJECT: Final = "uncategorized"
# W&B's agent gives up on trials that keep failing: this many in its first minute
# (unless WANDB_AGENT_DISABLE_FLAPPING=true), or more than
# WANDB_AGENT_MAX_INITIAL_FAILURES (5) when none has succeeded yet.
FLAPPING_FAILURES: Final = 3
FLAPPING_SECONDS: Final = 60.0
MAX_INITIAL_FAILURES: Final = 5

Outcome = Literal["ok", "failed", "interrupted"]


def sweep(
    sweep: Mapping[str, Any] | Callable[[], Mapping[str, Any]],
    entity: str | None = None,
    project: str | None = None,
    prior_runs: list[str] | None = None,
    *,
    home: str | os.PathLike[str] | None = None,
) -> str:
    """Create a sweep from W&B's sweep config and return its id (``wandb.sweep``).

    ``sweep`` is the config dict, or a function of no arguments that returns it.
    ``project`` defaults to the config's ``project``, then ``ARTISYNC_PROJECT`` /
    ``WANDB_PROJECT``, then ``"uncategorized"``; ``entity`` to the config's, then the
    default entity. ``prior_runs`` are ids of existing runs of the project to count as
    members of the sweep (a grid skips their points). ``home`` is the artisync home
    (default: the current run's, else ``ARTISYNC_HOME``).

    Raises:
        InvalidInputError: the config is malformed (the message names the key).
        NotFoundError: a run of ``prior_runs`` does not exist.
    """
    if callable(sweep):
        sweep = sweep()
    config = require_json_object(sweep, "sweep config")
    plan = parse_sweep_config(config)
    _warn_if_bayes(plan)
    settings = _settings(home)
    project = _project(project or _config_str(config, "project"))
    entity = entity or _config_str(config, "entity") or default_entity(settings)
    registry = registry_for(settings)
    members = _prior_runs(prior_runs)
    for run_id in members:  # all checked before the sweep exists: no half-made sweep
        registry.get_run(project, run_id, entity=entity)  # NotFoundError names it
    sweep_id = _new_id()
    record = patiently(
        lambda: registry.create_sweep(project, sweep_id, config, entity=entity),
        seconds=RUN_PATIENCE,
        what=f"creating sweep {sweep_id!r} in project {project!r}",
    )
    remember_created(record)
    for run_id in members:
        registry.ensure_run(project, record.entity, run_id, sweep=sweep_id)
    print(f"artisync: created sweep {sweep_id} in {record.entity}/{project}")
    return sweep_id


def agent(
    sweep_id: str,
    function: Callable[[], Any] | None = None,
    entity: str | None = None,
    project: str | None = None,
    count: int | None = None,
    forward_signals: bool = False,
    term_timeout: int | None = None,
    max_consecutive_failed_runs: int | None = None,
    *,
    home: str | os.PathLike[str] | None = None,
    seed: int | None = None,
) -> None:
    """Run trials of a sweep in this process, one at a time (``wandb.agent``).

    ``sweep_id`` is ``id``, ``project/id`` or ``entity/project/id``. Each trial calls
    ``function()``; the ``artisync.init()`` in it gets the trial's parameters in
    ``run.config`` (over its own ``config``) and the sweep's project and a run id of the
    agent's, as with W&B; the run is finished after the call if ``function`` left it
    open. ``count`` caps the trials of this call (None or 0: no cap, as in W&B). A
    grid stops when every point has a run; any method stops at the config's
    ``run_cap``. ``seed`` makes random search repeatable (artisync's addition).
    ``forward_signals`` and ``term_timeout`` concern W&B's agent subprocesses and have
    no effect here: trials run in the caller's thread.

    Raises:
        NotFoundError: there is no such sweep.
        InvalidInputError: ``function`` is missing (running the config's ``program``,
            W&B's command-line agent, is not supported), or an argument is malformed.
    """
    del forward_signals, term_timeout
    if function is None or not callable(function):
        raise InvalidInputError(
            "artisync.agent runs trials in this process: pass function=, a function of no "
            "arguments that trains one trial (running the sweep's 'program' as W&B's "
            f"`wandb agent` command does is not supported), not {function!r}"
        )
    limit = _count(count)
    failure_cap = _failure_cap(max_consecutive_failed_runs)
    settings = _settings(home)
    entity, project, sid = _sweep_path(sweep_id, entity, project)
    registry = registry_for(settings)
    record = _get_sweep(registry, project, sid, entity or default_entity(settings))
    plan = parse_sweep_config(record.config)
    _warn_if_bayes(plan)
    runner = _Trials(
        record, plan, function, settings if home is not None else None, random.Random(seed)
    )
    runner.run(registry, limit, failure_cap)


class _Trials:
    """One ``agent`` call: picks each trial's parameters, runs it, counts failures."""

    def __init__(
        self,
        record: Sweep,
        plan: SweepPlan,
        function: Callable[[], Any],
        home: Config | None,
        rng: random.Random,
    ) -> None:
        self.record = record
        self.plan = plan
        self.function = function
        self.home = home  # the home given to agent(), handed on to the trials
        self.rng = rng
        self.started: set[str] = set()  # run ids this call gave out
        self.handed_out: set[str] = set()  # grid points this call gave out
        self.failures = 0
        self.consecutive_failures = 0
        self.began = time.monotonic()

    def run(self, registry: Registry, limit: int | None, failure_cap: int | None) -> None:
        with tempfile.TemporaryDirectory(prefix="artisync-sweep-") as scratch:
            done = 0
            while limit is None or done < limit:
                point = self._next_point(registry)
                if point is None:
                    return
                run_id = _new_id()
                self.started.add(run_id)
                outcome = self._trial(Path(scratch), run_id, point)
                done += 1
                if outcome == "interrupted" or self._should_stop(outcome, done, failure_cap):
                    return

    def _next_point(self, registry: Registry) -> dict[str, Any] | None:
        """The next trial's parameters, or None when the sweep is done."""
        members = sweep_members(registry, self.record)
        cap = self.plan.run_cap
        if cap is not None and len({r.id for r in members} | self.started) >= cap:
            return None
        if self.plan.search != "grid":
            return sample(self.plan, self.rng)
        tried = {point_key(self.plan, r.config) for r in members} | self.handed_out
        point = next_grid_point(self.plan, {k for k in tried if k is not None})
        if point is not None:
            key = point_key(self.plan, point)
            assert key is not None  # a point has every parameter
            self.handed_out.add(key)
        return point

    def _trial(self, scratch: Path, run_id: str, point: dict[str, Any]) -> Outcome:
        """Call the function as one trial; how it went."""
        param_file = scratch / f"config-{run_id}.json"
        write_param_file(param_file, point)
        variables: dict[str, str | None] = {
            SWEEP_ID_ENV: self.record.id,
            PARAM_PATH_ENV: str(param_file),
            RUN_ID_ENV: run_id,
            PROJECT_ENV: self.record.project,
            ENTITY_ENV: self.record.entity,
        }
        if self.home is not None:
            variables[HOME_ENV] = str(self.home.home)
        print(
            f"artisync: sweep {self.record.id}: trial run {run_id} with {point}",
            file=sys.stderr,
        )
        with trial_environment(variables):
            try:
                self.function()
            except SystemExit as e:  # a script's sys.exit(): its code says how it went
                if e.code not in (None, 0):
                    _finish_quietly(exit_code=1)
                    return "failed"
            except Exception:
                # As W&B's agent: the trial's traceback is shown and the sweep goes on.
                traceback.print_exc()
                _finish_quietly(exit_code=1)
                return "failed"
            except KeyboardInterrupt:
                # As W&B's agent: Ctrl-C ends the trial as crashed and the agent returns.
                _finish_quietly(exit_code=1)
                print(f"artisync: sweep {self.record.id}: interrupted, stopping", file=sys.stderr)
                return "interrupted"
            try:
                finish()
            except Exception:
                traceback.print_exc()
                return "failed"
        return "ok"

    def _should_stop(self, outcome: Outcome, done: int, failure_cap: int | None) -> bool:
        if outcome == "ok":
            self.consecutive_failures = 0
            return False
        self.failures += 1
        self.consecutive_failures += 1
        why = None
        if failure_cap is not None and self.consecutive_failures >= failure_cap:
            why = f"{self.consecutive_failures} trials in a row failed"
        elif (
            os.environ.get("WANDB_AGENT_DISABLE_FLAPPING") != "true"
            and time.monotonic() - self.began < FLAPPING_SECONDS
            and self.failures >= FLAPPING_FAILURES
        ):
            why = (
                f"{self.failures} trials failed in the agent's first {FLAPPING_SECONDS:.0f} s "
                "(set WANDB_AGENT_DISABLE_FLAPPING=true to go on)"
            )
        elif self.failures == done and self.failures > _max_initial_failures():
            why = f"the first {self.failures} trials all failed"
        if why is None:
            return False
        print(f"artisync: sweep {self.record.id}: stopping, {why}", file=sys.stderr)
        return True


def _finish_quietly(exit_code: int) -> None:
    """Finish the trial's run as crashed; a failure to do so must not hide the trial's."""
    try:
        finish(exit_code=exit_code)
    except Exception:
        traceback.print_exc()


def _get_sweep(registry: Registry, project: str, sweep_id: str, entity: str | None) -> Sweep:
    try:
        return registry.get_sweep(project, sweep_id, entity=entity)
    except NotFoundError:
        where = f"{entity}/{project}" if entity else project
        raise NotFoundError(
            f"no sweep {sweep_id!r} in project {where}: check the id that artisync.sweep() "
            "returned, and pass its project (project=, or 'project/sweep_id')"
        ) from None


def _sweep_path(
    path: object, entity: str | None, project: str | None
) -> tuple[str | None, str, str]:
    """W&B's ``id``, ``project/id`` or ``entity/project/id``, with the defaults: for a
    bare id of a sweep this process created, its place (as W&B's ``sweep()`` leaves
    its project in the environment)."""
    in_entity, in_project, sweep_id = split_sweep_path(path)
    if in_project is None and project is None and (known := created_here(sweep_id)):
        in_entity, in_project = entity or known[0], known[1]
    return in_entity or entity, _project(in_project or project), check_sweep_id(sweep_id)


def check_sweep_id(sweep_id: str) -> str:
    """Return ``sweep_id`` if it can be one (the rules of a run id), else raise."""
    try:
        return check_run_id(sweep_id)
    except InvalidInputError as e:
        raise InvalidInputError(f"Invalid sweep id: {e}") from None


def _project(given: str | None) -> str:
    chosen = (
        given
        or os.environ.get("ARTISYNC_PROJECT")
        or os.environ.get(PROJECT_ENV)
        or DEFAULT_PROJECT
    )
    return validate_project(chosen)


def _config_str(config: Mapping[str, Any], key: str) -> str | None:
    value = config.get(key)
    if value is not None and not isinstance(value, str):
        raise InvalidInputError(f"sweep config {key!r} must be a str, not {value!r}")
    return value


def _settings(home: str | os.PathLike[str] | None) -> Config:
    return active_config() if home is None else Config.load(Path(home))


def _new_id() -> str:
    return "".join(secrets.choice(_ID_ALPHABET) for _ in range(ID_LENGTH))


def _prior_runs(prior_runs: object) -> list[str]:
    if prior_runs is None:
        return []
    if not isinstance(prior_runs, list | tuple) or not all(isinstance(r, str) for r in prior_runs):
        raise InvalidInputError(f"prior_runs must be a list of run ids, not {prior_runs!r}")
    return [check_run_id(r) for r in prior_runs]


def _count(count: object) -> int | None:
    if count is None or count == 0:
        return None
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise InvalidInputError(f"count must be a positive int or None, not {count!r}")
    return count


def _failure_cap(value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidInputError(
            f"max_consecutive_failed_runs must be an int of 1 or more, or None, not {value!r}"
        )
    return value


def _max_initial_failures() -> int:
    raw = os.environ.get("WANDB_AGENT_MAX_INITIAL_FAILURES")
    try:
        return int(raw) if raw else MAX_INITIAL_FAILURES
    except ValueError:
        raise InvalidInputError(
            f"WANDB_AGENT_MAX_INITIAL_FAILURES={raw!r} must be an int"
        ) from None


def _warn_if_bayes(plan: SweepPlan) -> None:
    if plan.method == "bayes":
        warnings.warn(
            "sweep method 'bayes' runs as random search in artisync (same parameters and "
            "distributions, no model of the metric); use method 'random' or 'grid' to say so",
            UserWarning,
            stacklevel=3,
        )
