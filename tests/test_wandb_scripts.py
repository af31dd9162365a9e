"""W&B-style scripts, written the way W&B's own examples and quickstarts write them, run
with ``import artisync as wandb`` as their only artisync line (issue 18).

Each script in tests/wandb_scripts/ runs as ``python script.py`` against a real daemon,
with only the environment a cluster would give it (``WANDB_ENTITY``, ``WANDB_*`` where
the script is about them, the test's S3 server); the test then checks what the registry
holds through ``Api``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import pytest

import artisync
from artisync.errors import NotFoundError
from daemon_harness import DaemonProcess
from servers import S3
from wandb_script_runner import (
    ENTITY,
    first_error,
    printed_json,
    run_script,
    set_entity,
    started_daemon,
)

SCRIPTS = Path(__file__).parent / "wandb_scripts"

TRAIN_CONFIG = {
    "learning_rate": 0.02,
    "architecture": "CNN",
    "dataset": "MNIST",
    "epochs": 6,
    "batch_size": 64,
}


@pytest.fixture
def entity(monkeypatch: pytest.MonkeyPatch) -> str:
    return set_entity(monkeypatch)


@pytest.fixture
def daemon(entity: str) -> Iterator[DaemonProcess]:
    yield from started_daemon()


@pytest.fixture
def s3_daemon(s3: S3, entity: str) -> Iterator[DaemonProcess]:
    """A daemon that reaches the test's S3 server (it inherits ``s3``'s environment)."""
    yield from started_daemon()


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """The directory the scripts run in, as a user's checkout would be."""
    path = tmp_path / "work"
    path.mkdir()
    return path


def api(daemon: DaemonProcess) -> artisync.Api:
    return artisync.Api(home=daemon.home)


def bare(name: str) -> str:
    """An artifact's name without ``:vN`` (W&B's logged artifacts carry it)."""
    return name.split(":")[0]


def recorded_runs(reader: artisync.Api, project: str) -> list[str]:
    """The ids of a project's runs; none when the project was never made."""
    try:
        return [run.id for run in reader.runs(project)]
    except NotFoundError:
        return []


def expected_training() -> tuple[list[float], list[float]]:
    """The losses and accuracies train_with_checkpoints.py logs, epoch by epoch."""
    losses = [2.0 * math.exp(-0.02 * 20 * (epoch + 1)) for epoch in range(6)]
    return losses, [1.0 - loss / 2 for loss in losses]


def test_every_script_is_run() -> None:
    tested = Path(__file__).read_text()
    for script in sorted(SCRIPTS.glob("*.py")):
        assert f'"{script.name}"' in tested, script.name


def test_training_loop_logs_config_metrics_and_checkpoints(
    daemon: DaemonProcess, workdir: Path
) -> None:
    run_script(SCRIPTS / "train_with_checkpoints.py", daemon.home, workdir)
    reader = api(daemon)
    (run,) = reader.runs("mnist-training")
    assert run.config == TRAIN_CONFIG
    assert sorted(run.tags) == ["baseline", "cnn"]
    assert run.notes == "first try at a CNN"
    assert run.job_type == "train"
    assert run.state == "finished"
    losses, accs = expected_training()
    history = run.history(pandas=False)
    assert [row["epoch"] for row in history] == list(range(6))
    assert [row["loss"] for row in history] == losses
    assert run.summary["loss"] == losses[-1]  # the last logged values fill the summary
    assert run.summary["acc"] == accs[-1]
    assert run.summary["best_acc"] == accs[-1]

    checkpoints = reader.artifacts("model", "mnist-training/mnist-cnn")
    assert [v.version for v in checkpoints] == ["v0", "v1", "v2"]
    assert [v.metadata["epoch"] for v in checkpoints] == [1, 3, 5]
    aliases = {v.version: sorted(v.aliases) for v in checkpoints}
    # "best" is on one version at a time: the newest that was given it.
    assert aliases == {
        "v0": ["epoch-1"],
        "v1": ["epoch-3"],
        "v2": ["best", "epoch-5", "latest"],
    }
    assert [bare(a.name) for a in run.logged_artifacts()] == ["mnist-cnn"] * 3
    assert reader.artifact("mnist-training/mnist-cnn:best").version == "v2"


def test_dataset_upload_and_consumer_record_lineage(daemon: DaemonProcess, workdir: Path) -> None:
    run_script(SCRIPTS / "upload_dataset.py", daemon.home, workdir)
    run_script(SCRIPTS / "preprocess_dataset.py", daemon.home, workdir / "consumer")
    reader = api(daemon)
    raw = reader.artifact("mnist-data/mnist-raw:v0")
    assert sorted(raw.manifest.entries) == ["train.csv", "val.csv"]
    assert raw.description == "Raw MNIST dataset, split into train/val"
    assert raw.metadata == {"source": "synthetic", "sizes": {"train": 40, "val": 10}}

    processed = reader.artifact("mnist-data/mnist-preprocessed:v0")
    assert sorted(processed.manifest.entries) == ["train.csv", "val.csv"]
    assert processed.metadata == {"normalize": True}
    consumer = processed.logged_by()
    assert consumer is not None and consumer.job_type == "preprocess"
    assert [bare(a.name) for a in consumer.used_artifacts()] == ["mnist-raw"]
    assert [r.id for r in raw.used_by()] == [consumer.id]
    assert consumer.config == {"normalize": True}
    assert consumer.summary["train_rows"] == 40
    assert consumer.summary["val_rows"] == 10


def test_walking_the_public_api(daemon: DaemonProcess, workdir: Path) -> None:
    run_script(SCRIPTS / "train_with_checkpoints.py", daemon.home, workdir)
    done = run_script(SCRIPTS / "walk_public_api.py", daemon.home, workdir / "reader")
    report = printed_json(done)
    (run,) = report["runs"]
    losses, accs = expected_training()
    assert run["config"] == TRAIN_CONFIG
    assert sorted(run["tags"]) == ["baseline", "cnn"]
    assert run["summary"] == {"epoch": 5, "loss": losses[-1], "acc": accs[-1], "best_acc": accs[-1]}
    assert run["history"] == [
        {"epoch": epoch, "loss": losses[epoch], "acc": accs[epoch]} for epoch in range(6)
    ]
    assert run["steps"] == list(range(6))
    assert [(bare(a["name"]), a["version"]) for a in run["artifacts"]] == [
        ("mnist-cnn", "v0"),
        ("mnist-cnn", "v1"),
        ("mnist-cnn", "v2"),
    ]
    assert all(a["logged_by"] == run["id"] and a["used_by"] == [] for a in run["artifacts"])
    assert report["best"] == run["id"]


def test_environment_variables_configure_and_resume_the_run(
    daemon: DaemonProcess, workdir: Path
) -> None:
    env = {
        "WANDB_PROJECT": "env-project",
        "WANDB_RUN_GROUP": "ddp-group",
        "WANDB_JOB_TYPE": "train",
        "WANDB_RUN_ID": "env-run-1",
    }
    script = SCRIPTS / "run_from_environment.py"
    run_script(script, daemon.home, workdir, **env)
    reader = api(daemon)
    run = reader.run("env-project/env-run-1")
    assert (run.group, run.job_type, run.config) == ("ddp-group", "train", {"seed": 7})
    assert run.summary["epochs_done"] == 3

    run_script(script, daemon.home, workdir, **env, WANDB_RESUME="must")
    assert recorded_runs(reader, "env-project") == ["env-run-1"]
    run = reader.run("env-project/env-run-1")
    assert run.summary["epochs_done"] == 6
    assert [row["epoch"] for row in run.history(pandas=False)] == list(range(6))
    assert [a.version for a in run.logged_artifacts()] == ["v0", "v1"]

    missing = {**env, "WANDB_RUN_ID": "no-such-run", "WANDB_RESUME": "must"}
    done = run_script(script, daemon.home, workdir, check=False, **missing)
    assert done.returncode != 0
    assert "no-such-run" in first_error(done)
    assert recorded_runs(reader, "env-project") == ["env-run-1"]


def test_disabled_mode_runs_the_whole_script_and_records_nothing(
    daemon: DaemonProcess, workdir: Path
) -> None:
    done = run_script(SCRIPTS / "disabled_mode.py", daemon.home, workdir)
    assert "disabled run finished: config lr=0.1" in done.stdout
    run_script(
        SCRIPTS / "run_from_environment.py",
        daemon.home,
        workdir,
        WANDB_MODE="disabled",
        WANDB_PROJECT="env-disabled",
    )
    reader = api(daemon)
    assert recorded_runs(reader, "never-recorded") == []
    assert recorded_runs(reader, "env-disabled") == []
    assert not reader.artifact_exists("never-recorded/nothing:latest")
    assert not reader.artifact_exists("env-disabled/env-model:latest")


def test_registry_links_are_read_back_by_alias(daemon: DaemonProcess, workdir: Path) -> None:
    done = run_script(SCRIPTS / "link_to_registry.py", daemon.home, workdir)
    assert "staged" in done.stdout
    reader = api(daemon)
    source = reader.artifact("classifier/classifier-weights:v0")
    staging = reader.artifact("model-registry/Classifier:staging")
    production = reader.artifact("model-registry/Classifier:production")
    assert staging.digest == production.digest == source.digest
    assert staging.version == production.version == "v0"
    assert len(reader.artifacts("model", "model-registry/Classifier")) == 1
    assert (workdir / "artifacts").is_dir()  # the staged model was downloaded


def test_grid_sweep_runs_every_trial_and_finds_the_best(
    daemon: DaemonProcess, workdir: Path
) -> None:
    done = run_script(SCRIPTS / "sweep_grid.py", daemon.home, workdir)
    sweep_id = done.stdout.split()[-1]
    assert "with lr=0.01" in done.stdout
    sweep = api(daemon).sweep(f"{ENTITY}/sweep-demo/{sweep_id}")
    assert sweep.config["method"] == "grid"
    runs = list(sweep.runs)
    assert sorted(r.config["lr"] for r in runs) == [0.001, 0.01, 0.1]
    assert all(r.config["epochs"] == 2 for r in runs)
    assert all(len(r.history(pandas=False)) == 2 for r in runs)
    assert sweep.best_run().config["lr"] == 0.01


def test_random_sweep_draws_from_its_distributions(daemon: DaemonProcess, workdir: Path) -> None:
    done = run_script(SCRIPTS / "sweep_random.py", daemon.home, workdir)
    sweep = api(daemon).sweep(f"{ENTITY}/sweep-random/{done.stdout.split()[-1]}")
    runs = list(sweep.runs)
    assert len(runs) == 3
    for run in runs:
        assert 1e-4 <= run.config["learning_rate"] <= 1e-1
        assert 0.0 <= run.config["dropout"] <= 0.5
        assert run.config["batch_size"] in (16, 32, 64)
        assert run.config["optimizer"] == "adam"
    lowest = min(runs, key=lambda r: r.summary["loss"])
    assert sweep.best_run().id == lowest.id  # the metric's goal is "minimize"


def test_references_are_verified_and_checked_out(
    s3: S3, s3_daemon: DaemonProcess, workdir: Path
) -> None:
    bucket = s3.bucket(versioned=True)
    images = {"datasets/mnist/cat.png": b"cat pixels", "datasets/mnist/dog.png": b"dog pixels"}
    s3.put_many(bucket, images)
    done = run_script(
        SCRIPTS / "references_verify_checkout.py", s3_daemon.home, workdir, DATA_BUCKET=bucket
    )
    assert "verify found a difference" in done.stdout
    data_dir = workdir / done.stdout.split()[-1]
    assert {p.name: p.read_bytes() for p in data_dir.iterdir()} == {
        "cat.png": b"cat pixels",
        "dog.png": b"dog pixels",
        "labels.csv": b"name,label\ncat.png,0\ndog.png,1\n",
    }
    version = api(s3_daemon).artifact("s3-datasets/mnist-s3:v0")
    refs = {path: entry.ref for path, entry in version.manifest.entries.items()}
    assert refs == {
        "cat.png": f"s3://{bucket}/datasets/mnist/cat.png",
        "dog.png": f"s3://{bucket}/datasets/mnist/dog.png",
        "labels.csv": None,
    }
    assert [r.job_type for r in version.used_by()] == ["train"]


def test_a_new_version_from_a_draft(daemon: DaemonProcess, workdir: Path) -> None:
    run_script(SCRIPTS / "upload_dataset.py", daemon.home, workdir)
    run_script(SCRIPTS / "new_version_from_draft.py", daemon.home, workdir)
    reader = api(daemon)
    v0 = reader.artifact("mnist-data/mnist-raw:v0")
    v1 = reader.artifact("mnist-data/mnist-raw:v1")
    assert sorted(v0.manifest.entries) == ["train.csv", "val.csv"]
    assert sorted(v1.manifest.entries) == ["test.csv", "train.csv"]
    assert v1.manifest.entries["train.csv"].digest == v0.manifest.entries["train.csv"].digest
    assert v1.description == v0.description
    assert v0.metadata["sizes"] == {"train": 40, "val": 10}
    assert v1.metadata["sizes"] == {"train": 40, "val": 10, "test": 1}
    producer = v1.logged_by()
    assert producer is not None and producer.job_type == "add-test-split"
    assert reader.artifact("mnist-data/mnist-raw:latest").version == "v1"
