"""What a run keeps beside its artifacts, on every backend: W&B's tags, notes and sweep,
its history rows (``run.log``), and the sweeps themselves."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from artisync.errors import InvalidInputError, NotFoundError
from artisync.registry import Registry, Run, Sweep
from artisync.registry.run_rules import (
    MAX_HISTORY_BATCH_BYTES,
    MAX_HISTORY_ROW_BYTES,
    MAX_HISTORY_ROWS,
    MAX_STEP,
)

SWEEP_CONFIG: dict[str, Any] = {
    "method": "grid",
    "metric": {"name": "loss", "goal": "minimize"},
    "parameters": {"lr": {"values": [0.1, 0.01]}},
}

# -- tags, notes, sweep -------------------------------------------------------------------


def test_a_new_run_has_no_tags_notes_or_sweep(registry: Registry) -> None:
    run = registry.ensure_run("proj", None, "r1")
    assert (run.tags, run.notes, run.sweep) == ([], None, None)


def test_tags_notes_and_sweep_are_kept_and_left_alone_when_not_given(
    registry: Registry,
) -> None:
    created = registry.ensure_run(
        "proj", None, "r1", tags=["baseline", "v1.0", "lr=0.1"], notes="# First\nrun", sweep="sw1"
    )
    assert (created.tags, created.notes, created.sweep) == (
        ["baseline", "v1.0", "lr=0.1"],
        "# First\nrun",
        "sw1",
    )
    # A resumed run that passes none of them keeps them (None means "leave it").
    resumed = registry.ensure_run("proj", None, "r1", name="again")
    assert (resumed.tags, resumed.notes, resumed.sweep, resumed.name) == (
        created.tags,
        created.notes,
        "sw1",
        "again",
    )
    assert registry.get_run("proj", "r1") == resumed
    assert [r.tags for r in registry.list_runs("proj")] == [created.tags]


def test_tags_given_again_replace_the_tags_each_kept_once_in_order(registry: Registry) -> None:
    registry.ensure_run("proj", None, "r1", tags=["a", "b"])
    run = registry.ensure_run("proj", None, "r1", tags=["c", "a", "c"])
    assert run.tags == ["c", "a"]
    assert registry.ensure_run("proj", None, "r1", tags=[]).tags == []


def test_runs_of_a_sweep_are_found_by_their_sweep(registry: Registry) -> None:
    registry.ensure_run("proj", None, "r1", sweep="sw1")
    registry.ensure_run("proj", None, "r2")
    registry.ensure_run("proj", None, "r3", sweep="sw1")
    assert [r.id for r in registry.list_runs("proj") if r.sweep == "sw1"] == ["r1", "r3"]


BAD_RUN_FIELDS: list[tuple[dict[str, Any], str]] = [
    ({"tags": "baseline"}, "must be a list of strings.*wrap one tag"),
    ({"tags": [""]}, "run tag '': must not be empty"),
    ({"tags": ["x" * 65]}, "at most 64"),
    ({"tags": ["a\nb"]}, "control character"),
    ({"tags": [7]}, "must be a str"),
    ({"tags": [f"t{i}" for i in range(257)]}, "257 given; at most 256 are allowed per run"),
    ({"notes": "n" * (64 * 1024 + 1)}, "at most 65,536"),
    ({"notes": "a\x00b"}, "NUL"),
    ({"notes": 3}, "must be a str"),
    ({"sweep": ""}, "sweep id '': must not be empty"),
    ({"sweep": "a/b"}, "sweep id 'a/b': must not contain '/'"),
    ({"sweep": "s" * 129}, "at most 128"),
]


@pytest.mark.parametrize(("fields", "message"), BAD_RUN_FIELDS)
def test_bad_tags_notes_or_sweep_are_refused_changing_nothing(
    registry: Registry, fields: dict[str, Any], message: str
) -> None:
    before = registry.ensure_run("proj", None, "r1", tags=["kept"], notes="kept")
    with pytest.raises(InvalidInputError, match=message):
        registry.ensure_run("proj", None, "r1", **fields)
    after = registry.get_run("proj", "r1")
    assert (after.tags, after.notes, after.sweep) == (before.tags, before.notes, None)


def test_run_json_without_the_new_fields_still_reads() -> None:
    run = Run("r1", "p", "e", None, None, None, {}, 1.0, tags=["a"], notes="n", sweep="s")
    assert Run.from_json(run.to_json()) == run
    old = {k: v for k, v in run.to_json().items() if k not in ("tags", "notes", "sweep")}
    assert (Run.from_json(old).tags, Run.from_json(old).notes, Run.from_json(old).sweep) == (
        [],
        None,
        None,
    )


# -- history ------------------------------------------------------------------------------


def test_history_rows_read_back_by_step(registry: Registry) -> None:
    registry.ensure_run("proj", None, "r1")
    assert registry.run_history("proj", "r1") == []
    registry.append_history(
        "proj", "r1", [{"_step": 1, "loss": 0.5}, {"_step": 0, "loss": 1.0, "acc": 0.1}]
    )
    registry.append_history("proj", "r1", [{"_step": 2, "loss": 0.25, "img": {"_type": "x"}}])
    assert registry.run_history("proj", "r1") == [
        {"_step": 0, "loss": 1.0, "acc": 0.1},
        {"_step": 1, "loss": 0.5},
        {"_step": 2, "loss": 0.25, "img": {"_type": "x"}},
    ]


def test_a_step_written_again_replaces_its_row(registry: Registry) -> None:
    registry.ensure_run("proj", None, "r1")
    rows = [{"_step": i, "loss": 1.0 / (i + 1)} for i in range(5)]
    registry.append_history("proj", "r1", rows)
    registry.append_history("proj", "r1", rows)  # a retry after a lost answer
    registry.append_history("proj", "r1", [{"_step": 3, "loss": 9.0, "resumed": True}])
    history = registry.run_history("proj", "r1")
    assert [row["_step"] for row in history] == [0, 1, 2, 3, 4]
    assert history[3] == {"_step": 3, "loss": 9.0, "resumed": True}


def test_a_step_twice_in_one_batch_keeps_the_last(registry: Registry) -> None:
    registry.ensure_run("proj", None, "r1")
    registry.append_history("proj", "r1", [{"_step": 0, "a": 1}, {"_step": 0, "a": 2}])
    assert registry.run_history("proj", "r1") == [{"_step": 0, "a": 2}]


def test_history_belongs_to_one_run_and_moves_its_updated_at(registry: Registry) -> None:
    created = registry.ensure_run("proj", "team", "r1")
    registry.ensure_run("proj", None, "r1")
    registry.append_history("proj", "r1", [{"_step": 0, "x": 1}], entity="team")
    assert registry.run_history("proj", "r1", entity="team") == [{"_step": 0, "x": 1}]
    assert registry.run_history("proj", "r1") == []
    assert registry.get_run("proj", "r1", entity="team").updated_at >= created.updated_at


def test_the_largest_batch_and_step_are_taken(registry: Registry) -> None:
    registry.ensure_run("proj", None, "r1")
    rows = [{"_step": i, "v": i} for i in range(MAX_HISTORY_ROWS - 1)]
    registry.append_history("proj", "r1", [*rows, {"_step": MAX_STEP, "v": -1}])
    history = registry.run_history("proj", "r1")
    assert len(history) == MAX_HISTORY_ROWS and history[-1] == {"_step": MAX_STEP, "v": -1}


def test_history_of_an_unknown_run_is_not_found(registry: Registry) -> None:
    registry.ensure_run("proj", None, "r1")
    calls: list[Callable[[], object]] = [
        lambda: registry.append_history("proj", "ghost", [{"_step": 0}]),
        lambda: registry.append_history("no-project", "r1", [{"_step": 0}]),
    ]
    for call in calls:
        with pytest.raises(NotFoundError, match=r"run '\w+' not found.*artisync\.init"):
            call()
    with pytest.raises(NotFoundError, match="run 'ghost' not found in project 'local/proj'"):
        registry.run_history("proj", "ghost")


def _nested(depth: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth - 2):
        value = [value]
    return value


_BIG = "x" * MAX_HISTORY_ROW_BYTES
BAD_HISTORY: list[tuple[object, str]] = [
    ({"_step": 0}, "must be a list of mappings"),
    ([[("_step", 0)]], "history row 0 of run 'r1' must be a mapping"),
    ([{"loss": 1.0}], "history row 0 .* must have '_step'.*got none"),
    ([{"_step": 0}, {"_step": -1}], "history row 1 .* '_step'.*got -1"),
    ([{"_step": 1.5}], "'_step'.*got 1.5"),
    ([{"_step": True}], "'_step'.*got True"),
    ([{"_step": "3"}], "'_step'.*got '3'"),
    ([{"_step": MAX_STEP + 1}], "'_step', a whole number from 0 to"),
    ([{"_step": 0, "loss": float("nan")}], "history row 0 .*NaN"),
    ([{"_step": 0, "x": object()}], "history row 0 .*JSON values"),
    ([{"_step": 0, "deep": _nested(101)}], "history row 0 .* nests deeper than 100 levels"),
    ([{"_step": 0, "big": _BIG}], r"history row 0 .*\(step 0\) is .* bytes as JSON; at most"),
    ([{"_step": i} for i in range(MAX_HISTORY_ROWS + 1)], "1,001 rows given at once"),
    (
        [{"_step": i, "v": "y" * (MAX_HISTORY_ROW_BYTES - 100)} for i in range(17)],
        f"at most {MAX_HISTORY_BATCH_BYTES:,} are taken per call",
    ),
]


@pytest.mark.parametrize(("rows", "message"), BAD_HISTORY)
def test_bad_history_is_refused_storing_nothing(
    registry: Registry, rows: Any, message: str
) -> None:
    registry.ensure_run("proj", None, "r1")
    registry.append_history("proj", "r1", [{"_step": 0, "kept": True}])
    with pytest.raises(InvalidInputError, match=message):
        registry.append_history("proj", "r1", rows)
    assert registry.run_history("proj", "r1") == [{"_step": 0, "kept": True}]


# -- sweeps -------------------------------------------------------------------------------


def test_a_sweep_is_created_once_and_read_back(registry: Registry) -> None:
    sweep = registry.create_sweep("proj", "sw1", SWEEP_CONFIG)
    assert (sweep.id, sweep.project, sweep.entity, sweep.config, sweep.state) == (
        "sw1",
        "proj",
        "local",
        SWEEP_CONFIG,
        "RUNNING",
    )
    assert registry.get_sweep("proj", "sw1") == sweep
    # The same id with the same config (in any key order) is the same sweep: a retry.
    reordered = dict(reversed(list(SWEEP_CONFIG.items())))
    assert registry.create_sweep("proj", "sw1", reordered) == sweep
    assert Sweep.from_json(sweep.to_json()) == sweep
    assert "proj" in [p.name for p in registry.list_projects()]


def test_a_sweep_id_again_with_another_config_is_refused(registry: Registry) -> None:
    sweep = registry.create_sweep("proj", "sw1", SWEEP_CONFIG, entity="team")
    with pytest.raises(InvalidInputError, match="sweep 'sw1' of project 'team/proj' exists"):
        registry.create_sweep("proj", "sw1", {**SWEEP_CONFIG, "method": "random"}, "team")
    with pytest.raises(InvalidInputError, match="exists already with another config"):
        registry.create_sweep(
            "proj", "sw1", {"method": "grid", "parameters": {"lr": {"value": 1}}}, "team"
        )
    assert registry.get_sweep("proj", "sw1", "team") == sweep
    # Another project or entity has sweep ids of its own.
    assert registry.create_sweep("proj", "sw1", {"method": "random"}).config == {"method": "random"}


def test_a_missing_sweep_is_not_found_naming_project_and_id(registry: Registry) -> None:
    registry.create_sweep("proj", "sw1", SWEEP_CONFIG)
    with pytest.raises(NotFoundError, match="sweep 'nope' not found in project 'local/proj'"):
        registry.get_sweep("proj", "nope")
    with pytest.raises(NotFoundError, match="sweep 'sw1' not found in project 'team/proj'"):
        registry.get_sweep("proj", "sw1", "team")


@pytest.mark.parametrize(
    ("sweep_id", "config", "message"),
    [
        ("", SWEEP_CONFIG, "sweep id '': must not be empty"),
        ("a:b", SWEEP_CONFIG, "sweep id 'a:b': must not contain ':'"),
        ("sw", ["grid"], "config of sweep 'sw' must be a mapping"),
        ("sw", {"min": float("inf")}, "config of sweep 'sw' must hold only JSON values"),
    ],
)
def test_bad_sweeps_are_refused(
    registry: Registry, sweep_id: str, config: Any, message: str
) -> None:
    with pytest.raises(InvalidInputError, match=message):
        registry.create_sweep("proj", sweep_id, config)
    assert registry.list_projects() == []
