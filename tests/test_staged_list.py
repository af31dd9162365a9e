"""Staged lists: a big snapshot's entries travel in a file of their own, checked row by
row and as a whole (count and MD5) by the daemon."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

import artisync
from artisync.daemon.gc import spool_digests
from artisync.errors import SubmissionError
from artisync.manifest import Manifest, ManifestEntry, md5_b64_to_hex
from artisync.spool import Spool, StagedEntry, StagedListEntry, Submission, staged_list
from daemon_harness import (
    DaemonProcess,
    check_store_consistent,
    drop,
    result_of,
    staged_submission,
    wait_for,
)
from file_digests import b64_md5


@pytest.fixture
def daemon(home: Path) -> Iterator[DaemonProcess]:
    d = DaemonProcess(home)
    d.start(env={"ARTISYNC_CHUNK_ENTRIES": "16"})
    yield d
    d.kill()


def _files(n: int) -> dict[str, bytes]:
    return {f"d{i % 3}/f{i:03d}.bin": f"row {i}".encode() for i in range(n)}


def _packed(spool: Spool, files: dict[str, bytes]) -> tuple[Submission, Submission]:
    sub = staged_submission(spool, "proj", "listed", files)
    return sub, staged_list.pack(sub, spool.root)


def test_few_staged_entries_stay_inline(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool")
    sub, packed = _packed(spool, _files(5))
    assert packed is sub


def test_pack_then_read_gives_the_same_entries(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(staged_list, "LIST_AT", 10)
    spool = Spool(tmp_path / "spool")
    sub, packed = _packed(spool, _files(50))
    [listed] = packed.entries
    assert isinstance(listed, StagedListEntry)
    assert (listed.count, listed.size) == (50, sum(len(v) for v in _files(50).values()))
    # The packed submission survives the spool's own round trip.
    again = Submission.loads(packed.dumps())
    assert again.entries == [listed]
    rows = list(staged_list.read_rows(listed, spool.root, sub.id))
    assert rows == [e for e in sub.entries if isinstance(e, StagedEntry)]
    assert list(staged_list.digests(listed, spool.root)) == [r.digest for r in rows]


def _rewrite(spool: Spool, listed: StagedListEntry, edit: str) -> None:
    path = spool.root / listed.list
    lines = path.read_bytes().splitlines(keepends=True)
    if edit == "truncate":
        lines = lines[:-1]
    elif edit == "change":
        row = json.loads(lines[3])
        row[3] += 1
        lines[3] = (json.dumps(row) + "\n").encode()
    elif edit == "garbage":
        lines[2] = b"{not json\n"
    elif edit == "escape":
        row = json.loads(lines[1])
        row[0] = "../outside"
        lines[1] = (json.dumps(row) + "\n").encode()
    path.write_bytes(b"".join(lines))


@pytest.mark.parametrize(
    ("edit", "reason"),
    [
        ("truncate", r"has 19 rows, the submission says 20"),
        ("change", r"is not the file the submission names"),
        ("garbage", r"line 3: not JSON"),
        ("escape", r"line 2: .*'\.\./outside'"),
    ],
)
def test_a_list_that_is_not_what_the_submission_says_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, edit: str, reason: str
) -> None:
    monkeypatch.setattr(staged_list, "LIST_AT", 10)
    spool = Spool(tmp_path / "spool")
    sub, packed = _packed(spool, _files(20))
    [listed] = packed.entries
    assert isinstance(listed, StagedListEntry)
    _rewrite(spool, listed, edit)
    with pytest.raises(SubmissionError, match=reason):
        list(staged_list.read_rows(listed, spool.root, sub.id))


def test_a_list_outside_the_submissions_staging_area_is_refused(tmp_path: Path) -> None:
    outside = StagedListEntry(list="staging/other-id/x.jsonl", count=0, digest=b64_md5(b""), size=0)
    with pytest.raises(SubmissionError, match="outside this submission's staging area"):
        list(staged_list.read_rows(outside, tmp_path, "my-id"))


def test_the_sdk_lists_a_big_mutable_directory_and_the_daemon_commits_it(
    daemon: DaemonProcess, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(staged_list, "LIST_AT", 10)
    files = _files(60)
    for rel, data in files.items():
        (tmp_path / "tree" / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "tree" / rel).write_bytes(data)
    with artisync.init(project="proj", home=daemon.home) as run:
        artifact = artisync.Artifact("listed", "dataset")
        artifact.add_dir(tmp_path / "tree", name="data")  # mutable: 60 snapshots
        with artifact.new_file("notes.txt") as f:
            f.write("n")
        run.log_artifact(artifact)
        artifact.wait(timeout=60)
    expected = {f"data/{k}": v for k, v in files.items()} | {"notes.txt": b"n"}
    manifest = Manifest({k: ManifestEntry(k, b64_md5(v), len(v)) for k, v in expected.items()})
    assert artifact.digest == manifest.digest()
    with daemon.registry() as registry:
        versions = registry.list_versions("proj", "listed")
    assert versions[0].file_count == 61
    data = (daemon.home / "store" / versions[0].manifest_key).read_bytes()
    assert data == json.dumps(manifest.to_json(), separators=(",", ":")).encode()
    check_store_consistent(daemon.home, versions)
    # The list and the snapshots go once the client has its answer (off its path).
    staging = daemon.home / "spool" / "staging"
    wait_for(lambda: not list(staging.iterdir()), what="the staging area to be removed")


def test_a_tampered_list_is_rejected_by_the_daemon_which_goes_on(
    daemon: DaemonProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(staged_list, "LIST_AT", 10)
    spool = Spool(daemon.home / "spool")
    sub, packed = _packed(spool, _files(20))
    [listed] = packed.entries
    assert isinstance(listed, StagedListEntry)
    _rewrite(spool, listed, "truncate")
    drop(spool, packed)
    result = result_of(spool, sub.id)
    assert result["status"] == "rejected"
    assert "has 19 rows, the submission says 20" in result["reason"]
    good, packed_good = _packed(spool, _files(15))
    drop(spool, packed_good)
    assert result_of(spool, good.id)["status"] == "committed"


def test_gc_spares_the_blobs_a_waiting_list_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(staged_list, "LIST_AT", 10)
    spool = Spool(tmp_path / "spool")
    _, packed = _packed(spool, _files(20))
    drop(spool, packed)
    expected = {md5_b64_to_hex(b64_md5(v)) for v in _files(20).values()}
    assert spool_digests(spool) == expected
