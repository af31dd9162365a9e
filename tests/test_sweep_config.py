"""W&B's sweep config read as W&B reads it: inferred distributions, defaults, nesting,
and a clear error naming the key for every malformed part."""

from __future__ import annotations

from typing import Any

import pytest

from artisync.errors import InvalidInputError
from artisync.sweeps.config import parse_sweep_config


def _one(spec: dict[str, Any], method: str = "random") -> tuple[str, dict[str, Any]]:
    plan = parse_sweep_config({"method": method, "parameters": {"p": spec}})
    (parameter,) = plan.parameters
    return parameter.distribution, dict(parameter.settings)


@pytest.mark.parametrize(
    ("spec", "distribution"),
    [
        ({"value": 3}, "constant"),
        ({"values": [1, 2]}, "categorical"),
        ({"values": ["a", "b"], "probabilities": [0.25, 0.75]}, "categorical_w_probabilities"),
        ({"min": 1, "max": 10}, "int_uniform"),
        ({"min": 0.1, "max": 0.5}, "uniform"),
        ({"min": 0, "max": 0.5}, "uniform"),
        ({"min": 1.0, "max": 10.0}, "uniform"),
        ({"min": 1, "max": 10, "distribution": "uniform"}, "uniform"),
        ({"distribution": "normal"}, "normal"),
    ],
)
def test_distribution_is_inferred_as_wandb_infers_it(
    spec: dict[str, Any], distribution: str
) -> None:
    assert _one(spec)[0] == distribution


def test_defaults_are_wandbs() -> None:
    assert _one({"distribution": "normal"})[1] == {"mu": 0.0, "sigma": 1.0}
    assert _one({"distribution": "q_uniform", "min": 0, "max": 1})[1]["q"] == 1.0
    assert _one({"distribution": "q_beta"})[1] == {"a": 1.0, "b": 1.0, "q": 1.0}
    assert _one({"distribution": "log_normal", "mu": -2})[1] == {"mu": -2, "sigma": 1.0}


def test_every_wandb_distribution_is_read() -> None:
    specs: list[dict[str, Any]] = [
        {"distribution": "constant", "value": "x"},
        {"distribution": "categorical", "values": [1]},
        {"distribution": "int_uniform", "min": 0, "max": 3},
        {"distribution": "uniform", "min": 0, "max": 3},
        {"distribution": "q_uniform", "min": 0, "max": 3, "q": 0.5},
        {"distribution": "log_uniform_values", "min": 1e-4, "max": 1e-1},
        {"distribution": "inv_log_uniform_values", "min": 1e-4, "max": 1e-1},
        {"distribution": "q_log_uniform_values", "min": 1, "max": 256, "q": 2},
        {"distribution": "normal", "mu": 1, "sigma": 2},
        {"distribution": "q_normal", "q": 2},
        {"distribution": "log_normal"},
        {"distribution": "q_log_normal"},
        {"distribution": "beta", "a": 2, "b": 5},
        {"distribution": "q_beta", "q": 0.1},
    ]
    for spec in specs:
        assert _one(spec)[0] == spec["distribution"]


def test_old_log_distributions_warn_that_min_and_max_are_exponents() -> None:
    with pytest.warns(UserWarning, match="log_uniform_values"):
        assert _one({"distribution": "log_uniform", "min": -9, "max": -2})[0] == "log_uniform"


def test_nested_parameters_keep_their_path_and_everything_sorts_by_name() -> None:
    plan = parse_sweep_config(
        {
            "method": "grid",
            "parameters": {
                "z": {"value": 1},
                "optimizer": {
                    "parameters": {"name": {"values": ["adam", "sgd"]}, "lr": {"value": 0.1}}
                },
                "a": {"values": [1]},
            },
        }
    )
    assert [p.path for p in plan.parameters] == [
        ("a",),
        ("optimizer", "lr"),
        ("optimizer", "name"),
        ("z",),
    ]
    assert plan.parameters[2].name == "optimizer.name"


def test_metric_run_cap_name_and_early_terminate_are_read() -> None:
    plan = parse_sweep_config(
        {
            "method": "random",
            "name": "my-sweep",
            "metric": {"name": "val_acc", "goal": "maximize"},
            "run_cap": 7,
            "early_terminate": {"type": "hyperband", "min_iter": 3},
            "parameters": {"lr": {"values": [0.1]}},
            "program": "train.py",
            "description": "d",
        }
    )
    assert plan.metric is not None
    assert (plan.metric.name, plan.metric.goal) == ("val_acc", "maximize")
    assert plan.run_cap == 7
    assert plan.name == "my-sweep"
    default_goal = parse_sweep_config(
        {"method": "grid", "metric": {"name": "loss"}, "parameters": {"a": {"value": 1}}}
    ).metric
    assert default_goal is not None and default_goal.goal == "minimize"


def test_bayes_is_read_and_searched_as_random() -> None:
    plan = parse_sweep_config(
        {"method": "bayes", "metric": {"name": "loss"}, "parameters": {"a": {"min": 0, "max": 1}}}
    )
    assert (plan.method, plan.search) == ("bayes", "random")


@pytest.mark.parametrize(
    ("config", "needle"),
    [
        ({"parameters": {"a": {"value": 1}}}, "'method'"),
        ({"method": "custom", "parameters": {"a": {"value": 1}}}, "'custom'"),
        ({"method": "bayes", "parameters": {"a": {"value": 1}}}, "needs a 'metric'"),
        ({"method": "grid"}, "needs 'parameters'"),
        ({"method": "grid", "parameters": {}}, "needs 'parameters'"),
        ({"method": "grid", "parameters": {"a": {"value": 1}}, "paramters": {}}, "'paramters'"),
        ({"method": "grid", "parameters": {"a": [1, 2]}}, "'a' must be a dict"),
        ({"method": "grid", "parameters": {"a": {}}}, "'a' says nothing to search"),
        ({"method": "grid", "parameters": {"a": {"min": 1}}}, "both 'min' and 'max'"),
        ({"method": "grid", "parameters": {"a": {"values": []}}}, "non-empty list"),
        ({"method": "grid", "parameters": {"a": {"values": [1], "vals": 2}}}, "'vals'"),
        ({"method": "random", "parameters": {"a": {"min": 5, "max": 1}}}, "less than 'max'"),
        ({"method": "random", "parameters": {"a": {"min": "0", "max": 1}}}, "'min'"),
        (
            {
                "method": "random",
                "parameters": {"a": {"distribution": "int_uniform", "min": 0.5, "max": 3}},
            },
            "int 'min' and 'max'",
        ),
        (
            {"method": "random", "parameters": {"a": {"distribution": "gamma"}}},
            "unknown distribution 'gamma'",
        ),
        (
            {"method": "random", "parameters": {"a": {"distribution": "uniform", "min": 0}}},
            "needs 'max'",
        ),
        (
            {
                "method": "random",
                "parameters": {"lr": {"distribution": "log_uniform_values", "min": 0, "max": 1}},
            },
            "'min' above 0",
        ),
        (
            {
                "method": "random",
                "parameters": {"a": {"distribution": "q_uniform", "min": 0, "max": 1, "q": 0}},
            },
            "'q' must be above 0",
        ),
        (
            {"method": "random", "parameters": {"a": {"values": [1, 2], "probabilities": [0.5]}}},
            "'probabilities'",
        ),
        (
            {
                "method": "random",
                "parameters": {"a": {"values": [1, 2], "probabilities": [0.5, 0.6]}},
            },
            "add up to 1",
        ),
        ({"method": "grid", "parameters": {"lr": {"min": 0.1, "max": 0.5}}}, "grid cannot"),
        (
            {
                "method": "grid",
                "parameters": {"o": {"parameters": {"m": {"min": 0.0, "max": 1.0}}}},
            },
            "'o.m'",
        ),
        ({"method": "grid", "parameters": {"o": {"parameters": {}}}}, "'o' nests"),
        (
            {"method": "grid", "metric": {"goal": "max"}, "parameters": {"a": {"value": 1}}},
            "'name'",
        ),
        (
            {
                "method": "grid",
                "metric": {"name": "l", "goal": "max"},
                "parameters": {"a": {"value": 1}},
            },
            "'goal'",
        ),
        (
            {
                "method": "grid",
                "metric": {"name": "l", "mode": "min"},
                "parameters": {"a": {"value": 1}},
            },
            "'mode'",
        ),
        ({"method": "grid", "run_cap": 0, "parameters": {"a": {"value": 1}}}, "'run_cap'"),
        (
            {
                "method": "grid",
                "early_terminate": {"type": "median"},
                "parameters": {"a": {"value": 1}},
            },
            "'early_terminate'",
        ),
        (
            {
                "method": "grid",
                "early_terminate": {"type": "hyperband"},
                "parameters": {"a": {"value": 1}},
            },
            "'min_iter'",
        ),
        ({"method": "grid", "metrics": [], "parameters": {"a": {"value": 1}}}, "'metrics'"),
        ({"method": "grid", "parameters": {"a": {"value": float("nan")}}}, "sweep config"),
        ({"method": "grid", "name": 3, "parameters": {"a": {"value": 1}}}, "'name'"),
    ],
)
def test_malformed_configs_are_refused_naming_the_key(config: dict[str, Any], needle: str) -> None:
    with pytest.raises(InvalidInputError, match=None) as caught:
        parse_sweep_config(config)
    assert needle in str(caught.value)


def test_a_config_that_is_not_a_dict_is_refused() -> None:
    with pytest.raises(InvalidInputError, match="must be a dict"):
        parse_sweep_config([("method", "grid")])
