"""The SDK's Artifact: path rules, policies, snapshots, entries and checks at call time.

No daemon runs here: what an artifact will submit is read back from the spool, where
``log_artifact`` publishes it when nothing answers on the socket.
"""

from __future__ import annotations

import base64
import gc
import hashlib
import math
import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

import artisync
from artisync.errors import ArtisyncError, InvalidInputError
from artisync.manifest import ManifestEntry, artifact_digest
from artisync.sdk import ArtifactFinalizedError, EntryNotFoundError
from artisync.spool import DirEntry, FileEntry, ReferenceEntry, StagedEntry, Submission


def b64md5(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode()


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An artisync home for the test, used by runs and by artifacts made before one."""
    for var in ("ARTISYNC_SPOOL", "ARTISYNC_STORE", "ARTISYNC_SOCKET", "ARTISYNC_REGISTRY"):
        monkeypatch.delenv(var, raising=False)
    home = tmp_path / "home"
    monkeypatch.setenv("ARTISYNC_HOME", str(home))
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    (work / "checkpoints").mkdir()
    (work / "checkpoints" / "model.h5").write_bytes(b"weights")
    (work / "model.h5").write_bytes(b"weights at the top")
    (work / "images").mkdir()
    (work / "images" / "cat.png").write_bytes(b"cat")
    (work / "images" / "dog.png").write_bytes(b"dog")
    yield home
    artisync.finish()


@pytest.fixture
def run(home: Path) -> Iterator[artisync.Run]:
    with artisync.init(project="proj", home=home) as r:
        yield r


def logged_submission(run: artisync.Run, artifact: artisync.Artifact) -> Submission:
    """Log with no daemon running and read back what was published into spool/new."""
    run.log_artifact(artifact)
    (path,) = (run.settings.spool / "new").glob(f"*-{artifact.submission_id}.json")
    return Submission.loads(path.read_bytes())


def staging(run: artisync.Run, artifact: artisync.Artifact) -> Path:
    return run.settings.spool / "staging" / artifact.submission_id


# -- path rules (DESIGN.md) -------------------------------------------------------------


@pytest.mark.parametrize("policy", ["mutable", "immutable"])
@pytest.mark.parametrize(
    ("method", "local", "name", "stored"),
    [
        ("add_file", "checkpoints/model.h5", None, ["model.h5"]),
        ("add_file", "model.h5", "models/mymodel.h5", ["models/mymodel.h5"]),
        ("add_dir", "images", None, ["cat.png", "dog.png"]),
        ("add_dir", "images", "images", ["images/cat.png", "images/dog.png"]),
    ],
)
def test_path_rules_store_entries_where_wandb_does(
    run: artisync.Run, method: str, local: str, name: str | None, stored: list[str], policy: str
) -> None:
    artifact = artisync.Artifact("model", "model")
    getattr(artifact, method)(local, name=name, policy=policy)
    assert sorted(artifact.manifest.entries) == stored


@pytest.mark.parametrize("bad", ["../x.h5", "/abs/x.h5", "a/../../x.h5", ""])
def test_entry_names_are_normalized_and_may_not_escape_the_root(
    run: artisync.Run, bad: str
) -> None:
    artifact = artisync.Artifact("model", "model")
    artifact.add_file("model.h5", name="./models//best.h5")
    assert list(artifact.manifest.entries) == ["models/best.h5"]
    with pytest.raises(InvalidInputError, match=f"entry path {bad!r}"):
        artifact.add_file("model.h5", name=bad)
    with pytest.raises(InvalidInputError, match=f"entry path {bad!r}"):
        artifact.add_dir("images", name=bad)
    assert len(artifact.manifest) == 1


# -- overwrite -------------------------------------------------------------------------


def test_adding_an_existing_name_raises_unless_overwrite(run: artisync.Run) -> None:
    artifact = artisync.Artifact("model", "model")
    artifact.add_file("checkpoints/model.h5")
    with pytest.raises(InvalidInputError, match=r"already has an entry 'model.h5'.*overwrite=True"):
        artifact.add_file("model.h5")
    assert artifact.get_entry("model.h5").digest == b64md5(b"weights")

    artifact.add_file("model.h5", overwrite=True)
    assert artifact.get_entry("model.h5").digest == b64md5(b"weights at the top")
    # The replaced snapshot is gone from the staging area: only the new one is left.
    assert [p.read_bytes() for p in staging(run, artifact).iterdir()] == [b"weights at the top"]


def test_add_dir_over_an_entry_with_other_content_raises(run: artisync.Run) -> None:
    artifact = artisync.Artifact("pets", "dataset")
    artifact.add_dir("images")
    artifact.add_dir("images")  # the same content again is fine, as in W&B
    Path("images/cat.png").write_bytes(b"another cat")
    with pytest.raises(InvalidInputError, match=r"already has an entry 'cat.png'"):
        artifact.add_dir("images")
    assert artifact.get_entry("cat.png").digest == b64md5(b"cat")


def test_a_first_add_dir_keeps_the_same_path_rules_as_one_file_at_a_time(
    run: artisync.Run, tmp_path: Path
) -> None:
    # A directory added to an empty draft is recorded in one pass (contents._put_new):
    # the directories its files make must still be known to every later check.
    tree = tmp_path / "tree"
    (tree / "a" / "b").mkdir(parents=True)
    for rel in ("a/b/c.bin", "a/d.bin", "e.bin"):
        (tree / rel).write_bytes(rel.encode())
    (tmp_path / "f").write_bytes(b"f")
    artifact = artisync.Artifact("tree", "dataset")
    artifact.add_dir(tree, name="data")

    for is_a_dir in ("data", "data/a", "data/a/b"):
        with pytest.raises(InvalidInputError, match=f"so {is_a_dir!r} is a directory"):
            artifact.add_file(tmp_path / "f", name=is_a_dir)
    with pytest.raises(InvalidInputError, match=re.escape("already has a file 'data/e.bin'")):
        artifact.add_file(tmp_path / "f", name="data/e.bin/x")
    artifact.remove("data/a")
    artifact.add_file(tmp_path / "f", name="data/a")  # no longer a directory
    assert sorted(artifact.manifest.entries) == ["data/a", "data/e.bin"]
    # Where each file came from, as W&B records it (for media reuse).
    assert artifact._local_names[str(tree / "e.bin")] == "data/e.bin"
    assert artifact._local_names[str(tree / "a/b/c.bin")] == "data/a/b/c.bin"


# -- policies ----------------------------------------------------------------------------


def test_mutable_snapshot_keeps_the_bytes_of_add_time(run: artisync.Run) -> None:
    source = Path("checkpoints/model.h5")
    artifact = artisync.Artifact("model", "model")
    entry = artifact.add_file(source)
    source.write_bytes(b"the next epoch's weights")  # the script goes on training

    assert entry.digest == b64md5(b"weights")
    assert entry.size == len(b"weights")
    assert entry.local_path is not None
    assert Path(entry.local_path).read_bytes() == b"weights"
    (staged,) = logged_submission(run, artifact).entries
    assert isinstance(staged, StagedEntry)
    assert staged.digest == b64md5(b"weights")
    assert (run.settings.spool / staged.staged).read_bytes() == b"weights"


def test_mutable_add_dir_snapshots_every_file(run: artisync.Run) -> None:
    artifact = artisync.Artifact("pets", "dataset")
    artifact.add_dir("images", name="images")
    Path("images/cat.png").write_bytes(b"changed")
    entries = logged_submission(run, artifact).entries
    assert all(isinstance(e, StagedEntry) for e in entries)
    by_path = {e.path: e for e in entries if isinstance(e, StagedEntry)}
    assert sorted(by_path) == ["images/cat.png", "images/dog.png"]
    for path, data in [("images/cat.png", b"cat"), ("images/dog.png", b"dog")]:
        assert by_path[path].digest == b64md5(data)
        assert (run.settings.spool / by_path[path].staged).read_bytes() == data


def test_immutable_file_records_stat_and_copies_nothing(run: artisync.Run) -> None:
    artifact = artisync.Artifact("model", "model")
    entry = artifact.add_file("checkpoints/model.h5", policy="immutable")
    assert entry.digest is None  # the daemon hashes it
    (recorded,) = logged_submission(run, artifact).entries
    st = os.stat("checkpoints/model.h5")
    assert recorded == FileEntry(
        path="model.h5",
        local_path=os.path.abspath("checkpoints/model.h5"),
        size=st.st_size,
        mtime_ns=st.st_mtime_ns,
        inode=st.st_ino,
    )
    assert not staging(run, artifact).exists()


@pytest.mark.parametrize(("name", "prefix"), [(None, ""), ("images", "images")])
def test_immutable_add_dir_records_one_dir_entry(
    run: artisync.Run, name: str | None, prefix: str
) -> None:
    artifact = artisync.Artifact("pets", "dataset")
    artifact.add_dir("images", name=name, policy="immutable")
    entries = logged_submission(run, artifact).entries
    assert entries == [DirEntry(path=prefix, local_path=os.path.abspath("images"))]
    assert not staging(run, artifact).exists()


def test_missing_paths_wrong_kinds_and_unknown_policies_raise_at_call_time(
    run: artisync.Run,
) -> None:
    artifact = artisync.Artifact("model", "model")
    for policy in ("mutable", "immutable"):
        with pytest.raises(InvalidInputError, match=r"No such file: 'missing.h5'"):
            artifact.add_file("missing.h5", policy=policy)
        with pytest.raises(InvalidInputError, match=r"'images'.*use add_dir"):
            artifact.add_file("images", policy=policy)
        with pytest.raises(InvalidInputError, match=r"No such directory: 'nowhere'"):
            artifact.add_dir("nowhere", policy=policy)
        with pytest.raises(InvalidInputError, match=r"not a directory: 'model.h5'"):
            artifact.add_dir("model.h5", policy=policy)
    with pytest.raises(InvalidInputError, match=r"Invalid policy 'copy'"):
        artifact.add_file("model.h5", policy="copy")
    with pytest.raises(InvalidInputError, match=r"Invalid policy 'reference'"):
        artifact.add_dir("images", policy="reference")
    assert len(artifact.manifest) == 0


# -- new_file ----------------------------------------------------------------------------


def test_new_file_becomes_a_staged_entry_when_closed(run: artisync.Run) -> None:
    artifact = artisync.Artifact("report", "eval")
    with artifact.new_file("eval/summary.txt") as f:
        f.write("accuracy 0.93\n")
    with artifact.new_file("eval/raw.bin", mode="xb") as f:
        f.write(b"\x00\x01")
    assert artifact.get_entry("eval/summary.txt").digest == b64md5(b"accuracy 0.93\n")
    by_path = {e.path: e for e in logged_submission(run, artifact).entries}
    raw = by_path["eval/raw.bin"]
    assert isinstance(raw, StagedEntry)
    assert (raw.digest, raw.size) == (b64md5(b"\x00\x01"), 2)
    assert (run.settings.spool / raw.staged).read_bytes() == b"\x00\x01"


def test_new_file_x_refuses_an_existing_name_and_w_replaces_it(run: artisync.Run) -> None:
    artifact = artisync.Artifact("report", "eval")
    artifact.add_file("model.h5")
    with pytest.raises(InvalidInputError, match=r"already has an entry 'model.h5'"):
        artifact.new_file("model.h5")
    with artifact.new_file("model.h5", mode="wb") as f:
        f.write(b"new")
    assert artifact.get_entry("model.h5").digest == b64md5(b"new")
    with pytest.raises(InvalidInputError, match=r"Invalid mode 'a'"):
        artifact.new_file("log.txt", mode="a")


def test_new_file_adds_nothing_when_the_block_raises(run: artisync.Run) -> None:
    artifact = artisync.Artifact("report", "eval")
    with pytest.raises(RuntimeError), artifact.new_file("half.txt") as f:
        f.write("half")
        raise RuntimeError("interrupted")
    assert len(artifact.manifest) == 0
    assert list(staging(run, artifact).iterdir()) == []


# -- references --------------------------------------------------------------------------


def test_add_reference_records_the_reference_as_given(run: artisync.Run) -> None:
    artifact = artisync.Artifact("refs", "dataset")
    uris = ["s3://bucket/train/", "gs://bucket/val.csv", "https://example.com/test.csv"]
    for uri in uris:
        artifact.add_reference(uri)
    artifact.add_reference("file:///data/extra", name="extra", checksum=False, max_objects=50)
    artifact.add_reference("http://example.com/a.txt", name="other/a.txt")
    assert artifact.get_entry("val.csv").ref == "gs://bucket/val.csv"
    assert artifact.get_entry("extra").digest == "file:///data/extra"  # checksum=False
    entries = logged_submission(run, artifact).entries
    assert entries == [
        ReferenceEntry(path="", ref="s3://bucket/train/"),
        ReferenceEntry(path="", ref="gs://bucket/val.csv"),
        ReferenceEntry(path="", ref="https://example.com/test.csv"),
        ReferenceEntry(path="extra", ref="file:///data/extra", checksum=False, max_objects=50),
        ReferenceEntry(path="other/a.txt", ref="http://example.com/a.txt"),
    ]


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("ftp://host/file", "unsupported scheme 'ftp'"),
        ("/data/file", "unsupported scheme '\\(none\\)'"),
        ("file://data/file", "needs an absolute path"),
        ("s3:///key", "need a bucket"),
        ("https:///x", "need a host"),
    ],
)
def test_add_reference_rejects_other_uris_naming_them(
    run: artisync.Run, uri: str, message: str
) -> None:
    artifact = artisync.Artifact("refs", "dataset")
    with pytest.raises(InvalidInputError, match=f"{uri!r}.*{message}"):
        artifact.add_reference(uri)


def test_add_reference_checks_its_arguments(run: artisync.Run) -> None:
    artifact = artisync.Artifact("refs", "dataset")
    with pytest.raises(InvalidInputError, match=r"max_objects 0"):
        artifact.add_reference("s3://bucket/x", max_objects=0)
    artifact.add_reference("s3://bucket/x", name="x")
    with pytest.raises(InvalidInputError, match=r"already has an entry 'x'"):
        artifact.add_reference("gs://bucket/x")


# -- remove and get_entry ----------------------------------------------------------------


def test_remove_takes_a_path_or_a_directory_prefix(run: artisync.Run) -> None:
    artifact = artisync.Artifact("pets", "dataset")
    artifact.add_dir("images", name="images")
    artifact.add_file("model.h5", name="images_model.h5")
    artifact.add_file("checkpoints/model.h5", name="ckpt/model.h5", policy="immutable")
    artifact.add_reference("s3://bucket/ref.txt")

    artifact.remove("images")
    assert sorted(artifact.manifest.entries) == ["ckpt/model.h5", "images_model.h5", "ref.txt"]
    artifact.remove(artifact.get_entry("ckpt/model.h5"))
    artifact.remove("ref.txt")
    assert list(artifact.manifest.entries) == ["images_model.h5"]
    # Removed snapshots do not linger in the staging area.
    assert [p.name.endswith("model.h5") for p in staging(run, artifact).rglob("*.*")] == [True]


def test_remove_of_nothing_raises_a_key_error_naming_the_path(run: artisync.Run) -> None:
    artifact = artisync.Artifact("pets", "dataset")
    artifact.add_dir("images", name="images")
    with pytest.raises(EntryNotFoundError, match=r"No such file or directory.*'image'") as info:
        artifact.remove("image")  # a prefix of a name, not a directory
    assert isinstance(info.value, KeyError)
    assert isinstance(info.value, ArtisyncError)


def test_remove_inside_an_immutable_directory_explains_why_not(run: artisync.Run) -> None:
    artifact = artisync.Artifact("pets", "dataset")
    artifact.add_dir("images", name="images", policy="immutable")
    with pytest.raises(InvalidInputError, match=r"cannot remove 'images/cat.png'.*immutable"):
        artifact.remove("images/cat.png")
    with pytest.raises(InvalidInputError, match=r"cannot add 'images/cat.png'.*immutable"):
        artifact.add_file("model.h5", name="images/cat.png")
    artifact.remove("images")
    assert len(artifact.manifest) == 0


def test_get_entry_shows_path_digest_size_ref_and_extra(run: artisync.Run) -> None:
    artifact = artisync.Artifact("model", "model")
    artifact.add_file("checkpoints/model.h5")
    artifact.add_dir("images", name="pics", policy="immutable")
    entry = artifact.get_entry("model.h5")
    expected: tuple[object, ...] = ("model.h5", b64md5(b"weights"), 7, None, {})
    assert (entry.path, entry.digest, entry.size, entry.ref, dict(entry.extra)) == expected
    pic = artifact.get_entry("pics/dog.png")
    assert (pic.path, pic.digest, pic.size) == ("pics/dog.png", None, 3)
    with pytest.raises(KeyError, match=r"'nope.h5'"):
        artifact.get_entry("nope.h5")


# -- names, types, metadata --------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "type_", "named"),
    [
        ("bad name!", "model", "artifact name 'bad name!'"),
        ("model:v1", "model", "artifact name 'model:v1'"),
        ("model", "a/b", "artifact type 'a/b'"),
        ("model", "wandb-history", "artifact type 'wandb-history'"),
        ("model", "", "artifact type ''"),
    ],
)
def test_bad_names_and_types_raise_at_construction_naming_them(
    home: Path, name: str, type_: str, named: str
) -> None:
    with pytest.raises(InvalidInputError, match=named):
        artisync.Artifact(name, type_)


@pytest.mark.parametrize(
    ("metadata", "named"),
    [
        ({"ok": 1, "bad": object()}, r"metadata\['bad'\] is <object object"),
        ({"scores": [1.0, math.nan]}, r"metadata\['scores'\]\[1\] is nan"),
        ({"nested": {1: "one"}}, r"metadata\['nested'\] has the key 1"),
        ({"when": {1, 2}}, r"metadata\['when'\] is \{1, 2\} of type set"),
    ],
)
def test_non_json_metadata_raises_naming_the_key(
    home: Path, metadata: dict[str, object], named: str
) -> None:
    with pytest.raises(InvalidInputError, match=named):
        artisync.Artifact("model", "model", metadata=metadata)
    artifact = artisync.Artifact("model", "model")
    with pytest.raises(InvalidInputError, match=named):
        artifact.metadata = metadata


def test_metadata_changed_in_place_is_checked_again_at_log(run: artisync.Run) -> None:
    artifact = artisync.Artifact("model", "model", metadata={"epoch": 3})
    artifact.metadata["optimizer"] = object()
    with pytest.raises(InvalidInputError, match=r"metadata\['optimizer'\]"):
        run.log_artifact(artifact)
    assert artifact.is_draft()
    del artifact.metadata["optimizer"]
    assert logged_submission(run, artifact).artifact.metadata == {"epoch": 3}


def test_bad_aliases_tags_and_ttl_raise_naming_them(run: artisync.Run) -> None:
    artifact = artisync.Artifact("model", "model")
    with pytest.raises(InvalidInputError, match=r"alias 'best:1'"):
        artifact.aliases = ["best:1"]
    with pytest.raises(InvalidInputError, match=r"tag ' padded'"):
        artifact.tags = [" padded"]
    with pytest.raises(InvalidInputError, match=r"Invalid ttl"):
        artifact.ttl = 3600  # type: ignore[assignment]
    with pytest.raises(InvalidInputError, match=r"alias 'a/b'"):
        run.log_artifact(artifact, aliases=["ok", "a/b"])
    with pytest.raises(InvalidInputError, match=r"tag 'x:y'"):
        run.log_artifact(artifact, tags=["x:y"])
    assert artifact.is_draft()
    assert list(run.settings.spool.glob("*/*.json")) == []  # nothing was submitted


# -- states, digest, logging once --------------------------------------------------------


def test_draft_digest_is_wandbs_when_every_entry_is_hashed(run: artisync.Run) -> None:
    artifact = artisync.Artifact("pets", "dataset")
    artifact.add_dir("images")
    expected = artifact_digest(
        [ManifestEntry("cat.png", b64md5(b"cat"), 3), ManifestEntry("dog.png", b64md5(b"dog"), 3)]
    )
    assert artifact.digest == expected
    artifact.add_file("model.h5", policy="immutable")
    assert artifact.digest is None  # the daemon has not hashed model.h5 yet


def test_logged_artifact_is_fixed_and_cannot_be_logged_again(run: artisync.Run) -> None:
    artifact = artisync.Artifact("model", "model")
    artifact.add_file("model.h5")
    assert (artifact.state, artifact.version, artifact.id) == ("PENDING", None, None)
    run.log_artifact(artifact)
    assert artifact.state == "PENDING"
    with pytest.raises(ArtifactFinalizedError, match=r"'model' was already logged"):
        run.log_artifact(artifact)
    with pytest.raises(ArtifactFinalizedError, match=r"cannot add files to artifact 'model'"):
        artifact.add_file("checkpoints/model.h5", name="other.h5")
    with pytest.raises(ArtifactFinalizedError, match=r"cannot change the metadata"):
        artifact.metadata = {"late": True}
    assert len(list((run.settings.spool / "new").iterdir())) == 1


def test_draft_snapshots_are_removed_when_the_artifact_is_dropped(run: artisync.Run) -> None:
    draft = artisync.Artifact("draft", "model")
    draft.add_file("model.h5")
    logged = artisync.Artifact("logged", "model")
    logged.add_file("model.h5")
    run.log_artifact(logged)
    draft_area, logged_area = staging(run, draft), staging(run, logged)
    assert draft_area.exists() and logged_area.exists()
    del draft, logged
    gc.collect()
    assert not draft_area.exists()
    assert logged_area.exists()  # the daemon's now
