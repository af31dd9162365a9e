"""The run around the artifacts, as W&B scripts use it: ``init``'s whole signature and
the ``WANDB_*`` variables, ``config``, ``log`` and its history, ``summary``, tags and
notes, modes, ``reinit``, ``resume="auto"``, and ``finish()`` waiting for what the run
logged. Against a real daemon and its registry."""

from __future__ import annotations

import argparse
import os
import warnings
from pathlib import Path

import pytest

import artisync
from artisync.errors import ArtisyncError, InvalidInputError, NoDaemonWarning, RejectedError
from artisync.sdk.run_config import ConfigError
from daemon_harness import DaemonProcess


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    monkeypatch.chdir(tmp_path)
    return monkeypatch


def test_init_takes_every_wandb_argument(home: Path, clean_env: pytest.MonkeyPatch) -> None:
    run = artisync.init(
        entity=None,
        project="p",
        dir=str(home.parent / "runs"),
        id="all-args",
        name="every argument",
        notes="a note",
        tags=["baseline", "v2"],
        config={"lr": 0.1, "skip": 1},
        config_exclude_keys=["skip"],
        allow_val_change=False,
        group="g",
        job_type="train",
        mode="online",
        force=False,
        reinit="default",
        resume="allow",
        save_code=False,
        tensorboard=False,
        sync_tensorboard=False,
        monitor_gym=False,
        settings=artisync.Settings(start_method="thread", console="off"),
        magic=False,
        home=home,
    )
    assert isinstance(run, artisync.Run)
    assert (run.project, run.id, run.name, run.group, run.job_type) == (
        "p",
        "all-args",
        "every argument",
        "g",
        "train",
    )
    assert run.tags == ("baseline", "v2") and run.notes == "a note"
    assert dict(run.config) == {"lr": 0.1}
    assert Path(run.dir).is_dir() and str(home.parent / "runs" / "wandb") in run.dir
    run.finish()
    stored = artisync.Api(home=home).run("p/all-args")
    assert stored.tags == ["baseline", "v2"] and stored.notes == "a note"
    with pytest.raises(InvalidInputError, match=r"unexpected keyword argument\(s\) colour"):
        artisync.init(project="p", colour="red", home=home)  # type: ignore[call-arg]
    with pytest.raises(InvalidInputError, match="resume_from and fork_from"):
        artisync.init(project="p", fork_from="abc?_step=3", home=home)
    with pytest.raises(InvalidInputError, match="Invalid mode 'cloud'"):
        artisync.init(project="p", mode="cloud", home=home)


def test_wandb_variables_act_as_in_wandb(home: Path, clean_env: pytest.MonkeyPatch) -> None:
    env = {
        "WANDB_PROJECT": "from-env",
        "WANDB_RUN_GROUP": "grp",
        "WANDB_JOB_TYPE": "eval",
        "WANDB_RUN_ID": "env-run",
        "WANDB_NAME": "named",
        "WANDB_NOTES": "noted",
        "WANDB_TAGS": "a, b",
    }
    for key, value in env.items():
        clean_env.setenv(key, value)
    with artisync.init(home=home) as run:
        assert (run.project, run.group, run.job_type, run.id, run.name) == (
            "from-env",
            "grp",
            "eval",
            "env-run",
            "named",
        )
        assert run.tags == ("a", "b") and run.notes == "noted"
    # The ARTISYNC_ twin wins over W&B's, an argument over both.
    clean_env.setenv("ARTISYNC_PROJECT", "twin")
    clean_env.setenv("WANDB_RUN_ID", "second")
    with artisync.init(home=home) as run:
        assert run.project == "twin"
    with artisync.init(project="arg", home=home) as run:
        assert run.project == "arg"
    clean_env.setenv("WANDB_RESUME", "never")
    with pytest.raises(artisync.sdk.ResumeError, match="exists already"):
        artisync.init(project="arg", home=home)
    clean_env.setenv("WANDB_RESUME", "sometimes")
    with pytest.raises(InvalidInputError, match="Invalid resume 'sometimes'"):
        artisync.init(home=home)


def test_disabled_mode_records_nothing(home: Path, clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("WANDB_MODE", "disabled")
    run = artisync.init(project="p", config={"lr": 1}, home=home)
    assert run.disabled and artisync.run is run
    artisync.log({"loss": 1.0})
    assert artisync.config.lr == 1 and artisync.summary["loss"] == 1.0
    artifact = artisync.Artifact("model", "model")
    logged = run.log_artifact(artifact)
    logged.wait()  # anything on the stand-in succeeds
    assert run.use_artifact("model:latest") is None
    run.link_artifact(artifact, "model-registry/x")
    artisync.finish()
    assert artisync.run is None
    assert not (home / "registry.db").exists() and not (home / "spool" / "new").exists()
    # WANDB_DISABLED=true, as older W&B scripts and CI set it, disables too.
    clean_env.delenv("WANDB_MODE")
    clean_env.setenv("WANDB_DISABLED", "true")
    assert artisync.init(project="p", home=home).disabled
    artisync.finish()


def test_config_has_wandb_semantics(home: Path, clean_env: pytest.MonkeyPatch) -> None:
    Path("config-defaults.yaml").write_text("epochs:\n  desc: how many\n  value: 3\nbs: 8\n")
    Path("extra.yaml").write_text("dropout: 0.5\n")
    namespace = argparse.Namespace(lr=0.01, momentum=0.9)
    with artisync.init(project="p", config=namespace, home=home) as run:
        config = artisync.config
        assert config is run.config
        assert (config.epochs, config["bs"], config.lr) == (3, 8, 0.01)
        config.update({"layers": [64, 32]})
        config.hidden = 128
        config["--act"] = "relu"  # leading dashes are stripped, as W&B does
        assert config.act == "relu" and "hidden" in config
        config.update({"lr": 0.01})  # the same value again is fine
        with pytest.raises(ConfigError, match=r"from 0\.01 to 0\.1"):
            config.update({"lr": 0.1})
        config.update({"lr": 0.1}, allow_val_change=True)
        config.setdefaults({"lr": 5, "seed": 7})
        assert (config.lr, config.seed) == (0.1, 7)
        assert getattr(config, "missing", None) is None
        with pytest.raises(KeyError):
            config["missing"]
        with pytest.raises(InvalidInputError, match=r"config\['bad'\]"):
            config.update({"bad": object()})
        run_id = run.id
    with artisync.init(project="p", config="extra.yaml", home=home) as run:
        assert run.config.dropout == 0.5 and run.config.epochs == 3
    with pytest.raises(InvalidInputError, match=r"config file 'nope\.yaml' does not exist"):
        artisync.init(project="p", config="nope.yaml", home=home)
    stored = artisync.Api(home=home).run(f"p/{run_id}")
    assert stored.config == {
        "epochs": 3,
        "bs": 8,
        "lr": 0.1,
        "momentum": 0.9,
        "layers": [64, 32],
        "hidden": 128,
        "act": "relu",
        "seed": 7,
    }


def test_config_keys_a_sweep_locked_win(home: Path) -> None:
    with artisync.init(project="p", home=home) as run:
        run.config.update_locked({"lr": 0.5})
        with pytest.warns(UserWarning, match="locked by 'sweep'"):
            run.config.update({"lr": 0.1, "epochs": 2})
        assert (run.config.lr, run.config.epochs) == (0.5, 2)


def test_log_keeps_history_with_wandb_step_rules(home: Path) -> None:
    with artisync.init(project="p", id="hist", home=home) as run:
        for epoch in range(3):
            artisync.log({"loss": 1.0 / (epoch + 1), "epoch": epoch})
        run.log({"acc": 0.5}, commit=False)
        run.log({"loss": 0.1})  # same row as acc
        run.log({"val": 1}, step=10)
        run.log({"val2": 2}, step=10)  # same step: same row
        with pytest.warns(UserWarning, match="less than the current step"):
            run.log({"old": 1}, step=4)
        run.log({"last": True}, step=12, commit=True)
        assert run.step == 13
        with pytest.raises(InvalidInputError, match=r"run\.log takes a dict"):
            run.log([1, 2])  # type: ignore[arg-type]
        with pytest.raises(InvalidInputError, match="Invalid step -1"):
            run.log({"x": 1}, step=-1)
    stored = artisync.Api(home=home).run("p/hist")
    rows = stored.history(pandas=False)
    assert [r["_step"] for r in rows] == [0, 1, 2, 3, 10, 12]
    assert rows[3]["acc"] == 0.5 and rows[3]["loss"] == 0.1
    assert rows[4]["val"] == 1 and rows[4]["val2"] == 2 and "old" not in rows[4]
    assert all("_runtime" in r and "_timestamp" in r for r in rows)
    assert stored.summary["loss"] == 0.1 and stored.summary["last"] is True
    assert stored.summary["_step"] == 12
    assert [r["loss"] for r in stored.history(keys=["loss"], pandas=False)] == [
        1.0,
        0.5,
        pytest.approx(1 / 3),
        0.1,
    ]


def test_resumed_run_continues_its_steps_and_tags(home: Path) -> None:
    with artisync.init(project="p", id="again", tags=["a"], home=home) as run:
        run.log({"x": 1})
        run.log({"x": 2})
    with artisync.init(project="p", id="again", resume="must", home=home) as run:
        assert run.tags == ("a",) and run.step == 2
        run.tags += ("b",)
        run.notes = "resumed"
        run.log({"x": 3})
    stored = artisync.Api(home=home).run("p/again")
    assert [r["x"] for r in stored.history(pandas=False)] == [1, 2, 3]
    assert stored.tags == ["a", "b"] and stored.notes == "resumed"


def test_summary_item_attribute_and_nested(home: Path) -> None:
    with artisync.init(project="p", id="summ", home=home) as run:
        run.summary["best"] = 0.9
        run.summary.epoch = 3
        run.summary.update({"eval": {"acc": 0.5}})
        run.summary["eval"]["acc"] = 0.75
        assert artisync.summary.best == 0.9 and run.summary.eval.acc == 0.75
        del run.summary["epoch"]
        assert "epoch" not in run.summary
        with pytest.raises(AttributeError):
            run.summary.nothing  # noqa: B018
    assert artisync.Api(home=home).run("p/summ").summary == {"best": 0.9, "eval": {"acc": 0.75}}


def test_module_level_calls_before_init_say_to_call_init() -> None:
    assert artisync.run is None
    with pytest.raises(ArtisyncError, match=r"call artisync.init\(\) before artisync.log"):
        artisync.log({"x": 1})
    with pytest.raises(ArtisyncError, match=r"before artisync.config.lr"):
        artisync.config.lr  # noqa: B018
    with pytest.raises(ArtisyncError, match=r"before artisync.summary\['x'\]"):
        artisync.summary["x"] = 1
    assert artisync.login() is True


def test_resume_auto_continues_a_run_that_did_not_finish(home: Path, tmp_path: Path) -> None:
    first = artisync.init(project="p", resume="auto", dir=tmp_path, home=home)
    first._abandon()  # the script died
    second = artisync.init(project="p", resume="auto", dir=tmp_path, home=home)
    assert second.id == first.id and second.resumed
    second.finish()
    third = artisync.init(project="p", resume="auto", dir=tmp_path, home=home)
    assert third.id != first.id and not third.resumed
    third.finish()


def test_finish_waits_for_what_the_run_logged(daemon: DaemonProcess, tmp_path: Path) -> None:
    with artisync.init(project="p", home=daemon.home) as run:
        artifacts = []
        for i in range(5):
            artifact = artisync.Artifact("data", "dataset")
            with artifact.new_file("x.txt") as f:
                f.write(f"content {i}")
            artifacts.append(run.log_artifact(artifact))
    assert [a.state for a in artifacts] == ["COMMITTED"] * 5
    assert [a.version for a in artifacts] == [f"v{i}" for i in range(5)]


def test_finish_raises_a_rejection(daemon: DaemonProcess, tmp_path: Path) -> None:
    folder = tmp_path / "three"
    folder.mkdir()
    for name in "abc":
        (folder / name).write_text(name)
    run = artisync.init(project="p", home=daemon.home)
    artifact = artisync.Artifact("refs", "dataset")
    artifact.add_reference(f"file://{folder}", max_objects=2)  # the daemon refuses it
    run.log_artifact(artifact)
    with pytest.raises(RejectedError, match="more than max_objects=2"):
        run.finish()
    assert run.finished
    assert artisync.Api(home=daemon.home).run(f"p/{run.id}").state == "finished"


def test_use_artifact_waits_for_a_version_in_flight(daemon: DaemonProcess) -> None:
    with artisync.init(project="p", home=daemon.home) as run:
        artifact = artisync.Artifact("fresh", "dataset")
        with artifact.new_file("a.txt") as f:
            f.write("a")
        run.log_artifact(artifact)
        used = run.use_artifact("fresh:latest")
        assert used.version == "v0" and artifact.state == "COMMITTED"


def test_finish_without_a_daemon_does_not_wait(home: Path) -> None:
    run = artisync.init(project="p", home=home)
    artifact = artisync.Artifact("queued", "dataset")
    with artifact.new_file("a.txt") as f:
        f.write("a")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run.log_artifact(artifact)
    with pytest.warns(NoDaemonWarning, match="without waiting for 1 logged artifact"):
        run.finish()
    assert os.listdir(home / "spool" / "new")


def test_a_table_logged_in_a_row_becomes_a_run_table_artifact(daemon: DaemonProcess) -> None:
    with artisync.init(project="p", id="evals", home=daemon.home) as run:
        table = artisync.Table(columns=["x", "pred"], data=[[1, 0.5], [2, 0.25]])
        run.log({"predictions": table, "acc": 0.5})
    api = artisync.Api(home=daemon.home)
    [row] = api.run("p/evals").history(pandas=False)
    assert row["acc"] == 0.5
    assert row["predictions"] == {
        "_type": "table-file",
        "artifact": "run-evals-predictions",
        "path": "predictions.table.json",
    }
    stored = api.artifact("p/run-evals-predictions:latest")
    assert stored.type == "run_table" and stored.metadata == {"_step": 0}
    got = stored.get("predictions")
    assert isinstance(got, artisync.Table) and got.data == [[1, 0.5], [2, 0.25]]


def test_many_rows_logged_at_once_all_reach_the_registry(home: Path) -> None:
    # More rows than the registry takes in one call wait in the buffer at once.
    with artisync.init(project="p", id="many", home=home) as run:
        for step in range(2_500):
            run.log({"loss": 1.0 / (step + 1)})
    rows = artisync.Api(home=home).run("p/many").history(samples=3_000, pandas=False)
    assert [r["_step"] for r in rows] == list(range(2_500))
