"""W&B's sweep configuration, checked and read into a :class:`SweepPlan`.

The same dict a W&B script passes to ``wandb.sweep(...)``::

    {"method": "grid",
     "metric": {"name": "val_acc", "goal": "maximize"},
     "parameters": {"lr": {"values": [0.1, 0.01]},
                    "epochs": {"value": 5},
                    "dropout": {"min": 0.1, "max": 0.5},
                    "optimizer": {"parameters": {"momentum": {"min": 0.8, "max": 0.99}}}}}

A parameter without ``distribution`` gets the one W&B infers: ``value`` is
``constant``, ``values`` is ``categorical`` (``categorical_w_probabilities`` with
``probabilities``), ``min``/``max`` both ints is ``int_uniform``, else ``uniform``; a
dict with only ``parameters`` nests (its values become a dict in the run's config).
Every distribution of W&B's schema is read, with its defaults (``q`` 1.0, ``mu`` 0,
``sigma`` 1, ``a``/``b`` 1). W&B's server only warns about a malformed config; here it
is an error that names the key, since a sweep that searches something else than
intended wastes every trial.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from artisync.errors import InvalidInputError
from artisync.sdk.validation import require_json

__all__ = [
    "DISTRIBUTIONS",
    "GOALS",
    "GRID_DISTRIBUTIONS",
    "METHODS",
    "Metric",
    "Parameter",
    "SweepPlan",
    "parse_sweep_config",
]

METHODS: Final = ("grid", "random", "bayes")
GOALS: Final = ("minimize", "maximize")

# Each distribution: the keys it requires, and the optional ones with W&B's defaults.
DISTRIBUTIONS: Final[dict[str, tuple[tuple[str, ...], dict[str, Any]]]] = {
    "constant": (("value",), {}),
    "categorical": (("values",), {}),
    "categorical_w_probabilities": (("values", "probabilities"), {}),
    "int_uniform": (("min", "max"), {}),
    "uniform": (("min", "max"), {}),
    "q_uniform": (("min", "max"), {"q": 1.0}),
    "log_uniform": (("min", "max"), {}),
    "log_uniform_values": (("min", "max"), {}),
    "inv_log_uniform": (("min", "max"), {}),
    "inv_log_uniform_values": (("min", "max"), {}),
    "q_log_uniform": (("min", "max"), {"q": 1.0}),
    "q_log_uniform_values": (("min", "max"), {"q": 1.0}),
    "normal": ((), {"mu": 0.0, "sigma": 1.0}),
    "q_normal": ((), {"mu": 0.0, "sigma": 1.0, "q": 1.0}),
    "log_normal": ((), {"mu": 0.0, "sigma": 1.0}),
    "q_log_normal": ((), {"mu": 0.0, "sigma": 1.0, "q": 1.0}),
    "beta": ((), {"a": 1.0, "b": 1.0}),
    "q_beta": ((), {"a": 1.0, "b": 1.0, "q": 1.0}),
}
# What a grid can enumerate (W&B's rule): int_uniform and q_uniform become their values.
GRID_DISTRIBUTIONS: Final = ("constant", "categorical", "int_uniform", "q_uniform")
# Whose min and max are values of the parameter itself, so must be > 0 on a log scale.
_POSITIVE_BOUNDS: Final = ("log_uniform_values", "inv_log_uniform_values", "q_log_uniform_values")
# W&B's v1 log distributions take min and max as base-e exponents; W&B warns about them.
_EXPONENT_BOUNDS: Final = {
    "log_uniform": "log_uniform_values",
    "inv_log_uniform": "inv_log_uniform_values",
    "q_log_uniform": "q_log_uniform_values",
}

# Top-level keys of W&B's schema. Those artisync does not act on are kept with the
# sweep (``Api().sweep(...).config``) and documented in docs/decisions.md.
_TOP_KEYS: Final = (
    "method",
    "parameters",
    "metric",
    "name",
    "description",
    "run_cap",
    "early_terminate",
    "program",
    "command",
    "entity",
    "project",
    "controller",
    "apiVersion",
    "kind",
    "job",
    "image_uri",
    "scheduler",
)
_METRIC_KEYS: Final = ("name", "goal", "target", "impute", "impute_while_running")
_HYPERBAND_KEYS: Final = ("type", "max_iter", "min_iter", "s", "eta", "strict")


@dataclass(frozen=True)
class Metric:
    """The metric a sweep optimises: a key of each run's summary, and which way is better."""

    name: str
    goal: str = "minimize"
    target: float | None = None


@dataclass(frozen=True)
class Parameter:
    """One searched (or constant) value of the run config.

    ``path`` is its place in the config: ``("lr",)``, or ``("optimizer", "momentum")``
    for a nested parameter. ``settings`` holds the distribution's keys with W&B's
    defaults filled in (``min``, ``max``, ``q``, ``mu``, ``sigma``, ``a``, ``b``,
    ``value``, ``values``, ``probabilities``).
    """

    path: tuple[str, ...]
    distribution: str
    settings: Mapping[str, Any]

    @property
    def name(self) -> str:
        """The parameter as the config names it: ``optimizer.momentum`` when nested."""
        return ".".join(self.path)


@dataclass(frozen=True)
class SweepPlan:
    """What a sweep config asks for, checked: how to search, what, and when to stop."""

    method: str
    parameters: tuple[Parameter, ...]
    metric: Metric | None = None
    run_cap: int | None = None
    name: str | None = None

    @property
    def search(self) -> str:
        """The search artisync runs: ``grid`` or ``random`` (``bayes`` is run as random)."""
        return "grid" if self.method == "grid" else "random"


def parse_sweep_config(config: object) -> SweepPlan:
    """Check a W&B sweep config and read it; parameters come in W&B's order (sorted by
    name at each level), which is the order a grid walks them.

    Raises:
        InvalidInputError: naming the key that is missing, unknown or of a bad value.
    """
    if not isinstance(config, Mapping):
        raise InvalidInputError(
            f"A sweep config must be a dict (W&B's sweep configuration), not "
            f"{type(config).__name__}"
        )
    require_json(config, "sweep config")
    unknown = [str(k) for k in config if k not in _TOP_KEYS]
    if "metrics" in unknown:
        raise InvalidInputError(
            "sweep config key 'metrics' (several metrics) needs W&B's method 'custom', which "
            "artisync does not run: give one 'metric' with a name and a goal"
        )
    if unknown:
        raise InvalidInputError(
            f"Unknown sweep config key(s) {', '.join(map(repr, unknown))}: the keys are "
            f"{', '.join(_TOP_KEYS)}"
        )
    method = config.get("method")
    if method not in METHODS:
        raise InvalidInputError(
            f"sweep config 'method' is {method!r}: use 'grid' or 'random' ('bayes' runs as "
            "random search here; W&B's 'custom' needs its scheduler and is not supported)"
        )
    metric = _metric(config.get("metric"))
    if method == "bayes" and metric is None:
        raise InvalidInputError(
            "sweep config with method 'bayes' needs a 'metric' ({'name': ..., 'goal': "
            "'minimize' or 'maximize'}), as in W&B"
        )
    raw = config.get("parameters")
    if not isinstance(raw, Mapping) or not raw:
        raise InvalidInputError(
            "sweep config needs 'parameters': a dict of parameter name to its spec, e.g. "
            "{'lr': {'values': [0.1, 0.01]}}"
        )
    parameters = tuple(sorted(_parameters(raw, ()), key=lambda p: p.path))
    if method == "grid":
        for p in parameters:
            if p.distribution not in GRID_DISTRIBUTIONS:
                raise InvalidInputError(
                    f"sweep parameter {p.name!r} has distribution {p.distribution!r}, which a "
                    f"grid cannot enumerate: a grid takes {', '.join(GRID_DISTRIBUTIONS)} "
                    "(give 'values', or use method 'random')"
                )
    _check_early_terminate(config.get("early_terminate"))
    for key in ("name", "description", "program"):
        if key in config and not isinstance(config[key], str):
            raise InvalidInputError(f"sweep config {key!r} must be a str, not {config[key]!r}")
    return SweepPlan(
        method=str(method),
        parameters=parameters,
        metric=metric,
        run_cap=_run_cap(config.get("run_cap")),
        name=config.get("name"),
    )


def _metric(raw: object) -> Metric | None:
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        raise InvalidInputError(
            f"sweep config 'metric' must be a dict like {{'name': 'val_loss', 'goal': "
            f"'minimize'}}, not {raw!r}"
        )
    unknown = [str(k) for k in raw if k not in _METRIC_KEYS]
    if unknown:
        raise InvalidInputError(
            f"Unknown key(s) {', '.join(map(repr, unknown))} in sweep config 'metric': the "
            f"keys are {', '.join(_METRIC_KEYS)}"
        )
    name = raw.get("name")
    if not isinstance(name, str) or not name:
        raise InvalidInputError(
            f"sweep config 'metric' needs a 'name' (the summary key to optimise), not {name!r}"
        )
    goal = raw.get("goal", "minimize")
    if goal not in GOALS:
        raise InvalidInputError(
            f"sweep config metric 'goal' is {goal!r}: use 'minimize' or 'maximize'"
        )
    target = raw.get("target")
    if target is not None and not _is_number(target):
        raise InvalidInputError(f"sweep config metric 'target' must be a number, not {target!r}")
    return Metric(name, str(goal), None if target is None else float(target))


def _run_cap(raw: object) -> int | None:
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, int) or raw < 1:
        raise InvalidInputError(f"sweep config 'run_cap' must be an int of 1 or more, not {raw!r}")
    return raw


def _check_early_terminate(raw: object) -> None:
    """Accept W&B's hyperband settings (trials here run to their end: see decisions.md)."""
    if raw is None:
        return
    if not isinstance(raw, Mapping) or raw.get("type") != "hyperband":
        raise InvalidInputError(
            f"sweep config 'early_terminate' must be {{'type': 'hyperband', ...}}, not {raw!r}"
        )
    unknown = [str(k) for k in raw if k not in _HYPERBAND_KEYS]
    if unknown:
        raise InvalidInputError(
            f"Unknown key(s) {', '.join(map(repr, unknown))} in sweep config "
            f"'early_terminate': the keys are {', '.join(_HYPERBAND_KEYS)}"
        )
    if "min_iter" not in raw and not ("max_iter" in raw and "s" in raw):
        raise InvalidInputError(
            "sweep config 'early_terminate' needs 'min_iter', or 'max_iter' and 's', as in W&B"
        )


def _parameters(raw: Mapping[Any, Any], prefix: tuple[str, ...]) -> list[Parameter]:
    found: list[Parameter] = []
    for key, spec in raw.items():
        path = (*prefix, key)
        where = ".".join(path)
        if not isinstance(key, str) or not key:
            raise InvalidInputError(f"sweep parameter names must be non-empty str, not {key!r}")
        if not isinstance(spec, Mapping):
            raise InvalidInputError(
                f"sweep parameter {where!r} must be a dict such as {{'values': [...]}}, "
                f"{{'value': ...}} or {{'min': ..., 'max': ...}}, not {spec!r}"
            )
        if "parameters" in spec and "distribution" not in spec:
            extra = [str(k) for k in spec if k != "parameters"]
            nested = spec["parameters"]
            if extra or not isinstance(nested, Mapping) or not nested:
                raise InvalidInputError(
                    f"sweep parameter {where!r} nests parameters: it takes only 'parameters', "
                    "a non-empty dict of parameter name to spec"
                )
            found.extend(_parameters(nested, path))
            continue
        found.append(_parameter(path, spec))
    return found


def _inferred(where: str, spec: Mapping[str, Any]) -> str:
    """The distribution W&B gives a parameter that names none."""
    if "value" in spec:
        return "constant"
    if "values" in spec:
        return "categorical_w_probabilities" if "probabilities" in spec else "categorical"
    if "min" in spec and "max" in spec:
        ints = all(_is_int(spec[k]) for k in ("min", "max"))
        return "int_uniform" if ints else "uniform"
    if "min" in spec or "max" in spec:
        raise InvalidInputError(f"sweep parameter {where!r} needs both 'min' and 'max'")
    raise InvalidInputError(
        f"sweep parameter {where!r} says nothing to search: give 'values', 'value', 'min' "
        "and 'max', 'parameters', or a 'distribution'"
    )


def _parameter(path: tuple[str, ...], spec: Mapping[str, Any]) -> Parameter:
    where = ".".join(path)
    distribution = spec.get("distribution") or _inferred(where, spec)
    if distribution not in DISTRIBUTIONS:
        raise InvalidInputError(
            f"sweep parameter {where!r} has unknown distribution {distribution!r}: use one of "
            f"{', '.join(DISTRIBUTIONS)}"
        )
    required, optional = DISTRIBUTIONS[distribution]
    missing = [k for k in required if k not in spec]
    if missing:
        raise InvalidInputError(
            f"sweep parameter {where!r} ({distribution}) needs {', '.join(map(repr, missing))}"
        )
    allowed = {*required, *optional, "distribution"}
    unknown = [str(k) for k in spec if k not in allowed]
    if unknown:
        raise InvalidInputError(
            f"sweep parameter {where!r} ({distribution}) does not take "
            f"{', '.join(map(repr, unknown))}: it takes {', '.join(sorted(allowed))}"
        )
    settings = {**optional, **{k: v for k, v in spec.items() if k != "distribution"}}
    _check_settings(where, distribution, settings)
    if distribution in _EXPONENT_BOUNDS:
        warnings.warn(
            f"sweep parameter {where!r} uses {distribution!r}, whose min and max are base-e "
            f"exponents (W&B's old meaning); use {_EXPONENT_BOUNDS[distribution]!r} to give "
            "the values themselves",
            UserWarning,
            stacklevel=4,
        )
    return Parameter(path, distribution, settings)


def _check_settings(where: str, distribution: str, settings: Mapping[str, Any]) -> None:
    for key in ("min", "max", "q", "mu", "sigma", "a", "b"):
        if key in settings and not _is_number(settings[key]):
            raise InvalidInputError(
                f"sweep parameter {where!r} {key!r} must be a finite number, not {settings[key]!r}"
            )
    if "values" in settings:
        values = settings["values"]
        if not isinstance(values, list | tuple) or not values:
            raise InvalidInputError(
                f"sweep parameter {where!r} 'values' must be a non-empty list, not {values!r}"
            )
    if distribution == "int_uniform" and not all(_is_int(settings[k]) for k in ("min", "max")):
        raise InvalidInputError(
            f"sweep parameter {where!r} (int_uniform) needs int 'min' and 'max', not "
            f"{settings['min']!r} and {settings['max']!r}"
        )
    if "min" in settings and settings["min"] >= settings["max"]:
        raise InvalidInputError(
            f"sweep parameter {where!r}: 'min' {settings['min']!r} must be less than 'max' "
            f"{settings['max']!r}"
        )
    if distribution in _POSITIVE_BOUNDS and settings["min"] <= 0:
        raise InvalidInputError(
            f"sweep parameter {where!r} ({distribution}) needs 'min' above 0 (its values are "
            f"taken on a log scale), not {settings['min']!r}"
        )
    if "q" in settings and settings["q"] <= 0:
        raise InvalidInputError(f"sweep parameter {where!r} 'q' must be above 0")
    for key in ("sigma", "a", "b"):
        if key in settings and settings[key] < 0:
            raise InvalidInputError(f"sweep parameter {where!r} {key!r} must not be negative")
    if distribution == "categorical_w_probabilities":
        _check_probabilities(where, settings["values"], settings["probabilities"])


def _check_probabilities(where: str, values: Any, probabilities: object) -> None:
    if (
        not isinstance(probabilities, list | tuple)
        or len(probabilities) != len(values)
        or not all(_is_number(p) and p >= 0 for p in probabilities)
    ):
        raise InvalidInputError(
            f"sweep parameter {where!r} 'probabilities' must be a list of {len(values)} "
            f"numbers of 0 or more, one for each value, not {probabilities!r}"
        )
    if not math.isclose(math.fsum(probabilities), 1.0, rel_tol=1e-6):
        raise InvalidInputError(
            f"sweep parameter {where!r} 'probabilities' must add up to 1, not "
            f"{math.fsum(probabilities)!r}"
        )


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return math.isfinite(value)
