"""The read side through the SDK against a real daemon: Api lookups, lineage both ways,
edits and deletes of committed versions, runs with summaries, resume, downloads."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import pytest

import artisync
from artisync.errors import InvalidInputError, NotFoundError
from artisync.sdk import ResumeError
from daemon_harness import DaemonProcess


def _log(
    run: artisync.Run, name: str, files: dict[str, bytes], tmp: Path, **kw: object
) -> artisync.Artifact:
    artifact = artisync.Artifact(
        name, str(kw.pop("type", "dataset")), metadata=kw.pop("metadata", None)
    )  # type: ignore[arg-type]
    for path, data in files.items():
        with artifact.new_file(path, mode="wb") as f:
            f.write(data)
    run.log_artifact(artifact, **kw)  # type: ignore[arg-type]
    return artifact.wait(timeout=60)


def test_api_finds_versions_by_alias_and_label(daemon: DaemonProcess, tmp_path: Path) -> None:
    with artisync.init(project="proj", home=daemon.home) as run:
        _log(run, "data", {"a.txt": b"one"}, tmp_path, aliases=["first"])
        _log(run, "data", {"a.txt": b"two"}, tmp_path)
    api = artisync.Api(home=daemon.home)
    assert api.artifact("proj/data").version == "v1"
    assert api.artifact("proj/data:latest").version == "v1"
    assert api.artifact("proj/data:first").version == "v0"
    assert api.artifact("local/proj/data:v0").aliases == ["first"]
    assert [a.version for a in api.artifacts("dataset", "proj/data")] == ["v0", "v1"]
    assert [c.name for c in api.artifact_collections("proj")] == ["data"]
    with pytest.raises(NotFoundError, match=r"v0 to v1.*first"):
        api.artifact("proj/data:best")
    with pytest.raises(NotFoundError, match=r"it has: data \(dataset\)"):
        api.artifact("proj/nothing:latest")
    with pytest.raises(InvalidInputError, match="type 'dataset', not 'model'"):
        api.artifact("proj/data:v0", type="model")


def test_lineage_walks_both_ways(daemon: DaemonProcess, tmp_path: Path) -> None:
    with artisync.init(project="proj", job_type="prep", id="prep1", home=daemon.home) as run:
        _log(run, "raw", {"x.csv": b"1,2"}, tmp_path)
    with artisync.init(project="proj", job_type="train", id="train1", home=daemon.home) as run:
        used = run.use_artifact("raw:latest")
        assert used.version == "v0"
        _log(run, "model", {"w.bin": b"weights"}, tmp_path, type="model")
        assert [a.name for a in run.used_artifacts()] == ["raw"]
        assert [a.name for a in run.logged_artifacts()] == ["model"]
    api = artisync.Api(home=daemon.home)
    raw = api.artifact("proj/raw:v0")
    logged_by = raw.logged_by()
    assert logged_by is not None and logged_by.id == "prep1" and logged_by.job_type == "prep"
    assert [r.id for r in raw.used_by()] == ["train1"]
    model = api.artifact("proj/model:latest")
    producer = model.logged_by()
    assert producer is not None and producer.id == "train1"
    assert [a.name for a in producer.used_artifacts()] == ["raw"]
    assert [a.name for a in api.run("proj/train1").logged_artifacts()] == ["model"]


def test_aliases_description_metadata_ttl_edits_are_saved(
    daemon: DaemonProcess, tmp_path: Path
) -> None:
    with artisync.init(project="proj", home=daemon.home) as run:
        first = _log(run, "m", {"a": b"1"}, tmp_path, type="model")
        _log(run, "m", {"a": b"2"}, tmp_path, type="model")
    first.aliases.append("best")
    first.description = "the good one"
    first.metadata["acc"] = 0.9
    first.ttl = timedelta(days=3)
    first.save()
    again = artisync.Api(home=daemon.home).artifact("proj/m:best")
    assert again.version == "v0"
    assert again.description == "the good one"
    assert again.metadata == {"acc": 0.9}
    assert again.ttl == timedelta(days=3)
    # latest stays on the newest version whatever the list says.
    again.aliases.remove("best")
    again.aliases.append("latest")
    again.save()
    assert artisync.Api(home=daemon.home).artifact("proj/m:latest").version == "v1"
    with pytest.raises(NotFoundError):
        artisync.Api(home=daemon.home).artifact("proj/m:best")
    with pytest.raises(InvalidInputError, match="positive"):
        again.ttl = timedelta(0)


def test_delete_refuses_aliased_versions_unless_asked(
    daemon: DaemonProcess, tmp_path: Path
) -> None:
    with artisync.init(project="proj", home=daemon.home) as run:
        v0 = _log(run, "m", {"a": b"1"}, tmp_path, aliases=["prod"])
        v1 = _log(run, "m", {"a": b"2"}, tmp_path)
    with pytest.raises(InvalidInputError, match="prod"):
        v0.delete()
    v0.delete(delete_aliases=True)
    assert v0.state == "DELETED"
    v1.delete()  # latest alone does not hold a version back
    api = artisync.Api(home=daemon.home)
    with pytest.raises(NotFoundError):
        api.artifact("proj/m:latest")
    with artisync.init(project="proj", home=daemon.home) as run:
        # Same content as the deleted v0: a new number, never a reused one.
        again = _log(run, "m", {"a": b"1"}, tmp_path)
    assert again.version == "v2"


def test_runs_keep_summary_config_and_sort_by_a_metric(
    daemon: DaemonProcess, tmp_path: Path
) -> None:
    for i, acc in enumerate([0.7, 0.95, 0.8]):
        with artisync.init(
            project="sweep",
            group="s1",
            job_type="train",
            config={"lr": i},
            id=f"r{i}",
            home=daemon.home,
        ) as run:
            run.summary["val_acc"] = acc
            _log(run, "model", {"w": f"weights {i}".encode()}, tmp_path, type="model")
    api = artisync.Api(home=daemon.home)
    runs = api.runs("sweep", filters={"group": "s1"}, order="-summary_metrics.val_acc")
    assert [r.id for r in runs] == ["r1", "r2", "r0"]
    best = runs[0]
    assert best.summary == {"val_acc": 0.95} and best.config == {"lr": 1}
    assert best.state == "finished" and best.group == "s1" and best.job_type == "train"
    [model] = best.logged_artifacts()
    root = Path(model.download(root=tmp_path / "best"))
    assert (root / "w").read_bytes() == b"weights 1"
    filtered = api.runs("sweep", filters={"summary_metrics.val_acc": {"$gt": 0.75}})
    assert sorted(r.id for r in filtered) == ["r1", "r2"]
    assert (
        api.runs("sweep", filters={"config.lr": {"$in": [0, 2]}}, order="+config.lr")[0].id == "r0"
    )


def test_resume_allow_must_never(home: Path) -> None:
    with pytest.raises(ResumeError, match="no run 'abc'"):
        artisync.init(project="p", id="abc", resume="must", home=home)
    with artisync.init(project="p", id="abc", group="g", config={"a": 1}, home=home) as run:
        run.summary["loss"] = 1.0
    with pytest.raises(ResumeError, match="exists already"):
        artisync.init(project="p", id="abc", resume="never", home=home)
    with artisync.init(project="p", id="abc", resume="must", config={"b": 2}, home=home) as run:
        assert run.resumed and run.group == "g"
        assert run.config == {"a": 1, "b": 2} and run.summary == {"loss": 1.0}
        run.log({"loss": 0.5})
    resumed = artisync.Api(home=home).run("p/abc")
    assert resumed.summary["loss"] == 0.5 and resumed.summary["_step"] == 0
    assert resumed.state == "finished"


def test_download_verifies_and_skips_unchanged_files(daemon: DaemonProcess, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    (data_dir / "sub").mkdir(parents=True)
    files = {"a.bin": os.urandom(5000), "sub/b.bin": os.urandom(70_000), "empty": b""}
    for name, data in files.items():
        (data_dir / name).write_bytes(data)
    with artisync.init(project="proj", home=daemon.home) as run:
        artifact = artisync.Artifact("tree", "dataset")
        artifact.add_dir(data_dir)
        run.log_artifact(artifact).wait(timeout=60)
    fetched = artisync.Api(home=daemon.home).artifact("proj/tree:v0")
    root = Path(fetched.download(root=tmp_path / "out"))
    for name, data in files.items():
        assert (root / name).read_bytes() == data
    fetched.verify(root)
    only = Path(fetched.download(root=tmp_path / "only", path_prefix="sub"))
    assert [p.name for p in only.rglob("*") if p.is_file()] == ["b.bin"]
    entry_path = fetched.get_entry("a.bin").download(root=tmp_path / "one")  # type: ignore[union-attr]
    assert Path(entry_path).read_bytes() == files["a.bin"]
    (root / "a.bin").write_bytes(b"tampered")
    with pytest.raises(artisync.ArtisyncError, match=r"a\.bin"):
        fetched.verify(root)
    fetched.download(root=root)  # a changed file is replaced by a verified copy
    assert (root / "a.bin").read_bytes() == files["a.bin"]


def test_default_project_and_module_level_use_artifact(
    daemon: DaemonProcess, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ARTISYNC_PROJECT", "envproj")
    with artisync.init(home=daemon.home) as run:
        assert run.project == "envproj"
        _log(run, "d", {"x": b"x"}, tmp_path)
        assert artisync.use_artifact("d:v0").version == "v0"
    monkeypatch.delenv("ARTISYNC_PROJECT")
    with artisync.init(home=daemon.home) as run:
        assert run.project == "uncategorized"


def test_log_code_logs_the_sources(daemon: DaemonProcess, tmp_path: Path) -> None:
    src = tmp_path / "proj"
    (src / "pkg").mkdir(parents=True)
    (src / ".git").mkdir()
    (src / "train.py").write_text("print('hi')\n")
    (src / "pkg" / "model.py").write_text("W = 1\n")
    (src / "notes.txt").write_text("not code\n")
    (src / ".git" / "config.py").write_text("hidden\n")
    with artisync.init(project="proj", home=daemon.home) as run:
        code = run.log_code(src, name="trainer")
        assert code is not None
        code.wait(timeout=60)
        skipped = run.log_code(src, include_fn=lambda path, root: path.endswith(".cpp"))
    assert skipped is None
    assert code.type == "code" and code.name == "source-trainer"
    assert sorted(code.manifest.entries) == ["pkg/model.py", "train.py"]
