"""Grid and random search as W&B runs them: a grid's points in W&B's order, skipping
what was tried; random samples within each distribution, repeatable with a seed."""

from __future__ import annotations

import math
import random
from typing import Any

from artisync.sweeps.config import parse_sweep_config
from artisync.sweeps.search import (
    expected_run_count,
    grid_points,
    grid_size,
    is_finished,
    next_grid_point,
    point_key,
    sample,
)


def _plan(parameters: dict[str, Any], method: str = "grid", **extra: Any) -> Any:
    return parse_sweep_config({"method": method, "parameters": parameters, **extra})


def test_grid_walks_parameters_sorted_by_name_the_last_changing_fastest() -> None:
    plan = _plan({"b": {"values": ["x", "y"]}, "a": {"values": [1, 2, 3]}, "c": {"value": 0}})
    assert list(grid_points(plan)) == [
        {"a": 1, "b": "x", "c": 0},
        {"a": 1, "b": "y", "c": 0},
        {"a": 2, "b": "x", "c": 0},
        {"a": 2, "b": "y", "c": 0},
        {"a": 3, "b": "x", "c": 0},
        {"a": 3, "b": "y", "c": 0},
    ]
    assert grid_size(plan) == 6


def test_grid_enumerates_int_uniform_inclusive_and_q_uniform_without_max() -> None:
    plan = _plan(
        {
            "layers": {"min": 1, "max": 3},
            "width": {"distribution": "q_uniform", "min": 32, "max": 128, "q": 32},
        }
    )
    assert [(p["layers"], p["width"]) for p in grid_points(plan)] == [
        (n, w) for n in (1, 2, 3) for w in (32, 64, 96)
    ]
    floats = _plan({"x": {"distribution": "q_uniform", "min": 0, "max": 1, "q": 0.25}})
    assert [p["x"] for p in grid_points(floats)] == [0, 0.25, 0.5, 0.75]


def test_nested_parameters_make_a_nested_config() -> None:
    plan = _plan(
        {"optimizer": {"parameters": {"name": {"values": ["adam", "sgd"]}, "lr": {"value": 0.1}}}}
    )
    assert list(grid_points(plan)) == [
        {"optimizer": {"lr": 0.1, "name": "adam"}},
        {"optimizer": {"lr": 0.1, "name": "sgd"}},
    ]


def test_next_grid_point_skips_points_tried_by_value_an_integral_float_matching_its_int() -> None:
    plan = _plan({"a": {"values": [1, 2]}, "b": {"values": [3e6, 4]}})
    tried = {point_key(plan, {"a": 1.0, "b": 3000000, "extra": "kept by the run"})}
    assert next_grid_point(plan, {k for k in tried if k is not None}) == {"a": 1, "b": 4}
    every = {point_key(plan, p) for p in grid_points(plan)}
    assert next_grid_point(plan, {k for k in every if k is not None}) is None


def test_point_key_is_none_for_a_run_without_every_parameter() -> None:
    plan = _plan({"o": {"parameters": {"lr": {"values": [1]}}}})
    assert point_key(plan, {"o": {"lr": 1}}) is not None
    assert point_key(plan, {"o": 5}) is None
    assert point_key(plan, {}) is None


def test_a_grid_is_finished_when_every_point_has_a_run_or_the_run_cap_is_reached() -> None:
    plan = _plan({"a": {"values": [1, 2]}})
    assert not is_finished(plan, [{"a": 1}])
    assert is_finished(plan, [{"a": 2}, {"a": 1}])
    capped = _plan({"a": {"values": [1, 2, 3]}}, run_cap=2)
    assert is_finished(capped, [{"a": 1}, {"a": 3}])
    assert expected_run_count(capped) == 2
    assert expected_run_count(plan) == 2
    endless = _plan({"a": {"min": 0.0, "max": 1.0}}, method="random")
    assert expected_run_count(endless) is None
    assert not is_finished(endless, [{"a": 0.5}] * 100)


def test_random_samples_stay_in_their_ranges_with_wandbs_types() -> None:
    plan = _plan(
        {
            "c": {"value": "k"},
            "cat": {"values": ["x", "y", "z"]},
            "layers": {"min": 2, "max": 4},
            "dropout": {"min": 0.1, "max": 0.5},
            "lr": {"distribution": "log_uniform_values", "min": 1e-5, "max": 1e-1},
            "batch": {"distribution": "q_log_uniform_values", "min": 16, "max": 256, "q": 8},
            "width": {"distribution": "q_uniform", "min": 0, "max": 10},
            "noise": {"distribution": "normal", "mu": 5, "sigma": 0.001},
            "scale": {"distribution": "log_normal", "mu": 0, "sigma": 0.5},
            "frac": {"distribution": "beta", "a": 2, "b": 2},
            "inv": {"distribution": "inv_log_uniform_values", "min": 0.01, "max": 1},
            "step": {"distribution": "q_normal", "mu": 100, "sigma": 10, "q": 5},
        },
        method="random",
    )
    rng = random.Random(7)
    for _ in range(300):
        p = sample(plan, rng)
        assert p["c"] == "k" and p["cat"] in ("x", "y", "z")
        assert isinstance(p["layers"], int) and 2 <= p["layers"] <= 4
        assert 0.1 <= p["dropout"] <= 0.5
        assert 1e-5 <= p["lr"] <= 1e-1
        assert isinstance(p["batch"], int) and p["batch"] % 8 == 0 and 16 <= p["batch"] <= 256
        # q defaults to 1.0, a float: W&B's value is a whole float, not an int.
        assert isinstance(p["width"], float) and p["width"].is_integer()
        assert math.isclose(p["noise"], 5, abs_tol=0.1)
        assert p["scale"] > 0 and 0 <= p["frac"] <= 1 and 0.01 <= p["inv"] <= 1
        assert isinstance(p["step"], int) and p["step"] % 5 == 0


def test_every_value_of_a_small_space_comes_up() -> None:
    plan = _plan({"a": {"min": 1, "max": 3}, "b": {"values": [True, False]}}, method="random")
    rng = random.Random(1)
    seen = {(p["a"], p["b"]) for p in (sample(plan, rng) for _ in range(200))}
    assert seen == {(a, b) for a in (1, 2, 3) for b in (True, False)}


def test_probabilities_weigh_the_values() -> None:
    plan = _plan({"a": {"values": ["rare", "common"], "probabilities": [0.0, 1.0]}}, "random")
    rng = random.Random(3)
    assert {sample(plan, rng)["a"] for _ in range(50)} == {"common"}


def test_a_seed_repeats_the_samples() -> None:
    plan = _plan({"lr": {"min": 0.0, "max": 1.0}, "n": {"min": 1, "max": 100}}, "random")
    first = [sample(plan, random.Random(42)) for _ in range(3)]
    again = [sample(plan, random.Random(42)) for _ in range(3)]
    assert first == again
    rng = random.Random(42)
    assert sample(plan, rng) != sample(plan, rng)
