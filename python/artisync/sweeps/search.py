"""The two searches: every point of a grid, in W&B's order, and random samples.

A *point* is one trial's parameters as its run config holds them: nested parameters
make a nested dict (``{"optimizer": {"momentum": 0.9}}``). A grid walks the
parameters in W&B's order (sorted by name, the last one changing fastest) and skips
the points that runs of the sweep already had, so a second agent goes on where the
first stopped, as W&B's server does. Random samples follow W&B's distributions; a seed
(``random.Random(seed)``) makes them repeatable.
"""

from __future__ import annotations

import itertools
import json
import math
import random
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, Final

from artisync.sweeps.config import Parameter, SweepPlan

__all__ = [
    "expected_run_count",
    "grid_points",
    "grid_size",
    "grid_values",
    "is_finished",
    "nest",
    "next_grid_point",
    "point_key",
    "sample",
    "sample_value",
]

_MISSING: Final = object()


def grid_values(parameter: Parameter) -> list[Any]:
    """The values a grid tries for ``parameter``: ``int_uniform`` from min to max
    inclusive; ``q_uniform`` from min in steps of q, max excluded (as W&B counts it)."""
    s = parameter.settings
    if parameter.distribution == "constant":
        return [s["value"]]
    if parameter.distribution == "categorical":
        return list(s["values"])
    if parameter.distribution == "int_uniform":
        return list(range(s["min"], s["max"] + 1))
    if parameter.distribution == "q_uniform":
        steps = math.ceil((s["max"] - s["min"]) / s["q"])
        return [s["min"] + i * s["q"] for i in range(steps)]
    raise ValueError(f"parameter {parameter.name!r} ({parameter.distribution}) is not a grid's")


def grid_size(plan: SweepPlan) -> int:
    """How many points the grid of ``plan`` has."""
    return math.prod(len(grid_values(p)) for p in plan.parameters)


def grid_points(plan: SweepPlan) -> Iterator[dict[str, Any]]:
    """Every point of the grid, the last parameter (by name) changing fastest."""
    columns = [grid_values(p) for p in plan.parameters]
    for combination in itertools.product(*columns):
        yield nest(zip((p.path for p in plan.parameters), combination, strict=True))


def next_grid_point(plan: SweepPlan, tried: set[str]) -> dict[str, Any] | None:
    """The first point of the grid whose :func:`point_key` is not in ``tried``, or
    None when every point was tried."""
    for point in grid_points(plan):
        if point_key(plan, point) not in tried:
            return point
    return None


def sample(plan: SweepPlan, rng: random.Random) -> dict[str, Any]:
    """One random point: each parameter drawn from its distribution, in order."""
    return nest((p.path, sample_value(p, rng)) for p in plan.parameters)


def sample_value(parameter: Parameter, rng: random.Random) -> Any:
    """One value of ``parameter`` drawn with ``rng``, as W&B draws it.

    ``q_*`` distributions round to a multiple of ``q`` (an int when ``q`` is an int);
    ``log_uniform``, ``inv_log_uniform`` and ``q_log_uniform`` take min and max as
    base-e exponents, their ``*_values`` forms as the values themselves.
    """
    s = parameter.settings
    kind = parameter.distribution
    if kind == "constant":
        return s["value"]
    if kind == "categorical":
        return rng.choice(list(s["values"]))
    if kind == "categorical_w_probabilities":
        return rng.choices(list(s["values"]), weights=list(s["probabilities"]))[0]
    if kind == "int_uniform":
        return rng.randint(s["min"], s["max"])
    base = kind.removeprefix("q_")
    value = _continuous(base, s, rng)
    return _quantized(value, s["q"]) if kind.startswith("q_") else value


def _continuous(kind: str, s: Mapping[str, Any], rng: random.Random) -> float:
    if kind == "uniform":
        return rng.uniform(s["min"], s["max"])
    if kind == "log_uniform":
        return math.exp(rng.uniform(s["min"], s["max"]))
    if kind == "log_uniform_values":
        return math.exp(rng.uniform(math.log(s["min"]), math.log(s["max"])))
    if kind == "inv_log_uniform":
        return math.exp(-rng.uniform(s["min"], s["max"]))
    if kind == "inv_log_uniform_values":
        return math.exp(-rng.uniform(-math.log(s["max"]), -math.log(s["min"])))
    if kind == "normal":
        return rng.gauss(s["mu"], s["sigma"])
    if kind == "log_normal":
        return rng.lognormvariate(s["mu"], s["sigma"])
    if kind == "beta":
        return rng.betavariate(s["a"], s["b"])
    raise ValueError(f"unknown distribution {kind!r}")


def _quantized(value: float, q: float) -> float | int:
    steps = round(value / q)
    return steps * q if not isinstance(q, int) else int(steps * q)


def nest(items: Iterable[tuple[tuple[str, ...], Any]]) -> dict[str, Any]:
    """``(("optimizer", "lr"), 0.1)`` pairs as the nested dict a run config holds."""
    out: dict[str, Any] = {}
    for path, value in items:
        level = out
        for key in path[:-1]:
            level = level.setdefault(key, {})
        level[path[-1]] = value
    return out


def point_key(plan: SweepPlan, config: Mapping[str, Any]) -> str | None:
    """What identifies a grid point in ``config`` (a point, or a run's config): the
    values of the plan's parameters; None when one is missing. An integral float
    counts as its int (``3e6`` and ``3000000`` are one point), as in W&B."""
    values = []
    for p in plan.parameters:
        value: Any = config
        for key in p.path:
            value = value.get(key, _MISSING) if isinstance(value, Mapping) else _MISSING
        if value is _MISSING:
            return None
        values.append(_canonical(value))
    return json.dumps(values, sort_keys=True)


def _canonical(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, Mapping):
        return {str(k): _canonical(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_canonical(v) for v in value]
    return value


def is_finished(plan: SweepPlan, run_configs: Sequence[Mapping[str, Any]]) -> bool:
    """Whether a sweep whose runs have ``run_configs`` is done: it has ``run_cap``
    runs, or (a grid) a run for every point."""
    if plan.run_cap is not None and len(run_configs) >= plan.run_cap:
        return True
    if plan.search != "grid":
        return False
    tried = {point_key(plan, c) for c in run_configs}
    return all(point_key(plan, p) in tried for p in grid_points(plan))


def expected_run_count(plan: SweepPlan) -> int | None:
    """How many runs the sweep will have: the grid's size, capped by ``run_cap``; for
    random search ``run_cap``, or None (no end)."""
    if plan.search != "grid":
        return plan.run_cap
    size = grid_size(plan)
    return size if plan.run_cap is None else min(size, plan.run_cap)
