"""The rest of W&B's artifact surface: ``files()``, ``checkout()``, what the ``add_*``
methods return, ``Api().artifact_versions / artifact_exists / artifact_type(s)``, and a
type conflict raised at ``log_artifact`` rather than at ``wait()``. Through a real
daemon on SQLite."""

from __future__ import annotations

import base64
import hashlib
import os
from pathlib import Path

import pytest

import artisync
from artisync.config import Config
from artisync.errors import ArtisyncError, InvalidInputError, NotFoundError, TypeConflictError
from artisync.sdk.collection_types import refuse_type_conflict
from artisync.sdk.manifest_view import PendingEntry
from daemon_harness import DaemonProcess


def b64md5(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode()


@pytest.fixture
def logged(daemon: DaemonProcess, tmp_path: Path) -> artisync.Artifact:
    """``proj/ds:v0``: two files and a reference."""
    outside = tmp_path / "outside.txt"
    outside.write_text("referenced")
    with artisync.init(project="proj", home=daemon.home) as run:
        artifact = artisync.Artifact("ds", "dataset")
        with artifact.new_file("data/rows.csv") as f:
            f.write("a,b\n1,2\n")
        with artifact.new_file("README.md") as f:
            f.write("# rows\n")
        artifact.add_reference(outside.as_uri(), name="ref.txt")
        return run.log_artifact(artifact).wait()


# -- files() ----------------------------------------------------------------------------------


def test_files_lists_the_entries_as_wandb_files(
    logged: artisync.Artifact, daemon: DaemonProcess
) -> None:
    files = logged.files()
    assert len(files) == 3 and repr(files) == "<ArtifactFiles local/proj/ds:v0 (3)>"
    assert [f.name for f in files] == ["README.md", "data/rows.csv", "ref.txt"]
    rows = files[1]
    assert (rows.size, rows.digest, rows.md5) == (8, b64md5(b"a,b\n1,2\n"), b64md5(b"a,b\n1,2\n"))
    assert rows.mimetype == "text/csv" and rows.updated_at.startswith(str(logged.created_at)[:10])
    blob = hashlib.md5(b"a,b\n1,2\n").hexdigest()
    assert rows.url.endswith(f"/blobs/md5/{blob[:2]}/{blob}") and rows.url.startswith("file://")
    assert Path(rows.url.removeprefix("file://")).read_bytes() == b"a,b\n1,2\n"
    assert files[2].url == files[2].ref and files[2].ref.startswith("file://")
    assert [f.name for f in logged.files(names=["ref.txt", "nope"])] == ["ref.txt"]
    with pytest.raises(InvalidInputError, match="list of paths"):
        logged.files(names="ref.txt")  # type: ignore[arg-type]


def test_a_file_downloads_itself_as_wandb_file_does(
    logged: artisync.Artifact, tmp_path: Path
) -> None:
    rows = logged.files(names=["data/rows.csv"])[0]
    with rows.download(tmp_path) as f:
        assert f.read() == "a,b\n1,2\n"
    with pytest.raises(InvalidInputError, match="already exists"):
        rows.download(tmp_path)
    (tmp_path / "data" / "rows.csv").write_text("changed")
    with rows.download(tmp_path, exist_ok=True) as f:
        assert f.read() == "changed"
    with rows.download(tmp_path, replace=True) as f:
        assert f.read() == "a,b\n1,2\n"


def test_files_of_a_draft_says_to_log_it(home: Path) -> None:
    with pytest.raises(ArtisyncError, match="not committed"):
        artisync.Artifact("ds", "dataset").files()


# -- checkout() -------------------------------------------------------------------------------


def test_checkout_makes_the_directory_exactly_the_version(
    logged: artisync.Artifact, tmp_path: Path
) -> None:
    root = tmp_path / "co"
    (root / "data").mkdir(parents=True)
    (root / "data" / "rows.csv").write_text("edited")
    (root / "data" / "stray.csv").write_text("not in the artifact")
    (root / "notes.txt").write_text("mine")
    os.symlink("/etc/hostname", root / "link")
    assert logged.checkout(root) == str(root)
    files = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if not p.is_dir())
    assert files == ["README.md", "data/rows.csv", "ref.txt"]
    assert (root / "data" / "rows.csv").read_text() == "a,b\n1,2\n"
    logged.verify(root)


def test_checkout_defaults_to_artifacts_name_and_refuses_a_file(
    logged: artisync.Artifact, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert logged.checkout() == os.path.join("artifacts", "ds")
    assert (tmp_path / "artifacts" / "ds" / "README.md").read_text() == "# rows\n"
    (tmp_path / "a-file").write_text("x")
    with pytest.raises(InvalidInputError, match="is a file, not a directory"):
        logged.checkout(tmp_path / "a-file")
    assert (tmp_path / "a-file").read_text() == "x"


# -- what add_* return ----------------------------------------------------------------------


def test_add_methods_return_what_wandb_returns(home: Path, tmp_path: Path) -> None:
    (tmp_path / "m.h5").write_bytes(b"weights")
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "x").write_bytes(b"x")
    with artisync.init(project="proj", home=home):
        artifact = artisync.Artifact("m", "model")
        entry = artifact.add_file(str(tmp_path / "m.h5"))
        assert (entry.path, entry.digest, entry.size) == ("m.h5", b64md5(b"weights"), 7)
        assert artifact.add_dir(str(tmp_path / "d"), name="d") is None
        refs = artifact.add_reference("s3://bucket/prefix/", name="shards")
        assert refs == [PendingEntry("shards", None, None, "s3://bucket/prefix/")]
        unchecked = artifact.add_reference("https://example.com/a.bin", checksum=False)
        assert [(r.path, r.ref) for r in unchecked] == [("a.bin", "https://example.com/a.bin")]
        assert unchecked[0].digest == "https://example.com/a.bin"
        with pytest.raises(InvalidInputError, match="is stored content"):
            artifact.add_reference(entry)  # type: ignore[arg-type]


def test_add_reference_takes_a_reference_entry_of_another_artifact(
    logged: artisync.Artifact, daemon: DaemonProcess
) -> None:
    ref = logged.get_entry("ref.txt")
    with artisync.init(project="proj", home=daemon.home):
        artifact = artisync.Artifact("again", "dataset")
        (added,) = artifact.add_reference(ref)  # type: ignore[arg-type]
    assert (added.path, added.ref) == ("ref.txt", ref.ref)


# -- Api ------------------------------------------------------------------------------------


def test_api_artifact_versions_exists_and_types(
    logged: artisync.Artifact, daemon: DaemonProcess
) -> None:
    api = artisync.Api(home=daemon.home)
    assert [a.version for a in api.artifact_versions("dataset", "proj/ds")] == ["v0"]
    assert api.artifact_exists("proj/ds") and api.artifact_exists("proj/ds:v0")
    assert not api.artifact_exists("proj/ds:v7") and not api.artifact_exists("proj/nope")
    with pytest.raises(InvalidInputError, match="has type 'dataset', not 'model'"):
        api.artifact_exists("proj/ds", type="model")
    with pytest.raises(InvalidInputError, match="Invalid artifact path"):
        api.artifact_exists("a/b/c/d")
    with artisync.init(project="proj", home=daemon.home) as run:
        model = artisync.Artifact("m", "model")
        with model.new_file("w.bin") as f:
            f.write("w")
        run.log_artifact(model).wait()
    types = api.artifact_types("proj")
    assert [(t.name, t.entity, t.project) for t in types] == [
        ("dataset", "local", "proj"),
        ("model", "local", "proj"),
    ]
    dataset = api.artifact_type("dataset", "proj")
    assert repr(dataset) == "<ArtifactType dataset>"
    assert [c.name for c in dataset.collections()] == ["ds"]
    assert dataset.collection("ds").versions()[0].id == logged.id
    with pytest.raises(NotFoundError, match="no artifact 'm' of type 'dataset'"):
        dataset.collection("m")
    with pytest.raises(NotFoundError, match="its types: dataset, model"):
        api.artifact_type("code", "proj")
    assert api.artifact_types("empty-project") == []


# -- a type conflict at log_artifact ---------------------------------------------------------


def test_a_known_name_of_another_type_is_refused_at_log_artifact(
    logged: artisync.Artifact, daemon: DaemonProcess
) -> None:
    with artisync.init(project="proj", home=daemon.home) as run:
        other = artisync.Artifact("ds", "model")
        with other.new_file("w.bin") as f:
            f.write("w")
        with pytest.raises(TypeConflictError) as caught:
            run.log_artifact(other)
        assert str(caught.value) == (
            "artifact 'ds' already exists in project 'local/proj' with type 'dataset', so it "
            "cannot be logged with type 'model'; an artifact name has one type per project: "
            "use the same type or another name"
        )
        assert other.is_draft()  # nothing was handed over
        assert not list((daemon.config.spool / "new").glob(f"*{other.submission_id}*"))
        # Another project may use the name with another type.
        with artisync.init(project="other", reinit="create_new", home=daemon.home) as run2:
            assert run2.log_artifact(other).wait().version == "v0"


def test_an_unreachable_registry_does_not_fail_the_early_check(tmp_path: Path) -> None:
    settings = Config.load(tmp_path, registry="http://127.0.0.1:9")
    refuse_type_conflict(settings, None, "proj", "ds", "model")
