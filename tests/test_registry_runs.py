"""Runs in the registry, on every backend: summary, state and lookups. Many processes
writing them at once (the daemon at every commit, each training script at ``init`` and
``finish``) is in ``test_registry_sqlite.py``."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from artisync.errors import InvalidInputError, NotFoundError
from artisync.registry import RUN_STATES, Registry


def test_new_run_is_running_with_an_empty_summary(registry: Registry) -> None:
    run = registry.ensure_run("proj", None, "r1", name="exp")
    assert (run.state, run.summary) == ("running", {})
    assert run.updated_at == run.created_at
    assert RUN_STATES == ("running", "finished", "crashed")


def test_find_run_returns_the_run_or_none(registry: Registry) -> None:
    assert registry.find_run("proj", "r1") is None
    created = registry.ensure_run("proj", "team", "r1", job_type="train")
    assert registry.find_run("proj", "r1", entity="team") == created
    assert registry.find_run("proj", "r1") is None
    assert registry.find_run("other", "r1", entity="team") is None


def test_set_run_summary_replaces_the_whole_summary(registry: Registry) -> None:
    registry.ensure_run("proj", None, "r1")
    registry.set_run_summary("proj", "r1", {"loss": 1.0, "acc": 0.5})
    run = registry.set_run_summary("proj", "r1", {"loss": 0.5, "nested": {"a": [1, 2]}})
    assert run.summary == {"loss": 0.5, "nested": {"a": [1, 2]}}
    assert registry.get_run("proj", "r1").summary == run.summary


def test_set_run_state_moves_through_the_known_states(registry: Registry) -> None:
    created = registry.ensure_run("proj", None, "r1")
    finished = registry.set_run_state("proj", "r1", "finished")
    assert finished.state == "finished" and finished.updated_at >= created.updated_at
    assert registry.set_run_state("proj", "r1", "crashed").state == "crashed"
    assert registry.set_run_state("proj", "r1", "running").state == "running"


def test_unknown_state_is_refused_listing_the_known_ones(registry: Registry) -> None:
    registry.ensure_run("proj", None, "r1")
    with pytest.raises(InvalidInputError, match="'running', 'finished', 'crashed'"):
        registry.set_run_state("proj", "r1", "exploded")
    assert registry.get_run("proj", "r1").state == "running"


def test_summary_must_be_json(registry: Registry) -> None:
    registry.ensure_run("proj", None, "r1")
    with pytest.raises(InvalidInputError, match="summary of run 'r1'"):
        registry.set_run_summary("proj", "r1", {"loss": float("inf")})
    with pytest.raises(InvalidInputError, match="must be a mapping"):
        registry.set_run_summary("proj", "r1", [1, 2])  # type: ignore[arg-type]


def test_summary_and_state_of_an_unknown_run_are_not_found(registry: Registry) -> None:
    registry.ensure_run("proj", None, "r1")
    calls: list[Callable[[], object]] = [
        lambda: registry.set_run_summary("proj", "ghost", {}),
        lambda: registry.set_run_state("proj", "ghost", "finished"),
        lambda: registry.set_run_state("no-project", "r1", "finished"),
    ]
    for call in calls:
        with pytest.raises(NotFoundError, match=r"artisync\.init"):
            call()


def test_ensure_run_again_keeps_state_and_summary(registry: Registry) -> None:
    registry.ensure_run("proj", None, "r1", config={"a": 1})
    registry.set_run_summary("proj", "r1", {"loss": 0.1})
    registry.set_run_state("proj", "r1", "finished")
    # The daemon calls ensure_run when it commits a version the run logged.
    again = registry.ensure_run("proj", None, "r1", name="late name")
    assert (again.state, again.summary, again.config, again.name) == (
        "finished",
        {"loss": 0.1},
        {"a": 1},
        "late name",
    )
