"""Runs in the registry: summary, state, lookups, and many processes writing them at once
(the daemon at every commit, each training script at ``init`` and ``finish``)."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path

import pytest

import artisync
from artisync.errors import InvalidInputError, NotFoundError, RegistryError
from artisync.registry import RUN_STATES, SqliteRegistry


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[SqliteRegistry]:
    with SqliteRegistry(tmp_path / "registry.db") as reg:
        yield reg


def test_new_run_is_running_with_an_empty_summary(registry: SqliteRegistry) -> None:
    run = registry.ensure_run("proj", None, "r1", name="exp")
    assert (run.state, run.summary) == ("running", {})
    assert run.updated_at == run.created_at
    assert RUN_STATES == ("running", "finished", "crashed")


def test_find_run_returns_the_run_or_none(registry: SqliteRegistry) -> None:
    assert registry.find_run("proj", "r1") is None
    created = registry.ensure_run("proj", "team", "r1", job_type="train")
    assert registry.find_run("proj", "r1", entity="team") == created
    assert registry.find_run("proj", "r1") is None
    assert registry.find_run("other", "r1", entity="team") is None


def test_set_run_summary_replaces_the_whole_summary(registry: SqliteRegistry) -> None:
    registry.ensure_run("proj", None, "r1")
    registry.set_run_summary("proj", "r1", {"loss": 1.0, "acc": 0.5})
    run = registry.set_run_summary("proj", "r1", {"loss": 0.5, "nested": {"a": [1, 2]}})
    assert run.summary == {"loss": 0.5, "nested": {"a": [1, 2]}}
    assert registry.get_run("proj", "r1").summary == run.summary


def test_set_run_state_moves_through_the_known_states(registry: SqliteRegistry) -> None:
    created = registry.ensure_run("proj", None, "r1")
    finished = registry.set_run_state("proj", "r1", "finished")
    assert finished.state == "finished" and finished.updated_at >= created.updated_at
    assert registry.set_run_state("proj", "r1", "crashed").state == "crashed"
    assert registry.set_run_state("proj", "r1", "running").state == "running"


def test_unknown_state_is_refused_listing_the_known_ones(registry: SqliteRegistry) -> None:
    registry.ensure_run("proj", None, "r1")
    with pytest.raises(InvalidInputError, match="'running', 'finished', 'crashed'"):
        registry.set_run_state("proj", "r1", "exploded")
    assert registry.get_run("proj", "r1").state == "running"


def test_summary_must_be_json(registry: SqliteRegistry) -> None:
    registry.ensure_run("proj", None, "r1")
    with pytest.raises(InvalidInputError, match="summary of run 'r1'"):
        registry.set_run_summary("proj", "r1", {"loss": float("inf")})
    with pytest.raises(InvalidInputError, match="must be a mapping"):
        registry.set_run_summary("proj", "r1", [1, 2])  # type: ignore[arg-type]


def test_summary_and_state_of_an_unknown_run_are_not_found(registry: SqliteRegistry) -> None:
    registry.ensure_run("proj", None, "r1")
    calls: list[Callable[[], object]] = [
        lambda: registry.set_run_summary("proj", "ghost", {}),
        lambda: registry.set_run_state("proj", "ghost", "finished"),
        lambda: registry.set_run_state("no-project", "r1", "finished"),
    ]
    for call in calls:
        with pytest.raises(NotFoundError, match=r"artisync\.init"):
            call()


def test_ensure_run_again_keeps_state_and_summary(registry: SqliteRegistry) -> None:
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


# -- many processes ------------------------------------------------------------------------


def test_opening_a_new_registry_waits_for_another_process_creating_it(tmp_path: Path) -> None:
    # Another process is creating the file (it holds the write lock of a file not yet in
    # WAL mode). Switching to WAL then fails at once in SQLite, busy timeout or not;
    # the registry must wait for the lock like any other write.
    path = tmp_path / "registry.db"
    with closing(sqlite3.connect(path, isolation_level=None)) as creator:
        creator.execute("CREATE TABLE placeholder (x)")
        creator.execute("BEGIN IMMEDIATE")
        opened: list[SqliteRegistry] = []
        failed: list[BaseException] = []

        def open_registry() -> None:
            try:
                opened.append(SqliteRegistry(path, timeout=30))
            except BaseException as exc:
                failed.append(exc)

        opener = threading.Thread(target=open_registry)
        opener.start()
        opener.join(timeout=0.5)
        assert failed == [] and opener.is_alive(), "the opener gave up instead of waiting"
        creator.execute("ROLLBACK")
    opener.join(timeout=30)
    assert failed == [] and len(opened) == 1
    with opened[0] as reg:
        assert reg.ensure_run("p", None, "r").state == "running"


def test_opening_gives_up_after_the_timeout_with_a_registry_error(tmp_path: Path) -> None:
    path = tmp_path / "registry.db"
    with closing(sqlite3.connect(path, isolation_level=None)) as creator:
        creator.execute("CREATE TABLE placeholder (x)")
        creator.execute("BEGIN IMMEDIATE")
        started = time.monotonic()
        with pytest.raises(RegistryError, match="locked"):
            SqliteRegistry(path, timeout=0.3)
        assert time.monotonic() - started >= 0.3
        creator.execute("ROLLBACK")


_WRITER = """
import os, sys, time, uuid
from pathlib import Path
from artisync.registry import SqliteRegistry

work, n, rounds = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
for k in range(rounds):
    (work / f"ready-{k}-{n}").touch()
    while not (work / f"go-{k}").exists():
        time.sleep(0.0005)
    # A fresh file each round: the processes race to create it and switch it to WAL.
    with SqliteRegistry(work / f"registry-{k}.db") as reg:
        run = f"run-{n}"
        for i in range(4):
            reg.ensure_run("p", None, run, config={"i": i})
            reg.set_run_summary("p", run, {"step": i})
            reg.commit_version(
                submission_id=uuid.uuid4().hex, project="p", entity=None, name="m",
                type="model", digest=uuid.uuid4().hex, manifest_key="k", size=1,
                file_count=1, description=None, metadata={}, aliases=["best"], tags=[],
                run_id=run, ttl_seconds=None,
            )
        reg.set_run_state("p", run, "finished")
"""


def _wait_for(condition: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.002)


def test_processes_starting_together_on_a_new_registry_all_write(tmp_path: Path) -> None:
    writers, rounds = 6, 10
    env = {**os.environ, "PYTHONPATH": str(Path(artisync.__file__).parent.parent)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _WRITER, str(tmp_path), str(n), str(rounds)],
            env=env,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(writers)
    ]
    try:
        for k in range(rounds):
            ready = [tmp_path / f"ready-{k}-{n}" for n in range(writers)]

            def all_ready(ready: list[Path] = ready) -> bool:
                return all(
                    path.exists() or proc.poll() is not None
                    for path, proc in zip(ready, procs, strict=True)
                )

            _wait_for(all_ready, f"the writers to be ready for round {k}")
            (tmp_path / f"go-{k}").touch()
        errors = [proc.communicate(timeout=120)[1] for proc in procs]
    finally:
        for proc in procs:
            proc.kill()
    assert [proc.returncode for proc in procs] == [0] * writers, "\n".join(errors)
    for k in range(rounds):
        with SqliteRegistry(tmp_path / f"registry-{k}.db", read_only=True) as reg:
            runs = reg.list_runs("p")
            assert sorted(r.id for r in runs) == sorted(f"run-{n}" for n in range(writers))
            assert {(r.state, r.summary["step"]) for r in runs} == {("finished", 3)}
            versions = reg.list_versions("p", "m")
            assert [v.index for v in versions] == list(range(4 * writers))
            assert reg.get_version("p", "m", "best").index == 4 * writers - 1
