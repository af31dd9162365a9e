"""``artifact.new_draft()``: a committed version's entries in a draft that is changed and
logged as the next version (W&B's incremental artifacts), through a real daemon. The
draft's submission names its base version; the daemon takes the kept entries from that
version's manifest, so only what the draft adds is read and stored."""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Callable
from pathlib import Path

import pytest

import artisync
from artisync.errors import ArtisyncError, InvalidInputError, RejectedError, SubmissionError
from artisync.spool import BaseInfo, Submission
from daemon_harness import DaemonProcess
from granted_team import Team


def b64md5(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode()


@pytest.fixture
def v0(daemon: DaemonProcess, tmp_path: Path) -> artisync.Artifact:
    """``proj/ds:v0``: three files, one in a directory, and a reference."""
    (tmp_path / "ref.txt").write_text("referenced")
    with artisync.init(project="proj", home=daemon.home) as run:
        artifact = artisync.Artifact("ds", "dataset", description="rows", metadata={"n": 3})
        for name, text in (("a.csv", "a"), ("b.csv", "b"), ("sub/c.csv", "c")):
            with artifact.new_file(name) as f:
                f.write(text)
        artifact.add_reference((tmp_path / "ref.txt").as_uri(), name="ref.txt")
        return run.log_artifact(artifact).wait()


def test_a_draft_has_the_versions_name_type_description_metadata_and_entries(
    v0: artisync.Artifact,
) -> None:
    draft = v0.new_draft()
    assert draft.is_draft() and draft.state == "PENDING" and draft.version is None
    assert (draft.name, draft.type, draft.description, draft.metadata) == (
        "ds",
        "dataset",
        "rows",
        {"n": 3},
    )
    draft.metadata["n"] = 4
    assert v0.metadata == {"n": 3}  # a copy, not the version's own dict
    assert sorted(draft.manifest.entries) == ["a.csv", "b.csv", "ref.txt", "sub/c.csv"]
    assert draft.get_entry("a.csv").digest == b64md5(b"a")
    # Every entry is hashed already: the draft's digest is known, and is v0's.
    assert draft.digest == v0.digest


def test_a_changed_draft_logs_the_next_version_with_only_the_changes_stored(
    v0: artisync.Artifact, daemon: DaemonProcess, tmp_path: Path
) -> None:
    draft = v0.new_draft()
    draft.remove("b.csv")
    with artisync.init(project="proj", home=daemon.home) as run:
        with draft.new_file("d.csv") as f:
            f.write("d")
        with draft.new_file("a.csv", mode="w") as f:  # replaces v0's a.csv
            f.write("a, again")
        with pytest.raises(InvalidInputError, match="from the version it was drafted from"):
            draft.new_file("sub/c.csv")
        v1 = run.log_artifact(draft).wait()
    assert v1.version == "v1" and v1.id != v0.id
    entries = v1.manifest.entries
    assert sorted(entries) == ["a.csv", "d.csv", "ref.txt", "sub/c.csv"]
    assert entries["a.csv"].digest == b64md5(b"a, again")
    assert entries["sub/c.csv"] == v0.manifest.entries["sub/c.csv"]
    assert entries["ref.txt"].ref == v0.manifest.entries["ref.txt"].ref
    root = Path(v1.download(tmp_path / "v1"))
    assert (root / "sub" / "c.csv").read_text() == "c" and (root / "d.csv").read_text() == "d"
    v1.verify(root)
    assert artisync.Api(home=daemon.home).artifact("proj/ds:latest").id == v1.id


def test_a_draft_logged_unchanged_is_the_same_version(
    v0: artisync.Artifact, daemon: DaemonProcess
) -> None:
    with artisync.init(project="proj", home=daemon.home) as run:
        again = run.log_artifact(v0.new_draft()).wait()
    assert (again.version, again.id) == ("v0", v0.id)


def test_the_submission_names_the_base_and_what_the_draft_removed(
    v0: artisync.Artifact, tmp_path: Path
) -> None:
    draft = v0.new_draft()
    draft.remove("sub")
    with artisync.init(project="proj", home=tmp_path / "quiet") as run:
        # No daemon answers this home: the submission waits in the spool, to be read here.
        run.log_artifact(draft)
        (path,) = (run.settings.spool / "new").glob(f"*-{draft.submission_id}.json")
    sub = Submission.loads(path.read_bytes())
    assert sub.base == BaseInfo(v0.id or "", ["sub/c.csv"])
    assert sub.entries == []


def test_bad_drafts_are_refused_clearly(
    v0: artisync.Artifact, daemon: DaemonProcess, tmp_path: Path
) -> None:
    with pytest.raises(ArtisyncError, match="not committed"):
        artisync.Artifact("ds", "dataset").new_draft()
    with artisync.init(project="proj", home=daemon.home, group="g") as run:
        with pytest.raises(InvalidInputError, match=r"log it with run\.log_artifact"):
            run.upsert_artifact(v0.new_draft())
        # Content other than the base's at a path the base keeps: refused when added...
        other = tmp_path / "dir"
        other.mkdir()
        (other / "a.csv").write_text("not a")
        with pytest.raises(InvalidInputError, match=r"already has an entry 'a\.csv'"):
            v0.new_draft().add_dir(str(other), policy="immutable")
        # ... and rejected by the daemon when the SDK could not see it coming (a file that
        # appears in an immutable directory after it was added), naming the path.
        (other / "a.csv").unlink()
        draft = v0.new_draft()
        draft.add_dir(str(other), policy="immutable")
        (other / "a.csv").write_text("not a")
        with pytest.raises(RejectedError, match=r"'a.csv' with other content"):
            run.log_artifact(draft).wait()
        # The base version deleted before the draft is committed.
        gone = v0.new_draft()
        with gone.new_file("e.csv") as f:
            f.write("e")
        v0.delete(delete_aliases=True)
        with pytest.raises(RejectedError, match=r"drafted from version .* cannot be read"):
            run.log_artifact(gone).wait()


def test_a_base_on_another_action_or_malformed_is_refused_by_the_spool_format() -> None:
    good = {
        "format": "artisync.submission",
        "format_version": 1,
        "id": os.urandom(16).hex(),
        "created_ns": 1,
        "project": "p",
        "artifact": {"name": "ds", "type": "dataset"},
        "entries": [],
        "base": {"version_id": "abc", "removed": ["sub/c.csv"]},
    }
    assert Submission.from_json(good).base == BaseInfo("abc", ["sub/c.csv"])
    for base, match in (
        ({"version_id": ""}, "base version_id"),
        ({"version_id": "abc", "removed": "x"}, "base removed"),
        ({"version_id": "abc", "extra": 1}, "malformed"),
        ("abc", "base must be a JSON object"),
    ):
        with pytest.raises(SubmissionError, match=match):
            Submission.from_json({**good, "base": base})
    with pytest.raises(SubmissionError, match="takes no base version"):
        Submission.from_json({**good, "action": "finish", "distributed_id": "d"})


# -- on a team's server, whose bucket the node reaches through grants -------------------------


def test_a_draft_on_a_server_node_sends_only_its_new_blob(
    s3_team: Team,
    node: Callable[[Team], Path],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    proxy = s3_team.proxy
    assert proxy is not None
    home = node(s3_team)
    daemon = DaemonProcess(home)
    daemon.start({"ARTISYNC_API_KEY": s3_team.keys["alice"]})
    monkeypatch.setenv("ARTISYNC_API_KEY", s3_team.keys["alice"])
    try:
        with artisync.init(project="detector", entity="vision", home=home) as run:
            first = artisync.Artifact("ds", "dataset")
            for name in ("a.bin", "b.bin"):
                with first.new_file(name, mode="wb") as f:
                    f.write(name.encode() * 1000)
            first = run.log_artifact(first).wait(timeout=120)
            proxy.requests.clear()
            draft = first.new_draft()
            with draft.new_file("c.bin", mode="wb") as f:
                f.write(b"new" * 1000)
            second = run.log_artifact(draft).wait(timeout=120)
    finally:
        daemon.kill()
    assert second.version == "v1" and sorted(second.manifest.entries) == ["a.bin", "b.bin", "c.bin"]
    assert proxy.blob_puts() == 1 and proxy.blob_puts(hashlib.md5(b"new" * 1000).hexdigest()) == 1
    got = Path(
        artisync.Api(home=node(s3_team)).artifact("vision/detector/ds:v1").download(tmp_path)
    )
    assert (got / "a.bin").read_bytes() == b"a.bin" * 1000
