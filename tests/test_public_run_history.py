"""``Api().run(...)`` as W&B's public Run: its tags, notes and sweep, and its history
through ``history()`` and ``scan_history()`` with W&B's arguments."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

import artisync
from artisync.config import Config
from artisync.errors import InvalidInputError
from artisync.registry import SqliteRegistry
from artisync.sdk import PublicRun

# Ten steps: loss at every step, acc at every third, lr only at step 0.
ROWS: list[dict[str, Any]] = [
    {
        "_step": i,
        "loss": 1.0 / (i + 1),
        **({"acc": i / 10} if i % 3 == 0 else {}),
        **({"lr": 0.1} if i == 0 else {}),
    }
    for i in range(10)
]


@pytest.fixture
def run(home: Path) -> PublicRun[Any]:
    """Run ``proj/r1`` with tags, notes, a sweep and :data:`ROWS` as its history."""
    with SqliteRegistry(Config.load(home).registry) as registry:
        registry.create_sweep("proj", "sw1", {"method": "grid"})
        registry.ensure_run(
            "proj", None, "r1", tags=["baseline", "v1.0"], notes="# notes", sweep="sw1"
        )
        registry.append_history("proj", "r1", ROWS[5:])
        registry.append_history("proj", "r1", ROWS[:5])
        registry.ensure_run("proj", None, "quiet")
    return artisync.Api(home=home).run("proj/r1")


def test_tags_notes_and_sweep_id(run: PublicRun[Any], home: Path) -> None:
    assert (run.tags, run.notes, run.sweep_id) == (["baseline", "v1.0"], "# notes", "sw1")
    quiet = artisync.Api(home=home).run("proj/quiet")
    assert (quiet.tags, quiet.notes, quiet.sweep_id) == ([], None, None)
    assert quiet.history(pandas=False) == [] and list(quiet.scan_history()) == []


def test_history_returns_every_row_by_step_up_to_samples(run: PublicRun[Any]) -> None:
    assert run.history(pandas=False) == ROWS
    # Fewer samples: spread evenly, the first and last kept.
    assert [r["_step"] for r in run.history(samples=4, pandas=False)] == [0, 3, 6, 9]
    assert [r["_step"] for r in run.history(samples=1, pandas=False)] == [0]


def test_history_with_keys_keeps_rows_holding_any_of_them(run: PublicRun[Any]) -> None:
    assert run.history(keys=["acc"], pandas=False) == [
        {"_step": 0, "acc": 0.0},
        {"_step": 3, "acc": 0.3},
        {"_step": 6, "acc": 0.6},
        {"_step": 9, "acc": 0.9},
    ]
    assert run.history(keys=["lr", "nothing"], pandas=False) == [{"_step": 0, "lr": 0.1}]
    by_loss = run.history(keys=["acc"], x_axis="loss", samples=2, pandas=False)
    assert by_loss == [{"loss": 1.0, "acc": 0.0}, {"loss": 0.1, "acc": 0.9}]


def test_history_asked_as_a_dataframe_without_pandas_is_a_list_and_a_warning(
    run: PublicRun[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "pandas", None)  # what an install without pandas has
    with pytest.warns(UserWarning, match="pandas is not installed"):
        rows = run.history()
    assert rows == ROWS


def test_history_of_the_system_stream_is_empty(run: PublicRun[Any]) -> None:
    assert run.history(stream="system", pandas=False) == []


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"keys": "loss"}, "keys must be a list of strings"),
        ({"keys": [1]}, "keys must be a list of strings"),
        ({"samples": 0}, "samples=...\\) must be a whole number >= 1"),
        ({"stream": "gpu"}, "stream='gpu'"),
        ({"stream": "system", "keys": ["loss"]}, "only be given with stream='default'"),
    ],
)
def test_bad_history_arguments_are_refused(
    run: PublicRun[Any], kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidInputError, match=message):
        run.history(pandas=False, **kwargs)


def test_scan_history_yields_every_row_in_the_step_range(run: PublicRun[Any]) -> None:
    assert list(run.scan_history()) == ROWS
    assert [r["_step"] for r in run.scan_history(min_step=3, max_step=6)] == [3, 4, 5]
    assert [r["_step"] for r in run.scan_history(min_step=8, page_size=2)] == [8, 9]
    assert list(run.scan_history(max_step=0)) == []


def test_scan_history_with_keys_yields_rows_holding_all_of_them(run: PublicRun[Any]) -> None:
    assert list(run.scan_history(keys=["loss", "acc"], max_step=4)) == [
        {"_step": 0, "loss": 1.0, "acc": 0.0},
        {"_step": 3, "loss": 0.25, "acc": 0.3},
    ]
    assert [r["_step"] for r in run.scan_history(keys=["lr", "acc"])] == [0]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"keys": "loss"}, "keys must be a list of strings"),
        ({"page_size": 0}, "page_size=...\\) must be a whole number >= 1"),
        ({"min_step": "3"}, "min_step=...\\) must be a whole number"),
        ({"max_step": 2.5}, "max_step=...\\) must be a whole number"),
    ],
)
def test_bad_scan_arguments_are_refused_at_the_call(
    run: PublicRun[Any], kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        run.scan_history(**kwargs)
