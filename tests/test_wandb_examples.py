"""Every example of W&B's "Create an artifact" and "Artifacts FAQs" pages, run with only
``import wandb`` changed to ``import artisync as wandb`` (issue 18).

Each example is a script in tests/wandb_examples/ whose header names the page and the
section it comes from, and says what was filled in (placeholders such as "my-bucket"
become the test's own servers). It runs as ``python script.py`` against a real daemon;
the test then reads what the registry holds. Examples that need something first (the
run to resume, the artifact to update) get it from the test, logged with artisync.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import artisync
from daemon_harness import DaemonProcess
from servers import S3, HttpFiles
from wandb_script_runner import (
    ENTITY,
    printed_json,
    run_script,
    set_entity,
    started_daemon,
    write_files,
)

EXAMPLES = Path(__file__).parent / "wandb_examples"

# Examples kept in the folder but not run, and why (each says so in its header too).
NOT_RUN = {
    "find_run_files.py": "lists a run's files (W&B's run-file storage), which artisync "
    "does not have",
}

# The project directory the pages assume ("Add files to an artifact"), plus the files
# other examples add.
PROJECT_FILES: dict[str, bytes | str] = {
    "images/cat.png": b"\x89PNG cat",
    "images/dog.png": b"\x89PNG dog",
    "checkpoints/model.h5": b"checkpoint weights",
    "model.h5": b"model weights",
    "hello.txt": "hello\n",
    "hello_world.txt": "hello, world\n",
    "path/file.txt": "a file\n",
    "path/to/file.txt": "a file to add\n",
    "path/to/directory/a.txt": "a\n",
    "path/to/directory/sub/b.txt": "b\n",
    "path/to/local/file": "local file\n",
    "my_data/file.txt": "my data\n",
    "train.py": "print('training')\n",
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
def project_dir(tmp_path: Path) -> Path:
    root = tmp_path / "project-directory"
    write_files(root, PROJECT_FILES)
    return root


def b64md5(data: bytes | str) -> str:
    raw = data.encode() if isinstance(data, str) else data
    return base64.b64encode(hashlib.md5(raw).digest()).decode()


def contents(artifact: artisync.Artifact) -> dict[str, str]:
    """path -> digest of a committed version's entries."""
    return {path: entry.digest for path, entry in artifact.manifest.entries.items()}


def bare(name: str) -> str:
    """An artifact's name without ``:vN`` (W&B's logged artifacts carry it)."""
    return name.split(":")[0]


def log(
    home: Path,
    project: str,
    name: str,
    type: str,
    files: dict[str, bytes | str],
    tmp: Path,
    **how: Any,
) -> artisync.Artifact:
    """Set-up: log ``files`` as a version of ``project/name`` with artisync, and wait.
    ``how`` takes ``run_id``, ``entity``, ``job_type``, ``aliases``, ``uses`` (names the
    run uses first), ``metadata``, ``description``."""
    source = tmp / f"setup-{project}-{name}-{len(list(tmp.glob('setup-*')))}"
    write_files(source, files)
    with artisync.init(
        project=project,
        id=how.get("run_id"),
        entity=how.get("entity"),
        job_type=how.get("job_type"),
        home=home,
    ) as run:
        for used in how.get("uses", ()):
            run.use_artifact(used)
        artifact = artisync.Artifact(
            name, type, description=how.get("description"), metadata=how.get("metadata")
        )
        for relative in files:
            artifact.add_file(str(source / relative), name=relative)
        run.log_artifact(artifact, aliases=how.get("aliases")).wait(timeout=60)
    return artifact


def api(daemon: DaemonProcess) -> artisync.Api:
    return artisync.Api(home=daemon.home)


def test_every_example_script_is_run_or_says_why_not() -> None:
    tested = Path(__file__).read_text()
    for script in sorted(EXAMPLES.glob("*.py")):
        assert script.name in NOT_RUN or f'"{script.name}"' in tested, script.name
        assert script.read_text().startswith("# "), f"{script.name} names no source"


# -- "Create an artifact" ------------------------------------------------------------


def test_construct_three_steps(daemon: DaemonProcess, project_dir: Path) -> None:
    run_script(EXAMPLES / "construct_three_steps.py", daemon.home, project_dir)
    version = api(daemon).artifact("artifacts-example/hello-world:v0")
    assert version.type == "dataset"
    assert contents(version) == {"optional-name": b64md5(PROJECT_FILES["hello_world.txt"])}
    producer = version.logged_by()
    assert producer is not None
    assert producer.job_type == "job-type"
    assert producer.state == "finished"  # the script never called finish: exit did


def test_construct_putting_together(daemon: DaemonProcess, project_dir: Path) -> None:
    run_script(EXAMPLES / "construct_putting_together.py", daemon.home, project_dir)
    version = api(daemon).artifact("putting-together/my-dataset:latest")
    assert sorted(contents(version)) == [
        "directory/a.txt",
        "directory/sub/b.txt",
        "notes/file.txt",
    ]
    producer = version.logged_by()
    assert producer is not None and producer.job_type == "upload"


def test_log_artifacts_in_a_loop_keep_their_order(daemon: DaemonProcess, project_dir: Path) -> None:
    run_script(EXAMPLES / "log_artifacts_in_a_loop.py", daemon.home, project_dir)
    reader = api(daemon)
    for i in range(10):
        assert reader.artifact(f"uncategorized/race:v{i}").metadata == {"index": i}
    assert reader.artifact("uncategorized/race:latest").version == "v9"


def test_add_single_file(daemon: DaemonProcess, project_dir: Path) -> None:
    run_script(EXAMPLES / "add_single_file.py", daemon.home, project_dir)
    expected = {
        "single-file": {"file.txt": PROJECT_FILES["path/file.txt"]},
        "single-file-positional": {"file.txt": PROJECT_FILES["path/file.txt"]},
        "single-file-renamed": {"new/path/file.txt": PROJECT_FILES["path/file.txt"]},
        "hello": {"hello.txt": PROJECT_FILES["hello.txt"]},
        "hello-renamed": {"new/path/hello_world.txt": PROJECT_FILES["hello.txt"]},
        "new-file": {"hello.txt": "hello from new_file\n"},
        "model": {"model.h5": PROJECT_FILES["model.h5"]},
        "checkpoint": {"model.h5": PROJECT_FILES["checkpoints/model.h5"]},
        "model-renamed": {"models/mymodel.h5": PROJECT_FILES["model.h5"]},
    }
    reader = api(daemon)
    for name, files in expected.items():
        version = reader.artifact(f"add-files/{name}:v0")
        assert contents(version) == {p: b64md5(d) for p, d in files.items()}, name


def test_add_multiple_files(daemon: DaemonProcess, project_dir: Path) -> None:
    run_script(EXAMPLES / "add_multiple_files.py", daemon.home, project_dir)
    expected = {
        "prefixed-directory": ["optional-prefix/a.txt", "optional-prefix/sub/b.txt"],
        "images": ["cat.png", "dog.png"],
        "images-named": ["images/cat.png", "images/dog.png"],
    }
    reader = api(daemon)
    for name, paths in expected.items():
        assert sorted(contents(reader.artifact(f"add-files/{name}:v0"))) == paths, name
    images = contents(reader.artifact("add-files/images-named:v0"))
    assert images["images/cat.png"] == b64md5(PROJECT_FILES["images/cat.png"])


def test_add_uri_reference(
    s3: S3, s3_daemon: DaemonProcess, http_files: HttpFiles, project_dir: Path
) -> None:
    bucket = s3.bucket()
    s3.put_many(
        bucket,
        {
            "model.h5": b"model weights",
            "checkpoints/model.h5": b"checkpoint weights",
            "images/cat.png": b"cat",
            "images/dog.png": b"dog",
        },
    )
    url = http_files.write("data/train.csv", b"a,b\n1,2\n")
    run_script(
        EXAMPLES / "add_uri_reference.py",
        s3_daemon.home,
        project_dir,
        EXAMPLE_S3_BUCKET=bucket,
        EXAMPLE_HTTP_URL=url,
    )
    expected = {
        "http-reference": {"optional-name": url},
        "s3-model": {"model.h5": f"s3://{bucket}/model.h5"},
        "s3-checkpoint": {"model.h5": f"s3://{bucket}/checkpoints/model.h5"},
        "s3-model-renamed": {"models/mymodel.h5": f"s3://{bucket}/model.h5"},
        "s3-images": {
            "cat.png": f"s3://{bucket}/images/cat.png",
            "dog.png": f"s3://{bucket}/images/dog.png",
        },
        "s3-images-named": {
            "images/cat.png": f"s3://{bucket}/images/cat.png",
            "images/dog.png": f"s3://{bucket}/images/dog.png",
        },
    }
    reader = api(s3_daemon)
    for name, refs in expected.items():
        entries = reader.artifact(f"add-references/{name}:v0").manifest.entries
        assert {path: entry.ref for path, entry in entries.items()} == refs, name


def test_parallel_runs_build_one_partitioned_table(
    daemon: DaemonProcess, project_dir: Path
) -> None:
    run_script(EXAMPLES / "parallel_runs.py", daemon.home, project_dir)
    reader = api(daemon)
    version = reader.artifact("uncategorized/parallel-artifact:v0")
    assert sorted(contents(version)) == [
        "distributed_table.partitioned-table.json",
        *[f"parts/table_{i}.table.json" for i in range(5)],
    ]
    table = version.get("distributed_table")
    assert isinstance(table, artisync.PartitionedTable)
    rows = sorted(row for _, row in table.iterrows())
    assert rows == [[i, i * 2, 2**i] for i in range(5)]
    runs = reader.runs("uncategorized")
    assert len(runs) == 6
    assert len({run.group for run in runs}) == 1
    assert str(runs[0].group).startswith("writer-group-")


# -- "Artifacts FAQs" ------------------------------------------------------------------


def test_faq_update_artifacts(daemon: DaemonProcess, project_dir: Path, tmp_path: Path) -> None:
    log(
        daemon.home,
        "car-vision-project",
        "bike-dataset",
        "dataset",
        {"bikes.csv": "id\n1\n"},
        tmp_path,
        description="bikes",
        metadata={"oldKey": "old value", "other": 1},
    )
    run_script(EXAMPLES / "faq_update_artifacts.py", daemon.home, project_dir)
    reader = api(daemon)
    updated = reader.artifact("car-vision-project/bike-dataset:v0")
    assert updated.description == "My new description"
    assert updated.metadata == {"newKey": "new value"}
    assert "replaced" in updated.aliases
    assert reader.artifact("car-vision-project/bike-dataset:replaced").version == "v0"
    assert not reader.artifact_exists("car-vision-project/bike-dataset:best")


def test_faq_log_to_existing_run(daemon: DaemonProcess, project_dir: Path) -> None:
    with artisync.init(id="existing_run_id", config={"lr": 0.1}, home=daemon.home):
        pass
    run_script(EXAMPLES / "faq_log_to_existing_run.py", daemon.home, project_dir)
    reader = api(daemon)
    run = reader.run("uncategorized/existing_run_id")
    assert [bare(a.name) for a in run.logged_artifacts()] == ["artifact_name"]
    assert run.config == {"lr": 0.1}
    assert len(reader.runs("uncategorized")) == 1
    version = reader.artifact("uncategorized/artifact_name:v0")
    assert version.type == "artifact_type"
    assert contents(version) == {"file.txt": b64md5(PROJECT_FILES["my_data/file.txt"])}


def test_faq_download_outside_run(daemon: DaemonProcess, project_dir: Path, tmp_path: Path) -> None:
    files: dict[str, bytes | str] = {"mnist/train.csv": "x,y\n", "README.md": "mnist\n"}
    log(daemon.home, "project", "artifact", "dataset", files, tmp_path, aliases=["alias"])
    stray = project_dir / "artifacts" / "artifact" / "stray.txt"
    write_files(stray.parent, {"stray.txt": "not in the artifact"})
    done = run_script(EXAMPLES / "faq_download_outside_run.py", daemon.home, project_dir)
    root = project_dir / printed_json(done)["artifact_dir"]
    assert root.resolve() == (project_dir / "artifacts" / "artifact").resolve()
    assert sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()) == [
        "README.md",
        "mnist/train.csv",
    ]  # checkout removed the stray file


def _pipeline(home: Path, tmp: Path) -> None:
    """raw-data -> producer -> artifact:alias -> consumer -> model -> evaluator."""
    log(home, "project", "raw-data", "dataset", {"raw.txt": "raw"}, tmp, run_id="ingest")
    log(
        home,
        "project",
        "artifact",
        "dataset",
        {"clean.txt": "clean"},
        tmp,
        run_id="producer",
        uses=["raw-data:latest"],
        aliases=["alias"],
    )
    log(
        home,
        "project",
        "model",
        "model",
        {"model.bin": "weights"},
        tmp,
        run_id="consumer",
        uses=["artifact:alias"],
    )
    with artisync.init(project="project", id="evaluator", home=home) as run:
        run.use_artifact("model:latest")


def test_faq_walk_graph_from_artifact(
    daemon: DaemonProcess, project_dir: Path, tmp_path: Path
) -> None:
    _pipeline(daemon.home, tmp_path)
    done = run_script(EXAMPLES / "faq_walk_graph_from_artifact.py", daemon.home, project_dir)
    found = printed_json(done)
    assert found["producer_run"] == "producer"
    assert found["consumer_runs"] == ["consumer"]
    assert [bare(n) for n in found["next_artifacts"]] == ["model"]
    assert [bare(n) for n in found["previous_artifacts"]] == ["raw-data"]


def test_faq_walk_graph_from_run(daemon: DaemonProcess, project_dir: Path, tmp_path: Path) -> None:
    _pipeline(daemon.home, tmp_path)
    done = run_script(EXAMPLES / "faq_walk_graph_from_run.py", daemon.home, project_dir)
    found = printed_json(done)
    assert [bare(n) for n in found["produced_artifacts"]] == ["model"]
    assert [bare(n) for n in found["consumed_artifacts"]] == ["artifact"]
    assert found["earlier_run"] == "producer"
    assert found["consumer_runs"] == ["evaluator"]


def test_faq_clean_up_unused_versions(
    daemon: DaemonProcess, project_dir: Path, tmp_path: Path
) -> None:
    for step, aliases in enumerate([["best"], None, None]):
        log(
            daemon.home,
            "capsule-gpt",
            "gpt-checkpoints",
            "model",
            {"weights.bin": f"step {step}"},
            tmp_path,
            entity="geoff",
            aliases=aliases,
        )
    run_script(EXAMPLES / "faq_clean_up_unused_versions.py", daemon.home, project_dir)
    reader = api(daemon)
    kept = reader.artifacts("model", "geoff/capsule-gpt/gpt-checkpoints")
    assert sorted(v.version for v in kept) == ["v0", "v2"]  # v1 had no alias
    assert not reader.artifact_exists("geoff/capsule-gpt/gpt-checkpoints:v1")


def test_faq_delete_with_aliases(daemon: DaemonProcess, project_dir: Path, tmp_path: Path) -> None:
    for step in range(2):
        log(
            daemon.home,
            "old-experiments",
            "checkpoints",
            "model",
            {"weights.bin": f"step {step}"},
            tmp_path,
            run_id="run-to-clean",
            aliases=["best"] if step == 0 else None,
        )
    log(daemon.home, "old-experiments", "keep-me", "dataset", {"d.txt": "d"}, tmp_path, run_id="o")
    run_script(EXAMPLES / "faq_delete_with_aliases.py", daemon.home, project_dir)
    reader = api(daemon)
    assert reader.run(f"{ENTITY}/old-experiments/run-to-clean").logged_artifacts() == []
    assert not reader.artifact_exists("old-experiments/checkpoints:v0")
    assert not reader.artifact_exists("old-experiments/checkpoints:v1")
    assert reader.artifact_exists("old-experiments/keep-me:v0")


def test_faq_sweep_models_and_the_best_runs_artifacts(
    daemon: DaemonProcess, project_dir: Path
) -> None:
    done = run_script(EXAMPLES / "faq_sweep_models.py", daemon.home, project_dir)
    sweep_id = done.stdout.split()[-1]
    reader = api(daemon)
    versions = reader.artifacts("model", "sweep-models/sweep_name")
    assert len(versions) == 3  # one version per run of the sweep
    producers = {v.version: v.logged_by() for v in versions}
    assert all(run is not None for run in producers.values())

    done = run_script(
        EXAMPLES / "faq_best_run_artifacts.py",
        daemon.home,
        project_dir / "best",
        EXAMPLE_SWEEP_PATH=f"{ENTITY}/sweep-models/{sweep_id}",
    )
    downloaded = Path(project_dir / "best", done.stdout.split()[-1])
    assert (downloaded / "model.txt").read_text() == "model trained with lr=0.01\n"


def test_faq_save_code(daemon: DaemonProcess, project_dir: Path) -> None:
    run_script(EXAMPLES / "faq_save_code.py", daemon.home, project_dir)
    version = api(daemon).artifact("save-code/train-code:v0")
    assert version.type == "code"
    assert contents(version) == {"train.py": b64md5(PROJECT_FILES["train.py"])}


def test_faq_multiple_architectures(daemon: DaemonProcess, project_dir: Path) -> None:
    run_script(EXAMPLES / "faq_multiple_architectures.py", daemon.home, project_dir)
    reader = api(daemon)
    for architecture, layers in [("resnet", 18), ("vit", 12)]:
        newest = reader.artifact(f"architectures/{architecture}:latest")
        assert newest.version == "v2"
        assert newest.metadata["layers"] == layers
        evaluators = [run.job_type for run in newest.used_by()]
        assert evaluators == ["evaluate"]


def test_faq_reference_version_ids(
    s3: S3, s3_daemon: DaemonProcess, project_dir: Path, tmp_path: Path
) -> None:
    bucket = s3.bucket(versioned=True)
    puts = {
        key: s3.put(bucket, key, data) for key, data in {"t/a.csv": b"a", "t/b.csv": b"b"}.items()
    }
    with artisync.init(project="reference-faq", home=s3_daemon.home) as run:
        table = artisync.Artifact("my_table", "dataset")
        table.add_reference(f"s3://{bucket}/t")
        run.log_artifact(table).wait(timeout=60)
    done = run_script(EXAMPLES / "faq_reference_version_ids.py", s3_daemon.home, project_dir)
    assert printed_json(done) == {
        key.removeprefix("t/"): {"versionID": put["VersionId"], "etag": put["ETag"].strip('"')}
        for key, put in puts.items()
    }


# -- wandb's own docstrings ------------------------------------------------------------


def test_docstring_run_link_artifact(daemon: DaemonProcess, project_dir: Path) -> None:
    run_script(EXAMPLES / "docstring_run_link_artifact.py", daemon.home, project_dir)
    reader = api(daemon)
    source = reader.artifact("team_entity/project_name/artifact_name:v0")
    # A registry collection lives in the linking entity (artisync has no organisations).
    linked = reader.artifact("team_entity/wandb-registry-registry_name/collection_name:latest")
    assert linked.digest == source.digest
    assert contents(linked) == {"file": b64md5(PROJECT_FILES["path/to/local/file"])}


def test_docstring_run_use_artifact(
    daemon: DaemonProcess, project_dir: Path, tmp_path: Path
) -> None:
    log(daemon.home, "example", "mnist", "dataset", {"d": "0"}, tmp_path, aliases=["best"])
    log(daemon.home, "example", "mnist", "dataset", {"d": "1"}, tmp_path)
    run_script(EXAMPLES / "docstring_run_use_artifact.py", daemon.home, project_dir)
    reader = api(daemon)
    (user,) = [r for r in reader.runs("example") if r.used_artifacts()]
    assert sorted(a.version for a in user.used_artifacts()) == ["v0", "v1"]
