"""The spool protocol and the submission format: crash-safe steps, order, rejections."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from artisync.errors import SubmissionError
from artisync.spool import (
    FORMAT_VERSION,
    ArtifactInfo,
    DirEntry,
    FileEntry,
    ReferenceEntry,
    RunInfo,
    Spool,
    StagedEntry,
    Submission,
    next_seq,
    parse_name,
)


def _submission(**changes: object) -> Submission:
    sub = Submission(
        id="a" * 32,
        created_ns=1,
        project="proj",
        run=RunInfo("run1", config={"lr": 0.1}),
        artifact=ArtifactInfo("data", "dataset", metadata={"index": 3}, aliases=["best"]),
        entries=[
            StagedEntry("a/b.txt", "staging/x/0", "1B2M2Y8AsgTpgAmY7PhCfg==", 0),
            FileEntry("c.bin", "/data/c.bin", 5, 10, 11),
            DirEntry("", "/data/images"),
            ReferenceEntry("", "file:///data/ref"),
        ],
    )
    for key, value in changes.items():
        setattr(sub, key, value)
    return sub


def test_submission_round_trips_through_its_json() -> None:
    sub = _submission()
    again = Submission.loads(sub.dumps())
    assert again == sub
    assert again.collection_key == (None, "proj", "data")


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (
            lambda o: o.update(format_version=FORMAT_VERSION + 1),
            "unknown submission format_version",
        ),
        (lambda o: o.update(format="something"), "not an artisync submission"),
        (lambda o: o.pop("entries"), "entries must be a JSON list"),
        (lambda o: o["entries"].append({"kind": "blob"}), "unknown kind 'blob'"),
        (lambda o: o["entries"][1].update(size="5"), "size has the wrong type"),
        (lambda o: o["entries"][0].update(path="../x"), "'../x'"),
        (lambda o: o["entries"][0].update(path="/etc/passwd"), "'/etc/passwd'"),
        (lambda o: o["artifact"].update(name="a/b"), "'a/b'"),
        (lambda o: o["artifact"].update(aliases=["x:y"]), "'x:y'"),
        (lambda o: o["artifact"].update(metadata=[1]), "metadata must be a JSON object"),
        (lambda o: o["artifact"].update(colour="red"), "colour"),
        (lambda o: o.update(action="delete"), "unknown action"),
    ],
)
def test_bad_submissions_are_rejected_with_a_reason_naming_the_problem(
    mutate: object, message: str
) -> None:
    obj = _submission().to_json()
    mutate(obj)  # type: ignore[operator]
    with pytest.raises(SubmissionError, match=message.replace("(", r"\(").replace(")", r"\)")):
        Submission.loads(json.dumps(obj).encode())


def test_malformed_json_is_a_submission_error() -> None:
    with pytest.raises(SubmissionError, match="not valid JSON"):
        Submission.loads(b"{not json")


def test_non_json_metadata_fails_when_written_naming_the_artifact() -> None:
    sub = _submission()
    sub.artifact.metadata = {"when": object()}
    with pytest.raises(ValueError, match=r"'data'.*JSON-serialisable"):
        sub.dumps()


def test_sequence_numbers_increase_within_a_process_and_sort_as_strings() -> None:
    seqs = [next_seq() for _ in range(1000)]
    assert seqs == sorted(seqs)
    assert len(set(seqs)) == len(seqs)


def test_publish_claim_complete_moves_a_submission_through_the_folders(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    sub = _submission()
    staging = spool.staging_dir(sub.id)
    (staging / "0").write_bytes(b"")
    new = spool.submit(sub)
    assert new.parent.name == "new" and parse_name(new.name)[1] == sub.id
    assert spool.pending() == [new] and not list((tmp_path / "tmp").iterdir())
    work = spool.claim(new)
    assert work is not None and spool.in_work() == [work]
    assert spool.claim(new) is None  # already claimed
    spool.write_journal(work, {"hashed": {"a": ["x", 1]}})
    assert spool.read_journal(work) == {"hashed": {"a": ["x", 1]}}
    spool.complete(work, {"id": sub.id, "status": "committed", "version": "v0"})
    assert spool.find_result(sub.id) == {"id": sub.id, "status": "committed", "version": "v0"}
    assert not spool.in_work() and not staging.exists()
    assert not list((tmp_path / "work").iterdir())


def test_reject_keeps_the_file_and_writes_a_readable_error(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    sub = _submission()
    work = spool.claim(spool.submit(sub))
    assert work is not None
    error_path = spool.reject(work, {"id": sub.id, "status": "rejected", "reason": "because"})
    assert (tmp_path / "failed" / work.name).exists()
    assert json.loads(error_path.read_text())["reason"] == "because"
    assert spool.find_result(sub.id) == {"id": sub.id, "status": "rejected", "reason": "because"}


def test_pending_lists_submissions_in_the_order_they_were_published(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    ids = []
    for i in range(20):
        sub = _submission(id=os.urandom(16).hex(), created_ns=i)
        ids.append(sub.id)
        spool.submit(sub)
    assert [parse_name(p.name)[1] for p in spool.pending()] == ids


def test_staging_of_a_dead_process_is_abandoned_unless_a_submission_uses_it(
    tmp_path: Path,
) -> None:
    spool = Spool(tmp_path)
    mine = spool.staging_dir("a" * 32)
    dead_pid = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    ).stdout.strip()
    orphan, logged = spool.staging_dir("b" * 32), spool.staging_dir("c" * 32)
    for path in (orphan, logged):
        path.with_name(path.name + ".owner").write_text(dead_pid)
    sub = _submission(id="c" * 32)
    spool.submit(sub)
    owner = orphan.with_name(orphan.name + ".owner")
    assert spool.abandoned_staging(spool.submission_ids()) == [orphan, owner]
    assert mine.exists()
