"""Sweeps end to end, against a real daemon: ``artisync.sweep`` and ``artisync.agent`` run
trials whose ``init`` gets the sweep's parameters, and ``Api().sweep(...)`` finds the
runs and the best one, so W&B's "best run of a sweep" FAQ example runs as written."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import artisync
from artisync.errors import InvalidInputError, NotFoundError
from daemon_harness import DaemonProcess
from postgres_server import PostgresServer
from server_process import Server

PROJECT = "sweepy"


@pytest.fixture
def daemon(home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[DaemonProcess]:
    """A daemon on a fresh home that ``init()``, ``sweep()`` and ``Api()`` find through
    ``ARTISYNC_HOME``, as a script run on the node finds it."""
    for var in ("ARTISYNC_PROJECT", "WANDB_PROJECT", "WANDB_ENTITY", "WANDB_SWEEP_ID"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("ARTISYNC_HOME", str(home))
    monkeypatch.chdir(tmp_path)  # download() writes ./artifacts/, as W&B's does
    d = DaemonProcess(home)
    d.start()
    yield d
    artisync.finish()
    d.kill()


GRID: dict[str, Any] = {
    "method": "grid",
    "name": "lr-grid",
    "metric": {"name": "val_acc", "goal": "maximize"},
    "parameters": {
        "lr": {"values": [0.1, 0.01, 0.001]},
        "epochs": {"value": 2},
        "optimizer": {"parameters": {"name": {"values": ["adam"]}}},
    },
}


def _accuracy(lr: float) -> float:
    return {0.1: 0.71, 0.01: 0.93, 0.001: 0.85}[lr]


def train(tmp: Path) -> None:
    """A trial as W&B's examples write it: init inside, config from the sweep."""
    with artisync.init(project="ignored-in-a-sweep", id="ignored", config={"lr": 1.0, "batch": 32}):
        config = artisync.run.config
        model = tmp / f"model-{artisync.run.id}.txt"
        model.write_text(f"lr={config['lr']}")
        artifact = artisync.Artifact("model", type="model")
        artifact.add_file(str(model))
        artisync.log_artifact(artifact)
        artifact.wait(timeout=60)
        artisync.run.log({"val_acc": _accuracy(config["lr"]), "epochs": config["epochs"]})


def test_a_grid_runs_each_point_once_and_the_faq_finds_the_best_runs_artifacts(
    daemon: DaemonProcess, tmp_path: Path
) -> None:
    sweep_id = artisync.sweep(GRID, project=PROJECT)
    artisync.agent(sweep_id, function=lambda: train(tmp_path), count=10)
    assert "WANDB_SWEEP_ID" not in os.environ and "WANDB_RUN_ID" not in os.environ
    assert artisync.Api().sweep(sweep_id).id == sweep_id  # found where it was created

    # W&B's Artifacts FAQ, "best run of a sweep", as written.
    api = artisync.Api()
    sweep = api.sweep(f"local/{PROJECT}/{sweep_id}")
    runs = sorted(sweep.runs, key=lambda run: run.summary.get("val_acc", 0), reverse=True)
    best_run = runs[0]
    artifacts = list(best_run.logged_artifacts())
    assert [(a.name.split(":")[0], a.type) for a in artifacts] == [("model", "model")]
    assert (Path(artifacts[0].download()) / f"model-{best_run.id}.txt").read_text() == "lr=0.01"

    assert len(sweep.runs) == 3
    assert sorted(r.config["lr"] for r in sweep.runs) == [0.001, 0.01, 0.1]
    for run in sweep.runs:
        # The sweep's values win over init's config; init's other keys stay.
        assert run.config["batch"] == 32 and run.config["epochs"] == 2
        assert run.config["optimizer"] == {"name": "adam"}
        assert run.project == PROJECT and run.id != "ignored" and run.state == "finished"
        assert run.sweep_id == sweep_id
    assert sweep.id == sweep_id and sweep.name == "lr-grid" and sweep.config == GRID
    assert sweep.state == "FINISHED" and sweep.expected_run_count == 3
    assert sweep.path == ["local", PROJECT, sweep_id]
    best = sweep.best_run()
    assert best is not None and best.config["lr"] == 0.01
    worst = sweep.best_run(order="+val_acc")
    assert worst is not None and worst.config["lr"] == 0.1
    bare = sweep.best_run(order="val_acc")  # W&B sorts a bare key descending
    assert bare is not None and bare.config["lr"] == 0.01
    by_config = sweep.best_run(order="+config.lr")
    assert by_config is not None and by_config.config["lr"] == 0.001

    # Every point has a run: another agent has nothing left to try.
    artisync.agent(f"{PROJECT}/{sweep_id}", function=lambda: train(tmp_path))
    assert len(api.sweep(f"{PROJECT}/{sweep_id}").runs) == 3


def test_random_search_stops_at_count_then_at_run_cap(daemon: DaemonProcess) -> None:
    config = {
        "method": "random",
        "metric": {"name": "loss"},
        "run_cap": 4,
        "parameters": {
            "lr": {"distribution": "log_uniform_values", "min": 1e-4, "max": 1e-1},
            "layers": {"min": 1, "max": 4},
        },
    }
    sweep_id = artisync.sweep(config, project=PROJECT)
    seen: list[dict[str, Any]] = []

    def trial() -> None:
        run = artisync.init()
        seen.append(dict(run.config))
        run.log({"loss": run.config["lr"] * run.config["layers"]})

    artisync.agent(sweep_id, function=trial, project=PROJECT, count=3, seed=5)
    assert len(seen) == 3
    for params in seen:
        assert 1e-4 <= params["lr"] <= 1e-1 and params["layers"] in (1, 2, 3, 4)
    artisync.agent(sweep_id, function=trial, project=PROJECT, count=5)
    assert len(seen) == 4  # the run cap
    sweep = artisync.Api().sweep(f"{PROJECT}/{sweep_id}")
    assert sweep.state == "FINISHED"
    best = sweep.best_run()  # minimize loss
    assert best is not None
    assert best.summary["loss"] == min(p["lr"] * p["layers"] for p in seen)


def test_a_failing_trial_is_crashed_and_the_sweep_goes_on(
    daemon: DaemonProcess, capsys: pytest.CaptureFixture[str]
) -> None:
    sweep_id = artisync.sweep(
        {"method": "grid", "parameters": {"i": {"values": [0, 1, 2]}}}, project=PROJECT
    )

    def trial() -> None:
        run = artisync.init()
        if run.config["i"] == 1:
            raise RuntimeError("trial one breaks")
        run.log({"ok": 1})

    artisync.agent(sweep_id, function=trial)
    assert "trial one breaks" in capsys.readouterr().err
    runs = artisync.Api().sweep(f"{PROJECT}/{sweep_id}").runs
    assert {r.config["i"]: r.state for r in runs} == {0: "finished", 1: "crashed", 2: "finished"}


def test_the_agent_stops_after_max_consecutive_failed_runs(daemon: DaemonProcess) -> None:
    sweep_id = artisync.sweep(
        {"method": "grid", "parameters": {"i": {"values": list(range(10))}}}, project=PROJECT
    )
    calls: list[int] = []

    def trial() -> None:
        calls.append(artisync.init().config["i"])
        raise ValueError("always")

    artisync.agent(sweep_id, function=trial, max_consecutive_failed_runs=2)
    assert calls == [0, 1]


def test_a_process_the_trial_starts_joins_the_sweep_as_with_wandb(daemon: DaemonProcess) -> None:
    sweep_id = artisync.sweep(
        {"method": "grid", "parameters": {"lr": {"values": [0.5]}}}, project=PROJECT
    )
    child = (
        "import artisync\n"
        "with artisync.init() as run:\n"
        "    run.log({'seen_lr': run.config['lr']})\n"
    )

    def trial() -> None:
        subprocess.run([sys.executable, "-c", child], check=True, timeout=120)

    artisync.agent(sweep_id, function=trial)
    (run,) = artisync.Api().sweep(f"{PROJECT}/{sweep_id}").runs
    assert run.summary["seen_lr"] == 0.5


def test_prior_runs_join_the_sweep_and_a_grid_skips_their_points(daemon: DaemonProcess) -> None:
    with artisync.init(project=PROJECT, config={"lr": 0.1}) as earlier:
        earlier.log({"val_acc": 0.5})
    sweep_id = artisync.sweep(
        {"method": "grid", "parameters": {"lr": {"values": [0.1, 0.2]}}},
        project=PROJECT,
        prior_runs=[earlier.id],
    )
    tried: list[float] = []
    artisync.agent(sweep_id, function=lambda: tried.append(artisync.init().config["lr"]))
    assert tried == [0.2]
    sweep = artisync.Api().sweep(f"{PROJECT}/{sweep_id}")
    assert [r.id for r in sweep.runs][:1] == [earlier.id] and len(sweep.runs) == 2
    with pytest.raises(NotFoundError, match="nosuchrun"):
        artisync.sweep(GRID, project=PROJECT, prior_runs=["nosuchrun"])


def test_bayes_runs_as_random_search_with_a_warning(daemon: DaemonProcess) -> None:
    config = {
        "method": "bayes",
        "metric": {"name": "loss", "goal": "minimize"},
        "parameters": {"x": {"min": 0.0, "max": 1.0}},
    }
    with pytest.warns(UserWarning, match="random search"):
        sweep_id = artisync.sweep(config, project=PROJECT)
    with pytest.warns(UserWarning, match="random search"):
        artisync.agent(sweep_id, function=lambda: artisync.init(), count=2)
    sweep = artisync.Api().sweep(f"{PROJECT}/{sweep_id}")
    assert len(sweep.runs) == 2 and sweep.config["method"] == "bayes"


def test_bad_calls_get_clear_errors(daemon: DaemonProcess) -> None:
    with pytest.raises(NotFoundError, match="no sweep 'nosuch1'"):
        artisync.agent("nosuch1", function=lambda: None, project=PROJECT)
    with pytest.raises(NotFoundError, match="no sweep 'nosuch1'"):
        artisync.Api().sweep(f"{PROJECT}/nosuch1")
    sweep_id = artisync.sweep(lambda: GRID, project=PROJECT)  # a config function, as W&B takes
    with pytest.raises(InvalidInputError, match="pass function="):
        artisync.agent(sweep_id, project=PROJECT)
    with pytest.raises(InvalidInputError, match="count"):
        artisync.agent(sweep_id, function=lambda: None, project=PROJECT, count=-1)
    with pytest.raises(InvalidInputError, match="Invalid sweep path"):
        artisync.agent("a/b/c/d", function=lambda: None)
    with pytest.raises(InvalidInputError, match="'paramters'"):
        artisync.sweep({"method": "grid", "paramters": {}}, project=PROJECT)
    with pytest.raises(InvalidInputError, match="Invalid order"):
        artisync.Api().sweep(f"{PROJECT}/{sweep_id}").best_run(order="-")


def test_agents_on_two_nodes_share_one_sweep_on_a_registry_server(
    postgres_server: PostgresServer,
    start_server: Callable[..., Server],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for var in ("ARTISYNC_HOME", "ARTISYNC_PROJECT", "WANDB_PROJECT", "WANDB_ENTITY"):
        monkeypatch.delenv(var, raising=False)
    server = start_server(postgres_server.dsn(postgres_server.create_database()))
    homes = [tmp_path / "node-a", tmp_path / "node-b"]
    for home in homes:
        home.mkdir()
        (home / "config.toml").write_text(f'registry = "{server.url}"\n')
    sweep_id = artisync.sweep(GRID, project=PROJECT, home=homes[0])

    def trial() -> None:
        with artisync.init() as run:  # the node's home, handed on by the agent
            run.log({"val_acc": _accuracy(run.config["lr"])})

    # Each node's agent takes the points the other has not run yet.
    artisync.agent(f"{PROJECT}/{sweep_id}", function=trial, count=2, home=homes[0])
    artisync.agent(f"{PROJECT}/{sweep_id}", function=trial, home=homes[1])
    assert not (homes[0] / "registry.db").exists() and not (homes[1] / "registry.db").exists()
    sweep = artisync.Api(home=homes[1]).sweep(f"{PROJECT}/{sweep_id}")
    assert sorted(r.config["lr"] for r in sweep.runs) == [0.001, 0.01, 0.1]
    best = sweep.best_run()
    assert best is not None and best.summary["val_acc"] == 0.93
    assert sweep.state == "FINISHED" and sweep.config == GRID


def test_ctrl_c_ends_the_trial_as_crashed_and_the_agent_returns(daemon: DaemonProcess) -> None:
    sweep_id = artisync.sweep(
        {"method": "grid", "parameters": {"i": {"values": [0, 1, 2]}}}, project=PROJECT
    )

    def trial() -> None:
        run = artisync.init()
        if run.config["i"] == 0:
            sys.exit(0)  # a script that exits cleanly has succeeded
        raise KeyboardInterrupt

    artisync.agent(sweep_id, function=trial)
    runs = artisync.Api().sweep(f"{PROJECT}/{sweep_id}").runs
    assert {r.config["i"]: r.state for r in runs} == {0: "finished", 1: "crashed"}
